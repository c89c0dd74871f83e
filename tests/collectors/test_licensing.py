"""Licensing collector against the simulator serving Citrix's documented examples."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.poller import PollStatus
from exporter.runtime import Exporter
from exporter.simulator.state import HistoryMonth, SimulatorState
from tests.support.helpers import SEED_CUSTOMER, Clock, make_config, value
from tests.support.hostile import CURRENT_SUFFIX, HISTORY_SUFFIX, HostileUpstream, good_current
from tests.support.logcapture import real_log_output

LABELS = {"customer_id": SEED_CUSTOMER, "product": "XenDesktop", "edition": "XAXDFull"}


async def poll(exporter: Exporter) -> str:
    await exporter.poller.run_all_once()
    return generate_latest(exporter.registry).decode()


async def test_every_current_usage_metric_matches_the_seed(base_url, exporter_factory):
    text = await poll(await exporter_factory(make_config(base_url)))
    assert value(text, "citrix_licenses_available", **LABELS) == 25
    assert value(text, "citrix_licenses_used", **LABELS) == 3
    assert value(text, "citrix_licenses_remaining", **LABELS) == 22
    assert value(text, "citrix_licenses_overage", **LABELS) == 0
    for assignment in ("user", "device"):
        assert value(text, "citrix_licenses_usage", assignment=assignment, **LABELS) == 3
        assert value(text, "citrix_licenses_released", assignment=assignment, **LABELS) == 0
    expiry = datetime(2023, 5, 10, tzinfo=UTC).timestamp()
    assert value(text, "citrix_licenses_next_expiry_timestamp_seconds", **LABELS) == expiry
    assert value(text, "citrix_licenses_expiring", **LABELS) == 25
    # nextActivatingLicense is null in the seed: the series are absent, not zero.
    assert "citrix_licenses_next_activation_timestamp_seconds{" not in text
    assert "citrix_licenses_activating{" not in text
    assert value(text, "citrix_up", customer_id=SEED_CUSTOMER, collector="licensing") == 1


async def test_activation_and_overage(base_url, exporter_factory, sim_state: SimulatorState):
    scenario = sim_state.customers[SEED_CUSTOMER].licensing
    scenario.user_used, scenario.device_used = 31, 30
    scenario.next_activation = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    scenario.activating_count = 10
    text = await poll(await exporter_factory(make_config(base_url)))
    assert value(text, "citrix_licenses_used", **LABELS) == 30
    assert value(text, "citrix_licenses_overage", **LABELS) == 5
    assert value(text, "citrix_licenses_remaining", **LABELS) == 0
    assert (
        value(text, "citrix_licenses_next_activation_timestamp_seconds", **LABELS)
        == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    )
    assert value(text, "citrix_licenses_activating", **LABELS) == 10


async def test_current_month_history(base_url, exporter_factory, sim_state: SimulatorState):
    this_month = datetime.now(UTC).date().replace(day=1)
    sim_state.customers[SEED_CUSTOMER].licensing.history = [
        HistoryMonth(date(2020, 1, 1), 10, 1, 1, 0, 1, 1, 0),
        HistoryMonth(this_month, 40, 12, 5, 2, 9, 4, 1),
    ]
    exporter = await exporter_factory(make_config(base_url))
    text = await poll(exporter)
    month_start = datetime(this_month.year, this_month.month, 1, tzinfo=UTC).timestamp()
    assert value(text, "citrix_licenses_month_start_timestamp_seconds", **LABELS) == month_start
    assert value(text, "citrix_licenses_month_available", **LABELS) == 40
    assert value(text, "citrix_licenses_month_assigned", assignment="user", **LABELS) == 12
    assert value(text, "citrix_licenses_month_newly_assigned", assignment="user", **LABELS) == 5
    assert value(text, "citrix_licenses_month_released", assignment="user", **LABELS) == 2
    assert value(text, "citrix_licenses_month_assigned", assignment="device", **LABELS) == 9
    assert value(text, "citrix_licenses_month_newly_assigned", assignment="device", **LABELS) == 4
    assert value(text, "citrix_licenses_month_released", assignment="device", **LABELS) == 1
    # History is fetched at most once a day; current usage every poll.
    await poll(exporter)
    assert sim_state.count("/historicalusage") == 1
    assert sim_state.count("/ud/current") == 2
    query = next(r.query for r in sim_state.requests if r.path.endswith("/historicalusage"))
    assert query["endDate"] == this_month.strftime("%Y-%m")
    assert len(query["startDate"]) == 7


async def test_no_history_in_range_is_not_an_error(base_url, exporter_factory, sim_state):
    # The seed's history is from 2021: the last-12-months request gets 204.
    text = await poll(await exporter_factory(make_config(base_url)))
    assert "citrix_licenses_month_available{" not in text
    assert value(text, "citrix_up", collector="licensing") == 1


async def test_not_entitled_is_a_state_not_a_failure_and_logged_once(
    base_url, exporter_factory, sim_state, caplog
):
    sim_state.customers[SEED_CUSTOMER].licensing.entitled = False
    exporter = await exporter_factory(make_config(base_url))
    for _ in range(3):
        text = await poll(exporter)
    assert value(text, "citrix_up", collector="licensing") == 1
    assert value(text, "citrix_collector_entitled", collector="licensing") == 0
    assert "citrix_licenses_available{" not in text
    assert sum("not entitled" in r.getMessage() for r in caplog.records) == 1
    # Keeps polling at the normal pace: one current call per poll, no retries.
    assert sim_state.count("/ud/current") == 3
    sim_state.customers[SEED_CUSTOMER].licensing.entitled = True
    text = await poll(exporter)
    assert value(text, "citrix_up", collector="licensing") == 1
    assert value(text, "citrix_collector_entitled", collector="licensing") == 1


@pytest.fixture
def far_east(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process runs 14 hours ahead of UTC (POSIX TZ signs are inverted): months must still
    be UTC months, so a local-time slip shows up around midnight and month ends."""
    monkeypatch.setenv("TZ", "UTC-14")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def history_queries(sim_state: SimulatorState) -> list[tuple[str, str]]:
    """(startDate, endDate) of every historical usage request, in order."""
    return [
        (r.query["startDate"], r.query["endDate"])
        for r in sim_state.requests
        if r.path.endswith("/historicalusage")
    ]


