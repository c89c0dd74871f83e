"""Simulated Citrix Cloud scenarios for the end-to-end tests, and the config that points an
exporter process at a simulator running in the test's event loop.

The exporter only counts connection failures and logons that happen after it started, so a
test that wants the failure counter to move and the logon histogram to exist adds them while
the exporter runs: :func:`add_logons`, :func:`add_failures`, or :func:`trickle` in a task.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from exporter.config import CollectorsConfig, Config
from exporter.demo import demo_config
from exporter.simulator.monitor import (
    ConnectionState,
    MonitorData,
    PowerState,
    RegistrationState,
)
from exporter.simulator.state import LicenseScenario, SimCustomer, SimulatorState

# SessionFailureCode values and the exporter's failure_reason label for them.
CONNECTION_TIMEOUT = 4  # connection_timeout
NO_MACHINE_AVAILABLE = 100  # no_machine_available


def write_exporter_config(
    path: Path,
    base_url: str,
    state: SimulatorState,
    interval: str = "2s",
    collectors: tuple[str, ...] = ("licensing", "monitor"),
) -> Path:
    """An exporter config polling every customer of `state` at `base_url` every `interval`,
    with exactly `collectors` enabled (whatever the defaults become)."""
    config: dict[str, Any] = {
        "poll": {"interval": interval, "timeout": "5s"},
        "customers": [
            {
                "customer_id": customer.customer_id,
                "client_id": customer.client_id,
                "client_secret": customer.client_secret,
                "api_url": base_url,
                "collectors": {
                    name: {"enabled": name in collectors} for name in CollectorsConfig.model_fields
                },
            }
            for customer in state.customers.values()
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    Config.model_validate(yaml.safe_load(path.read_text()))
    return path


def write_demo_config(
    path: Path, base_url: str, state: SimulatorState, interval: str = "2s"
) -> Path:
    """Exactly the config `--demo` uses for `state` at `base_url` (every collector it enables,
    pointed where it points them), except that everything polls every `interval`."""
    config = demo_config(base_url, state)
    data = _plain(config.model_dump(exclude={"web"}))
    data["poll"]["interval"] = interval
    for customer in data["customers"]:
        for collector in customer["collectors"].values():
            if collector.get("interval") is not None:
                collector["interval"] = interval
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    Config.model_validate(yaml.safe_load(path.read_text()))
    return path


def _plain(value: Any) -> Any:
    """A model_dump() with secrets revealed, for writing a config file back."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    assert value is None or isinstance(value, str | int | float | bool), type(value)
    return value


def _whole_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# -- Monitor tenants built by hand: exact counts, so alert values are exact -----------------------


@dataclass(frozen=True)
class Group:
    """A delivery group: that many registered and unregistered (powered on: a fault) machines,
    and `sessions` open sessions spread over the registered ones."""

    name: str
    registered: int
    unregistered: int = 0
    sessions: int = 0


def tenant(now: datetime, *groups: Group, seed: int = 0) -> MonitorData:
    """A static (not living) Monitor tenant with exactly these groups, current at `now`."""
    now = _whole_ms(now)
    data = MonitorData(seed=seed, clock=now)
    since = now - timedelta(days=3)
    for group in groups:
        group_id = data.add_desktop_group(group.name)["Id"]
        registered = [data.add_machine(group_id, at=since)["Id"] for _ in range(group.registered)]
        for _ in range(group.unregistered):
            data.add_machine(
                group_id,
                at=now - timedelta(minutes=20),
                registration_state=RegistrationState.UNREGISTERED,
                power_state=PowerState.ON,
            )
        for i in range(group.sessions):
            data.add_session(
                registered[i % len(registered)],
                start=now - timedelta(minutes=10 + i),
                logon_ms=10_000 + 1_000 * i,
                connection_state=ConnectionState.DISCONNECTED if i % 4 == 3 else None,
            )
    return data


# -- activity while the exporter runs --------------------------------------------------------------


def add_logons(data: MonitorData, now: datetime, count: int = 1) -> None:
    """`count` sessions starting at `now` (logon 8-70 s) on registered machines of a group."""
    machines = [
        m
        for m in data.machines
        if m["CurrentRegistrationState"] == RegistrationState.REGISTERED and m["DesktopGroupId"]
    ]
    if not machines:
        return
    start = _whole_ms(now)
    for i in range(count):
        n = len(data.sessions) + i
        data.add_session(
            machines[n % len(machines)]["Id"],
            start=start,
            logon_ms=(8_000, 25_000, 70_000)[n % 3],
            user_id=1000 + n,
        )


