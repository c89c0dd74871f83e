"""The HTTP endpoints, and staleness of a failing collector's values."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from exporter.log import MAX_ERROR_CHARS
from exporter.simulator.state import LicenseScenario, SimCustomer, SimulatorState
from exporter.web import create_web_app
from tests.support.helpers import SEED_CLIENT, SEED_CUSTOMER, SEED_SECRET, Clock, make_config, value


async def test_endpoints_before_and_after_the_first_poll(
    base_url, exporter_factory, aiohttp_client, sim_state: SimulatorState
):
    exporter = await exporter_factory(make_config(base_url))
    client = await aiohttp_client(create_web_app(exporter))
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 503
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert "citrix_licenses_available" not in await resp.text()

    await exporter.poller.run_all_once()
    upstream_calls = len(sim_state.requests)
    assert (await client.get("/readyz")).status == 200
    resp = await client.get("/metrics")
    text = await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert value(text, "citrix_licenses_available", customer_id=SEED_CUSTOMER) == 25
    assert value(text, "citrix_exporter_build_info") == 1
    resp = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await resp.text()).rstrip().endswith("# EOF")
    assert len(sim_state.requests) == upstream_calls  # scrapes never call upstream

    page = await (await client.get("/")).text()
    assert SEED_CUSTOMER in page and "licensing" in page and "/metrics" in page
    assert SEED_SECRET not in page
    for token in sim_state.issued_tokens:
        assert token not in page


async def test_failure_sets_up_zero_keeps_values_then_drops_them_after_max_staleness(
    base_url, exporter_factory, sim_state: SimulatorState
):
    sim_state.customers["other1"] = SimCustomer(
        "other1", "other-client", "other-secret", LicenseScenario(available=99)
    )
    config = make_config(
        base_url,
        [
            {
                "customer_id": SEED_CUSTOMER,
                "client_id": "seed-client",
                "client_secret": SEED_SECRET,
            },
            {"customer_id": "other1", "client_id": "other-client", "client_secret": "other-secret"},
        ],
        max_staleness=600,
        retry={"attempts": 1},
    )
    clock = Clock(1_800_000_000.0)
    exporter = await exporter_factory(config, clock=clock)
    await exporter.poller.run_all_once()
    seed_job, other_job = exporter.poller.jobs

    sim_state.faults.error_next = 1  # the seed customer's next call fails
    assert not await exporter.poller.poll_once(seed_job)
    text = generate_latest(exporter.registry).decode()
    assert value(text, "citrix_up", customer_id=SEED_CUSTOMER) == 0
    assert value(text, "citrix_licenses_available", customer_id=SEED_CUSTOMER) == 25  # kept

    clock.now += 601
    assert await exporter.poller.poll_once(other_job)
    text = generate_latest(exporter.registry).decode()
    assert value(text, "citrix_licenses_available", customer_id=SEED_CUSTOMER) is None  # dropped
    assert value(text, "citrix_up", customer_id=SEED_CUSTOMER) == 0
    assert value(text, "citrix_licenses_available", customer_id="other1") == 99
    assert value(text, "citrix_up", customer_id="other1") == 1

    assert await exporter.poller.poll_once(seed_job)  # recovers
    text = generate_latest(exporter.registry).decode()
    assert value(text, "citrix_licenses_available", customer_id=SEED_CUSTOMER) == 25
    assert (
        value(text, "citrix_last_success_timestamp_seconds", customer_id=SEED_CUSTOMER) == clock.now
    )


async def test_telemetry_path_that_cannot_be_served_is_refused(base_url, exporter_factory):
    """The rules of the config key (config.web.check_telemetry_path) also guard the app:
    no relative path, no endpoint of our own, no route pattern, nothing but a plain path."""
    exporter = await exporter_factory(make_config(base_url))
    paths = ("metrics", "/", "/healthz", "/readyz", "/-/reload", "/metrics/{job}", "/met rics")
    for path in (*paths, "/metrics?x=1", "/a#b"):
        with pytest.raises(ValueError):
            create_web_app(exporter, path)


async def test_a_custom_telemetry_path_is_served_and_the_landing_page_links_it(
    base_url, exporter_factory, aiohttp_client
):
    exporter = await exporter_factory(make_config(base_url))
    client = await aiohttp_client(create_web_app(exporter, "/custom/path"))
    resp = await client.get("/custom/path")
    assert resp.status == 200 and "citrix_exporter_build_info" in await resp.text()
    assert (await client.get("/metrics")).status == 404
    assert 'href="/custom/path"' in await (await client.get("/")).text()


async def test_a_tenant_without_daas_is_not_entitled_not_down(
    base_url, exporter_factory, aiohttp_client, sim_state: SimulatorState
):
    """Monitor's 404 for a licensing-only customer: a state shown on every surface, no failure."""
    sim_state.customers[SEED_CUSTOMER].monitor.entitled = False
    config = make_config(base_url, [{
        "customer_id": SEED_CUSTOMER, "client_id": SEED_CLIENT, "client_secret": SEED_SECRET,
        "collectors": {"monitor": {"enabled": True}},
    }])  # fmt: skip
    exporter = await exporter_factory(config)
    assert await exporter.poller.run_all_once() is True
    client = await aiohttp_client(create_web_app(exporter))
    text = await (await client.get("/metrics")).text()
    assert value(text, "citrix_up", collector="monitor") == 1
    assert value(text, "citrix_collector_entitled", collector="monitor") == 0
    assert value(text, "citrix_collector_entitled", collector="licensing") == 1
    assert "citrix_sessions{" not in text and "citrix_machines{" not in text
    page = await (await client.get("/")).text()
    assert "<td>monitor</td>" in page and "<td>not entitled</td>" in page
    assert "monitor_desktop_groups: HTTP 404" in page


async def test_landing_page_errors_are_scrubbed_and_cut(base_url, exporter_factory, aiohttp_client):
    exporter = await exporter_factory(make_config(base_url))
    job = exporter.poller.jobs[0]
    job.status.last_ok = False
    job.status.last_error = f"HTTP 400 (echo: client_secret={SEED_SECRET} " + "x" * 1000 + ")"
    page = await (await aiohttp_client(create_web_app(exporter))).get("/")
    text = await page.text()
    assert SEED_SECRET not in text and "client_secret=&lt;redacted&gt;" in text
    assert "x" * (MAX_ERROR_CHARS - 60) + "…</td>" in text and "x" * MAX_ERROR_CHARS not in text


async def test_metrics_is_sent_in_parts_with_its_length_and_head_gets_the_headers_only(
    base_url, exporter_factory, aiohttp_client
):
    """The document goes out as the published body and then the own metrics (no copy of the
    whole); Content-Length covers both parts, and a HEAD answer carries no body, so the next
    request on the same connection still reads a clean response."""
    exporter = await exporter_factory(make_config(base_url))
    await exporter.poller.run_all_once()
    client = await aiohttp_client(create_web_app(exporter))
    plain = {"Accept-Encoding": "identity"}  # aiohttp's client asks for gzip by default
    resp = await client.get("/metrics", headers=plain)
    assert int(resp.headers["Content-Length"]) == len(await resp.read())
    for headers in (plain, {"Accept-Encoding": "gzip"}):
        resp = await client.get("/metrics", headers=headers)  # the client decompresses gzip
        assert value(await resp.text(), "citrix_licenses_available") == 25
        head = await client.head("/metrics", headers=headers)
        assert head.status == 200 and int(head.headers["Content-Length"]) > 0
        assert await head.read() == b""
    assert (await client.get("/healthz")).status == 200
