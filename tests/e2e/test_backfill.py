"""History backfill: OpenMetrics -> promtool blocks -> a real Prometheus answers 6 months back."""

from __future__ import annotations

import asyncio
import io
import itertools
import sys
import time
from datetime import UTC, date, datetime

from exporter.backfill import backfill
from exporter.simulator.state import HistoryMonth, SimulatorState, add_months
from tests.support.helpers import (
    SEED_CLIENT,
    SEED_CUSTOMER,
    SEED_SECRET,
    make_config,
    require_binary,
)
from tests.support.processes import Prometheus


def year_of_history(state: SimulatorState) -> date:
    this_month = datetime.now(UTC).date().replace(day=1)
    state.customers[SEED_CUSTOMER].licensing.history = [
        HistoryMonth(add_months(this_month, -i), 100 + i, 50 - i, 3, 1, 40 - i, 2, 0)
        for i in reversed(range(12))
    ]
    return this_month


async def test_backfill_writes_sorted_openmetrics(base_url, sim_state: SimulatorState):
    year_of_history(sim_state)
    out = io.StringIO()
    done, samples = await backfill(make_config(base_url), out, months=12, step=86400)
    text = out.getvalue()
    assert done == 1 and samples > 0
    assert text.endswith("# EOF\n")
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(names) == len(set(names))  # each family once
    assert "citrix_licenses_month_available" in names
    query = next(r.query for r in sim_state.requests if r.path.endswith("/historicalusage"))
    assert query["endDate"] == datetime.now(UTC).strftime("%Y-%m")


def openmetrics_series(text: str) -> dict[str, list[tuple[int, float]]]:
    """series (name{labels}) -> [(timestamp, value)] in the order written."""
    series: dict[str, list[tuple[int, float]]] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, sample_value, stamp = line.rsplit(" ", 2)
        series.setdefault(key, []).append((int(stamp), float(sample_value)))
    return series


async def test_backfill_samples_are_in_time_order_with_the_month_values(
    base_url, sim_state: SimulatorState
):
    """promtool rejects out-of-order samples, and a month shifted by one lands on the wrong
    dashboard column: each series is strictly increasing in time, one sample a step from each
    month start, carrying that month's figures."""
    this_month = year_of_history(sim_state)
    out = io.StringIO()
    before = time.time()
    done, samples = await backfill(make_config(base_url), out, months=12, step=86400)
    series = openmetrics_series(out.getvalue())
    assert done == 1 and samples == sum(len(points) for points in series.values())
    labels = f'customer_id="{SEED_CUSTOMER}",edition="XAXDFull",product="XenDesktop"'
    available = series[f"citrix_licenses_month_available{{{labels}}}"]
    user = series[f'citrix_licenses_month_assigned{{assignment="user",{labels}}}']
    device = series[f'citrix_licenses_month_assigned{{assignment="device",{labels}}}']
    for key, points in series.items():
        stamps = [stamp for stamp, _ in points]
        assert all(a < b for a, b in itertools.pairwise(stamps)), key
        assert stamps[-1] <= time.time(), key
    # Month i back has available 100 + i, user 50 - i, device 40 - i (year_of_history).
    for i in (11, 6, 1):
        month = add_months(this_month, -i)
        start = datetime(month.year, month.month, 1, tzinfo=UTC).timestamp()
        stop = datetime.combine(add_months(month, 1), datetime.min.time(), UTC).timestamp()
        days = round((stop - start) / 86400)
        expected = [(int(start) + day * 86400, 100.0 + i) for day in range(days)]
        assert [p for p in available if start <= p[0] < stop] == expected
        assert {v for t, v in user if start <= t < stop} == {50.0 - i}
        assert {v for t, v in device if start <= t < stop} == {40.0 - i}
    month_start = datetime.combine(add_months(this_month, -11), datetime.min.time(), UTC)
    assert available[0] == (int(month_start.timestamp()), 111.0)
    assert available[-1][1] == 100.0  # this month, last, up to the last step before now
    assert before - 86400 < available[-1][0] <= time.time()
    query = next(r.query for r in sim_state.requests if r.path.endswith("/historicalusage"))
    window = (add_months(this_month, -11).strftime("%Y-%m"), this_month.strftime("%Y-%m"))
    assert (query["startDate"], query["endDate"]) == window


async def test_prometheus_serves_backfilled_history(tmp_path, base_url, sim_state):
    promtool = require_binary("promtool")
    prometheus_bin = require_binary("prometheus")
    this_month = year_of_history(sim_state)
    openmetrics = tmp_path / "history.om"
    with openmetrics.open("w") as out:
        done, _ = await backfill(make_config(base_url), out, months=12, step=86400)
    assert done == 1
    data_dir = tmp_path / "data"
    proc = await asyncio.create_subprocess_exec(
        promtool, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()

    prometheus = Prometheus(
        prometheus_bin, tmp_path, "global:\n  scrape_interval: 1m\n", data_dir=data_dir
    )
    await prometheus.start()
    try:
        six_months_ago = add_months(this_month, -6)
        at = datetime(six_months_ago.year, six_months_ago.month, 15, tzinfo=UTC).timestamp()
        result = await prometheus.query(
            f'citrix_licenses_month_available{{customer_id="{SEED_CUSTOMER}"}}', at=at
        )
        assert [float(r["value"][1]) for r in result] == [106]
        user = await prometheus.query('citrix_licenses_month_assigned{assignment="user"}', at=at)
        assert float(user[0]["value"][1]) == 44
        assert at < time.time() - 150 * 86400
    finally:
        await prometheus.stop()


async def test_backfill_command(tmp_path, base_url, sim_state):
    year_of_history(sim_state)
    config = tmp_path / "config.yml"
    config.write_text(
        f"customers:\n  - customer_id: {SEED_CUSTOMER}\n    client_id: {SEED_CLIENT}\n"
        f"    client_secret: {SEED_SECRET}\n    api_url: {base_url}\n"
    )
    output = tmp_path / "history.om"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "backfill", "--config.file", str(config),
        "--months", "6", "--output", str(output),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert output.read_text().endswith("# EOF\n")
    assert "promtool tsdb create-blocks-from openmetrics" in err.decode()
    assert SEED_SECRET not in err.decode()
    query = next(r.query for r in sim_state.requests if r.path.endswith("/historicalusage"))
    assert query["startDate"] == add_months(datetime.now(UTC).date().replace(day=1), -5).strftime(
        "%Y-%m"
    )
