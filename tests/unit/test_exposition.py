"""The pre-rendered /metrics path: cutting, joining, negotiation, the body cache and gzip.

The property test (test_exposition_properties.py) pins that the joined text parses as
prometheus_client's own; these pin the parts around it: a scrape reuses the body joined for an
unchanged store and rejoins after a change, the own metrics are current at every scrape, gzip
is one ordinary gzip stream, and a real exporter's document passes `promtool check metrics`.
"""

from __future__ import annotations

import gzip
import subprocess
import zlib

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.exposition.blocks import Format, join, render, split
from exporter.exposition.scrape import MetricsBody, negotiate, wants_gzip
from exporter.simulator.state import LicenseScenario, SimCustomer, SimulatorState
from exporter.snapshot import SnapshotStore
from exporter.web import create_web_app
from tests.support.helpers import (
    SEED_CUSTOMER,
    SEED_SECRET,
    make_config,
    require_binary,
    scraped,
    value,
)

ACME = ("acme", "licensing")
GLOBEX = ("globex", "licensing")
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
    "text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)


def gauge(customer_id: str, value: float, name: str = "citrix_x", help_text: str = "X.") -> Metric:
    family = GaugeMetricFamily(name, help_text, labels=["customer_id"])
    family.add_metric([customer_id], value)
    return family


def test_split_cuts_at_each_family_and_drops_the_end_of_document() -> None:
    blocks = render([gauge("acme", 1), gauge("acme", 2, name="citrix_y")]).openmetrics
    assert [block[0] for block in blocks] == [
        b"# TYPE citrix_x gauge\n",
        b"# TYPE citrix_y gauge\n",
    ]
    assert blocks[1][1] == b"# HELP citrix_y X.\n# TYPE citrix_y gauge\n"
    assert blocks[1][2] == b'citrix_y{customer_id="acme"} 2.0\n'  # no "# EOF"
    assert split(b"") == ()
    with pytest.raises(ValueError):
        split(b'citrix_x{customer_id="acme"} 1.0\n')


def test_join_puts_every_result_under_the_first_header_of_its_family() -> None:
    first = render([gauge("acme", 1, help_text="First.")])
    second = render([gauge("globex", 2, help_text="Second."), gauge("globex", 3, name="citrix_y")])
    assert join(r.text for r in (first, second)) == (
        b"# HELP citrix_x First.\n# TYPE citrix_x gauge\n"
        b'citrix_x{customer_id="acme"} 1.0\ncitrix_x{customer_id="globex"} 2.0\n'
        b"# HELP citrix_y X.\n# TYPE citrix_y gauge\n"
        b'citrix_y{customer_id="globex"} 3.0\n'
    )


def test_negotiation_follows_prometheus_client() -> None:
    assert negotiate("") == (Format.TEXT, "text/plain; version=0.0.4; charset=utf-8")
    fmt, content_type = negotiate("application/openmetrics-text; version=1.0.0")
    assert fmt is Format.OPENMETRICS
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert negotiate(PROMETHEUS_3_ACCEPT)[0] is Format.OPENMETRICS
    assert wants_gzip("gzip") and wants_gzip("deflate, gzip;q=0.5") and not wants_gzip("br")


def own_registry() -> tuple[CollectorRegistry, Counter]:
    registry = CollectorRegistry()
    return registry, Counter("citrix_own", "Own.", registry=registry)


async def test_a_scrape_reuses_the_joined_body_until_the_store_changes() -> None:
    store = SnapshotStore(3600)
    own, counter = own_registry()
    body = MetricsBody(store, own)
    store.publish(ACME, [gauge("acme", 1)])

    first = (await scraped(body, Format.TEXT)).decode()
    joined = body._published[Format.TEXT]
    counter.inc()
    second = (await scraped(body, Format.TEXT)).decode()
    assert body._published[Format.TEXT] is joined  # nothing published: not joined again
    assert value(first, "citrix_own_total") == 0
    assert value(second, "citrix_own_total") == 1  # the own metrics are current

    store.publish(GLOBEX, [gauge("globex", 2)])
    third = (await scraped(body, Format.TEXT)).decode()
    assert body._published[Format.TEXT] is not joined
    assert value(third, "citrix_x", customer_id="globex") == 2
    assert value(third, "citrix_x", customer_id="acme") == 1

    store.drop(ACME)
    assert value((await scraped(body, Format.TEXT)).decode(), "citrix_x") == 2


async def test_openmetrics_ends_once_with_eof_after_the_own_metrics() -> None:
    store = SnapshotStore(3600)
    own, _ = own_registry()
    store.publish(ACME, [gauge("acme", 1)])
    document = (await scraped(MetricsBody(store, own), Format.OPENMETRICS)).decode()
    assert document.count("# EOF") == 1 and document.endswith("citrix_own_total 0.0\n# EOF\n")


async def test_gzip_is_one_stream_of_the_same_document_and_reuses_the_compressed_body() -> None:
    store = SnapshotStore(3600)
    own, counter = own_registry()
    body = MetricsBody(store, own)
    for index in range(200):
        store.publish((f"c{index}", "licensing"), [gauge(f"c{index}", index)])
    for _ in range(2):
        counter.inc()
        plain = await scraped(body, Format.OPENMETRICS)
        packed = await scraped(body, Format.OPENMETRICS, gzip=True)
        stream = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        assert stream.decompress(packed) == plain == gzip.decompress(packed)
        assert stream.eof and not stream.unused_data  # a single gzip member
        assert len(packed) < len(plain) / 3


async def test_a_real_document_passes_promtool_and_name_filters_still_work(
    base_url: str, exporter_factory, aiohttp_client, sim_state: SimulatorState
) -> None:
    sim_state.customers["other1"] = SimCustomer(
        "other1", "other-client", "other-secret", LicenseScenario(available=99)
    )
    customers = [
        {"customer_id": SEED_CUSTOMER, "client_id": "seed-client", "client_secret": SEED_SECRET},
        {"customer_id": "other1", "client_id": "other-client", "client_secret": "other-secret"},
    ]
    exporter = await exporter_factory(make_config(base_url, customers))
    await exporter.poller.run_all_once()
    client = await aiohttp_client(create_web_app(exporter))
    text = await (await client.get("/metrics")).text()
    assert value(text, "citrix_licenses_available", customer_id="other1") == 99
    assert text.count("# TYPE citrix_licenses_available ") == 1
    promtool = require_binary("promtool", "prometheus")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr

    # As before: prometheus_client filters the metrics that describe themselves.
    resp = await client.get("/metrics", params={"name[]": "citrix_exporter_build_info"})
    assert (await resp.text()).count("# TYPE ") == 1
