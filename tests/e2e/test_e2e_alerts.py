"""End to end, the alerting path: simulated Citrix Cloud -> exporter process -> Prometheus with
the shipped alert rules -> Alertmanager -> a webhook served by the test.

The scenario (tests/support/scenarios.py: alert_scenario) has a customer in overage, one whose
licenses expire in 5.5 days, one with a delivery group 30 % unregistered that gets a burst of
connection failures once the exporter runs, and a healthy one. The expected alerts must fire in
Prometheus with exact labels and annotations and reach the webhook through Alertmanager; nothing
else may ever be pending or firing. The demo's autoscaled delivery group raises nothing in its
nightly state and CitrixDeliveryGroupDown in an outage. Dashboards against Monitor data:
tests/deploy/test_dashboards.py.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.simulator.app import create_app
from exporter.simulator.autoscale import AUTOSCALE_GROUP
from exporter.simulator.scenarios import autoscale_night, autoscale_outage, demo_state
from exporter.simulator.state import SimulatorState
from tests.support.helpers import require_binary, url_of
from tests.support.processes import (
    Alertmanager,
    Process,
    Prometheus,
    exporter_command,
    free_port,
    http_ok,
    stop_all,
    wait_until,
)
from tests.support.scenarios import (
    CONNECTION_TIMEOUT,
    DAAS,
    EDITION,
    EXPIRING,
    EXPIRING_LICENSES,
    HEALTHY,
    NO_MACHINE_AVAILABLE,
    OVERAGE,
    OVERAGE_LICENSES,
    PRODUCT,
    QUIET_GROUPS,
    TROUBLED_GROUP,
    UNREGISTERED_SHARE,
    add_failures,
    add_logons,
    alert_scenario,
    write_demo_config,
    write_exporter_config,
)
from tools import rules as generator

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "citrix-cloud-exporter.rules.yml"
JOB = "citrix-cloud-exporter"  # the default job selector of the shipped rules

# `for:` durations are divided by this in the test copy of the rules: 1h -> 6 s, 30m -> 3 s,
# 15m -> 1.5 s, 5m -> 0.5 s. Their order is kept, and every one stays above zero, so an alert
# is still pending before it fires. Nothing else is changed: thresholds and range windows
# ([10m], [30m], [1d]) stay as shipped, and they need no shortening, because rate() and
# increase() over a window longer than the data use the samples there are (extrapolated by at
# most half a scrape interval at either end). So the burst's increase over [10m] is the burst,
# and CitrixConnectionFailureSpike compares rate[10m] = burst / 600 s with 3 x rate[1d] =
# 3 x burst / 86400 s, exactly what it would see after a day with no failures: a quiet tenant
# with a sudden burst. (The other half of that rule, a busy tenant whose failures are usual,
# needs a day of history: deploy/prometheus/tests/daas.test.yml covers it with promtool.)
SPEEDUP = 600
FIRST_SCRAPE = "10s"
_PROM_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}

# Failures added once Prometheus has a few samples of the (zero) counters: daas-co gets a burst
# of 12 (the rule needs >= 5 in 10 minutes), healthy-co 2 (a spike, but too few to act on).
BURST = {CONNECTION_TIMEOUT: 8, NO_MACHINE_AVAILABLE: 4}
BURST_SIZE = sum(BURST.values())
HEALTHY_FAILURES = {CONNECTION_TIMEOUT: 2}
# Samples of the counters Prometheus must hold before the burst, so that increase()'s
# extrapolation adds at most ~25 % to it (see the description check).
SAMPLES_BEFORE_BURST = 5
WAIT_FOR_ALERTS = 45.0
POLL = 0.5


def _seconds(duration: str) -> float:
    parts = _PROM_DURATION.findall(duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * _UNITS[u] for n, u in parts)


def shipped_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def fast_durations() -> dict[str, str]:
    """Every `for` parameter of tools/rules.py divided by SPEEDUP, except CitrixExporterAbsent's:
    it is pending from Prometheus' start until the first scrape, which can take longer than
    1.5 s (15m / SPEEDUP), so it gets FIRST_SCRAPE."""
    values = {
        name: f"{round(_seconds(param.default) * 1000 / SPEEDUP)}ms"
        for name, param in generator.PARAMS.items()
        if name.endswith("_for")
    }
    return {**values, "exporter_absent_for": FIRST_SCRAPE}


def write_fast_rules(path: Path) -> Path:
    """The shipped rules generated with the `for:` durations of fast_durations(), and nothing
    else changed (checked: the copy minus `for` equals the shipped file minus `for`)."""
    path.write_text(generator.render(generator.Settings(values=fast_durations())))

    def without_for(document: dict[str, Any]) -> Any:
        return [
            [{k: v for k, v in rule.items() if k != "for"} for rule in group["rules"]]
            for group in document["groups"]
        ]

    assert without_for(yaml.safe_load(path.read_text())) == without_for(
        yaml.safe_load(RULES.read_text())
    )
    return path


# -- what must fire -------------------------------------------------------------------------------

Labels = frozenset[tuple[str, str]]


def key(labels: dict[str, str]) -> Labels:
    return frozenset(labels.items())


def _licensing(alert: str, severity: str, customer: str) -> Labels:
    return key(
        {"alertname": alert, "severity": severity, "customer_id": customer,
         "product": PRODUCT, "edition": EDITION}
    )  # fmt: skip


OVERAGE_ALERT = _licensing("CitrixLicensesOverage", "warning", OVERAGE)
EXPIRING_ALERT = _licensing("CitrixLicensesExpiring", "critical", EXPIRING)
UNREGISTERED_ALERT = key(
    {"alertname": "CitrixMachinesUnregistered", "severity": "warning",
     "customer_id": DAAS, "delivery_group": TROUBLED_GROUP}
)  # fmt: skip
SPIKE_ALERT = key(
    {"alertname": "CitrixConnectionFailureSpike", "severity": "warning", "customer_id": DAAS}
)
SPIKE_DESCRIPTION = re.compile(
    rf"(\d+) connection failures for customer {DAAS} in the last 10 minutes, well above its "
    r"usual rate\."
)
# Exact descriptions (the measured value and the customer), or a pattern for the spike, whose
# value is increase()'s extrapolation of the burst.
EXPECTED: dict[Labels, str | re.Pattern[str]] = {
    OVERAGE_ALERT: f"Customer {OVERAGE} uses {OVERAGE_LICENSES} {PRODUCT} ({EDITION}) licenses "
    "more than it has available.",
    EXPIRING_ALERT: f"{EXPIRING_LICENSES} {PRODUCT} ({EDITION}) licenses of customer "
    f"{EXPIRING} expire in 5.5 days.",
    UNREGISTERED_ALERT: f"{UNREGISTERED_SHARE} of the powered-on machines in delivery group "
    f"{TROUBLED_GROUP} of customer {DAAS} are unregistered.",
    SPIKE_ALERT: SPIKE_DESCRIPTION,
}


def check_annotations(labels: Labels, annotations: dict[str, str], where: str) -> None:
    """Summary and runbook as in the shipped rule; the description as EXPECTED says."""
    name, severity = dict(labels)["alertname"], dict(labels)["severity"]
    [rule] = [
        r for r in shipped_rules()
        if r.get("alert") == name and r["labels"]["severity"] == severity
    ]  # fmt: skip
    assert annotations["summary"] == rule["annotations"]["summary"], where
    assert annotations["runbook_url"] == rule["annotations"]["runbook_url"], where
    expected = EXPECTED[labels]
    description = annotations["description"]
    if isinstance(expected, str):
        assert description == expected, where
    else:
        match = expected.fullmatch(description)
        assert match, f"{where}: {description!r}"
        # increase() extrapolates the burst a little (<= 25 % with 5 samples before it).
        assert BURST_SIZE <= int(match[1]) <= BURST_SIZE * 1.25, f"{where}: {description!r}"


def alerting_prometheus(
    binary: str, tmp_path: Path, rules: Path, alertmanager: Alertmanager, targets: list[str]
) -> Prometheus:
    """A Prometheus scraping `targets` as the shipped rules' job every second, evaluating
    `rules` every second and sending alerts to `alertmanager`."""
    return Prometheus(
        binary,
        tmp_path,
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "alerting": {"alertmanagers": [
                    {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]},
                "scrape_configs": [
                    {"job_name": JOB, "static_configs": [{"targets": targets}]}],
            }
        ),
    )  # fmt: skip


# -- the test -------------------------------------------------------------------------------------


@pytest.fixture
def sim_state() -> SimulatorState:
    return alert_scenario()


async def webhook(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> tuple[str, list[dict[str, Any]]]:
    """A webhook receiver in the test's loop; returns its URL and the payloads it got."""
    payloads: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        payloads.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/alerts", receive)
    server = await aiohttp_server(app)
    return str(server.make_url("/alerts")), payloads


