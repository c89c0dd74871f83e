"""Configuration file loading and validation.

The exporter runs unattended, so a bad configuration must fail at start-up with one message per
problem that names the key path and the YAML line, and it must never echo a credential into a log.
Loading therefore happens in stages, each of which can report precise key paths:

1. parse the YAML into a node tree (for line numbers) and plain Python data;
2. expand ``${VAR}`` in string values from the environment;
3. replace ``client_id_file`` / ``client_secret_file`` by the content of those files;
4. validate the result with the pydantic models below and translate their errors.

The YAML bounds (depth, size, aliases) live in :mod:`exporter.config_yaml`, the bounded reads of
the files a config names in :mod:`exporter.config_files`.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from exporter.config_files import (
    CONFIG_FILE_MAX_BYTES,
    SECRET_FILE_MAX_BYTES,
    FileProblem,
    check_ca_file,
    read_bounded,
)
from exporter.config_yaml import BoundedLoader, check_expansion, describe_yaml_error
from exporter.durations import DurationError, parse_duration
from exporter.web_address import RESERVED_PATHS, check_telemetry_path, parse_listen_address

__all__ = [
    "REGION_BASE_URLS",
    "RESERVED_PATHS",
    "CollectorConfig",
    "CollectorsConfig",
    "ConcurrentCollectorConfig",
    "Config",
    "ConfigError",
    "CustomerConfig",
    "LicenseServersCollectorConfig",
    "PartnerCollectorConfig",
    "PollConfig",
    "ProductsCollectorConfig",
    "RetryConfig",
    "WebConfig",
    "field_problems",
    "load_config",
    "parse_config",
    "parse_listen_address",
]

Region = Literal["us", "eu", "ap-s", "jp"]

REGION_BASE_URLS: dict[str, str] = {
    "us": "https://api.cloud.com",
    "eu": "https://api.cloud.com",
    "ap-s": "https://api.cloud.com",
    "jp": "https://api.citrixcloud.jp",
}

Loc = tuple[str | int, ...]

_CUSTOMER_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ENV_REF_RE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_FILE_FIELDS = ("client_id", "client_secret")


class ConfigError(Exception):
    """The configuration is unusable; ``str(err)`` is the complete message for the operator.

    ``messages`` holds the individual problems (one per line of ``str(err)``). No message ever
    contains a credential value.
    """

    def __init__(self, messages: str | Sequence[str]) -> None:
        self.messages: tuple[str, ...] = (
            (messages,) if isinstance(messages, str) else tuple(messages)
        )
        super().__init__("\n".join(self.messages))


class _NestedError(ValueError):
    """Raised by validators to report problems on keys *below* the validated value.

    Pydantic attaches a validator's error to the validated object itself; carrying relative key
    paths lets the error translation point at the exact key (e.g. the duplicate ``customer_id``).
    """

    def __init__(self, problems: Sequence[tuple[Loc, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(message for _, message in self.problems))


# --------------------------------------------------------------------------------------------
# Field helpers
# --------------------------------------------------------------------------------------------


def _to_seconds(value: object) -> object:
    """Accept "5m"-style strings or plain seconds wherever the config takes a duration."""
    if not isinstance(value, str | int | float):
        raise ValueError("must be a duration such as 30s, 5m or 1h")
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise ValueError(exc.summary) from None


MIN_INTERVAL_SECONDS = 1.0


def _to_interval(value: object) -> object:
    """A poll interval: a duration of at least a second (``1ms`` is a typo for ``1m``)."""
    seconds = _to_seconds(value)
    if isinstance(seconds, float | int) and seconds < MIN_INTERVAL_SECONDS:
        raise ValueError("must be at least 1s (a poll interval; did you mean minutes, 'm'?)")
    return seconds


def _to_optional_interval(value: object) -> object:
    """Like :func:`_to_interval`, but an absent value means "inherit poll.interval"."""
    return None if value is None else _to_interval(value)


Duration = Annotated[float, BeforeValidator(_to_seconds)]
Interval = Annotated[float, BeforeValidator(_to_interval)]
OptionalInterval = Annotated[float | None, BeforeValidator(_to_optional_interval)]


def _empty_if_none(value: object) -> object:
    """Treat an empty YAML section (``poll:`` with every child commented out) as all defaults."""
    return {} if value is None else value


class _Model(BaseModel):
    """Common settings: typos must be errors, and a loaded config must not change under us."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class WebConfig(_Model):
    """Where the exporter's own HTTP server listens; the command-line flags use this model too."""

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


