"""Where the exporter serves: the rules for its listen address and its metrics path.

One parser for the ``web.listen_address`` key, the ``--web.listen-address`` flag and the bind
call, so a value that validates is a value that binds; one check for the telemetry path, so it
can neither shadow the exporter's own endpoints nor become an aiohttp route pattern. Both raise
``ValueError`` with messages that complete "key: ..." and never repeat the value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from pydantic import ValidationError, field_validator

from exporter.config.errors import ConfigError, field_problems
from exporter.config.types import Model

__all__ = ["RESERVED_PATHS", "WebConfig", "check_telemetry_path", "parse_listen_address"]

_LISTEN_ADDRESS_HINT = "must be [host]:port, e.g. ':9876' or '127.0.0.1:9876'"
_PORT_RE = re.compile(r"[0-9]{1,5}")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})")


def parse_listen_address(address: str) -> tuple[str | None, int]:
    """``:9876`` (all interfaces), ``127.0.0.1:9876``, ``host:9876`` or ``[::1]:9876`` ->
    (host or None, port); ``ValueError`` with a value-free message otherwise.

    The one parser for the config key, the command-line flag and the server's bind call, so a
    value that validates is a value that binds (``[::1`` used to pass and then crash).
    """
    host, sep, port = address.rpartition(":")
    if not sep or not _PORT_RE.fullmatch(port) or int(port) > 65535:
        raise ValueError(_LISTEN_ADDRESS_HINT)
    if host.startswith("[") or host.endswith("]"):
        if not (host.startswith("[") and host.endswith("]")):
            raise ValueError(f"{_LISTEN_ADDRESS_HINT}; unbalanced '[' or ']'")
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError("must have an IPv6 address inside '[...]'") from None
    elif ":" in host:
        raise ValueError(f"{_LISTEN_ADDRESS_HINT}; an IPv6 host goes in brackets: '[::1]:9876'")
    elif host and not _HOSTNAME_RE.fullmatch(host):
        raise ValueError("must have a host name or IP address before the ':'")
    return (host or None), int(port)


# Served by the exporter itself (web.py).
RELOAD_PATH = "/-/reload"
RESERVED_PATHS = ("/", "/healthz", "/readyz", RELOAD_PATH)
# RFC 3986 path characters without '%': what a route matches literally and a scrape config can
# spell without escaping. '{' and '}' would make aiohttp read the path as a route pattern.
_TELEMETRY_PATH_RE = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@/-]*")


def check_telemetry_path(value: str) -> str:
    """The metrics path: absolute, literal, and not one of the exporter's other endpoints."""
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    if value in RESERVED_PATHS:
        raise ValueError(f"'{value}' is taken by the exporter itself; use e.g. /metrics")
    if "{" in value or "}" in value:
        raise ValueError("must not contain '{' or '}' (it would become a route pattern)")
    if not _TELEMETRY_PATH_RE.fullmatch(value):
        raise ValueError(
            "must be a plain path: ASCII letters, digits and -._~!$&'()*+,;=:@/ "
            "(no spaces, '?', '#' or '%')"
        )
    return value


class WebConfig(Model):
    """Where the exporter's own HTTP server listens; the command-line flags use this model too
    (:meth:`with_flags`), so a flag obeys the rules and messages of its key."""

    listen_address: str = ":9876"
    telemetry_path: str = "/metrics"

    @field_validator("listen_address")
    @classmethod
    def _check_listen_address(cls, value: str) -> str:
        """Catch a missing or malformed port now rather than when binding the socket."""
        parse_listen_address(value)
        return value

    @field_validator("telemetry_path")
    @classmethod
    def _check_telemetry_path(cls, value: str) -> str:
        return check_telemetry_path(value)

    @property
    def bind_address(self) -> tuple[str | None, int]:
        """(host or None for all interfaces, port) for the bind call, by the validating parser."""
        return parse_listen_address(self.listen_address)

    def with_flags(self, values: Mapping[str, str], flags: Mapping[str, str]) -> WebConfig:
        """This section with command-line ``values`` (by key) applied and validated; a
        :class:`ConfigError` names the flag (``flags[key]``) instead of the key."""
        if not values:
            return self
        try:
            return WebConfig.model_validate({**self.model_dump(), **values})
        except ValidationError as err:
            problems = field_problems(err)
            messages = [f"{flags.get(key, key)}: {message}" for key, message in problems]
            raise ConfigError(messages) from None
