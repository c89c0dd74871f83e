"""One customer's bad upstream data spoils nothing else, and series stay bounded (issue #9).

Each test serves one customer (`bad1`) a hostile answer over real HTTP
(tests/support/hostile.py) and keeps a well-behaved customer (`good1`) on the same server:
/metrics must answer 200 with a document that parses (and passes `promtool check metrics`), the
bad values must be repaired or left out and counted as data issues, and `good1`'s values must be
untouched.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from exporter.cli import poll_once
from exporter.collector.base import Collector
from exporter.collector.fields import LABEL_LIMIT
from exporter.config import CollectorConfig, Config
from exporter.poller import PollJob
from exporter.runtime import Exporter
from exporter.web import create_web_app
from tests.support.helpers import make_config, require_binary, value
from tests.support.hostile import CURRENT_SUFFIX, HostileUpstream, good_current

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
NOW_TS = NOW.timestamp()
BAD = {"customer_id": "bad1", "client_id": "bad-client", "client_secret": "bad-secret-Qx1"}
GOOD = {"customer_id": "good1", "client_id": "good-client", "client_secret": "good-secret-Qx2"}
GOOD_LABELS = {"customer_id": "good1", "product": "XenDesktop", "edition": "XAXDFull"}
ISSUES = "citrix_upstream_data_issues_total"

Factory = Callable[..., Awaitable[Exporter]]


def json_answer(data: Any) -> Callable[[web.Request], web.Response]:
    """An answer with `data` as JSON text; json.dumps writes NaN/Infinity and `\\ud800`."""
    body = json.dumps(data)
    return lambda _request: web.Response(text=body, content_type="application/json")


def config(url: str, bad_collectors: dict[str, Any] | None = None, **poll: Any) -> Config:
    bad = {**BAD, "collectors": bad_collectors} if bad_collectors else BAD
    return make_config(url, [bad, GOOD], **poll)


Scrape = Callable[..., Awaitable[tuple[Exporter, str]]]


@pytest.fixture
def hostile() -> HostileUpstream:
    return HostileUpstream()


@pytest.fixture
def scrape(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    exporter_factory: Factory,
    hostile: HostileUpstream,
) -> Scrape:
    """Poll both customers of `hostile` once over HTTP and scrape /metrics over HTTP
    (asserting 200); the bad customer's collectors and the poll options are the call's."""

    async def run(
        bad_collectors: dict[str, Any] | None = None, **poll: Any
    ) -> tuple[Exporter, str]:
        server = await aiohttp_server(hostile.app())
        url = str(server.make_url("")).rstrip("/")
        exporter = await exporter_factory(config(url, bad_collectors, **poll), clock=lambda: NOW_TS)
        await exporter.poller.run_all_once()
        client = await aiohttp_client(create_web_app(exporter))
        response = await client.get("/metrics")
        assert response.status == 200
        return exporter, await response.text()

    return run


def check_exposition(text: str) -> None:
    """The document parses, promtool accepts it, every citrix_* value is finite and >= 0 and
    every label value is at most LABEL_LIMIT characters."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert all(len(v) <= LABEL_LIMIT for v in sample.labels.values()), sample
            if sample.name.startswith("citrix_"):
                assert math.isfinite(sample.value) and sample.value >= 0, sample
    promtool = require_binary("promtool", "prometheus")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def good_customer_intact(text: str) -> None:
    assert value(text, "citrix_up", customer_id="good1", collector="licensing") == 1
    assert value(text, "citrix_licenses_available", **GOOD_LABELS) == 25
    assert value(text, "citrix_licenses_used", **GOOD_LABELS) == 3
    assert value(text, "citrix_licenses_overage", **GOOD_LABELS) == 0
    assert value(text, ISSUES, customer_id="good1") is None


def issue(text: str, kind: str, collector: str = "licensing") -> float | None:
    return value(text, ISSUES, customer_id="bad1", collector=collector, issue=kind)


# -- the Monitor OData answers of one customer ------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def odata(rows: list[dict[str, Any]]) -> Callable[[web.Request], web.Response]:
    return json_answer({"value": rows})


