"""Measure /metrics at N customers: pre-rendered vs rendering every scrape vs static bytes.

Usage: python bench/render.py [--customers 1000] [--requests 40] [--no-monitor]

Polls the seed customer of the embedded simulator once (licensing, and monitor unless
--no-monitor) to get real result shapes, publishes a copy for each of N customers (own metrics
too: a status and a few request counters per customer), then serves, from this process:
  /metrics  the exporter's handler (pre-rendered results joined, own metrics rendered now),
  /old      prometheus_client's handler over the whole registry (how main rendered a scrape),
  /static   the same bytes /metrics just served, from memory.
A client in a second process requests them in turn (text format, no gzip; then OpenMetrics
with gzip for /metrics) and prints p50/p90 per path. A probe task in this process sleeps 1 ms
at a time and records how late it wakes: the longest event-loop step during each phase.
Phase "churn" publishes 20 new results every 100 ms while scraping, so most scrapes rejoin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from exporter.exposition.blocks import Format, generate, join, render
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
import http.client, json, sys, time
port, requests, phases = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)
out = {}
for name, path, headers in phases:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        body = conn.getresponse().read()
        times.append(time.perf_counter() - started)
    out[name] = {"times": times, "bytes": len(body)}
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
            await exporter.poller.run_all_once()
            return {job.name: list(job_families(exporter, job)) for job in exporter.poller.jobs}
    finally:
        await runner.cleanup()


def job_families(exporter: Exporter, job: PollJob) -> tuple[Metric, ...]:
    return exporter.store._entries[job.key].families


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
        self.lags: list[float] = []

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            self.lags.append(time.perf_counter() - started - 0.001)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


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
    client = await app_client_body(port)
    static["body"] = client
    probe = LagProbe()
    probe_task = asyncio.create_task(probe.run())
    phases: list[tuple[str, list[Any]]] = [
        (
            "new",
            [["/metrics text", "/metrics", {}], ["/metrics om+gzip", "/metrics", OPENMETRICS_GZIP]],
        ),
        ("static", [["/static", "/static", {}]]),
        ("old", [["/old text", "/old", {}]]),
        ("churn", [["/metrics text, publishes", "/metrics", {}]]),
    ]
    print(f"{'path':<28}{'p50 ms':>8}{'p90 ms':>9}{'MB':>7}   longest loop step in phase (ms)")
    for phase, requests in phases:
        churn = asyncio.create_task(republish(exporter)) if phase == "churn" else None
        probe.lags.clear()
        await asyncio.sleep(0.05)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLIENT, str(port), str(args.requests), json.dumps(requests),
            stdout=subprocess.PIPE,
        )  # fmt: skip
        out, _ = await proc.communicate()
        longest = max(probe.lags)
        if churn:
            churn.cancel()
        for name, result in json.loads(out).items():
            times = sorted(result["times"])
            p90 = times[int(len(times) * 0.9)]
            print(
                f"{name:<28}{ms(statistics.median(times))}{ms(p90)} "
                f"{result['bytes'] / 1e6:6.2f}   {longest * 1000:.1f}"
            )
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
    """20 results every 100 ms, rendered on the loop as the poller renders small results."""
    entries = list(exporter.store._entries.items())
    while True:
        for key, entry in random.sample(entries, min(20, len(entries))):
            exporter.store.publish(key, list(entry.families), time.time())
        await asyncio.sleep(0.1)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--no-monitor", action="store_true")
    args = parser.parse_args()
    seeds = await seed_results(monitor=not args.no_monitor)
    exporter = Exporter(config("http://127.0.0.1:9", False))
    started = time.perf_counter()
    renders = populate(exporter, seeds, args.customers)
    series = sum(len(f.samples) for e in exporter.store._entries.values() for f in e.families)
    print(
        f"{args.customers} customers, {len(renders)} results, {series:,} published series "
        f"({', '.join(seeds)}); populated in {time.perf_counter() - started:.1f} s"
    )
    print(
        f"render at publish, per result: median {ms(statistics.median(renders)).strip()} ms, "
        f"max {ms(max(renders)).strip()} ms"
    )
    steps(exporter)
    await serve_and_measure(exporter, args)


def steps(exporter: Exporter) -> None:
    """The parts of one scrape timed alone (best of 5), and where each runs."""

    def best(work: Callable[[], object]) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        return min(times)

    store = exporter.store
    blocks = [r.blocks(Format.TEXT) for r in store.rendered()]
    body = join(blocks)
    own = generate(exporter.own_registry, Format.TEXT)
    published = Published(0, body)
    print("one scrape, text format, step by step (best of 5):")
    for name, where, work in (
        (
            "expire + list results",
            "loop",
            lambda: [r.blocks(Format.TEXT) for r in store.rendered()],
        ),
        ("join the results", "thread", lambda: join(blocks)),
        (
            "render the own metrics",
            "thread",
            lambda: generate(exporter.own_registry, Format.TEXT),
        ),
        ("body + own metrics", "thread", lambda: published.finish(own, False)),
        ("gzip the joined body", "thread", lambda: Published(0, body).finish(b"", True)),
        ("gzip the own metrics", "thread", lambda: published.finish(own, True)),
        ("old: generate_latest(all)", "loop", lambda: generate_latest(exporter.registry)),
    ):
        print(f"  {name:<28}{ms(best(work))} ms  ({where})")
    print(f"  own metrics: {len(own) / 1e6:.2f} MB of {len(body + own) / 1e6:.2f} MB")


if __name__ == "__main__":
    asyncio.run(main())