class RetryConfig(_Model):
    """Retries of one upstream request; ``attempts`` counts the first try too."""

    attempts: int = Field(default=4, ge=1, le=10)
    base_delay: Duration = 1.0
    max_delay: Duration = 60.0
    # The longest Retry-After honoured; longer (or unusable) values fall back to the backoff.
    max_retry_after: Duration = 900.0

    @model_validator(mode="after")
    def _check_delays(self) -> RetryConfig:
        """Exponential back-off is capped at max_delay, so it must not be below the start."""
        if self.max_delay < self.base_delay:
            raise _NestedError([(("max_delay",), "must not be smaller than base_delay")])
        return self


DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_CONCURRENCY = 64
DEFAULT_MAX_SERIES = 20_000


class PollConfig(_Model):
    """How often and how patiently the upstream APIs are polled."""

    interval: Interval = 300.0
    timeout: Duration = 30.0
    max_staleness: Duration = 3600.0
    retry: RetryConfig = RetryConfig()
    # Bounds on what one upstream answer may cost (README "Limits").
    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, ge=1024, le=2**31)
    max_series: int = Field(default=DEFAULT_MAX_SERIES, ge=1, le=10_000_000)
    # Upstream requests in flight across all customers (token requests too), on top of the
    # per-collector limits: 1,000 customers must not open 1,000 connections at once.
    max_concurrency: int = Field(default=DEFAULT_MAX_CONCURRENCY, ge=1, le=1024)

    _retry_defaults = field_validator("retry", mode="before")(_empty_if_none)


class CollectorConfig(_Model):
    """Per-collector switch and optional interval (``None`` = use ``poll.interval``).

    Collectors with their own options subclass this (e.g. a future ``MonitorCollectorConfig``)
    and replace the field type in :class:`CollectorsConfig`.
    """

    enabled: bool = True
    interval: OptionalInterval = None


class MonitorCollectorConfig(CollectorConfig):
    """Options of the Monitor (OData) collector, sized for the documented concurrency limit."""

    max_pages: int = Field(default=500, ge=1, le=100_000)
    concurrency: int = Field(default=1, ge=1, le=8)
    overlap: Duration = 600.0
    desktop_groups_refresh: Duration = 600.0


# Hosts of the Citrix Cloud console's own licensing APIs, observed by community tools and not
# documented by Citrix (README: "Observed licensing APIs"). Each collector takes its own `url`.
CLOUDLICENSE_URL = "https://cloudlicense.citrixworkspacesapi.net"
LICENSING_INSIGHTS_URL = "https://licensing.citrixworkspacesapi.net"
PARTNER_URL = "https://partner.citrixworkspacesapi.net"

_PRODUCT_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _check_path_template(
    value: str | None, allowed: Sequence[str], required: Sequence[str] = ()
) -> str | None:
    """Validate a path template such as ``/{customer_id}/licenseservers`` (None passes).

    Only the ``allowed`` ``{placeholder}``s may appear (no conversions or format specs), each
    of ``required`` must, and a query string (``?a=b``) may follow the path.
    """
    if value is None:
        return None
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    if "#" in value:
        raise ValueError("must not contain a fragment")
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError:
        raise ValueError("has an unbalanced '{' or '}'") from None
    names: set[str] = set()
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            choices = ", ".join("{" + item + "}" for item in allowed)
            raise ValueError(f"unknown placeholder {{{name}}}; allowed: {choices}")
        names.add(name)
    for name in required:
        if name not in names:
            raise ValueError(f"must contain {{{name}}}")
    return value


class ObservedCollectorConfig(CollectorConfig):
    """A collector of an undocumented API: off by default, host and paths overridable."""

    enabled: bool = False
    url: str

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        """A base URL like ``api_url``: scheme, host and optional path prefix."""
        return _normalise_api_url(value)


