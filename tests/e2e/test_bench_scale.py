"""bench/scale.py, run tiny: it starts the simulator, the exporter and a static file server,
and prints every figure of the README's Performance table (issue 12 item 6)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLUMNS = [
    "customers",
    "collectors",
    "series",
    "/metrics p50 / p99",
    "static file p50 / p99",
    "/metrics vs static (p50)",
    "/healthz p99 while scraped",
    "first poll",
    "bound",
    "first poll vs bound",
    "RSS",
    "RSS / customer",
]


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_tiny_run_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, "bench/scale.py", "--customers", "3", "--latency", "0", "--scrapes", "5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| customers"))
    assert cells(lines[header]) == COLUMNS
    row = dict(zip(COLUMNS, cells(lines[header + 2]), strict=True))
    assert row["customers"] == "3"
    assert row["collectors"] == "licensing + monitor"
    assert int(row["series"].replace(",", "")) > 100
    duration = r"\d+\.\d+ (ms|s)"
    for column in ("/metrics p50 / p99", "static file p50 / p99"):
        assert re.fullmatch(f"{duration} / {duration}", row[column]), row
    for column in ("/healthz p99 while scraped", "first poll", "bound"):
        assert re.fullmatch(duration, row[column]), row
    for column in ("/metrics vs static (p50)", "first poll vs bound"):
        assert re.fullmatch(r"[\d,]+\.\dx", row[column]), row
    assert re.fullmatch(r"\d+ MiB", row["RSS"]), row
    assert re.fullmatch(r"[\d,]+ KiB", row["RSS / customer"]), row
    context = lines[header + 4]
    statuses = re.search(r"\d+ requests, at most \d+ in flight, statuses ([^;]+);", context)
    assert statuses, context
    assert all(status.startswith("2") for status in re.findall(r"(\d+):", statuses[1])), context
