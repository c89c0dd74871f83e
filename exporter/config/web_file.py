"""The web configuration file (``--web.config.file``): TLS, basic auth and response headers.

The format is exporter-toolkit's, shared by Prometheus, node_exporter and every exporter built
on it, so one file and one habit serve them all:
https://prometheus.io/docs/prometheus/latest/configuration/https/. The keys this exporter cannot
honour (cipher suites, curves, SAN checks, inline certificates) are rejected by name rather than
ignored: a file that asks for a protection must not load without it.

Loading checks everything serving would need, so ``--check-config`` fails where serving would:
the certificate and key are loaded together (a key of another certificate is caught), the
client CA file is parsed, every password hash must be bcrypt. Errors are :class:`ConfigError`
lines ``source: key.path: message (line N)``, as for the main config, never quoting a value.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from exporter.config.errors import (
    ConfigError,
    Loc,
    NestedError,
    Problem,
    format_problems,
    translate,
)
from exporter.config.files import CONFIG_FILE_MAX_BYTES, FileProblem, read_bounded
from exporter.config.loader import load_yaml
from exporter.config.tls_server import TLSProblem, server_context
from exporter.config.types import Model, empty_if_none

__all__ = [
    "CLIENT_AUTH_TYPES",
    "HEADER_VALUES",
    "HTTPServerConfig",
    "TLSServerConfig",
    "WebFileConfig",
    "load_web_config",
    "parse_web_config",
]

TLSVersionName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
ClientAuthType = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
CLIENT_AUTH_TYPES: tuple[str, ...] = ClientAuthType.__args__  # type: ignore[attr-defined]
# Policies that check a client certificate against client_ca_file (tls_server explains why
# RequireAnyClientCert is one of them here).
_NEEDS_CA = ("RequireAnyClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert")

# exporter-toolkit's list: only these headers may be set, and where the value is an enumeration
# only its values (the toolkit keeps the list closed so the ecosystem behaves alike).
HEADER_VALUES: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}

# Keys of the format this exporter does not implement: named, so the error says so.
_UNSUPPORTED_TLS_KEYS = (
    "cert",
    "key",
    "client_ca",
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
    "client_allowed_sans",
)
_UNSUPPORTED_TOP_KEYS = ("rate_limit",)
_UNSUPPORTED = "is not supported by this exporter; remove it"

# bcrypt's modular crypt format: $2a$, $2b$ or $2y$, a two-digit cost, 53 characters of salt
# and hash in bcrypt's base64 alphabet.
_BCRYPT_RE = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")


_V = TypeVar("_V")


def _unsupported(data: object, keys: tuple[str, ...]) -> object:
    """Refuse the format's keys this exporter does not implement, each by name."""
    if isinstance(data, dict):
        problems = [((key,), _UNSUPPORTED) for key in keys if key in data]
        if problems:
            raise NestedError(problems)
    return data


def _check_entries(
    entries: dict[str, _V], problem: Callable[[str, _V], str | None]
) -> dict[str, _V]:
    """``entries`` if ``problem`` finds none; else every problem, each on its entry's key."""
    problems: list[tuple[Loc, str]] = []
    for name, value in entries.items():
        message = problem(name, value)
        if message is not None:
            problems.append(((name,), message))
    if problems:
        raise NestedError(problems)
    return entries


def _header_problem(name: str, value: str) -> str | None:
    """exporter-toolkit's rule: a header of its list, with one of its values where it has any."""
    allowed = HEADER_VALUES.get(name)
    if allowed is None:
        return f"cannot be set; allowed: {', '.join(HEADER_VALUES)}"
    if allowed and value not in allowed:
        return f"must be one of: {', '.join(allowed)}"
    if not value.isprintable():
        return "must be one line of printable characters"
    return None


def _user_problem(name: str, hashed: SecretStr) -> str | None:
    """A name usable in an Authorization header, a hash that bcrypt can check."""
    if not name or ":" in name or not name.isprintable():
        return "a user name must be non-empty, printable, without ':'"
    if not _BCRYPT_RE.fullmatch(hashed.get_secret_value()):
        return "must be a bcrypt hash ($2y$10$..., e.g. from `htpasswd -nBC 10 USER`)"
    return None


