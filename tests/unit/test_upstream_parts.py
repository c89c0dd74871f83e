"""The small parts of the upstream layer, value by value (issue #10: mutation score).

`body.py`, `detail.py`, `odata.py`, `retry.py` and `errors.py` are mostly small pure functions:
they are tested directly with exact inputs and exact outputs (messages, numbers, cut lengths,
boundaries). What only shows over the wire (bounded reads, paging through a real ApiClient,
header names as aiohttp delivers them) is tested over HTTP against HostileUpstream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import CollectorRegistry

from exporter.config import RetryConfig
from exporter.metrics import SelfMetrics
from exporter.upstream.body import (
    MAX_JSON_DEPTH,
    ResponseTooLarge,
    describe_bytes,
    parse_json,
    read_bounded,
    too_deep,
)
from exporter.upstream.client import ApiClient
from exporter.upstream.detail import (
    MAX_DETAIL_CHARS,
    MAX_ERROR_BODY_BYTES,
    MAX_TRANSACTION_ID_CHARS,
    error_detail,
    exception_reason,
    oauth_reason,
    redirect_host,
    safe_text,
    transaction_id,
)
from exporter.upstream.errors import UpstreamError
from exporter.upstream.odata import iter_pages, resolve_next_link
from exporter.upstream.retry import RetryPolicy, parse_retry_after
from exporter.upstream.transport import Transport
from tests.support.helpers import SleepRecorder, make_config
from tests.support.hostile import CURRENT_SUFFIX, HostileUpstream

CUSTOMER = "parts1"
NOW = 1_900_000_000.0  # 2030-03-17T17:46:40Z, a whole second
ODATA_SUFFIX = "/monitorodata/Machines"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def headers(**fields: str) -> CIMultiDict[str]:
    """Headers as aiohttp hands them over (case-insensitive), `_` spelled as `-`."""
    return CIMultiDict((name.replace("_", "-"), text) for name, text in fields.items())


# --- body.py: how deep is too deep ---------------------------------------------------------------


def test_depth_bound_is_exact_at_the_limit():
    assert MAX_JSON_DEPTH == 64
    assert too_deep(nested(64)) is False
    assert too_deep(nested(65)) is True
    assert too_deep(nested(3), limit=3) is False
    assert too_deep(nested(4), limit=3) is True


def test_depth_counts_objects_and_arrays_with_values_between_them():
    doc: Any = {"leaf": [1, "two", None]}
    for _ in range(62):  # 62 objects around an object holding a list: 64 levels
        doc = {"a": doc, "n": 1.5}
    body = json.dumps(doc).encode()
    assert too_deep(body) is False
    assert too_deep(json.dumps([doc]).encode()) is True


def test_brackets_inside_strings_do_not_count():
    body = json.dumps(["[" * 200, "{" * 200, 'quote \\" and ]]]]']).encode()
    assert too_deep(body) is False
    assert too_deep(b'"' + b"[" * 100 + b'"') is False


def test_shallow_empty_and_unbalanced_bodies_are_not_too_deep():
    assert too_deep(b"") is False
    assert too_deep(b"{}") is False
    assert too_deep(b"[[]]") is False
    assert too_deep(b"[" * 100_000) is False  # unbalanced: the parser reports it
    # 64 levels paired off leave a lone "]" that can never pair: not "too deep" but broken.
    assert too_deep(b"]" + nested(64)) is False


# --- body.py: parse_json -------------------------------------------------------------------------


def test_parse_json_returns_the_document():
    assert parse_json(b'{"value": [1, 2]}', "ep") == {"value": [1, 2]}
    assert parse_json(nested(64), "ep") == json.loads(nested(64))


def test_invalid_utf8_is_replaced_and_reported_once():
    repairs: list[int] = []
    data = parse_json(
        b'{"name": "a\xffb", "ok": "\xc3\xa9"}', "ep", on_repair=lambda: repairs.append(1)
    )
    assert data == {"name": "a\ufffdb", "ok": "é"}
    assert repairs == [1]
    assert parse_json(b'["\xfe"]', "ep") == ["\ufffd"]  # no callback: repaired all the same


def test_valid_utf8_is_not_reported_as_repaired():
    repairs: list[int] = []
    assert parse_json('["é"]'.encode(), "ep", on_repair=lambda: repairs.append(1)) == ["é"]
    assert repairs == []


@pytest.mark.parametrize(
    "body",
    [nested(65), b"[" * 100_000],  # refused by the depth check / by the parser's recursion limit
    ids=["too-deep", "recursion"],
)
def test_too_deep_json_is_a_clean_error_with_status_and_transaction_id(body: bytes):
    with pytest.raises(UpstreamError) as caught:
        parse_json(body, "monitor_machines", 200, "tx-7")
    assert str(caught.value) == (
        "monitor_machines: response is nested too deeply (more than 64 levels)"
        " (transaction id tx-7)"
    )
    assert (caught.value.status, caught.value.transaction_id) == (200, "tx-7")


@pytest.mark.parametrize("body", [b"<html>nope</html>", b"", b'{"a": 1', b"\xff\xfe"])
def test_body_that_is_not_json_is_a_clean_error(body: bytes):
    with pytest.raises(UpstreamError) as caught:
        parse_json(body, "licensing_current", 200, "tx-8")
    assert str(caught.value) == "licensing_current: response is not JSON (transaction id tx-8)"
    assert (caught.value.status, caught.value.transaction_id) == (200, "tx-8")


def test_describe_bytes_uses_the_unit_a_human_would_configure():
    assert describe_bytes(32 * 1024 * 1024) == "32 MiB"
    assert describe_bytes(64 * 1024) == "64 KiB"
    assert describe_bytes(1536) == "1536 bytes"
    assert describe_bytes(1000) == "1000 bytes"


# --- body.py: read_bounded over HTTP -------------------------------------------------------------


async def body_server(aiohttp_server: Any, pieces: list[bytes]) -> str:
    """A server that streams `pieces` (each written and drained separately) at /."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for piece in pieces:
            await resp.write(piece)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/", handler)
    server = await aiohttp_server(app)
    return str(server.make_url("/"))