def labels_of(alert: dict[str, Any]) -> Labels:
    return key(alert["labels"])


def describe(alerts: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"  {a.get('state') or a.get('status')} {a['labels']} {a['annotations'].get('description')}"
        for a in alerts
    )


async def test_alerts_fire_and_reach_the_webhook(tmp_path, sim_state, base_url, aiohttp_server):
    """Overage (warning), expiry in 5.5 days (critical), 30 % unregistered (warning) and the
    failure burst (warning) fire with exact labels and annotations, in Prometheus and at the
    webhook through Alertmanager; no other alert is ever pending or firing, although the data
    the quiet rules look at is there (healthy customer, groups at 5 % and at exactly 10 %
    unregistered, 2 failures for the healthy customer, collectors up, tokens valid)."""
    prometheus_bin = require_binary("prometheus")
    alertmanager_bin = require_binary("prometheus-alertmanager")
    hook_url, payloads = await webhook(aiohttp_server)
    rules = write_fast_rules(tmp_path / "rules.yml")
    config = write_exporter_config(tmp_path / "exporter.yml", base_url, sim_state)
    port = free_port()
    exporter = Process("exporter", exporter_command(port, "--config.file", str(config)), tmp_path)
    # Every alert its own group ('...'), sent within a second; resolved ones are not wanted.
    alertmanager = Alertmanager(
        alertmanager_bin,
        tmp_path,
        f"""route:
  receiver: test-webhook
  group_by: ['...']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test-webhook
    webhook_configs:
      - url: '{hook_url}'
        send_resolved: false
""",
    )
    prometheus = alerting_prometheus(
        prometheus_bin, tmp_path, rules, alertmanager, [f"127.0.0.1:{port}"]
    )
    try:
        await exporter.start()
        await asyncio.gather(alertmanager.start(), prometheus.start())
        await wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), 30, exporter)

        # The burst comes after Prometheus has a few samples of the exporter's zero counters.
        async def counters_sampled() -> bool:
            result = await prometheus.query(
                f'count_over_time(citrix_connection_failures_total{{customer_id="{DAAS}",'
                f'failure_reason="connection_timeout"}}[1m]) >= {SAMPLES_BEFORE_BURST}'
            )
            return bool(result)

        await wait_until(counters_sampled, 30, prometheus.process)
        before = await prometheus.alerts()
        assert not [a for a in before if labels_of(a) == SPIKE_ALERT], describe(before)
        now = sim_state.now()
        add_failures(sim_state.customers[DAAS].monitor, now, BURST)
        add_failures(sim_state.customers[HEALTHY].monitor, now, HEALTHY_FAILURES)
        add_logons(sim_state.customers[HEALTHY].monitor, now, 3)

        firing, received = await _wait_for_alerts(prometheus, payloads)

        # (b) In Prometheus: exactly the expected alerts, firing, with exact labels (no job or
        # instance: the rules aggregate them away) and annotations naming customer and value.
        for labels, alert in firing.items():
            check_annotations(labels, alert["annotations"], f"Prometheus: {dict(labels)}")
            if labels == SPIKE_ALERT:
                # The description prints the alert's own value.
                assert alert["annotations"]["description"].startswith(
                    f"{float(alert['value']):.0f} "
                ), alert
        # ... and through Alertmanager at the webhook, each as its own notification.
        for labels, alert in received.items():
            assert alert["status"] == "firing", alert
            check_annotations(labels, alert["annotations"], f"webhook: {dict(labels)}")
        assert all(p["receiver"] == "test-webhook" for p in payloads), payloads

        # (c) Nothing else was ever pending or firing: ALERTS has a sample for every rule
        # evaluation that found an alert pending or firing since Prometheus started.
        # CitrixExporterAbsent is pending until the first scrape (rules are evaluated from the
        # start), and must never fire.
        history = await prometheus.query(
            'count_over_time((ALERTS unless ALERTS{alertname="CitrixExporterAbsent",'
            'alertstate="pending"})[10m:1s])'
        )
        ever = {
            key({k: v for k, v in r["metric"].items() if k not in {"__name__", "alertstate"}})
            for r in history
        }
        assert ever == set(EXPECTED), f"ever pending or firing: {sorted(map(dict, ever), key=str)}"
        await _check_quiet_rules_were_armed(prometheus)
    finally:
        await stop_all(prometheus, alertmanager, exporter)