class ProductsCollectorConfig(ObservedCollectorConfig):
    """Current usage of further cloud products (observed ``cloudlicenseusages`` call)."""

    url: str = CLOUDLICENSE_URL
    path: str = "/{customer_id}/cloudlicenseusages/products/{product}/current"
    products: list[str] = Field(
        default=["secureworkspaceaccess", "xenmobile"], min_length=1, max_length=32
    )

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str | None:
        return _check_path_template(value, ("customer_id", "product"), ("product",))

    @field_validator("products")
    @classmethod
    def _check_products(cls, value: list[str]) -> list[str]:
        """Product names go into URLs and the ``product`` label: a safe alphabet, no repeats."""
        problems: list[tuple[Loc, str]] = []
        seen: set[str] = set()
        for index, product in enumerate(value):
            if not _PRODUCT_RE.fullmatch(product):
                message = "must be 1-64 characters of letters, digits, '_', '.' or '-'"
                problems.append(((index,), message))
            elif product in seen:
                problems.append(((index,), f"duplicate product '{product}'"))
            seen.add(product)
        if problems:
            raise _NestedError(problems)
        return value


class ConcurrentCollectorConfig(ObservedCollectorConfig):
    """The concurrent (CCU) license model summary (observed ``ccu/summary`` call)."""

    url: str = CLOUDLICENSE_URL
    path: str = (
        "/{customer_id}/license/enterprise/cloud/cvad/ccu/summary"
        "?UsageType=device&LicenseModel=Concurrent"
    )

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str | None:
        return _check_path_template(value, ("customer_id",))


class LicenseServersCollectorConfig(ObservedCollectorConfig):
    """Registered on-premises License Servers and their usage (observed License Usage Insights)."""

    url: str = LICENSING_INSIGHTS_URL
    servers_path: str = "/{customer_id}/licenseservers"
    usage_path: str | None = "/{customer_id}/licenseusagedata?date={month}"

    @field_validator("servers_path")
    @classmethod
    def _check_servers_path(cls, value: str) -> str | None:
        return _check_path_template(value, ("customer_id",))

    @field_validator("usage_path")
    @classmethod
    def _check_usage_path(cls, value: str | None) -> str | None:
        return _check_path_template(value, ("customer_id", "month"))


_PARTNER_PLACEHOLDERS = ("partner_id", "customer_id")


class PartnerCollectorConfig(ObservedCollectorConfig):
    """A partner's customers (seed 000). Citrix published no paths for the summaries and the
    per-customer lists: the four ``*_path`` defaults are this exporter's guesses, to be set
    to the real paths (``null`` skips a call). ``active_use`` adds the observed per-customer
    active-use call, one request per customer."""

    url: str = PARTNER_URL
    partner_id: str | None = None
    daas_summary_path: str | None = "/{partner_id}/licenseusage/partner/cloud/cvad/summary"
    daas_customers_path: str | None = "/{partner_id}/licenseusage/partner/cloud/cvad/customers"
    onprem_summary_path: str | None = "/{partner_id}/licenseusage/partner/onprem/cvad/summary"
    onprem_customers_path: str | None = "/{partner_id}/licenseusage/partner/onprem/cvad/customers"
    active_use: bool = False
    active_use_path: str = (
        "/{partner_id}/activeuse/partner/tenant/cloud/cvad/current?customer={tenant_id}"
    )
    active_use_concurrency: int = Field(default=4, ge=1, le=16)

    @field_validator("partner_id")
    @classmethod
    def _check_partner_id(cls, value: str | None) -> str | None:
        """Used in URLs like a customer id."""
        if value is not None and not _CUSTOMER_ID_RE.fullmatch(value):
            raise ValueError("must be 1-64 characters of letters, digits, '_', '.' or '-'")
        return value

    @field_validator(
        "daas_summary_path", "daas_customers_path", "onprem_summary_path", "onprem_customers_path"
    )
    @classmethod
    def _check_paths(cls, value: str | None) -> str | None:
        return _check_path_template(value, _PARTNER_PLACEHOLDERS)

    @field_validator("active_use_path")
    @classmethod
    def _check_active_use_path(cls, value: str) -> str | None:
        return _check_path_template(value, (*_PARTNER_PLACEHOLDERS, "tenant_id"), ("tenant_id",))

    @model_validator(mode="after")
    def _check_some_call(self) -> PartnerCollectorConfig:
        """With every path null the collector would poll nothing."""
        paths = (
            self.daas_summary_path,
            self.daas_customers_path,
            self.onprem_summary_path,
            self.onprem_customers_path,
        )
        if self.enabled and all(path is None for path in paths):
            raise ValueError("set at least one of the *_path keys")
        return self


