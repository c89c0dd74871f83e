"""Measure how long parsing one upstream JSON body holds the event loop (issue 12, item 2).

Usage: python bench/parse.py [--repeat 20] [--sessions 5000] [--machines 2000]

Starts the simulator in this process with a tenant of --sessions open sessions and --machines
machines, and fetches through the exporter's own ApiClient the first page (1000 rows, the
gateway's page size) of each paged Monitor query the collector can send: the `$select`
fallbacks of the grouped counts and the logon and failure reads, and Sessions and Machines with
every field (no `$select`: the widest page). It then builds a body of such rows as large as
`poll.max_response_bytes` allows. For each body it prints its size and how long `parse_json`
(nesting check, then json.loads) takes, median and max over --repeat runs: one parse is one
step of the event loop, which the issue bounds at ~10 ms. It also prints, for comparison, the
same parse in a worker thread while the loop runs a 1 ms ticker: how late the ticker wakes
(json.loads holds the GIL for the whole parse, so a thread does not free the loop); and the
exporter's own `parse_json_yielding` on the loop (sliced above 256 KiB): its total time and how
late the ticker woke, i.e. the longest loop step while parsing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.collector.monitor import MACHINES_BY_STATE, SESSIONS_BY_STATE
from exporter.config import DEFAULT_MAX_RESPONSE_BYTES, Config
from exporter.metrics import SelfMetrics
from exporter.simulator.app import create_app
from exporter.simulator.monitor_tenants import make_tenant
from exporter.simulator.state import SimCustomer, SimulatorState
from exporter.upstream.body import parse_json
from exporter.upstream.client import ApiClient
from exporter.upstream.connections import Connections
from exporter.upstream.sliced import parse_json_yielding

CUSTOMER, CLIENT, SECRET = "bench1", "bench-client", "bench-secret-123"
# (label, entity set, query): the collector's paged reads, then the widest pages.
QUERIES = [
    ("Sessions, $select fallback", "Sessions", SESSIONS_BY_STATE.fallback),
    ("Machines, $select fallback", "Machines", MACHINES_BY_STATE.fallback),
    (
        "Sessions, logon read",
        "Sessions",
        {
            "$select": "SessionKey,StartDate,LogOnDuration",
            "$expand": "Machine($select=DesktopGroupId)",
        },
    ),
    (
        "ConnectionFailureLogs, failure read",
        "ConnectionFailureLogs",
        {"$select": "Id,FailureDate,ConnectionFailureEnumValue"},
    ),
    ("Sessions, every field", "Sessions", {}),
    ("Machines, every field", "Machines", {}),
]


async def fetch_pages(sessions: int, machines: int) -> dict[str, bytes]:
    """{label: raw body} of the first page of each query, as the exporter receives it."""
    customer = SimCustomer(CUSTOMER, CLIENT, SECRET)
    customer.monitor = make_tenant(sessions, machines, 20, now=datetime.now(UTC))
    state = SimulatorState(customers={CUSTOMER: customer})
    runner = web.AppRunner(create_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    config = Config.model_validate(
        {"customers": [{"customer_id": CUSTOMER, "client_id": CLIENT, "client_secret": SECRET,
                        "api_url": url}]}
    )  # fmt: skip
    connections = Connections(config, SelfMetrics(CollectorRegistry()))
    try:
        api = connections.open()[CUSTOMER]
        return {label: await first_page(api, entity, query) for label, entity, query in QUERIES}
    finally:
        await connections.close()
        await runner.cleanup()


async def first_page(api: ApiClient, entity_set: str, query: dict[str, str]) -> bytes:
    token = await api.tokens.get()
    answer = await api.send(entity_set, f"{api.base_url}/monitorodata/{entity_set}", query, token)
    assert answer.status == 200, (entity_set, answer.status)
    return answer.body


def largest_body(page: bytes, limit: int = DEFAULT_MAX_RESPONSE_BYTES) -> bytes:
    """A body of the page's rows repeated to just under `limit` bytes."""
    rows = json.loads(page)["value"]
    row_bytes = len(json.dumps(rows[0])) + 2
    repeat = limit // (row_bytes * len(rows)) + 1
    body = json.dumps({"value": rows * repeat}).encode()
    while len(body) > limit:
        rows_now = json.loads(body)["value"]
        body = json.dumps({"value": rows_now[: len(rows_now) * 95 // 100]}).encode()
    return body


def time_parse(body: bytes, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        parse_json(body, "bench")
        times.append(time.perf_counter() - started)
    return times


async def ticker_lag(parse: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(seconds `parse` took, the longest a 1 ms ticker on the loop waited meanwhile): the
    longest single step the loop took while parsing."""
    worst = 0.0
    done = False

    async def tick() -> None:
        nonlocal worst
        while not done:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - started - 0.001)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    await parse()
    took = time.perf_counter() - started
    done = True
    await ticker
    return took, worst


async def in_thread(body: bytes) -> object:
    return await asyncio.to_thread(parse_json, body, "bench")


async def lags(body: bytes) -> tuple[float, float, float]:
    """(ticker lag while a thread parses, total and ticker lag of `parse_json_yielding`)."""
    _, thread_lag = await ticker_lag(lambda: in_thread(body))
    took, lag = await ticker_lag(lambda: parse_json_yielding(body, "bench"))
    return thread_lag, took, lag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--machines", type=int, default=2000)
    args = parser.parse_args()
    pages = asyncio.run(fetch_pages(args.sessions, args.machines))
    pages["largest allowed body (32 MiB)"] = largest_body(pages["Sessions, every field"])
    print(
        f"{'body':36} {'rows':>6} {'bytes':>11} | {'p50 ms':>7} {'max ms':>7} | "
        f"{'thread: lag':>11} | {'sliced: ms':>10} {'lag ms':>7}"
    )
    for label, body in pages.items():
        repeat = args.repeat if len(body) < 4 * 1024 * 1024 else max(3, args.repeat // 5)
        times = time_parse(body, repeat)
        rows = len(parse_json(body, "bench")["value"])
        thread_lag, took, lag = asyncio.run(lags(body))
        print(
            f"{label:36} {rows:>6} {len(body):>11,} | {statistics.median(times) * 1e3:>7.2f} "
            f"{max(times) * 1e3:>7.2f} | {thread_lag * 1e3:>11.2f} | {took * 1e3:>10.2f} "
            f"{lag * 1e3:>7.2f}"
        )


if __name__ == "__main__":
    main()
