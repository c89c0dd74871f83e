"""The simulator's aiohttp application: every Citrix Cloud API under one base URL.

Routing is split by concern (``auth``, ``licensing``, ``monitor_api`` for the Monitor
OData API, ``observed`` for the undocumented licensing APIs of other hosts, ``admin``), each
with its own ``setup_routes``. The cross-cutting behaviour of the real gateway lives in one
middleware, so each endpoint module only implements its own answers:

* token requests (``/cctrustoauth2/...``): record, revocation, delay, token fault, handler;
* admin requests (``/_simulator/...``): handler only (not recorded, no faults);
* everything else is an API request: record, revocation, delay, 429/500 faults, unknown path
  (404), ``Accept`` (406), ``Authorization`` (401), ``Citrix-CustomerId`` (403), handler.

Every response carries a fresh ``Citrix-TransactionId``.
"""

from __future__ import annotations

import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from . import admin, auth, errors, faults, licensing, monitor_api, observed
from .state import CUSTOMER_KEY, STATE_KEY, RecordedRequest, SimulatorState

__all__ = ["STATE_KEY", "accepts_json", "create_app"]

TRANSACTION_HEADER = "Citrix-TransactionId"


def accepts_json(accept: str | None) -> bool:
    """True if the ``Accept`` header explicitly lists ``application/json`` with q > 0.

    Deliberately strict: ``*/*``, ``application/*`` or no header at all are refused (406), so
    a client that forgets to send ``Accept: application/json`` is caught in tests.
    """
    if not accept:
        return False
    for media_range in accept.split(","):
        media_type, *params = (part.strip() for part in media_range.split(";"))
        if media_type.lower() != "application/json":
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        if quality > 0:
            return True
    return False


def _route_unknown(request: web.Request) -> bool:
    """True if no route matched (unknown path, or a method the path does not support)."""
    return request.match_info.http_exception is not None


def _record(
    request: web.Request, state: SimulatorState, customer_id: str | None
) -> RecordedRequest:
    entry = RecordedRequest(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        status=0,
        customer_id=customer_id,
        authorization=request.headers.get("Authorization"),
    )
    state.requests.append(entry)
    return entry


async def _token_request(
    request: web.Request, state: SimulatorState, handler: Handler
) -> web.StreamResponse:
    faults.apply_revocation(state)  # before issuing, so a new token survives the revocation
    await faults.apply_delay(state)
    if _route_unknown(request):
        return errors.not_found(request.path)
    fault = faults.token_fault(state)
    if fault is not None:
        return fault
    return await handler(request)


async def _api_request(
    request: web.Request, state: SimulatorState, handler: Handler
) -> web.StreamResponse:
    faults.apply_revocation(state)
    await faults.apply_delay(state)
    fault = faults.api_fault(state)
    if fault is not None:
        return fault
    if _route_unknown(request):
        return errors.not_found(request.path)
    if not accepts_json(request.headers.get("Accept")):
        return errors.not_acceptable()
    outcome = auth.authenticate(request, state)
    if isinstance(outcome, web.Response):
        return outcome
    request[CUSTOMER_KEY] = outcome
    return await handler(request)


@web.middleware
async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply the gateway behaviour described in the module docstring, then record the status."""
    state = request.app[STATE_KEY]
    path = request.path
    if path.startswith(admin.ADMIN_PREFIX):
        return await handler(request)
    if path.startswith(auth.TOKEN_PREFIX):
        entry = _record(request, state, request.match_info.get("customer_id"))
        process = _token_request
    else:
        entry = _record(request, state, request.headers.get("Citrix-CustomerId"))
        process = _api_request
    try:
        response = await process(request, state, handler)
    except web.HTTPException as exc:
        entry.status = exc.status
        raise
    except Exception:
        entry.status = 500
        raise
    entry.status = response.status
    return response


async def _add_transaction_id(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[TRANSACTION_HEADER] = str(uuid.uuid4())


def create_app(state: SimulatorState) -> web.Application:
    """An application serving ``state``; ``state`` is also available as ``app[STATE_KEY]``."""
    app = web.Application(middlewares=[gateway_middleware])
    app[STATE_KEY] = state
    auth.setup_routes(app)
    licensing.setup_routes(app)
    monitor_api.setup_routes(app)
    admin.setup_routes(app)
    observed.setup_routes(app)  # last: its paths start with a variable {customer_id}
    app.on_response_prepare.append(_add_transaction_id)
    return app