class CollectorsConfig(_Model):
    """Which collectors run for a customer.

    Each field's default instance defines that collector's default ``enabled`` state, which also
    applies when the section is present but does not mention ``enabled``.
    """

    licensing: CollectorConfig = CollectorConfig(enabled=True)
    monitor: MonitorCollectorConfig = MonitorCollectorConfig(enabled=True)
    partner: PartnerCollectorConfig = PartnerCollectorConfig()
    products: ProductsCollectorConfig = ProductsCollectorConfig()
    concurrent: ConcurrentCollectorConfig = ConcurrentCollectorConfig()
    license_servers: LicenseServersCollectorConfig = LicenseServersCollectorConfig()

    @model_validator(mode="before")
    @classmethod
    def _apply_default_enabled(cls, data: Any) -> Any:
        """Keep ``partner: {interval: 1h}`` disabled, like an absent ``partner`` section."""
        if not isinstance(data, dict):
            return data
        result = dict(data)
        for name, field in cls.model_fields.items():
            value = _empty_if_none(result.get(name, {}))
            if name in result and isinstance(value, dict) and "enabled" not in value:
                default = field.default
                if isinstance(default, CollectorConfig):
                    value = {**value, "enabled": default.enabled}
                result[name] = value
        return result

    def enabled(self) -> list[tuple[str, CollectorConfig]]:
        """``(name, config)`` of the enabled collectors, in declaration order."""
        pairs = ((name, getattr(self, name)) for name in type(self).model_fields)
        return [(name, cfg) for name, cfg in pairs if cfg.enabled]

    def get(self, name: str) -> CollectorConfig:
        """The config of collector ``name``; ``KeyError`` for unknown names (a programming bug)."""
        if name not in type(self).model_fields:
            raise KeyError(f"unknown collector {name!r}")
        value: CollectorConfig = getattr(self, name)
        return value


class CustomerConfig(_Model):
    """One Citrix Cloud customer (tenant) and the API client used to scrape it."""

    customer_id: str
    client_id: str
    client_secret: SecretStr
    region: Region = "us"
    api_url: str | None = None
    ca_file: str | None = None
    collectors: CollectorsConfig = CollectorsConfig()

    _collectors_defaults = field_validator("collectors", mode="before")(_empty_if_none)

    @field_validator("customer_id")
    @classmethod
    def _check_customer_id(cls, value: str) -> str:
        """The id ends up in URLs, headers and metric labels, so keep it to a safe alphabet."""
        if not _CUSTOMER_ID_RE.fullmatch(value):
            raise ValueError("must be 1-64 characters of letters, digits, '_', '.' or '-'")
        return value

    @field_validator("client_id")
    @classmethod
    def _check_client_id(cls, value: str) -> str:
        """An empty client id only fails later, at the first token request."""
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("client_secret")
    @classmethod
    def _check_client_secret(cls, value: SecretStr) -> SecretStr:
        """An empty secret is almost always an unset variable or an empty file."""
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("region", mode="before")
    @classmethod
    def _check_region(cls, value: object) -> object:
        """Give a readable list of choices instead of pydantic's literal_error text."""
        if value not in get_args(Region):
            raise ValueError(f"must be one of {', '.join(get_args(Region))}")
        return value

    @field_validator("api_url")
    @classmethod
    def _check_api_url(cls, value: str | None) -> str | None:
        """The URL is used as a prefix for API paths, so only scheme, host and path make sense."""
        return None if value is None else _normalise_api_url(value)

    @field_validator("ca_file")
    @classmethod
    def _check_ca_file(cls, value: str | None) -> str | None:
        """Fail at start-up (and in --check-config), not at the first TLS handshake."""
        if value is not None:
            try:
                check_ca_file(value)
            except FileProblem as exc:
                raise ValueError(f"cannot read CA file {_quoted(value)}: {exc}") from None
        return value

    @property
    def base_url(self) -> str:
        """API base URL without trailing slash: ``api_url`` if set, else the region's URL."""
        return (self.api_url or REGION_BASE_URLS[self.region]).rstrip("/")

    def interval_for(self, collector: str, default: float) -> float:
        """Poll interval of ``collector``: its own ``interval`` or ``default`` (poll.interval)."""
        interval = self.collectors.get(collector).interval
        return default if interval is None else interval


