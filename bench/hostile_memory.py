"""Peak memory of the exporter process when Citrix Cloud answers with something enormous.

Usage: python bench/hostile_memory.py

Serves a careless "Citrix Cloud" on loopback and runs `python -m exporter --once` against it
once per case, then prints the exporter process's peak RSS (VmHWM, read from /proc just before
it exits, by polling) and how the poll ended. Cases: a healthy answer (the baseline), a 1 MB
gzip body that inflates to 1 GiB, a 200 MiB JSON body for licensing, and the same two for the
token endpoint. The bodies are streamed, so this process stays small too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web

CUSTOMER = "bench1"
CHUNK = 64 * 1024
CURRENT = {
    "customerId": CUSTOMER,
    "totalUsageCount": 3,
    "totalAvailableLicenseCount": 25,
    "remainingLicenseCount": 22,
    "productName": "XenDesktop",
    "productEdition": "XAXDFull",
    "userLicenseUsage": {"totalUsageCount": 3, "releasedCount": 0},
    "deviceLicenseUsage": {"totalUsageCount": 3, "releasedCount": 0},
    "nextExpiredLicenses": None,
    "nextActivatingLicense": None,
}


def gzip_bomb(inflated: int = 1 << 30) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    parts = [compressor.compress(zeros) for _ in range(inflated // len(zeros))]
    return b"".join(parts) + compressor.flush()


def big_json(total: int = 200 << 20) -> Iterator[bytes]:
    """A valid JSON object of about `total` bytes, in chunks."""
    yield b'{"pad": ['
    row = b'"' + b"x" * (CHUNK - 4) + b'",'
    for _ in range(total // len(row)):
        yield row
    yield b'"end"], "totalAvailableLicenseCount": 1}'


def make_app(case: str, bomb: bytes) -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        is_token = request.path.endswith("/tokens/clients")
        hostile = (case.startswith("token") and is_token) or (
            case.startswith("licensing") and request.path.endswith("/ud/current")
        )
        if not hostile:
            if is_token:
                return web.json_response({"access_token": "bench-token-" + "x" * 40})
            if request.path.endswith("/ud/current"):
                return web.json_response(CURRENT)
            return web.Response(status=204)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if case.endswith("gzip bomb"):
            response.headers["Content-Encoding"] = "gzip"
            chunks: Iterator[bytes] = (bomb[i : i + CHUNK] for i in range(0, len(bomb), CHUNK))
        else:
            chunks = big_json()
        await response.prepare(request)
        try:
            for chunk in chunks:
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the exporter hung up: what it should do
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


async def run_case(case: str, bomb: bytes, workdir: Path) -> tuple[int, float, int, str]:
    port = free_port()
    runner = web.AppRunner(make_app(case, bomb))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    config = workdir / "config.yml"
    config.write_text(
        json.dumps(
            {
                "poll": {"timeout": "60s", "retry": {"attempts": 1}},
                "customers": [
                    {
                        "customer_id": CUSTOMER,
                        "client_id": "bench",
                        "client_secret": "bench-secret",
                        "api_url": f"http://127.0.0.1:{port}",
                        "collectors": {"monitor": {"enabled": False}},
                    }
                ],
            }
        )
    )
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "--once", "--config.file", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    peak = 0
    while proc.returncode is None:
        peak = max(peak, peak_kib(proc.pid) or 0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.02)
    assert proc.stderr is not None
    error = ""
    for line in (await proc.stderr.read()).decode(errors="replace").splitlines():
        if "poll failed" in line or "error=" in line:
            error = line[line.find("error=") :][:110]
            break
    await runner.cleanup()
    return proc.returncode, time.monotonic() - started, peak, error


async def main() -> None:
    bomb = gzip_bomb()
    cases = ["healthy", "licensing gzip bomb", "licensing 200 MiB JSON"]
    cases += ["token gzip bomb", "token 200 MiB JSON"]
    print(f"{'case':<24} {'exit':>4} {'seconds':>8} {'peak RSS':>10}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            code, seconds, peak, error = await run_case(case, bomb, Path(tmp))
            outcome = error or ("all polls succeeded" if code == 0 else "")
            print(f"{case:<24} {code:>4} {seconds:>8.2f} {peak / 1024:>7.1f} MiB  {outcome}")


if __name__ == "__main__":
    asyncio.run(main())
