"""Field types shared by the models: durations, intervals, API base URLs, the strict base model."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict

from exporter.durations import DurationError, parse_duration

CUSTOMER_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _to_seconds(value: object) -> object:
    """Accept "5m"-style strings or plain seconds wherever the config takes a duration."""
    if not isinstance(value, str | int | float):
        raise ValueError("must be a duration such as 30s, 5m or 1h")
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise ValueError(exc.summary) from None


MIN_INTERVAL_SECONDS = 1.0


def _to_interval(value: object) -> object:
    """A poll interval: a duration of at least a second (``1ms`` is a typo for ``1m``)."""
    seconds = _to_seconds(value)
    if isinstance(seconds, float | int) and seconds < MIN_INTERVAL_SECONDS:
        raise ValueError("must be at least 1s (a poll interval; did you mean minutes, 'm'?)")
    return seconds


def _to_optional_interval(value: object) -> object:
    """Like :func:`_to_interval`, but an absent value means "inherit poll.interval"."""
    return None if value is None else _to_interval(value)


Duration = Annotated[float, BeforeValidator(_to_seconds)]
Interval = Annotated[float, BeforeValidator(_to_interval)]
OptionalInterval = Annotated[float | None, BeforeValidator(_to_optional_interval)]


def empty_if_none(value: object) -> object:
    """Treat an empty YAML section (``poll:`` with every child commented out) as all defaults."""
    return {} if value is None else value


class Model(BaseModel):
    """Common settings: typos must be errors, and a loaded config must not change under us."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def normalise_api_url(url: str) -> str:
    """Validate an API base URL and strip trailing slashes (messages never repeat the URL)."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ValueError("must be an absolute http:// or https:// URL")
    if "?" in url or "#" in url:
        raise ValueError("must not contain a query string or fragment")
    if "@" in parts.netloc:
        raise ValueError("must not contain credentials")
    return url.rstrip("/")