class Config(_Model):
    """The whole configuration file."""

    web: WebConfig = WebConfig()
    poll: PollConfig = PollConfig()
    customers: list[CustomerConfig] = Field(min_length=1)

    _section_defaults = field_validator("web", "poll", mode="before")(_empty_if_none)

    @field_validator("customers", mode="before")
    @classmethod
    def _customers_none(cls, value: object) -> object:
        """``customers:`` without entries should say "must not be empty", not "not a list"."""
        return [] if value is None else value

    @field_validator("customers")
    @classmethod
    def _check_unique_ids(cls, customers: list[CustomerConfig]) -> list[CustomerConfig]:
        """Metrics are labelled by customer_id, so two entries would overwrite each other."""
        first_index: dict[str, int] = {}
        problems: list[tuple[Loc, str]] = []
        for index, customer in enumerate(customers):
            first = first_index.setdefault(customer.customer_id, index)
            if first != index:
                message = (
                    f"duplicate customer_id '{customer.customer_id}', "
                    f"already used by customers[{first}]"
                )
                problems.append(((index, "customer_id"), message))
        if problems:
            raise _NestedError(problems)
        return customers

    def secrets(self) -> list[str]:
        """Every credential value, so that log output can be redacted."""
        values = (c.client_secret.get_secret_value() for c in self.customers)
        return list(dict.fromkeys(v for v in values if v))


def _normalise_api_url(url: str) -> str:
    """Validate an API base URL and strip trailing slashes (messages never repeat the URL)."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ValueError("must be an absolute http:// or https:// URL")
    if "?" in url or "#" in url:
        raise ValueError("must not contain a query string or fragment")
    if "@" in parts.netloc:
        raise ValueError("must not contain credentials")
    return url.rstrip("/")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    """One error before formatting; ``line`` is looked up from ``loc`` unless given."""

    loc: Loc
    message: str
    line: int | None = None


class _Unresolved:
    """Placeholder for a value whose ``${VAR}`` could not be expanded (already reported)."""


_UNRESOLVED = _Unresolved()


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the configuration file at ``path``; raise :class:`ConfigError`."""
    source = os.fspath(path)
    try:
        text = read_bounded(source, CONFIG_FILE_MAX_BYTES, regular_only=False).decode()
    except FileProblem as exc:
        raise ConfigError(f"{source}: cannot read configuration file: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: configuration file is not valid UTF-8") from None
    return parse_config(text, source=source, environ=environ)


def parse_config(
    text: str, source: str = "<config>", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate configuration ``text``; ``source`` prefixes every error message.

    ``environ`` defaults to ``os.environ`` and is used for ``${VAR}`` expansion.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    try:
        return _parse(text, source, env)
    except RecursionError:
        # config_yaml bounds nesting, so this is a last line of defence for every later stage.
        raise ConfigError(f"{source}: configuration is nested too deeply") from None


def _parse(text: str, source: str, env: Mapping[str, str]) -> Config:
    """The stages of :func:`parse_config` (module docstring)."""
    root, data, problems = _load_yaml(text, source)
    if root is None or data is None:
        raise ConfigError(f"{source}: configuration is empty")
    if not isinstance(data, dict):
        line = root.start_mark.line + 1
        raise ConfigError(f"{source}: top level must be a mapping of keys (line {line})")
    suppressed: set[Loc] = set()
    data = _expand(data, (), env, problems, suppressed)
    _resolve_secret_files(data, problems, suppressed)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems.extend(p for p in _translate(exc) if not _is_suppressed(p.loc, suppressed))
    else:
        if not problems:
            return config
    raise ConfigError(_format_problems(problems, root, source))


def _load_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any, list[_Problem]]:
    """Return the node tree (for line numbers), the plain data of a single YAML document and
    its duplicate keys.

    The node graph is measured before it is constructed, so an alias bomb never expands, and
    searched for duplicate keys before constructing merges ``<<: *x`` into it (an override of
    a merged key is not a duplicate).
    """
    try:
        loader = BoundedLoader(text)  # the reader rejects control characters right away
        try:
            node = loader.get_single_node()
            if node is None:
                return None, None, []
            check_expansion(node)
            duplicates = _duplicate_keys(node, (), set())
            return node, loader.construct_document(node), duplicates
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {describe_yaml_error(exc, text)}") from None


