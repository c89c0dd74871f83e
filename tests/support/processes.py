"""Helpers for end-to-end tests: real processes (exporter, Prometheus, Alertmanager) on loopback
ports."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Self

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A child process with its output in a file; stopped by pid (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, args: list[str], workdir: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = workdir / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Process:
        log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, stdout=log, stderr=asyncio.subprocess.STDOUT, env=dict(os.environ)
        )
        log.close()
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def stop(self) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else None
        self.proc.terminate()
        try:
            return await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()


def exporter_command(port: int, *args: str) -> list[str]:
    """The exporter CLI listening on 127.0.0.1:`port`, with more arguments."""
    return [sys.executable, "-m", "exporter", "--web.listen-address", f"127.0.0.1:{port}", *args]


def scrape_config(url: str, job: str = "citrix-cloud", rules: str | None = None) -> str:
    """A Prometheus config scraping the exporter at `url` every second (and evaluating
    `rules` every second when given)."""
    rule_part = f"  evaluation_interval: 1s\nrule_files:\n  - {rules}\n" if rules else ""
    return f"""global:
  scrape_interval: 1s
{rule_part}scrape_configs:
  - job_name: {job}
    static_configs:
      - targets: ['{url.removeprefix("http://")}']
"""


async def exporter_process(workdir: Path, *args: str) -> tuple[Process, str]:
    """Start the exporter CLI; returns it and its base URL once /readyz says ready (stopping it
    again if it never gets ready)."""
    port = free_port()
    proc = Process("exporter", exporter_command(port, *args), workdir)
    await proc.start()
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_until(lambda: http_ok(f"{url}/readyz"), 30, proc)
    except BaseException:
        await proc.stop()
        raise
    return proc, url


async def get_json(url: str, **params: str) -> Any:
    """GET `url` and decode its JSON body (whatever the status)."""
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as resp:
        return await resp.json()


async def stop_all(*procs: Process | Prometheus | Alertmanager | None) -> None:
    """Stop each process (by pid, SIGTERM then SIGKILL), even when stopping another fails."""
    errors = []
    for proc in procs:
        try:
            if proc is not None:
                await proc.stop()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


async def http_ok(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


async def wait_until(check: Any, timeout: float, proc: Process | None = None) -> Any:
    """Poll `check` (an async callable) every 0.2 s until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if proc and proc.proc and proc.proc.returncode is not None:
            raise AssertionError(f"{proc.name} exited early:\n{proc.output()}")
        if time.monotonic() > deadline:
            detail = f"\n{proc.name} output:\n{proc.output()}" if proc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {check}{detail}")
        await asyncio.sleep(0.2)


class Server:
    """A server of the Prometheus family (Debian package) with a config file, on a free
    loopback port; ready when `/-/ready` answers."""

    name = "server"

    def __init__(self, binary: str, workdir: Path, config: str, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config_path = workdir / f"{self.name}.yml"
        config_path.write_text(config)
        self.process = Process(
            self.name,
            [
                binary,
                f"--config.file={config_path}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                *args,
            ],
            workdir,
        )

    async def start(self) -> Self:
        await self.process.start()
        await wait_until(lambda: http_ok(f"{self.url}/-/ready"), 30, self.process)
        return self

    async def stop(self) -> None:
        await self.process.stop()


class Prometheus(Server):
    """A real Prometheus with a given config."""

    name = "prometheus"

    def __init__(
        self, binary: str, workdir: Path, config: str, data_dir: Path | None = None
    ) -> None:
        super().__init__(
            binary,
            workdir,
            config,
            f"--storage.tsdb.path={data_dir or workdir / 'tsdb'}",
            "--storage.tsdb.retention.time=5y",  # keep backfilled history
            "--web.enable-lifecycle",
        )

    async def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The result of an instant query (at `at`, default now)."""
        params = {"query": expr} if at is None else {"query": expr, "time": str(at)}
        result: list[dict[str, Any]] = (await self.api("query", **params))["result"]
        return result

    async def api(self, path: str, **params: str) -> Any:
        """`data` of a successful GET /api/v1/`path`."""
        body = await get_json(f"{self.url}/api/v1/{path}", **params)
        assert body["status"] == "success", body
        return body["data"]

    async def alerts(self) -> list[dict[str, Any]]:
        """Active alerts, pending and firing (GET /api/v1/alerts)."""
        alerts: list[dict[str, Any]] = (await self.api("alerts"))["alerts"]
        return alerts

    async def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule, with its health and last error (GET /api/v1/rules)."""
        groups = (await self.api("rules"))["groups"]
        return [rule for group in groups for rule in group["rules"]]


class Alertmanager(Server):
    """A real Alertmanager as a single instance (`--cluster.listen-address=` turns gossip off)."""

    name = "alertmanager"

    def __init__(self, binary: str, workdir: Path, config: str) -> None:
        super().__init__(
            binary,
            workdir,
            config,
            f"--storage.path={workdir / 'alertmanager-data'}",
            "--cluster.listen-address=",
        )

    async def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds (GET /api/v2/alerts)."""
        alerts: list[dict[str, Any]] = await get_json(f"{self.url}/api/v2/alerts")
        return alerts

    async def post(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts as Prometheus does (POST /api/v2/alerts)."""
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}/api/v2/alerts", json=alerts) as resp,
        ):
            assert resp.status == 200, await resp.text()
