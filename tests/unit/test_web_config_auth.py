"""The web config at run time: the bcrypt cache, basic auth and headers on every route, TLS
(server certificate, client certificates, handshake timeout) and swapping the config in place."""

from __future__ import annotations

import asyncio
import base64
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from aiohttp import web

from exporter.config.web_file import WebFileConfig, parse_web_config
from exporter.server import GuardedRunner, start_server
from exporter.web import create_web_app
from exporter.web_guard import DUMMY_HASH, PasswordCache, WebGuard
from tests.support.helpers import make_config
from tests.support.tls import TLSFiles, bcrypt_hash, tls_files

LOOPBACK = "127.0.0.1"


def basic(login: str, password: str) -> dict[str, str]:
    """An Authorization header (aiohttp 3.14 deprecates its `auth=` parameter)."""
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class CountingCheck:
    """bcrypt.checkpw that records each call, its thread, and can be made slow."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[bytes, bytes]] = []
        self.threads: set[int] = set()
        self.delay = delay

    def __call__(self, password: bytes, hashed: bytes) -> bool:
        self.calls.append((password, hashed))
        self.threads.add(threading.get_ident())
        time.sleep(self.delay)
        return bcrypt.checkpw(password, hashed)


@pytest.fixture
def tls(tmp_path: Path) -> TLSFiles:
    return tls_files(tmp_path)


HASH = bcrypt_hash("right")


# --- the cache -------------------------------------------------------------------------------


async def test_the_same_credentials_are_checked_once() -> None:
    check = CountingCheck()
    cache = PasswordCache(checkpw=check)
    for _ in range(50):  # a scrape a second for almost a minute
        assert await cache.verify("prom", b"right", HASH.encode()) is True
    assert len(check.calls) == 1 == cache.checks
    assert check.threads and threading.get_ident() not in check.threads  # never on the loop


async def test_a_wrong_password_is_never_taken_for_the_right_one() -> None:
    check = CountingCheck()
    cache = PasswordCache(checkpw=check)
    assert await cache.verify("prom", b"wrong", HASH.encode()) is False
    assert await cache.verify("prom", b"right", HASH.encode()) is True
    assert await cache.verify("prom", b"wrong", HASH.encode()) is False
    assert await cache.verify("prom", b"right", HASH.encode()) is True
    assert await cache.verify("other", b"right", HASH.encode()) is True  # another user: checked
    assert len(check.calls) == 3


async def test_a_new_hash_is_checked_again() -> None:
    """After a reload changes a user's hash, the old verdict does not apply."""
    check = CountingCheck()
    cache = PasswordCache(checkpw=check)
    assert await cache.verify("prom", b"right", HASH.encode()) is True
    assert await cache.verify("prom", b"right", bcrypt_hash("new").encode()) is False
    assert len(check.calls) == 2


async def test_guessing_cannot_push_the_right_verdict_out() -> None:
    checked: list[bytes] = []

    def check(password: bytes, _: bytes) -> bool:
        checked.append(password)
        return password == b"right"

    cache = PasswordCache(checkpw=check)
    await cache.verify("prom", b"right", b"h")
    for attempt in range(1100):  # more wrong guesses than the cache keeps
        await cache.verify("prom", f"guess{attempt}".encode(), b"h")
    assert await cache.verify("prom", b"right", b"h") is True
    assert checked.count(b"right") == 1


async def test_concurrent_requests_share_one_check_and_survive_a_hang_up() -> None:
    check = CountingCheck(delay=0.2)
    cache = PasswordCache(checkpw=check)
    first = asyncio.ensure_future(cache.verify("prom", b"right", HASH.encode()))
    await asyncio.sleep(0.05)
    first.cancel()  # that client hung up; the others still get the verdict
    results = await asyncio.gather(
        *(cache.verify("prom", b"right", HASH.encode()) for _ in range(5))
    )
    assert results == [True] * 5 and len(check.calls) == 1


async def test_too_many_waiting_checks_are_refused() -> None:
    cache = PasswordCache(checkpw=CountingCheck(delay=0.3), max_waiting=2)
    results = await asyncio.gather(
        *(cache.verify("prom", f"guess{i}".encode(), HASH.encode()) for i in range(4))
    )
    assert results == [False, False, None, None]


async def test_passwords_longer_than_72_bytes_are_cut_like_htpasswd() -> None:
    hashed = bcrypt.hashpw(b"x" * 72, bcrypt.gensalt(4))
    assert await PasswordCache().verify("prom", b"x" * 100, hashed) is True


# --- basic auth and headers on every route ---------------------------------------------------


def guarded_app(guard: WebGuard) -> web.Application:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/", ok)
    app.router.add_get("/metrics", ok)
    guard.install(app)
    return app


def auth_config(**users: str) -> WebFileConfig:
    lines = "".join(f"  {name}: '{hashed}'\n" for name, hashed in users.items())
    return parse_web_config(
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        + (f"basic_auth_users:\n{lines}" if users else "")
    )


