"""The poller's bookkeeping: what one poll records, publishes, logs and exposes.

Collectors here are small stand-ins that return or raise what the test needs; the store, the
status collector and the exporter's real log handler (tests/support/logcapture.py) are the real
ones. The poller's monotonic clock is a counter the collectors move, so durations are exact.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

import exporter.poller as poller_module
from exporter.collector.base import SeriesLimitError
from exporter.config import DEFAULT_MAX_SERIES
from exporter.exposition.blocks import Rendered, join, render
from exporter.log import MAX_ERROR_CHARS
from exporter.poller import (
    INLINE_RENDER_MAX_SERIES,
    Poller,
    PollJob,
    ResultRejectedError,
    StatusCollector,
    check_result,
    error_text,
)
from exporter.redact import REDACTOR
from exporter.snapshot import SnapshotStore
from exporter.upstream.errors import NotEntitledError, UpstreamError
from tests.support.helpers import Clock, samples, value
from tests.support.logcapture import real_log_output

WALL = 1_800_000_000.0


@pytest.fixture
def mono(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    clock = Clock(500.0)  # the poller's time.monotonic: moved when a poll takes a while
    monkeypatch.setattr(poller_module, "time", SimpleNamespace(monotonic=clock))
    yield clock


def gauge(customer_id: str, value: float = 1.0, series: int = 1) -> Metric:
    family = GaugeMetricFamily("citrix_x", "X.", labels=["customer_id", "n"])
    for n in range(series):
        family.add_metric([customer_id, str(n)], value)
    return family


class Scripted:
    """A collector whose polls return or raise the next item of `script` (the last repeats),
    each taking `took` seconds of the poller's monotonic time."""

    def __init__(
        self,
        name: str,
        script: list[Any],
        mono: Clock | None = None,
        took: float = 0.0,
    ) -> None:
        self.name = name
        self.script = script
        self.mono = mono
        self.took = took
        self.polls = 0

    async def poll(self) -> list[Metric]:
        self.polls += 1
        if self.mono is not None:
            self.mono.now += self.took
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, BaseException):
            raise item
        return list(item)


def make_poller(*jobs: PollJob, max_series: int | None = None) -> tuple[Poller, SnapshotStore]:
    store = SnapshotStore(3600, lambda: WALL)
    if max_series is None:
        return Poller(jobs, store, lambda: WALL), store
    return Poller(jobs, store, lambda: WALL, max_series), store


def served(*collectors: Any) -> str:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry).decode()


