"""The two servers bench/scale.py measures against, each run as its own process.

    python -m bench.scale_servers simulator --port P --customers N --collectors licensing,monitor
        --latency 0.05 --config exporter.yml
    python -m bench.scale_servers static --port P --file metrics.txt

(from the repository root, so that this checkout's `exporter` is imported.)

`simulator` serves the project's Citrix Cloud simulator with N customers (licence figures,
and a small Monitor tenant each when `monitor` is among the collectors), every upstream
request (token and API) delayed by `--latency` seconds through the simulator's own
`delay_seconds` fault. One middleware, outermost, measures what the exporter asked of it:
requests, their summed latency and the most in flight at once, served as JSON at
`/_bench/stats`. It writes the exporter's config for those customers to `--config` before it
listens, so the ids and secrets are written in one place. `static` serves one file (and its
`.gz` sibling, when the client accepts gzip) with aiohttp's sendfile path: the floor for
serving those bytes over HTTP.

Separate processes keep the benchmark's client timings off the servers' event loops.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from exporter.simulator.app import create_app
from exporter.simulator.monitor_tenants import make_tenant
from exporter.simulator.state import SimCustomer, SimulatorState

STATS_PATH = "/_bench/stats"
CLIENT_SECRET = "bench-secret-123"

# A small Monitor tenant: open sessions, machines, delivery groups.
TENANT_SIZE = (20, 10, 2)


def customer_id(index: int) -> str:
    """The id of the `index`th simulated customer."""
    return f"bench{index:05d}"


def client_id(index: int) -> str:
    """The API client id of the `index`th simulated customer."""
    return f"{customer_id(index)}-client"


class IndexedState(SimulatorState):
    """A simulator state that finds a token request's client by dict, not by a linear scan:
    with thousands of customers the scan would be the simulator's own bottleneck."""

    def __init__(self, customers: Iterable[SimCustomer]) -> None:
        super().__init__(customers={c.customer_id: c for c in customers})
        self._by_client = {c.client_id: c for c in self.customers.values()}

    def find_client(self, client_id: str) -> SimCustomer | None:
        return self._by_client.get(client_id)


def build_state(customers: int, monitor: bool, latency: float) -> SimulatorState:
    """`customers` customers with default licence figures, a small tenant each if `monitor`."""
    now = datetime.now(UTC)
    built = [SimCustomer(customer_id(i), client_id(i), CLIENT_SECRET) for i in range(customers)]
    if monitor:
        for seed, customer in enumerate(built):
            customer.monitor = make_tenant(*TENANT_SIZE, seed=seed, now=now)
    state = IndexedState(built)
    state.faults.delay_seconds = latency
    return state


def exporter_config(base_url: str, customers: int, collectors: list[str]) -> str:
    """The exporter's config (JSON is YAML) for every customer of :func:`build_state` at
    `base_url`, with `collectors` on and every other collector left at its default (off)."""
    named = dict.fromkeys(["licensing", "monitor", *collectors])  # the two on by default
    switches = {name: {"enabled": name in collectors} for name in named}
    return json.dumps(
        {
            "customers": [
                {
                    "customer_id": customer_id(i),
                    "client_id": client_id(i),
                    "client_secret": CLIENT_SECRET,
                    "api_url": base_url,
                    "collectors": switches,
                }
                for i in range(customers)
            ]
        },
        indent=1,
    )


@dataclass
class UpstreamStats:
    """What the simulator observed: requests, their summed latency, the peak in flight."""

    requests: int = 0
    latency_sum: float = 0.0
    """Seconds, from the middleware seeing the request to the handler's answer."""
    in_flight: int = 0
    peak_in_flight: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    """How many answers of each HTTP status (anything but 200 and 204 is worth a look)."""

    def as_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "latency_sum": self.latency_sum,
            "peak_in_flight": self.peak_in_flight,
            "in_flight": self.in_flight,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


def measuring_middleware(stats: UpstreamStats) -> Middleware:
    """A middleware counting every request but its own `/_bench/stats` (answered here)."""

    @web.middleware
    async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == STATS_PATH:
            return web.json_response(stats.as_json())
        started = time.monotonic()
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            stats.in_flight -= 1
            stats.requests += 1
            stats.latency_sum += time.monotonic() - started
            stats.statuses[status] += 1

    return measure


def simulator_app(customers: int, collectors: list[str], latency: float) -> web.Application:
    """The simulator with the measuring middleware outermost (so it sees the delay too)."""
    app = create_app(build_state(customers, "monitor" in collectors, latency))
    app.middlewares.insert(0, measuring_middleware(UpstreamStats()))
    return app


def static_app(path: Path) -> web.Application:
    """One file at `/`: FileResponse (sendfile, and `path`.gz when gzip is accepted)."""

    async def serve(_: web.Request) -> web.FileResponse:
        return web.FileResponse(path)

    app = web.Application()
    app.router.add_get("/", serve)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=["simulator", "static"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--customers", type=int, default=1)
    parser.add_argument("--collectors", default="licensing,monitor")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--config", type=Path, help="simulator: where to write the exporter config")
    parser.add_argument("--file", type=Path, help="static: the file to serve")
    args = parser.parse_args()
    if args.role == "simulator":
        collectors = args.collectors.split(",")
        app = simulator_app(args.customers, collectors, args.latency)
        base_url = f"http://127.0.0.1:{args.port}"
        args.config.write_text(exporter_config(base_url, args.customers, collectors))
    else:
        app = static_app(args.file)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