async def read_from(url: str, limit: int) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return await read_bounded(resp, limit, "licensing_current", "poll.max_response_bytes")


async def test_a_body_of_many_chunks_is_read_whole(aiohttp_server):
    pieces = [bytes([65 + i]) * 50_000 for i in range(4)]  # 200,000 bytes: several reads
    url = await body_server(aiohttp_server, pieces)
    assert await read_from(url, 200_000) == b"".join(pieces)  # exactly at the cap


async def test_one_byte_over_the_cap_is_refused_with_its_setting_named(aiohttp_server):
    url = await body_server(aiohttp_server, [b"x" * 1025])  # one piece, larger than the cap
    with pytest.raises(ResponseTooLarge) as caught:
        await read_from(url, 1024)
    assert str(caught.value) == (
        "licensing_current: response larger than 1 KiB (poll.max_response_bytes); "
        "connection dropped"
    )
    assert caught.value.status == 200


# --- detail.py: safe_text ------------------------------------------------------------------------


def test_safe_text_puts_text_on_one_line():
    assert safe_text("  a \n\t b\r\nc  ") == "a b c"


def test_safe_text_cuts_at_its_limit_with_an_ellipsis():
    assert MAX_DETAIL_CHARS == 200
    assert safe_text("x" * 200) == "x" * 200
    assert safe_text("x" * 201) == "x" * 199 + "…"
    assert safe_text("abcdef", 5) == "abcd…"
    assert safe_text("abcde", 5) == "abcde"


def test_safe_text_scrubs_before_cutting():
    assert safe_text("client_secret=s3cr3t-value-123 rest") == "client_secret=<redacted> rest"
    # The secret would survive a cut that came first; scrubbed first, the cut shows no part of it.
    assert safe_text("client_secret=s3cr3t-value-123", 20) == "client_secret=<reda…"


# --- detail.py: transaction id -------------------------------------------------------------------


def test_transaction_id_from_either_header_name():
    assert transaction_id(headers(Citrix_TransactionId="ctx-1")) == "ctx-1"
    assert transaction_id(headers(CC_TransactionId="cc-2")) == "cc-2"
    both = headers(Citrix_TransactionId="ctx-1", CC_TransactionId="cc-2")
    assert transaction_id(both) == "ctx-1"
    assert transaction_id(headers(Citrix_TransactionId="", CC_TransactionId="cc-2")) == "cc-2"


