"""Shared fixtures: a simulated Citrix Cloud on a real port and exporters pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from exporter.config import Config
from exporter.runtime import Exporter
from exporter.simulator.app import create_app
from exporter.simulator.scenarios import seed_state
from exporter.simulator.state import SimulatorState
from tests.support.helpers import SleepRecorder, url_of


@pytest.fixture
def sim_state() -> SimulatorState:
    return seed_state()


@pytest.fixture
async def sim_server(
    sim_state: SimulatorState, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> TestServer:
    return await aiohttp_server(create_app(sim_state))


@pytest.fixture
def base_url(sim_server: TestServer) -> str:
    return url_of(sim_server)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def exporter_factory(
    sleeps: SleepRecorder,
) -> AsyncIterator[Callable[..., Awaitable[Exporter]]]:
    """Open exporters for configs; closes them all at the end of the test."""
    opened: list[Exporter] = []

    async def factory(config: Config, **kwargs: Any) -> Exporter:
        kwargs.setdefault("sleep", sleeps)
        kwargs.setdefault("process_metrics", False)
        exporter = Exporter(config, **kwargs)
        await exporter.open()
        opened.append(exporter)
        return exporter

    yield factory
    for exporter in opened:
        await exporter.close()