def _duplicate_keys(node: yaml.Node, loc: Loc, seen_nodes: set[int]) -> list[_Problem]:
    """Report keys given twice in one mapping; PyYAML would silently keep the last one."""
    if id(node) in seen_nodes:
        return []
    seen_nodes.add(id(node))
    problems: list[_Problem] = []
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        # A list or mapping as a key fails construction ("found unhashable key") anyway.
        scalar_keyed = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]
        for key, value in scalar_keyed:
            name: str = key.value
            if name in keys and name != "<<":  # several merge keys are fine
                problems.append(_Problem((*loc, name), "duplicate key", key.start_mark.line + 1))
            keys.add(name)
            problems += _duplicate_keys(value, (*loc, name or "?"), seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicate_keys(item, (*loc, index), seen_nodes)
    return problems


def _expand(
    value: Any, loc: Loc, env: Mapping[str, str], problems: list[_Problem], suppressed: set[Loc]
) -> Any:
    """Return a copy of ``value`` with ``${VAR}`` expanded in every string (not in keys)."""
    if isinstance(value, str):
        return _expand_string(value, loc, env, problems, suppressed)
    if isinstance(value, dict):
        return {k: _expand(v, (*loc, k), env, problems, suppressed) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*loc, i), env, problems, suppressed) for i, v in enumerate(value)]
    return value


def _expand_string(
    text: str, loc: Loc, env: Mapping[str, str], problems: list[_Problem], suppressed: set[Loc]
) -> str | _Unresolved:
    """Expand one string; ``$${X}`` stays a literal ``${X}``. Unset variables are reported."""
    references = _ENV_REF_RE.findall(text)  # (escape, name) pairs
    missing = dict.fromkeys(name for escape, name in references if not escape and name not in env)
    if missing:
        for name in missing:
            problems.append(_Problem(loc, f"environment variable {name} is not set"))
        suppressed.add(loc)
        return _UNRESOLVED
    return _ENV_REF_RE.sub(lambda m: "${" + m[2] + "}" if m[1] else env[m[2]], text)


def _resolve_secret_files(
    data: dict[Any, Any], problems: list[_Problem], suppressed: set[Loc]
) -> None:
    """Replace ``client_*_file`` keys of every customer by the file's content, in place."""
    customers = data.get("customers")
    if not isinstance(customers, list):
        return
    for index, customer in enumerate(customers):
        if isinstance(customer, dict):
            for field in _SECRET_FILE_FIELDS:
                _resolve_secret_file(customer, ("customers", index), field, problems, suppressed)


def _resolve_secret_file(
    customer: dict[Any, Any],
    loc: Loc,
    field: str,
    problems: list[_Problem],
    suppressed: set[Loc],
) -> None:
    """Resolve ``<field>_file`` for one customer; on failure report it on the ``_file`` key."""
    file_key = f"{field}_file"
    if file_key not in customer:
        return
    path = customer.pop(file_key)
    file_loc = (*loc, file_key)
    if field in customer:
        if path is not _UNRESOLVED:
            message = f"{field} and {file_key} are mutually exclusive; set only one of them"
            problems.append(_Problem(file_loc, message))
        return
    content: str | None = None
    if path is _UNRESOLVED:
        pass  # the missing variable is reported already
    elif not isinstance(path, str) or not path.strip():
        problems.append(_Problem(file_loc, "must be a file path"))
    else:
        content = _read_secret_file(path, file_loc, problems)
    if content is None:
        suppressed.add((*loc, field))  # "field required" would only repeat the file's problem
    else:
        customer[field] = content


def _read_secret_file(path: str, loc: Loc, problems: list[_Problem]) -> str | None:
    """Return the file's content without trailing whitespace, or report why it is unusable.

    The file must be a regular file of at most ``SECRET_FILE_MAX_BYTES`` (config_files).
    """
    try:
        content = read_bounded(path, SECRET_FILE_MAX_BYTES).decode().rstrip()
    except FileProblem as exc:
        problems.append(_Problem(loc, f"cannot read file {_quoted(path)}: {exc}"))
        return None
    except UnicodeDecodeError:
        problems.append(_Problem(loc, f"file {_quoted(path)} is not valid UTF-8 text"))
        return None
    if not content:
        problems.append(_Problem(loc, f"file {_quoted(path)} is empty"))
        return None
    return content