@pytest.mark.parametrize(
    ("now", "window"),
    [
        # Twelve months including the current one: startDate is 11 months back, not 12.
        (datetime(2025, 6, 10, 12, 0, tzinfo=UTC), ("2024-07", "2025-06")),
        # January: the window crosses the year boundary.
        (datetime(2025, 1, 15, 8, 30, tzinfo=UTC), ("2024-02", "2025-01")),
        # The last second of December and the first of January, UTC (not local time).
        (datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), ("2024-01", "2024-12")),
        (datetime(2025, 1, 1, 0, 0, 0, tzinfo=UTC), ("2024-02", "2025-01")),
        # December: start in January of the same year.
        (datetime(2025, 12, 1, tzinfo=UTC), ("2025-01", "2025-12")),
    ],
)
async def test_history_window_requested_for_a_fixed_clock(
    base_url,
    exporter_factory,
    sim_state: SimulatorState,
    now: datetime,
    window: tuple[str, str],
    far_east: None,
):
    exporter = await exporter_factory(make_config(base_url), clock=Clock(now))
    await poll(exporter)
    assert history_queries(sim_state) == [window]


async def test_history_is_refetched_for_the_new_month_and_after_a_day(
    base_url, exporter_factory, sim_state: SimulatorState
):
    clock = Clock(datetime(2025, 1, 31, 23, 0, tzinfo=UTC))
    sim_state.customers[SEED_CUSTOMER].licensing.history = [
        HistoryMonth(date(2025, 1, 1), 40, 12, 5, 2, 9, 4, 1),
        HistoryMonth(date(2025, 2, 1), 50, 20, 8, 0, 10, 1, 0),
    ]
    exporter = await exporter_factory(make_config(base_url), clock=clock)
    text = await poll(exporter)
    assert value(text, "citrix_licenses_month_available", **LABELS) == 40
    clock.set(datetime(2025, 1, 31, 23, 50, tzinfo=UTC))  # same day and month: kept
    await poll(exporter)
    clock.set(datetime(2025, 2, 1, 0, 10, tzinfo=UTC))  # an hour later, but a new month
    text = await poll(exporter)
    assert value(text, "citrix_licenses_month_available", **LABELS) == 50
    when = datetime(2025, 2, 1, tzinfo=UTC).timestamp()
    assert value(text, "citrix_licenses_month_start_timestamp_seconds", **LABELS) == when
    clock.set(datetime(2025, 2, 2, 0, 9, tzinfo=UTC))  # 23 h 59 min later: kept
    await poll(exporter)
    clock.set(datetime(2025, 2, 2, 0, 10, tzinfo=UTC))  # a full day later: refetched
    await poll(exporter)
    assert history_queries(sim_state) == [
        ("2024-02", "2025-01"),
        ("2024-03", "2025-02"),
        ("2024-03", "2025-02"),
    ]
    assert sim_state.count("/ud/current") == 5