def test_transaction_id_absent_or_blank_is_none():
    assert transaction_id(headers()) is None
    assert transaction_id(headers(Citrix_TransactionId="")) is None
    assert transaction_id(headers(Citrix_TransactionId=" \t ")) is None


def test_transaction_id_is_bounded_and_on_one_line():
    assert MAX_TRANSACTION_ID_CHARS == 64
    assert transaction_id(headers(Citrix_TransactionId="t" * 64)) == "t" * 64
    assert transaction_id(headers(Citrix_TransactionId="t" * 65)) == "t" * 63 + "…"
    assert transaction_id(headers(Citrix_TransactionId="a\tb  c")) == "a b c"


# --- detail.py: redirect host --------------------------------------------------------------------


def test_redirect_host_keeps_only_the_host():
    where = headers(Location="https://Login.Example.COM:8443/p?client_secret=zzzzzz#f")
    assert redirect_host(where) == "login.example.com"


@pytest.mark.parametrize(
    "location",
    [None, "", "/relative/path?x=1", "http://[::1/broken", "mailto:someone"],
    ids=["absent", "empty", "relative", "invalid", "no-host"],
)
def test_redirect_without_a_usable_host_names_an_unnamed_location(location: str | None):
    where = headers() if location is None else headers(Location=location)
    assert redirect_host(where) == "an unnamed location"


def test_redirect_host_is_cut_at_100_characters():
    host = "h" * 96 + ".com"  # 100 characters
    assert redirect_host(headers(Location=f"https://{host}/")) == host
    longer = "h" * 97 + ".com"  # 101 characters
    assert redirect_host(headers(Location=f"https://{longer}/")) == "h" * 97 + ".c" + "…"


# --- detail.py: error_detail ---------------------------------------------------------------------


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def test_error_detail_prefers_detail():
    assert error_detail(body(detail="Not entitled", error="e")) == "Not entitled"


def test_error_detail_reads_the_message_of_json_in_json_error_description():
    description = json.dumps({"Message": "Customer is locked", "Code": 17})
    assert error_detail(body(error_description=description, error="e")) == "Customer is locked"


def test_error_detail_shows_an_error_description_that_is_not_json_in_json():
    assert error_detail(body(error_description="plain words", error="e")) == "plain words"
    no_message = json.dumps({"Message": 5})
    assert error_detail(body(error_description=no_message)) == '{"Message": 5}'
    assert error_detail(body(error_description="[1, 2]")) == "[1, 2]"


def test_error_detail_falls_back_to_the_error_code():
    assert error_detail(body(error="invalid_client")) == "invalid_client"
    # Fields that are empty or not strings are skipped, never shown.
    assert error_detail(body(detail="", error_description="", error="code1")) == "code1"
    assert error_detail(body(detail=5, error_description=7, error="code2")) == "code2"
    assert error_detail(body(detail={"x": 1}, error_description=["y"], error="code3")) == "code3"


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[1, 2]", b'"text"', body(other="x"), body(error=5), b"[" * 10_000],
)
def test_error_detail_is_empty_without_a_human_field(raw: bytes):
    assert error_detail(raw) == ""


def test_error_detail_is_scrubbed_and_bounded():
    assert (
        error_detail(body(detail="Bad client_secret=abcdef123")) == "Bad client_secret=<redacted>"
    )
    assert error_detail(body(detail="d" * 500)) == "d" * 199 + "…"
    inner = json.dumps({"Message": "m\n" * 300})
    assert error_detail(body(error_description=inner)) == "m " * 99 + "m…"


def test_error_detail_reads_only_the_first_64_kib():
    assert MAX_ERROR_BODY_BYTES == 64 * 1024
    head = b'{"detail": "fits"}'
    assert error_detail(head + b" " * (MAX_ERROR_BODY_BYTES - len(head))) == "fits"
    padded = b'{"detail": "cut off"' + b" " * MAX_ERROR_BODY_BYTES + b"}"
    assert error_detail(padded) == ""


# --- detail.py: oauth_reason ---------------------------------------------------------------------


def test_oauth_reason_is_code_and_description():
    assert oauth_reason(body(error="invalid_client", error_description="Bad creds")) == (
        "invalid_client: Bad creds"
    )
    assert oauth_reason(body(error="invalid_client")) == "invalid_client"
    assert oauth_reason(body(error="invalid_client", error_description="")) == "invalid_client"
    assert oauth_reason(body(error="invalid_client", error_description=5)) == "invalid_client"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"<html/>",
        b"[1]",
        body(error_description="no code"),
        body(error="", error_description="empty code"),
        body(error=5, error_description="numeric code"),
    ],
)
def test_oauth_reason_is_empty_without_an_error_code(raw: bytes):
    assert oauth_reason(raw) == ""


