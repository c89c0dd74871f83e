"""Measure /metrics at N customers: pre-rendered vs rendering every scrape vs static bytes.

Usage: python bench/render.py [--customers 1000] [--requests 40] [--no-monitor]

Polls the seed customer of the embedded simulator once (licensing, and monitor unless
--no-monitor) to get real result shapes, publishes a copy for each of N customers (own metrics
too: a status and a few request counters per customer), then serves, from this process:
  /metrics  the exporter's handler (pre-rendered results joined, own metrics current),
  /old      prometheus_client's handler over the whole registry (how main rendered a scrape),
  /static   the same bytes /metrics just served, from memory.
A client in a second process requests them in turn (text format, no gzip; then OpenMetrics
with gzip for /metrics) and prints p50/p99 per path. A probe task in this process sleeps 1 ms
at a time and records how late it wakes; for each request, the longest event-loop step seen
while it was served ("loop lag", p50/p99 over the requests of a path; the clocks of the two
processes are both CLOCK_MONOTONIC), and the longest garbage collection of the phase.
Phase "churn" publishes 20 new results every 100 ms while scraping, each with a poll's
own-metric updates (status, a request counted), so most scrapes rejoin and re-render some
customers' own metrics. Phase "healthz" scrapes /metrics while a
third process asks /healthz every 5 ms: its p50/p99 is what a liveness probe sees.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import Metric

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.config import Config
from exporter.exposition.blocks import Format, Rendered, generate, join, render
from exporter.exposition.own import CustomerBlocks
from exporter.exposition.scrape import Published
from exporter.poller import PollJob
from exporter.runtime import Exporter
from exporter.simulator.app import create_app
from exporter.simulator.scenarios import (
    SEED_CLIENT_ID,
    SEED_CLIENT_SECRET,
    SEED_CUSTOMER_ID,
    seed_state,
)
from exporter.web import create_web_app

CLIENT = r"""
import http.client, json, sys, threading, time
port, requests, phases = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)
stop = threading.Event()
if requests == 0:  # until stdin closes, one request every 5 ms
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
out = {}
for name, path, headers in phases:
    spans = []
    while len(spans) < requests or (requests == 0 and not stop.is_set()):
        started = time.monotonic()
        conn.request("GET", path, headers=headers)
        body = conn.getresponse().read()
        spans.append((started, time.monotonic()))
        if requests == 0:
            time.sleep(0.005)
    out[name] = {"spans": spans, "bytes": len(body)}
