"""Each (customer, collector) job polls on its own interval, at a fixed rate, never overlapping,
at its own offset within the interval so that many customers' polls spread over it.

The poller's loop is run on an event loop with virtual time: when nothing is ready, the clock
jumps to the next timer, so a 10-minute schedule takes milliseconds and the counts are exact.
The poller reads time through ``time.monotonic``; the test points its module's ``time`` at the
loop's clock, so poll durations (virtual sleeps inside a collector) count too. No HTTP runs in
virtual time (a client timeout would fire at the first jump): the schedule comes from a real
Exporter's jobs, built from a config against the simulator, polled by counting collectors.
"""

from __future__ import annotations

import asyncio
import itertools
import selectors
from collections.abc import Awaitable, Callable, Coroutine
from types import SimpleNamespace
from typing import Any

import pytest

import exporter.poller as poller_module
from exporter.poller import Poller, PollJob
from exporter.runtime import Exporter
from exporter.schedule import delay_after_poll, slot_fraction, spread_offset
from exporter.snapshot import SnapshotStore
from tests.support.helpers import SEED_CLIENT, SEED_CUSTOMER, SEED_SECRET, make_config


class _JumpingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Never blocks: with nothing ready, advances the loop's clock by the wait instead."""

    def __init__(self, advance: Callable[[float], None]) -> None:
        super().__init__()
        self._advance = advance

    def select(self, timeout: float | None = None) -> list[Any]:
        events: list[Any] = super().select(0)
        if not events and timeout:
            self._advance(timeout)
        elif not events and timeout is None:
            raise RuntimeError("virtual-time loop: nothing scheduled, would wait forever")
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose time() starts at 0 and moves only when every task is waiting."""

    def __init__(self) -> None:
        self._virtual_now = 0.0
        super().__init__(_JumpingSelector(self._advance))

    def _advance(self, seconds: float) -> None:
        self._virtual_now += seconds

    def time(self) -> float:
        return self._virtual_now


def run_virtual(
    monkeypatch: pytest.MonkeyPatch, scenario: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    loop = VirtualTimeLoop()
    with monkeypatch.context() as patch:
        patch.setattr(poller_module, "time", SimpleNamespace(monotonic=loop.time))
        try:
            loop.run_until_complete(scenario())
        finally:
            loop.close()


class CountingCollector:
    """Records the (virtual) time of each poll; each poll takes `duration` seconds, or the
    next of `durations` while they last."""

    def __init__(self, name: str, duration: float = 0.0, durations: tuple[float, ...] = ()):
        self.name = name
        self.duration = duration
        self.durations = list(durations)
        self.started: list[float] = []

    async def poll(self) -> list[Any]:
        self.started.append(asyncio.get_running_loop().time())
        duration = self.durations.pop(0) if self.durations else self.duration
        if duration:
            await asyncio.sleep(duration)
        return []


async def run_poller(jobs: list[PollJob], seconds: float, wall_at_start: float = 0.0) -> None:
    """Start the poller's loops, let `seconds` of virtual time pass, stop them. The wall clock
    reads `wall_at_start` when the virtual clock reads 0."""
    loop = asyncio.get_running_loop()

    def wall() -> float:
        return wall_at_start + loop.time()

    poller = Poller(jobs, SnapshotStore(3600, wall), wall)
    poller.start()
    await asyncio.sleep(seconds)
    await poller.stop()


def starts(collector: CountingCollector) -> list[float]:
    return [round(t, 6) for t in collector.started]


def test_each_job_polls_on_its_own_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow, other = (
        CountingCollector("licensing"),
        CountingCollector("monitor"),
        CountingCollector("licensing"),
    )
    jobs = [
        PollJob("acme", fast, 60, offset=0.0),
        PollJob("acme", slow, 300, offset=0.0),
        PollJob("globex", other, 90, offset=0.0),
    ]

    async def scenario() -> None:
        await run_poller(jobs, 620)

    run_virtual(monkeypatch, scenario)
    assert starts(fast) == [60.0 * i for i in range(11)]  # 0, 60, ..., 600
    assert starts(slow) == [0.0, 300.0, 600.0]
    assert starts(other) == [90.0 * i for i in range(7)]  # 0, 90, ..., 540
    assert [job.status.attempts for job in jobs] == [11, 3, 7]


def test_fixed_rate_and_a_slow_poll_delays_the_next_without_overlap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steady = CountingCollector("licensing", duration=20)  # shorter than its interval
    slow = CountingCollector("monitor", duration=90)  # longer than its interval
    jobs = [PollJob("acme", steady, 60, offset=0.0), PollJob("acme", slow, 60, offset=0.0)]

    async def scenario() -> None:
        await run_poller(jobs, 400)

    run_virtual(monkeypatch, scenario)
    # Fixed rate: starts every 60 s, not every 60 s + the 20 s the poll took.
    assert starts(steady) == [0.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0]
    # Never two polls of one job at once: the next starts when the slow one ends.
    assert starts(slow) == [0.0, 90.0, 180.0, 270.0, 360.0]


def test_a_late_poll_returns_to_its_slots_instead_of_catching_up_in_a_burst(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One 200 s poll (an upstream outage with retries) must not be followed by the three
    missed polls back to back: the next starts when it ended, the one after at the job's
    next slot (240, at least half an interval later), so an outage that delays every customer
    does not leave them polling in step afterwards."""
    stalled = CountingCollector("licensing", durations=(200,))
    jobs = [PollJob("acme", stalled, 60, offset=0.0)]

    async def scenario() -> None:
        await run_poller(jobs, 400)

    run_virtual(monkeypatch, scenario)
    assert starts(stalled) == [0.0, 200.0, 240.0, 300.0, 360.0]