# -- odd answers over HTTP (tests/support/hostile.py), a good customer beside the odd one --------

HOSTILE_NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
ODD = {"customer_id": "odd1", "client_id": "odd-client", "client_secret": "odd-secret-Lc4"}
GOOD = {"customer_id": "good1", "client_id": "good-client", "client_secret": "good-secret-Lc5"}
ODD_LABELS = {"customer_id": "odd1", "product": "XenDesktop", "edition": "XAXDFull"}
GOOD_LABELS = {"customer_id": "good1", "product": "XenDesktop", "edition": "XAXDFull"}
ISSUES = "citrix_upstream_data_issues_total"


def month_entry(month: str, available: Any, user: Any = None, device: Any = None) -> Any:
    """One `historicalUsageList` entry for `month` (yyyy-MM); usages as (cumulative, new,
    released) or whatever odd value the test wants."""

    def usage(figures: Any) -> Any:
        if not isinstance(figures, tuple):
            return figures
        keys = ("cumulativeAssignedCount", "newAssignedCount", "releasedCount")
        return dict(zip(keys, figures, strict=True))

    return {
        "timeStamp": f"{month}-01T00:00:00Z",
        "totalAvailableLicenseCount": available,
        "userLicenseUsage": usage(user if user is not None else (1, 1, 0)),
        "deviceLicenseUsage": usage(device if device is not None else (1, 1, 0)),
    }


class Answers:
    """The odd customer's history answer, changed by the test between polls."""

    def __init__(self) -> None:
        self.history: Any = None  # None: 204
        self.status = 200

    def __call__(self, _request: web.Request) -> web.Response:
        if self.status != 200:
            return web.Response(status=self.status, text="history broke")
        if self.history is None:
            return web.Response(status=204)
        return web.json_response(self.history)


async def hostile_exporter(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    exporter_factory: Callable[..., Awaitable[Exporter]],
    hostile: HostileUpstream,
    clock: Clock,
) -> Exporter:
    server = await aiohttp_server(hostile.app())
    url = str(server.make_url("")).rstrip("/")
    return await exporter_factory(make_config(url, [ODD, GOOD]), clock=clock)


async def history_exporter(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    exporter_factory: Callable[..., Awaitable[Exporter]],
    answers: Answers,
) -> Exporter:
    """The two customers at HOSTILE_NOW, odd1's licence history answered by `answers`."""
    hostile = HostileUpstream()
    hostile.on("odd1", HISTORY_SUFFIX, answers)
    return await hostile_exporter(aiohttp_server, exporter_factory, hostile, Clock(HOSTILE_NOW))


