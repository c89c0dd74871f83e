"""Helpers shared by the collectors of observed (undocumented) Citrix Cloud APIs.

Those APIs live on other hosts than the customer's `api_url` and their paths are configurable
templates (`/{customer_id}/licenseservers`); see docs/observed-apis.md.
Label values that come from those APIs (account names, FQDNs, feature ids) are free text, so
they are tidied (printable, trimmed) and cut to tighter limits by `fields.repair_label`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .fields import Fields

NAME_LIMIT = 64
FQDN_LIMIT = 253


def observed_url(base_url: str, template: str, **values: str) -> str:
    """`base_url` + `template` with each `{placeholder}` replaced by its URL-quoted value."""
    return base_url.rstrip("/") + template.format(
        **{key: quote(value, safe="") for key, value in values.items()}
    )


def text_label(
    fields: Fields, data: dict[str, Any], keys: tuple[str, ...], path: str, limit: int = NAME_LIMIT
) -> str | None:
    """The sanitised value of the first of `keys` holding a non-blank string, else None
    (reported as null/bad_type on `path`; invalid or over-long text as repaired_label)."""
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and (clean := fields.label_text(value, path, limit, tidy=True)):
            return clean
    value = next((data[key] for key in keys if key in data), None)
    fields.issues.report("null" if value is None else "bad_type", path)
    return None


def flag(fields: Fields, data: dict[str, Any], key: str, path: str) -> float | None:
    """1.0 / 0.0 for a boolean field (also `"true"`/`"false"` and 0/1), else None (reported)."""
    value = data.get(key)
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return 1.0 if value.strip().lower() == "true" else 0.0
    if isinstance(value, int) and value in (0, 1):
        return float(value)
    fields.issues.report("null" if value is None else "bad_type", path)
    return None


def optional_timestamp(fields: Fields, data: dict[str, Any], key: str, path: str) -> float | None:
    """Like `Fields.timestamp`, but a null or absent value is expected (never reported)."""
    if data.get(key) is None:
        return None
    return fields.timestamp(data, key, path)


def month_of(now: float) -> str:
    """`yyyy-MM` of the UTC month containing the Unix time `now`."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m")


def object_list(fields: Fields, data: Any, key: str, path: str) -> list[dict[str, Any]]:
    """The JSON objects of list `data[key]`; anything else is reported and skipped."""
    if not isinstance(data, dict):
        fields.issues.report("bad_shape", path, "not a JSON object")
        return []
    items = data.get(key)
    if not isinstance(items, list):
        fields.issues.report("null" if items is None else "bad_shape", f"{path}.{key}")
        return []
    objects = [item for item in items if isinstance(item, dict)]
    if len(objects) != len(items):
        fields.issues.report("bad_shape", f"{path}.{key}[]", "entry is not a JSON object")
    return objects
