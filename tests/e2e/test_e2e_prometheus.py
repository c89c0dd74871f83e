"""End to end: `--demo` exporter scraped by a real Prometheus; exposition passes promtool."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.support.helpers import require_binary
from tests.support.processes import Prometheus, exporter_process, scrape_config, wait_until


async def test_prometheus_scrapes_the_demo(tmp_path):
    prometheus_bin = require_binary("prometheus")
    exporter, url = await exporter_process(tmp_path, "--demo")
    prometheus = Prometheus(
        prometheus_bin,
        tmp_path,
        scrape_config(url),
    )
    try:
        await prometheus.start()

        async def available() -> list:
            return await prometheus.query(
                'citrix_licenses_available{customer_id="acme-demo",product="XenDesktop"}'
            )

        result = await wait_until(available, 60, prometheus.process)
        assert float(result[0]["value"][1]) == 500
        assert result[0]["metric"]["job"] == "citrix-cloud"
        up = await prometheus.query('citrix_up{collector="licensing"}')
        assert sorted(r["metric"]["customer_id"] for r in up) == [
            "acme-demo", "globex-demo", "initech-demo",
        ]  # fmt: skip
        assert all(float(r["value"][1]) == 1 for r in up)
        overage = await prometheus.query("citrix_licenses_overage > 0")
        assert [r["metric"]["customer_id"] for r in overage] == ["globex-demo"]
        target_health = await prometheus.query('up{job="citrix-cloud"}')
        assert float(target_health[0]["value"][1]) == 1
    finally:
        await prometheus.stop()
        assert await exporter.stop() == 0


async def test_exposition_passes_promtool_check_metrics(tmp_path):
    promtool = require_binary("promtool")
    exporter, url = await exporter_process(tmp_path, "--demo")
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as resp:
            text = await resp.read()
    finally:
        await exporter.stop()
    check = await asyncio.create_subprocess_exec(
        promtool, "check", "metrics",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await check.communicate(text)
    assert check.returncode == 0, out.decode()
    assert out.decode().strip() == "", out.decode()  # no lint warnings either
