"""End to end: reload while a real Prometheus scrapes the exporter process.

SIGHUP applies a config that adds a customer and rotates another's client secret (read from a
`client_secret_file`, replaced by `mv`): the new customer's series appear, no counter of the
others resets, and the simulator (which records which secret each token request used) sees the
old secret no more, and keeps serving once it is revoked. Then `POST /-/reload` with a broken
config answers 500 with the `--check-config` message, changes nothing, and sets
`citrix_exporter_config_last_reload_successful` to 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from exporter.simulator.state import (
    LicenseScenario,
    SimCustomer,
    SimulatorState,
    secret_fingerprint,
)
from tests.support.helpers import SEED_CLIENT, SEED_CUSTOMER, SEED_SECRET, require_binary
from tests.support.processes import (
    Process,
    Prometheus,
    exporter_command,
    free_port,
    http_ok,
    scrape_config,
    stop_all,
    wait_until,
)

OTHER, OTHER_CLIENT, OLD_SECRET, NEW_SECRET = (
    "other1",
    "other-client",
    "old-Secret-1",
    "new-Secret-2",
)
ADDED, ADDED_CLIENT, ADDED_SECRET = "added1", "added-client", "added-Secret-3"


def customer(customer_id: str, client_id: str, base_url: str, **secret: str) -> dict[str, Any]:
    only_licensing = {"monitor": {"enabled": False}}
    return {
        "customer_id": customer_id,
        "client_id": client_id,
        **secret,
        "api_url": base_url,
        "collectors": only_licensing,
    }


def write_config(path: Path, customers: list[dict[str, Any]]) -> None:
    config = {"poll": {"interval": "1s", "timeout": "5s"}, "customers": customers}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def replace(path: Path, text: str) -> None:
    """Write `text` to `path` as operators are told to: a complete file moved into place."""
    staged = path.with_name(f".{path.name}.new")
    staged.write_text(text)
    os.replace(staged, path)


async def check_config_output(config: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "--check-config", "--config.file", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 2
    return err.decode()


async def test_reload_adds_a_customer_rotates_a_secret_and_survives_a_broken_config(
    tmp_path: Path, sim_state: SimulatorState, base_url: str
) -> None:
    prometheus_bin = require_binary("prometheus")
    sim_state.customers[OTHER] = SimCustomer(OTHER, OTHER_CLIENT, OLD_SECRET)
    sim_state.customers[ADDED] = SimCustomer(
        ADDED, ADDED_CLIENT, ADDED_SECRET, LicenseScenario(available=7)
    )
    secret_file = tmp_path / "other_secret"
    secret_file.write_text(OLD_SECRET + "\n")
    config = tmp_path / "exporter.yml"
    seed = customer(SEED_CUSTOMER, SEED_CLIENT, base_url, client_secret=SEED_SECRET)
    other = customer(OTHER, OTHER_CLIENT, base_url, client_secret_file=str(secret_file))
    write_config(config, [seed, other])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    exporter = Process("exporter", exporter_command(port, "--config.file", str(config)), tmp_path)
    prometheus = Prometheus(prometheus_bin, tmp_path, scrape_config(url))
    try:
        await exporter.start()
        await wait_until(lambda: http_ok(f"{url}/readyz"), 30, exporter)
        await prometheus.start()

        async def sampled(expr: str) -> list[Any]:
            return await prometheus.query(expr)

        await wait_until(
            lambda: sampled("count(count_over_time(citrix_api_requests_total[1m]) >= 3) >= 2"),
            30,
            prometheus.process,
        )
        # Rotation: the simulator takes both secrets, the file gets the new one, a customer is
        # added, and SIGHUP reloads.
        sim_state.customers[OTHER].other_secrets.append(NEW_SECRET)
        replace(secret_file, NEW_SECRET + "\n")
        added = customer(ADDED, ADDED_CLIENT, base_url, client_secret=ADDED_SECRET)
        write_config(tmp_path / "next.yml", [seed, other, added])
        os.replace(tmp_path / "next.yml", config)
        tokens_before = len(sim_state.token_requests)
        assert exporter.proc is not None
        exporter.proc.send_signal(signal.SIGHUP)

        await wait_until(
            lambda: sampled(f'citrix_licenses_available{{customer_id="{ADDED}"}} == 7'),
            30,
            exporter,
        )
        # The old secret is revoked: the exporter no longer needs it.
        sim_state.customers[OTHER].client_secret = NEW_SECRET
        sim_state.customers[OTHER].other_secrets.clear()
        await asyncio.sleep(3)  # a few more polls and scrapes after the revocation
        after = [r for r in sim_state.token_requests[tokens_before:] if r.client_id == OTHER_CLIENT]
        assert after and {r.secret for r in after} == {secret_fingerprint(NEW_SECRET)}, after
        assert all(r.granted for r in after)
        up = await prometheus.query(f'citrix_up{{customer_id="{OTHER}"}}')
        assert [float(r["value"][1]) for r in up] == [1.0]
        resets = await prometheus.query("sum(resets(citrix_api_requests_total[5m]))")
        assert float(resets[0]["value"][1]) == 0
        kept = await prometheus.query(
            "sum by (customer_id) "
            f'(increase(citrix_api_requests_total{{customer_id!="{ADDED}"}}[5m])) > 0'
        )
        assert sorted(r["metric"]["customer_id"] for r in kept) == [OTHER, SEED_CUSTOMER]

        # A broken config: 500 with --check-config's message, nothing changes, the metric is 0.
        config.write_text("customers: [\n")
        async with aiohttp.ClientSession() as session, session.post(f"{url}/-/reload") as resp:
            assert resp.status == 500
            assert await resp.text() == await check_config_output(config)
        await wait_until(
            lambda: sampled("citrix_exporter_config_last_reload_successful == 0"),
            30,
            prometheus.process,
        )
        up = await prometheus.query("citrix_up")
        assert sorted(r["metric"]["customer_id"] for r in up) == sorted(
            [ADDED, OTHER, SEED_CUSTOMER]
        )
        assert all(float(r["value"][1]) == 1 for r in up)
        assert exporter.proc.returncode is None
        assert "reload failed; the running configuration stays in force" in exporter.output()
    finally:
        await stop_all(prometheus, exporter)
