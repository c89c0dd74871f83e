"""Untrusted upstream answers (issue #9, upstream rows) against HostileUpstream over real HTTP.

Each test programs one bad answer for customer `bad1` and keeps `good1` on the same server, so
it also proves the bad answer costs the other customer nothing. Clocks, sleeps and jitter are
injected: every wait is asserted exactly.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry, generate_latest

from exporter.config import Config
from exporter.metrics import CustomerSeries, SelfMetrics
from exporter.redact import REDACTOR
from exporter.runtime import Exporter
from exporter.upstream.access import access_hint
from exporter.upstream.client import ApiClient
from exporter.upstream.errors import NotEntitledError, ThrottledError, UpstreamError
from exporter.upstream.odata import iter_pages
from exporter.upstream.transport import Transport
from tests.support.helpers import (
    Clock,
    SleepRecorder,
    make_config,
    missing,
    self_signed_cert,
    url_of,
    value,
)
from tests.support.hostile import CURRENT_SUFFIX, TOKEN_SUFFIX, HostileUpstream

BAD, GOOD = "bad1", "good1"
BAD_SECRET = "bad-secret-Qm7vX2pLw9"
GOOD_SECRET = "good-secret-Hn4wZ8rTk3"
CUSTOMERS = [
    {"customer_id": BAD, "client_id": "bad-client", "client_secret": BAD_SECRET},
    {"customer_id": GOOD, "client_id": "good-client", "client_secret": GOOD_SECRET},
]
NOW = 1_900_000_000.0  # 2030-03-17T17:46:40Z, a whole second
MIB = 1024 * 1024

ServerFactory = Callable[..., Awaitable[TestServer]]


def two_customers(url: str, **poll: Any) -> Config:
    return make_config(url, CUSTOMERS, **poll)


async def poll(exporter: Exporter) -> str:
    await exporter.poller.run_all_once()
    return generate_latest(exporter.registry).decode()


def error_of(exporter: Exporter, customer_id: str = BAD) -> str:
    (job,) = [j for j in exporter.poller.jobs if j.customer_id == customer_id]
    return job.status.last_error or ""


def assert_only_good_exported(text: str, exporter: Exporter) -> None:
    """The good customer's values are intact; nothing is exported as the bad one's."""
    assert value(text, "citrix_licenses_used", customer_id=GOOD) == 3
    assert value(text, "citrix_licenses_available", customer_id=GOOD) == 25
    assert value(text, "citrix_licenses_used", customer_id=BAD) is None
    assert error_of(exporter, GOOD) == ""


def own_text(series: CustomerSeries) -> str:
    """The exposition text of the own metrics (`SelfMetrics.series`)."""
    registry = CollectorRegistry()
    registry.register(series)
    return generate_latest(registry).decode()


@asynccontextmanager
async def open_client(
    url: str,
    customer_id: str = BAD,
    *,
    clock: Callable[[], float] | None = None,
    jitter: Callable[[], float] = lambda: 0.5,
    sleep: SleepRecorder | None = None,
    connector: aiohttp.BaseConnector | None = None,
    trust_env: bool = False,
    **poll: Any,
) -> AsyncIterator[ApiClient]:
    """An ApiClient (with its TokenManager) for one customer, wired as runtime.py wires it."""
    config = make_config(url, [c for c in CUSTOMERS if c["customer_id"] == customer_id], **poll)
    metrics = SelfMetrics(CollectorRegistry())
    async with aiohttp.ClientSession(connector=connector, trust_env=trust_env) as session:
        yield ApiClient(
            Transport(session),
            config.customers[0],
            config.poll,
            metrics,
            sleep=sleep or SleepRecorder(),
            clock=clock or Clock(NOW),
            jitter=jitter,
        )


def current_url(client: ApiClient) -> str:
    return client.base_url + "/licensing/license/enterprise/cloud/cvad/ud/current"


# --- 1. the token endpoint echoes the posted form --------------------------------------------


async def echo_form(request: web.Request) -> web.Response:
    form = (await request.read()).decode()
    return web.json_response(
        {
            "error": "invalid_client",
            "error_description": f"Invalid client. Request was: {form} (secret {BAD_SECRET})",
            "request": form,
        },
        status=400,
    )


async def echo_form_as_text(request: web.Request) -> web.Response:
    return web.Response(status=401, body=await request.read(), content_type="text/plain")


@pytest.mark.parametrize("handler", [echo_form, echo_form_as_text])
async def test_token_error_echoing_the_form_never_shows_the_secret(
    hostile: HostileUpstream, hostile_url: str, exporter_factory, caplog, handler
):
    hostile.on(BAD, TOKEN_SUFFIX, handler)
    exporter = await exporter_factory(two_customers(hostile_url))
    text = await poll(exporter)
    error = error_of(exporter)
    (posted,) = [seen.body for seen in hostile.requests if seen.customer_id == BAD]
    assert BAD_SECRET.encode() in posted  # the form really carried it, and came back
    assert error.startswith("token request")
    if handler is echo_form:
        assert "invalid_client: Invalid client." in error
    assert BAD_SECRET not in error and BAD_SECRET not in caplog.text
    assert_only_good_exported(text, exporter)


async def test_token_error_description_is_cut_to_a_line(hostile: HostileUpstream, hostile_url: str):
    hostile.on(
        BAD,
        TOKEN_SUFFIX,
        lambda _: web.json_response(
            {"error": "invalid_client", "error_description": "x" * 50_000}, status=400
        ),
    )
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError) as raised:
            await client.tokens.get()
    assert len(str(raised.value)) < 300
    assert "invalid_client: xxxx" in str(raised.value)


async def test_issued_token_is_known_to_the_redactor_before_use(
    hostile: HostileUpstream, hostile_url: str
):
    async with open_client(hostile_url) as client:
        token = await client.tokens.get()
    assert hostile.issued_tokens == [token]
    assert REDACTOR.scrub(f"said {token} plainly") == "said <redacted> plainly"


# --- 2. API errors echo the Authorization header ---------------------------------------------


def echo_headers(status: int) -> Callable[[web.Request], web.Response]:
    def handler(request: web.Request) -> web.Response:
        raw_token = request.headers["Authorization"].split("=", 1)[1]
        inner = json.dumps({"Code": status, "Message": f"Denied {raw_token}", "Details": "..."})
        body = {
            "detail": f"Denied {raw_token} / {request.headers['Authorization']}",
            "headers": dict(request.headers),
        }
        if status == 400:  # licensing validation errors nest JSON in a string
            body = {"error_description": inner, "headers": dict(request.headers)}
        return web.json_response(body, status=status)

    return handler


@pytest.mark.parametrize("status", [400, 403, 429, 500])
async def test_api_error_echoing_the_authorization_header_never_shows_the_token(
    hostile: HostileUpstream, hostile_url: str, exporter_factory, caplog, status: int
):
    hostile.on(BAD, CURRENT_SUFFIX, echo_headers(status))
    exporter = await exporter_factory(two_customers(hostile_url))
    text = await poll(exporter)
    error = error_of(exporter)
    assert error.startswith(f"licensing_current: HTTP {status} (Denied <redacted>")
    assert len(error) < 300
    assert "Citrix-CustomerId" not in error  # the echoed headers are not copied
    for token in hostile.issued_tokens:
        assert token not in error and token not in caplog.text
    assert_only_good_exported(text, exporter)


async def test_api_error_body_that_is_not_json_is_not_copied(
    hostile: HostileUpstream, hostile_url: str
):
    hostile.on(
        BAD,
        CURRENT_SUFFIX,
        lambda r: web.Response(status=403, text=f"<html>{dict(r.headers)}</html>"),
    )
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError) as raised:
            await client.get_json("licensing_current", current_url(client))
    assert str(raised.value) == f"licensing_current: HTTP 403; {access_hint('licensing_current')}"


# --- 3. bounded bodies -------------------------------------------------------------------------


@functools.cache
def gzip_bomb() -> bytes:
    """~1 MB of gzip that inflates to 1 GiB of zeros (built once, in 1 MiB steps)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MIB)
    parts = [compressor.compress(zeros) for _ in range(1024)]
    parts.append(compressor.flush())
    return b"".join(parts)


