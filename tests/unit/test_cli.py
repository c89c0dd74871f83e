"""The command line as users run it: real subprocesses, exit codes, signals."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.support.helpers import SEED_CLIENT, SEED_CUSTOMER, SEED_SECRET
from tests.support.processes import free_port, http_ok, wait_until

EXPORTER = [sys.executable, "-m", "exporter"]


async def run(*args: str, env: dict[str, str] | None = None, timeout: float = 30):
    proc = await asyncio.create_subprocess_exec(
        *EXPORTER,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


def write_config(tmp_path: Path, base_url: str, secret_line: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(
        f"""customers:
  - customer_id: {SEED_CUSTOMER}
    client_id: {SEED_CLIENT}
    {secret_line}
    api_url: {base_url}
    collectors:
      monitor: {{enabled: false}}
"""
    )
    return path


async def test_version_and_help():
    code, out, _ = await run("--version")
    assert code == 0 and "citrix-cloud-exporter" in out
    code, out, _ = await run("--help")
    assert code == 0 and "--config.file" in out and "--demo" in out


async def test_check_config_valid_and_invalid(tmp_path, base_url):
    path = write_config(tmp_path, base_url, "client_secret: ${TEST_CITRIX_SECRET}")
    code, _, err = await run(
        "--check-config", "--config.file", str(path), env={"TEST_CITRIX_SECRET": "x" * 8}
    )
    assert code == 0, err
    code, _, err = await run("--check-config", "--config.file", str(path))
    assert code == 2
    assert "TEST_CITRIX_SECRET" in err and "customers[0].client_secret" in err
    bad = tmp_path / "bad.yml"
    bad.write_text("customers:\n  - customer_id: a\n    client_id: [unclosed\n")
    code, _, err = await run("--check-config", "--config.file", str(bad))
    assert code == 2 and "line" in err
    code, _, err = await run("--check-config", "--config.file", str(tmp_path / "missing.yml"))
    assert code == 2 and "missing.yml" in err


async def test_config_from_environment_variable(tmp_path, base_url):
    path = write_config(tmp_path, base_url, f"client_secret: {SEED_SECRET}")
    code, _, err = await run("--check-config", env={"CITRIX_EXPORTER_CONFIG": str(path)})
    assert code == 0, err


async def test_once_with_file_secret_and_with_a_wrong_secret(tmp_path, base_url):
    secret_file = tmp_path / "secret"
    secret_file.write_text(SEED_SECRET + "\n")
    path = write_config(tmp_path, base_url, f"client_secret_file: {secret_file}")
    code, out, err = await run("--once", "--config.file", str(path))
    assert code == 0, err
    assert f'citrix_licenses_available{{customer_id="{SEED_CUSTOMER}"' in out
    assert SEED_SECRET not in out + err

    secret_file.write_text("not-the-secret\n")
    code, out, err = await run("--once", "--config.file", str(path))
    assert code == 1
    assert "citrix_up" in out and "invalid_client" in err
    assert "not-the-secret" not in out + err


async def test_once_names_not_entitled_and_exits_0(tmp_path, base_url, sim_state):
    """A licensing-only customer that leaves Monitor on (the default): not a failure."""
    sim_state.customers[SEED_CUSTOMER].monitor.entitled = False
    path = write_config(tmp_path, base_url, f"client_secret: {SEED_SECRET}")
    path.write_text(path.read_text().replace("monitor: {enabled: false}", "monitor: {}"))
    code, out, err = await run("--once", "--config.file", str(path))
    assert code == 0, err
    assert f'citrix_up{{collector="monitor",customer_id="{SEED_CUSTOMER}"}} 1.0' in out
    entitled = f'citrix_collector_entitled{{collector="monitor",customer_id="{SEED_CUSTOMER}"}}'
    assert f"{entitled} 0.0" in out
    assert "not entitled" in err and "monitor" in err


async def test_demo_once():
    code, out, err = await run("--demo", "--once")
    assert code == 0, err
    for customer in ("acme-demo", "globex-demo", "initech-demo"):
        assert f'citrix_licenses_available{{customer_id="{customer}"' in out
        assert f'citrix_sessions{{customer_id="{customer}"' in out
        assert f'citrix_up{{collector="monitor",customer_id="{customer}"}} 1.0' in out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_serves_and_shuts_down_cleanly_on_signal(tmp_path, base_url, sig):
    path = write_config(tmp_path, base_url, f"client_secret: {SEED_SECRET}")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *EXPORTER, "--config.file", str(path), "--web.listen-address", f"127.0.0.1:{port}",
        "--log.format", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            await wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), 10)
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert "citrix_licenses_available" in await resp.text()
        proc.send_signal(sig)
        _, err = await asyncio.wait_for(proc.communicate(), 5)
        assert proc.returncode == 0, err.decode()
        assert '"msg": "shutting down"' in err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--web.listen-address", "nonsense", "must be [host]:port"),
        ("--web.listen-address", "[::1", "unbalanced '[' or ']'"),  # was exit 1, a traceback
        ("--web.listen-address", "", "must be [host]:port"),
        ("--web.telemetry-path", "metrics", "must start with '/'"),
        ("--web.telemetry-path", "/healthz", "taken by the exporter itself"),
        ("--web.telemetry-path", "/{x}", "must not contain '{' or '}'"),
    ],
)
async def test_bad_web_flags_are_usage_errors_in_every_mode(
    tmp_path, base_url, flag, value, message
):
    """The flags go through the config's WebConfig model: same rules, flag named."""
    path = write_config(tmp_path, base_url, f"client_secret: {SEED_SECRET}")
    for mode in (("--config.file", str(path)), ("--check-config", "--config.file", str(path)),
                 ("--demo",)):  # fmt: skip
        code, out, err = await run(*mode, flag, value)
        assert code == 2, (mode, err)
        assert f"error: {flag}: " in err and message in err, (mode, err)
        assert "Traceback" not in err and "valid" not in out
