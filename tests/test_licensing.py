"""Licensing collector against the simulator serving Citrix's documented examples."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from prometheus_client import generate_latest

from exporter.runtime import Exporter
from exporter.simulator.state import HistoryMonth, SimulatorState
from tests.helpers import SEED_CUSTOMER, make_config, value

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


async def test_not_entitled_is_up_zero_and_logged_once(
    base_url, exporter_factory, sim_state, caplog
):
    sim_state.customers[SEED_CUSTOMER].licensing.entitled = False
    exporter = await exporter_factory(make_config(base_url))
    for _ in range(3):
        text = await poll(exporter)
    assert value(text, "citrix_up", collector="licensing") == 0
    assert "citrix_licenses_available{" not in text
    assert sum("not entitled" in r.getMessage() for r in caplog.records) == 1
    # Keeps polling at the normal pace: one current call per poll, no retries.
    assert sim_state.count("/ud/current") == 3
    sim_state.customers[SEED_CUSTOMER].licensing.entitled = True
    text = await poll(exporter)
    assert value(text, "citrix_up", collector="licensing") == 1


class FixedClock:
    """A clock the test moves by hand (seconds since the epoch)."""

    def __init__(self, when: datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when.timestamp()


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
    exporter = await exporter_factory(make_config(base_url), clock=FixedClock(now))
    await poll(exporter)
    assert history_queries(sim_state) == [window]


async def test_history_is_refetched_for_the_new_month_and_after_a_day(
    base_url, exporter_factory, sim_state: SimulatorState
):
    clock = FixedClock(datetime(2025, 1, 31, 23, 0, tzinfo=UTC))
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