# An empty section (every entry commented out) is no entries.
Headers = Annotated[
    dict[str, str],
    BeforeValidator(empty_if_none),
    AfterValidator(lambda headers: _check_entries(headers, _header_problem)),
]
Users = Annotated[
    dict[str, SecretStr],
    BeforeValidator(empty_if_none),
    AfterValidator(lambda users: _check_entries(users, _user_problem)),
]


class TLSServerConfig(Model):
    """``tls_server_config``: the certificate served and what is asked of clients."""

    cert_file: str = Field(min_length=1)
    key_file: str = Field(min_length=1)
    client_auth_type: ClientAuthType = "NoClientCert"
    client_ca_file: str | None = Field(default=None, min_length=1)
    min_version: TLSVersionName = "TLS12"
    max_version: TLSVersionName = "TLS13"

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: object) -> object:
        return _unsupported(data, _UNSUPPORTED_TLS_KEYS)

    @model_validator(mode="after")
    def _check_combination(self) -> TLSServerConfig:
        """The toolkit's rules: a CA needs a policy that uses it, and vice versa."""
        problems: list[tuple[Loc, str]] = []
        if self.min_version > self.max_version:  # "TLS10" < ... < "TLS13" as strings
            problems.append((("min_version",), "must not be above max_version"))
        if self.client_auth_type in _NEEDS_CA and self.client_ca_file is None:
            problems.append((("client_auth_type",), "needs client_ca_file"))
        if self.client_ca_file is not None and self.client_auth_type == "NoClientCert":
            message = "set client_auth_type too (a CA without a client certificate policy)"
            problems.append((("client_ca_file",), message))
        if problems:
            raise NestedError(problems)
        return self


class HTTPServerConfig(Model):
    """``http_server_config``: headers added to every response."""

    headers: Headers = Field(default_factory=dict)
    # Accepted for compatibility with files written for Go exporters; aiohttp serves HTTP/1.1.
    http2: bool = True


class WebFileConfig(Model):
    """The whole web configuration file; every section optional (an empty file is plain HTTP
    without auth, as without the flag)."""

    tls_server_config: TLSServerConfig | None = None
    http_server_config: Annotated[HTTPServerConfig, BeforeValidator(empty_if_none)] = (
        HTTPServerConfig()
    )
    basic_auth_users: Users = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: object) -> object:
        return _unsupported(data, _UNSUPPORTED_TOP_KEYS)


def load_web_config(path: str | os.PathLike[str]) -> WebFileConfig:
    """Read, validate and check the files of the web configuration at ``path``."""
    source = os.fspath(path)
    try:
        text = read_bounded(source, CONFIG_FILE_MAX_BYTES).decode()
    except FileProblem as exc:
        raise ConfigError(f"{source}: cannot read web configuration file: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: web configuration file is not valid UTF-8") from None
    return parse_web_config(text, source)


def parse_web_config(text: str, source: str = "<web config>") -> WebFileConfig:
    """Validate web configuration ``text``; ``source`` prefixes every error message."""
    root, data, problems = load_yaml(text, source)
    if root is None or data is None:
        return WebFileConfig()
    if not isinstance(data, dict):
        line = root.start_mark.line + 1
        raise ConfigError(f"{source}: top level must be a mapping of keys (line {line})")
    try:
        config = WebFileConfig.model_validate(data)
    except ValidationError as exc:
        problems.extend(translate(exc))
    else:
        problems.extend(_file_problems(config))
    if problems:
        raise ConfigError(format_problems(problems, root, source))
    return config


def _file_problems(config: WebFileConfig) -> list[Problem]:
    """Build the TLS context once, as serving will: a problem names the file's key."""
    if config.tls_server_config is None:
        return []
    try:
        server_context(config.tls_server_config)
    except TLSProblem as exc:
        return [Problem(("tls_server_config", exc.key), exc.message)]
    except ssl.SSLError as exc:  # nothing above expects this; still a config problem
        return [Problem(("tls_server_config",), f"cannot be used: {exc.reason or exc}")]
    return []
