"""Reload: the plan (which customers are added, removed, changed, unchanged), the state a reload
keeps, and `POST /-/reload` (405 for other methods, behind basic auth, 500 on a broken config,
one reload at a time)."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from exporter.config import Config, ConfigError, WebConfig, load_config
from exporter.config.web_file import parse_web_config
from exporter.reload import plan, web_restarts
from exporter.reloader import Reloader, Settings
from exporter.runtime import Exporter
from exporter.simulator.state import (
    LicenseScenario,
    SimCustomer,
    SimulatorState,
    secret_fingerprint,
)
from exporter.web import create_web_app
from exporter.web_guard import WebGuard
from tests.support.helpers import (
    SEED_CLIENT,
    SEED_CUSTOMER,
    SEED_SECRET,
    make_config,
    samples,
    value,
)
from tests.support.tls import bcrypt_hash

OTHER, OTHER_CLIENT, OLD_SECRET, NEW_SECRET = "other1", "other-client", "old-secret", "new-secret"
ADDED, ADDED_CLIENT, ADDED_SECRET = "added1", "added-client", "added-secret"


def entry(customer_id: str, client_id: str, secret: str, **more: Any) -> dict[str, Any]:
    return {"customer_id": customer_id, "client_id": client_id, "client_secret": secret, **more}


SEED = entry(SEED_CUSTOMER, SEED_CLIENT, SEED_SECRET)


def config_of(*customers: dict[str, Any], url: str = "https://sim.test", **poll: Any) -> Config:
    return make_config(url, list(customers), **poll)


# --- the plan --------------------------------------------------------------------------------


def test_plan_sorts_customers_into_added_removed_changed_and_unchanged() -> None:
    old = config_of(
        entry("same", "c1", "s1"),
        entry("rotated", "c2", "s2"),
        entry("options", "c3", "s3"),
        entry("gone", "c4", "s4"),
    )
    new = config_of(
        entry("same", "c1", "s1"),
        entry("rotated", "c2", "s2-new"),
        entry("options", "c3", "s3", collectors={"licensing": {"interval": "10m"}}),
        entry("new", "c5", "s5"),
    )
    changes = plan(old, new)
    assert changes.added == ("new",)
    assert changes.removed == ("gone",)
    assert changes.credentials == ("rotated",)
    assert changes.collectors == ("options",)
    assert changes.unchanged == ("same",)
    assert changes.poll == () and changes.needs_restart == ()
    assert plan(old, old).unchanged == ("same", "rotated", "options", "gone")


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "other-id"},
        {"client_secret": "other-secret"},
        {"region": "jp", "api_url": None},
        {"api_url": "https://elsewhere.test"},
    ],
)
def test_each_credential_or_endpoint_change_means_a_new_token(change: dict[str, Any]) -> None:
    old = config_of(entry("a", "c1", "s1"))
    changes = plan(old, config_of({**entry("a", "c1", "s1"), **change}))
    assert changes.credentials == ("a",) and changes.collectors == ()


def test_poll_changes_apply_but_the_pool_size_needs_a_restart() -> None:
    old = config_of(SEED)
    assert plan(old, config_of(SEED, interval=120)).poll == ("interval",)
    assert plan(old, config_of(SEED, interval=120)).needs_restart == ()
    changes = plan(old, config_of(SEED, max_concurrency=3))
    assert changes.poll == ("max_concurrency",)
    assert changes.needs_restart == (
        "poll.max_concurrency: the connection pool keeps its size until a restart",
    )
    # A poll-level default the customer inherits is a change of its collectors.
    assert plan(old, config_of(SEED, omit_zero_states=True)).collectors == (SEED_CUSTOMER,)


def test_listen_address_and_metrics_path_need_a_restart() -> None:
    old = WebConfig()
    assert web_restarts(old, WebConfig()) == []
    assert web_restarts(old, WebConfig(listen_address=":9999", telemetry_path="/m")) == [
        "web.listen_address: still ':9876' until a restart (new: ':9999')",
        "web.telemetry_path: still '/metrics' until a restart (new: '/m')",
    ]


# --- the running exporter --------------------------------------------------------------------


@pytest.fixture
def two_customers(sim_state: SimulatorState) -> SimulatorState:
    sim_state.customers[OTHER] = SimCustomer(
        OTHER, OTHER_CLIENT, OLD_SECRET, LicenseScenario(available=99)
    )
    sim_state.customers[ADDED] = SimCustomer(
        ADDED, ADDED_CLIENT, ADDED_SECRET, LicenseScenario(available=7)
    )
    return sim_state


def exposition(exporter: Exporter) -> str:
    return generate_latest(exporter.registry).decode()


def requests_of(text: str, customer_id: str) -> float:
    return sum(
        v
        for (name, labels), v in samples(text).items()
        if name == "citrix_api_requests_total" and ("customer_id", customer_id) in labels
    )


@pytest.fixture
async def polled(
    base_url: str, exporter_factory: Any, two_customers: SimulatorState
) -> tuple[Exporter, Config]:
    """An exporter of the seed customer and another one, each polled once."""
    old = config_of(SEED, entry(OTHER, OTHER_CLIENT, OLD_SECRET), url=base_url)
    exporter = await exporter_factory(old)
    assert await exporter.poller.run_all_once()
    return exporter, old


def secrets_used(state: SimulatorState, client_id: str) -> list[str]:
    return [r.secret for r in state.token_requests if r.client_id == client_id]


async def test_a_reload_keeps_unchanged_customers_and_renews_rotated_credentials(
    polled: tuple[Exporter, Config], base_url: str, two_customers: SimulatorState
) -> None:
    exporter, old = polled
    seed_job, other_job = exporter.poller.jobs
    seed_client, other_client = (exporter.api_clients[c] for c in (SEED_CUSTOMER, OTHER))
    seed_tokens, other_tokens = seed_client.tokens, other_client.tokens
    before = exposition(exporter)
    requests = requests_of(before, SEED_CUSTOMER)
    assert requests > 0

    two_customers.customers[OTHER].other_secrets.append(NEW_SECRET)
    new = config_of(
        SEED, entry(OTHER, OTHER_CLIENT, NEW_SECRET), entry(ADDED, ADDED_CLIENT, ADDED_SECRET),
        url=base_url,
    )  # fmt: skip
    changes = plan(old, new)
    await exporter.apply(new, changes)

    # Unchanged: the same client, token, job, status and values, with nothing polled again.
    assert exporter.api_clients[SEED_CUSTOMER] is seed_client and seed_client.tokens is seed_tokens
    assert exporter.poller.jobs[:2] == [seed_job, other_job]
    assert seed_job.status.attempts == 1
    after = exposition(exporter)
    assert value(after, "citrix_licenses_available", customer_id=SEED_CUSTOMER) == 25
    assert value(after, "citrix_licenses_available", customer_id=OTHER) == 99
    assert requests_of(after, SEED_CUSTOMER) == requests
    # Rotated: the same client and collectors, a new token manager with the new secret.
    assert exporter.api_clients[OTHER] is other_client and other_client.tokens is not other_tokens
    assert other_job.collector.ctx.customer.client_secret.get_secret_value() == NEW_SECRET
    # Added: a job of its own, not polled yet.
    assert [job.customer_id for job in exporter.poller.jobs[2:]] == [ADDED]

    two_customers.customers[OTHER].client_secret = NEW_SECRET  # the old secret is revoked
    two_customers.customers[OTHER].other_secrets.clear()
    assert await exporter.poller.run_all_once()
    assert secrets_used(two_customers, OTHER_CLIENT) == [
        secret_fingerprint(OLD_SECRET), secret_fingerprint(NEW_SECRET),
    ]  # fmt: skip
    assert secrets_used(two_customers, SEED_CLIENT) == [secret_fingerprint(SEED_SECRET)]
    text = exposition(exporter)
    assert value(text, "citrix_licenses_available", customer_id=ADDED) == 7
    assert value(text, "citrix_up", customer_id=OTHER, collector="licensing") == 1


async def test_a_removed_customer_disappears_at_once(
    polled: tuple[Exporter, Config], base_url: str, two_customers: SimulatorState
) -> None:
    exporter, old = polled
    assert f'customer_id="{OTHER}"' in exposition(exporter)
    new = config_of(SEED, url=base_url)
    await exporter.apply(new, plan(old, new))
    text = exposition(exporter)
    assert f'customer_id="{OTHER}"' not in text  # results, citrix_up, request counters
    assert value(text, "citrix_up", customer_id=SEED_CUSTOMER, collector="licensing") == 1
    assert OTHER not in exporter.api_clients


async def test_changed_collector_options_rebuild_only_that_customers_jobs(
    polled: tuple[Exporter, Config], base_url: str, two_customers: SimulatorState
) -> None:
    exporter, old = polled
    seed_job, _ = exporter.poller.jobs
    disabled = {"licensing": {"enabled": False}, "monitor": {"enabled": False}}
    new = config_of(
        SEED, entry(OTHER, OTHER_CLIENT, OLD_SECRET, collectors=disabled), url=base_url, interval=90
    )
    await exporter.apply(new, plan(old, new))
    assert exporter.poller.jobs == [seed_job]  # the other customer has no collector left
    assert seed_job.interval == 90  # poll.interval applies to the kept job
    text = exposition(exporter)
    assert value(text, "citrix_licenses_available", customer_id=OTHER) is None
    assert value(text, "citrix_licenses_available", customer_id=SEED_CUSTOMER) == 25
    # Its own counters stay: the customer is still configured.
    assert value(text, "citrix_token_requests_total", customer_id=OTHER) == 1


async def test_a_started_poller_polls_added_jobs_at_once_and_reschedules_kept_ones(
    base_url, exporter_factory, two_customers: SimulatorState
) -> None:
    old = config_of(SEED, url=base_url, interval=3600)
    exporter = await exporter_factory(old)
    exporter.poller.start()
    try:
        while not exporter.poller.ready:
            await asyncio.sleep(0.01)
        new = config_of(SEED, entry(ADDED, ADDED_CLIENT, ADDED_SECRET), url=base_url, interval=1)
        await exporter.apply(new, plan(old, new))
        added, kept = exporter.poller.jobs[1], exporter.poller.jobs[0]

        async def both_polled() -> None:
            while added.status.attempts == 0 or kept.status.attempts < 2:
                await asyncio.sleep(0.01)  # the kept job's next slot is within a second now

        await asyncio.wait_for(both_polled(), 10)  # fails, not hangs, if either never polls
    finally:
        await exporter.poller.stop()


# --- POST /-/reload --------------------------------------------------------------------------


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


class Source:
    """What a reload reads: a config file (its errors as the real loader reports them)."""

    def __init__(self, path: Path, config: Config) -> None:
        self.path = path
        self.write(config)

    def write(self, config: Config) -> None:
        self.path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_unset=True)))

    def __call__(self) -> Settings:
        return Settings(load_config(self.path), WebConfig())


async def test_post_reloads_other_methods_405_and_a_broken_config_changes_nothing(
    base_url, exporter_factory, aiohttp_client, two_customers: SimulatorState, tmp_path: Path
) -> None:
    old = config_of(SEED, url=base_url)
    exporter = await exporter_factory(old)
    source = Source(tmp_path / "config.yml", old)
    client = await aiohttp_client(
        create_web_app(exporter, reloader=Reloader(exporter, source, WebConfig()))
    )
    for method in ("GET", "PUT", "DELETE"):
        assert (await client.request(method, "/-/reload")).status == 405
    metrics = await (await client.get("/metrics")).text()
    assert value(metrics, "citrix_exporter_config_last_reload_successful") == 1
    started = value(metrics, "citrix_exporter_config_last_reload_success_timestamp_seconds")

    source.path.write_text("customers: [\n")
    with pytest.raises(ConfigError) as broken:
        load_config(source.path)
    resp = await client.post("/-/reload")
    assert resp.status == 500
    assert await resp.text() == broken.value.report() + "\n"  # what --check-config prints
    metrics = await (await client.get("/metrics")).text()
    assert value(metrics, "citrix_exporter_config_last_reload_successful") == 0
    assert exporter.config is old

    source.write(config_of(SEED, entry(ADDED, ADDED_CLIENT, ADDED_SECRET), url=base_url))
    resp = await client.post("/-/reload")
    assert resp.status == 200
    assert (await resp.text()).startswith("reloaded: added 1, removed 0,")
    metrics = await (await client.get("/metrics")).text()
    assert value(metrics, "citrix_exporter_config_last_reload_successful") == 1
    assert value(metrics, "citrix_exporter_config_last_reload_success_timestamp_seconds") >= (
        started or 0
    )
    assert [job.customer_id for job in exporter.poller.jobs] == [SEED_CUSTOMER, ADDED]


async def test_reload_is_behind_basic_auth_and_swaps_the_users(
    exporter_factory, aiohttp_client
) -> None:
    config = config_of(SEED)
    exporter = await exporter_factory(config)
    first = parse_web_config(f"basic_auth_users:\n  prometheus: '{bcrypt_hash('one')}'\n")
    second = parse_web_config(f"basic_auth_users:\n  prometheus: '{bcrypt_hash('two')}'\n")
    guard = WebGuard(first)
    reloader = Reloader(exporter, lambda: Settings(config, WebConfig(), second), WebConfig(), guard)
    client = await aiohttp_client(create_web_app(exporter, guard=guard, reloader=reloader))
    assert (await client.post("/-/reload")).status == 401
    assert (await client.post("/-/reload", headers=basic("prometheus", "wrong"))).status == 401
    resp = await client.post("/-/reload", headers=basic("prometheus", "one"))
    assert resp.status == 200, await resp.text()
    assert (await client.get("/metrics", headers=basic("prometheus", "one"))).status == 401
    assert (await client.get("/metrics", headers=basic("prometheus", "two"))).status == 200
    guard.passwords.close()


async def test_concurrent_reloads_run_one_at_a_time(exporter_factory) -> None:
    config = config_of(SEED)
    exporter = await exporter_factory(config)
    running, most = 0, 0
    lock = threading.Lock()

    def read() -> Settings:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return Settings(config, WebConfig())

    reloader = Reloader(exporter, read, WebConfig())
    outcomes = await asyncio.gather(*(reloader.reload() for _ in range(3)))
    assert all(outcome.ok for outcome in outcomes) and most == 1


async def test_a_restart_only_change_is_reported_and_the_rest_applied(exporter_factory) -> None:
    config = config_of(SEED)
    exporter = await exporter_factory(config)
    moved = WebConfig(listen_address=":9999")
    new = config_of(SEED, interval=120, max_concurrency=2)
    reloader = Reloader(exporter, lambda: Settings(new, moved), WebConfig())
    outcome = await reloader.reload()
    assert outcome.ok
    assert "needs a restart: web.listen_address: still ':9876'" in outcome.text
    assert "needs a restart: poll.max_concurrency" in outcome.text
    assert exporter.config is new and exporter.poller.jobs[0].interval == 120
