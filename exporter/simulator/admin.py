"""Unauthenticated control endpoints under ``/_simulator/`` for end-to-end tests and demos.

In-process tests mutate :class:`~exporter.simulator.state.SimulatorState` directly; a
simulator running as a separate process (``--demo``, a container) can only be steered over
HTTP, hence these endpoints. They are not recorded in the request log, suffer no faults and
need no token: they are not part of the impersonated API.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from aiohttp import web

from .faults import apply_revocation
from .monitor_api import NEXT_LINK_MODES, REJECT_APPLY_STATUSES
from .state import STATE_KEY, Faults

ADMIN_PREFIX = "/_simulator/"

_INT_FIELDS = frozenset({"throttle_next", "error_next", "token_error_next", "token_lifetime"})


def _validate(name: str, value: Any) -> str | None:
    """An error message if ``value`` is not acceptable for Faults field ``name``."""
    if name in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{name} must be a non-negative integer"
    elif name == "retry_after":
        if value is not None and not isinstance(value, str):
            return "retry_after must be a string or null"
    elif name == "delay_seconds":
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            return "delay_seconds must be a non-negative number"
    elif name == "revoke_tokens":
        if not isinstance(value, bool):
            return "revoke_tokens must be a boolean"
    elif name == "reject_apply":
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value not in REJECT_APPLY_STATUSES
        ):
            return "reject_apply must be 0, 400 or 501"
    elif name == "next_link_mode":
        if value not in NEXT_LINK_MODES:
            return f"next_link_mode must be one of {', '.join(NEXT_LINK_MODES)}"
    elif name == "odata_page_size":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return "odata_page_size must be a positive integer"
    else:
        return f"unknown field: {name}"
    return None


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def get_faults(request: web.Request) -> web.Response:
    """``GET /_simulator/faults``: the current fault settings."""
    return web.json_response(dataclasses.asdict(request.app[STATE_KEY].faults))


async def post_faults(request: web.Request) -> web.Response:
    """``POST /_simulator/faults``: set the given fields (all or nothing), return the result."""
    state = request.app[STATE_KEY]
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _bad_request("body must be a JSON object")
    if not isinstance(body, dict):
        return _bad_request("body must be a JSON object")
    known = {f.name for f in dataclasses.fields(Faults)}
    for name, value in body.items():
        if name not in known:
            return _bad_request(f"unknown field: {name}")
        problem = _validate(name, value)
        if problem is not None:
            return _bad_request(problem)
    for name, value in body.items():
        setattr(state.faults, name, float(value) if name == "delay_seconds" else value)
    apply_revocation(state)
    return web.json_response(dataclasses.asdict(state.faults))


async def get_requests(request: web.Request) -> web.Response:
    """``GET /_simulator/requests``: how many requests the simulator received, per path."""
    state = request.app[STATE_KEY]
    return web.json_response({"total": len(state.requests), "by_path": state.counts_by_path()})


def setup_routes(app: web.Application) -> None:
    """Register the admin endpoints."""
    app.router.add_get(ADMIN_PREFIX + "faults", get_faults, allow_head=False)
    app.router.add_post(ADMIN_PREFIX + "faults", post_faults)
    app.router.add_get(ADMIN_PREFIX + "requests", get_requests, allow_head=False)