def huge_json() -> Iterator[bytes]:
    """200 MiB of one JSON string, produced a chunk at a time (never held whole)."""
    yield b'{"value": ["'
    chunk = b"a" * MIB
    for _ in range(200):
        yield chunk


def bomb_chunks() -> Iterator[bytes]:
    bomb = gzip_bomb()
    for start in range(0, len(bomb), 64 * 1024):
        yield bomb[start : start + 64 * 1024]


class Streamer:
    """Serves a body chunk by chunk; remembers each connection and whether the client hung up."""

    def __init__(self, chunks: Callable[[], Iterable[bytes]], **headers: str) -> None:
        self.chunks = chunks
        self.headers = {"Content-Type": "application/json", **headers}
        self.peers: list[object] = []
        self.hung_up = asyncio.Event()  # set when a body was not sent whole

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        self.peers.append(
            request.transport.get_extra_info("peername") if request.transport else None
        )
        response = web.StreamResponse(headers=self.headers)
        await response.prepare(request)
        sent_whole = False
        try:
            for chunk in self.chunks():
                await response.write(chunk)
            await response.write_eof()
            sent_whole = True
        except ConnectionError:
            pass  # the client hung up: what the tests want to see
        finally:  # reset, or cancelled by aiohttp on the lost connection
            if not sent_whole:
                self.hung_up.set()
        return response


