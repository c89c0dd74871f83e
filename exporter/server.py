"""The exporter's own HTTP server: aiohttp, hardened against clients that hold connections open.

A scrape endpoint is open to anyone on the network. With aiohttp's defaults, 1,100 idle TCP
connections use up the process's 1024 file descriptors: accepting fails, asyncio logs the
failure over and over (20 MB of stderr in 4 s, measured) and /metrics and /healthz stop
answering. So this server:

* closes a connection that has been idle for `IDLE_TIMEOUT_SECONDS`: no request handled and no
  response making progress. That includes one that never sends a whole request (aiohttp before
  3.14 only times out the wait *between* requests) and one that stops reading our response;
* keeps at most `max_connections` open, well below the fd limit. A new connection beyond that
  takes the place of the oldest idle one, so a pile of idle connections cannot lock Prometheus
  out; only when every connection is busy is the newcomer answered 503 and closed;
* raises the soft RLIMIT_NOFILE to the hard limit (`raise_fd_limit`) and derives the cap from it
  (`connection_cap`), leaving room for the upstream sockets; should descriptors run out anyway,
  failing accepts are logged once a minute (`AcceptErrorLog`), not a traceback each;
* over TLS (``--web.config.file``), gives a client `IDLE_TIMEOUT_SECONDS` to finish the
  handshake instead of asyncio's 60 s: a connection counts towards the cap only once the
  handshake is done, so the handshake must not be a place to park connections either;
* treats a malformed request (a bad request line, a huge header, too many headers) as the
  client's problem: aiohttp answers 400, and it is logged at DEBUG without a traceback instead of
  at ERROR with one.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import resource
import ssl
import struct
import sys
import termios
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from .log import get_logger, shown_error

log = get_logger("web")

IDLE_TIMEOUT_SECONDS = 5.0
# asyncio accepts up to a backlog of connections per loop turn, and a connection over the cap
# holds its descriptor for about three more turns before it is closed: under a flood, four
# backlogs' worth are open beyond the cap.
LISTEN_BACKLOG = 64
ACCEPT_IN_FLIGHT = 4 * LISTEN_BACKLOG
# File descriptors kept for everything but client connections: upstream sockets (up to 16 per
# customer at once), the listening sockets, files, the event loop's own.
FD_RESERVE = 256
# Each open connection also costs memory (about 17 KiB idle, measured); Prometheus needs a few.
MAX_CONNECTIONS = 4096
MIN_CONNECTIONS = 16
SHEDDING_LOG_INTERVAL_SECONDS = 60.0

_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 21\r\n\r\ntoo many connections\n"
)

RequestCallback = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard limit where allowed; the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return sys.maxsize
    if hard == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as err:
        log.debug("cannot raise the open-files limit", extra={"limit": soft, "error": str(err)})
        return soft
    return hard


def connection_cap(fd_limit: int) -> int:
    """Most client connections to keep open under `fd_limit` open files, keeping free
    `FD_RESERVE` and the descriptors of connections accepted but not yet closed."""
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, fd_limit - FD_RESERVE - ACCEPT_IN_FLIGHT))


class AcceptErrorLog:
    """Event-loop exception handler that reports failing accepts once a minute.

    When descriptors run out anyway, asyncio reports every failed accept (up to a backlog of
    them per loop turn, each with a traceback) and, if the server closes meanwhile, every
    retry: megabytes of log a second. One line a minute with a count says the same.
    Everything else goes to the previous handler.
    """

    def __init__(
        self, previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None
    ) -> None:
        self._previous = previous
        self.failures = 0
        self._reported = 0
        self._reported_at = -SHEDDING_LOG_INTERVAL_SECONDS

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if not (
            message.startswith("socket.accept() out of system resource")
            or "_start_serving" in repr(context.get("handle"))
        ):
            if self._previous is not None:
                self._previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        self.failures += 1
        now = loop.time()
        if now - self._reported_at >= SHEDDING_LOG_INTERVAL_SECONDS:
            log.error(
                "cannot accept connections (out of file descriptors or memory?)",
                extra={
                    "error": shown_error(str(context.get("exception", message))),
                    "failures": self.failures - self._reported,
                },
            )
            self._reported, self._reported_at = self.failures, now


class ClientErrorsAtDebug(logging.LoggerAdapter[logging.Logger]):
    """The logger aiohttp's connection handler writes to.

    aiohttp logs every request it cannot parse as "Error handling request" at ERROR with a
    traceback, so anyone can fill the log by sending garbage. Such a request is the client's
    problem and is answered 400: log it at DEBUG, with the parser's (scrubbed, cut) message
    instead of a traceback. A failure in our own handlers stays an ERROR with its traceback.
    """

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if exc is True:
            exc = sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            level = logging.DEBUG
            kwargs["exc_info"] = None
            kwargs["extra"] = {"error": shown_error(str(exc))}
        self.logger.log(level, msg, *args, **kwargs)


class _Connection:
    """What the server tracks per open connection."""

    __slots__ = ("active_at", "busy", "timer", "unsent")

    def __init__(self, now: float) -> None:
        self.busy = 0  # requests in our handlers right now
        self.active_at = now  # last time a request started or ended, or the response progressed
        self.unsent = 0  # response bytes not yet taken by the client at the last check
        self.timer: asyncio.TimerHandle | None = None


class GuardedServer(web.Server):
    """aiohttp's low-level server with an idle timeout and a cap on open connections."""

    def __init__(
        self,
        handler: RequestCallback,
        *,
        max_connections: int,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(self._handle, **kwargs)
        self._inner = handler
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.shed = 0  # connections closed (or refused) to stay under the cap
        self._shed_reported = 0
        self._shed_reported_at = -SHEDDING_LOG_INTERVAL_SECONDS
        self._open: dict[RequestHandler, _Connection] = {}  # oldest first
        self._event_loop = asyncio.get_running_loop()

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        conn = _Connection(self._event_loop.time())
        self._open[handler] = conn
        conn.timer = self._event_loop.call_later(self.idle_timeout, self._check_idle, handler)
        if len(self._open) > self.max_connections:
            self._shed(handler)

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self._forget(handler)
        super().connection_lost(handler, exc)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        conn = self._open.get(request.protocol)
        if conn is None:
            return await self._inner(request)
        conn.busy += 1
        conn.active_at = self._event_loop.time()
        try:
            return await self._inner(request)
        finally:
            conn.busy -= 1
            conn.active_at = self._event_loop.time()

    def _check_idle(self, handler: RequestHandler) -> None:
        conn = self._open.get(handler)
        if conn is None:
            return
        now = self._event_loop.time()
        unsent = _unsent(handler)
        if conn.busy or (unsent and unsent != conn.unsent):  # working, or the client is reading
            conn.active_at = now
        conn.unsent = unsent
        deadline = conn.active_at + self.idle_timeout
        if now < deadline:
            conn.timer = self._event_loop.call_at(deadline, self._check_idle, handler)
        else:
            self._close(handler)

    def _shed(self, newcomer: RequestHandler) -> None:
        """Over the cap: close the oldest idle connection, or else refuse the newcomer."""
        victim = next((h for h, c in self._open.items() if h is not newcomer and _idle(h, c)), None)
        if victim is None:
            victim = newcomer
            if newcomer.transport is not None:
                newcomer.transport.write(_BUSY_RESPONSE)
        self._close(victim)
        self.shed += 1
        now = self._event_loop.time()
        if now - self._shed_reported_at >= SHEDDING_LOG_INTERVAL_SECONDS:
            log.warning(
                "too many open connections; closing the oldest idle ones to admit new ones",
                extra={
                    "max_connections": self.max_connections,
                    "closed": self.shed - self._shed_reported,
                },
            )
            self._shed_reported, self._shed_reported_at = self.shed, now

    def _close(self, handler: RequestHandler) -> None:
        self._forget(handler)
        transport = handler.transport
        if transport is not None and transport.get_write_buffer_size():
            transport.abort()  # the client stopped reading: close() would wait for it forever
        handler.force_close()

    def _forget(self, handler: RequestHandler) -> None:
        conn = self._open.pop(handler, None)
        if conn is not None and conn.timer is not None:
            conn.timer.cancel()


def _unsent(handler: RequestHandler) -> int:
    """Response bytes not yet taken by the client: in our buffer and in the kernel's.

    The kernel's share counts: it holds megabytes, so a client reading slowly but steadily can
    leave our own buffer unchanged for seconds while its socket queue shrinks.
    """
    transport = handler.transport
    if transport is None:
        return 0
    return transport.get_write_buffer_size() + _kernel_unsent(transport)


def _kernel_unsent(transport: asyncio.BaseTransport) -> int:
    """Bytes in the socket's send queue (Linux `TIOCOUTQ`); 0 where the platform cannot tell."""
    sock = transport.get_extra_info("socket")
    request = getattr(termios, "TIOCOUTQ", None)
    if sock is None or request is None:
        return 0
    try:
        queued: int = struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0" * 4))[0]
    except OSError:
        return 0
    return queued


def _idle(handler: RequestHandler, conn: _Connection) -> bool:
    return not conn.busy and not _unsent(handler)


class GuardedRunner(web.AppRunner):
    """An AppRunner whose server is a `GuardedServer`."""

    def __init__(
        self,
        app: web.Application,
        *,
        max_connections: int,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
        shutdown_timeout: float = 2.0,
    ) -> None:
        self._max_connections = max_connections
        self._idle_timeout = idle_timeout
        self._server_kwargs: dict[str, Any] = {
            # aiohttp's own timer between requests, in step with ours.
            "keepalive_timeout": idle_timeout,
            "logger": ClientErrorsAtDebug(log),
            "access_log": None,
        }
        super().__init__(app, shutdown_timeout=shutdown_timeout, **self._server_kwargs)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # runs the app's startup
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            max_connections=self._max_connections,
            idle_timeout=self._idle_timeout,
            **self._server_kwargs,
        )

    @property
    def guarded_server(self) -> GuardedServer:
        server = self.server
        assert isinstance(server, GuardedServer), "call setup() first"
        return server


