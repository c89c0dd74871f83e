"""The own metrics per customer: what prometheus_client said, rendered again only when changed.

`metrics.SelfMetrics` keeps the request, token and data-issue series per customer instead of in
prometheus_client metrics, and `exposition.own` re-renders a customer's own metrics only when
one of its values (or its poll status) changed. These pin that the scrape says exactly what
prometheus_client's Counter and Gauge said (names, HELP, TYPE, samples, empty families with
their HELP/TYPE), that unchanged customers are not rendered again, and that rendering many
customers gives the event loop a turn between slices.
"""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.exposition import own
from exporter.exposition.blocks import Format, generate, join, render_format
from exporter.exposition.scrape import MetricsBody
from exporter.metrics import FAMILIES, SelfMetrics
from exporter.poller import Poller, PollJob, StatusCollector
from exporter.snapshot import SnapshotStore
from tests.support.helpers import scraped

NASTY = 'a"b\\c\nd é'


def reference(registry: CollectorRegistry) -> dict[str, Counter | Gauge]:
    """The own families as prometheus_client metrics, as SelfMetrics made them before."""
    made: dict[str, Counter | Gauge] = {}
    for family in FAMILIES:
        kind = Counter if family.type == "counter" else Gauge
        made[family.name] = kind(
            family.name, family.documentation, list(family.labels), registry=registry
        )
    return made


def update(metrics: SelfMetrics, ref: dict[str, Counter | Gauge]) -> None:
    """The same updates on both: new series at 0, increments, a gauge set, odd label values."""
    for customer in ("globex", "acme", NASTY):
        for target in (metrics.token_request_failures, ref["citrix_token_request_failures"]):
            target.labels(customer)
    pairs = [
        (metrics.api_requests, ref["citrix_api_requests"], ("acme", "licensing_current", "200")),
        (metrics.api_requests, ref["citrix_api_requests"], (NASTY, "monitor_sessions", "error")),
        (metrics.token_requests, ref["citrix_token_requests"], ("globex",)),
    ]
    for ours, theirs, labels in pairs:
        ours.labels(*labels).inc()
        theirs.labels(*labels).inc(2.5)
        ours.labels(*labels).inc(1.5)
    metrics.token_expiry.labels("acme").set(1.8e9)
    ref["citrix_token_expiry_timestamp_seconds"].labels("acme").set(1.8e9)  # type: ignore[union-attr]


def parsed(document: str, fmt: Format) -> list[tuple[str, str, str, set[tuple[object, ...]]]]:
    parse = parse_openmetrics if fmt is Format.OPENMETRICS else parse_text
    return sorted(
        (
            f.name,
            f.type,
            f.documentation,
            {(s.name, tuple(sorted(s.labels.items())), s.value) for s in f.samples},
        )
        for f in parse(document)
    )


@pytest.mark.parametrize("fmt", list(Format))
async def test_the_scrape_says_what_prometheus_clients_metrics_said(fmt: Format) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    metrics = SelfMetrics(ours)
    update(metrics, reference(theirs))
    body = MetricsBody(SnapshotStore(3600), CollectorRegistry(), [metrics.series])
    document = (await scraped(body, fmt)).decode()
    expected = generate(theirs, fmt).decode()
    assert parsed(document, fmt) == parsed(expected, fmt)
    assert parsed(generate(ours, fmt).decode(), fmt) == parsed(expected, fmt)  # --once
    assert "# TYPE citrix_upstream_data_issues" in document  # no series yet, still described
    assert document.count("# TYPE citrix_api_requests") == 1


def test_series_refuse_what_prometheus_client_refuses() -> None:
    metrics = SelfMetrics(CollectorRegistry())
    with pytest.raises(ValueError):
        metrics.api_requests.labels("acme", "licensing_current")  # a label short
    with pytest.raises(ValueError):
        metrics.token_requests.labels("acme").inc(-1)


class Idle:
    def __init__(self, name: str) -> None:
        self.name = name

    async def poll(self) -> list[Metric]:
        return []


def rendered_customers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The customer of every family list `own` renders from now on."""
    seen: list[str] = []

    def spy(families: list[Metric], fmt: Format) -> object:
        labels = {s.labels.get("customer_id") for f in families for s in f.samples}
        seen.append(",".join(sorted(str(label) for label in labels if label)))
        return render_format(families, fmt)

    monkeypatch.setattr(own, "render_format", spy)
    return seen


async def test_only_customers_whose_values_changed_are_rendered_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = SelfMetrics(CollectorRegistry())
    jobs = [PollJob(c, Idle("licensing"), 60) for c in ("acme", "globex", "initech")]  # type: ignore[arg-type]
    poller = Poller(jobs, SnapshotStore(3600))
    status = StatusCollector(poller)
    blocks = own.CustomerBlocks([metrics.series, status])
    for job in jobs:
        metrics.api_requests.labels(job.customer_id, "licensing_current", "200").inc()
        await poller.poll_once(job)
    seen = rendered_customers(monkeypatch)

    await blocks.blocks(Format.TEXT)
    assert sorted(seen) == ["", "acme", "globex", "initech"]  # "": the empty header families
    seen.clear()
    await blocks.blocks(Format.TEXT)
    assert seen == []  # nothing changed: nothing rendered

    metrics.token_requests.labels("globex").inc()
    await poller.poll_once(jobs[2])  # initech's poll finished
    metrics.api_requests.labels("acme", "licensing_current", "200").inc(0)  # no change
    await blocks.blocks(Format.TEXT)
    assert sorted(seen) == ["globex", "initech"]
    seen.clear()
    await blocks.blocks(Format.OPENMETRICS)  # the other format: rendered once, then kept
    await blocks.blocks(Format.OPENMETRICS)
    assert sorted(seen) == ["", "acme", "globex", "initech"]


async def test_rendering_many_customers_gives_the_loop_a_turn_between_slices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = SelfMetrics(CollectorRegistry())
    for index in range(50):
        metrics.token_requests.labels(f"c{index:02d}").inc()
    monkeypatch.setattr(own, "SLICE_SECONDS", 0.0)  # yield after every customer
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    started = turns
    customer_blocks = own.CustomerBlocks([metrics.series])
    result = await customer_blocks.blocks(Format.TEXT)
    task.cancel()
    assert len(result) == 51  # the header block and one per customer, in customer order
    assert b"".join(await customer_blocks.parts(Format.TEXT)) == join(result)
    assert turns - started >= 49


async def test_jobs_added_or_removed_show_in_the_next_scrape() -> None:
    jobs = [PollJob(c, Idle("licensing"), 60) for c in ("acme", "globex")]  # type: ignore[arg-type]
    poller = Poller(jobs, SnapshotStore(3600))
    for job in jobs:
        await poller.poll_once(job)
    blocks = own.CustomerBlocks([StatusCollector(poller)])
    assert b'customer_id="globex"' in b"".join(await blocks.parts(Format.TEXT))
    poller.jobs = [jobs[0]]  # globex removed (a reload)
    assert b'customer_id="globex"' not in b"".join(await blocks.parts(Format.TEXT))
    added = PollJob("initech", Idle("licensing"), 60)  # type: ignore[arg-type]
    poller.jobs.append(added)
    await poller.poll_once(added)
    assert b'customer_id="initech"' in b"".join(await blocks.parts(Format.TEXT))