async def _wait_for_alerts(
    prometheus: Prometheus, payloads: list[dict[str, Any]]
) -> tuple[dict[Labels, dict[str, Any]], dict[Labels, dict[str, Any]]]:
    """Until every expected alert fires in Prometheus and has reached the webhook; fails at
    once if any other alert shows up, even pending."""
    deadline = time.monotonic() + WAIT_FOR_ALERTS
    while True:
        alerts = await prometheus.alerts()
        unexpected = [a for a in alerts if labels_of(a) not in EXPECTED]
        assert not unexpected, f"unexpected alerts in Prometheus:\n{describe(unexpected)}"
        firing = {labels_of(a): a for a in alerts if a["state"] == "firing"}
        received = {labels_of(a): a for p in payloads for a in p["alerts"]}
        unexpected = [a for a in received.values() if labels_of(a) not in EXPECTED]
        assert not unexpected, f"unexpected alerts at the webhook:\n{describe(unexpected)}"
        if set(firing) == set(received) == set(EXPECTED):
            return firing, received
        if time.monotonic() > deadline:
            pytest.fail(
                f"after {WAIT_FOR_ALERTS:.0f}s, Prometheus has\n{describe(alerts)}\n"
                f"and the webhook got\n{describe(list(received.values()))}"
            )
        await asyncio.sleep(POLL)