async def test_jobs_take_each_collectors_own_interval_from_the_config(
    base_url: str,
    exporter_factory: Callable[..., Awaitable[Exporter]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """config -> jobs: per-collector intervals win over poll.interval, per customer."""
    config = make_config(
        base_url,
        [
            {"customer_id": SEED_CUSTOMER, "client_id": SEED_CLIENT,
             "client_secret": SEED_SECRET,
             "collectors": {"licensing": {"interval": "15m"},
                            "monitor": {"enabled": True, "interval": "1m"}}},
            {"customer_id": "other-customer", "client_id": "x", "client_secret": "y",
             "collectors": {"monitor": {"enabled": True}}},
        ],
        interval="5m",
    )  # fmt: skip
    exporter = await exporter_factory(config)
    intervals = {job.key: job.interval for job in exporter.poller.jobs}
    assert intervals == {
        (SEED_CUSTOMER, "licensing"): 900.0,
        (SEED_CUSTOMER, "monitor"): 60.0,
        ("other-customer", "licensing"): 300.0,
        ("other-customer", "monitor"): 300.0,
    }
    # The same jobs' schedule over an hour: 4, 60, 12 and 12 polls.
    counting = {job.key: CountingCollector(job.name) for job in exporter.poller.jobs}
    jobs = [
        PollJob(job.customer_id, counting[job.key], job.interval, offset=0.0)
        for job in exporter.poller.jobs
    ]

    async def scenario() -> None:
        await run_poller(jobs, 3599)

    await asyncio.to_thread(run_virtual, monkeypatch, scenario)
    assert {key: len(c.started) for key, c in counting.items()} == {
        (SEED_CUSTOMER, "licensing"): 4,
        (SEED_CUSTOMER, "monitor"): 60,
        ("other-customer", "licensing"): 12,
        ("other-customer", "monitor"): 12,
    }


# A wall clock that is not a multiple of any interval, so slots are not at virtual 0.
WALL_AT_START = 1_700_000_123.25


def test_offsets_are_stable_and_depend_on_the_customer_and_collector() -> None:
    """sha256 of the key, never the salted hash(): the same job has the same offset in every
    process, so a restart keeps each customer's place in the interval."""
    assert spread_offset("acme", "licensing", 900) == pytest.approx(564.5092111790415)
    assert spread_offset("acme", "licensing", 60) == pytest.approx(564.5092111790415 / 15)
    assert spread_offset("acme", "monitor", 60) == pytest.approx(16.13489547171471)
    assert spread_offset("globex", "licensing", 900) == pytest.approx(17.534543797554754)


@pytest.mark.parametrize("template", ["customer{:04d}", "{:x}c1trix", "tenant-{}"])
def test_offsets_of_a_thousand_customers_are_evenly_spread(template: str) -> None:
    buckets = [0] * 10
    for i in range(1000):
        fraction = slot_fraction(template.format(i), "licensing")
        assert 0 <= fraction < 1
        buckets[int(fraction * 10)] += 1
    assert all(70 <= count <= 130 for count in buckets), buckets


@pytest.mark.parametrize("jitter", [-1e-6, 0.0, 1e-6])
def test_a_poll_on_its_slot_is_followed_by_the_next_slot_whatever_the_timer_jitter(
    jitter: float,
) -> None:
    """A timer firing a hair early or late must not skip a slot or poll twice in one."""
    started = 1200.0 + jitter  # anchor 300, interval 60: 1200 is a slot
    assert delay_after_poll(started, started + 5, 300.0, 60) == pytest.approx(55 - jitter)


def test_first_poll_at_once_then_every_poll_at_its_offset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customers = ["acme", "globex", "initech", "umbrella", "hooli"]
    collectors = {name: CountingCollector("licensing") for name in customers}
    jobs = [PollJob(name, collectors[name], 900) for name in customers]

    async def scenario() -> None:
        await run_poller(jobs, 3 * 900, WALL_AT_START)

    run_virtual(monkeypatch, scenario)
    for job in jobs:
        polls = starts(collectors[job.customer_id])
        assert polls[0] == 0.0, "the first poll does not wait for the slot"
        for at in polls[1:]:  # on the wall clock, every later poll is at the job's offset
            off_slot = (WALL_AT_START + at - job.slot_offset) % 900
            assert min(off_slot, 900 - off_slot) < 1e-6
        assert 450 <= polls[1] < 1350, "the second poll is at least half an interval later"
        gaps = [round(b - a, 3) for a, b in itertools.pairwise(polls[1:])]
        assert gaps == [900.0] * len(gaps)


def test_a_thousand_customers_poll_at_a_steady_rate_after_the_first_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1,000 customers on a 15-minute interval: all poll at start, then ~1.1 polls/s."""
    collectors = [CountingCollector("licensing", duration=2.0) for _ in range(1000)]
    jobs = [PollJob(f"customer{i:04d}", c, 900) for i, c in enumerate(collectors)]

    async def scenario() -> None:
        await run_poller(jobs, 2 * 900 + 450, WALL_AT_START)

    run_virtual(monkeypatch, scenario)
    assert all(starts(c)[0] == 0.0 for c in collectors)
    steady = [t for c in collectors for t in starts(c) if 1350 <= t < 2250]
    assert len(steady) == 1000, "exactly one poll of each customer per interval"
    per_90s = [0] * 10
    for at in steady:
        per_90s[int((at - 1350) // 90)] += 1
    assert all(70 <= count <= 130 for count in per_90s), per_90s
    per_second: dict[int, int] = {}
    for at in steady:
        per_second[int(at)] = per_second.get(int(at), 0) + 1
    assert max(per_second.values()) <= 8, "no burst"
