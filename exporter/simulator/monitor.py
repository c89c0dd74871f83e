"""Citrix Monitor Service data of one simulated customer: model, generator, mutations, life.

:class:`MonitorData` holds the rows the ``/monitorodata/`` endpoint serves (one plain dict per
row, keys in the documented field order, enums as integers, ids as lower-case GUID strings,
dates as aware UTC datetimes, formatted by the OData layer). Build one with:

* by hand, with the mutation helpers below;
* with the builders of :mod:`exporter.simulator.monitor_tenants` (``make_tenant`` of any
  size, ``seed_tenant``, ``make_demo_tenant``).

A tenant with a :class:`MonitorLife` *lives*: :meth:`MonitorData.tick` makes sessions start
and end, machines fault or unregister and recover, failures trickle in, deterministically
from the clock (each 15 s step has its own seeded random generator).

Tests arrange scenarios with the mutation helpers (``add_session``, ``end_session``,
``set_registration_state``, ``add_failure``, ``remove_desktop_group``...), which keep the
derived fields (``CurrentSessionCount``, the internal indexes) consistent. Editing the row
dicts in place also works for plain fields.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from .odata import BOOLEAN, DATETIME, GUID, INT32, INT64, STRING, EntitySet, Navigation

if TYPE_CHECKING:
    from .autoscale import Autoscale

Row = dict[str, Any]

DESKTOP_GROUPS = "DesktopGroups"
MACHINES = "Machines"
SESSIONS = "Sessions"
CONNECTION_FAILURE_LOGS = "ConnectionFailureLogs"

_NS = "Citrix.Monitor.Repository.V2"


class ConnectionState(IntEnum):
    UNKNOWN = 0
    CONNECTED = 1
    DISCONNECTED = 2
    TERMINATED = 3
    PREPARING_SESSION = 4
    ACTIVE = 5
    RECONNECTING = 6
    NON_BROKERED_SESSION = 7
    OTHER = 8
    PENDING = 9


class RegistrationState(IntEnum):
    UNKNOWN = 0
    REGISTERED = 1
    UNREGISTERED = 2


class PowerState(IntEnum):
    UNKNOWN = 0
    UNAVAILABLE = 1
    OFF = 2
    ON = 3
    SUSPENDED = 4
    TURNING_ON = 5
    TURNING_OFF = 6
    SUSPENDING = 7
    RESUMING = 8
    UNMANAGED = 9
    NOT_SUPPORTED = 10
    VIRTUAL_MACHINE_NOT_FOUND = 11


class FaultState(IntEnum):
    UNKNOWN = 0
    NONE = 1
    FAILED_TO_START = 2
    STUCK_ON_BOOT = 3
    UNREGISTERED = 4
    MAX_CAPACITY = 5
    VIRTUAL_MACHINE_NOT_FOUND = 6


MODEL: dict[str, EntitySet] = {
    DESKTOP_GROUPS: EntitySet(
        name=DESKTOP_GROUPS,
        type_name=f"{_NS}.DesktopGroup",
        key="Id",
        properties={
            "Id": GUID,
            "Name": STRING,
            "IsRemotePC": BOOLEAN,
            "DesktopKind": INT32,
            "LifecycleState": INT32,
            "SessionSupport": INT32,
            "DeliveryType": INT32,
        },
    ),
    MACHINES: EntitySet(
        name=MACHINES,
        type_name=f"{_NS}.Machine",
        key="Id",
        properties={
            "Id": GUID,
            "Name": STRING,
            "DnsName": STRING,
            "CurrentRegistrationState": INT32,
            "RegistrationStateChangeDate": DATETIME,
            "CurrentPowerState": INT32,
            "CurrentSessionCount": INT32,
            "IsInMaintenanceMode": BOOLEAN,
            "FaultState": INT32,
            "FailureDate": DATETIME,
            "LifecycleState": INT32,
            "CatalogId": GUID,
            "DesktopGroupId": GUID,
            "MachineRole": INT32,
            "IsAssigned": BOOLEAN,
            "AgentVersion": STRING,
            "OSType": STRING,
            "CreatedDate": DATETIME,
            "ModifiedDate": DATETIME,
        },
        navigations={
            "DesktopGroup": Navigation("DesktopGroup", DESKTOP_GROUPS, "DesktopGroupId", "Id")
        },
    ),
    SESSIONS: EntitySet(
        name=SESSIONS,
        type_name=f"{_NS}.Session",
        key="SessionKey",
        properties={
            "SessionKey": GUID,
            "StartDate": DATETIME,
            "EndDate": DATETIME,
            "LogOnDuration": INT64,
            "ConnectionState": INT32,
            "ConnectionStateChangeDate": DATETIME,
            "FailureDate": DATETIME,
            "FailureId": INT64,
            "ExitCode": INT32,
            "LifecycleState": INT32,
            "UserId": INT32,
            "MachineId": GUID,
            "SessionType": INT32,
            "IsAnonymous": BOOLEAN,
            "CreatedDate": DATETIME,
            "ModifiedDate": DATETIME,
        },
        navigations={"Machine": Navigation("Machine", MACHINES, "MachineId", "Id")},
    ),
    CONNECTION_FAILURE_LOGS: EntitySet(
        name=CONNECTION_FAILURE_LOGS,
        type_name=f"{_NS}.ConnectionFailureLog",
        key="Id",
        properties={
            "Id": INT64,
            "SessionKey": GUID,
            "FailureDate": DATETIME,
            "ConnectionFailureEnumValue": INT32,
            "UserId": INT32,
            "MachineId": GUID,
            "CreatedDate": DATETIME,
            "ModifiedDate": DATETIME,
        },
        # Documented navigation: Session. No DesktopGroup (reference: [obs]); the delivery
        # group would be Session/Machine/DesktopGroupId, two navigations, which the
        # simulator does not serve (the exporter counts failures without their group).
        navigations={"Session": Navigation("Session", SESSIONS, "SessionKey", "SessionKey")},
    ),
}
"""The entity sets served under ``/monitorodata/`` and their fields, in output order."""

GROUP_NAMES = (
    "DG-Finance",
    "DG-Call-Center",
    "DG-Engineering",
    "DG-RemotePC",
    "DG-Sales",
    "DG-HR",
    "DG-Support",
    "DG-Marketing",
    "DG-Legal",
    "DG-Operations",
    "DG-Research",
    "DG-Contractors",
    "DG-Executive",
    "DG-Training",
    "DG-Design",
    "DG-Procurement",
)

# (value, weight): mostly Active, some Disconnected, a few others.
_OPEN_STATES = (
    (ConnectionState.ACTIVE, 0.80),
    (ConnectionState.DISCONNECTED, 0.14),
    (ConnectionState.CONNECTED, 0.015),
    (ConnectionState.PREPARING_SESSION, 0.015),
    (ConnectionState.RECONNECTING, 0.01),
    (ConnectionState.PENDING, 0.01),
    (ConnectionState.UNKNOWN, 0.005),
    (ConnectionState.OTHER, 0.005),
)
# SessionFailureCode values seen in practice, most frequent first.
_FAILURE_CODES = (
    (4, 0.22),  # ConnectionTimeout
    (3, 0.14),  # RegistrationTimeout
    (2, 0.12),  # SessionPreparation
    (12, 0.10),  # NoDesktopAvailable
    (100, 0.08),  # NoMachineAvailable
    (101, 0.07),  # MachineNotFunctional
    (9, 0.06),  # MaintenanceMode
    (13, 0.05),  # SessionLimitReached
    (5, 0.04),  # Licensing
    (8, 0.04),  # GeneralFail
    (19, 0.03),  # Refused
    (23, 0.03),  # CommunicationError
    (7, 0.02),  # Other
)
_AGENT_VERSIONS = ("2402.0.100.629", "2311.0.0.42", "2203.0.1000.23", "1912.0.4000.4227")
_MULTI_OS = ("Windows Server 2022", "Windows Server 2019")
_SINGLE_OS = ("Windows 11", "Windows 10")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _to_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _whole_ms(moment: datetime) -> datetime:
    moment = _to_utc(moment)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _guid(rng: random.Random) -> str:
    """A version-4-looking GUID from ``rng`` (lower case, as the service prints them)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def _weighted(options: Sequence[tuple[int, float]]) -> tuple[list[int], list[float]]:
    values = [int(v) for v, _ in options]
    cumulative: list[float] = []
    total = 0.0
    for _, weight in options:
        total += weight
        cumulative.append(total)
    return values, [c / total for c in cumulative]