async def _check_quiet_rules_were_armed(prometheus: Prometheus) -> None:
    """The quiet alerts were quiet for the right reason: their rules loaded (with the short
    `for`) and evaluate without errors, and the series they look at exist with healthy values."""
    loaded = {(r["name"], r["labels"]["severity"]): r for r in await prometheus.rules()}
    shipped = {(r["alert"], r["labels"]["severity"]): r for r in shipped_rules()}
    assert sorted(loaded) == sorted(shipped)
    for name, rule in loaded.items():
        assert rule["health"] == "ok", rule
        fast = _seconds(shipped[name]["for"]) / SPEEDUP
        if name[0] == "CitrixExporterAbsent":
            fast = _seconds(FIRST_SCRAPE)
        assert rule["duration"] == pytest.approx(fast), rule

    async def by(expr: str, *labels: str) -> dict[tuple[str, ...], float]:
        result = await prometheus.query(expr)
        return {tuple(r["metric"][k] for k in labels): float(r["value"][1]) for r in result}

    customers = sorted([HEALTHY, OVERAGE, EXPIRING, DAAS])
    # CitrixCollectorDown, CitrixDataStale: every collector of every customer up and fresh.
    up = await by("citrix_up", "customer_id", "collector")
    assert up == {(c, k): 1.0 for c in customers for k in ("licensing", "monitor")}
    fresh = await by(
        "time() - citrix_last_success_timestamp_seconds < 60", "customer_id", "collector"
    )
    assert sorted(fresh) == sorted(up)
    # CitrixTokenRequestsFailing: every customer holds an unexpired token, none failed.
    assert sorted(await by("citrix_token_expiry_timestamp_seconds > time()", "customer_id")) == [
        (c,) for c in customers
    ]
    assert not await by("citrix_token_request_failures_total > 0", "customer_id")
    # CitrixUpstreamThrottled: requests were made, none answered 429.
    assert await by('sum(citrix_api_requests_total{code="200"}) > 0')
    assert not await by('citrix_api_requests_total{code="429"} > 0')
    # Licensing: overage only for overage-co; the others have >= 10 % remaining, or are in
    # overage (CitrixLicensesLow's `unless`); only expiring-co expires within 30 days.
    overage = await by("citrix_licenses_overage", "customer_id")
    assert overage == {(c,): float(OVERAGE_LICENSES if c == OVERAGE else 0) for c in customers}
    low = await by("citrix_licenses_remaining / citrix_licenses_available < 0.10", "customer_id")
    assert low == {(OVERAGE,): 0.0}
    soon = await by(
        "(citrix_licenses_next_expiry_timestamp_seconds - time()) / 86400 < 30", "customer_id"
    )
    assert list(soon) == [(EXPIRING,)]
    # CitrixMachinesUnregistered: the quiet groups have unregistered machines, 5 % and exactly
    # the 10 % threshold, and the healthy customer's group none (all machines powered on).
    # CitrixDeliveryGroupDown: no group has all of them unregistered.
    share = await by(
        "citrix_machines_unregistered_powered_on / citrix_machines_powered_on",
        "customer_id",
        "delivery_group",
    )
    assert share == {
        (DAAS, QUIET_GROUPS[0]): 0.05,
        (DAAS, TROUBLED_GROUP): 0.3,
        (DAAS, QUIET_GROUPS[1]): 0.1,
        (HEALTHY, "DG-Office"): 0.0,
    }
    # CitrixConnectionFailureSpike: healthy-co's failures were counted, but are below 5.
    failures = await by("sum by (customer_id) (citrix_connection_failures_total)", "customer_id")
    assert failures == {
        (c,): float({DAAS: BURST_SIZE, HEALTHY: sum(HEALTHY_FAILURES.values())}.get(c, 0))
        for c in customers
    }