def status_of(exporter: Exporter, customer_id: str) -> PollStatus:
    [job] = [job for job in exporter.poller.jobs if job.key == (customer_id, "licensing")]
    return job.status


def data_issue_logs(stream: Any) -> list[tuple[str, str, str]]:
    """(issue, field, detail) of each data-issue warning the real log handler wrote."""
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [
        (line["issue"], line["field"], line["detail"])
        for line in lines
        if line["msg"].startswith("unexpected upstream data")
    ]


async def test_current_usage_that_is_not_an_object_fails_only_that_customer(
    aiohttp_server, exporter_factory
):
    hostile = HostileUpstream()
    hostile.on("odd1", CURRENT_SUFFIX, lambda _r: web.json_response([good_current("odd1")]))
    exporter = await hostile_exporter(aiohttp_server, exporter_factory, hostile, Clock(HOSTILE_NOW))
    with real_log_output("json") as (stream, _):
        assert await exporter.poller.run_all_once() is False
    text = generate_latest(exporter.registry).decode()
    assert value(text, "citrix_up", customer_id="odd1", collector="licensing") == 0
    assert status_of(exporter, "odd1").last_error == (
        "licensing_current: response is not a JSON object"
    )
    assert value(text, ISSUES, customer_id="odd1", collector="licensing", issue="bad_shape") == 1
    assert data_issue_logs(stream) == [
        ("bad_shape", "current", "current usage is not a JSON object")
    ]
    assert value(text, "citrix_up", customer_id="good1", collector="licensing") == 1
    assert value(text, "citrix_licenses_available", **GOOD_LABELS) == 25
    # The history is not asked for when the current usage is unusable.
    assert hostile.count(HISTORY_SUFFIX, "odd1") == 0
    assert hostile.count(HISTORY_SUFFIX, "good1") == 1


async def test_history_shows_the_current_month_even_when_a_later_one_is_reported(
    aiohttp_server, exporter_factory
):
    answers = Answers()
    answers.history = {
        "historicalUsageList": [
            "not an entry",
            month_entry("2026-07", 70, (7, 7, 7), (7, 7, 7)),
            month_entry("2026-06", 60, (12, 5, 2), (9, 4, 1)),
            month_entry("2026-05", 50, (5, 5, 5), (5, 5, 5)),
        ]
    }
    exporter = await history_exporter(aiohttp_server, exporter_factory, answers)
    text = await poll(exporter)
    june = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
    assert value(text, "citrix_licenses_month_start_timestamp_seconds", **ODD_LABELS) == june
    assert value(text, "citrix_licenses_month_available", **ODD_LABELS) == 60
    month = {
        (name, assignment): value(text, name, assignment=assignment, **ODD_LABELS)
        for name in (
            "citrix_licenses_month_assigned",
            "citrix_licenses_month_newly_assigned",
            "citrix_licenses_month_released",
        )
        for assignment in ("user", "device")
    }
    assert month == {
        ("citrix_licenses_month_assigned", "user"): 12,
        ("citrix_licenses_month_newly_assigned", "user"): 5,
        ("citrix_licenses_month_released", "user"): 2,
        ("citrix_licenses_month_assigned", "device"): 9,
        ("citrix_licenses_month_newly_assigned", "device"): 4,
        ("citrix_licenses_month_released", "device"): 1,
    }
    # The good customer's 204 (no history yet) is no error and no series.
    assert value(text, "citrix_licenses_month_available", customer_id="good1") is None
    assert value(text, "citrix_up", customer_id="good1", collector="licensing") == 1


async def test_history_without_the_current_month_shows_the_latest_reported(
    aiohttp_server, exporter_factory
):
    answers = Answers()
    answers.history = {
        "historicalUsageList": [
            month_entry("2026-04", 40),
            month_entry("2026-05", 50),
            month_entry("2026-03", 30),
        ]
    }
    exporter = await history_exporter(aiohttp_server, exporter_factory, answers)
    text = await poll(exporter)
    may = datetime(2026, 5, 1, tzinfo=UTC).timestamp()
    assert value(text, "citrix_licenses_month_start_timestamp_seconds", **ODD_LABELS) == may
    assert value(text, "citrix_licenses_month_available", **ODD_LABELS) == 50


