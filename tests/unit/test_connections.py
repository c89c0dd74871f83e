"""Connections: each customer's session and API client, wired once for daemon and backfill."""

from __future__ import annotations

import ssl
from pathlib import Path

from prometheus_client import CollectorRegistry

from exporter.metrics import SelfMetrics
from exporter.upstream.connections import Connections, ssl_context
from tests.support.config_text import TEST_CA_PEM
from tests.support.helpers import make_config

CUSTOMERS = [
    {"customer_id": "first1", "client_id": "a", "client_secret": "first-secret-Xy7"},
    {"customer_id": "second2", "client_id": "b", "client_secret": "second-secret-Qw3"},
]


async def test_one_client_per_customer_each_on_its_own_session_all_closed_together() -> None:
    config = make_config("http://127.0.0.1:9", CUSTOMERS, retry={"attempts": 5}, timeout=7)
    connections = Connections(config, SelfMetrics(CollectorRegistry()))
    clients = connections.open()
    assert list(clients) == ["first1", "second2"]
    assert [c.customer for c in clients.values()] == config.customers
    assert [c.policy.attempts for c in clients.values()] == [5, 5]
    sessions = [c._session for c in clients.values()]
    assert sessions[0] is not sessions[1]
    assert not any(s.closed for s in sessions)
    await connections.close()
    assert all(s.closed for s in sessions)


def test_the_customers_ca_file_is_trusted_beside_the_system_store(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(TEST_CA_PEM)
    plain, own = make_config(
        "https://example.invalid", [CUSTOMERS[0], {**CUSTOMERS[1], "ca_file": str(ca)}]
    ).customers
    assert ssl_context(plain) is True  # aiohttp's default verification
    context = ssl_context(own)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    assert context.cert_store_stats()["x509_ca"] == system + 1