# -- inhibition: the shipped Alertmanager config ---------------------------------------------------

ALERTMANAGER_CONFIG = REPO / "deploy" / "compose" / "alertmanager.yml"
# An inhibition holds back what Alertmanager has not sent yet: CitrixTokenRequestsFailing
# starts its `for` a scrape later than CitrixCollectorDown (increase() needs two samples) but
# has the shorter `for`; group_wait (30s shipped) covers the rest.
GROUP_WAIT = "5s"
STALE_ALERT = {"alertname": "CitrixDataStale", "severity": "warning", "customer_id": DAAS,
               "collector": "licensing", "job": JOB}  # fmt: skip


def inhibiting_alertmanager_config(hook_url: str) -> str:
    """The test's webhook route with the shipped inhibit_rules, unchanged."""
    shipped = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    assert shipped["inhibit_rules"], "no inhibit_rules in deploy/compose/alertmanager.yml"
    return yaml.safe_dump(
        {
            "route": {"receiver": "test-webhook", "group_by": ["..."], "group_wait": GROUP_WAIT,
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "test-webhook", "webhook_configs": [
                {"url": hook_url, "send_resolved": False}]}],
            "inhibit_rules": shipped["inhibit_rules"],
        }
    )  # fmt: skip


async def test_inhibited_alerts_do_not_arrive(tmp_path, sim_state, base_url, aiohttp_server):
    """Through the shipped inhibit rules: healthy-co's client secret is wrong, so its token
    requests fail and both its collectors are down; CitrixTokenRequestsFailing arrives, the two
    CitrixCollectorDown fire in Prometheus but Alertmanager holds them back. A second target of
    the job is down: CitrixExporterDown arrives, and an alert then sent for that instance
    (CitrixDataStale, posted to Alertmanager's API by the test: with the target down,
    Prometheus has no series of it to alert on) is held back."""
    prometheus_bin = require_binary("prometheus")
    alertmanager_bin = require_binary("prometheus-alertmanager")
    hook_url, payloads = await webhook(aiohttp_server)
    rules = write_fast_rules(tmp_path / "rules.yml")
    config = write_exporter_config(tmp_path / "exporter.yml", base_url, sim_state)
    data = yaml.safe_load(config.read_text())
    for customer in data["customers"]:
        if customer["customer_id"] == HEALTHY:
            customer["client_secret"] = "not-the-secret"
    config.write_text(yaml.safe_dump(data))
    port, dead = free_port(), f"127.0.0.1:{free_port()}"
    exporter = Process("exporter", exporter_command(port, "--config.file", str(config)), tmp_path)
    alertmanager = Alertmanager(
        alertmanager_bin, tmp_path, inhibiting_alertmanager_config(hook_url)
    )
    prometheus = alerting_prometheus(
        prometheus_bin, tmp_path, rules, alertmanager, [f"127.0.0.1:{port}", dead]
    )
    try:
        await exporter.start()
        await asyncio.gather(alertmanager.start(), prometheus.start())
        stale = {**STALE_ALERT, "instance": dead}
        token = {"alertname": "CitrixTokenRequestsFailing", "customer_id": HEALTHY}
        down = {"alertname": "CitrixExporterDown", "instance": dead}

        def arrived(labels: dict[str, str]) -> bool:
            return any(labels.items() <= a["labels"].items() for p in payloads for a in p["alerts"])

        posted: list[dict[str, str]] = []

        async def inhibited() -> list[dict[str, Any]] | None:
            firing = [a for a in await prometheus.alerts() if a["state"] == "firing"]
            collector_down = [
                a for a in firing
                if a["labels"]["alertname"] == "CitrixCollectorDown"
                and a["labels"]["customer_id"] == HEALTHY
            ]  # fmt: skip
            held = [
                a for a in await alertmanager.alerts()
                if a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"]
            ]  # fmt: skip
            if arrived(down) and not posted:  # an alert of the instance while it is down
                posted.append(stale)
                await alertmanager.post([{"labels": stale, "annotations": {"summary": "test"}}])
            ready = len(collector_down) == 2 and arrived(token) and arrived(down)
            return held if ready and len(held) >= 3 else None

        held = await wait_until(inhibited, WAIT_FOR_ALERTS, prometheus.process)
        assert sorted((a["labels"]["alertname"], a["labels"]["customer_id"]) for a in held) == [
            ("CitrixCollectorDown", HEALTHY), ("CitrixCollectorDown", HEALTHY),
            ("CitrixDataStale", DAAS),
        ]  # fmt: skip
        await asyncio.sleep(3)  # several group intervals: nothing held back goes out late
        assert not arrived({"alertname": "CitrixCollectorDown", "customer_id": HEALTHY})
        assert not arrived(stale)
    finally:
        await stop_all(prometheus, alertmanager, exporter)


