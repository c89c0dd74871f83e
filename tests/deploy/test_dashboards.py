"""Grafana dashboards: generated JSON is up to date, follows grafana/dashboard-linter's conventions,
uses only metrics of the exporter's contract, and every panel query returns data from a real
Prometheus scraping the exporter polling the demo's customers (`--demo`'s simulator state)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from exporter.simulator.app import create_app
from exporter.simulator.monitor import ConnectionState, PowerState, RegistrationState
from exporter.simulator.scenarios import demo_state
from exporter.simulator.state import SimulatorState
from tests.support.dashboard_queries import (
    DASHBOARD_DIR,
    DEMO_CUSTOMERS,
    JOB,
    SUBSTITUTIONS,
    VARIABLE,
    Target,
    evaluation_time,
    load_dashboards,
    panels,
    targets,
)
from tests.support.helpers import require_binary
from tests.support.metric_contract import (
    COUNTERS,
    METRICS,
    metric_names,
    selectors,
)
from tests.support.processes import Prometheus, exporter_process, scrape_config, wait_until
from tests.support.scenarios import trickle, write_demo_config
from tools.dashboards import build_all
from tools.grafana import PROVISIONED_DATASOURCE_UID

REPO = Path(__file__).resolve().parents[2]
PROVISIONING_DIR = REPO / "grafana" / "provisioning"

# Stable uids: links and bookmarks point at them. Never change one; add new dashboards here.
EXPECTED_UIDS = {
    "citrix-cloud-licensing.json": "citrix-cloud-licensing",
    "citrix-daas-sessions-machines.json": "citrix-daas-sessions-machines",
    "citrix-exporter-health.json": "citrix-exporter-health",
}
ALL_DASHBOARDS = frozenset(EXPECTED_UIDS.values())

# Dashboards whose every query must return at least one series against the demo's data.
REQUIRE_SERIES: frozenset[str] = ALL_DASHBOARDS

# Filter variables each dashboard must have (besides `datasource`), in this order.
EXPECTEDVARIABLES = {
    "citrix-cloud-licensing": ["job", "instance", "customer_id", "product"],
    "citrix-daas-sessions-machines": ["job", "instance", "customer_id", "delivery_group"],
    "citrix-exporter-health": ["job", "instance", "customer_id", "collector"],
}


# Units grafana/dashboard-linter accepts (the subset these dashboards may use).
VALID_UNITS = {
    "none", "short", "percent", "percentunit", "s", "ms", "d", "dtdurations",
    "dateTimeAsIso", "dateTimeFromNow", "reqps", "ops", "cps", "cpm", "opm", "bytes",
}  # fmt: skip
GRAFANAVARIABLES = {
    "__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms",
}  # fmt: skip
DATASOURCE_UIDS = {"${datasource}", "$datasource"}

_RANGE_FUNCTION = re.compile(
    r"\b(rate|irate|increase)\(\s*([a-zA-Z_:][\w:]*)\s*\{[^}]*\}\s*\[([^\]]+)\]\s*\)"
)
_LABEL_VALUES = re.compile(r"label_values\((.+),\s*(\w+)\)")


# -- loading -------------------------------------------------------------------------------------


def query_variables(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in board["templating"]["list"] if v["type"] == "query"]


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    return load_dashboards()


# -- generated files -----------------------------------------------------------------------------


def test_committed_dashboards_match_the_generator():
    generated = build_all()
    committed = {path.name: path.read_text() for path in DASHBOARD_DIR.glob("*.json")}
    assert sorted(committed) == sorted(generated), "stray or missing files in grafana/dashboards"
    stale = [name for name, text in generated.items() if committed[name] != text]
    assert not stale, f"out of date, run `python -m tools.dashboards`: {stale}"


# -- dashboard-level conventions ------------------------------------------------------------------


def test_uids_are_stable_and_unique(dashboards):
    assert {name: board["uid"] for name, board in dashboards.items()} == EXPECTED_UIDS
    titles = [board["title"] for board in dashboards.values()]
    assert len(set(titles)) == len(titles)


def test_no_import_placeholders():
    """`__inputs` / `${DS_...}` only work through the import UI and break file provisioning."""
    for path in DASHBOARD_DIR.glob("*.json"):
        text = path.read_text()
        assert "__inputs" not in text and "__requires" not in text, path.name
        assert "${DS_" not in text and "$DS_" not in text, path.name
        assert json.loads(text)["id"] is None, path.name


def test_datasource_variable(dashboards):
    for name, board in dashboards.items():
        variables = board["templating"]["list"]
        datasource = [v for v in variables if v["type"] == "datasource"]
        assert len(datasource) == 1, name
        ds = datasource[0]
        assert (ds["name"], ds["label"], ds["query"]) == ("datasource", "Data source", "prometheus")
        assert ds["current"]["value"] == PROVISIONED_DATASOURCE_UID, name


def test_filter_variables(dashboards):
    for name, board in dashboards.items():
        variables = query_variables(board)
        assert [v["name"] for v in variables] == EXPECTEDVARIABLES[board["uid"]], name
        exprs = " ".join(t.expr for t in targets(board))
        for v in variables:
            where = f"{name}: variable {v['name']}"
            assert v["datasource"]["uid"] in DATASOURCE_UIDS, where
            assert v["multi"] and v["includeAll"], where
            assert v["allValue"] == ".+", where  # dashboard-linter's template rules
            assert v["refresh"] == 2, where  # reload on time range change
            assert v["label"], where
            assert _LABEL_VALUES.fullmatch(v["query"]), where
            assert v["definition"] == v["query"], where
            assert f"${v['name']}" in exprs, f"{where} is used by no panel"
        job, instance = variables[0], variables[1]
        assert (job["label"], instance["label"]) == ("Job", "Instance"), name


def test_links_between_dashboards(dashboards):
    for board in dashboards.values():
        tags = set(board["tags"])
        for link in board["links"]:
            assert link["type"] == "dashboards" and set(link["tags"]) <= tags


_DATA_LINK = re.compile(
    r"/d/([\w-]+)\?var-(\w+)=\$\{__value\.raw\}&\$\{__url_time_range\}"
    r"&\$\{datasource:queryparam\}"
)


def data_links(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, url) of every data link set on a field of a panel."""
    return [
        (panel["title"], link["url"])
        for panel in panels(board)
        for override in panel["fieldConfig"]["overrides"]
        for prop in override["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]


def test_data_links_open_a_dashboard_filtered_on_the_clicked_value(dashboards):
    """A customer's cell opens a shipped dashboard with that customer selected (its variable
    set to the cell's value), keeping the time range and the data source."""
    by_uid = {board["uid"]: board for board in dashboards.values()}
    found = []
    for board in dashboards.values():
        for panel, url in data_links(board):
            match = _DATA_LINK.fullmatch(url)
            assert match, f"{board['uid']} / {panel}: {url}"
            uid, variable = match.groups()
            assert uid in by_uid, f"{panel}: no dashboard {uid}"
            assert variable in [v["name"] for v in query_variables(by_uid[uid])], url
            found.append(panel)
    assert ALL_CUSTOMERS in found and "Partner customers" in found


# -- panel-level conventions ----------------------------------------------------------------------


def test_every_panel_has_datasource_unit_and_description(dashboards):
    for name, board in dashboards.items():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for panel in panels(board):
            where = f"{name} / {panel['title']}"
            assert panel["title"] and panel["description"], where
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            unit = panel["fieldConfig"]["defaults"].get("unit")
            assert unit in VALID_UNITS, f"{where}: unit {unit!r}"
            for override in panel["fieldConfig"]["overrides"]:
                for prop in override["properties"]:
                    if prop["id"] == "unit":
                        assert prop["value"] in VALID_UNITS, where
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, where
            assert panel["targets"], f"{where}: no targets"
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), where
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in DATASOURCE_UIDS, where
                assert target["datasource"]["type"] == "prometheus", where
                assert target["expr"].strip(), where


def test_targets_use_contract_metrics_and_labels(dashboards):
    for board in dashboards.values():
        for target in targets(board):
            for metric in metric_names(target.expr):
                assert metric in METRICS, f"{target}: unknown metric {metric}"
            for metric, matchers in selectors(target.expr):
                assert metric in METRICS, f"{target}: unknown metric {metric}"
                unknown = set(matchers) - METRICS[metric] - {"job", "instance"}
                assert not unknown, f"{target}: {metric} has no label {unknown}"


def test_targets_filter_on_every_variable_that_applies(dashboards):
    """job and instance on every selector (dashboard-linter's target rules), and each filter
    variable on every metric that has the label; variables are matched with =~ (multi-select)."""
    for board in dashboards.values():
        names = [v["name"] for v in query_variables(board)]
        for target in targets(board):
            found = selectors(target.expr)
            bare = metric_names(target.expr) - {metric for metric, _ in found}
            assert not bare, f"{target}: selector without matchers: {bare}"
            for metric, matchers in found:
                for name in names:
                    if name in {"job", "instance"} or name in METRICS.get(metric, set()):
                        assert matchers.get(name) == ("=~", f"${name}"), (
                            f'{target}: {metric} lacks {name}=~"${name}"'
                        )
                for label, (op, value) in matchers.items():
                    if "$" in value:
                        assert op == "=~", f"{target}: {label}{op}{value!r} must use =~"


def test_counters_are_rated_over_rate_interval(dashboards):
    for board in dashboards.values():
        for target in targets(board):
            ranged = _RANGE_FUNCTION.findall(target.expr)
            rated = [metric for _, metric, _ in ranged]
            for metric, _ in selectors(target.expr):
                if metric in COUNTERS:
                    assert metric in rated, f"{target}: counter {metric} outside rate()"
            assert len(rated) == sum(1 for m, _ in selectors(target.expr) if m in COUNTERS), (
                f"{target}: a counter appears outside rate()"
            )
            for function, metric, window in ranged:
                assert metric in COUNTERS, f"{target}: {function}() of non-counter {metric}"
                if function in {"rate", "irate"}:
                    assert window == "$__rate_interval", f"{target}: {function}(...[{window}])"


def test_only_known_variables_are_referenced(dashboards):
    for board in dashboards.values():
        known = {v["name"] for v in board["templating"]["list"]} | GRAFANAVARIABLES
        for target in targets(board):
            for braced, plain in VARIABLE.findall(target.expr):
                assert (braced or plain) in known, f"{target}: unknown variable"


# -- provisioning ---------------------------------------------------------------------------------


def test_provisioning_files_parse():
    datasources = yaml.safe_load(
        (PROVISIONING_DIR / "datasources/citrix-cloud-exporter.yml").read_text()
    )
    assert datasources["apiVersion"] == 1
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["uid"] == PROVISIONED_DATASOURCE_UID
    assert source["url"].startswith("http")
    providers = yaml.safe_load(
        (PROVISIONING_DIR / "dashboards/citrix-cloud-exporter.yml").read_text()
    )
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/var/lib/grafana/dashboards")
    assert provider["folder"]


# -- against a real Prometheus --------------------------------------------------------------------

WAIT_FOR_SERIES = 40.0
ALL_CUSTOMERS = "Customers by overage and share used"  # the licensing dashboard's first table


def substitute(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in SUBSTITUTIONS, f"no test value for ${name} in {expr}"
        return SUBSTITUTIONS[name]

    return VARIABLE.sub(value, expr)


async def api(prometheus: Prometheus, path: str, **params: Any) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{prometheus.url}/api/v1/{path}", params=params) as resp,
    ):
        body: dict[str, Any] = await resp.json()
    return body


@pytest.fixture
def sim_state() -> SimulatorState:
    """What `--demo` serves (three customers with living Monitor tenants), here served by the
    `sim_server` fixture in the test's loop so that the test can add activity to it."""
    return demo_state()


async def test_every_panel_query_runs_against_prometheus(tmp_path, sim_state, base_url):
    """The exporter process runs `--demo`'s config, but polling every 2 s instead of 15 s.
    The logon histogram only has sessions that started after the exporter did, and the demo's
    own sessions and failures arrive at random, so the test adds a logon and a failure to each
    tenant every second: every DaaS panel then has data within seconds, not minutes."""
    prometheus_bin = require_binary("prometheus")
    boards = list(load_dashboards().values())
    config = write_demo_config(tmp_path / "exporter.yml", base_url, sim_state)
    exporter, url = await exporter_process(tmp_path, "--config.file", str(config))
    activity = asyncio.create_task(trickle(sim_state, every=1.0))
    prometheus = Prometheus(
        prometheus_bin,
        tmp_path,
        scrape_config(url, JOB),
    )
    try:
        await prometheus.start()
        await _check_targets(prometheus, [t for board in boards for t in targets(board)])
        await _check_variables(prometheus, boards)
        await _check_metadata(prometheus, boards)
    finally:
        activity.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await activity
        await prometheus.stop()
        assert await exporter.stop() == 0


async def _check_targets(prometheus: Prometheus, all_targets: list[Target]) -> None:
    """Every query is valid PromQL; those of REQUIRE_SERIES dashboards return data (waiting for
    the first scrapes, and for two samples under rate())."""
    pending = list(all_targets)
    deadline = time.monotonic() + WAIT_FOR_SERIES
    while pending:
        still = []
        for target in pending:
            at = evaluation_time(target.dashboard, target.panel)
            body = await api(prometheus, "query", query=substitute(target.expr), **at)
            assert body["status"] == "success", f"{target}\n-> {body}"
            if target.dashboard in REQUIRE_SERIES and not body["data"]["result"]:
                still.append(target)
        pending = still
        if pending and time.monotonic() > deadline:
            listing = "\n".join(str(t) for t in pending)
            pytest.fail(f"no series after {WAIT_FOR_SERIES:.0f}s for:\n{listing}")
        if pending:
            await asyncio.sleep(1)


async def _check_variables(prometheus: Prometheus, boards: list[dict[str, Any]]) -> None:
    """Each variable's label_values() query, the way Grafana runs it (the series API)."""
    for board in boards:
        for variable in query_variables(board):
            match = _LABEL_VALUES.fullmatch(variable["query"])
            assert match, variable
            selector, label = match.groups()
            body = await api(
                prometheus, f"label/{label}/values", **{"match[]": substitute(selector)}
            )
            where = f"{board['uid']}: variable {variable['name']}"
            assert body["status"] == "success", f"{where}: {body}"
            if board["uid"] not in REQUIRE_SERIES:
                continue
            values = body["data"]
            assert values, f"{where}: no values"
            if label == "job":
                assert JOB in values, where
            if label == "customer_id":
                assert set(DEMO_CUSTOMERS) <= set(values), where


async def _check_metadata(prometheus: Prometheus, boards: list[dict[str, Any]]) -> None:
    """The exporter exposes (at least a TYPE line for) every metric those dashboards use, even
    ones without series yet, such as citrix_token_request_failures_total: catches misspelt
    names that the `or ... * 0` fallbacks would hide."""
    body = await api(prometheus, "metadata")
    assert body["status"] == "success", body
    exposed = set(body["data"])
    for board in boards:
        if board["uid"] not in REQUIRE_SERIES:
            continue
        for target in targets(board):
            for metric in metric_names(target.expr):
                if metric in {"up", "scrape_duration_seconds"}:
                    continue  # made by Prometheus, not scraped
                family = re.sub(r"_(total|bucket|sum|count)$", "", metric)
                assert {metric, family} & exposed, f"{target}: {metric} is not exposed"


# -- key panels show the right values -------------------------------------------------------------


def frozen_demo_state() -> SimulatorState:
    """The demo's customers with the clock's effects switched off: no licence drift, and static
    Monitor tenants (no sessions coming and going), so each key panel has one right value. The
    demo expires all of a customer's licenses at once; here acme-demo's and globex-demo's next
    expiry covers only part of them, so an "expiring" panel showing "available" is caught."""
    state = demo_state()
    state.customers["acme-demo"].licensing.expiring_count = 125
    state.customers["globex-demo"].licensing.expiring_count = 40
    for customer in state.customers.values():
        customer.licensing.drift_amplitude = 0
        if customer.monitor is not None:
            customer.monitor.life = None
    return state


def panel_expr(boards: list[dict[str, Any]], uid: str, title: str, ref: str = "A") -> str:
    (board,) = [b for b in boards if b["uid"] == uid]
    found = [t.expr for t in targets(board) if t.panel == title and t.ref == ref]
    assert len(found) == 1, f"{uid} / {title} / {ref}: {len(found)} targets"
    return substitute(found[0])


def by_license(result: list[dict[str, Any]]) -> dict[str, float]:
    """{"customer_id/product": value} of a licensing panel's result, one series each."""
    values: dict[str, float] = {}
    for series in result:
        key = f"{series['metric']['customer_id']}/{series['metric']['product']}"
        assert key not in values, f"two series for {key}: {result}"
        values[key] = float(series["value"][1])
    return values


def expected_monitor(state: SimulatorState) -> dict[str, Any]:
    """What the Monitor panels must show, counted from the simulator's rows."""
    sessions = {"active": 0, "disconnected": 0}
    machines = {"registered": 0, "unregistered": 0}
    unregistered_share: dict[tuple[str, str], float] = {}
    for customer_id, customer in state.customers.items():
        data = customer.monitor
        assert data is not None
        for session in data.open_sessions():
            if session["ConnectionState"] == ConnectionState.ACTIVE:
                sessions["active"] += 1
            elif session["ConnectionState"] == ConnectionState.DISCONNECTED:
                sessions["disconnected"] += 1
        live = [m for m in data.machines if m["LifecycleState"] == 0]
        for machine in live:
            if machine["CurrentRegistrationState"] == RegistrationState.REGISTERED:
                machines["registered"] += 1
            elif machine["CurrentRegistrationState"] == RegistrationState.UNREGISTERED:
                machines["unregistered"] += 1
        for group in data.desktop_groups:
            powered_on = [
                m
                for m in live
                if m["DesktopGroupId"] == group["Id"]
                and m["CurrentPowerState"] == PowerState.ON
                and not m["IsInMaintenanceMode"]
            ]
            if powered_on:  # as CitrixMachinesUnregistered counts: powered on, not maintained
                unregistered = sum(
                    m["CurrentRegistrationState"] == RegistrationState.UNREGISTERED
                    for m in powered_on
                )
                unregistered_share[(customer_id, group["Name"])] = unregistered / len(powered_on)
    return {"sessions": sessions, "machines": machines, "share": unregistered_share}


async def test_key_panels_show_the_demo_values(tmp_path, aiohttp_server):
    """A panel querying the wrong series (used for available, the wrong state, another
    customer's row) still "returns data"; here each key panel's value per customer is the one
    the demo state implies: 500/100/250 available, 320/112/181 used (the lower of user and
    device usage), 180/0/69 remaining, 0/12/0 over, expiry 200/310/20 days out, and the
    sessions and machines the simulator's rows hold."""
    prometheus_bin = require_binary("prometheus")
    state = frozen_demo_state()
    server = await aiohttp_server(create_app(state))
    base_url = str(server.make_url("")).rstrip("/")
    boards = list(load_dashboards().values())
    config = write_demo_config(tmp_path / "exporter.yml", base_url, state)
    exporter, url = await exporter_process(tmp_path, "--config.file", str(config))
    prometheus = Prometheus(
        prometheus_bin,
        tmp_path,
        scrape_config(url, JOB),
    )
    licensing, daas = "citrix-cloud-licensing", "citrix-daas-sessions-machines"
    # acme-demo also has 42 of 100 secureworkspaceaccess licenses (products collector), all 100
    # expiring in 90 days.
    acme, globex, initech = (
        "acme-demo/XenDesktop",
        "globex-demo/XenDesktop",
        "initech-demo/XenDesktop",
    )
    swa = "acme-demo/secureworkspaceaccess"
    licenses = {
        # (panel title, ref): {customer/product: value}
        ("Available", "A"): {acme: 500, globex: 100, initech: 250, swa: 100},
        ("Used", "A"): {acme: 320, globex: 112, initech: 181, swa: 42},
        ("Remaining", "A"): {acme: 180, globex: 0, initech: 69, swa: 58},
        ("Overage", "A"): {acme: 0, globex: 12, initech: 0, swa: 0},
        ("Used (% of available)", "A"): {
            acme: 320 / 500, globex: 112 / 100, initech: 181 / 250, swa: 42 / 100
        },
        (ALL_CUSTOMERS, "C"): {acme: 180 / 500, globex: 0, initech: 69 / 250, swa: 58 / 100},
        (ALL_CUSTOMERS, "A"): {acme: 0, globex: 12, initech: 0, swa: 0},
        ("Expiry and activation schedule", "C"): {acme: 125, globex: 40, initech: 250, swa: 100},
        (ALL_CUSTOMERS, "H"): {acme: 125, globex: 40, initech: 250, swa: 100},
        ("Expiry and activation schedule", "E"): {acme: 100},
    }  # fmt: skip
    expiry = {f"{c}/XenDesktop": state.customers[c].licensing.next_expiry for c in DEMO_CUSTOMERS}
    monitor = expected_monitor(state)
    try:
        await prometheus.start()

        async def scraped() -> bool:
            # Every demo customer's licensing and monitor data is in (frozen: stays so).
            up = await prometheus.query('citrix_up{collector=~"licensing|monitor"} == 1')
            return len(up) == 2 * len(DEMO_CUSTOMERS)

        await wait_until(scraped, WAIT_FOR_SERIES, exporter)
        for (title, ref), expected in licenses.items():
            got = by_license(await prometheus.query(panel_expr(boards, licensing, title, ref)))
            assert got == pytest.approx(expected), f"{licensing} / {title} / {ref}"
        at = time.time()
        days = by_license(
            await prometheus.query(panel_expr(boards, licensing, "Days until next expiry"), at)
        )
        swa_days = days.pop(swa)
        assert days == pytest.approx(
            {key: (when.timestamp() - at) / 86400 for key, when in expiry.items()}, abs=1e-3
        )
        # Expiry is at midnight UTC N days ahead, so during the day the panel reads N - 1 + x.
        assert [math.ceil(days[key]) for key in (acme, globex, initech)] == [200, 310, 20]
        assert 89 < swa_days <= 90
        # Rows in overage first, then by share used: globex (12 over), initech 72 %, acme 64 %,
        # acme's secureworkspaceaccess 42 % (the hidden sort key, ref I).
        rank = by_license(await prometheus.query(panel_expr(boards, licensing, ALL_CUSTOMERS, "I")))
        assert sorted(rank, key=rank.__getitem__, reverse=True) == [globex, initech, acme, swa]
        # Frozen usage is flat: no overage forecast (NaN) for anyone, not an error or no row.
        forecast = await prometheus.query(panel_expr(boards, licensing, "Overage forecast"))
        assert len(forecast) == 4 and all(math.isnan(float(r["value"][1])) for r in forecast)
        for title, key, state_name in (
            ("Active sessions", "sessions", "active"),
            ("Disconnected sessions", "sessions", "disconnected"),
            ("Registered machines", "machines", "registered"),
            ("Unregistered machines", "machines", "unregistered"),
        ):
            result = await prometheus.query(panel_expr(boards, daas, title))
            assert [float(r["value"][1]) for r in result] == [monitor[key][state_name]], title
        assert monitor["sessions"]["active"] > 0 and monitor["machines"]["unregistered"] > 0
        share = await prometheus.query(
            panel_expr(boards, daas, "Unregistered machines (% of delivery group)")
        )
        got_share = {
            (r["metric"]["customer_id"], r["metric"]["delivery_group"]): float(r["value"][1])
            for r in share
        }
        assert got_share == pytest.approx(monitor["share"])
        assert len(set(monitor["share"].values())) > 1  # not all groups alike
        down = await prometheus.query(
            panel_expr(boards, "citrix-exporter-health", "Collectors down")
        )
        assert [float(r["value"][1]) for r in down] == [0]
    finally:
        await prometheus.stop()
        assert await exporter.stop() == 0