async def test_odd_history_entries_are_left_out_and_counted_by_field(
    aiohttp_server, exporter_factory
):
    answers = Answers()
    answers.history = {
        "historicalUsageList": [
            {"totalAvailableLicenseCount": 99},  # no timeStamp
            month_entry("2026-06", -1, ["not", "an", "object"], (9, "many", 1)),
        ]
    }
    exporter = await history_exporter(aiohttp_server, exporter_factory, answers)
    with real_log_output("json") as (stream, _):
        text = await poll(exporter)
    june = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
    assert value(text, "citrix_licenses_month_start_timestamp_seconds", **ODD_LABELS) == june
    assert value(text, "citrix_licenses_month_available", **ODD_LABELS) is None
    by_assignment = {
        (name, assignment): value(text, name, assignment=assignment, **ODD_LABELS)
        for name in ("citrix_licenses_month_assigned", "citrix_licenses_month_newly_assigned",
                     "citrix_licenses_month_released")
        for assignment in ("user", "device")
    }  # fmt: skip
    assert by_assignment == {
        ("citrix_licenses_month_assigned", "user"): None,  # userLicenseUsage is no object
        ("citrix_licenses_month_newly_assigned", "user"): None,
        ("citrix_licenses_month_released", "user"): None,
        ("citrix_licenses_month_assigned", "device"): 9,
        ("citrix_licenses_month_newly_assigned", "device"): None,  # "many"
        ("citrix_licenses_month_released", "device"): 1,
    }
    assert data_issue_logs(stream) == [
        ("null", "historicalUsageList.timeStamp", ""),
        ("negative", "historicalUsageList.totalAvailableLicenseCount", "-1"),
        ("bad_type", "historicalUsageList.userLicenseUsage", ""),  # counted, not silently skipped
        ("bad_number", "historicalUsageList.deviceLicenseUsage.newAssignedCount", "'many'"),
    ]
    assert value(text, "citrix_up", customer_id="odd1", collector="licensing") == 1


@pytest.mark.parametrize(
    ("history", "issues"),
    [
        (["a list"], [("bad_shape", "historicalusage", "not a JSON object")]),
        ({"historicalUsageList": {"not": "a list"}}, []),
        ({"historicalUsageList": []}, []),
    ],
)
async def test_history_that_is_not_a_list_of_months_gives_no_month_series(
    aiohttp_server, exporter_factory, history: Any, issues: list[tuple[str, str, str]]
):
    answers = Answers()
    answers.history = history
    exporter = await history_exporter(aiohttp_server, exporter_factory, answers)
    with real_log_output("json") as (stream, _):
        text = await poll(exporter)
    assert data_issue_logs(stream) == issues
    assert "citrix_licenses_month_" not in text
    assert value(text, "citrix_up", customer_id="odd1", collector="licensing") == 1
    assert value(text, "citrix_licenses_available", **ODD_LABELS) == 25