def _pick(rng: random.Random, table: tuple[list[int], list[float]]) -> int:
    values, cumulative = table
    r = rng.random()
    for value, edge in zip(values, cumulative, strict=True):
        if r < edge:
            return value
    return values[-1]


_OPEN_TABLE = _weighted(_OPEN_STATES)
# Power states of unregistered machines: mostly off or on (a fault), some transitions.
_UNREGISTERED_POWER_TABLE = _weighted(
    (
        (PowerState.OFF, 0.4),
        (PowerState.ON, 0.35),
        (PowerState.TURNING_ON, 0.1),
        (PowerState.TURNING_OFF, 0.05),
        (PowerState.UNAVAILABLE, 0.05),
        (PowerState.UNKNOWN, 0.05),
    )
)
_FAILURE_TABLE = _weighted(_FAILURE_CODES)


def group_name(index: int) -> str:
    """Name of the ``index``-th generated delivery group: ``DG-Finance``, ``DG-Call-Center``..."""
    return GROUP_NAMES[index] if index < len(GROUP_NAMES) else f"DG-Pool-{index + 1:02d}"


def _group_profile(name: str, index: int) -> tuple[bool, int, int, int]:
    """(IsRemotePC, DesktopKind, SessionSupport, DeliveryType) of a generated group."""
    if name == "DG-RemotePC":
        return True, 0, 1, 0
    if name == "DG-Engineering" or index % 3 == 2:
        return False, 0, 1, 0  # private single-session VDI desktops
    if name == "DG-Call-Center" or index % 2 == 1:
        return False, 1, 2, 1  # shared multi-session, applications only
    return False, 1, 2, 2  # shared multi-session, desktops and applications


