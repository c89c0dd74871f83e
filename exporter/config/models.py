"""The models of the configuration file's sections: web, poll, customers."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from exporter.config.collectors import CollectorsConfig
from exporter.config.errors import Loc, NestedError, quoted
from exporter.config.files import FileProblem, check_ca_file
from exporter.config.types import (
    CUSTOMER_ID_RE,
    Duration,
    Interval,
    Model,
    empty_if_none,
    normalise_api_url,
)
from exporter.config.web import WebConfig

Region = Literal["us", "eu", "ap-s", "jp"]

REGION_BASE_URLS: dict[str, str] = {
    "us": "https://api.cloud.com",
    "eu": "https://api.cloud.com",
    "ap-s": "https://api.cloud.com",
    "jp": "https://api.citrixcloud.jp",
}


class RetryConfig(Model):
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
            raise NestedError([(("max_delay",), "must not be smaller than base_delay")])
        return self


DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_CONCURRENCY = 64
DEFAULT_MAX_SERIES = 20_000


class PollConfig(Model):
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
    # Every customer's `collectors.monitor.omit_zero_states` unless the customer sets it.
    omit_zero_states: bool = False

    _retry_defaults = field_validator("retry", mode="before")(empty_if_none)


class CustomerConfig(Model):
    """One Citrix Cloud customer (tenant) and the API client used to scrape it."""

    customer_id: str
    client_id: str
    client_secret: SecretStr
    region: Region = "us"
    api_url: str | None = None
    ca_file: str | None = None
    collectors: CollectorsConfig = CollectorsConfig()

    _collectors_defaults = field_validator("collectors", mode="before")(empty_if_none)

    @field_validator("customer_id")
    @classmethod
    def _check_customer_id(cls, value: str) -> str:
        """The id ends up in URLs, headers and metric labels, so keep it to a safe alphabet."""
        if not CUSTOMER_ID_RE.fullmatch(value):
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
        return None if value is None else normalise_api_url(value)

    @field_validator("ca_file")
    @classmethod
    def _check_ca_file(cls, value: str | None) -> str | None:
        """Fail at start-up (and in --check-config), not at the first TLS handshake."""
        if value is not None:
            try:
                check_ca_file(value)
            except FileProblem as exc:
                raise ValueError(f"cannot read CA file {quoted(value)}: {exc}") from None
        return value

    @property
    def base_url(self) -> str:
        """API base URL without trailing slash: ``api_url`` if set, else the region's URL."""
        return (self.api_url or REGION_BASE_URLS[self.region]).rstrip("/")


def _inherit_omit_zero_states(customer: CustomerConfig, poll: PollConfig) -> CustomerConfig:
    """``customer`` with ``collectors.monitor.omit_zero_states`` from ``poll`` unless set."""
    monitor = customer.collectors.monitor
    if "omit_zero_states" in monitor.model_fields_set:
        return customer
    monitor = monitor.model_copy(update={"omit_zero_states": poll.omit_zero_states})
    collectors = customer.collectors.model_copy(update={"monitor": monitor})
    return customer.model_copy(update={"collectors": collectors})


class Config(Model):
    """The whole configuration file."""

    web: WebConfig = WebConfig()
    poll: PollConfig = PollConfig()
    customers: list[CustomerConfig] = Field(min_length=1)

    _section_defaults = field_validator("web", "poll", mode="before")(empty_if_none)

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
            raise NestedError(problems)
        return customers

    @field_validator("customers")
    @classmethod
    def _inherit_poll_defaults(
        cls, customers: list[CustomerConfig], info: ValidationInfo
    ) -> list[CustomerConfig]:
        """Options whose global default is under ``poll:`` take it where a customer does not
        set them, here once, so that each collector is handed the value that applies to it."""
        poll = info.data.get("poll")
        if not isinstance(poll, PollConfig):
            return customers  # poll is invalid: that is the error reported
        return [_inherit_omit_zero_states(customer, poll) for customer in customers]

    def secrets(self) -> list[str]:
        """Every credential value, so that log output can be redacted."""
        values = (c.client_secret.get_secret_value() for c in self.customers)
        return list(dict.fromkeys(v for v in values if v))