def _is_suppressed(loc: Loc, suppressed: set[Loc]) -> bool:
    """True if ``loc`` is at or below a value whose problem was already reported."""
    return any(loc[: len(prefix)] == prefix for prefix in suppressed)


# --------------------------------------------------------------------------------------------
# Error translation
# --------------------------------------------------------------------------------------------

_SIMPLE_MESSAGES: dict[str, str] = {
    "missing": "field required",
    "extra_forbidden": "unknown key",
    "string_type": "must be a string; put the value in quotes",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}

_CTX_MESSAGES: dict[str, str] = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must be at least {min_length} characters long",
    "string_too_long": "must be at most {max_length} characters long",
    "too_long": "must have at most {max_length} entries",
}


def field_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """``(key path, message)`` for each error of validating one model directly.

    The command line validates its ``--web.*`` flags with :class:`WebConfig` and names the flag
    for the key path, with the same messages as the config file.
    """
    return [(_format_loc(problem.loc), problem.message) for problem in _translate(exc)]


def _translate(exc: ValidationError) -> Iterator[_Problem]:
    """Turn pydantic errors into problems; input values are never copied into messages."""
    for error in exc.errors(include_url=False, include_input=False):
        loc = tuple(error["loc"])
        nested = (error.get("ctx") or {}).get("error")
        if isinstance(nested, _NestedError):
            for sub_loc, message in nested.problems:
                yield _Problem((*loc, *sub_loc), message)
        else:
            yield _Problem(loc, _message_for(error))


def _message_for(error: ErrorDetails) -> str:
    """A short, value-free message for one pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "value_error":  # the validators' own messages
        return str(ctx["error"])
    if kind == "too_short":
        count = ctx["min_length"]
        return "must not be empty" if count == 1 else f"must have at least {count} entries"
    if kind in _SIMPLE_MESSAGES:
        return _SIMPLE_MESSAGES[kind]
    if kind in _CTX_MESSAGES:
        return _CTX_MESSAGES[kind].format(**ctx)
    return error["msg"]


def _format_problems(problems: Sequence[_Problem], root: yaml.Node, source: str) -> list[str]:
    """One ``source: key.path: message (line N)`` line per problem, ordered by line."""
    lines: list[tuple[int, str]] = []
    for problem in problems:
        line = problem.line if problem.line is not None else _line_of(root, problem.loc)
        path = _format_loc(problem.loc)
        prefix = f"{source}: {path}: " if path else f"{source}: "
        lines.append((line, f"{prefix}{problem.message} (line {line})"))
    lines.sort(key=lambda item: item[0])
    return list(dict.fromkeys(text for _, text in lines))


_MAX_KEY_CHARS = 64
_MAX_PATH_CHARS = 256


def _quoted(path: str) -> str:
    """A file path for a message: ``'/run/secrets/x'``; escaped if it holds control characters
    (one problem stays one line) and cut if absurdly long."""
    if len(path) > _MAX_PATH_CHARS:
        path = path[:_MAX_PATH_CHARS] + "..."
    return f"'{path}'" if path.isprintable() else repr(path)


def _format_loc(loc: Loc) -> str:
    """``('customers', 0, 'client_id')`` -> ``customers[0].client_id``.

    An unknown key is shown as written only if it is short and printable; otherwise quoted and
    escaped (``web['\\r']``), so that one problem stays one line of output.
    """
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and part.isprintable() and 0 < len(part) <= _MAX_KEY_CHARS:
            text += f".{part}" if text else part
        else:
            shown = repr(
                part if len(str(part)) <= _MAX_KEY_CHARS else f"{part!s:.{_MAX_KEY_CHARS}}..."
            )
            text += f"[{shown}]"
    return text


def _line_of(root: yaml.Node, loc: Loc) -> int:
    """1-based line of the key at ``loc``, or of its closest existing ancestor."""
    node = root
    line = root.start_mark.line + 1
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        line, node = child
    return line


def _child(node: yaml.Node, part: str | int) -> tuple[int, yaml.Node] | None:
    """(line, value node) of mapping key or sequence index ``part`` under ``node``, if any."""
    if isinstance(node, yaml.MappingNode):
        found: tuple[int, yaml.Node] | None = None
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                found = (key.start_mark.line + 1, value)  # last one wins, as in PyYAML
        return found
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        item: yaml.Node = node.value[part]
        return item.start_mark.line + 1, item
    return None
