"""Logging setup: logfmt or JSON lines, with secrets scrubbed from every record.

Secrets are scrubbed in a filter on the handler (not only at call sites) so a secret that sneaks
into an exception message from a library is still never written out.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable

from .redact import REDACTOR

LOGGER_NAME = "citrix_exporter"

# Attributes that every LogRecord has; anything else came from `extra=` and is a field of ours.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the exporter's logger or one of its children."""
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")


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
        message = self.scrub(record.getMessage())
        record.msg, record.args = message, None
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, self.scrub(value))
        return True


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and not key.startswith("_"):
            fields[key] = value
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


def setup_logging(level: str = "info", fmt: str = "logfmt") -> SecretScrubber:
    """Configure the exporter's logger; returns the scrubber so secrets can be added later."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    scrubber = SecretScrubber()
    handler.addFilter(scrubber)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    get_logger().setLevel(level.upper())
    return scrubber