# -- the demo's autoscaled delivery group ----------------------------------------------------------

AUTOSCALED = {"customer_id": "acme-demo", "delivery_group": AUTOSCALE_GROUP}
AUTOSCALED_SELECTOR = ",".join(f'{k}="{v}"' for k, v in AUTOSCALED.items())
AUTOSCALED_MACHINES = 6
# Scrapes of the nightly state before the test looks: several times both rules' short `for`
# (1 s and 1.5 s) and a few Monitor polls (every 2 s).
NIGHT_SCRAPES = 8
GROUP_DOWN_DESCRIPTION = (
    f"All powered-on machines ({AUTOSCALED_MACHINES}) of delivery group {AUTOSCALE_GROUP} of "
    "customer acme-demo are unregistered: no session can start there."
)


async def test_autoscaled_group_quiet_at_night_and_down_in_an_outage(tmp_path, aiohttp_server):
    """The demo (its own config, polling every 2 s), DG-Autoscale pinned in the nightly state:
    5 of its 6 machines off and unregistered, one on and registered. Unregistered machines, yet
    no alert for the group is ever pending or firing. Then the outage (all 6 on, none
    registered): CitrixDeliveryGroupDown reaches the webhook through the shipped inhibit rules,
    and CitrixMachinesUnregistered (100 %) fires in Prometheus but Alertmanager holds it back."""
    prometheus_bin = require_binary("prometheus")
    alertmanager_bin = require_binary("prometheus-alertmanager")
    state = demo_state()
    autoscale_night(state)
    server = await aiohttp_server(create_app(state))
    hook_url, payloads = await webhook(aiohttp_server)
    rules = write_fast_rules(tmp_path / "rules.yml")
    config = write_demo_config(tmp_path / "exporter.yml", url_of(server), state)
    port = free_port()
    exporter = Process("exporter", exporter_command(port, "--config.file", str(config)), tmp_path)
    alertmanager = Alertmanager(
        alertmanager_bin, tmp_path, inhibiting_alertmanager_config(hook_url)
    )
    prometheus = alerting_prometheus(
        prometheus_bin, tmp_path, rules, alertmanager, [f"127.0.0.1:{port}"]
    )

    async def value(expr: str) -> float | None:
        result = await prometheus.query(expr)
        return float(result[0]["value"][1]) if result else None

    try:
        await exporter.start()
        await asyncio.gather(alertmanager.start(), prometheus.start())

        async def night_seen() -> bool:
            scrapes = await value(
                f"count_over_time(citrix_machines_powered_on{{{AUTOSCALED_SELECTOR}}}[1m])"
            )
            return (scrapes or 0) >= NIGHT_SCRAPES

        await wait_until(night_seen, WAIT_FOR_ALERTS, prometheus.process)
        # The night as the rules see it: one machine on (registered), five off and unregistered.
        night = {
            f"citrix_machines_powered_on{{{AUTOSCALED_SELECTOR}}}": 1.0,
            f"citrix_machines_unregistered_powered_on{{{AUTOSCALED_SELECTOR}}}": 0.0,
            f'citrix_machines{{registration_state="unregistered",{AUTOSCALED_SELECTOR}}}': 5.0,
        }
        for expr, expected in night.items():
            assert await value(f"max_over_time({expr}[1m])") == expected, expr
            assert await value(f"min_over_time({expr}[1m])") == expected, expr
        loaded = {r["name"]: r for r in await prometheus.rules()}
        for name in ("CitrixMachinesUnregistered", "CitrixDeliveryGroupDown"):
            assert loaded[name]["health"] == "ok", loaded[name]
        ever = await prometheus.query(f"count_over_time(ALERTS{{{AUTOSCALED_SELECTOR}}}[10m:1s])")
        assert ever == [], ever

        autoscale_outage(state)
        down = {"alertname": "CitrixDeliveryGroupDown", **AUTOSCALED}
        unregistered = {"alertname": "CitrixMachinesUnregistered", **AUTOSCALED}

        def arrived(labels: dict[str, str]) -> list[dict[str, Any]]:
            return [
                a for p in payloads for a in p["alerts"] if labels.items() <= a["labels"].items()
            ]

        async def outage_handled() -> bool:
            held = [
                a for a in await alertmanager.alerts()
                if unregistered.items() <= a["labels"].items()
                and a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"]
            ]  # fmt: skip
            return bool(arrived(down) and held)

        await wait_until(outage_handled, WAIT_FOR_ALERTS, prometheus.process)
        [alert] = arrived(down)
        assert alert["labels"] == {"severity": "critical", **down}, alert
        assert alert["annotations"]["description"] == GROUP_DOWN_DESCRIPTION
        firing = {
            a["labels"]["alertname"]: a for a in await prometheus.alerts()
            if a["state"] == "firing" and AUTOSCALED.items() <= a["labels"].items()
        }  # fmt: skip
        assert sorted(firing) == sorted([down["alertname"], unregistered["alertname"]])
        assert firing[unregistered["alertname"]]["annotations"]["description"].startswith("100%")
        await asyncio.sleep(3)  # several group intervals: the held-back alert never goes out
        assert not arrived(unregistered)
    finally:
        await stop_all(prometheus, alertmanager, exporter)
