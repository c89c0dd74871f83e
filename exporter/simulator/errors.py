"""Error responses of Citrix Cloud, byte for byte as documented (seed 002 and the reference).

Kept in one place so every simulated endpoint fails the same way the real service does, and
so the exporter's error parsing is tested against the documented bodies, not invented ones.
The 406 and 429 bodies are not documented: they are marked as such below.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

AUTHENTICATION_TYPE = "https://errors-api.cloud.com/common/authentication"
AUTHORIZATION_TYPE = "https://errors-api.cloud.com/common/authorization"
NOT_FOUND_TYPE = "https://errors-api.cloud.com/licensing/notFound"
INTERNAL_ERROR_TYPE = "https://errors-api.cloud.com/systemlog/internalerror"
# Not documented by Citrix: the simulator's own choice, shaped like the documented errors.
THROTTLED_TYPE = "https://errors-api.cloud.com/common/throttled"
NOT_ACCEPTABLE_TYPE = "https://errors-api.cloud.com/common/notAcceptable"

INVALID_TIME_FORMAT = "Invalid time format."
START_AFTER_END = "StartDate can't be later than EndDate."


def _problem(
    status: int,
    error_type: str,
    detail: str,
    parameter: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The Citrix error document ``{"type", "detail"[, "parameters"]}``, keys in that order."""
    body: dict[str, Any] = {"type": error_type, "detail": detail}
    if parameter is not None:
        name, value = parameter
        body["parameters"] = [{"name": name, "value": value}]
    return web.json_response(body, status=status, headers=headers)


def unauthorized(reason: str) -> web.Response:
    """401: ``reason`` is ``missing`` (no/empty Authorization) or ``invalid``."""
    detail = "Missing or invalid authentication details"
    return _problem(401, AUTHENTICATION_TYPE, detail, ("reason", reason))


def forbidden() -> web.Response:
    """403: the token does not belong to the customer named in ``Citrix-CustomerId``."""
    return _problem(403, AUTHORIZATION_TYPE, "Access denied")


def not_found(path: str) -> web.Response:
    """404: unknown URL, or (licensing) a customer not entitled to the product."""
    return _problem(404, NOT_FOUND_TYPE, "resource not found", ("entityType", path))


def internal_error() -> web.Response:
    """500 with the documented body (note Citrix's "a internal issue")."""
    return _problem(500, INTERNAL_ERROR_TYPE, "There was a internal issue")


def throttled(retry_after: str | None) -> web.Response:
    """429; whether Citrix sends ``Retry-After`` is unknown, so it is optional here."""
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return _problem(429, THROTTLED_TYPE, "Too Many Requests", headers=headers)


def not_acceptable() -> web.Response:
    """406 when the client does not accept ``application/json`` (body not documented)."""
    return _problem(406, NOT_ACCEPTABLE_TYPE, "Not Acceptable")


def licensing_validation(message: str) -> web.Response:
    """400 of the licensing API: a JSON document serialised *as a string* inside JSON."""
    inner = json.dumps({"Code": 400, "Message": message, "Details": message}, separators=(",", ":"))
    return web.json_response({"error_description": inner}, status=400)


def oauth_error(error: str, description: str | None = None) -> web.Response:
    """400 of the token endpoint, in OAuth 2 form."""
    body = {"error": error}
    if description is not None:
        body["error_description"] = description
    return web.json_response(body, status=400)