def program_monitor(
    hostile: HostileUpstream,
    groups: list[dict[str, Any]],
    counts: list[int | float] | None = None,
    logons: list[dict[str, Any]] | None = None,
) -> None:
    """`bad1`'s Monitor API: `groups`, each with one active session and one machine (the
    `$apply` count `n` of group i is counts[i], default 1), and `logons`."""
    counts = counts or [1] * len(groups)
    sessions = [
        {"ConnectionState": 5, "Machine": {"DesktopGroupId": g["Id"]}, "n": n}
        for g, n in zip(groups, counts, strict=True)
    ]
    machines = [
        {"DesktopGroupId": g["Id"], "CurrentRegistrationState": 1, "CurrentPowerState": 3,
         "FaultState": 1, "IsInMaintenanceMode": False, "n": n}
        for g, n in zip(groups, counts, strict=True)
    ]  # fmt: skip
    grouped, logon_rows = odata(sessions), odata(logons or [])

    def sessions_answer(request: web.Request) -> web.Response:
        return grouped(request) if "$apply" in request.query else logon_rows(request)

    hostile.on("bad1", "/monitorodata/DesktopGroups", odata(groups))
    hostile.on("bad1", "/monitorodata/Sessions", sessions_answer)
    hostile.on("bad1", "/monitorodata/Machines", odata(machines))
    hostile.on("bad1", "/monitorodata/ConnectionFailureLogs", odata([]))


def group(index: int, name: str | None = None) -> dict[str, Any]:
    return {
        "Id": f"g{index}",
        "Name": name if name is not None else f"Group {index}",
        "DeliveryType": 0,
        "SessionSupport": 1,
        "LifecycleState": 0,
    }


MONITOR_ON = {"monitor": {"enabled": True}}


# -- label values ---------------------------------------------------------------------------


async def test_lone_surrogate_in_product_name_is_repaired(hostile, scrape):
    current = {**good_current("bad1"), "productName": "Xen\ud800Desktop"}
    hostile.on("bad1", CURRENT_SUFFIX, json_answer(current))
    _, text = await scrape()
    assert value(text, "citrix_up", customer_id="bad1", collector="licensing") == 1
    labels = {"customer_id": "bad1", "product": "Xen\ufffdDesktop", "edition": "XAXDFull"}
    assert value(text, "citrix_licenses_available", **labels) == 25
    assert issue(text, "repaired_label") == 1
    good_customer_intact(text)
    check_exposition(text)


async def test_invalid_utf8_in_a_body_is_replaced_and_counted(hostile, scrape):
    body = json.dumps(good_current("bad1")).replace("XenDesktop", "Xen@@Desktop").encode()
    body = body.replace(b"@@", b"\xff\xfe")  # two bytes that are never UTF-8
    hostile.on("bad1", CURRENT_SUFFIX, lambda _r: web.Response(body=body))
    _, text = await scrape()
    assert value(text, "citrix_up", customer_id="bad1", collector="licensing") == 1
    labels = {"customer_id": "bad1", "product": "Xen\ufffd\ufffdDesktop", "edition": "XAXDFull"}
    assert value(text, "citrix_licenses_available", **labels) == 25
    assert issue(text, "invalid_utf8", collector="upstream") == 1
    good_customer_intact(text)
    check_exposition(text)


async def test_once_prints_metrics_for_a_lone_surrogate(hostile, aiohttp_server):
    current = {**good_current("bad1"), "productName": "\udfff"}
    hostile.on("bad1", CURRENT_SUFFIX, json_answer(current))
    server = await aiohttp_server(hostile.app())
    ok, body = await poll_once(config(str(server.make_url("")).rstrip("/")))
    assert ok
    text = body.decode("utf-8")
    assert value(text, "citrix_licenses_used", customer_id="bad1", product="\ufffd") == 3
    good_customer_intact(text)


