"""How one exporter copes with many customers: first poll, /metrics, /healthz, memory.

Usage: python bench/scale.py --customers N [--collectors licensing,monitor] [--latency 0.05]
                             [--scrapes 50] [--format openmetrics|text] [--gzip]

Starts the simulator with N customers (bench/scale_servers.py: licence figures and a small
Monitor tenant each, every upstream request delayed by `--latency` seconds) and the exporter
(`python -m exporter --config.file ...`, a real subprocess polling every customer there),
then prints a Markdown table of one row, and a line of context:

* first poll: from starting the exporter (interpreter start-up included, about half a
  second) to /readyz answering 200 (every customer's every collector polled once; the
  context line says how many of those polls failed, from `citrix_up`), against the bound:
  the sum of the upstream requests' latencies, as the simulator saw them, divided by the
  most requests it saw in flight at once. That is how long the poll would take if the
  exporter had kept that many requests going throughout;
* /metrics p50/p99, and the same bytes from a static file server (aiohttp sendfile), timed
  alternately on kept-alive connections, `--scrapes` of each; the ratio of the p50s is what
  rendering on the fly costs over serving bytes;
* /healthz p99 while another connection scrapes /metrics `--scrapes` times back to back: a
  scrape that blocks the event loop shows up here;
* series (sample lines of the exposition), the exporter's RSS, and RSS / customers (the
  ~50 MiB an exporter with one customer takes included, so it falls as N grows).

The requests ask for what Prometheus negotiates (`--format`, OpenMetrics by default) and are
uncompressed unless `--gzip` (then the static server sends the exporter's gzip bytes as they
came). Every process it starts is stopped again, by pid.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCEPT = {
    "openmetrics": "application/openmetrics-text;version=1.0.0;q=0.5,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.1",
    "text": "text/plain;version=0.0.4",
}
UP_SAMPLE = re.compile(r"^citrix_up\{[^}]*\} (\S+)", re.MULTILINE)
HEALTHZ_PAUSE = 0.005  # seconds between two /healthz requests while /metrics is scraped


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Endpoint:
    """GETs of one path over one kept-alive connection (as Prometheus scrapes), timed."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self.port, self.path, self.headers = port, path, headers
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self) -> tuple[float, int, bytes]:
        """(seconds from sending the request to the last body byte, status, body)."""
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                self._conn.request("GET", self.path, headers=self.headers)
                response = self._conn.getresponse()
                body = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._conn.close()  # the server closed the idle connection: reconnect once
                if attempt == 2:
                    raise
                continue
            return time.perf_counter() - started, response.status, body
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._conn.close()


def status_of(port: int, path: str) -> int | None:
    """The status of one GET, or None if nothing answers."""
    try:
        endpoint = Endpoint(port, path, {})
        try:
            return endpoint.get()[1]
        finally:
            endpoint.close()
    except OSError:
        return None


