"""Citrix Cloud trust service: the OAuth 2 client-credentials token endpoint and token checks.

Why a module of its own: every simulated API (licensing now, Monitor OData later) shares the
same ``CwsAuth Bearer=`` scheme, the same ``Citrix-CustomerId`` check and the same 401/403
bodies; the middleware in :mod:`exporter.simulator.app` calls :func:`authenticate` for all of
them, so new endpoints get authentication for free.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from aiohttp import web

from . import errors
from .state import (
    STATE_KEY,
    SimCustomer,
    SimulatorState,
    TokenInfo,
    TokenRequest,
    secret_fingerprint,
)

TOKEN_PATH = "/cctrustoauth2/{customer_id}/tokens/clients"
TOKEN_PREFIX = "/cctrustoauth2/"
ROOT_CUSTOMER = "root"
"""Literal accepted in place of the customer id in the token URL."""

_AUTH_RE = re.compile(r"^\s*cwsauth\s+bearer\s*=\s*(?P<token>\S+)\s*$", re.IGNORECASE)


async def token_handler(request: web.Request) -> web.Response:
    """``POST /cctrustoauth2/{customer_id}/tokens/clients`` (form-encoded client credentials).

    ``expires_in`` is sent as a string, as Citrix does. The secret is compared in constant
    time and never logged or echoed; only its fingerprint is recorded (which secret was used).
    """
    state = request.app[STATE_KEY]
    form = await request.post()
    grant_type = form.get("grant_type")
    if grant_type != "client_credentials":
        return errors.oauth_error("unsupported_grant_type")
    client_id = form.get("client_id")
    client_secret = form.get("client_secret")
    if not isinstance(client_id, str) or not isinstance(client_secret, str):
        return _invalid_client()
    customer = state.find_client(client_id)
    granted = customer is not None and customer.accepts(client_secret)
    state.token_requests.append(TokenRequest(client_id, secret_fingerprint(client_secret), granted))
    if customer is None or not granted:
        return _invalid_client()
    path_customer = request.match_info["customer_id"]
    if path_customer not in (ROOT_CUSTOMER, customer.customer_id):
        return _invalid_client()
    lifetime = state.faults.token_lifetime
    token = secrets.token_urlsafe(48)
    state.issued_tokens[token] = TokenInfo(
        customer_id=customer.customer_id,
        expires_at=state.now() + timedelta(seconds=lifetime),
    )
    return web.json_response(
        {"token_type": "bearer", "access_token": token, "expires_in": str(lifetime)}
    )


def _invalid_client() -> web.Response:
    return errors.oauth_error("invalid_client", "Invalid client id or client secret.")


def authenticate(request: web.Request, state: SimulatorState) -> SimCustomer | web.Response:
    """Check ``Authorization`` and ``Citrix-CustomerId``; the customer, or the error response.

    No or empty header: 401 ``missing``. Malformed header, unknown, expired or revoked token:
    401 ``invalid``. Token of another customer (or no ``Citrix-CustomerId``): 403.
    """
    header = request.headers.get("Authorization", "")
    if not header.strip():
        return errors.unauthorized("missing")
    match = _AUTH_RE.match(header)
    if match is None:
        return errors.unauthorized("invalid")
    info = state.issued_tokens.get(match["token"])
    if info is None:
        return errors.unauthorized("invalid")
    if state.now() >= info.expires_at:
        del state.issued_tokens[match["token"]]
        return errors.unauthorized("invalid")
    customer = state.customers.get(info.customer_id)
    if customer is None:
        return errors.unauthorized("invalid")
    if request.headers.get("Citrix-CustomerId") != info.customer_id:
        return errors.forbidden()
    return customer


def setup_routes(app: web.Application) -> None:
    """Register the token endpoint."""
    app.router.add_post(TOKEN_PATH, token_handler)