async def test_a_failed_history_fetch_keeps_the_figures_and_is_retried_next_poll(
    aiohttp_server, exporter_factory
):
    answers = Answers()
    answers.history = {"historicalUsageList": [month_entry("2026-06", 60)]}
    hostile = HostileUpstream()
    hostile.on("odd1", HISTORY_SUFFIX, answers)
    clock = Clock(HOSTILE_NOW)
    exporter = await hostile_exporter(aiohttp_server, exporter_factory, hostile, clock)
    await poll(exporter)
    clock.set(datetime(2026, 6, 16, 12, 0, tzinfo=UTC))  # a day later: refreshed, and broken
    answers.status = 403
    with real_log_output("json") as (stream, _):
        text = await poll(exporter)
    assert value(text, "citrix_licenses_month_available", **ODD_LABELS) == 60
    assert value(text, "citrix_up", customer_id="odd1", collector="licensing") == 1
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    [warning] = [line for line in lines if line["logger"] == "citrix_exporter.licensing"]
    assert warning["level"] == "warning"
    assert warning["msg"] == (
        "historical usage not available; keeping previous figures, retrying next poll"
    )
    assert warning["customer_id"] == "odd1"
    assert warning["error"].startswith("licensing_historical_usage: HTTP 403")
    # Retried at the very next poll (not a day later), and then kept for a day again.
    answers.status = 200
    answers.history = {"historicalUsageList": [month_entry("2026-06", 61)]}
    clock.set(datetime(2026, 6, 16, 12, 1, tzinfo=UTC))
    text = await poll(exporter)
    assert value(text, "citrix_licenses_month_available", **ODD_LABELS) == 61
    clock.set(datetime(2026, 6, 17, 12, 0, tzinfo=UTC))
    await poll(exporter)
    assert hostile.count(HISTORY_SUFFIX, "odd1") == 3
    assert hostile.count(CURRENT_SUFFIX, "odd1") == 4
    api = "citrix_api_requests_total"
    assert value(text, api, customer_id="odd1", endpoint="licensing_historical_usage", code="403")
    assert value(text, api, customer_id="odd1", endpoint="licensing_current", code="200") == 3


async def test_history_unavailable_from_the_start_still_exports_current_usage(
    aiohttp_server, exporter_factory
):
    answers = Answers()
    answers.status = 403
    exporter = await history_exporter(aiohttp_server, exporter_factory, answers)
    text = await poll(exporter)
    assert value(text, "citrix_up", customer_id="odd1", collector="licensing") == 1
    assert value(text, "citrix_licenses_available", **ODD_LABELS) == 25
    assert "citrix_licenses_month_" not in text


async def test_licensing_families_help_and_label_names(aiohttp_server, exporter_factory):
    answers = Answers()
    answers.history = {"historicalUsageList": [month_entry("2026-06", 60)]}
    exporter = await history_exporter(aiohttp_server, exporter_factory, answers)
    text = await poll(exporter)
    helps = dict(
        line.removeprefix("# HELP ").split(" ", 1)
        for line in text.splitlines()
        if line.startswith("# HELP citrix_licenses_")
    )
    polled = "Polled from the Citrix Cloud licensing API every licensing interval."
    daily = "Polled from the licensing historical usage API once a day."
    assert (
        helps["citrix_licenses_available"]
        == f"Licenses available (totalAvailableLicenseCount). {polled}"
    )
    month_helps = {
        "citrix_licenses_month_start_timestamp_seconds": "Start of the month the "
        "citrix_licenses_month_* figures describe (the current month when Citrix has reported "
        "it).",
        "citrix_licenses_month_available": "Licenses available in the month (historical usage).",
        "citrix_licenses_month_assigned": "Licenses assigned cumulatively up to this month, by "
        "assignment kind.",
        "citrix_licenses_month_newly_assigned": "Licenses newly assigned in the month, by "
        "assignment kind.",
        "citrix_licenses_month_released": "Licenses released in the month, by assignment kind.",
    }
    assert {name: text for name, text in helps.items() if "_month_" in name} == {
        name: f"{text} {daily}" for name, text in month_helps.items()
    }
    names = {
        sample.name: sorted(sample.labels)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("citrix_licenses_") and sample.labels["customer_id"] == "odd1"
    }
    per_customer = ["customer_id", "edition", "product"]
    per_assignment = ["assignment", "customer_id", "edition", "product"]
    assert names["citrix_licenses_available"] == per_customer
    assert names["citrix_licenses_month_start_timestamp_seconds"] == per_customer
    assert names["citrix_licenses_month_available"] == per_customer
    for name in ("assigned", "newly_assigned", "released"):
        assert names[f"citrix_licenses_month_{name}"] == per_assignment