def test_oauth_reason_is_scrubbed_and_bounded():
    reason = oauth_reason(body(error="e", error_description="client_secret=abcdef123 " + "w" * 300))
    assert reason == ("e: client_secret=<redacted> " + "w" * 300)[:199] + "…"


# --- errors.py -----------------------------------------------------------------------------------


def test_upstream_error_carries_status_transaction_id_and_a_scrubbed_message():
    err = UpstreamError("ep: HTTP 400: client_secret=abcdef123 echoed", 400, "tx-9")
    assert str(err) == "ep: HTTP 400: client_secret=<redacted> echoed (transaction id tx-9)"
    assert (err.status, err.transaction_id) == (400, "tx-9")
    plain = UpstreamError("ep: no response")
    assert str(plain) == "ep: no response"
    assert (plain.status, plain.transaction_id) == (None, None)


# --- odata.py: resolve_next_link -----------------------------------------------------------------

BASE = "https://api-us.cloud.com"
PAGE1 = BASE + "/monitorodata/Machines?$top=2"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("/monitorodata/Machines?$skip=2", BASE + "/monitorodata/Machines?$skip=2"),
        ("Machines?$skip=2", BASE + "/monitorodata/Machines?$skip=2"),
        (BASE + "/monitorodata/Machines?$skip=2", BASE + "/monitorodata/Machines?$skip=2"),
        ("https://api-us.cloud.com:443/m?p=2", "https://api-us.cloud.com:443/m?p=2"),
        ("HTTPS://API-US.Cloud.COM/m?p=2", "https://API-US.Cloud.COM/m?p=2"),
    ],
    ids=["path", "relative", "absolute", "default-port", "case"],
)
def test_next_link_on_the_customers_origin_is_resolved(link: str, expected: str):
    assert resolve_next_link(PAGE1, link, BASE) == expected


@pytest.mark.parametrize(
    ("request_url", "link", "base"),
    [
        ("http://h.example/o", "http://h.example:80/o?p=2", "http://h.example"),
        ("http://h.example:80/o", "/o?p=2", "HTTP://H.Example"),
        ("https://h.example/o", "https://h.example/o?p=2", "https://h.example:443"),
    ],
)
def test_default_ports_are_the_same_origin(request_url: str, link: str, base: str):
    assert resolve_next_link(request_url, link, base) == resolve_next_link(
        request_url, link, request_url
    )


@pytest.mark.parametrize(
    ("link", "where"),
    [
        ("https://evil.example/m?p=2", "https://evil.example:443"),
        ("http://api-us.cloud.com/m?p=2", "http://api-us.cloud.com:80"),
        ("https://api-us.cloud.com:8443/m", "https://api-us.cloud.com:8443"),
        ("https://api-us.cloud.com:80/m", "https://api-us.cloud.com:80"),
        ("//EVIL.example/m", "https://evil.example:443"),
        ("file:///etc/passwd", "file://:None"),
    ],
)
def test_next_link_to_another_origin_is_refused_with_the_origin_named(link: str, where: str):
    with pytest.raises(UpstreamError) as caught:
        resolve_next_link(PAGE1, link, BASE)
    assert str(caught.value) == (
        f"refusing to follow @odata.nextLink to {where}: not the customer's API host"
    )
    assert caught.value.status is None


def test_refused_origin_is_cut_at_120_characters():
    host = "e" * 200
    with pytest.raises(UpstreamError) as caught:
        resolve_next_link(PAGE1, f"https://{host}/m", BASE)
    shown = ("https://" + host + ":443")[:119] + "…"
    assert str(caught.value) == (
        f"refusing to follow @odata.nextLink to {shown}: not the customer's API host"
    )


@pytest.mark.parametrize("link", [42, ["x"], {"href": "/m"}, None])
def test_next_link_that_is_not_a_string_is_refused(link: object):
    with pytest.raises(UpstreamError) as caught:
        resolve_next_link(PAGE1, link, BASE)
    assert str(caught.value) == "@odata.nextLink is not a string"