async def test_lone_surrogate_in_a_delivery_group_name_is_repaired(hostile, scrape):
    program_monitor(hostile, [group(1, "Sales \udc80 desks"), group(2)])
    _, text = await scrape(MONITOR_ON)
    assert value(text, "citrix_up", customer_id="bad1", collector="monitor") == 1
    sessions = {"customer_id": "bad1", "state": "active"}
    assert value(text, "citrix_sessions", delivery_group="Sales \ufffd desks", **sessions) == 1
    assert value(text, "citrix_sessions", delivery_group="Group 2", **sessions) == 1
    assert issue(text, "repaired_label", "monitor") == 1
    good_customer_intact(text)
    check_exposition(text)


async def test_a_megabyte_label_value_is_cut_to_the_limit(hostile, scrape):
    huge = "x" * 1_000_000
    hostile.on("bad1", CURRENT_SUFFIX, json_answer({**good_current("bad1"), "productName": huge}))
    _, text = await scrape()
    labels = {"customer_id": "bad1", "product": "x" * LABEL_LIMIT, "edition": "XAXDFull"}
    assert value(text, "citrix_licenses_available", **labels) == 25
    assert issue(text, "repaired_label") == 1
    assert len(text.encode()) < 40_000  # the scrape stays small (about 11 kB here)
    good_customer_intact(text)
    check_exposition(text)


# -- numbers --------------------------------------------------------------------------------


async def test_non_finite_and_negative_counts_and_year_one_are_left_out(hostile, scrape):
    current = {
        **good_current("bad1"),
        "totalAvailableLicenseCount": -100,
        "totalUsageCount": -5,
        "remainingLicenseCount": float("nan"),
        "userLicenseUsage": {"totalUsageCount": float("inf"), "releasedCount": 1},
        "deviceLicenseUsage": {"totalUsageCount": 4, "releasedCount": float("-inf")},
        "nextExpiredLicenses": {
            "nextExpiredTime": "0001-01-01T00:00:00+01:00",
            "totalCount": "-7",
            "daysToExpire": 1,
        },
    }
    hostile.on("bad1", CURRENT_SUFFIX, json_answer(current))
    _, text = await scrape()
    labels = {"customer_id": "bad1", "product": "XenDesktop", "edition": "XAXDFull"}
    assert value(text, "citrix_up", customer_id="bad1", collector="licensing") == 1
    for name in (
        "citrix_licenses_available",
        "citrix_licenses_used",
        "citrix_licenses_remaining",
        "citrix_licenses_overage",  # never derived from values that were left out
        "citrix_licenses_expiring",
        "citrix_licenses_next_expiry_timestamp_seconds",
    ):
        assert value(text, name, **labels) is None, name
    assert value(text, "citrix_licenses_usage", assignment="user", **labels) is None
    assert value(text, "citrix_licenses_usage", assignment="device", **labels) == 4
    assert value(text, "citrix_licenses_released", assignment="user", **labels) == 1
    assert value(text, "citrix_licenses_released", assignment="device", **labels) is None
    assert issue(text, "negative") == 3
    assert issue(text, "not_finite") == 3
    assert issue(text, "out_of_range") == 1
    good_customer_intact(text)
    check_exposition(text)


async def test_monitor_counts_and_durations_that_are_not_counts_are_left_out(hostile, scrape):
    started = NOW + timedelta(seconds=1)
    logons = [
        {"SessionKey": f"s{i}", "StartDate": iso(started), "LogOnDuration": duration,
         "Machine": {"DesktopGroupId": "g1"}}
        for i, duration in enumerate([12_000, -5, float("inf"), float("nan"), 2.0**60])
    ]  # fmt: skip
    program_monitor(hostile, [group(1), group(2), group(3)], [-3, float("nan"), 2], logons)
    _, text = await scrape(MONITOR_ON)
    assert value(text, "citrix_up", customer_id="bad1", collector="monitor") == 1
    sessions = {"customer_id": "bad1", "state": "active"}
    assert value(text, "citrix_sessions", delivery_group="Group 3", **sessions) == 2
    # A row with a bad count adds nothing; the group is live, so its series is zero-filled.
    assert value(text, "citrix_sessions", delivery_group="Group 1", **sessions) == 0
    histogram = {"customer_id": "bad1", "delivery_group": "Group 1"}
    assert value(text, "citrix_logon_duration_seconds_count", **histogram) == 1
    assert value(text, "citrix_logon_duration_seconds_sum", **histogram) == 12
    assert issue(text, "negative", "monitor") == 3  # two $apply counts, one duration
    assert issue(text, "bad_number", "monitor") == 2  # NaN is not an integer count
    assert issue(text, "not_finite", "monitor") == 2
    assert issue(text, "out_of_range", "monitor") == 1
    good_customer_intact(text)
    check_exposition(text)


