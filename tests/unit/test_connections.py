"""Connections: one session for every customer and a client each, wired once for daemon and
backfill; each customer's CA file its own, and one cap on requests in flight (over real HTTP)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from exporter.metrics import SelfMetrics
from exporter.runtime import Exporter
from exporter.upstream.connections import Connections, ssl_context
from exporter.upstream.errors import TokenError
from tests.support.config_text import TEST_CA_PEM
from tests.support.helpers import make_config, self_signed_cert, url_of
from tests.support.hostile import CURRENT_SUFFIX, TOKEN_SUFFIX, HostileUpstream, good_current

ServerFactory = Callable[..., Awaitable[TestServer]]
ExporterFactory = Callable[..., Awaitable[Exporter]]

CUSTOMERS = [
    {"customer_id": "first1", "client_id": "a", "client_secret": "first-secret-Xy7"},
    {"customer_id": "second2", "client_id": "b", "client_secret": "second-secret-Qw3"},
]


async def test_one_client_per_customer_all_on_one_session_closed_together() -> None:
    config = make_config("http://127.0.0.1:9", CUSTOMERS, retry={"attempts": 5}, timeout=7)
    connections = Connections(config, SelfMetrics(CollectorRegistry()))
    clients = connections.open()
    assert list(clients) == ["first1", "second2"]
    assert [c.customer for c in clients.values()] == config.customers
    assert [c.policy.attempts for c in clients.values()] == [5, 5]
    sessions = [c.transport.session for c in clients.values()]
    assert sessions[0] is sessions[1]
    assert [c.tokens._transport for c in clients.values()] == [
        c.transport for c in clients.values()
    ]
    limiters = {id(c.transport.limiter) for c in clients.values()}
    assert len(limiters) == 1
    assert not sessions[0].closed
    await connections.close()
    assert sessions[0].closed


def test_the_customers_ca_file_is_trusted_beside_the_system_store(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(TEST_CA_PEM)
    plain, own = make_config(
        "https://example.invalid", [CUSTOMERS[0], {**CUSTOMERS[1], "ca_file": str(ca)}]
    ).customers
    assert ssl_context(plain) is True  # aiohttp's default verification
    context = ssl_context(own)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    assert context.cert_store_stats()["x509_ca"] == system + 1


# -- over real HTTP: one session, each customer's own trust, one cap --------------------------


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session honours proxy variables; these tests talk to 127.0.0.1 directly."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


async def test_a_ca_file_trusts_its_server_for_its_own_customer_only(
    tmp_path: Path, aiohttp_server: ServerFactory, no_proxy: None
) -> None:
    """Both customers share the session and its pool; the one without the CA file is refused
    even after the other left a verified connection to the same server in the pool."""
    cert, key = self_signed_cert(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    hostile = HostileUpstream()
    url = url_of(await aiohttp_server(hostile.app(), ssl=server_tls))
    assert url.startswith("https://")
    own, plain = CUSTOMERS[0]["customer_id"], CUSTOMERS[1]["customer_id"]
    config = make_config(url, [{**CUSTOMERS[0], "ca_file": str(cert)}, CUSTOMERS[1]])
    connections = Connections(config, SelfMetrics(CollectorRegistry()))
    clients = connections.open()
    current = f"{url}/licensing{CURRENT_SUFFIX}"
    try:
        assert (await clients[own].get_json("current", current)).status == 200
        with pytest.raises(TokenError, match="certificate verify failed"):
            await clients[plain].tokens.get()
        assert (await clients[own].get_json("current", current)).status == 200
    finally:
        await connections.close()
    assert hostile.count(TOKEN_SUFFIX, own) == 1
    assert hostile.count(CURRENT_SUFFIX, own) == 2
    assert hostile.count(TOKEN_SUFFIX, plain) == 0


async def test_requests_in_flight_across_customers_never_exceed_max_concurrency(
    aiohttp_server: ServerFactory, exporter_factory: ExporterFactory, no_proxy: None
) -> None:
    """Twenty customers poll at once: token requests and API requests together, three at a
    time, never more (the server would see twenty token requests at once without the cap)."""
    hostile = HostileUpstream()
    hostile.latency = 0.02
    url = url_of(await aiohttp_server(hostile.app()))
    customers = [
        {
            "customer_id": f"cust{n:02d}",
            "client_id": f"c{n}",
            "client_secret": f"secret-{n:02d}-Xy7",
        }
        for n in range(20)
    ]
    exporter = await exporter_factory(make_config(url, customers, max_concurrency=3))
    assert await exporter.poller.run_all_once()
    assert hostile.count(TOKEN_SUFFIX) == 20
    assert len(hostile.requests) > 20
    assert hostile.peak_in_flight == 3


async def test_a_request_waiting_out_its_backoff_holds_no_slot(
    aiohttp_server: ServerFactory, no_proxy: None
) -> None:
    """With room for one request in flight, a customer sleeping before its retry does not
    keep another customer from its token request and its GET."""
    first, second = CUSTOMERS[0]["customer_id"], CUSTOMERS[1]["customer_id"]
    hostile = HostileUpstream()
    statuses = iter([503])
    hostile.on(
        first,
        CURRENT_SUFFIX,
        lambda _: web.json_response(good_current(first), status=next(statuses, 200)),
    )
    url = url_of(await aiohttp_server(hostile.app()))
    sleeping, other_done = asyncio.Event(), asyncio.Event()

    async def sleep(_: float) -> None:
        sleeping.set()
        await other_done.wait()

    config = make_config(url, CUSTOMERS, max_concurrency=1)
    connections = Connections(config, SelfMetrics(CollectorRegistry()), sleep=sleep)
    clients = connections.open()
    current = f"{url}/licensing{CURRENT_SUFFIX}"
    try:
        retrying = asyncio.create_task(clients[first].get_json("current", current))
        await asyncio.wait_for(sleeping.wait(), 5)
        answer = await asyncio.wait_for(clients[second].get_json("current", current), 5)
        assert answer.status == 200
        other_done.set()
        assert (await asyncio.wait_for(retrying, 5)).status == 200
    finally:
        await connections.close()
    assert hostile.count(CURRENT_SUFFIX, first) == 2


async def test_waiting_for_a_slot_does_not_count_against_the_request_timeout(
    aiohttp_server: ServerFactory, no_proxy: None
) -> None:
    """One slot, answers taking 0.2 s, a 0.5 s timeout: the fourth customer waits 0.6 s for
    its turn and still gets its token (a pool limit alone would time it out while queued)."""
    hostile = HostileUpstream()
    hostile.latency = 0.2
    url = url_of(await aiohttp_server(hostile.app()))
    customers = [
        {"customer_id": f"cust{n}", "client_id": f"c{n}", "client_secret": f"secret-{n}-Xy7"}
        for n in range(4)
    ]
    config = make_config(url, customers, max_concurrency=1, timeout=0.5)
    connections = Connections(config, SelfMetrics(CollectorRegistry()))
    clients = connections.open()
    try:
        await asyncio.gather(*(client.tokens.get() for client in clients.values()))
    finally:
        await connections.close()
    assert hostile.count(TOKEN_SUFFIX) == 4
    assert hostile.peak_in_flight == 1


async def test_the_shared_session_goes_through_the_proxy_from_the_environment(
    aiohttp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = HostileUpstream()
    monkeypatch.setenv("HTTP_PROXY", url_of(await aiohttp_server(proxy.app())))
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    connections = Connections(
        make_config("http://citrix.invalid", CUSTOMERS), SelfMetrics(CollectorRegistry())
    )
    clients = connections.open()
    try:
        for client in clients.values():
            await client.tokens.get()
    finally:
        await connections.close()
    assert [(seen.host, seen.customer_id) for seen in proxy.requests] == [
        ("citrix.invalid", "first1"),
        ("citrix.invalid", "second2"),
    ]