@pytest.mark.parametrize("link", ["http://[::1/m", "https://api-us.cloud.com:99999/m"])
def test_next_link_that_is_not_a_valid_url_is_refused(link: str):
    with pytest.raises(UpstreamError) as caught:
        resolve_next_link(PAGE1, link, BASE)
    assert str(caught.value) == "@odata.nextLink is not a valid URL"


# --- odata.py: iter_pages through a real ApiClient -----------------------------------------------


@asynccontextmanager
async def open_client(url: str, **poll: Any) -> AsyncIterator[ApiClient]:
    """An ApiClient with its TokenManager, wired as runtime.py wires them."""
    customer_cfg = {"customer_id": CUSTOMER, "client_id": "c", "client_secret": "parts-secret-9"}
    config = make_config(url, [customer_cfg], **poll)
    metrics = SelfMetrics(CollectorRegistry())
    async with aiohttp.ClientSession() as session:
        yield ApiClient(
            Transport(session),
            config.customers[0],
            config.poll,
            metrics,
            sleep=SleepRecorder(),
            clock=lambda: NOW,
            jitter=lambda: 0.5,
        )


class CountingLimiter(asyncio.Semaphore):
    """A semaphore that counts how often it was held."""

    def __init__(self) -> None:
        super().__init__(1)
        self.held = 0

    async def __aenter__(self) -> None:
        await super().__aenter__()
        self.held += 1


def chain(last: int, rows: Callable[[int], list[Any]] | None = None):
    """Pages 0..last, each linking to the next by a relative link; page `last` ends it."""

    def handler(request: web.Request) -> web.Response:
        page = int(request.query.get("page", "0"))
        data: dict[str, Any] = {"value": rows(page) if rows else [{"Id": page}]}
        if page < last:
            data["@odata.nextLink"] = f"{ODATA_SUFFIX}?page={page + 1}"
        return web.json_response(data)

    return handler


async def read_all(
    client: ApiClient,
    max_pages: int = 50,
    limiter: asyncio.Semaphore | None = None,
    params: dict[str, str] | None = None,
) -> list[list[dict[str, Any]]]:
    url = client.base_url + ODATA_SUFFIX
    return [
        page
        async for page in iter_pages(
            client, "monitor_machines", url, params, max_pages=max_pages, limiter=limiter
        )
    ]


def odata_queries(hostile: HostileUpstream) -> list[str]:
    return [seen.path for seen in hostile.requests if seen.path.endswith(ODATA_SUFFIX)]


async def test_pages_are_followed_with_the_query_only_on_the_first(
    hostile: HostileUpstream, hostile_url: str, aiohttp_server: Any
):
    seen_queries: list[dict[str, str]] = []

    def recording(request: web.Request) -> web.Response:
        seen_queries.append(dict(request.query))
        return chain(2)(request)

    hostile.on(CUSTOMER, ODATA_SUFFIX, recording)
    limiter = CountingLimiter()
    async with open_client(hostile_url) as client:
        pages = await read_all(client, limiter=limiter, params={"$top": "1"})
    assert pages == [[{"Id": 0}], [{"Id": 1}], [{"Id": 2}]]
    assert seen_queries == [{"$top": "1"}, {"page": "1"}, {"page": "2"}]
    assert limiter.held == 3


async def test_exactly_max_pages_is_allowed_one_more_is_refused(
    hostile: HostileUpstream, hostile_url: str
):
    hostile.on(CUSTOMER, ODATA_SUFFIX, chain(2))  # 3 pages
    async with open_client(hostile_url) as client:
        assert len(await read_all(client, max_pages=3)) == 3
    hostile.on(CUSTOMER, ODATA_SUFFIX, chain(3))  # 4 pages
    before = len(odata_queries(hostile))
    got: list[list[dict[str, Any]]] = []
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError) as caught:
            async for page in iter_pages(
                client, "monitor_machines", client.base_url + ODATA_SUFFIX, None, max_pages=3
            ):
                got.append(page)
    assert str(caught.value) == (
        "monitor_machines: more than 3 pages; stopped (raise collectors.monitor.max_pages if "
        "the tenant really is that large)"
    )
    assert got == [[{"Id": 0}], [{"Id": 1}], [{"Id": 2}]]
    assert len(odata_queries(hostile)) - before == 3


