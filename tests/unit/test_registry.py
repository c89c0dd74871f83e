"""The collector registry and the `collectors:` section of the config describe the same
collectors: the same names in the same order, each field typed by the registered options."""

from __future__ import annotations

from exporter.collector.registry import REGISTRY, enabled
from exporter.config import CollectorsConfig


def test_every_registered_collector_is_a_config_field_with_its_options_model() -> None:
    fields = [(name, field.annotation) for name, field in CollectorsConfig.model_fields.items()]
    assert fields == [(entry.name, entry.options) for entry in REGISTRY]


def test_enabled_hands_each_collector_its_own_options() -> None:
    collectors = CollectorsConfig.model_validate(
        {"licensing": {"enabled": False}, "partner": {"enabled": True, "interval": "1h"}}
    )
    pairs = [(entry.name, options) for entry, options in enabled(collectors)]
    assert pairs == [("monitor", collectors.monitor), ("partner", collectors.partner)]
    assert collectors.partner.interval_or(300.0) == 3600.0
    assert collectors.monitor.interval_or(300.0) == 300.0
