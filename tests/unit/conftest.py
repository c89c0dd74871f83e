"""Fixtures of the upstream tests: a HostileUpstream, the upstream that misbehaves on cue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer

from tests.support.helpers import url_of
from tests.support.hostile import HostileUpstream


@pytest.fixture
def hostile() -> HostileUpstream:
    return HostileUpstream()


@pytest.fixture
async def hostile_url(
    hostile: HostileUpstream, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> str:
    return url_of(await aiohttp_server(hostile.app()))
