"""Citrix Cloud Licensing: DaaS user/device (UD) current and historical usage.

Answers are built to match seeds 001 and 002 exactly (key order, 7-digit timestamp fractions,
``null`` for a missing activation, the nested-JSON 400 bodies), because the exporter's parser
is tested against this module and must then work against the real service unchanged.
Authentication has already been done by the middleware; handlers read the customer from
``request[CUSTOMER_KEY]``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from . import errors
from .state import CUSTOMER_KEY, STATE_KEY, HistoryMonth, LicenseScenario, month_start

CURRENT_PATH = "/licensing/license/enterprise/cloud/cvad/ud/current"
HISTORICAL_PATH = "/licensing/license/enterprise/cloud/cvad/ud/historicalusage"

_MONTH_RE = re.compile(r"^(?P<year>\d{4})-(?P<month>\d{2})$")


def format_timestamp(moment: datetime) -> str:
    """Citrix's ISO 8601 form with 7 fractional digits: ``2021-12-19T02:56:22.0215460Z``."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}0Z"


def _month_timestamp(month: date) -> str:
    start = month_start(month)
    return format_timestamp(datetime(start.year, start.month, 1, tzinfo=UTC))


def current_usage(customer_id: str, scenario: LicenseScenario, now: datetime) -> dict[str, Any]:
    """The ``ud/current`` body for ``scenario`` at ``now`` (keys in the documented order).

    ``daysToExpire`` counts calendar days (UTC) from ``now``: that is what reproduces the
    seed's 507 days between 2021-12-19T02:56Z and 2023-05-10.
    """
    user_used, device_used = scenario.usage_at(now)
    total = min(user_used, device_used)
    expired: dict[str, Any] | None = None
    if scenario.next_expiry is not None:
        expired = {
            "nextExpiredTime": format_timestamp(scenario.next_expiry),
            "totalCount": scenario.expiring_count,
            "daysToExpire": (
                scenario.next_expiry.astimezone(UTC).date() - now.astimezone(UTC).date()
            ).days,
        }
    activating: dict[str, Any] | None = None
    if scenario.next_activation is not None:
        activating = {
            "activatingTime": format_timestamp(scenario.next_activation),
            "activatingCount": scenario.activating_count,
        }
    return {
        "customerId": customer_id,
        "totalUsageCount": total,
        "userLicenseUsage": {
            "totalUsageCount": user_used,
            "releasedCount": scenario.user_released,
        },
        "deviceLicenseUsage": {
            "totalUsageCount": device_used,
            "releasedCount": scenario.device_released,
        },
        "totalAvailableLicenseCount": scenario.available,
        "remainingLicenseCount": max(0, scenario.available - total),
        "timeStamp": format_timestamp(now),
        "productName": scenario.product_name,
        "nextExpiredLicenses": expired,
        "nextActivatingLicense": activating,
        "productEdition": scenario.product_edition,
    }


def historical_usage(
    customer_id: str, scenario: LicenseScenario, months: list[HistoryMonth]
) -> dict[str, Any]:
    """The ``ud/historicalusage`` body for ``months`` (seed 002 shape).

    The combined list uses min(user, device) for each count, as ``totalUsageCount`` does.
    """
    return {
        "customerId": customer_id,
        "historicalUsageType": "Monthly",
        "productEdition": scenario.product_edition,
        "xenAppXenDesktopHistoricalUsageList": [
            {
                "cumulativeAssignedCount": min(m.user_cumulative, m.device_cumulative),
                "newAssignedCount": min(m.user_new, m.device_new),
                "totalAvailableLicenseCount": m.available,
                "timeStamp": _month_timestamp(m.month),
                "releasedCount": min(m.user_released, m.device_released),
            }
            for m in months
        ],
        "historicalUsageList": [
            {
                "timeStamp": _month_timestamp(m.month),
                "totalAvailableLicenseCount": m.available,
                "deviceLicenseUsage": {
                    "cumulativeAssignedCount": m.device_cumulative,
                    "newAssignedCount": m.device_new,
                    "releasedCount": m.device_released,
                },
                "userLicenseUsage": {
                    "cumulativeAssignedCount": m.user_cumulative,
                    "newAssignedCount": m.user_new,
                    "releasedCount": m.user_released,
                },
            }
            for m in months
        ],
    }


def parse_month(value: str | None) -> date | None:
    """``yyyy-MM`` to the first day of that month; None if absent or malformed."""
    if value is None:
        return None
    match = _MONTH_RE.match(value)
    if match is None:
        return None
    year, month = int(match["year"]), int(match["month"])
    if not 1 <= month <= 12 or year < 1:
        return None
    return date(year, month, 1)


async def current_handler(request: web.Request) -> web.Response:
    """``GET .../ud/current``: 200 with current usage, 404 if not entitled."""
    customer = request[CUSTOMER_KEY]
    scenario = customer.licensing
    if not scenario.entitled:
        return errors.not_found(request.path)
    now = request.app[STATE_KEY].now()
    return web.json_response(current_usage(customer.customer_id, scenario, now))


async def historical_handler(request: web.Request) -> web.Response:
    """``GET .../ud/historicalusage?startDate=yyyy-MM&endDate=yyyy-MM``.

    400 (nested JSON) on a bad or missing date or start > end, 204 with an empty body when no
    month falls in the range, 404 if not entitled. The "up to 12 months" limit of the docs is
    not enforced: what Citrix does beyond it is not documented.
    """
    customer = request[CUSTOMER_KEY]
    scenario = customer.licensing
    if not scenario.entitled:
        return errors.not_found(request.path)
    start = parse_month(request.query.get("startDate"))
    end = parse_month(request.query.get("endDate"))
    if start is None or end is None:
        return errors.licensing_validation(errors.INVALID_TIME_FORMAT)
    if start > end:
        return errors.licensing_validation(errors.START_AFTER_END)
    months = [m for m in scenario.history if start <= month_start(m.month) <= end]
    if not months:
        return web.Response(status=204)
    return web.json_response(historical_usage(customer.customer_id, scenario, months))


def setup_routes(app: web.Application) -> None:
    """Register the licensing endpoints (authenticated by the app middleware)."""
    app.router.add_get(CURRENT_PATH, current_handler, allow_head=False)
    app.router.add_get(HISTORICAL_PATH, historical_handler, allow_head=False)
