"""Fault injection: slow upstream, throttling, server errors, token failures, revocation.

The exporter's value is in how it behaves when Citrix Cloud misbehaves, so the simulator can
misbehave on demand. Faults are counters on :class:`~exporter.simulator.state.Faults`; each
request that is hit consumes one, so "fail twice, then recover" scenarios are one assignment.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from . import errors
from .state import SimulatorState


def apply_revocation(state: SimulatorState) -> None:
    """Honour ``faults.revoke_tokens``: drop every issued token, then clear the flag."""
    if state.faults.revoke_tokens:
        state.revoke_all_tokens()
        state.faults.revoke_tokens = False


async def apply_delay(state: SimulatorState) -> None:
    """Sleep ``faults.delay_seconds`` (a slow upstream) before answering."""
    if state.faults.delay_seconds > 0:
        await asyncio.sleep(state.faults.delay_seconds)


def api_fault(state: SimulatorState) -> web.Response | None:
    """The fault response for an API request, if one is pending: 429 first, then 500."""
    faults = state.faults
    if faults.throttle_next > 0:
        faults.throttle_next -= 1
        return errors.throttled(faults.retry_after)
    if faults.error_next > 0:
        faults.error_next -= 1
        return errors.internal_error()
    return None


def token_fault(state: SimulatorState) -> web.Response | None:
    """The fault response for a token request, if one is pending (500)."""
    faults = state.faults
    if faults.token_error_next > 0:
        faults.token_error_next -= 1
        return errors.internal_error()
    return None
