"""End to end: a real Prometheus scrapes the `--demo` exporter over TLS with basic auth.

Prometheus trusts only a test CA (trustme) and sends the password of a bcrypt hash in the
exporter's --web.config.file; a second job with a wrong password must see the target down.
"""

from __future__ import annotations

import base64

import aiohttp

from tests.support.helpers import require_binary
from tests.support.processes import (
    Process,
    Prometheus,
    exporter_command,
    free_port,
    stop_all,
    wait_until,
)
from tests.support.tls import bcrypt_hash, tls_files


def job(name: str, target: str, ca_file: str, password: str) -> str:
    return f"""  - job_name: {name}
    scheme: https
    tls_config:
      ca_file: {ca_file}
    basic_auth:
      username: prometheus
      password: {password}
    static_configs:
      - targets: ['{target}']
"""


async def test_prometheus_scrapes_over_tls_with_basic_auth(tmp_path):
    prometheus_bin = require_binary("prometheus")
    tls = tls_files(tmp_path)
    web_config = tmp_path / "web.yml"
    web_config.write_text(
        f"tls_server_config:\n  cert_file: {tls.cert_file}\n  key_file: {tls.key_file}\n"
        f"basic_auth_users:\n  prometheus: '{bcrypt_hash('scrape-me', cost=10)}'\n"
    )
    port = free_port()
    target = f"127.0.0.1:{port}"
    exporter = Process(
        "exporter",
        exporter_command(port, "--demo", "--web.config.file", str(web_config)),
        tmp_path,
    )
    token = base64.b64encode(b"prometheus:scrape-me").decode()

    async def ready() -> bool:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    f"https://{target}/readyz",
                    ssl=tls.client_context(),
                    headers={"Authorization": f"Basic {token}"},
                ) as resp,
            ):
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    config = (
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
        + job("right", target, str(tls.ca_file), "scrape-me")
        + job("wrong", target, str(tls.ca_file), "not-the-password")
    )
    prometheus = Prometheus(prometheus_bin, tmp_path, config)
    try:
        await exporter.start()
        await wait_until(ready, 30, exporter)
        await prometheus.start()

        async def available() -> list:
            return await prometheus.query(
                'citrix_licenses_available{job="right",customer_id="acme-demo",'
                'product="XenDesktop"}'
            )

        result = await wait_until(available, 60, prometheus.process)
        assert float(result[0]["value"][1]) == 500

        async def both_scraped() -> list:
            found = await prometheus.query("up")
            return found if len(found) == 2 else []

        up = {r["metric"]["job"]: float(r["value"][1]) for r in await wait_until(both_scraped, 30)}
        assert up == {"right": 1.0, "wrong": 0.0}
        targets = (await prometheus.api("targets"))["activeTargets"]
        wrong = next(t for t in targets if t["labels"]["job"] == "wrong")
        assert "401" in wrong["lastError"], wrong
        assert not any(t["scrapeUrl"].startswith("http://") for t in targets)
    finally:
        await stop_all(prometheus, exporter)