@pytest.mark.parametrize("path", ["/", "/metrics", "/no-such-page"])
async def test_every_route_needs_the_password(aiohttp_client: Callable, path: str) -> None:
    client = await aiohttp_client(guarded_app(WebGuard(auth_config(prom=HASH))))
    for headers in ({}, basic("prom", "wrong"), basic("eve", "right")):
        resp = await client.get(path, headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Basic")
        assert resp.headers["X-Frame-Options"] == "deny"
    resp = await client.get(path, headers=basic("prom", "right"))
    assert resp.status == (404 if path == "/no-such-page" else 200)
    assert resp.headers["X-Frame-Options"] == "deny"


@pytest.mark.parametrize("header", ["Bearer abc", "Basic !!!", "Basic " + "bm9jb2xvbg=="])
async def test_a_malformed_authorization_is_refused(aiohttp_client: Callable, header: str) -> None:
    client = await aiohttp_client(guarded_app(WebGuard(auth_config(prom=HASH))))
    resp = await client.get("/metrics", headers={"Authorization": header})
    assert resp.status == 401


async def test_an_unknown_user_costs_a_bcrypt_check_too(aiohttp_client: Callable) -> None:
    check = CountingCheck()
    guard = WebGuard(auth_config(prom=HASH), PasswordCache(checkpw=check))
    client = await aiohttp_client(guarded_app(guard))
    assert (await client.get("/", headers=basic("eve", "right"))).status == 401
    assert check.calls == [(b"right", DUMMY_HASH)]


async def test_overload_answers_429(aiohttp_client: Callable) -> None:
    guard = WebGuard(
        auth_config(prom=HASH), PasswordCache(checkpw=CountingCheck(0.3), max_waiting=1)
    )
    client = await aiohttp_client(guarded_app(guard))
    statuses = await asyncio.gather(
        *(client.get("/", headers=basic("prom", f"g{i}")) for i in range(3))
    )
    assert sorted(r.status for r in statuses) == [401, 429, 429]


async def test_headers_without_users_need_no_password(aiohttp_client: Callable) -> None:
    client = await aiohttp_client(guarded_app(WebGuard(auth_config())))
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.headers["X-Frame-Options"] == "deny"


async def test_the_exporter_app_takes_the_guard(
    base_url: str, exporter_factory: Callable, aiohttp_client: Callable
) -> None:
    exporter = await exporter_factory(make_config(base_url))
    guard = WebGuard(auth_config(prom=HASH))
    client = await aiohttp_client(create_web_app(exporter, guard=guard))
    for path in ("/", "/metrics", "/healthz", "/readyz"):
        assert (await client.get(path)).status == 401
    resp = await client.get("/metrics", headers=basic("prom", "right"))
    assert resp.status == 200 and "citrix_exporter_build_info" in await resp.text()


async def test_replace_swaps_users_and_headers(aiohttp_client: Callable) -> None:
    guard = WebGuard(auth_config(prom=HASH))
    client = await aiohttp_client(guarded_app(guard))
    assert guard.replace(auth_config(prom=bcrypt_hash("rotated"))) == []
    assert (await client.get("/", headers=basic("prom", "right"))).status == 401
    assert (await client.get("/", headers=basic("prom", "rotated"))).status == 200


# --- TLS -------------------------------------------------------------------------------------


def tls_config(tls: TLSFiles, extra: str = "") -> WebFileConfig:
    return parse_web_config(
        f"tls_server_config:\n  cert_file: {tls.cert_file}\n  key_file: {tls.key_file}\n{extra}"
    )


@pytest.fixture
async def serve_tls() -> AsyncIterator[Callable]:
    runners: list[GuardedRunner] = []

    async def start(guard: WebGuard, idle_timeout: float = 5.0) -> str:
        runner = await start_server(
            guarded_app(guard),
            LOOPBACK,
            0,
            max_connections=16,
            idle_timeout=idle_timeout,
            ssl_context=guard.ssl_context,
        )
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"https://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def fetch(url: str, context: ssl.SSLContext) -> int:
    async with aiohttp.ClientSession() as session, session.get(url, ssl=context) as resp:
        return resp.status


async def test_https_with_the_configured_certificate(tls: TLSFiles, serve_tls: Callable) -> None:
    url = await serve_tls(WebGuard(tls_config(tls)))
    assert await fetch(f"{url}/metrics", tls.client_context()) == 200
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await fetch(f"{url}/metrics", ssl.create_default_context())  # not our CA


async def test_a_new_certificate_applies_to_new_connections(
    tls: TLSFiles, serve_tls: Callable, tmp_path: Path
) -> None:
    guard = WebGuard(tls_config(tls))
    url = await serve_tls(guard)
    (tmp_path / "renewed").mkdir()
    renewed = tls_files(tmp_path / "renewed")
    assert guard.replace(tls_config(renewed)) == []
    assert await fetch(f"{url}/", renewed.client_context()) == 200
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await fetch(f"{url}/", tls.client_context())


async def test_switching_tls_on_needs_a_restart(tls: TLSFiles) -> None:
    guard = WebGuard(auth_config(prom=HASH))
    assert guard.replace(tls_config(tls)) == [
        "tls_server_config: switching TLS on or off needs a restart"
    ]
    assert guard.ssl_context is None and guard.config.tls_server_config is None


async def test_required_client_certificates(
    tls: TLSFiles, serve_tls: Callable, tmp_path: Path
) -> None:
    extra = f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {tls.ca_file}\n"
    url = await serve_tls(WebGuard(tls_config(tls, extra)))
    with pytest.raises(aiohttp.ClientError):
        await fetch(f"{url}/", tls.client_context())
    context = tls.client_context()
    context.load_cert_chain(*tls.client_cert(tmp_path))
    assert await fetch(f"{url}/", context) == 200


async def test_a_stalled_handshake_is_closed(tls: TLSFiles, serve_tls: Callable) -> None:
    url = await serve_tls(WebGuard(tls_config(tls)), idle_timeout=0.3)
    host, port = url.removeprefix("https://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    assert time.monotonic() - started < 3
    writer.close()
