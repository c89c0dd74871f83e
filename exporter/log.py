"""Logging setup: logfmt or JSON lines, with secrets scrubbed from every record.

Secrets are scrubbed in a filter on the handler (not only at call sites) so a secret that sneaks
into an exception message from a library is still never written out. The other ways Python
writes to stderr on its own (an uncaught exception's traceback, a warning) are routed through
the same handler, so nothing reaches stderr unscrubbed.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Hashable, Iterable
from types import TracebackType
from typing import Generic, TypeVar

from .redact import REDACTOR

LOGGER_NAME = "citrix_exporter"
# Longest error text shown on the landing page or attached to a log record about a client's
# request: enough for a Citrix error message, too little for a whole echoed request.
MAX_ERROR_CHARS = 300

# Attributes that every LogRecord has; anything else came from `extra=` and is a field of ours.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the exporter's logger or one of its children."""
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")


def shown_error(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Error text as shown outside the process: scrubbed, then cut to `limit` characters.

    Scrubbed first: a cut made first could split a secret so that it no longer matches.
    """
    text = REDACTOR.scrub(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


K = TypeVar("K", bound=Hashable)


class LogOnce(Generic[K]):
    """Which conditions have been logged, so that one that persists is logged once, not at
    every poll (its counter, where it has one, still shows that it keeps happening).

    `first(key)` is True the first time `key` is met, and the caller logs then; `clear(key)`
    forgets it when the condition ends, so that a later return is logged again.
    """

    def __init__(self) -> None:
        self._logged: set[K] = set()

    def first(self, key: K) -> bool:
        """True if `key` has not been logged since it was last cleared; it now has been."""
        if key in self._logged:
            return False
        self._logged.add(key)
        return True

    def clear(self, key: K) -> None:
        """The condition `key` stands for has ended: log it again if it comes back."""
        self._logged.discard(key)


class SecretScrubber(logging.Filter):
    """Passes every record's final text through the process-wide redactor (`redact.py`).

    Installed on the handler, so a secret or token that reaches a message, an `extra=` field
    or an exception's text by any route (a library's error, an echoed upstream body) is
    redacted before anything is written.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        REDACTOR.add_secrets(secrets)

    def scrub(self, text: str) -> str:
        return REDACTOR.scrub(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: keep both, scrubbed below
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = self.scrub(message), None
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        for key, value in _extras(record).items():
            if not _plain(value):
                # Any other value (an exception, a dict, bytes) is written as its str():
                # scrub that text, the form it will be written in.
                setattr(record, key, self.scrub(str(value)))
        return True


def _extras(record: logging.LogRecord) -> dict[str, object]:
    """The record's own fields, from `extra=`: the ones written out and so the ones scrubbed.

    A name starting with `_` is private to whoever set it and is neither written nor scrubbed.
    """
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRS and not key.startswith("_")
    }


def _plain(value: object) -> bool:
    """A value written as it is, with nothing in it to scrub (a number, a flag, nothing)."""
    return value is None or isinstance(value, (bool, int, float))


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    fields.update(_extras(record))
    if record.exc_text:
        fields["exc"] = record.exc_text
    return fields


class LogfmtFormatter(logging.Formatter):
    """`key=value` lines, the format Prometheus and most Go exporters log in."""

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        for key, value in _fields(record).items():
            text = str(value)
            if not text or any(c in text for c in ' ="\n\t'):
                text = json.dumps(text)
            parts.append(f"{key}={text}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log pipelines that parse JSON."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str)


def setup_logging(level: str, fmt: str) -> SecretScrubber:
    """Configure the exporter's logger; returns the scrubber so secrets can be added later.

    `level` and `fmt` (`json`, anything else is logfmt) have their defaults in one place, the
    command line (`--log.level`, `--log.format`).
    """
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    scrubber = SecretScrubber()
    handler.addFilter(scrubber)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    get_logger().setLevel(level.upper())
    logging.captureWarnings(True)  # warnings go through the handler, not straight to stderr
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    return scrubber


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    """An uncaught exception's traceback goes through the (scrubbing) handler, not raw to
    stderr: its message may hold whatever text the failing code was given."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    get_logger().critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        get_logger().critical(
            "uncaught exception in a thread",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
            extra={"in_thread": args.thread.name if args.thread else ""},
        )
