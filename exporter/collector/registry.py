"""The collectors of this exporter, each declared once: its class (which carries its name) and
the model of its options under ``collectors.<name>`` in a customer's config.

The runtime builds one poll job per enabled collector from this table alone, handing each
collector its own typed options; the interval comes from the same options. The keys, defaults
and validation of the ``collectors:`` section are :class:`~exporter.config.CollectorsConfig`,
whose fields must be these names in this order with these models (tests/unit/test_registry.py
holds the two together). Adding a collector: docs/adding-a-collector.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..config import (
    CollectorConfig,
    CollectorsConfig,
    ConcurrentCollectorConfig,
    LicenseServersCollectorConfig,
    MonitorCollectorConfig,
    PartnerCollectorConfig,
    ProductsCollectorConfig,
)
from .base import Collector, CollectorContext
from .concurrent import ConcurrentCollector
from .license_servers import LicenseServersCollector
from .licensing import LicensingCollector
from .monitor import MonitorCollector
from .partner import PartnerCollector
from .products import ProductsCollector

__all__ = ["REGISTRY", "Registration", "enabled"]

OptionsT = TypeVar("OptionsT", bound=CollectorConfig)
OptionsT_contra = TypeVar("OptionsT_contra", bound=CollectorConfig, contravariant=True)


class CollectorClass(Protocol[OptionsT_contra]):
    """A collector class: its ``name`` and its constructor taking its typed options."""

    name: str

    def __call__(self, ctx: CollectorContext, config: OptionsT_contra, /) -> Collector[Any]: ...


@dataclass(frozen=True)
class Registration(Generic[OptionsT]):
    """One collector and the model of its options; mypy checks that the class takes them."""

    collector: CollectorClass[OptionsT]
    options: type[OptionsT]

    @property
    def name(self) -> str:
        """The collector's name: its key under ``collectors:`` and its ``collector`` label."""
        return self.collector.name


# One line per field of CollectorsConfig, in its order (tests/unit/test_registry.py).
# (Not annotated here: mypy checks each line's class against its options only without an
# expected type.)
_REGISTRATIONS = (
    Registration(LicensingCollector, CollectorConfig),
    Registration(MonitorCollector, MonitorCollectorConfig),
    # Observed (undocumented) APIs, disabled by default: docs/observed-apis.md.
    Registration(PartnerCollector, PartnerCollectorConfig),
    Registration(ProductsCollector, ProductsCollectorConfig),
    Registration(ConcurrentCollector, ConcurrentCollectorConfig),
    Registration(LicenseServersCollector, LicenseServersCollectorConfig),
)
REGISTRY: tuple[Registration[Any], ...] = _REGISTRATIONS


_BY_NAME = {registration.name: registration for registration in REGISTRY}


def enabled(collectors: CollectorsConfig) -> list[tuple[Registration[Any], CollectorConfig]]:
    """The registrations of the collectors a customer enables, each with its own options."""
    return [(_BY_NAME[name], options) for name, options in collectors.enabled()]