async def test_a_failing_page_is_reported_under_the_callers_endpoint_name(
    hostile: HostileUpstream, hostile_url: str
):
    def pages(request: web.Request) -> web.Response:
        if request.query.get("page") == "1":
            return web.json_response({"detail": "Bad page"}, status=400)
        return chain(1)(request)

    hostile.on(CUSTOMER, ODATA_SUFFIX, pages)
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError) as caught:
            await read_all(client)
    assert str(caught.value) == "monitor_machines: HTTP 400 (Bad page)"


async def test_rows_that_are_not_objects_are_dropped(hostile: HostileUpstream, hostile_url: str):
    hostile.on(CUSTOMER, ODATA_SUFFIX, chain(0, lambda _: [{"Id": 1}, 5, "x", None, [1], {}]))
    async with open_client(hostile_url) as client:
        assert await read_all(client) == [[{"Id": 1}, {}]]


@pytest.mark.parametrize(
    "answer",
    [
        lambda: web.json_response({"values": []}),
        lambda: web.json_response({"value": {"Id": 1}}),
        lambda: web.json_response([{"Id": 1}]),
        lambda: web.Response(status=204),
    ],
    ids=["no-value", "value-not-a-list", "not-an-object", "no-content"],
)
async def test_page_without_a_value_list_is_an_error(
    hostile: HostileUpstream, hostile_url: str, answer: Callable[[], web.Response]
):
    hostile.on(CUSTOMER, ODATA_SUFFIX, lambda _: answer())
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError) as caught:
            await read_all(client)
    assert str(caught.value) == "monitor_machines: response has no 'value' list"


@pytest.mark.parametrize("link", ["", None], ids=["empty", "null"])
async def test_empty_next_link_ends_the_collection(
    hostile: HostileUpstream, hostile_url: str, link: str | None
):
    answer = {"value": [{"Id": 1}], "@odata.nextLink": link}
    hostile.on(CUSTOMER, ODATA_SUFFIX, lambda _: web.json_response(answer))
    async with open_client(hostile_url) as client:
        assert await read_all(client) == [[{"Id": 1}]]


async def test_next_link_spelled_differently_is_still_a_repeat(
    hostile: HostileUpstream, hostile_url: str
):
    def pages(request: web.Request) -> web.Response:
        if request.query.get("page") == "1":  # page 1 links to itself, percent-encoded
            return web.json_response({"value": [{"Id": 1}], "@odata.nextLink": "Machines?page=%31"})
        return web.json_response({"value": [{"Id": 0}], "@odata.nextLink": "Machines?page=1"})

    hostile.on(CUSTOMER, ODATA_SUFFIX, pages)
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError) as caught:
            await read_all(client)
    assert str(caught.value) == (
        "monitor_machines: @odata.nextLink repeats a page already read in this poll; stopped"
    )
    assert len(odata_queries(hostile)) == 2


async def test_next_link_elsewhere_is_refused_before_it_is_requested(
    hostile: HostileUpstream, hostile_url: str
):
    answer = {"value": [{"Id": 1}], "@odata.nextLink": "https://evil.example/m"}
    hostile.on(CUSTOMER, ODATA_SUFFIX, lambda _: web.json_response(answer))
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError) as caught:
            await read_all(client)
    assert str(caught.value) == (
        "refusing to follow @odata.nextLink to https://evil.example:443: "
        "not the customer's API host"
    )
    assert len(odata_queries(hostile)) == 1


# --- client.py seen from detail.py: header names and bodies as aiohttp delivers them -------------


@pytest.mark.parametrize("name", ["Citrix-TransactionId", "CC-TransactionId", "cc-transactionid"])
async def test_error_names_the_transaction_id_from_either_header(
    hostile: HostileUpstream, hostile_url: str, name: str
):
    hostile.on(
        CUSTOMER,
        CURRENT_SUFFIX,
        lambda _: web.json_response({"detail": "Bad request"}, status=400, headers={name: "tx-42"}),
    )
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError) as caught:
            await client.get_json("licensing_current", client.base_url + CURRENT_SUFFIX)
    assert str(caught.value) == "licensing_current: HTTP 400 (Bad request) (transaction id tx-42)"
    assert (caught.value.status, caught.value.transaction_id) == (400, "tx-42")


