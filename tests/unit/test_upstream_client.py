"""The API client and the token manager, value by value, against HostileUpstream over real HTTP.

Each test pins what an operator or Citrix sees: the exact headers and form on the wire, the
exact counter samples, the exact error messages and log fields, the exact waits. Clocks,
sleeps and jitter are injected, so every number is asserted to the last digit.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry, generate_latest

from exporter import __version__
from exporter.metrics import SelfMetrics
from exporter.upstream.access import access_hint
from exporter.upstream.client import ApiClient, ApiResponse
from exporter.upstream.errors import NotEntitledError, ThrottledError, TokenError, UpstreamError
from exporter.upstream.token import TokenManager
from exporter.upstream.transport import Transport
from tests.support.helpers import Clock, SleepRecorder, make_config, url_of, value
from tests.support.hostile import (
    CURRENT_SUFFIX,
    HISTORY_SUFFIX,
    TOKEN_SUFFIX,
    HostileUpstream,
    Seen,
    good_current,
)

CUSTOMER = "cust1"
CLIENT_ID = "client-one"
SECRET = "secret-Tq3x9Lw2"
NOW = 1_900_000_000.0
ENDPOINT = "licensing_current"
HINT = access_hint(ENDPOINT)
ERROR_500 = {"detail": "There was a internal issue"}
ERROR_401 = {"detail": "Missing or invalid authentication details"}
OAUTH_400 = {"error": "invalid_client", "error_description": "Invalid client id or client secret."}
REFUSED = (
    "token request rejected with HTTP 400 (invalid_client: Invalid client id or client secret.)"
)
NO_TOKEN = "token request: answer has no usable access_token"
ISSUE_MESSAGE = (
    "unexpected upstream data (logged once, counted in citrix_upstream_data_issues_total)"
)


@dataclass
class Rig:
    """One customer's ApiClient and TokenManager, with what the test controls and reads."""

    client: ApiClient
    tokens: TokenManager
    registry: CollectorRegistry
    clock: Clock
    sleeps: SleepRecorder

    @property
    def current_url(self) -> str:
        return self.client.base_url + "/licensing/license/enterprise/cloud/cvad/ud/current"

    async def current(self) -> ApiResponse:
        return await self.client.get_json(ENDPOINT, self.current_url)

    def metric(self, name: str, **labels: str) -> float | None:
        return value(generate_latest(self.registry).decode(), name, customer_id=CUSTOMER, **labels)

    def requests(self, code: str, endpoint: str = ENDPOINT) -> float | None:
        return self.metric("citrix_api_requests_total", endpoint=endpoint, code=code)


@pytest.fixture
async def server(hostile: HostileUpstream, aiohttp_server: Callable[..., Any]) -> TestServer:
    return await aiohttp_server(hostile.app())


@asynccontextmanager
async def open_rig(
    server: TestServer, *, jitter: float = 0.5, timeout: float = 5.0, **poll: Any
) -> AsyncIterator[Rig]:
    """Wired as runtime.py wires it, with a fixed clock, recorded sleeps and fixed jitter."""
    url = url_of(server)
    customers = [{"customer_id": CUSTOMER, "client_id": CLIENT_ID, "client_secret": SECRET}]
    config = make_config(url, customers, timeout=timeout, **poll)
    registry = CollectorRegistry()
    metrics = SelfMetrics(registry)
    clock, sleeps = Clock(NOW), SleepRecorder()
    async with aiohttp.ClientSession() as session:
        client = ApiClient(
            Transport(session),
            config.customers[0],
            config.poll,
            metrics,
            sleep=sleeps,
            clock=clock,
            jitter=lambda: jitter,
        )
        yield Rig(client, client.tokens, registry, clock, sleeps)


