"""Reload on SIGHUP and `POST /-/reload`: read everything again, check it all, then apply.

The config file, every `*_file` secret it names and the web config file are read and validated
completely (in a worker thread: a large config takes a while to parse) before anything changes,
so a broken edit leaves the exporter exactly as it was; the error is logged and returned with
the text `--check-config` prints, and `citrix_exporter_config_last_reload_successful` drops to 0
until a reload succeeds. What changes, customer by customer, is `reload.plan`'s; what cannot
change without a restart (the listen address, the metrics path, the pool size, a client CA
already trusted) is reported and the rest applied. One lock: a second reload waits for the first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from .config import Config, ConfigError, WebConfig
from .config.tls_server import TLSProblem
from .config.web_file import WebFileConfig
from .log import get_logger
from .redact import REDACTOR
from .reload import plan, web_restarts
from .runtime import Exporter
from .web_guard import WebGuard

log = get_logger("reload")


@dataclass(frozen=True)
class Settings:
    """Everything a reload reads: the config (sharded), the `web:` settings with the flags
    applied, and the web config file (None without --web.config.file)."""

    config: Config
    web: WebConfig
    web_file: WebFileConfig | None = None


@dataclass(frozen=True)
class Outcome:
    """How a reload went; `text` is the answer to `POST /-/reload`."""

    ok: bool
    text: str


class Reloader:
    """Applies `read()` to the running exporter and web guard, one reload at a time."""

    def __init__(
        self,
        exporter: Exporter,
        read: Callable[[], Settings],
        web: WebConfig,
        guard: WebGuard | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._exporter = exporter
        self._read = read
        self._web = web  # what the server was started with; only a restart changes it
        self._guard = guard
        self._clock = clock
        self._lock = asyncio.Lock()

    async def reload(self) -> Outcome:
        """Read, check and apply; never raises for a bad config (the Outcome says so)."""
        async with self._lock:
            try:
                settings = await asyncio.to_thread(self._read)
                restart = self._apply_web(settings)
            except ConfigError as err:
                return self._failed(err)
            REDACTOR.add_secrets(settings.config.secrets())
            changes = plan(self._exporter.config, settings.config)
            try:
                await self._exporter.apply(settings.config, changes)
            except Exception:
                self._exporter.reloads.failed()
                log.exception("reload failed while applying the new configuration")
                raise
            self._exporter.reloads.succeeded(self._clock())
            restart = [*changes.needs_restart, *restart]
            summary = changes.summary()
            log.info("configuration reloaded", extra=summary)
            for message in restart:
                log.warning("reload: change needs a restart", extra={"change": message})
            lines = ["reloaded: " + ", ".join(f"{key} {value}" for key, value in summary.items())]
            lines += [f"needs a restart: {message}" for message in restart]
            return Outcome(True, "\n".join(lines) + "\n")

    def _apply_web(self, settings: Settings) -> list[str]:
        """Swap the web config in (users, headers, certificates); what needs a restart.
        ConfigError if a TLS file became unusable since it was read (nothing is applied)."""
        restart = web_restarts(self._web, settings.web)
        if self._guard is None or settings.web_file is None:
            return restart
        try:
            return restart + self._guard.replace(settings.web_file)
        except TLSProblem as exc:
            raise ConfigError(f"tls_server_config.{exc}") from None

    def _failed(self, err: ConfigError) -> Outcome:
        self._exporter.reloads.failed()
        log.error(
            "reload failed; the running configuration stays in force", extra={"error": str(err)}
        )
        return Outcome(False, err.report() + "\n")