def add_failures(data: MonitorData, now: datetime, reasons: dict[int, int]) -> None:
    """ConnectionFailureLogs rows at `now`: `reasons` maps SessionFailureCode -> how many."""
    when = _whole_ms(now)
    for value, count in reasons.items():
        for _ in range(count):
            data.add_failure(failure_date=when, value=value)


async def trickle(state: SimulatorState, every: float = 1.0) -> None:
    """Until cancelled: every `every` seconds, one logon and one connection failure in each
    customer's tenant (that has machines), so rates and the logon histogram have data."""
    while True:
        now = state.now()
        for customer in state.customers.values():
            if customer.monitor.machines:
                add_logons(customer.monitor, now)
                add_failures(customer.monitor, now, {CONNECTION_TIMEOUT: 1})
        await asyncio.sleep(every)


# -- the alerting scenario -------------------------------------------------------------------------

HEALTHY = "healthy-co"
OVERAGE = "overage-co"
EXPIRING = "expiring-co"
DAAS = "daas-co"
PRODUCT, EDITION = "XenDesktop", "XAXDFull"
OVERAGE_LICENSES = 12  # 112 used of 100
EXPIRING_LICENSES = 50
EXPIRY_IN = timedelta(days=5, hours=12)  # critical (< 7 days); "5.5 days" for the whole test
TROUBLED_GROUP = "DG-Call-Center"  # 3 of 10 machines unregistered: 30 %
QUIET_GROUPS = ("DG-Finance", "DG-Boundary")  # 1 of 20 (5 %), 1 of 10 (exactly 10 %: quiet)
UNREGISTERED_SHARE = "30%"


def alert_scenario(now: datetime | None = None) -> SimulatorState:
    """Four customers, each with one problem or none (no drift, static tenants):

    * `healthy-co`: 180 of 500 licenses free, expiry in 200 days, every machine registered;
    * `overage-co`: 112 used of 100 available (12 in overage, 0 remaining), no DaaS data;
    * `expiring-co`: 50 of its 250 licenses expire in 5.5 days, no DaaS data;
    * `daas-co`: healthy licensing; DG-Call-Center 3 of 10 machines unregistered (30 %),
      DG-Finance 1 of 20 (5 %), DG-Boundary 1 of 10 (exactly 10 %, the threshold is > 10 %).

    Connection failures are added by the test once the exporter runs (:func:`add_failures`).
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)

    def licensing(available: int, used: int, expiry: timedelta, expiring: int) -> LicenseScenario:
        return LicenseScenario(
            product_name=PRODUCT,
            product_edition=EDITION,
            available=available,
            user_used=used,
            device_used=used + 3,  # the exporter's `used` is the smaller of the two
            next_expiry=now + expiry,
            expiring_count=expiring,
        )

    customers = [
        SimCustomer(
            HEALTHY,
            f"{HEALTHY}-client",
            f"{HEALTHY}-secret",
            licensing(500, 320, timedelta(days=200), 500),
            tenant(now, Group("DG-Office", registered=8, sessions=6), seed=1),
        ),
        SimCustomer(
            OVERAGE,
            f"{OVERAGE}-client",
            f"{OVERAGE}-secret",
            licensing(100, 100 + OVERAGE_LICENSES, timedelta(days=300), 100),
        ),
        SimCustomer(
            EXPIRING,
            f"{EXPIRING}-client",
            f"{EXPIRING}-secret",
            licensing(250, 150, EXPIRY_IN, EXPIRING_LICENSES),
        ),
        SimCustomer(
            DAAS,
            f"{DAAS}-client",
            f"{DAAS}-secret",
            licensing(300, 120, timedelta(days=365), 300),
            tenant(
                now,
                Group(QUIET_GROUPS[0], registered=19, unregistered=1, sessions=12),
                Group(TROUBLED_GROUP, registered=7, unregistered=3, sessions=5),
                Group(QUIET_GROUPS[1], registered=9, unregistered=1, sessions=3),
                seed=2,
            ),
        ),
    ]
    return SimulatorState(customers={c.customer_id: c for c in customers})