class TLSSite(web.TCPSite):
    """A TCP site whose TLS handshake must finish within `handshake_timeout` seconds.

    aiohttp's TCPSite leaves asyncio's 60 s; this is its `start` with the timeout passed on.
    """

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        *,
        ssl_context: ssl.SSLContext,
        handshake_timeout: float,
        backlog: int,
    ) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context, backlog=backlog)
        self._handshake_timeout = handshake_timeout

    async def start(self) -> None:
        self._runner._reg_site(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            ssl_handshake_timeout=self._handshake_timeout,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]


async def start_server(
    app: web.Application,
    host: str | None,
    port: int,
    *,
    max_connections: int,
    idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    shutdown_timeout: float = 2.0,
    ssl_context: ssl.SSLContext | None = None,
) -> GuardedRunner:
    """Serve `app` on host:port (HTTPS with `ssl_context`); OSError if the address cannot be
    bound (nothing left running).

    Stop it with `await runner.cleanup()`; `runner.addresses` has the bound address (port 0
    picks a free one).
    """
    loop = asyncio.get_running_loop()
    if not isinstance(loop.get_exception_handler(), AcceptErrorLog):
        loop.set_exception_handler(AcceptErrorLog(loop.get_exception_handler()))
    runner = GuardedRunner(
        app,
        max_connections=max_connections,
        idle_timeout=idle_timeout,
        shutdown_timeout=shutdown_timeout,
    )
    await runner.setup()
    site: web.TCPSite
    if ssl_context is None:
        site = web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG)
    else:
        site = TLSSite(
            runner,
            host,
            port,
            ssl_context=ssl_context,
            handshake_timeout=idle_timeout,
            backlog=LISTEN_BACKLOG,
        )
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