def _machine_prefix(name: str) -> str:
    words = [w for w in name.split("-")[1:] if w] or [name]
    return "".join(w[:3] for w in words).upper()


@dataclass
class MonitorLife:
    """How a living tenant moves on :meth:`MonitorData.tick` (all per simulated time)."""

    step_seconds: int = 15
    target_sessions: int = 100
    amplitude: float = 0.2
    """Open sessions swing by this fraction of ``target_sessions``..."""
    period_minutes: float = 120.0
    """...over this period."""
    mean_session_minutes: float = 60.0
    failures_per_hour: float = 12.0
    machine_events_per_hour: float = 4.0
    recovery_minutes: tuple[float, float] = (2.0, 15.0)
    keep_closed_hours: float = 24.0
    keep_failures_days: float = 7.0
    max_catchup_steps: int = 240


class MonitorData:
    """The Monitor rows of one customer, with helpers that keep them consistent.

    The four lists (``desktop_groups``, ``machines``, ``sessions``, ``connection_failures``)
    are what the OData endpoint serves, in list order. ``clock`` is the
    time the data is current at; ``life`` (None: static) drives :meth:`tick`.
    """

    def __init__(
        self, *, seed: int = 0, clock: datetime | None = None, life: MonitorLife | None = None
    ) -> None:
        self.desktop_groups: list[Row] = []
        self.machines: list[Row] = []
        self.sessions: list[Row] = []
        self.connection_failures: list[Row] = []
        self.seed = seed
        # False: a tenant without DaaS; every Monitor query answers 404 (not entitled).
        self.entitled = True
        # An autoscaled delivery group whose machines follow the clock (autoscale.py).
        self.autoscale: Autoscale | None = None
        self.clock = None if clock is None else _to_utc(clock)
        self.life = life
        self.next_failure_id = 1
        self._machines_by_id: dict[str, Row] = {}
        self._sessions_by_key: dict[str, Row] = {}
        self._open: dict[str, Row] = {}
        self._recoveries: dict[str, datetime] = {}
        self._rng = random.Random(seed)

    def __repr__(self) -> str:
        return (
            f"MonitorData(groups={len(self.desktop_groups)}, machines={len(self.machines)}, "
            f"sessions={len(self.sessions)} ({len(self._open)} open), "
            f"failures={len(self.connection_failures)})"
        )

    # -- OData source ----------------------------------------------------------------------

    def rows(self, entity_set: str) -> Sequence[Row]:
        """The rows of ``entity_set`` (the :class:`~exporter.simulator.odata.DataSource` API)."""
        return {
            DESKTOP_GROUPS: self.desktop_groups,
            MACHINES: self.machines,
            SESSIONS: self.sessions,
            CONNECTION_FAILURE_LOGS: self.connection_failures,
        }[entity_set]

    # -- lookups -----------------------------------------------------------------------------

    def reindex(self) -> None:
        """Rebuild the internal indexes (after editing the lists by hand)."""
        self._machines_by_id = {m["Id"]: m for m in self.machines}
        self._sessions_by_key = {s["SessionKey"]: s for s in self.sessions}
        self._open = {s["SessionKey"]: s for s in self.sessions if s["EndDate"] is None}
        counts: dict[str, int] = {}
        for s in self._open.values():
            counts[s["MachineId"]] = counts.get(s["MachineId"], 0) + 1
        for m in self.machines:
            m["CurrentSessionCount"] = counts.get(m["Id"], 0)

    def machine(self, machine_id: str) -> Row:
        """The machine row with ``Id`` ``machine_id`` (KeyError if none)."""
        key = machine_id.lower()
        found = self._machines_by_id.get(key)
        if found is None or found["Id"] != key:
            self.reindex()
            found = self._machines_by_id.get(key)
        if found is None:
            raise KeyError(f"no machine {machine_id}")
        return found

    def session(self, session_key: str) -> Row:
        """The session row with ``SessionKey`` ``session_key`` (KeyError if none)."""
        key = session_key.lower()
        found = self._sessions_by_key.get(key)
        if found is None:
            self.reindex()
            found = self._sessions_by_key.get(key)
        if found is None:
            raise KeyError(f"no session {session_key}")
        return found

    def desktop_group(self, name_or_id: str) -> Row:
        """The delivery group with that ``Name`` or ``Id`` (KeyError if none)."""
        for group in self.desktop_groups:
            if group["Name"] == name_or_id or group["Id"] == name_or_id.lower():
                return group
        raise KeyError(f"no delivery group {name_or_id}")

    def open_sessions(self) -> list[Row]:
        """Sessions without an ``EndDate``."""
        return [s for s in self.sessions if s["EndDate"] is None]

    def machines_in(self, group: str) -> list[Row]:
        """Machines of the delivery group named (or with id) ``group``."""
        group_id = self.desktop_group(group)["Id"]
        return [m for m in self.machines if m["DesktopGroupId"] == group_id]

    def _at(self, at: datetime | None) -> datetime:
        if at is not None:
            return _to_utc(at)
        return self.clock if self.clock is not None else _whole_ms(_utc_now())

    # -- mutations -----------------------------------------------------------------------------

    def add_desktop_group(
        self,
        name: str,
        *,
        group_id: str | None = None,
        is_remote_pc: bool = False,
        desktop_kind: int = 1,
        session_support: int = 2,
        delivery_type: int = 2,
        lifecycle_state: int = 0,
    ) -> Row:
        """Append a delivery group (random id unless given) and return its row."""
        row: Row = {
            "Id": (group_id or _guid(self._rng)).lower(),
            "Name": name,
            "IsRemotePC": is_remote_pc,
            "DesktopKind": desktop_kind,
            "LifecycleState": lifecycle_state,
            "SessionSupport": session_support,
            "DeliveryType": delivery_type,
        }
        self.desktop_groups.append(row)
        return row

    def add_machine(
        self,
        desktop_group_id: str | None,
        *,
        name: str | None = None,
        machine_id: str | None = None,
        registration_state: int = RegistrationState.REGISTERED,
        power_state: int = PowerState.ON,
        maintenance: bool = False,
        fault_state: int | None = None,
        catalog_id: str | None = None,
        is_assigned: bool = False,
        agent_version: str = _AGENT_VERSIONS[0],
        os_type: str = _MULTI_OS[0],
        at: datetime | None = None,
    ) -> Row:
        """Append a machine; ``fault_state`` defaults from the registration and power states."""
        when = self._at(at)
        mid = (machine_id or _guid(self._rng)).lower()
        if name is None:
            name = f"CORP\\VDA-{len(self.machines) + 1:04d}"
        if fault_state is None:
            fault_state = _default_fault(int(registration_state), int(power_state))
        row: Row = {
            "Id": mid,
            "Name": name,
            "DnsName": f"{name.rsplit(chr(92), 1)[-1].lower()}.corp.example.com",
            "CurrentRegistrationState": int(registration_state),
            "RegistrationStateChangeDate": when,
            "CurrentPowerState": int(power_state),
            "CurrentSessionCount": 0,
            "IsInMaintenanceMode": maintenance,
            "FaultState": int(fault_state),
            "FailureDate": when
            if fault_state not in (FaultState.UNKNOWN, FaultState.NONE)
            else None,
            "LifecycleState": 0,
            "CatalogId": (catalog_id or _guid(self._rng)).lower(),
            "DesktopGroupId": None if desktop_group_id is None else desktop_group_id.lower(),
            "MachineRole": 0,
            "IsAssigned": is_assigned,
            "AgentVersion": agent_version,
            "OSType": os_type,
            "CreatedDate": when,
            "ModifiedDate": when,
        }
        self.machines.append(row)
        self._machines_by_id[mid] = row
        return row

    def add_session(
        self,
        machine_id: str | None,
        *,
        session_key: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        connection_state: int | None = None,
        logon_ms: int | None = 20_000,
        user_id: int | None = 1,
        session_type: int = 0,
        failure_id: int | None = None,
        exit_code: int | None = None,
    ) -> Row:
        """Append a session on ``machine_id`` (open unless ``end``); returns its row.

        ``connection_state`` defaults to Active (5) when open, Terminated (3) when ended.
        """
        started = self._at(start)
        ended = None if end is None else _to_utc(end)
        if connection_state is None:
            connection_state = ConnectionState.TERMINATED if ended else ConnectionState.ACTIVE
        machine = None if machine_id is None else self.machine(machine_id)
        key = (session_key or _guid(self._rng)).lower()
        if key in self._sessions_by_key:
            raise ValueError(f"session {key} exists already")
        changed = ended or started
        row: Row = {
            "SessionKey": key,
            "StartDate": started,
            "EndDate": ended,
            "LogOnDuration": logon_ms,
            "ConnectionState": int(connection_state),
            "ConnectionStateChangeDate": changed,
            "FailureDate": started if failure_id is not None else None,
            "FailureId": failure_id,
            "ExitCode": exit_code if exit_code is not None else (0 if ended else None),
            "LifecycleState": 0,
            "UserId": user_id,
            "MachineId": None if machine is None else machine["Id"],
            "SessionType": session_type,
            "IsAnonymous": False,
            "CreatedDate": started,
            "ModifiedDate": changed,
        }
        self.sessions.append(row)
        self._sessions_by_key[key] = row
        if ended is None:
            self._open[key] = row
            if machine is not None:
                machine["CurrentSessionCount"] += 1
        return row

    def end_session(
        self, session_key: str, *, at: datetime | None = None, exit_code: int = 0
    ) -> Row:
        """Log the session off: ``EndDate``, Terminated, machine session count decremented."""
        row = self.session(session_key)
        if row["EndDate"] is not None:
            return row
        when = self._at(at)
        row["EndDate"] = when
        row["ConnectionState"] = int(ConnectionState.TERMINATED)
        row["ConnectionStateChangeDate"] = when
        row["ExitCode"] = exit_code
        row["ModifiedDate"] = when
        self._open.pop(row["SessionKey"], None)
        machine = self._machines_by_id.get(row["MachineId"]) if row["MachineId"] else None
        if machine is not None and machine["CurrentSessionCount"] > 0:
            machine["CurrentSessionCount"] -= 1
        return row

    def set_connection_state(
        self, session_key: str, state: int, *, at: datetime | None = None
    ) -> Row:
        """Change an open session's ``ConnectionState`` (and its change date)."""
        row = self.session(session_key)
        when = self._at(at)
        row["ConnectionState"] = int(state)
        row["ConnectionStateChangeDate"] = when
        row["ModifiedDate"] = when
        return row

    def set_registration_state(
        self,
        machine_id: str,
        state: int,
        *,
        at: datetime | None = None,
        power_state: int | None = None,
        fault_state: int | None = None,
    ) -> Row:
        """Register/unregister a machine; ``FaultState`` follows unless given."""
        row = self.machine(machine_id)
        when = self._at(at)
        if power_state is not None:
            row["CurrentPowerState"] = int(power_state)
        if fault_state is None:
            fault_state = _default_fault(int(state), row["CurrentPowerState"])
        row["CurrentRegistrationState"] = int(state)
        row["RegistrationStateChangeDate"] = when
        if fault_state != row["FaultState"] and fault_state not in (0, 1):
            row["FailureDate"] = when
        row["FaultState"] = int(fault_state)
        row["ModifiedDate"] = when
        return row

    def set_maintenance(self, machine_id: str, on: bool, *, at: datetime | None = None) -> Row:
        """Put a machine in (or out of) maintenance mode."""
        row = self.machine(machine_id)
        row["IsInMaintenanceMode"] = on
        row["ModifiedDate"] = self._at(at)
        return row

    def add_failure(
        self,
        *,
        failure_date: datetime,
        failure_id: int | None = None,
        value: int = 4,
        machine_id: str | None = None,
        session_key: str | None = None,
        user_id: int | None = 1,
        created: datetime | None = None,
    ) -> Row:
        """Append a ConnectionFailureLogs row (``Id`` auto-increments unless given)."""
        if failure_id is None:
            failure_id = self.next_failure_id
        self.next_failure_id = max(self.next_failure_id, failure_id + 1)
        when = _to_utc(failure_date)
        stamp = _to_utc(created) if created is not None else when
        row: Row = {
            "Id": failure_id,
            "SessionKey": (session_key or _guid(self._rng)).lower(),
            "FailureDate": when,
            "ConnectionFailureEnumValue": int(value),
            "UserId": user_id,
            "MachineId": None if machine_id is None else machine_id.lower(),
            "CreatedDate": stamp,
            "ModifiedDate": stamp,
        }
        self.connection_failures.append(row)
        return row

    def remove_desktop_group(self, group: str, *, keep_machines: bool = False) -> None:
        """Delete a delivery group (by name or id).

        Its machines go away with their sessions, or, with
        ``keep_machines``, stay with ``DesktopGroupId`` null. Failure logs are history: kept.
        """
        row = self.desktop_group(group)
        group_id = row["Id"]
        self.desktop_groups = [g for g in self.desktop_groups if g is not row]
        if keep_machines:
            for machine in self.machines:
                if machine["DesktopGroupId"] == group_id:
                    machine["DesktopGroupId"] = None
            return
        gone = {m["Id"] for m in self.machines if m["DesktopGroupId"] == group_id}
        self.machines = [m for m in self.machines if m["Id"] not in gone]
        self.sessions = [s for s in self.sessions if s["MachineId"] not in gone]
        for machine_id in gone:
            self._recoveries.pop(machine_id, None)
        self.reindex()

    # -- life ----------------------------------------------------------------------------------

    def tick(self, now: datetime) -> int:
        """Advance a living tenant to ``now`` (`_advance`), then its autoscaled group."""
        steps = self._advance(now)
        if self.autoscale is not None:
            self.autoscale.follow(self, _to_utc(now))
        return steps

    def _advance(self, now: datetime) -> int:
        """Advance a living tenant to ``now``; returns the number of steps simulated.

        Time is cut in ``life.step_seconds`` steps aligned on the epoch; step ``k`` uses its
        own generator seeded from (seed, k), so the state reached depends only on the steps
        simulated, not on how often ``tick`` is called. After a long pause only the last
        ``max_catchup_steps`` steps are simulated. A static tenant (``life`` None) only has
        its clock moved.
        """
        now = _to_utc(now)
        life = self.life
        if life is None or self.clock is None:
            if self.clock is None or now > self.clock:
                self.clock = now
            return 0
        step = life.step_seconds
        last = math.floor(self.clock.timestamp() / step)
        current = math.floor(now.timestamp() / step)
        if current <= last:
            return 0
        first = max(last + 1, current - life.max_catchup_steps + 1)
        for k in range(first, current + 1):
            self._step(life, k, datetime.fromtimestamp(k * step, UTC))
        self.clock = now
        return current - first + 1

    def _eligible(self, machine: Row, groups: dict[str, Row]) -> bool:
        if machine["CurrentRegistrationState"] != RegistrationState.REGISTERED:
            return False
        if machine["IsInMaintenanceMode"]:
            return False
        group = groups.get(machine["DesktopGroupId"] or "")
        single = group is not None and group["SessionSupport"] == 1
        return not single or machine["CurrentSessionCount"] == 0

    def _step(self, life: MonitorLife, k: int, t: datetime) -> None:
        """One step of life; its phases draw from the step's generator in this order."""
        rng = random.Random(self.seed * 1_000_003 + k)
        self._recover(t)
        self._machine_event(rng, life, t)
        self._end_sessions(rng, life, t)
        self._change_states(rng, t)
        self._start_sessions(rng, life, t)
        self._trickle_failures(rng, life, t)
        if k % 40 == 0:
            self._forget(life, t)

    def _recover(self, t: datetime) -> None:
        """Machines due to recover register again."""
        for machine_id, due in list(self._recoveries.items()):
            if due <= t:
                del self._recoveries[machine_id]
                if machine_id in self._machines_by_id:
                    self.set_registration_state(
                        machine_id,
                        RegistrationState.REGISTERED,
                        at=t,
                        power_state=PowerState.ON,
                        fault_state=FaultState.NONE,
                    )

    def _machine_event(self, rng: random.Random, life: MonitorLife, t: datetime) -> None:
        """Now and then a machine unregisters or fails; its sessions are lost."""
        step = life.step_seconds
        if not self.machines or rng.random() >= life.machine_events_per_hour * step / 3600:
            return
        candidates = [
            m
            for m in self.machines
            if m["CurrentRegistrationState"] == RegistrationState.REGISTERED
            and m["Id"] not in self._recoveries
            and (self.autoscale is None or m["DesktopGroupId"] != self.autoscale.group_id)
        ]
        if not candidates:
            return
        victim = rng.choice(candidates)
        fault = rng.choice(
            (FaultState.UNREGISTERED, FaultState.UNREGISTERED, FaultState.STUCK_ON_BOOT)
        )
        for s in [s for s in self._open.values() if s["MachineId"] == victim["Id"]]:
            self.end_session(s["SessionKey"], at=t, exit_code=1)
        self.set_registration_state(
            victim["Id"], RegistrationState.UNREGISTERED, at=t, fault_state=fault
        )
        low, high = life.recovery_minutes
        self._recoveries[victim["Id"]] = t + timedelta(minutes=rng.uniform(low, high))

    def _end_sessions(self, rng: random.Random, life: MonitorLife, t: datetime) -> None:
        step = life.step_seconds
        open_now = list(self._open.values())
        rate = step / (life.mean_session_minutes * 60)
        ends = _poisson_like(rng, len(open_now) * rate)
        for s in rng.sample(open_now, min(ends, len(open_now))):
            self.end_session(
                s["SessionKey"], at=t - timedelta(milliseconds=rng.randrange(step * 1000))
            )

    def _change_states(self, rng: random.Random, t: datetime) -> None:
        """Preparing sessions become active; a few disconnect or reconnect."""
        for s in list(self._open.values()):
            if s["ConnectionState"] == ConnectionState.PREPARING_SESSION:
                s["ConnectionState"] = int(ConnectionState.ACTIVE)
                s["LogOnDuration"] = 5_000 + int(115_000 * rng.random() ** 2.2)
                s["ConnectionStateChangeDate"] = s["ModifiedDate"] = t
        open_now = list(self._open.values())
        for s in rng.sample(
            open_now, min(len(open_now), _poisson_like(rng, len(open_now) * 0.005))
        ):
            flipped = (
                ConnectionState.DISCONNECTED
                if s["ConnectionState"] == ConnectionState.ACTIVE
                else ConnectionState.ACTIVE
            )
            self.set_connection_state(s["SessionKey"], flipped, at=t)

    def _start_sessions(self, rng: random.Random, life: MonitorLife, t: datetime) -> None:
        """Sessions start, pulled towards a slowly swinging target."""
        step = life.step_seconds
        minutes = t.timestamp() / 60
        phase = (self.seed % 17) / 17 * 2 * math.pi
        target = life.target_sessions * (
            1 + life.amplitude * math.sin(2 * math.pi * minutes / life.period_minutes + phase)
        )
        rate = step / (life.mean_session_minutes * 60)
        expected = target * rate + max(0.0, target - len(self._open)) * 0.1
        starts = _poisson_like(rng, expected)
        if not starts:
            return
        groups = {g["Id"]: g for g in self.desktop_groups}
        for _ in range(starts):
            eligible = [m for m in self.machines if self._eligible(m, groups)]
            if not eligible:
                break
            machine = rng.choice(eligible)
            preparing = rng.random() < 0.1
            group = groups.get(machine["DesktopGroupId"] or "")
            multi = group is not None and group["SessionSupport"] == 2
            self.add_session(
                machine["Id"],
                session_key=_guid(rng),
                start=t - timedelta(milliseconds=rng.randrange(step * 1000)),
                connection_state=(
                    ConnectionState.PREPARING_SESSION if preparing else ConnectionState.ACTIVE
                ),
                logon_ms=None if preparing else 5_000 + int(115_000 * rng.random() ** 2.2),
                user_id=rng.randrange(1, max(2, life.target_sessions * 2)),
                session_type=1 if multi and rng.random() < 0.6 else 0,
            )

    def _trickle_failures(self, rng: random.Random, life: MonitorLife, t: datetime) -> None:
        step = life.step_seconds
        for _ in range(_poisson_like(rng, life.failures_per_hour * step / 3600)):
            when = t - timedelta(milliseconds=rng.randrange(step * 1000))
            where = rng.choice(self.machines)["Id"] if self.machines else None
            self._add_failed_launch(rng, when, where, _pick(rng, _FAILURE_TABLE))

    def _forget(self, life: MonitorLife, t: datetime) -> None:
        closed_horizon = t - timedelta(hours=life.keep_closed_hours)
        kept = [s for s in self.sessions if s["EndDate"] is None or s["EndDate"] >= closed_horizon]
        if len(kept) != len(self.sessions):
            self.sessions = kept
            self._sessions_by_key = {s["SessionKey"]: s for s in kept}
        failure_horizon = t - timedelta(days=life.keep_failures_days)
        self.connection_failures = [
            f for f in self.connection_failures if f["FailureDate"] >= failure_horizon
        ]

    def _add_failed_launch(
        self, rng: random.Random, when: datetime, machine_id: str | None, value: int
    ) -> None:
        """A failure log row plus the failed (already ended) session it belongs to."""
        key = _guid(rng)
        failure = self.add_failure(
            failure_date=when,
            value=value,
            machine_id=machine_id if value not in (12, 100) else None,
            session_key=key,
            user_id=rng.randrange(1, 500),
            created=when + timedelta(milliseconds=rng.randrange(500, 5000)),
        )
        self.add_session(
            failure["MachineId"],
            session_key=key,
            start=when,
            end=when + timedelta(milliseconds=rng.randrange(100, 3000)),
            logon_ms=None,
            user_id=failure["UserId"],
            failure_id=failure["Id"],
            exit_code=1,
        )


def _default_fault(registration: int, power: int) -> int:
    if registration == RegistrationState.REGISTERED:
        return int(FaultState.NONE)
    if registration == RegistrationState.UNKNOWN:
        return int(FaultState.UNKNOWN)
    if power in (PowerState.ON, PowerState.TURNING_ON):
        return int(FaultState.UNREGISTERED)
    return int(FaultState.NONE)  # powered off on purpose: not a fault


def _poisson_like(rng: random.Random, expected: float) -> int:
    """Integer with mean ``expected``: its floor, plus one with the fractional probability."""
    if expected <= 0:
        return 0
    whole = int(expected)
    return whole + (1 if rng.random() < expected - whole else 0)
