"""The configuration file: one module per job, every public name re-exported here.

``types`` (durations, intervals, URLs, the strict base model), ``web`` (listen address and
metrics path), ``models`` (the sections: web, poll, customers), ``collectors`` (per-collector
options), ``loader`` (file -> YAML with lines -> ``${VAR}`` -> secret files -> models), ``errors``
(``ConfigError`` and the translation of validation errors to key path and line), ``files`` and
``yaml_bounds`` (bounded reads and YAML).
"""

from exporter.config.collectors import (
    CLOUDLICENSE_URL,
    LICENSING_INSIGHTS_URL,
    PARTNER_URL,
    CollectorConfig,
    CollectorsConfig,
    ConcurrentCollectorConfig,
    LicenseServersCollectorConfig,
    MonitorCollectorConfig,
    PartnerCollectorConfig,
    ProductsCollectorConfig,
)
from exporter.config.errors import ConfigError, field_problems
from exporter.config.loader import load_config, parse_config
from exporter.config.models import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_SERIES,
    REGION_BASE_URLS,
    Config,
    CustomerConfig,
    PollConfig,
    RetryConfig,
)
from exporter.config.web import RESERVED_PATHS, WebConfig, parse_listen_address

__all__ = [
    "CLOUDLICENSE_URL",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_SERIES",
    "LICENSING_INSIGHTS_URL",
    "PARTNER_URL",
    "REGION_BASE_URLS",
    "RESERVED_PATHS",
    "CollectorConfig",
    "CollectorsConfig",
    "ConcurrentCollectorConfig",
    "Config",
    "ConfigError",
    "CustomerConfig",
    "LicenseServersCollectorConfig",
    "MonitorCollectorConfig",
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