def status_kib(field: str) -> int:
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        missing("/proc/self/status is not readable (the memory bound is measured on Linux)")
    (line,) = [line for line in lines if line.startswith(f"{field}:")]
    return int(line.split()[1])


@contextmanager
def peak_memory_growth() -> Iterator[list[int]]:
    """Bytes the process's peak RSS grew by inside the block (VmHWM reset first if allowed)."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        start = status_kib("VmRSS")
    except OSError:
        start = status_kib("VmHWM")  # cannot reset: growth of the old peak is a lower bound
    growth: list[int] = []
    yield growth
    growth.append((status_kib("VmHWM") - start) * 1024)


OVERSIZED = {
    "gzip bomb": (bomb_chunks, {"Content-Encoding": "gzip"}),
    "200 MiB JSON": (huge_json, {}),
}


@pytest.mark.parametrize("kind", list(OVERSIZED))
async def test_oversized_licensing_answer_fails_the_poll_within_bounded_memory(
    hostile: HostileUpstream, hostile_url: str, exporter_factory, kind: str
):
    chunks, headers = OVERSIZED[kind]
    streamer = Streamer(chunks, **headers)
    hostile.on(BAD, CURRENT_SUFFIX, streamer)
    exporter = await exporter_factory(two_customers(hostile_url))  # 32 MiB cap by default
    gzip_bomb()  # built before measuring: the test server's cost, not the client's
    with peak_memory_growth() as growth:
        text = await poll(exporter)
    assert error_of(exporter) == (
        "licensing_current: response larger than 32 MiB (poll.max_response_bytes); "
        "connection dropped"
    )
    assert growth[0] < 80 * MIB, f"peak RSS grew by {growth[0] / MIB:.0f} MiB"
    assert_only_good_exported(text, exporter)
    await poll(exporter)  # the dropped connection is not reused: the next poll opens another
    assert len(streamer.peers) == 2 and streamer.peers[0] != streamer.peers[1]
    if kind == "200 MiB JSON":  # the bomb (1 MB) fits the socket buffers; 200 MiB cannot
        await asyncio.wait_for(streamer.hung_up.wait(), 10)


@pytest.mark.parametrize("kind", list(OVERSIZED))
async def test_oversized_token_answer_is_refused_within_bounded_memory(
    hostile: HostileUpstream, hostile_url: str, exporter_factory, kind: str
):
    chunks, headers = OVERSIZED[kind]
    hostile.on(BAD, TOKEN_SUFFIX, Streamer(chunks, **headers))
    exporter = await exporter_factory(two_customers(hostile_url))
    gzip_bomb()
    with peak_memory_growth() as growth:
        text = await poll(exporter)
    assert error_of(exporter) == (
        "token request: response larger than 64 KiB (MAX_TOKEN_RESPONSE_BYTES); connection dropped"
    )
    assert growth[0] < 16 * MIB, f"peak RSS grew by {growth[0] / MIB:.0f} MiB"
    assert exporter.api_clients[BAD].tokens.expires_at is None
    assert_only_good_exported(text, exporter)


async def test_a_body_at_the_cap_is_read(hostile: HostileUpstream, hostile_url: str):
    body = json.dumps({"pad": "x" * 2000}).encode()
    hostile.on(BAD, CURRENT_SUFFIX, lambda _: web.Response(body=body))
    async with open_client(hostile_url, max_response_bytes=len(body)) as client:
        assert (await client.get_json("licensing_current", current_url(client))).data
    async with open_client(hostile_url, max_response_bytes=len(body) - 1) as client:
        with pytest.raises(UpstreamError, match="response larger than"):
            await client.get_json("licensing_current", current_url(client))


# --- 4. JSON nested deeper than any model ------------------------------------------------------

# (licensing, token): the token answer's own 64 KiB cap would stop 100k brackets first.
DEEP = {
    "unclosed [": (b"[" * 100_000, b"[" * 60_000),
    "balanced []": (b"[" * 100_000 + b"]" * 100_000, b"[" * 30_000 + b"]" * 30_000),
    "65 objects": (b'{"a":' * 65 + b"1" + b"}" * 65,) * 2,
}


@pytest.mark.parametrize("suffix", [CURRENT_SUFFIX, TOKEN_SUFFIX])
@pytest.mark.parametrize("kind", list(DEEP))
async def test_deeply_nested_json_is_a_clean_error(
    hostile: HostileUpstream, hostile_url: str, exporter_factory, suffix: str, kind: str
):
    body = DEEP[kind][suffix == TOKEN_SUFFIX]
    hostile.on(BAD, suffix, lambda _: web.Response(body=body, content_type="text/json"))
    exporter = await exporter_factory(two_customers(hostile_url))
    text = await poll(exporter)
    assert "response is nested too deeply (more than 64 levels)" in error_of(exporter)
    assert_only_good_exported(text, exporter)


async def test_json_as_deep_as_the_bound_is_parsed(hostile: HostileUpstream, hostile_url: str):
    body = b'{"a":' * 63 + b'["[[{not brackets}]]"]' + b"}" * 63  # 64 levels; brackets in a string
    hostile.on(BAD, CURRENT_SUFFIX, lambda _: web.Response(body=body))
    async with open_client(hostile_url) as client:
        data = (await client.get_json("licensing_current", current_url(client))).data
    for _ in range(63):
        data = data["a"]
    assert data == ["[[{not brackets}]]"]


# --- 5. no redirects ---------------------------------------------------------------------------


@pytest.fixture
async def elsewhere(aiohttp_server: ServerFactory) -> tuple[HostileUpstream, str]:
    """A second server, on another host name and port, that must never be called."""
    other = HostileUpstream()
    server = await aiohttp_server(other.app())
    return other, f"http://localhost:{server.port}"


def redirect(status: int, location: str) -> Callable[[web.Request], web.Response]:
    return lambda request: web.Response(
        status=status, headers={"Location": location + request.path_qs}
    )


async def test_token_post_redirected_elsewhere_is_not_followed(
    hostile: HostileUpstream, hostile_url: str, exporter_factory, elsewhere
):
    other, other_url = elsewhere
    hostile.on(BAD, TOKEN_SUFFIX, redirect(307, other_url))
    exporter = await exporter_factory(two_customers(hostile_url))
    text = await poll(exporter)
    assert other.requests == []  # the client secret never arrived there
    assert error_of(exporter) == "token request: HTTP 307 redirect to localhost refused"
    assert exporter.api_clients[BAD].tokens.expires_at is None
    assert_only_good_exported(text, exporter)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_licensing_get_redirected_elsewhere_is_not_followed(
    hostile: HostileUpstream, hostile_url: str, exporter_factory, elsewhere, status: int
):
    other, other_url = elsewhere
    hostile.on(BAD, CURRENT_SUFFIX, redirect(status, other_url))
    exporter = await exporter_factory(two_customers(hostile_url))
    text = await poll(exporter)
    assert other.requests == []  # neither the token nor Citrix-CustomerId went there
    assert error_of(exporter) == f"licensing_current: HTTP {status} redirect to localhost refused"
    assert hostile.count(CURRENT_SUFFIX, BAD) == 1  # and not retried
    assert_only_good_exported(text, exporter)


# --- 6. Retry-After: honoured within reason ----------------------------------------------------


def http_date(timestamp: float) -> str:
    return format_datetime(datetime.fromtimestamp(timestamp, UTC), usegmt=True)


def throttle(retry_after: str) -> Callable[[web.Request], web.Response]:
    return lambda _: web.json_response(
        {"detail": "slow down"}, status=429, headers={"Retry-After": retry_after}
    )


# With attempts 3, base 1 s, max_delay 30 s and jitter 0.5: backoff 0.75 s, then 1.5 s.
FALLBACK = [0.75, 1.5]


@pytest.mark.parametrize(
    ("retry_after", "sleeps"),
    [
        ("7", [7.0, 7.0]),
        ("0", [0.0, 0.0]),
        (http_date(NOW + 20), [20.0, 20.0]),  # an HTTP date is honoured too
        ("nan", FALLBACK),
        ("NaN", FALLBACK),
        ("-5", FALLBACK),
        ("-inf", FALLBACK),
        (http_date(NOW - 3600), FALLBACK),  # a date in the past
        ("soon", FALLBACK),
        ("Mon, 99 Foo 20x1 00:00:00 GMT", FALLBACK),
    ],
)
async def test_retry_after_within_a_poll_is_slept_or_falls_back_to_backoff(
    hostile: HostileUpstream, hostile_url: str, retry_after: str, sleeps: list[float]
):
    hostile.on(BAD, CURRENT_SUFFIX, throttle(retry_after))
    recorder = SleepRecorder()
    async with open_client(hostile_url, sleep=recorder) as client:
        with pytest.raises(ThrottledError, match="HTTP 429 \\(slow down\\) after 3 attempts"):
            await client.get_json("licensing_current", current_url(client))
        assert client.throttled_until == 0.0
        assert "citrix_upstream_throttled_until_timestamp_seconds{" not in own_text(
            client.metrics.series
        )
    assert recorder.delays == sleeps
    assert hostile.count(CURRENT_SUFFIX, BAD) == 3


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        ("120", 120.0),
        (http_date(NOW + 120), 120.0),
        ("900", 900.0),
        ("901", 900.0),  # poll.retry.max_retry_after
        ("inf", 900.0),
        ("Infinity", 900.0),
        ("1e308", 900.0),
        ("1" + "0" * 400, 900.0),
        ("Thu, 31 Dec 2099 23:59:59 GMT", 900.0),
    ],
)
async def test_long_retry_after_throttles_the_customer_at_most_max_retry_after(
    hostile: HostileUpstream, hostile_url: str, retry_after: str, wait: float
):
    hostile.on(BAD, CURRENT_SUFFIX, throttle(retry_after))
    clock = Clock(NOW)
    recorder = SleepRecorder()
    async with open_client(hostile_url, clock=clock, sleep=recorder) as client:
        url = current_url(client)
        own = client.metrics.series
        assert "citrix_upstream_throttled_until_timestamp_seconds{" not in own_text(own)
        with pytest.raises(ThrottledError, match="longer than this poll waits"):
            await client.get_json("licensing_current", url)
        assert client.throttled_until == NOW + wait
        # Exported: while the wait lasts no request is sent, so no 429 is counted.
        throttled = value(own_text(own), "citrix_upstream_throttled_until_timestamp_seconds")
        assert throttled == NOW + wait
        clock.now = NOW + wait - 1
        with pytest.raises(ThrottledError, match="not calling again for 1s"):
            await client.get_json("licensing_current", url)
        assert hostile.count(CURRENT_SUFFIX, BAD) == 1
        clock.now = NOW + wait  # the customer is called again once the wait is over
        hostile.on(BAD, CURRENT_SUFFIX, lambda _: web.json_response({"ok": True}))
        assert (await client.get_json("licensing_current", url)).data == {"ok": True}
    assert recorder.delays == []


# --- 7. a nextLink that loops --------------------------------------------------------------------

ODATA_SUFFIX = "/monitorodata/Sessions"


async def odata_rows(client: ApiClient, max_pages: int = 500) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    url = client.base_url + ODATA_SUFFIX
    async for page in iter_pages(
        client, "monitor_sessions", url, {"$top": "1"}, max_pages=max_pages
    ):
        rows.extend(page)
    return rows


@pytest.mark.parametrize("absolute", [True, False])
async def test_next_link_to_the_same_page_ends_the_poll(
    hostile: HostileUpstream, hostile_url: str, absolute: bool
):
    def same_page(request: web.Request) -> web.Response:
        link = str(request.url) if absolute else request.path_qs
        return web.json_response({"value": [{"Id": 1}], "@odata.nextLink": link})

    hostile.on(BAD, ODATA_SUFFIX, same_page)
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError, match="nextLink repeats a page already read"):
            await odata_rows(client)
    assert hostile.count(ODATA_SUFFIX, BAD) == 1


async def test_next_link_cycle_ends_at_the_first_repeat(hostile: HostileUpstream, hostile_url: str):
    def pages(request: web.Request) -> web.Response:  # 0 -> 1 -> 2 -> 1
        page = int(request.query.get("page", "0"))
        following = {0: 1, 1: 2, 2: 1}[page]
        return web.json_response(
            {"value": [{"Id": page}], "@odata.nextLink": f"{ODATA_SUFFIX}?page={following}"}
        )

    hostile.on(BAD, ODATA_SUFFIX, pages)
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError, match="repeats a page"):
            await odata_rows(client)
    assert hostile.count(ODATA_SUFFIX, BAD) == 3


async def test_endless_new_links_are_stopped_by_the_page_bound(
    hostile: HostileUpstream, hostile_url: str
):
    def pages(request: web.Request) -> web.Response:
        page = int(request.query.get("page", "0"))
        return web.json_response(
            {"value": [{"Id": page}], "@odata.nextLink": f"{ODATA_SUFFIX}?page={page + 1}"}
        )

    hostile.on(BAD, ODATA_SUFFIX, pages)
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError, match="more than 5 pages"):
            await odata_rows(client, max_pages=5)
    assert hostile.count(ODATA_SUFFIX, BAD) == 5


@pytest.mark.parametrize("link", [{"href": "x"}, 42, "http://[::1/x"])
async def test_next_link_that_is_not_a_url_is_a_clean_error(
    hostile: HostileUpstream, hostile_url: str, link: object
):
    hostile.on(
        BAD, ODATA_SUFFIX, lambda _: web.json_response({"value": [], "@odata.nextLink": link})
    )
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError, match="nextLink"):
            await odata_rows(client)


# --- 9. retry policy: exact waits, which statuses are retried --------------------------------


def answer(status: int) -> Callable[[web.Request], web.Response]:
    return lambda _: web.json_response({"detail": f"status {status}"}, status=status)


@pytest.mark.parametrize(
    ("jitter", "sleeps"),
    [
        (0.0, [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0]),  # half the ceiling
        (1.0, [1.0, 2.0, 4.0, 8.0, 16.0, 16.0, 16.0, 16.0, 16.0]),  # the whole ceiling
        (0.5, [0.75, 1.5, 3.0, 6.0, 12.0, 12.0, 12.0, 12.0, 12.0]),
    ],
)
async def test_backoff_doubles_up_to_max_delay(
    hostile: HostileUpstream, hostile_url: str, jitter: float, sleeps: list[float]
):
    hostile.on(BAD, CURRENT_SUFFIX, answer(503))
    recorder = SleepRecorder()
    retry = {"attempts": 10, "base_delay": 1, "max_delay": 16}
    async with open_client(hostile_url, jitter=lambda: jitter, sleep=recorder, retry=retry) as c:
        with pytest.raises(UpstreamError, match="HTTP 503 \\(status 503\\) after 10 attempts"):
            await c.get_json("licensing_current", current_url(c))
    assert recorder.delays == sleeps
    assert hostile.count(CURRENT_SUFFIX, BAD) == 10


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_transient_statuses_are_retried(
    hostile: HostileUpstream, hostile_url: str, status: int
):
    hostile.on(BAD, CURRENT_SUFFIX, answer(status))
    recorder = SleepRecorder()
    async with open_client(hostile_url, sleep=recorder) as client:
        with pytest.raises(UpstreamError, match=f"HTTP {status} .* after 3 attempts") as raised:
            await client.get_json("licensing_current", current_url(client))
    assert raised.value.status == status
    assert recorder.delays == FALLBACK
    assert hostile.count(CURRENT_SUFFIX, BAD) == 3


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, UpstreamError), (403, UpstreamError), (404, NotEntitledError), (501, UpstreamError)],
)
async def test_other_statuses_are_not_retried(
    hostile: HostileUpstream, hostile_url: str, status: int, error: type[UpstreamError]
):
    hostile.on(BAD, CURRENT_SUFFIX, answer(status))
    recorder = SleepRecorder()
    async with open_client(hostile_url, sleep=recorder) as client:
        with pytest.raises(error) as raised:
            await client.get_json("licensing_current", current_url(client))
    hint = f"; {access_hint('licensing_current')}" if status == 403 else ""
    assert str(raised.value) == f"licensing_current: HTTP {status} (status {status}){hint}"
    assert recorder.delays == []
    assert hostile.count(CURRENT_SUFFIX, BAD) == 1


async def test_401_after_a_fresh_token_is_not_retried_again(
    hostile: HostileUpstream, hostile_url: str
):
    hostile.on(BAD, CURRENT_SUFFIX, answer(401))
    recorder = SleepRecorder()
    async with open_client(hostile_url, sleep=recorder) as client:
        with pytest.raises(UpstreamError) as raised:
            await client.get_json("licensing_current", current_url(client))
    assert str(raised.value) == "licensing_current: HTTP 401 (status 401)"
    assert recorder.delays == []
    assert hostile.count(CURRENT_SUFFIX, BAD) == 2
    assert hostile.count(TOKEN_SUFFIX, BAD) == 2  # the retry used a new token
    first, second = [s.authorization for s in hostile.requests if s.path.endswith(CURRENT_SUFFIX)]
    assert first != second


# --- 9. nextLink to a foreign origin: identified by the foreign server never being called ----


def linking_to(origin: str) -> Callable[[web.Request], web.Response]:
    return lambda _: web.json_response(
        {"value": [{"Id": 1}], "@odata.nextLink": f"{origin}{ODATA_SUFFIX}?page=2"}
    )


async def test_next_link_to_another_host_on_the_same_port_is_not_followed(
    hostile: HostileUpstream, aiohttp_server: ServerFactory
):
    server = await aiohttp_server(hostile.app(), host="127.0.0.1")
    other = HostileUpstream()
    try:
        await aiohttp_server(other.app(), host="127.0.0.2", port=server.port)
    except OSError:
        missing("cannot listen on 127.0.0.2 (a second loopback address)")
    hostile.on(BAD, ODATA_SUFFIX, linking_to(f"http://127.0.0.2:{server.port}"))
    async with open_client(url_of(server)) as client:
        with pytest.raises(UpstreamError, match="nextLink"):
            await odata_rows(client)
    assert other.requests == []
    assert hostile.count(ODATA_SUFFIX, BAD) == 1
    await assert_reachable(f"http://127.0.0.2:{server.port}/", other)


async def test_next_link_to_another_port_is_not_followed(
    hostile: HostileUpstream, hostile_url: str, aiohttp_server: ServerFactory
):
    other = HostileUpstream()
    other_server = await aiohttp_server(other.app(), host="127.0.0.1")
    hostile.on(BAD, ODATA_SUFFIX, linking_to(f"http://127.0.0.1:{other_server.port}"))
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError, match="nextLink"):
            await odata_rows(client)
    assert other.requests == []
    await assert_reachable(f"http://127.0.0.1:{other_server.port}/", other)


async def assert_reachable(url: str, recorder: HostileUpstream, *, trust_env: bool = False) -> None:
    """Control: the recorder does see a request to `url`, so its silence above means something."""
    async with aiohttp.ClientSession(trust_env=trust_env) as session, session.get(url) as resp:
        assert resp.status in (200, 204)
    assert len(recorder.requests) == 1


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) TLS contexts for a throwaway certificate of 127.0.0.1."""
    cert, key = self_signed_cert(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


async def test_next_link_from_https_to_http_is_not_followed(
    hostile: HostileUpstream, aiohttp_server: ServerFactory, tls_pair, monkeypatch
):
    # Same host and port, plain http: a client that followed it would send the request through
    # HTTP_PROXY (https goes direct), where the recorder is listening.
    server_tls, client_tls = tls_pair
    server = await aiohttp_server(hostile.app(), ssl=server_tls)
    recorder = HostileUpstream()
    proxy = await aiohttp_server(recorder.app())
    monkeypatch.setenv("HTTP_PROXY", url_of(proxy))
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    plain = f"http://127.0.0.1:{server.port}"
    hostile.on(BAD, ODATA_SUFFIX, linking_to(plain))
    connector = aiohttp.TCPConnector(ssl=client_tls)
    async with open_client(url_of(server), connector=connector, trust_env=True) as client:
        assert client.base_url.startswith("https://")
        with pytest.raises(UpstreamError, match="nextLink"):
            await odata_rows(client)
    assert recorder.requests == []
    assert hostile.count(ODATA_SUFFIX, BAD) == 1
    await assert_reachable(plain + CURRENT_SUFFIX, recorder, trust_env=True)


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [("120", 120.0), ("inf", 900.0), (http_date(NOW + 60), 60.0), ("nan", 1.0), ("-1", 1.0)],
)
async def test_token_endpoint_retry_after_follows_the_same_policy(
    hostile: HostileUpstream, hostile_url: str, retry_after: str, wait: float
):
    hostile.on(
        BAD,
        TOKEN_SUFFIX,
        lambda _: web.json_response(
            {"error": "temporarily_unavailable"}, status=429, headers={"Retry-After": retry_after}
        ),
    )
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError, match="HTTP 429 \\(temporarily_unavailable\\)"):
            await client.tokens.get()
        assert client.tokens.next_attempt_at == NOW + wait  # unusable: the 1 s backoff


async def test_transaction_id_header_is_bounded_and_scrubbed(
    hostile: HostileUpstream, hostile_url: str
):
    def echo_token_as_txid(request: web.Request) -> web.Response:
        token = request.headers["Authorization"].split("=", 1)[1]
        return web.json_response(
            {"detail": "Access denied"},
            status=403,
            headers={"Citrix-TransactionId": f"{token} " + "x" * 5000},
        )

    hostile.on(BAD, CURRENT_SUFFIX, echo_token_as_txid)
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError) as raised:
            await client.get_json("licensing_current", current_url(client))
    hint = access_hint("licensing_current")
    assert str(raised.value).startswith(
        f"licensing_current: HTTP 403 (Access denied); {hint} (transaction id <redacted> xxx"
    )
    assert len(str(raised.value)) < 150 + len(hint)
