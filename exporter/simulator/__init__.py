"""A fake Citrix Cloud (token service, Licensing, Monitor OData) served by aiohttp.

Used as the upstream in tests and as the engine of the exporter's ``--demo`` mode. Build a
state (:func:`seed_state`, :func:`demo_state`, or by hand), then :func:`create_app`.
"""

from .app import create_app
from .monitor import MonitorData, MonitorLife
from .monitor_tenants import make_demo_tenant, make_tenant, seed_tenant
from .observed_data import ObservedData
from .scenarios import demo_state, observed_state, seed_state
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
    "MonitorData",
    "MonitorLife",
    "ObservedData",
    "RecordedRequest",
    "SimCustomer",
    "SimulatorState",
    "TokenInfo",
    "create_app",
    "demo_state",
    "make_demo_tenant",
    "make_tenant",
    "observed_state",
    "seed_state",
    "seed_tenant",
]
