"""The DaaS dashboard shows the same with Monitor's `omit_zero_states` as without it.

A real Prometheus scrapes the exporter's Monitor output for one tenant twice, zero-filled (the
default) as job `zero-filled` and without the zero state series as job `omitted`. Every panel
query that reads a state metric is run against each job: a query grouped by a state gives the
same series less those that are 0 (a line at 0 becomes no line); every other query (stats,
per-group columns, the unregistered ratio) gives exactly the same result, its zeros included,
thanks to the `or vector(0)` / `or ... * 0` fallbacks of tools/dashboards.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import generate_latest

from exporter.simulator.monitor import ConnectionState, MonitorData, PowerState, RegistrationState
from exporter.simulator.state import SimulatorState
from tests.support.dashboard_queries import (
    SUBSTITUTIONS,
    VARIABLE,
    evaluation_time,
    load_dashboards,
    targets,
)
from tests.support.helpers import SEED_CUSTOMER, Clock, require_binary, url_of
from tests.support.metric_contract import metric_names
from tests.support.monitor_tenant import T0, monitor_config
from tests.support.processes import Prometheus, wait_until

STATE_LABELS = {"state", "registration_state", "power_state", "fault_state"}
STATE_METRICS = {
    "citrix_sessions",
    "citrix_machines",
    "citrix_machines_by_power_state",
    "citrix_machines_faulted",
}
JOBS = {"zero-filled": False, "omitted": True}
DAAS_UID = "citrix-daas-sessions-machines"


def quiet_tenant() -> MonitorData:
    """Pool A: two registered machines, no sessions. Pool B: one registered machine with an
    active session, one unregistered and off. No faults and no disconnected sessions anywhere,
    so without the zeros the stats and Pool A's columns would have no series at all."""
    tenant = MonitorData(clock=T0)
    pool_a = tenant.add_desktop_group("Pool A")
    pool_b = tenant.add_desktop_group("Pool B")
    tenant.add_machine(pool_a["Id"])
    tenant.add_machine(pool_a["Id"])
    machine = tenant.add_machine(pool_b["Id"])
    tenant.add_machine(
        pool_b["Id"],
        registration_state=RegistrationState.UNREGISTERED,
        power_state=PowerState.OFF,
    )
    tenant.add_session(machine["Id"], connection_state=ConnectionState.ACTIVE)
    return tenant


def state_targets() -> list[tuple[str, str]]:
    """(panel, expr) of every DaaS dashboard query that reads a state metric."""
    board = load_dashboards()["citrix-daas-sessions-machines.json"]
    return [
        (f"{target.panel} / {target.ref}", target.expr)
        for target in targets(board)
        if metric_names(target.expr) & STATE_METRICS
    ]


def substitute(expr: str, job: str) -> str:
    values = {**SUBSTITUTIONS, "job": job, "customer_id": SEED_CUSTOMER}
    return VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], expr)


def by_labels(result: list[dict[str, Any]]) -> dict[frozenset[tuple[str, str]], float]:
    """Series labels (without job and instance) -> value."""
    return {
        frozenset((k, v) for k, v in item["metric"].items() if k not in ("job", "instance")):
            float(item["value"][1])
        for item in result
    }  # fmt: skip


def expected_without_zeros(
    filled: dict[frozenset[tuple[str, str]], float],
) -> dict[frozenset[tuple[str, str]], float]:
    """What a query gives without the zero state series: a series grouped by a state is gone
    when it is 0; any other is the same."""
    return {
        labels: value
        for labels, value in filled.items()
        if value != 0 or not {name for name, _ in labels} & STATE_LABELS
    }


async def exposition(factory: Any, base_url: str, omit: bool) -> bytes:
    exporter = await factory(monitor_config(base_url, omit_zero_states=omit), clock=Clock(T0))
    assert await exporter.poller.run_all_once()
    return bytes(generate_latest(exporter.registry))


async def test_state_panels_read_the_same_with_and_without_zero_series(
    tmp_path: Path, sim_state: SimulatorState, base_url, exporter_factory, aiohttp_server
):
    prometheus_bin = require_binary("prometheus")
    sim_state.customers[SEED_CUSTOMER].monitor = quiet_tenant()
    bodies = {job: await exposition(exporter_factory, base_url, omit) for job, omit in JOBS.items()}
    app = web.Application()
    for job, body in bodies.items():

        async def serve(_: web.Request, body: bytes = body) -> web.Response:
            return web.Response(body=body)

        app.router.add_get(f"/{job}", serve)
    server = url_of(await aiohttp_server(app)).removeprefix("http://")
    config = "global:\n  scrape_interval: 1s\nscrape_configs:\n" + "".join(
        f"  - job_name: {job}\n    metrics_path: /{job}\n"
        f"    static_configs:\n      - targets: ['{server}']\n"
        for job in JOBS
    )
    prometheus = Prometheus(prometheus_bin, tmp_path, config)
    checked = state_targets()
    assert len(checked) >= 15, checked  # the stats, the state panels and the table's columns
    try:
        await prometheus.start()
        ready = 'count(count by (job) (citrix_machines_in_maintenance{job=~".+"}))'
        await wait_until(lambda: _has_value(prometheus, ready, 2.0), 30)
        for panel, expr in checked:
            at = evaluation_time(DAAS_UID, panel.rsplit(" / ", 1)[0]).get("time")
            at_time = float(at) if at else None
            filled = by_labels(await prometheus.query(substitute(expr, "zero-filled"), at_time))
            omitted = by_labels(await prometheus.query(substitute(expr, "omitted"), at_time))
            assert filled, f"{panel}: no series: {expr}"
            assert omitted == expected_without_zeros(filled), f"{panel}: {expr}"
    finally:
        await prometheus.stop()


async def _has_value(prometheus: Prometheus, expr: str, value: float) -> bool:
    result = await prometheus.query(expr)
    return bool(result) and float(result[0]["value"][1]) == value
