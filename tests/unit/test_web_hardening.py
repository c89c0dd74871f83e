"""The exporter's HTTP server under hostile clients: idle connections, floods, malformed requests.

In-process tests use `server.start_server` with a small cap and idle timeout; the subprocess
tests run `python -m exporter --demo` with a lowered RLIMIT_NOFILE, the way the fd exhaustion of
issue #9 happened (1,100 idle connections against 1024 descriptors: /healthz timed out and 20 MB
of error log were written in 4 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from exporter.server import AcceptErrorLog, GuardedRunner, connection_cap, start_server
from tests.support.logcapture import real_log_output
from tests.support.processes import free_port, http_ok, wait_until

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
BIG_RESPONSE_BYTES = 6 * 2**20  # more than the loopback socket buffers below hold


async def wait_for(check: Callable[[], bool], timeout: float = 20) -> None:
    """Poll `check` until true; only a deadline for a hung test, never a timing assertion."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {check}"
        await asyncio.sleep(0.01)


async def get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://{LOOPBACK}:{port}{path}", timeout=aiohttp.ClientTimeout(total=10)
        ) as resp,
    ):
        return resp.status, await resp.text()


def port_of(runner: GuardedRunner) -> int:
    return int(runner.addresses[0][1])


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True when the server closed the connection (EOF or reset) within a generous deadline."""
    with contextlib.suppress(ConnectionError):
        await asyncio.wait_for(reader.read(), 10)
    return reader.at_eof() or reader.exception() is not None


def hello_app(gate: asyncio.Event | None = None) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def slow(_: web.Request) -> web.Response:
        assert gate is not None
        await gate.wait()
        return web.Response(text="slow\n")

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * BIG_RESPONSE_BYTES)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/slow", slow)
    app.router.add_get("/big", big)
    return app


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[GuardedRunner]]]:
    runners: list[GuardedRunner] = []

    async def start(app: web.Application, **limits: float) -> GuardedRunner:
        limits.setdefault("idle_timeout", 60)
        runner = await start_server(app, LOOPBACK, 0, **limits)  # type: ignore[arg-type]
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_idle_connections_beyond_the_cap_make_room_for_a_scrape(serve):
    cap = 20
    with real_log_output("logfmt") as (log, _):
        runner = await serve(hello_app(), max_connections=cap)
        server, port = runner.guarded_server, port_of(runner)
        idle = [await asyncio.open_connection(LOOPBACK, port) for _ in range(300)]
        await wait_for(lambda: server.shed >= 300 - cap)
        assert server.open_connections <= cap

        assert await get(port, "/healthz") == (200, "ok\n")
        assert server.open_connections <= cap
        logged = log.getvalue()
    # The oldest went first; the newest are still open.
    assert all([await closed_by_server(reader) for reader, _ in idle[:100]])
    assert not any(reader.at_eof() for reader, _ in idle[-cap // 2 :])
    for _, writer in idle:
        writer.close()
    assert len(logged.splitlines()) == 1, logged  # one warning, not one line per connection
    assert "level=warning" in logged and "max_connections=20" in logged


async def test_a_newcomer_is_refused_with_503_only_when_every_connection_is_busy(serve):
    gate = asyncio.Event()
    runner = await serve(hello_app(gate), max_connections=2)
    server, port = runner.guarded_server, port_of(runner)
    slow = [asyncio.create_task(get(port, "/slow")) for _ in range(2)]
    await wait_for(lambda: server.open_connections == 2 and server.requests_count == 2)

    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    answer = await asyncio.wait_for(reader.read(), 10)
    assert answer.startswith(b"HTTP/1.1 503 ") and answer.endswith(b"too many connections\n")
    writer.close()

    gate.set()
    assert [await task for task in slow] == [(200, "slow\n")] * 2
    assert await get(port, "/healthz") == (200, "ok\n")


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"],
    ids=["nothing", "half a request", "one request, then idle"],
)
async def test_idle_connections_are_closed_after_the_idle_timeout(serve, sent):
    runner = await serve(hello_app(), max_connections=10, idle_timeout=0.2)
    server = runner.guarded_server
    reader, writer = await asyncio.open_connection(LOOPBACK, port_of(runner))
    writer.write(sent)
    assert await closed_by_server(reader)
    await wait_for(lambda: server.open_connections == 0)
    writer.close()


async def small_window_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection with a small receive buffer, so that the kernel holds little of a response."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2**16)
    sock.connect((LOOPBACK, port))
    return await asyncio.open_connection(sock=sock, limit=2**16)


async def test_a_client_that_stops_reading_is_cut_off_after_the_idle_timeout(serve):
    runner = await serve(hello_app(), max_connections=10, idle_timeout=0.2)
    server = runner.guarded_server
    reader, writer = await small_window_connection(port_of(runner))
    writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    await wait_for(lambda: server.requests_count == 1)
    await wait_for(lambda: server.open_connections == 0)  # not waiting for it forever
    received = 0
    with contextlib.suppress(ConnectionError):
        while chunk := await asyncio.wait_for(reader.read(2**20), 10):
            received += len(chunk)
    assert 0 < received < BIG_RESPONSE_BYTES
    writer.close()


async def test_a_slow_reader_that_keeps_reading_gets_the_whole_response(serve):
    """A client reading slowly but steadily is not idle, though our own buffer may not shrink
    for a while: the kernel's socket queue absorbs its reads (hence a small receive buffer and a
    slow read rate here, which an exporter that looked only at its own buffer would cut off)."""
    idle_timeout = 0.25
    runner = await serve(hello_app(), max_connections=10, idle_timeout=idle_timeout)
    reader, writer = await small_window_connection(port_of(runner))
    writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    started, received = time.monotonic(), 0
    while chunk := await asyncio.wait_for(reader.read(2**16), 10):
        received += len(chunk)
        await asyncio.sleep(0.03)
    assert received > BIG_RESPONSE_BYTES
    assert time.monotonic() - started > 4 * idle_timeout  # so it did outlast the timeout
    writer.close()


def test_connection_cap_leaves_room_for_upstream_sockets_and_the_backlog():
    assert connection_cap(1024) == 512
    assert connection_cap(8192) == 4096  # memory caps it before descriptors do
    assert connection_cap(256) == 16  # a floor, so the exporter still serves at all


async def test_failing_accepts_are_logged_once_not_once_each():
    loop = asyncio.get_running_loop()
    passed_on: list[dict[str, object]] = []
    handler = AcceptErrorLog(lambda _, context: passed_on.append(context))
    with real_log_output("json") as (log, _):
        for _ in range(300):
            handler(
                loop,
                {
                    "message": "socket.accept() out of system resource",
                    "exception": OSError(24, "Too many open files"),
                },
            )
        handler(loop, {"message": "something else"})
        logged = log.getvalue()
    assert len(logged.splitlines()) == 1 and '"failures": 1' in logged, logged
    assert handler.failures == 300
    assert passed_on == [{"message": "something else"}]


def test_the_soft_open_files_limit_is_raised_to_the_hard_limit():
    code = (
        "import resource\n"
        "from exporter.server import raise_fd_limit\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 512))\n"
        "print(raise_fd_limit(), *resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.stdout.split() == ["512", "512", "512"], result.stderr


def limit_open_files(limit: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


async def start_demo(
    tmp_path: Path, *args: str, preexec_fn: Callable[[], None] | None = None
) -> tuple[asyncio.subprocess.Process, int, Path]:
    """`python -m exporter --demo` on a free port, stderr to a file; returns once /readyz is 200."""
    port = free_port()
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "exporter", "--demo",
            "--web.listen-address", f"{LOOPBACK}:{port}", *args,
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr, cwd=REPO,
            env=dict(os.environ), preexec_fn=preexec_fn,
        )  # fmt: skip
    try:
        await wait_until(lambda: http_ok(f"http://{LOOPBACK}:{port}/readyz"), 30)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return proc, port, stderr_path


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_many_idle_connections_against_a_low_fd_limit(tmp_path: Path):
    """640 descriptors and 400 idle connections at once: without the cap, accepting fails."""
    proc, port, stderr_path = await start_demo(tmp_path, preexec_fn=limit_open_files(640))
    try:
        before = stderr_path.stat().st_size
        idle = await asyncio.gather(*(asyncio.open_connection(LOOPBACK, port) for _ in range(400)))
        assert await get(port, "/healthz") == (200, "ok\n")
        status, text = await get(port, "/metrics")
        assert status == 200 and "citrix_up" in text
        for _, writer in idle:
            writer.close()
        written = stderr_path.stat().st_size - before
    finally:
        await stop(proc)
    output = stderr_path.read_text()
    assert f"max_connections={connection_cap(640)}" in output
    assert written < 2000, output[-3000:]
    assert "level=error" not in output and "Traceback" not in output, output[-3000:]


MALFORMED = {
    "a 1 MB header": b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2**20 + b"\r\n\r\n",
    "1000 headers": b"GET / HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-H%d: v\r\n" % i for i in range(1000))
    + b"\r\n",
    "a bad request line": b"GARBAGE\x01 / HTTP/1.1\r\nHost: x\r\n\r\n",
    "a bad HTTP version": b"GET / HTTP/9.9x\r\nHost: x\r\n\r\n",
}


def send_raw(port: int, data: bytes) -> bytes:
    """Send `data` on a fresh connection and read until the server closes it. The server may
    reset the connection, not reading all of a huge request: what arrived before counts."""
    received = b""
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
    return received


async def test_malformed_requests_get_400_and_are_logged_at_debug_only(tmp_path: Path):
    proc, port, stderr_path = await start_demo(tmp_path, "--log.level", "debug")
    try:
        for name, request in MALFORMED.items():
            answer = await asyncio.to_thread(send_raw, port, request)
            assert answer.startswith(b"HTTP/1.0 400 ") or answer.startswith(b"HTTP/1.1 400 "), (
                name,
                answer[:200],
            )
        assert await get(port, "/healthz") == (200, "ok\n")
    finally:
        await stop(proc)
    output = stderr_path.read_text()
    rejected = [line for line in output.splitlines() if "Error handling request" in line]
    assert len(rejected) == len(MALFORMED), output[-3000:]
    assert all("level=debug" in line and len(line) < 800 for line in rejected), rejected
    assert "level=error" not in output and "Traceback" not in output, output[-3000:]
