"""Talking to the simulator from its tests: a token for a customer, the headers of an API call.

One place for the token request and the three headers every simulated API wants, so each test
file says what it checks rather than how it signs in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from tests.support.helpers import SEED_CLIENT, SEED_CUSTOMER, SEED_SECRET

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


async def post_token(
    client: Client,
    customer_id: str = SEED_CUSTOMER,
    client_id: str = SEED_CLIENT,
    secret: str = SEED_SECRET,
    headers: dict[str, str] | None = None,
) -> ClientResponse:
    """The client-credentials request of the token endpoint, as the exporter sends it."""
    return await client.post(
        f"/cctrustoauth2/{customer_id}/tokens/clients",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        headers=headers,
    )


async def get_token(
    client: Client,
    customer_id: str = SEED_CUSTOMER,
    client_id: str = SEED_CLIENT,
    secret: str = SEED_SECRET,
) -> str:
    """A bearer token for the customer (the request must succeed)."""
    resp = await post_token(client, customer_id, client_id, secret, {"Accept": "application/json"})
    assert resp.status == 200, await resp.text()
    token = (await resp.json())["access_token"]
    assert isinstance(token, str)
    return token


def api_headers(token: str, customer_id: str = SEED_CUSTOMER) -> dict[str, str]:
    """What every simulated API call carries: Accept, the CwsAuth token, the customer id."""
    return {
        "Accept": "application/json",
        "Authorization": f"CwsAuth Bearer={token}",
        "Citrix-CustomerId": customer_id,
    }


async def signed_in(
    client: Client,
    customer_id: str = SEED_CUSTOMER,
    client_id: str = SEED_CLIENT,
    secret: str = SEED_SECRET,
) -> dict[str, str]:
    """The API headers with a fresh token for the customer."""
    return api_headers(await get_token(client, customer_id, client_id, secret), customer_id)
