"""The `citrix_licenses_*` gauges of one current-usage answer.

The documented DaaS call (`ud/current`) and the observed calls for other cloud products answer
in the same shape, so both collectors build their gauges here and share names, HELP and the
handling of odd values. Keys listed in `optional` may be missing or null without being
reported (the product calls leave out the per-assignment usage, for example).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from .base import GaugeSet
from .fields import Fields

ASSIGNMENTS = (("user", "userLicenseUsage"), ("device", "deviceLicenseUsage"))

TOTALS = (
    ("totalAvailableLicenseCount", "citrix_licenses_available",
     "Licenses available (totalAvailableLicenseCount)."),
    ("totalUsageCount", "citrix_licenses_used",
     "Licenses in use, the smaller of user and device usage (totalUsageCount)."),
    ("remainingLicenseCount", "citrix_licenses_remaining",
     "Licenses not yet consumed (remainingLicenseCount)."),
)  # fmt: skip
PER_ASSIGNMENT = (
    ("totalUsageCount", "citrix_licenses_usage",
     "Licenses in use by assignment kind (user or device)."),
    ("releasedCount", "citrix_licenses_released",
     "Licenses released by assignment kind (releasedCount)."),
)  # fmt: skip
# section -> (field, is a timestamp, metric, help)
SECTIONS = {
    "nextExpiredLicenses": (
        ("nextExpiredTime", True, "citrix_licenses_next_expiry_timestamp_seconds",
         "When the next licenses expire (nextExpiredLicenses.nextExpiredTime)."),
        ("totalCount", False, "citrix_licenses_expiring",
         "Licenses that expire at the next expiry time (nextExpiredLicenses.totalCount)."),
    ),
    "nextActivatingLicense": (
        ("activatingTime", True, "citrix_licenses_next_activation_timestamp_seconds",
         "When the next purchased licenses become available "
         "(nextActivatingLicense.activatingTime); absent when none is scheduled."),
        ("activatingCount", False, "citrix_licenses_activating",
         "Licenses that become available at the next activation time "
         "(nextActivatingLicense.activatingCount); absent when none is scheduled."),
    ),
}  # fmt: skip


def add_current_usage(
    gauges: GaugeSet,
    labels: list[str],
    data: dict[str, Any],
    fields: Fields,
    *,
    prefix: str = "",
    optional: Collection[str] = ("nextActivatingLicense",),
) -> None:
    """Add the gauges of `data` (a current-usage object) under `labels`."""

    def section(key: str) -> dict[str, Any] | None:
        if data.get(key) is None and key in optional:
            return None
        return fields.object(data, key, path=prefix + key)

    totals: dict[str, float] = {}
    for key, name, help_text in TOTALS:
        value = fields.count(data, key, prefix + key)
        if value is not None:
            totals[key] = value
            gauges.add(name, help_text, labels, value)
    available = totals.get("totalAvailableLicenseCount")
    used = totals.get("totalUsageCount")
    if available is not None and used is not None:
        gauges.add(
            "citrix_licenses_overage",
            "Licenses used beyond those available: max(0, used - available).",
            labels,
            max(0.0, used - available),
        )
    add_per_assignment(gauges, labels, section, PER_ASSIGNMENT, fields, prefix)
    for key, entries in SECTIONS.items():
        values = section(key)
        if values is None:
            continue
        for field, is_time, name, help_text in entries:
            path = f"{prefix}{key}.{field}"
            value = (fields.timestamp if is_time else fields.count)(values, field, path)
            if value is not None:
                gauges.add(name, help_text, labels, value)


def add_per_assignment(
    gauges: GaugeSet,
    labels: list[str],
    usage_of: Callable[[str], dict[str, Any] | None],
    table: Iterable[tuple[str, str, str]],
    fields: Fields,
    prefix: str,
) -> None:
    """The `table` counts (field, metric, help) of the user and the device usage object
    (`usage_of(key)`, None when absent), labelled with their assignment kind. The current
    usage and each month of the history have the same two objects."""
    for assignment, key in ASSIGNMENTS:
        usage = usage_of(key)
        if usage is None:
            continue
        for field, name, help_text in table:
            value = fields.count(usage, field, f"{prefix}{key}.{field}")
            if value is not None:
                gauges.add(name, help_text, labels, value, {"assignment": assignment})
