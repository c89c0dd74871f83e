"""docs/observed-apis.md: its documented/observed/unknown table lists every endpoint each
collector calls, with the right status and the configuration's real defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporter.collector.monitor import ENDPOINTS as MONITOR_ENDPOINTS
from exporter.collector.registry import REGISTRY
from exporter.config import CollectorsConfig
from exporter.simulator.state import SimulatorState
from tests.support.helpers import make_config, missing, samples
from tests.support.observed_helpers import fixed_state, observed_config, scrape

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "observed-apis.md"
HEADING = "## Which Citrix APIs are documented"
STATUSES = {"documented", "observed", "unknown — configurable"}
# What the issue and the reference say about each call: the contract of the table.
EXPECTED = {
    ("licensing", "licensing_current"): "documented",
    ("licensing", "licensing_historical_usage"): "documented",
    **{("monitor", name): "documented" for name in MONITOR_ENDPOINTS.values()},
    ("products", "licensing_product_current"): "observed",
    ("concurrent", "licensing_ccu_summary"): "observed",
    ("license_servers", "license_servers_status"): "observed",
    ("license_servers", "license_servers_usage"): "observed",
    ("partner", "partner_active_use"): "observed",
    ("partner", "partner_onprem_summary"): "unknown — configurable",
    ("partner", "partner_onprem_customers"): "unknown — configurable",
    ("partner", "partner_daas_summary"): "unknown — configurable",
    ("partner", "partner_daas_customers"): "unknown — configurable",
}
OBSERVED_COLLECTORS = ("products", "concurrent", "license_servers", "partner")


def table_rows() -> list[list[str]]:
    """The cells of the table under HEADING (header and separator dropped)."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(HEADING, 1)[1]
    lines = []
    for line in section.lstrip().splitlines():
        if not line.startswith("|"):
            break
        lines.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert lines[0][0] == "collector" and set(lines[1][0]) == {"-"}
    return lines[2:]


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def table() -> dict[tuple[str, str], tuple[str, str, list[str]]]:
    """(collector, endpoint) -> (status, call, config keys)."""
    found = {}
    for collector, endpoints, call, keys, status in table_rows():
        assert status in STATUSES, status
        for endpoint in ticked(endpoints):
            for name in ticked(collector):  # not the token row ("all")
                found[(name, endpoint)] = (status, ticked(call)[0], ticked(keys))
    return found


def test_every_endpoint_is_listed_with_its_status():
    statuses = {key: status for key, (status, _, _) in table().items()}
    assert statuses == EXPECTED
    assert {collector for collector, _ in EXPECTED} == {entry.name for entry in REGISTRY}


def test_observed_calls_show_the_configured_defaults():
    """The call column is `GET` + the default url + the default path of the listed key, and
    every key the table names exists in that collector's configuration."""
    defaults = CollectorsConfig()
    for (collector, endpoint), (status, call, keys) in table().items():
        if status == "documented":
            assert call.split()[1].startswith("{api_url}/"), endpoint
            continue
        config = getattr(defaults, collector)
        assert set(keys) <= set(type(config).model_fields), (endpoint, keys)
        assert "url" in keys, endpoint
        [path_key] = [key for key in keys if key.endswith("path")]
        assert call == f"GET {config.url}{getattr(config, path_key)}", endpoint


def test_unknown_calls_are_not_on_the_observed_list_of_the_reference():
    # The project's shared/ folder sits beside the repository (also in CI).
    reference = REPO.parent / "shared" / "reference" / "citrix-cloud-api.md"
    if not reference.exists():
        missing(f"reference digest {reference} (the project's shared/ beside the repo) not found")
    observed = reference.read_text(encoding="utf-8").split("## Licensing, observed", 1)[1]
    observed = observed.split("\n## ", 1)[0]
    for (_, endpoint), (status, call, _) in table().items():
        path = call.split("}", 1)[1].split("?")[0]  # after {customer_id} / {partner_id}
        # `{product}` here is `{secureworkspaceaccess|xenmobile}` there.
        pattern = re.escape(path).replace(r"\{product\}", r"\{[^}]*\}")
        if status == "observed":
            assert re.search(pattern + r"[`?]", observed), endpoint
            assert call.split("/")[2] in observed, endpoint  # the host
        elif status.startswith("unknown"):
            assert not re.search(pattern, observed), endpoint


@pytest.fixture
def sim_state() -> SimulatorState:
    return fixed_state(tenants=2)


@pytest.mark.parametrize("collector", ["licensing", *OBSERVED_COLLECTORS])
async def test_the_endpoints_a_collector_calls_are_its_rows(
    collector, base_url, exporter_factory, sim_state
):
    """Run the collector against the simulator: the endpoint names it counts in
    citrix_api_requests_total are exactly those the table gives it."""
    if collector == "licensing":
        config = make_config(base_url)  # documented: no url of its own
    else:
        options = {"active_use": True} if collector == "partner" else {}
        config = observed_config(base_url, **{collector: options})
    _, text = await scrape(exporter_factory, config)
    called = {
        dict(labels)["endpoint"]
        for (name, labels) in samples(text)
        if name == "citrix_api_requests_total"
    }
    listed = {endpoint for (name, endpoint) in EXPECTED if name == collector}
    assert called == listed