def log_lines(stream: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_a_successful_poll_publishes_and_records_its_status(mono: Clock) -> None:
    collector = Scripted("licensing", [[gauge("acme", 7)]], mono, took=2.0625)
    job = PollJob("acme", collector, 60)  # type: ignore[arg-type]
    poller, store = make_poller(job)
    assert not poller.ready
    with real_log_output("json") as (stream, _):
        assert await poller.poll_once(job) is True
    assert poller.ready
    status = job.status
    assert (status.attempts, status.last_ok, status.last_error) == (1, True, None)
    assert (status.last_attempt_at, status.last_success_at) == (WALL, WALL)
    assert status.last_duration == 2.0625
    assert value(served(store), "citrix_x", customer_id="acme") == 7
    [line] = [entry for entry in log_lines(stream) if entry["logger"] == "citrix_exporter.poller"]
    assert line["level"] == "debug"
    assert line["msg"] == "poll succeeded"
    assert (line["customer_id"], line["collector"], line["duration_seconds"]) == (
        "acme",
        "licensing",
        2.062,  # rounded to the millisecond in the log
    )


async def test_a_failed_poll_keeps_the_values_and_records_the_scrubbed_error(
    mono: Clock,
) -> None:
    secret = "poller-test-secret-Vq9!"
    REDACTOR.add_secrets([secret])
    collector = Scripted(
        "licensing",
        [[gauge("acme", 7)], UpstreamError(f"HTTP 500 from licensing_current {secret}", 500)],
        mono,
        took=1.25,
    )
    job = PollJob("acme", collector, 60)  # type: ignore[arg-type]
    poller, store = make_poller(job)
    assert await poller.poll_once(job) is True
    with real_log_output("json") as (stream, _):
        assert await poller.poll_once(job) is False
    status = job.status
    assert (status.attempts, status.last_ok) == (2, False)
    assert status.last_error is not None
    assert status.last_error.startswith("HTTP 500 from licensing_current ")
    assert secret not in status.last_error
    assert status.last_success_at == WALL  # the earlier success
    assert status.last_duration == 1.25
    # Failing, not yet stale: the last good values are still served.
    assert value(served(store), "citrix_x", customer_id="acme") == 7
    [line] = [entry for entry in log_lines(stream) if entry["logger"] == "citrix_exporter.poller"]
    assert (line["level"], line["msg"]) == ("error", "poll failed")
    assert (line["customer_id"], line["collector"]) == ("acme", "licensing")
    assert line["error"] == status.last_error
    assert "exc" not in line


async def test_a_failure_marks_the_values_failing_so_they_expire(mono: Clock) -> None:
    now = [WALL]
    collector = Scripted("licensing", [[gauge("acme", 7)], UpstreamError("down")], mono)
    job = PollJob("acme", collector, 60)  # type: ignore[arg-type]
    store = SnapshotStore(100, lambda: now[0])
    poller = Poller([job], store, lambda: now[0])
    await poller.poll_once(job)
    now[0] = WALL + 101  # older than max_staleness, but not failing: kept
    assert value(served(store), "citrix_x", customer_id="acme") == 7
    await poller.poll_once(job)  # fails: now failing and stale, so gone at once
    assert value(served(store), "citrix_x", customer_id="acme") is None


async def test_an_internal_error_is_recorded_with_its_type_and_logged_with_the_traceback(
    mono: Clock,
) -> None:
    collector = Scripted("monitor", [KeyError("Machines")], mono, took=0.5)
    job = PollJob("globex", collector, 60)  # type: ignore[arg-type]
    poller, _ = make_poller(job)
    with real_log_output("json") as (stream, _):
        assert await poller.poll_once(job) is False
    assert job.status.last_error == "internal error: KeyError: 'Machines'"
    assert (job.status.attempts, job.status.last_ok, job.status.last_duration) == (1, False, 0.5)
    [line] = [entry for entry in log_lines(stream) if entry["logger"] == "citrix_exporter.poller"]
    assert (line["level"], line["msg"]) == ("error", "poll failed with an internal error")
    assert (line["customer_id"], line["collector"]) == ("globex", "monitor")
    assert "KeyError: 'Machines'" in line["exc"]


async def test_not_entitled_drops_the_values_and_is_logged_once_per_spell(mono: Clock) -> None:
    collector = Scripted(
        "licensing",
        [
            [gauge("acme", 7)],
            NotEntitledError("HTTP 404 from licensing_current", 404),
            NotEntitledError("HTTP 404 from licensing_current", 404),
            [gauge("acme", 8)],
            NotEntitledError("HTTP 404 again", 404),
        ],
        mono,
        took=0.75,
    )
    other = Scripted("licensing", [NotEntitledError("HTTP 404 for globex", 404)], mono)
    job, other_job = PollJob("acme", collector, 60), PollJob("globex", other, 60)  # type: ignore[arg-type]
    poller, store = make_poller(job, other_job)
    await poller.poll_once(job)
    with real_log_output("json") as (stream, _):
        # Not entitled is a state, not a failure: the poll learned there is nothing to collect.
        assert await poller.poll_once(job) is True
        # Dropped at once, not kept for max_staleness like other failures.
        assert served(store) == ""
        status = job.status
        assert (status.last_ok, status.last_error, status.not_entitled, status.result) == (
            True,
            None,
            "HTTP 404 from licensing_current",
            "not entitled",
        )
        assert status.last_success_at == WALL
        assert job.status.last_duration == 0.75
        status_text = served(StatusCollector(poller))
        assert 'citrix_up{collector="licensing",customer_id="acme"} 1.0' in status_text
        assert 'citrix_collector_entitled{collector="licensing",customer_id="acme"} 0.0' in (
            status_text
        )
        await poller.poll_once(job)  # still not entitled: not logged again
        await poller.poll_once(other_job)  # another job: its own first time
        assert await poller.poll_once(job) is True  # entitled again
        assert (job.status.not_entitled, job.status.result) == (None, "ok")
        await poller.poll_once(job)  # a new spell: logged again
    lines = [entry for entry in log_lines(stream) if entry["level"] == "warning"]
    message = (
        "customer is not entitled to this product (HTTP 404); will keep checking at the "
        "normal interval"
    )
    assert [(e["msg"], e["customer_id"], e["collector"], e["error"]) for e in lines] == [
        (message, "acme", "licensing", "HTTP 404 from licensing_current"),
        (message, "globex", "licensing", "HTTP 404 for globex"),
        (message, "acme", "licensing", "HTTP 404 again"),
    ]
    assert job.status.attempts == 5


async def test_cancelling_a_poll_is_not_recorded_as_a_failure(mono: Clock) -> None:
    collector = Scripted("licensing", [asyncio.CancelledError()], mono)
    job = PollJob("acme", collector, 60)  # type: ignore[arg-type]
    poller, _ = make_poller(job)
    with pytest.raises(asyncio.CancelledError):
        await poller.poll_once(job)
    assert (job.status.attempts, job.status.last_ok) == (0, None)


async def test_run_all_once_polls_every_job_and_is_true_only_if_all_succeeded(
    mono: Clock,
) -> None:
    good = Scripted("licensing", [[gauge("acme")]])
    bad = Scripted("licensing", [UpstreamError("down"), [gauge("globex")]])
    jobs = [PollJob("acme", good, 60), PollJob("globex", bad, 60)]  # type: ignore[arg-type]
    poller, _ = make_poller(*jobs)
    assert await poller.run_all_once() is False
    assert poller.ready  # a failed poll counts: readiness is "has tried", not "is healthy"
    assert await poller.run_all_once() is True
    assert (good.polls, bad.polls) == (2, 2)
    assert Poller([], SnapshotStore(60)).ready  # nothing to poll: ready at once


async def test_ready_waits_for_every_job(mono: Clock) -> None:
    jobs = [
        PollJob("acme", Scripted("licensing", [[]]), 60),  # type: ignore[arg-type]
        PollJob("acme", Scripted("monitor", [[]]), 60),  # type: ignore[arg-type]
    ]
    poller, _ = make_poller(*jobs)
    await poller.poll_once(jobs[0])
    assert not poller.ready
    await poller.poll_once(jobs[1])
    assert poller.ready


async def test_started_tasks_are_named_after_their_job_and_stop_cancels_them() -> None:
    release = asyncio.Event()

    class Waiting:
        name = "monitor"

        async def poll(self) -> list[Metric]:
            await release.wait()
            return []

    poller, _ = make_poller(PollJob("acme", Waiting(), 60))  # type: ignore[arg-type]
    poller.start()
    await asyncio.sleep(0)
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert "poll:acme:monitor" in names
    await poller.stop()
    assert "poll:acme:monitor" not in {task.get_name() for task in asyncio.all_tasks()}
    await poller.stop()  # stopping again (shutdown after a failed start) is harmless


# -- result checks ----------------------------------------------------------------------------


def test_max_series_is_inclusive_and_the_error_says_how_to_raise_it() -> None:
    families = [gauge("acme", series=3), gauge("globex", series=2)]
    check_result(families, 5)  # exactly the limit: published (two families of one name are
    # fine: the snapshot store merges them)
    with pytest.raises(SeriesLimitError) as caught:
        check_result(families, 4)
    assert str(caught.value) == (
        "result has 5 series, more than poll.max_series (4); not published "
        "(raise poll.max_series if this tenant really is that large)"
    )


async def test_the_default_series_cap_is_the_configs(mono: Clock) -> None:
    collector = Scripted(
        "monitor",
        [
            [gauge("acme", series=DEFAULT_MAX_SERIES)],
            [gauge("acme", series=DEFAULT_MAX_SERIES + 1)],
        ],
    )
    job = PollJob("acme", collector, 60)  # type: ignore[arg-type]
    poller, _ = make_poller(job)
    assert await poller.poll_once(job) is True
    assert await poller.poll_once(job) is False
    assert job.status.last_error == (
        f"result has {DEFAULT_MAX_SERIES + 1:,} series, more than poll.max_series "
        f"({DEFAULT_MAX_SERIES:,}); not published "
        "(raise poll.max_series if this tenant really is that large)"
    )


async def test_an_oversized_result_fails_its_poll_and_publishes_nothing(mono: Clock) -> None:
    collector = Scripted("monitor", [[gauge("acme", series=3)]])
    job = PollJob("acme", collector, 60)  # type: ignore[arg-type]
    poller, store = make_poller(job, max_series=2)
    assert await poller.poll_once(job) is False
    assert job.status.last_error == (
        "result has 3 series, more than poll.max_series (2); not published "
        "(raise poll.max_series if this tenant really is that large)"
    )
    assert served(store) == ""


def unrenderable() -> Metric:
    family = GaugeMetricFamily("citrix_x", "X.", labels=["customer_id"])
    family.add_metric(["acme"], 1.0)
    family.samples[0] = family.samples[0]._replace(value="not a number")  # type: ignore[arg-type]
    return family


async def test_a_result_that_cannot_be_rendered_fails_its_poll(mono: Clock) -> None:
    with pytest.raises(ResultRejectedError) as caught:
        check_result([unrenderable()], 10)
    # prometheus_client's ValueError carries the text and the family it could not render.
    assert str(caught.value).startswith(
        "result cannot be rendered as metrics: ValueError: "
        "(\"could not convert string to float: 'not a number'\", Metric(citrix_x, X., gauge,"
    )
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    collector = Scripted("licensing", [[gauge("acme")], [unrenderable()]])
    job = PollJob("acme", collector, 60)  # type: ignore[arg-type]
    poller, store = make_poller(job)
    await poller.poll_once(job)
    assert await poller.poll_once(job) is False
    assert job.status.last_error == str(caught.value)
    # The last good result stays; the broken one never reaches a scrape.
    assert value(served(store), "citrix_x", customer_id="acme") == 1


async def test_a_large_result_renders_in_a_worker_thread_with_the_same_checks(
    mono: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []

    def recording_render(families: list[Metric]) -> Rendered:
        threads.append(threading.get_ident())
        return render(families)

    monkeypatch.setattr(poller_module, "render", recording_render)
    small = gauge("acme", 2.0, series=INLINE_RENDER_MAX_SERIES)
    large = gauge("acme", 3.0, series=INLINE_RENDER_MAX_SERIES + 1)
    collector = Scripted("monitor", [[small], [large], [large, unrenderable()]])
    job = PollJob("acme", collector, 60)  # type: ignore[arg-type]
    poller, store = make_poller(job)
    assert await poller.poll_once(job) is True
    assert await poller.poll_once(job) is True
    loop_thread = threading.get_ident()
    assert threads[0] == loop_thread and threads[1] != loop_thread
    assert samples(join(r.text for r in store.rendered()).decode()) == samples(served(store))
    assert value(served(store), "citrix_x", customer_id="acme", n="0") == 3
    assert await poller.poll_once(job) is False  # rejected in the thread as on the loop
    assert job.status.last_error is not None
    assert job.status.last_error.startswith("result cannot be rendered as metrics")


def test_error_text_is_cut_to_the_limit_with_an_ellipsis() -> None:
    assert MAX_ERROR_CHARS == 300
    exact = "e" * 300
    assert error_text(exact) == exact
    cut = error_text("f" * 301)
    assert cut == "f" * 299 + "…"
    assert len(cut) == 300
    assert error_text("client_secret=hunter2hunter2 " + "g" * 400).startswith(
        "client_secret=<redacted> g"
    )


# -- status metrics ---------------------------------------------------------------------------

HELP_TAIL = "Updated after every poll of the collector, which runs every collector interval."


async def test_status_metrics_values_help_and_labels(mono: Clock) -> None:
    ok = Scripted("licensing", [[gauge("acme")]], mono, took=1.5)
    failing = Scripted("monitor", [UpstreamError("down")], mono, took=4.0)
    idle = Scripted("licensing", [[]])
    jobs = [
        PollJob("acme", ok, 60),  # type: ignore[arg-type]
        PollJob("globex", idle, 60),  # type: ignore[arg-type]  # not polled yet: absent
        PollJob("acme", failing, 60),  # type: ignore[arg-type]
    ]
    poller, _ = make_poller(*jobs)
    await poller.poll_once(jobs[0])
    await poller.poll_once(jobs[2])
    text = served(StatusCollector(poller))
    acme_licensing = (("collector", "licensing"), ("customer_id", "acme"))
    acme_monitor = (("collector", "monitor"), ("customer_id", "acme"))
    assert samples(text) == {
        ("citrix_up", acme_licensing): 1.0,
        ("citrix_up", acme_monitor): 0.0,
        ("citrix_last_success_timestamp_seconds", acme_licensing): WALL,
        ("citrix_collector_duration_seconds", acme_licensing): 1.5,
        ("citrix_collector_duration_seconds", acme_monitor): 4.0,
        ("citrix_collector_entitled", acme_licensing): 1.0,
        ("citrix_collector_entitled", acme_monitor): 1.0,
    }
    helps = {line for line in text.splitlines() if line.startswith("# HELP")}
    assert helps == {
        "# HELP citrix_up 1 if the collector's last poll of Citrix Cloud succeeded, else 0. "
        + HELP_TAIL,
        "# HELP citrix_last_success_timestamp_seconds When the collector's last successful poll "
        "ended. " + HELP_TAIL,
        "# HELP citrix_collector_duration_seconds Wall time of the collector's last poll. "
        + HELP_TAIL,
        "# HELP citrix_collector_entitled 0 if the collector's last poll got the documented "
        "'not entitled' answer (HTTP 404: the customer has no such product; its other series "
        "are absent, citrix_up stays 1), else 1. " + HELP_TAIL,
    }
    types = {line for line in text.splitlines() if line.startswith("# TYPE")}
    assert types == {
        "# TYPE citrix_up gauge",
        "# TYPE citrix_last_success_timestamp_seconds gauge",
        "# TYPE citrix_collector_duration_seconds gauge",
        "# TYPE citrix_collector_entitled gauge",
    }
