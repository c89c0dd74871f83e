"""A fake Citrix Cloud (token service + Licensing API) served by aiohttp under one base URL.

Used as the upstream in tests and as the engine of the exporter's ``--demo`` mode. Build a
state (:func:`seed_state`, :func:`demo_state`, or by hand), then :func:`create_app`.
"""

from .app import create_app
from .scenarios import demo_state, seed_state
from .state import (
    STATE_KEY,
    Faults,
    HistoryMonth,
    LicenseScenario,
    RecordedRequest,
    SimCustomer,
    SimulatorState,
    TokenInfo,
)

__all__ = [
    "STATE_KEY",
    "Faults",
    "HistoryMonth",
    "LicenseScenario",
    "RecordedRequest",
    "SimCustomer",
    "SimulatorState",
    "TokenInfo",
    "create_app",
    "demo_state",
    "seed_state",
]