def wait_ok(port: int, path: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll GET `path` every 0.05 s until it answers 200; fail if `proc` exits first."""
    deadline = time.monotonic() + timeout
    while status_of(port, path) != 200:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"http://127.0.0.1:{port}{path} not ready after {timeout:.0f} s")
        time.sleep(0.05)


class Processes:
    """The children started by this run; `stop()` ends each by its pid (TERM, then KILL)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        self.started.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.started):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile (0..1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` now, from /proc (MiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for pid {pid}")


@dataclass(frozen=True)
class Upstream:
    """The simulator's counters (bench/scale_servers.py) once every customer was polled."""

    requests: int
    latency_sum: float
    peak_in_flight: int
    statuses: dict[str, int]

    @classmethod
    def fetch(cls, port: int) -> Upstream:
        endpoint = Endpoint(port, "/_bench/stats", {})
        try:
            stats = json.loads(endpoint.get()[2])
        finally:
            endpoint.close()
        return cls(
            stats["requests"], stats["latency_sum"], stats["peak_in_flight"], stats["statuses"]
        )

    @property
    def bound(self) -> float:
        """The shortest the poll could have been at the concurrency the simulator saw."""
        return self.latency_sum / max(1, self.peak_in_flight)


@dataclass
class Result:
    """Every figure of one run."""

    customers: int
    collectors: str
    latency: float
    series: int
    exposition_bytes: int
    metrics: list[float]
    static: list[float]
    healthz: list[float]
    scrapes_during_healthz: int
    polls: tuple[int, int]
    first_poll: float
    upstream: Upstream
    rss: float


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.1f}x" if denominator > 0 else "n/a"


HEADER = (
    "| customers | collectors | series | /metrics p50 / p99 | static file p50 / p99 "
    "| /metrics vs static (p50) | /healthz p99 while scraped | first poll | bound "
    "| first poll vs bound | RSS | RSS / customer |"
)


def table(result: Result) -> str:
    """The Markdown table of one run: header, separator, one row, and a line of context."""
    metrics50, static50 = percentile(result.metrics, 0.5), percentile(result.static, 0.5)
    cells = [
        f"{result.customers:,}",
        result.collectors.replace(",", " + "),
        f"{result.series:,}",
        f"{ms(metrics50)} / {ms(percentile(result.metrics, 0.99))}",
        f"{ms(static50)} / {ms(percentile(result.static, 0.99))}",
        ratio(metrics50, static50),
        ms(percentile(result.healthz, 0.99)),
        f"{result.first_poll:.2f} s",
        f"{result.upstream.bound:.2f} s",
        ratio(result.first_poll, result.upstream.bound),
        f"{result.rss:.0f} MiB",
        f"{result.rss * 1024 / result.customers:,.0f} KiB",
    ]
    up = result.upstream
    statuses = ", ".join(f"{k}: {v}" for k, v in up.statuses.items())
    context = (
        f"polls {result.polls[0]} ok, {result.polls[1]} failed; "
        f"upstream latency {ms(result.latency)}: {up.requests} requests, "
        f"at most {up.peak_in_flight} in flight, statuses {statuses}; "
        f"exposition {result.exposition_bytes:,} bytes; {len(result.metrics)} scrapes of each, "
        f"{len(result.healthz)} /healthz during {result.scrapes_during_healthz} more scrapes"
    )
    separator = "|" + "---|" * len(cells)
    return "\n".join([HEADER, separator, "| " + " | ".join(cells) + " |", "", context])


def time_alternately(first: Endpoint, second: Endpoint, rounds: int) -> tuple[list[float], ...]:
    """`rounds` GETs of each endpoint, one of each in turn (both see the same machine load)."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for endpoint, sink in zip((first, second), times, strict=True):
            seconds, status, _ = endpoint.get()
            if status != 200:
                raise SystemExit(f"GET {endpoint.path} on :{endpoint.port} answered {status}")
            sink.append(seconds)
    return times


def healthz_while_scraped(metrics: Endpoint, healthz: Endpoint, scrapes: int) -> list[float]:
    """/healthz latencies while `metrics` is scraped `scrapes` times back to back."""
    done = threading.Event()

    def scrape() -> None:
        try:
            for _ in range(scrapes):
                metrics.get()
        finally:
            done.set()

    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    latencies = []
    while not done.is_set():
        latencies.append(healthz.get()[0])
        time.sleep(HEALTHZ_PAUSE)
    scraper.join()
    return latencies


def series_of(exposition: str) -> int:
    """Sample lines of an exposition (text or OpenMetrics)."""
    return sum(1 for line in exposition.splitlines() if line and not line.startswith("#"))


def polls_of(exposition: str) -> tuple[int, int]:
    """(succeeded, failed) last polls, from the exporter's `citrix_up` samples: /readyz says
    every poll ended, not that it went well."""
    values = UP_SAMPLE.findall(exposition)
    ok = sum(1 for value in values if float(value) == 1)
    return ok, len(values) - ok


def measure(args: argparse.Namespace, procs: Processes) -> Result:
    """Start the servers and the exporter, take every figure, return them (the caller stops
    the processes)."""
    workdir = procs.workdir
    sim_port, static_port, exporter_port = free_port(), free_port(), free_port()
    config = workdir / "exporter.json"
    sim = procs.start(
        "simulator", "-m", "bench.scale_servers", "simulator", "--port", str(sim_port),
        "--customers", str(args.customers), "--collectors", args.collectors,
        "--latency", str(args.latency), "--config", str(config),
    )  # fmt: skip
    wait_ok(sim_port, "/_bench/stats", sim, args.timeout)
    started = time.monotonic()
    exporter = procs.start(
        "exporter", "-m", "exporter", "--config.file", str(config),
        "--web.listen-address", f"127.0.0.1:{exporter_port}",
    )  # fmt: skip
    wait_ok(exporter_port, "/readyz", exporter, args.timeout)
    first_poll = time.monotonic() - started
    upstream = Upstream.fetch(sim_port)

    headers = {"Accept": ACCEPT[args.format]}
    headers["Accept-Encoding"] = "gzip" if args.gzip else "identity"
    metrics = Endpoint(exporter_port, "/metrics", headers)
    _, _, body = metrics.get()
    plain = gzip.decompress(body) if args.gzip else body
    exposition = workdir / "metrics.txt"
    exposition.write_bytes(plain)
    if args.gzip:
        exposition.with_suffix(".txt.gz").write_bytes(body)
    static_server = procs.start(
        "static", "-m", "bench.scale_servers", "static", "--port", str(static_port),
        "--file", str(exposition),
    )  # fmt: skip
    wait_ok(static_port, "/", static_server, args.timeout)
    static = Endpoint(static_port, "/", headers)
    static.get()  # like the first /metrics above: the connection is open before timing
    metrics_times, static_times = time_alternately(metrics, static, args.scrapes)
    healthz = Endpoint(exporter_port, "/healthz", {})
    healthz_times = healthz_while_scraped(metrics, healthz, args.scrapes)
    for endpoint in (metrics, static, healthz):
        endpoint.close()
    return Result(
        customers=args.customers,
        collectors=args.collectors,
        latency=args.latency,
        series=series_of(plain.decode()),
        polls=polls_of(plain.decode()),
        exposition_bytes=len(body),
        metrics=metrics_times,
        static=static_times,
        healthz=healthz_times,
        scrapes_during_healthz=args.scrapes,
        first_poll=first_poll,
        upstream=upstream,
        rss=rss_mib(exporter.pid),
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--collectors", default="licensing,monitor")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--format", choices=sorted(ACCEPT), default="openmetrics")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--timeout", type=float, default=900, help="most seconds to readiness")
    parser.add_argument("--workdir", type=Path, help="keep config, logs and exposition here")
    args = parser.parse_args(argv)
    if args.customers < 1 or args.scrapes < 1:
        parser.error("--customers and --scrapes must be at least 1")
    return args


def run(args: argparse.Namespace, report: Callable[[str], None] = print) -> Result:
    """Measure, stop every process, print the table; on failure, the logs' last lines."""
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        procs = Processes(workdir)
        try:
            result = measure(args, procs)
        except BaseException:
            for log in sorted(workdir.glob("*.log")):
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                report(f"--- {log.name} (last lines)\n{tail}")
            raise
        finally:
            procs.stop()
    report(table(result))
    return result


if __name__ == "__main__":
    run(parse_args())