# -- bounded series -------------------------------------------------------------------------


async def test_ten_thousand_delivery_groups_fail_that_poll_only(hostile, scrape):
    program_monitor(hostile, [group(i) for i in range(10_000)])
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    exporter, text = await scrape(MONITOR_ON)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert value(text, "citrix_up", customer_id="bad1", collector="monitor") == 0
    assert value(text, "citrix_up", customer_id="bad1", collector="licensing") == 1
    [job] = [j for j in exporter.poller.jobs if j.key == ("bad1", "monitor")]
    assert "340,000 series (10,000 groups)" in str(job.status.last_error)  # 34 per group
    assert "poll.max_series (20,000)" in str(job.status.last_error)
    assert "citrix_sessions{" not in text
    assert len(text.encode()) < 40_000
    # Stopped before the series are built (about 120 MiB if they were; 1 MiB measured).
    assert grown_mib < 48, f"peak RSS grew by {grown_mib:.0f} MiB"
    good_customer_intact(text)
    check_exposition(text)


async def test_max_series_is_configurable(scrape):
    exporter, text = await scrape(max_series=5)
    # A good licensing answer has 10 series: over a cap of 5, for both customers.
    assert value(text, "citrix_up", customer_id="bad1", collector="licensing") == 0
    assert exporter.poller.jobs[0].status.last_error == (
        "result has 10 series, more than poll.max_series (5); not published "
        "(raise poll.max_series if this tenant really is that large)"
    )
    assert value(text, "citrix_up", customer_id="good1", collector="licensing") == 0
    assert "citrix_licenses_available{" not in text


# -- a result that cannot be rendered -------------------------------------------------------


class Unrenderable(Collector[CollectorConfig]):
    """Stands for a collector bug that lets an invalid label value through."""

    name = "unrenderable"

    async def poll(self) -> list[Metric]:
        family = GaugeMetricFamily("citrix_test_value", "Test.", labels=["customer_id", "x"])
        family.add_metric(["bad1", "\ud800"], 1.0)
        return [family]


async def test_a_result_that_cannot_be_rendered_fails_its_poll_not_the_scrape(
    hostile, aiohttp_server, aiohttp_client, exporter_factory
):
    server = await aiohttp_server(hostile.app())
    url = str(server.make_url("")).rstrip("/")
    exporter = await exporter_factory(config(url), clock=lambda: NOW_TS)
    bad_ctx = exporter.poller.jobs[0].collector.ctx
    exporter.poller.jobs.append(PollJob("bad1", Unrenderable(bad_ctx, CollectorConfig()), 60))
    assert not await exporter.poller.run_all_once()
    client = await aiohttp_client(create_web_app(exporter))
    response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    assert value(text, "citrix_up", customer_id="bad1", collector="unrenderable") == 0
    assert value(text, "citrix_up", customer_id="bad1", collector="licensing") == 1
    error = str(exporter.poller.jobs[-1].status.last_error)
    assert error.startswith("result cannot be rendered as metrics: UnicodeEncodeError")
    good_customer_intact(text)
    check_exposition(text)


async def test_poll_error_text_is_scrubbed_and_bounded(hostile, scrape):
    detail = "echoing your form: client_secret=Sup3rS3cretEcho&grant_type=x " + "y" * 5000
    hostile.on("bad1", CURRENT_SUFFIX, lambda _r: web.json_response({"detail": detail}, status=400))
    exporter, text = await scrape()
    [job] = [j for j in exporter.poller.jobs if j.key == ("bad1", "licensing")]
    error = str(job.status.last_error)
    assert "HTTP 400" in error and "Sup3rS3cretEcho" not in error
    assert len(error) <= 300
    assert value(text, "citrix_up", customer_id="bad1", collector="licensing") == 0
    good_customer_intact(text)
