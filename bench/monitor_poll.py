"""Benchmark the monitor collector against simulated tenants of growing size.

Usage: python bench/monitor_poll.py [--sizes 1000,10000,100000] [--machines 5000] [--groups 20]

For each tenant size and for `$apply` accepted and rejected, it starts the simulator in its
own process, runs `python -m exporter --once` (licensing off, monitor on) against it and
prints: upstream OData requests of the poll, the poll's wall time (citrix_collector_duration_
seconds) and the exporter's peak RSS (ru_maxrss of a wrapper whose only child is the exporter,
so the simulator's memory is not counted). A first `--once` poll also fetches the delivery
group names, which later polls take from the cache: steady-state polls cost one request less.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CUSTOMER, CLIENT, SECRET = "bench1", "bench-client", "bench-secret-123"

SIMULATOR = f"""
import sys
from datetime import UTC, datetime
from aiohttp import web
from exporter.simulator.app import create_app
from exporter.simulator.monitor_tenants import make_tenant
from exporter.simulator.state import SimCustomer, SimulatorState
sessions, machines, groups, reject, port = map(int, sys.argv[1:6])
customer = SimCustomer("{CUSTOMER}", "{CLIENT}", "{SECRET}")
customer.monitor = make_tenant(sessions, machines, groups, now=datetime.now(UTC))
state = SimulatorState(customers={{customer.customer_id: customer}})
state.faults.reject_apply = reject
web.run_app(create_app(state), host="127.0.0.1", port=port, print=None, access_log=None)
"""

WRAPPER = """
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(result.stdout)
sys.stderr.write(result.stderr)
print("# peak_rss_kib", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(result.returncode)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def run_case(sessions: int, machines: int, groups: int, reject: int) -> dict[str, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sim = subprocess.Popen(
        [sys.executable, "-c", SIMULATOR, str(sessions), str(machines), str(groups),
         str(reject), str(port)],
        cwd=ROOT,
    )  # fmt: skip
    try:
        wait_for(f"{base}/_simulator/requests")
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config.yml"
            config.write_text(
                f"poll: {{timeout: 60s}}\ncustomers:\n  - customer_id: {CUSTOMER}\n"
                f"    client_id: {CLIENT}\n    client_secret: {SECRET}\n    api_url: {base}\n"
                "    collectors:\n      licensing: {enabled: false}\n"
                "      monitor: {max_pages: 1000}\n"
            )
            done = subprocess.run(
                [sys.executable, "-c", WRAPPER, sys.executable, "-m", "exporter", "--once",
                 "--config.file", str(config)],
                cwd=ROOT, capture_output=True, text=True, env=dict(os.environ),
            )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"poll failed:\n{done.stderr}")
        with urllib.request.urlopen(f"{base}/_simulator/requests") as resp:
            by_path = json.load(resp)["by_path"]
    finally:
        sim.terminate()
        sim.wait(10)
    duration = re.search(r"^citrix_collector_duration_seconds\{.*\} (\S+)$", done.stdout, re.M)
    peak = re.search(r"^# peak_rss_kib (\d+)$", done.stdout, re.M)
    assert duration and peak
    return {
        "requests": sum(n for path, n in by_path.items() if "/monitorodata/" in path),
        "poll_seconds": float(duration.group(1)),
        "peak_rss_mib": int(peak.group(1)) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--machines", type=int, default=5000)
    parser.add_argument("--groups", type=int, default=20)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'sessions':>9} {'$apply':>8} {'requests':>9} {'poll_s':>8} {'peak_rss_MiB':>13}")
    results: dict[tuple[int, str], dict[str, float]] = {}
    for mode, reject in (("on", 0), ("off", 400)):
        for size in sizes:
            result = run_case(size, args.machines, args.groups, reject)
            results[(size, mode)] = result
            print(
                f"{size:>9} {mode:>8} {result['requests']:>9.0f} {result['poll_seconds']:>8.2f} "
                f"{result['peak_rss_mib']:>13.1f}",
                flush=True,
            )
    for mode in ("on", "off"):
        growth = (
            results[(sizes[-1], mode)]["peak_rss_mib"] - results[(sizes[0], mode)]["peak_rss_mib"]
        )
        print(
            f"peak RSS growth {sizes[0]} -> {sizes[-1]} sessions, $apply {mode}: {growth:+.1f} MiB"
        )


if __name__ == "__main__":
    main()
