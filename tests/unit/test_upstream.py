"""Tokens, retries and throttling, against the simulator over real HTTP."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client import generate_latest

from exporter.simulator.state import SimulatorState
from exporter.upstream.errors import TokenError
from tests.support.helpers import SEED_CUSTOMER, SEED_SECRET, Clock, make_config, value

TOKEN_PATH = "/tokens/clients"
CURRENT_PATH = "/ud/current"


def api_requests(text: str, code: str) -> float | None:
    return value(text, "citrix_api_requests_total", endpoint="licensing_current", code=code)


async def test_token_is_reused_then_refreshed_ahead_of_expiry(
    base_url, exporter_factory, sim_state: SimulatorState
):
    sim_state.faults.token_lifetime = 1000  # refresh margin: a fifth, 200 s before expiry
    clock = Clock(1_700_000_000.0)
    exporter = await exporter_factory(make_config(base_url), clock=clock)
    tokens = exporter.api_clients[SEED_CUSTOMER].tokens
    first = await tokens.get()
    clock.now += 700
    assert await tokens.get() == first
    assert sim_state.count(TOKEN_PATH) == 1
    clock.now += 150  # 850 s: inside the refresh margin, before expiry
    second = await tokens.get()
    assert second != first
    assert sim_state.count(TOKEN_PATH) == 2
    text = generate_latest(exporter.registry).decode()
    assert value(text, "citrix_token_requests_total", customer_id=SEED_CUSTOMER) == 2
    assert value(text, "citrix_token_expiry_timestamp_seconds") == clock.now + 1000


async def test_concurrent_callers_share_one_token_request(
    base_url, exporter_factory, sim_state: SimulatorState
):
    sim_state.faults.delay_seconds = 0.05
    exporter = await exporter_factory(make_config(base_url))
    tokens = exporter.api_clients[SEED_CUSTOMER].tokens
    results = await asyncio.gather(*(tokens.get() for _ in range(10)))
    assert len(set(results)) == 1
    assert sim_state.count(TOKEN_PATH) == 1


async def test_401_fetches_a_new_token_and_retries_once(
    base_url, exporter_factory, sim_state: SimulatorState
):
    exporter = await exporter_factory(make_config(base_url))
    assert await exporter.poller.run_all_once()
    sim_state.revoke_all_tokens()
    assert await exporter.poller.run_all_once()
    assert sim_state.count(TOKEN_PATH) == 2
    statuses = [r.status for r in sim_state.requests if r.path.endswith(CURRENT_PATH)]
    assert statuses == [200, 401, 200]


async def test_invalid_client_backs_off_instead_of_storming(
    base_url, exporter_factory, sim_state: SimulatorState
):
    config = make_config(
        base_url,
        [{"customer_id": SEED_CUSTOMER, "client_id": "seed-client", "client_secret": "wrong-one"}],
    )
    clock = Clock(1_700_000_000.0)
    exporter = await exporter_factory(config, clock=clock)
    for _ in range(5):
        assert not await exporter.poller.run_all_once()
    assert sim_state.count(TOKEN_PATH) == 1  # later polls are inside the backoff window
    job = exporter.poller.jobs[0]
    assert "invalid_client" in (job.status.last_error or "")
    clock.now += 1.5  # past the first backoff (base_delay 1 s)
    assert not await exporter.poller.run_all_once()
    assert sim_state.count(TOKEN_PATH) == 2
    text = generate_latest(exporter.registry).decode()
    assert value(text, "citrix_token_request_failures_total") == 2
    assert value(text, "citrix_up", collector="licensing") == 0


async def test_429_with_retry_after_is_honoured(
    base_url, exporter_factory, sleeps, sim_state: SimulatorState
):
    sim_state.faults.throttle_next = 2
    sim_state.faults.retry_after = "7"
    exporter = await exporter_factory(make_config(base_url))
    assert await exporter.poller.run_all_once()
    assert sleeps.delays == [7.0, 7.0]
    text = generate_latest(exporter.registry).decode()
    assert api_requests(text, "429") == 2
    assert api_requests(text, "200") == 1


async def test_429_without_retry_after_backs_off_exponentially(
    base_url, exporter_factory, sleeps, sim_state: SimulatorState
):
    sim_state.faults.throttle_next = 2
    exporter = await exporter_factory(make_config(base_url))
    assert await exporter.poller.run_all_once()
    first, second = sleeps.delays
    assert 0.5 <= first <= 1.0  # base 1 s, half jittered
    assert 1.0 <= second <= 2.0


async def test_retry_after_longer_than_a_poll_waits_fails_fast_then_respects_it(
    base_url, exporter_factory, sleeps, sim_state: SimulatorState
):
    sim_state.faults.throttle_next = 1
    sim_state.faults.retry_after = "600"  # beyond max_delay (30 s): do not sleep in the poll
    exporter = await exporter_factory(make_config(base_url))
    assert not await exporter.poller.run_all_once()
    assert not await exporter.poller.run_all_once()  # still inside Retry-After: no request
    assert sleeps.delays == []
    assert sim_state.count(CURRENT_PATH) == 1
    assert "Retry-After" in (exporter.poller.jobs[0].status.last_error or "")


async def test_5xx_retries_are_bounded_then_recover(
    base_url, exporter_factory, sleeps, sim_state: SimulatorState
):
    sim_state.faults.error_next = 5
    exporter = await exporter_factory(make_config(base_url))
    assert not await exporter.poller.run_all_once()  # 3 attempts, all 500
    assert len(sleeps.delays) == 2
    error = exporter.poller.jobs[0].status.last_error or ""
    assert "HTTP 500" in error and "transaction id" in error
    text = generate_latest(exporter.registry).decode()
    assert value(text, "citrix_up", collector="licensing") == 0
    assert await exporter.poller.run_all_once()  # 2 more 500s, then 200
    assert len(sleeps.delays) == 4
    text = generate_latest(exporter.registry).decode()
    assert value(text, "citrix_up", collector="licensing") == 1
    assert api_requests(text, "500") == 5


async def test_secret_and_token_never_logged(
    base_url, exporter_factory, sim_state: SimulatorState, caplog
):
    caplog.set_level(logging.DEBUG)
    sim_state.faults.error_next = 1
    exporter = await exporter_factory(make_config(base_url))
    await exporter.poller.run_all_once()
    sim_state.revoke_all_tokens()
    await exporter.poller.run_all_once()
    bad = make_config(
        base_url,
        [
            {
                "customer_id": SEED_CUSTOMER,
                "client_id": "seed-client",
                "client_secret": "Wr0ng-Secret-XYZ",
            }
        ],
    )
    await (await exporter_factory(bad)).poller.run_all_once()
    tokens = list(sim_state.issued_tokens)
    assert tokens
    everything = (
        caplog.text
        + "".join(str(vars(r)) for r in caplog.records)
        + generate_latest(exporter.registry).decode()
    )
    for secret in (SEED_SECRET, "Wr0ng-Secret-XYZ", *tokens):
        assert secret not in everything


async def test_token_failures_back_off_doubling_up_to_max_delay(
    base_url, exporter_factory, sim_state: SimulatorState
):
    config = make_config(
        base_url,
        [{"customer_id": SEED_CUSTOMER, "client_id": "seed-client", "client_secret": "wrong-one"}],
        retry={"base_delay": 1, "max_delay": 8},
    )
    clock = Clock(1_700_000_000.0)
    exporter = await exporter_factory(config, clock=clock)
    tokens = exporter.api_clients[SEED_CUSTOMER].tokens
    waits = []
    for failures in range(1, 7):
        with pytest.raises(TokenError, match="invalid_client"):
            await tokens.get()
        assert sim_state.count(TOKEN_PATH) == failures
        waits.append(tokens.next_attempt_at - clock.now)
        clock.now = tokens.next_attempt_at - 0.001  # inside the wait: no request
        with pytest.raises(TokenError, match="next token request in 0s"):
            await tokens.get()
        assert sim_state.count(TOKEN_PATH) == failures
        clock.now = tokens.next_attempt_at
    assert waits == [1, 2, 4, 8, 8, 8]


async def test_current_token_is_kept_while_its_refresh_fails(
    base_url, exporter_factory, sim_state: SimulatorState
):
    sim_state.faults.token_lifetime = 1000  # refresh from 800 s, expiry at 1000 s
    clock = Clock(1_700_000_000.0)
    start = clock.now
    exporter = await exporter_factory(make_config(base_url), clock=clock)
    tokens = exporter.api_clients[SEED_CUSTOMER].tokens
    first = await tokens.get()
    sim_state.faults.token_error_next = 100
    clock.now = start + 850  # inside the refresh margin: a refresh is tried and fails
    assert await tokens.get() == first
    assert sim_state.count(TOKEN_PATH) == 2
    clock.now = start + 850.5  # inside the 1 s backoff: the old token, no request
    assert await tokens.get() == first
    assert sim_state.count(TOKEN_PATH) == 2
    clock.now = start + 999  # later refreshes fail too; the old token works until expiry
    assert await tokens.get() == first
    assert sim_state.count(TOKEN_PATH) == 3
    clock.now = start + 1000  # expired: no token to fall back on
    with pytest.raises(TokenError):
        await tokens.get()
    sim_state.faults.token_error_next = 0
    clock.now = tokens.next_attempt_at
    assert await tokens.get() != first
