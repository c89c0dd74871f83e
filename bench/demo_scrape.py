"""Measure the demo exporter: /metrics latency and resident memory after it has run a while.

Usage: python bench/demo_scrape.py [--warmup SECONDS] [--requests N]

Starts `python -m exporter --demo` on a free port, waits `--warmup` seconds (default 300, the
figure quoted in docs/performance.md), then times N sequential scrapes and prints latency
percentiles, the exposition size and the process's RSS (current and peak, from /proc).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of `pid` in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(rest.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warmup", type=float, default=300.0)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--demo", "--web.listen-address", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("exporter did not become ready")
            time.sleep(0.2)
        time.sleep(args.warmup)
        latencies = []
        size = 0
        for _ in range(args.requests):
            start = time.perf_counter()
            with urllib.request.urlopen(url) as resp:
                size = len(resp.read())
            latencies.append((time.perf_counter() - start) * 1000)
        latencies.sort()
        rss, peak = rss_kib(proc.pid)
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"warmup_seconds={args.warmup:.0f} scrapes={args.requests} exposition_bytes={size}")
        print(f"latency_ms p50={p50:.2f} p99={p99:.2f} max={latencies[-1]:.2f}")
        print(f"rss_mib current={rss / 1024:.1f} peak={peak / 1024:.1f}")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