async def test_redirect_without_location_is_refused_naming_no_host(
    hostile: HostileUpstream, hostile_url: str
):
    hostile.on(CUSTOMER, CURRENT_SUFFIX, lambda _: web.Response(status=302))
    async with open_client(hostile_url) as client:
        with pytest.raises(UpstreamError) as caught:
            await client.get_json("licensing_current", client.base_url + CURRENT_SUFFIX)
    assert (
        str(caught.value) == "licensing_current: HTTP 302 redirect to an unnamed location refused"
    )


# --- retry.py: backoff ---------------------------------------------------------------------------


def policy(jitter: float = 0.5, **retry: float) -> RetryPolicy:
    config = RetryConfig.model_validate(
        {"attempts": 4, "base_delay": 2, "max_delay": 30, "max_retry_after": 120, **retry}
    )
    return RetryPolicy(config, lambda: jitter)


def test_ceiling_doubles_from_base_delay_up_to_max_delay():
    p = policy()
    assert [p.ceiling(n) for n in range(0, 7)] == [2.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert p.ceiling(10**9) == 30.0  # days of failures: no overflow
    assert isinstance(p.ceiling(1), float)
    assert (p.attempts, p.max_delay) == (4, 30.0)


def test_huge_max_delay_is_reached_without_overflow():
    p = policy(base_delay=1, max_delay=1e300)
    assert p.ceiling(63) == 2.0**62
    assert p.ceiling(10**6) == 2.0**62


@pytest.mark.parametrize(("jitter", "expected"), [(0.0, 4.0), (0.5, 6.0), (1.0, 8.0)])
def test_backoff_is_between_half_and_all_of_the_ceiling(jitter: float, expected: float):
    assert policy(jitter).backoff(3) == expected


def test_default_jitter_stays_within_bounds():
    config = RetryConfig.model_validate({"base_delay": 4, "max_delay": 4})
    waits = {RetryPolicy(config).backoff(1) for _ in range(50)}
    assert all(2.0 <= wait <= 4.0 for wait in waits)
    assert len(waits) > 1


# --- retry.py: Retry-After -----------------------------------------------------------------------


def http_date(timestamp: float) -> str:
    return format_datetime(datetime.fromtimestamp(timestamp, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("5", 5.0),
        (" 7.5 ", 7.5),
        ("0", 0.0),
        ("-1", None),
        ("nan", None),
        ("inf", float("inf")),
        ("soon", None),
        ("Wed, 32 Foo 2030 99:99:99 GMT", None),
    ],
)
def test_retry_after_values(value: str | None, expected: float | None):
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_dates():
    assert parse_retry_after(http_date(NOW + 30), NOW) == 30.0
    assert parse_retry_after(http_date(NOW), NOW) == 0.0
    assert parse_retry_after(http_date(NOW + 1), NOW + 0.5) == 0.5
    assert parse_retry_after(http_date(NOW - 1), NOW) is None
    assert parse_retry_after("Sun, 17 Mar 2030 18:46:50 +0100", NOW) == 10.0
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", NOW) == pytest.approx(
        253402300799.0 - NOW
    )


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch):
    """Local time 5 hours behind UTC, so a date read as local time would be 5 hours off."""
    monkeypatch.setenv("TZ", "EST+05")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_retry_after_date_without_zone_is_utc(far_from_utc: None):
    assert parse_retry_after("Sun, 17 Mar 2030 17:46:50 -0000", NOW) == 10.0


def test_retry_after_is_capped_at_max_retry_after():
    p = policy()
    assert p.retry_after(headers(Retry_After="60"), NOW) == 60.0
    assert p.retry_after(headers(Retry_After="120"), NOW) == 120.0
    assert p.retry_after(headers(Retry_After="121"), NOW) == 120.0
    assert p.retry_after(headers(Retry_After="inf"), NOW) == 120.0
    assert p.retry_after(headers(Retry_After=http_date(NOW + 10**6)), NOW) == 120.0
    assert p.retry_after(headers(Retry_After="-5"), NOW) is None
    assert p.retry_after(headers(), NOW) is None


def test_exception_reason_names_the_type_and_the_text_if_any():
    assert exception_reason(TimeoutError()) == "TimeoutError"
    assert exception_reason(ValueError("bad: x")) == "ValueError: bad: x"
    assert exception_reason(OSError("")) == "OSError"
    assert exception_reason(OSError("code X")) == "OSError: code X"  # only ': ' is trimmed