print(json.dumps(out))
"""
OPENMETRICS_GZIP = {
    "Accept": "application/openmetrics-text; version=1.0.0",
    "Accept-Encoding": "gzip",
}


def config(api_url: str, monitor: bool) -> Config:
    customer = {
        "customer_id": SEED_CUSTOMER_ID,
        "client_id": SEED_CLIENT_ID,
        "client_secret": SEED_CLIENT_SECRET,
        "api_url": api_url,
        "collectors": {"monitor": {"enabled": monitor}},
    }
    return Config.model_validate({"customers": [customer]})


async def seed_results(monitor: bool) -> dict[str, list[Metric]]:
    """One real poll of the simulator's seed customer: {collector: families}."""
    runner = web.AppRunner(create_app(seed_state()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with Exporter(config(f"http://127.0.0.1:{port}", monitor)) as exporter:
            return {job.name: await job.collector.poll() for job in exporter.poller.jobs}
    finally:
        await runner.cleanup()


# What populate published, by (customer, collector), as the store keeps it: rendered text
# only (holding the families here would make every garbage collection walk them).
PUBLISHED: dict[tuple[str, str], Rendered] = {}
SERIES = [0]
# The seed customer's results by collector: what each published result is a relabelled copy of.
SEEDS: dict[str, list[Metric]] = {}


def relabel(families: list[Metric], customer_id: str) -> list[Metric]:
    out = []
    for family in families:
        copy = Metric(family.name, family.documentation, family.type, family.unit)
        copy.samples = [
            s._replace(labels={**s.labels, "customer_id": customer_id}) for s in family.samples
        ]
        out.append(copy)
    return out


class Idle:
    def __init__(self, name: str) -> None:
        self.name = name

    async def poll(self) -> list[Metric]:
        return []


def populate(exporter: Exporter, seeds: dict[str, list[Metric]], customers: int) -> list[float]:
    """Publish every customer's results and give it own metrics; render times (s) per result."""
    renders = []
    now = time.time()
    for index in range(customers):
        customer_id = f"cust{index:05d}"
        for name, families in seeds.items():
            result = relabel(families, customer_id)
            started = time.perf_counter()
            rendered = render(result)
            renders.append(time.perf_counter() - started)
            exporter.store.publish((customer_id, name), result, now, rendered)
            PUBLISHED[customer_id, name] = rendered
            SERIES[0] += sum(len(family.samples) for family in result)
            job = PollJob(customer_id, Idle(name), 60)  # type: ignore[arg-type]
            job.status.attempts, job.status.last_ok = 1, True
            job.status.last_success_at, job.status.last_duration = now, 0.2
            exporter.poller.jobs.append(job)
        for endpoint in ("licensing_current", "licensing_history", "monitor_sessions"):
            exporter.metrics.api_requests.labels(customer_id, endpoint, "200").inc()
        exporter.metrics.token_requests.labels(customer_id).inc()
        exporter.metrics.token_expiry.labels(customer_id).set(now + 3600)
    return renders


class LagProbe:
    """Sleeps 1 ms at a time; how late each wake-up is bounds the longest loop step."""

    def __init__(self) -> None:
        self.lags: list[tuple[float, float]] = []  # (woke at, monotonic; how late, s)
        self.gc_pauses: list[float] = []
        self._gc_started = 0.0

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(0.001)
            woke = time.monotonic()
            self.lags.append((woke, woke - started - 0.001))

    def gc_pause(self, phase: str, info: dict[str, int]) -> None:
        """A gc.callbacks hook: records each collection's length, the longest is printed."""
        if phase == "start":
            self._gc_started = time.monotonic()
        else:
            self.gc_pauses.append(time.monotonic() - self._gc_started)

    def longest(self, start: float, end: float) -> float:
        """The longest loop step that ended while a request was served (from start to end)."""
        return max((lag for woke, lag in self.lags if start <= woke <= end), default=0.0)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: p99 of 20 values is the largest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


PHASES: list[tuple[str, list[Any]]] = [
    (
        "new",
        [["/metrics text", "/metrics", {}], ["/metrics om+gzip", "/metrics", OPENMETRICS_GZIP]],
    ),
    ("static", [["/static", "/static", {}]]),
    ("old", [["/old text", "/old", {}]]),
    ("churn", [["/metrics text, publishes", "/metrics", {}]]),
    ("healthz", [["/metrics text, /healthz", "/metrics", {}]]),
]


async def client(port: int, requests: int, phases: list[Any]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, str(port), str(requests), json.dumps(phases),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip


async def run_phase(
    exporter: Exporter, port: int, requests: int, phase: str, paths: list[Any]
) -> dict[str, Any]:
    """{name: {"spans", "bytes"}} of the phase's client, with /healthz alongside if asked."""
    churn = asyncio.create_task(republish(exporter)) if phase == "churn" else None
    healthz = await client(port, 0, [["/healthz", "/healthz", {}]]) if phase == "healthz" else None
    await asyncio.sleep(0.05)
    out, _ = await (await client(port, requests, paths)).communicate()
    results: dict[str, Any] = json.loads(out)
    if churn:
        churn.cancel()
    if healthz:
        results.update(json.loads((await healthz.communicate(b""))[0]))
    return results


async def serve_and_measure(exporter: Exporter, args: argparse.Namespace) -> None:
    app = create_web_app(exporter)
    app.router.add_get("/old", make_aiohttp_handler(exporter.registry, disable_compression=True))
    static: dict[str, bytes] = {}

    async def metrics_copy(request: web.Request) -> web.Response:
        return web.Response(body=static["body"], content_type="text/plain")

    app.router.add_get("/static", metrics_copy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    static["body"] = await app_client_body(port)
    probe = LagProbe()
    probe_task = asyncio.create_task(probe.run())
    gc.callbacks.append(probe.gc_pause)
    print(f"{'path':<28}{'p50 ms':>8}{'p99 ms':>8}{'MB':>7}   loop lag per request (ms):")
    print(f"{'':<51}{'p50':>8}{'p99':>8}{'max':>8}  longest gc")
    for phase, paths in PHASES:
        probe.lags.clear()
        probe.gc_pauses.clear()
        for name, result in (await run_phase(exporter, port, args.requests, phase, paths)).items():
            spans = result["spans"]
            times = [end - start for start, end in spans]
            lags = [probe.longest(start, end) for start, end in spans]
            figures = (statistics.median(times), percentile(times, 0.99))
            lag_figures = (statistics.median(lags), percentile(lags, 0.99), max(lags))
            print(
                f"{name:<28}{''.join(f'{x * 1000:8.1f}' for x in figures)}"
                f"{result['bytes'] / 1e6:7.2f}   {''.join(f'{x * 1000:8.1f}' for x in lag_figures)}"
                f"{max(probe.gc_pauses, default=0) * 1000:10.1f}"
            )
    gc.callbacks.remove(probe.gc_pause)
    probe_task.cancel()
    await runner.cleanup()


async def app_client_body(port: int) -> bytes:
    """The bytes /metrics serves now (text format), fetched by a second process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c",
        "import urllib.request,sys;sys.stdout.buffer.write(urllib.request.urlopen("
        f"'http://127.0.0.1:{port}/metrics').read())",
        stdout=subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return out


async def republish(exporter: Exporter) -> None:
    """20 polls every 100 ms, each its own loop step as in the poller: a fresh result built and
    rendered on the loop (the poller renders results over 200 series in a thread; this is the
    worst case), a request counted, the job's status updated."""
    jobs = {job.key: job for job in exporter.poller.jobs}
    keys = list(PUBLISHED)
    while True:
        for key in random.sample(keys, min(20, len(keys))):
            exporter.store.publish(key, relabel(SEEDS[key[1]], key[0]), time.time())
            exporter.metrics.api_requests.labels(key[0], "licensing_current", "200").inc()
            jobs[key].status.last_success_at = time.time()
            jobs[key].status.last_duration = random.random()
            exporter.poller.changes.touch(key[0])  # as poll_once does
            await asyncio.sleep(0)
        await asyncio.sleep(0.1)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--no-monitor", action="store_true")
    args = parser.parse_args()
    seeds = await seed_results(monitor=not args.no_monitor)
    SEEDS.update(seeds)
    exporter = Exporter(config("http://127.0.0.1:9", False))
    gc.collect()
    gc.freeze()  # as `serve` does before polling starts
    started = time.perf_counter()
    renders = populate(exporter, seeds, args.customers)
    series = SERIES[0]
    print(
        f"{args.customers} customers, {len(renders)} results, {series:,} published series "
        f"({', '.join(seeds)}); populated in {time.perf_counter() - started:.1f} s"
    )
    print(
        f"render at publish, per result: median {ms(statistics.median(renders)).strip()} ms, "
        f"max {ms(max(renders)).strip()} ms"
    )
    await steps(exporter)
    await serve_and_measure(exporter, args)


async def steps(exporter: Exporter) -> None:
    """The parts of one scrape timed alone (best of 5), and where each runs."""

    async def best(work: Callable[[], object]) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            result = work()
            if asyncio.iscoroutine(result):
                await result
            times.append(time.perf_counter() - started)
        return min(times)

    store = exporter.store
    blocks = [r.blocks(Format.TEXT) for r in store.rendered()]
    body = join(blocks)
    customers = CustomerBlocks(exporter.per_customer)
    own_blocks = await customers.blocks(Format.TEXT)
    own = join(own_blocks) + generate(exporter.whole_registry, Format.TEXT)
    published = Published(0, [body])
    print("one scrape, text format, step by step (best of 5):")
    for name, where, work in (
        (
            "expire + list results",
            "loop",
            lambda: [r.blocks(Format.TEXT) for r in store.rendered()],
        ),
        ("join the results", "thread", lambda: join(blocks)),
        ("own per customer, unchanged", "loop", lambda: customers.parts(Format.TEXT)),
        (
            "own per customer, all new",
            "loop, sliced",
            lambda: CustomerBlocks(exporter.per_customer).blocks(Format.TEXT),
        ),
        ("join the own blocks", "thread", lambda: join(own_blocks)),
        (
            "render build info, process",
            "thread",
            lambda: generate(exporter.whole_registry, Format.TEXT),
        ),
        ("gzip the joined body", "thread", lambda: Published(0, [body]).finish([], True)),
        ("gzip the own metrics", "thread", lambda: published.finish([own], True)),
        ("old: own metrics whole", "thread", lambda: generate(exporter.own_registry, Format.TEXT)),
        ("old: generate_latest(all)", "loop", lambda: generate_latest(exporter.registry)),
    ):
        print(f"  {name:<30}{ms(await best(work))} ms  ({where})")
    print(f"  own metrics: {len(own) / 1e6:.2f} MB of {len(body + own) / 1e6:.2f} MB")


if __name__ == "__main__":
    asyncio.run(main())