@asynccontextmanager
async def hanging_rig(
    hostile: HostileUpstream, server: TestServer, suffix: str, **poll: Any
) -> AsyncIterator[Rig]:
    """A rig with a 0.1 s timeout whose upstream takes `suffix` requests and answers none of
    them until the rig is closed (so the server can shut down)."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    hostile.on(CUSTOMER, suffix, hang)
    try:
        async with open_rig(server, timeout=0.1, **poll) as rig:
            yield rig
    finally:
        release.set()


def answers(*responses: Callable[[], web.StreamResponse]) -> Callable[..., web.StreamResponse]:
    """A handler giving these answers in turn, then a good licensing answer."""
    queue = list(responses)

    def handler(request: web.Request) -> web.StreamResponse:
        return queue.pop(0)() if queue else good()

    return handler


def good() -> web.Response:
    return web.json_response(good_current(CUSTOMER))


def error(status: int, body: dict[str, Any] | None = None, **headers: str) -> Callable[..., Any]:
    payload = json.dumps(body).encode() if body is not None else b""
    return lambda *_: web.Response(status=status, body=payload, headers=headers)


def seen(hostile: HostileUpstream, suffix: str) -> list[Seen]:
    return [s for s in hostile.requests if s.path.endswith(suffix)]


def fields(caplog: pytest.LogCaptureFixture, message: str, *names: str) -> list[tuple[Any, ...]]:
    """The given extra fields of every log record with this exact message."""
    return [
        tuple(getattr(r, name, "<missing>") for name in names)
        for r in caplog.records
        if r.getMessage() == message
    ]


async def disconnect(request: web.Request) -> web.Response:
    """Hang up without an answer: the client sees a network error."""
    assert request.transport is not None
    request.transport.close()
    return web.Response()


# --- what goes on the wire -------------------------------------------------------------------


async def test_api_request_carries_exactly_the_documented_headers_and_params(
    hostile: HostileUpstream, server: TestServer
):
    async with open_rig(server) as rig:
        url = rig.client.base_url + "/licensing/license/enterprise/cloud/cvad/ud/historicalusage"
        result = await rig.client.get_json(
            "licensing_history", url, {"startDate": "2026-01", "endDate": "2026-11"}
        )
    (token,) = hostile.issued_tokens
    (request,) = seen(hostile, HISTORY_SUFFIX)
    assert request.method == "GET"
    assert request.query == "startDate=2026-01&endDate=2026-11"
    assert {k: v for k, v in request.raw_headers if k != "Host"} == {
        "Authorization": f"CwsAuth Bearer={token}",
        "Citrix-CustomerId": CUSTOMER,
        "Accept": "application/json",
        "Accept-Encoding": "gzip",
        "User-Agent": f"citrix-cloud-exporter/{__version__}",
    }
    assert result == ApiResponse(204, None, url + "?startDate=2026-01&endDate=2026-11")


async def test_token_request_posts_exactly_the_documented_form(
    hostile: HostileUpstream, server: TestServer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    async with open_rig(server) as rig:
        token = await rig.tokens.get()
        assert rig.tokens.url == f"{rig.client.base_url}/cctrustoauth2/{CUSTOMER}/tokens/clients"
    assert hostile.issued_tokens == [token]
    (request,) = seen(hostile, TOKEN_SUFFIX)
    assert (request.method, request.path) == ("POST", f"/cctrustoauth2/{CUSTOMER}/tokens/clients")
    assert parse_qs(request.body.decode(), strict_parsing=True) == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [SECRET],
    }
    headers = dict(request.raw_headers)
    assert headers["Accept"] == "application/json"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert fields(caplog, "fetched a bearer token", "customer_id") == [(CUSTOMER,)]


async def test_success_is_returned_parsed_and_counted_under_200(
    hostile: HostileUpstream, server: TestServer
):
    async with open_rig(server) as rig:
        assert rig.requests("200") is None
        result = await rig.current()
        assert result.status == 200
        assert result.data == good_current(CUSTOMER)
        assert result.url == rig.current_url
        assert rig.requests("200") == 1
        await rig.client.get_json("licensing_other", rig.current_url)
        assert rig.requests("200") == 1
        assert rig.requests("200", "licensing_other") == 1
        assert rig.sleeps.delays == []


# --- status rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"),
    [
        (404, {"detail": "resource not found"}, NotEntitledError, "HTTP 404 (resource not found)"),
        (403, {"detail": "Access denied"}, UpstreamError, f"HTTP 403 (Access denied); {HINT}"),
        (
            400,
            {"error_description": '{"Code":400,"Message":"Invalid time format."}'},
            UpstreamError,
            "HTTP 400 (Invalid time format.)",
        ),
        (501, None, UpstreamError, "HTTP 501"),
        (205, None, UpstreamError, "HTTP 205"),
    ],
)
async def test_final_statuses_fail_at_once_with_their_detail(
    hostile: HostileUpstream,
    server: TestServer,
    status: int,
    body: dict[str, Any] | None,
    kind: type[UpstreamError],
    message: str,
):
    hostile.on(CUSTOMER, CURRENT_SUFFIX, answers(error(status, body, **{"CC-TransactionId": "t7"})))
    async with open_rig(server) as rig:
        with pytest.raises(UpstreamError) as caught:
            await rig.current()
        assert type(caught.value) is kind
        assert str(caught.value) == f"{ENDPOINT}: {message} (transaction id t7)"
        assert (caught.value.status, caught.value.transaction_id) == (status, "t7")
        assert rig.requests(str(status)) == 1
        assert rig.sleeps.delays == []
    assert len(seen(hostile, CURRENT_SUFFIX)) == 1


@pytest.mark.parametrize("status", [300, 302, 399])
async def test_redirects_are_refused_naming_only_the_host(
    hostile: HostileUpstream, server: TestServer, status: int
):
    location = {"Location": "https://elsewhere.example/steal?token=1", "CC-TransactionId": "t3"}
    hostile.on(CUSTOMER, CURRENT_SUFFIX, answers(error(status, None, **location)))
    async with open_rig(server) as rig:
        with pytest.raises(UpstreamError) as caught:
            await rig.current()
        refused = f"{ENDPOINT}: HTTP {status} redirect to elsewhere.example refused"
        assert str(caught.value) == f"{refused} (transaction id t3)"
        assert (caught.value.status, caught.value.transaction_id) == (status, "t3")
        assert rig.requests(str(status)) == 1


async def test_a_200_that_is_not_json_fails_naming_endpoint_status_and_txid(
    hostile: HostileUpstream, server: TestServer
):
    not_json = error(200, None, **{"CC-TransactionId": "t5"})
    hostile.on(CUSTOMER, CURRENT_SUFFIX, answers(not_json))
    async with open_rig(server) as rig:
        with pytest.raises(UpstreamError) as caught:
            await rig.current()
        assert str(caught.value) == f"{ENDPOINT}: response is not JSON (transaction id t5)"
        assert (caught.value.status, caught.value.transaction_id) == (200, "t5")
        assert rig.requests("200") == 1


async def test_a_200_over_the_cap_fails_naming_the_setting_and_is_counted_under_200(
    hostile: HostileUpstream, server: TestServer
):
    hostile.on(CUSTOMER, CURRENT_SUFFIX, answers(lambda *_: web.Response(body=b" " * 1025)))
    async with open_rig(server, max_response_bytes=1024) as rig:
        with pytest.raises(UpstreamError) as caught:
            await rig.current()
        assert str(caught.value) == (
            f"{ENDPOINT}: response larger than 1 KiB (poll.max_response_bytes); connection dropped"
        )
        assert caught.value.status == 200
        assert rig.requests("200") == 1
        assert rig.sleeps.delays == []


async def test_an_oversized_error_body_leaves_the_status_alone_to_decide(
    hostile: HostileUpstream, server: TestServer
):
    huge = json.dumps({"detail": "x" * (64 * 1024)}).encode()
    hostile.on(CUSTOMER, CURRENT_SUFFIX, answers(lambda *_: web.Response(status=403, body=huge)))
    async with open_rig(server) as rig:
        with pytest.raises(UpstreamError) as caught:
            await rig.current()
        assert str(caught.value) == f"{ENDPOINT}: HTTP 403; {access_hint(ENDPOINT)}"
        assert rig.requests("403") == 1


async def test_5xx_is_retried_by_backoff_then_fails_with_the_attempt_count(
    hostile: HostileUpstream, server: TestServer
):
    txid = {"Citrix-TransactionId": "tx-1"}
    hostile.on(CUSTOMER, CURRENT_SUFFIX, answers(*[error(500, ERROR_500, **txid)] * 3))
    async with open_rig(server) as rig:
        with pytest.raises(UpstreamError) as caught:
            await rig.current()
        assert type(caught.value) is UpstreamError  # not ThrottledError: only a 429 is that
        assert str(caught.value) == (
            f"{ENDPOINT}: HTTP 500 (There was a internal issue) after 3 attempts "
            "(transaction id tx-1)"
        )
        assert (caught.value.status, caught.value.transaction_id) == (500, "tx-1")
        assert rig.sleeps.delays == [0.75, 1.5]  # jitter 0.5: 3/4 of 1 s, then of 2 s
        assert rig.requests("500") == 3
    assert len(seen(hostile, CURRENT_SUFFIX)) == 3


async def test_429_exhausting_the_attempts_is_a_throttled_error(
    hostile: HostileUpstream, server: TestServer
):
    hostile.on(CUSTOMER, CURRENT_SUFFIX, answers(*[error(429)] * 2))
    async with open_rig(server, retry={"attempts": 2}) as rig:
        with pytest.raises(ThrottledError) as caught:
            await rig.current()
        assert str(caught.value) == f"{ENDPOINT}: HTTP 429 after 2 attempts"
        assert caught.value.status == 429
        assert rig.sleeps.delays == [0.75]
        assert rig.requests("429") == 2


async def test_retry_after_of_exactly_max_delay_is_slept_within_the_poll(
    hostile: HostileUpstream, server: TestServer
):
    hostile.on(CUSTOMER, CURRENT_SUFFIX, answers(error(429, None, **{"Retry-After": "30"})))
    async with open_rig(server) as rig:  # max_delay 30 s
        assert (await rig.current()).status == 200
        assert rig.sleeps.delays == [30.0]
        assert rig.client.throttled_until == 0.0


async def test_retry_after_as_an_http_date_is_slept_until_then(
    hostile: HostileUpstream, server: TestServer
):
    when = format_datetime(datetime.fromtimestamp(NOW + 20, UTC), usegmt=True)
    hostile.on(CUSTOMER, CURRENT_SUFFIX, answers(error(503, None, **{"Retry-After": when})))
    async with open_rig(server) as rig:
        assert (await rig.current()).status == 200
        assert rig.sleeps.delays == [20.0]


async def test_retry_after_beyond_max_delay_throttles_the_customer_until_it_ends(
    hostile: HostileUpstream, server: TestServer
):
    long_wait = error(503, None, **{"Retry-After": "600", "Citrix-TransactionId": "tx-9"})
    hostile.on(CUSTOMER, CURRENT_SUFFIX, answers(long_wait))
    async with open_rig(server) as rig:
        with pytest.raises(ThrottledError) as caught:
            await rig.current()
        assert str(caught.value) == (
            f"{ENDPOINT}: HTTP 503; Retry-After 600s is longer than this poll waits "
            "(transaction id tx-9)"
        )
        assert (caught.value.status, caught.value.transaction_id) == (503, "tx-9")
        assert rig.client.throttled_until == NOW + 600
        rig.clock.now = NOW + 30
        with pytest.raises(ThrottledError) as caught:
            await rig.current()
        assert str(caught.value) == (
            f"{ENDPOINT}: throttled by Citrix Cloud (Retry-After), not calling again for 570s"
        )
        assert caught.value.status == 429
        assert len(seen(hostile, CURRENT_SUFFIX)) == 1  # no request while throttled
        rig.clock.now = NOW + 600  # the wait is over at its last second
        assert (await rig.current()).status == 200
        assert rig.sleeps.delays == []
        assert rig.requests("503") == 1
        assert rig.requests("200") == 1


# --- no response -----------------------------------------------------------------------------


async def test_network_errors_are_retried_counted_as_error_then_reported(
    hostile: HostileUpstream, server: TestServer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    hostile.on(CUSTOMER, CURRENT_SUFFIX, disconnect)
    async with open_rig(server) as rig:
        with pytest.raises(UpstreamError) as caught:
            await rig.current()
        reason = "ServerDisconnectedError: Server disconnected"
        assert str(caught.value) == f"{ENDPOINT}: no response: {reason}"
        assert (caught.value.status, caught.value.transaction_id) == (None, None)
        assert rig.sleeps.delays == [0.75, 1.5]
        assert rig.requests("error") == 3
    assert fields(
        caplog, "upstream request failed; retrying", "endpoint", "reason", "retry_in_seconds"
    ) == [(ENDPOINT, reason, 0.75), (ENDPOINT, reason, 1.5)]


async def test_a_timeout_is_a_network_error_named_without_a_trailing_colon(
    hostile: HostileUpstream, server: TestServer
):
    async with hanging_rig(hostile, server, CURRENT_SUFFIX, retry={"attempts": 2}) as rig:
        with pytest.raises(UpstreamError) as caught:
            await asyncio.wait_for(rig.current(), 10)  # fails, not hangs, without a timeout
        assert str(caught.value) == f"{ENDPOINT}: no response: TimeoutError"
        assert rig.sleeps.delays == [0.75]
        assert rig.requests("error") == 2


# --- log lines -------------------------------------------------------------------------------


async def test_each_retry_is_logged_with_reason_txid_and_rounded_wait(
    hostile: HostileUpstream, server: TestServer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    hostile.on(
        CUSTOMER,
        CURRENT_SUFFIX,
        answers(error(500, ERROR_500, **{"Citrix-TransactionId": "tx-1"}), error(502)),
    )
    async with open_rig(server, jitter=0.25) as rig:
        assert (await rig.current()).status == 200
        assert rig.sleeps.delays == [0.625, 1.25]
    names = ("customer_id", "endpoint", "reason", "txid", "retry_in_seconds")
    assert fields(caplog, "upstream request failed; retrying", *names) == [
        (CUSTOMER, ENDPOINT, f"{ENDPOINT}: HTTP 500 (There was a internal issue)", "tx-1", 0.62),
        (CUSTOMER, ENDPOINT, f"{ENDPOINT}: HTTP 502", "", 1.25),
    ]


async def test_invalid_utf8_is_repaired_counted_and_logged_as_a_data_issue(
    hostile: HostileUpstream, server: TestServer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    body = b'{"productName": "Xen\xffDesktop"}'
    hostile.on(CUSTOMER, CURRENT_SUFFIX, answers(lambda: web.Response(body=body)))
    async with open_rig(server) as rig:
        assert (await rig.current()).data == {"productName": "Xen\ufffdDesktop"}
        issues = rig.metric(
            "citrix_upstream_data_issues_total", collector="upstream", issue="invalid_utf8"
        )
        assert issues == 1
    assert fields(
        caplog, ISSUE_MESSAGE, "customer_id", "collector", "issue", "field", "detail"
    ) == [
        (
            CUSTOMER,
            "upstream",
            "invalid_utf8",
            ENDPOINT,
            "bytes that are not UTF-8 were replaced with U+FFFD",
        )
    ]


# --- 401: a new token, once ------------------------------------------------------------------


async def test_401_fetches_a_new_token_retries_once_and_logs_it(
    hostile: HostileUpstream, server: TestServer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    hostile.on(
        CUSTOMER,
        CURRENT_SUFFIX,
        answers(
            error(401, ERROR_401, **{"Citrix-TransactionId": "tx-4"}),
            good,
            error(401, ERROR_401),
            error(401, ERROR_401),
        ),
    )
    async with open_rig(server) as rig:
        assert (await rig.current()).status == 200  # 401, new token, 200
        with pytest.raises(UpstreamError) as caught:  # 401, new token, 401 again: give up
            await rig.current()
        assert (
            str(caught.value) == f"{ENDPOINT}: HTTP 401 (Missing or invalid authentication details)"
        )
        assert caught.value.status == 401
        assert rig.requests("401") == 3
        assert rig.requests("200") == 1
        assert rig.sleeps.delays == []
    first, second, third = hostile.issued_tokens
    used = [s.authorization for s in seen(hostile, CURRENT_SUFFIX)]
    assert used == [f"CwsAuth Bearer={t}" for t in (first, second, second, third)]
    message = "401 from Citrix Cloud; fetching a new token and retrying once"
    assert fields(caplog, message, "customer_id", "endpoint", "txid") == [
        (CUSTOMER, ENDPOINT, "tx-4"),
        (CUSTOMER, ENDPOINT, ""),
    ]
    assert fields(caplog, "upstream request failed; retrying", "endpoint") == []


async def test_the_retry_after_a_new_token_does_not_use_up_an_attempt(
    hostile: HostileUpstream, server: TestServer
):
    hostile.on(CUSTOMER, CURRENT_SUFFIX, answers(error(401), *[error(500)] * 3))
    async with open_rig(server) as rig:
        with pytest.raises(UpstreamError) as caught:
            await rig.current()
        assert str(caught.value) == f"{ENDPOINT}: HTTP 500 after 3 attempts"
        assert rig.sleeps.delays == [0.75, 1.5]
    assert len(seen(hostile, CURRENT_SUFFIX)) == 4
    assert len(hostile.issued_tokens) == 2


async def test_concurrent_401s_on_one_token_share_one_new_token(
    hostile: HostileUpstream, server: TestServer
):
    hostile.on(CUSTOMER, CURRENT_SUFFIX, answers(error(401), error(401)))
    async with open_rig(server) as rig:
        await rig.tokens.get()
        first, second = await asyncio.gather(rig.current(), rig.current())
        assert (first.status, second.status) == (200, 200)
    assert len(hostile.issued_tokens) == 2
    newest = f"CwsAuth Bearer={hostile.issued_tokens[-1]}"
    assert [s.authorization for s in seen(hostile, CURRENT_SUFFIX)][2:] == [newest, newest]


# --- tokens ----------------------------------------------------------------------------------


def token_answer(**fields: Any) -> Callable[..., web.Response]:
    return lambda *_: web.json_response(fields)


TOKEN_MESSAGE = "token refresh failed; using the current token until it expires"
ISSUE_MESSAGE = (
    "unexpected upstream data (logged once, counted in citrix_upstream_data_issues_total)"
)


async def test_token_counters_exist_at_zero_before_the_first_request(server: TestServer):
    async with open_rig(server) as rig:
        assert rig.metric("citrix_token_requests_total") == 0
        assert rig.metric("citrix_token_request_failures_total") == 0
        assert rig.tokens.expires_at is None
        assert rig.tokens.next_attempt_at == 0.0


@pytest.mark.parametrize(
    ("expires_in", "lifetime"),
    [("3600", 3600.0), (1800, 1800.0), ("1", 1.0), (0.5, 0.5), (" 900 ", 900.0)],
)
async def test_expires_in_as_string_or_number_sets_the_expiry(
    hostile: HostileUpstream, server: TestServer, expires_in: object, lifetime: float
):
    async with open_rig(server) as rig:
        hostile.on(
            CUSTOMER, TOKEN_SUFFIX, token_answer(access_token="tok-1", expires_in=expires_in)
        )
        assert await rig.tokens.get() == "tok-1"
        assert rig.tokens.expires_at == NOW + lifetime
        assert rig.metric("citrix_token_expiry_timestamp_seconds") == NOW + lifetime
        assert rig.metric("citrix_upstream_data_issues_total", collector="token") is None


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        ({}, "None"),
        ({"expires_in": None}, "None"),
        ({"expires_in": "junk"}, "'junk'"),
        ({"expires_in": "0"}, "'0'"),
        ({"expires_in": 0}, "0"),
        ({"expires_in": "-5"}, "'-5'"),
        ({"expires_in": "inf"}, "'inf'"),
        ({"expires_in": "NaN"}, "'NaN'"),
        ({"expires_in": [3600]}, "[3600]"),
        ({"expires_in": 10**400}, repr(10**400)[:180]),  # too large for a float; cut at 200
    ],
)
async def test_unusable_expires_in_means_an_hour_and_a_data_issue(
    hostile: HostileUpstream,
    server: TestServer,
    caplog: pytest.LogCaptureFixture,
    answer: dict[str, Any],
    shown: str,
):
    caplog.set_level(logging.INFO)
    answer = {"access_token": "tok-1", **answer}
    hostile.on(CUSTOMER, TOKEN_SUFFIX, lambda request: web.json_response(answer))
    async with open_rig(server) as rig:
        assert await rig.tokens.get() == "tok-1"
        assert rig.tokens.expires_at == NOW + 3600
        issues = rig.metric(
            "citrix_upstream_data_issues_total", collector="token", issue="bad_number"
        )
        assert issues == 1
    assert fields(
        caplog, ISSUE_MESSAGE, "customer_id", "collector", "issue", "field", "detail"
    ) == [(CUSTOMER, "token", "bad_number", "expires_in", f"unusable expires_in {shown}")]


@pytest.mark.parametrize(("lifetime", "margin"), [(3600, 300.0), (1000, 200.0), (2000, 300.0)])
async def test_token_is_refreshed_exactly_a_margin_before_expiry(
    hostile: HostileUpstream, server: TestServer, lifetime: int, margin: float
):
    async def issue(request: web.Request) -> web.Response:
        return web.json_response(
            {"access_token": hostile.issue_token(), "expires_in": str(lifetime)}
        )

    hostile.on(CUSTOMER, TOKEN_SUFFIX, issue)
    async with open_rig(server) as rig:
        first = await rig.tokens.get()
        rig.clock.now = NOW + lifetime - margin - 0.001
        assert await rig.tokens.get() == first
        rig.clock.now = NOW + lifetime - margin
        second = await rig.tokens.get()
        assert second != first
        assert rig.tokens.expires_at == rig.clock.now + lifetime
        assert rig.metric("citrix_token_requests_total") == 2


async def test_failed_refresh_keeps_the_current_token_and_says_so_once_per_failure(
    hostile: HostileUpstream, server: TestServer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    refusals = [error(400, OAUTH_400)] * 5
    queue = [token_answer(access_token="tok-1", expires_in="1000"), *refusals]
    hostile.on(CUSTOMER, TOKEN_SUFFIX, lambda request: queue.pop(0)())
    async with open_rig(server) as rig:
        assert await rig.tokens.get() == "tok-1"
        rig.clock.now = NOW + 800  # due for refresh; the refresh is refused
        assert await rig.tokens.get() == "tok-1"
        assert rig.tokens.next_attempt_at == NOW + 801  # base_delay 1 s after failure 1
        rig.clock.now = NOW + 801
        assert await rig.tokens.get() == "tok-1"
        assert rig.tokens.next_attempt_at == NOW + 803  # 2 s after failure 2
        assert rig.metric("citrix_token_request_failures_total") == 2
    reason = (
        "token request rejected with HTTP 400 (invalid_client: Invalid client id or client secret.)"
    )
    assert fields(caplog, TOKEN_MESSAGE, "customer_id", "error") == [(CUSTOMER, reason)] * 2


async def test_no_token_and_a_refused_request_reports_the_wait(
    hostile: HostileUpstream, server: TestServer
):
    hostile.on(CUSTOMER, TOKEN_SUFFIX, lambda request: error(400, OAUTH_400)())
    async with open_rig(server) as rig:
        reason = REFUSED
        with pytest.raises(TokenError) as caught:
            await rig.tokens.get()
        assert str(caught.value) == reason
        assert caught.value.status == 400
        rig.clock.now = NOW + 0.4
        with pytest.raises(TokenError) as caught:
            await rig.tokens.get()
        assert str(caught.value) == f"{reason} (next token request in 1s)"
        assert rig.metric("citrix_token_requests_total") == 1


async def test_token_endpoint_retry_after_sets_the_next_attempt(
    hostile: HostileUpstream, server: TestServer
):
    when = format_datetime(datetime.fromtimestamp(NOW + 120, UTC), usegmt=True)
    throttled = error(429, None, **{"Retry-After": when, "Citrix-TransactionId": "tt-1"})
    hostile.on(CUSTOMER, TOKEN_SUFFIX, lambda request: throttled())
    async with open_rig(server) as rig:
        with pytest.raises(TokenError) as caught:
            await rig.tokens.get()
        assert str(caught.value) == "token request failed with HTTP 429 (transaction id tt-1)"
        assert (caught.value.status, caught.value.transaction_id) == (429, "tt-1")
        assert rig.tokens.next_attempt_at == NOW + 120
        rig.clock.now = NOW + 60
        with pytest.raises(TokenError, match=r"\(next token request in 60s\)$"):
            await rig.tokens.get()


@pytest.mark.parametrize(
    ("handler", "message", "status"),
    [
        (disconnect, "token request failed: ServerDisconnectedError: Server disconnected", None),
        (
            lambda r: web.Response(body=b"<html>", headers={"CC-TransactionId": "tk-2"}),
            "token request: response is not JSON (transaction id tk-2)",
            200,
        ),
        (
            lambda r: web.Response(body=b" " * (64 * 1024 + 1)),
            "token request: response larger than 64 KiB (MAX_TOKEN_RESPONSE_BYTES); "
            "connection dropped",
            200,
        ),
        (
            lambda r: web.json_response({"token": "x"}, headers={"CC-TransactionId": "tk-3"}),
            f"{NO_TOKEN} (transaction id tk-3)",
            200,
        ),
        (
            token_answer(access_token="two words"),
            NO_TOKEN,
            200,
        ),
        (
            lambda r: web.json_response(["tok"]),
            NO_TOKEN,
            200,
        ),
        (
            lambda r: error(300, None, Location="https://elsewhere.example/x")(),
            "token request: HTTP 300 redirect to elsewhere.example refused",
            300,
        ),
        (lambda r: error(500, None)(), "token request failed with HTTP 500", 500),
    ],
)
async def test_token_failures_are_counted_with_a_safe_message(
    hostile: HostileUpstream,
    server: TestServer,
    handler: Callable[..., Any],
    message: str,
    status: int | None,
):
    hostile.on(CUSTOMER, TOKEN_SUFFIX, handler)
    async with open_rig(server) as rig:
        with pytest.raises(TokenError) as caught:
            await rig.tokens.get()
        assert str(caught.value) == message
        assert caught.value.status == status
        assert rig.metric("citrix_token_requests_total") == 1
        assert rig.metric("citrix_token_request_failures_total") == 1
        assert rig.metric("citrix_token_expiry_timestamp_seconds") is None


async def test_a_token_request_that_times_out_is_a_token_error(
    hostile: HostileUpstream, server: TestServer
):
    async with hanging_rig(hostile, server, TOKEN_SUFFIX) as rig:
        with pytest.raises(TokenError) as caught:
            await asyncio.wait_for(rig.tokens.get(), 10)  # fails, not hangs, without a timeout
        assert str(caught.value) == "token request failed: TimeoutError"
        assert rig.metric("citrix_token_request_failures_total") == 1


async def test_a_success_resets_the_token_backoff(hostile: HostileUpstream, server: TestServer):
    queue = [
        error(400, OAUTH_400),
        token_answer(access_token="tok-1", expires_in="1000"),
        error(400, OAUTH_400),
    ]
    hostile.on(CUSTOMER, TOKEN_SUFFIX, lambda request: queue.pop(0)())
    async with open_rig(server) as rig:
        with pytest.raises(TokenError):
            await rig.tokens.get()
        rig.clock.now = rig.tokens.next_attempt_at
        assert await rig.tokens.get() == "tok-1"
        assert rig.tokens.next_attempt_at == 0.0
        rig.clock.now = NOW + 1 + 1000  # expired: the next failure is failure 1 again
        with pytest.raises(TokenError):
            await rig.tokens.get()
        assert rig.tokens.next_attempt_at == rig.clock.now + 1
