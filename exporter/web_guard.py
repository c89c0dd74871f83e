"""What the web config file asks of the server: basic auth on every endpoint, extra response
headers, and the TLS context.

One :class:`WebGuard` holds the config in force. The middleware and the response hook read it on
every request and the listening socket uses its one ``ssl.SSLContext``, so a reload swaps the
users and headers in one assignment and loads new certificates into the same context
(:meth:`WebGuard.replace`): new connections get them, open ones are left alone.

bcrypt is slow on purpose (cost 10 is ~100 ms of CPU here). Prometheus sends the same
credentials every scrape, so :class:`PasswordCache` remembers each verdict, keyed by the user,
the stored hash (a reload that changes it forgets the verdict) and an HMAC of the password under
a per-process random key (the memory never holds a plain digest of a password); a scrape a
second then costs a dictionary lookup. bcrypt itself runs on one worker thread, never on the
event loop, so a stream of wrong passwords costs at most one core and /metrics keeps answering
the clients that know theirs; past ``MAX_WAITING`` checks in the queue, new ones are answered 429.
Right and wrong verdicts are kept apart, so guessing cannot push a right one out.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import bcrypt
from aiohttp import BasicAuth, hdrs, web
from aiohttp.typedefs import Handler

from .config.tls_server import configure, server_context
from .config.web_file import WebFileConfig

__all__ = ["PasswordCache", "WebGuard"]

# bcrypt uses the first 72 bytes of a password; htpasswd and Go hash and check it so.
BCRYPT_MAX_PASSWORD_BYTES = 72
# Checked for an unknown user, so that the answer takes as long as for a known one.
DUMMY_HASH = b"$2b$10$8pKENsI6cpsfcnnL.p.eL.dF05YkQ2Yfi.LCEWfULIV7txa9VSovu"
GOOD_CACHE_SIZE = 256
BAD_CACHE_SIZE = 1024
MAX_WAITING = 32
REALM = 'Basic realm="citrix-cloud-exporter"'

CacheKey = tuple[str, bytes, bytes]


class PasswordCache:
    """bcrypt verdicts remembered (module docstring); ``checks`` counts real bcrypt runs."""

    def __init__(
        self,
        *,
        max_waiting: int = MAX_WAITING,
        checkpw: Callable[[bytes, bytes], bool] = bcrypt.checkpw,
    ) -> None:
        self._secret = os.urandom(32)
        self._checkpw = checkpw
        self._max_waiting = max_waiting
        self._good: OrderedDict[CacheKey, bool] = OrderedDict()
        self._bad: OrderedDict[CacheKey, bool] = OrderedDict()
        self._pending: dict[CacheKey, asyncio.Future[bool]] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bcrypt")
        self.checks = 0

    async def verify(self, user: str, password: bytes, hashed: bytes) -> bool | None:
        """True if ``password`` matches ``hashed``; None if too many checks are waiting."""
        key = (user, hashed, hmac.digest(self._secret, password, "sha256"))
        for verdicts in (self._good, self._bad):
            if key in verdicts:
                verdicts.move_to_end(key)
                return verdicts[key]
        future = self._pending.get(key)  # the same credentials in flight: one check for all
        if future is None:
            if len(self._pending) >= self._max_waiting:
                return None
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self._executor, self._check, password, hashed)
            self._pending[key] = future
            future.add_done_callback(lambda done: self._settle(key, done))
        # A client that hangs up must not cancel the check the others wait for.
        return await asyncio.shield(future)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _check(self, password: bytes, hashed: bytes) -> bool:
        self.checks += 1
        try:
            return self._checkpw(password[:BCRYPT_MAX_PASSWORD_BYTES], hashed)
        except ValueError:  # a malformed hash; loading rejects those
            return False

    def _settle(self, key: CacheKey, future: asyncio.Future[bool]) -> None:
        self._pending.pop(key, None)
        if future.cancelled() or future.exception() is not None:
            return
        ok = future.result()
        verdicts, size = (self._good, GOOD_CACHE_SIZE) if ok else (self._bad, BAD_CACHE_SIZE)
        verdicts[key] = ok
        if len(verdicts) > size:
            verdicts.popitem(last=False)


class WebGuard:
    """The web config in force, for the middleware, the response hook and the TLS socket."""

    def __init__(self, config: WebFileConfig, passwords: PasswordCache | None = None) -> None:
        tls = config.tls_server_config
        self.ssl_context = None if tls is None else server_context(tls)
        self.passwords = passwords or PasswordCache()
        self.config = config
        self._users: dict[str, bytes] = {}
        self._headers: dict[str, str] = {}
        self._take(config)

    def replace(self, config: WebFileConfig) -> list[str]:
        """Apply a validated ``config``; what could not be applied without a restart."""
        tls = config.tls_server_config
        if (tls is None) != (self.ssl_context is None):
            kept = self.config.tls_server_config
            config = config.model_copy(update={"tls_server_config": kept})
            needs_restart = ["tls_server_config: switching TLS on or off needs a restart"]
        else:
            needs_restart = []
            if tls is not None and self.ssl_context is not None:
                needs_restart = _kept_client_ca(self.config, config)
                configure(self.ssl_context, tls)
        self.config = config
        self._take(config)
        return needs_restart

    def install(self, app: web.Application) -> None:
        """Put every route of ``app`` behind this guard (call before the app starts)."""
        app.middlewares.append(self._middleware)
        app.on_response_prepare.append(self._add_headers)

    def _take(self, config: WebFileConfig) -> None:
        self._users = {
            name: hashed.get_secret_value().encode()
            for name, hashed in config.basic_auth_users.items()
        }
        self._headers = dict(config.http_server_config.headers)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        users = self._users
        if users:
            verdict = await self._authorised(request, users)
            if verdict is None:
                return web.Response(status=429, text="too many password checks waiting\n")
            if not verdict:
                return web.Response(
                    status=401, text="Unauthorized\n", headers={hdrs.WWW_AUTHENTICATE: REALM}
                )
        return await handler(request)

    async def _authorised(self, request: web.Request, users: dict[str, bytes]) -> bool | None:
        header = request.headers.get(hdrs.AUTHORIZATION)
        if header is None:
            return False
        try:
            credentials = BasicAuth.decode(header, encoding="utf-8")
        except ValueError:
            return False
        hashed = users.get(credentials.login)
        password = credentials.password.encode()
        ok = await self.passwords.verify(credentials.login, password, hashed or DUMMY_HASH)
        return ok and hashed is not None if ok is not None else None

    async def _add_headers(self, _: web.Request, response: web.StreamResponse) -> None:
        for name, value in self._headers.items():
            response.headers[name] = value


def _kept_client_ca(old: WebFileConfig, new: WebFileConfig) -> list[str]:
    """A client CA loaded into the live context stays trusted (OpenSSL adds CAs, never removes
    them): say so when the new config drops or replaces it."""
    before = old.tls_server_config.client_ca_file if old.tls_server_config else None
    after = new.tls_server_config.client_ca_file if new.tls_server_config else None
    if before is None or before == after:
        return []
    return [
        "tls_server_config.client_ca_file: the certificates of the previous client CA file "
        "stay trusted until a restart"
    ]
