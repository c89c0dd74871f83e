"""Ready-made Monitor tenants: generated at any size, the seed customer's, living demo ones.

:func:`make_tenant` builds 100,000 open sessions on 5,000 machines in about 1.5 s and ~110 MB
(one dict per row, shared datetime objects); the same arguments give the same rows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from .monitor import (
    _AGENT_VERSIONS,
    _FAILURE_TABLE,
    _MULTI_OS,
    _OPEN_TABLE,
    _SINGLE_OS,
    _UNREGISTERED_POWER_TABLE,
    ConnectionState,
    FaultState,
    MonitorData,
    MonitorLife,
    PowerState,
    RegistrationState,
    Row,
    _default_fault,
    _group_profile,
    _guid,
    _machine_prefix,
    _pick,
    _whole_ms,
    group_name,
)


def _split_counts(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split proportionally to ``weights`` (largest remainder, deterministic)."""
    if not weights:
        return []
    scale = sum(weights)
    raw = [total * w / scale for w in weights]
    counts = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (counts[i] - raw[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def make_tenant(
    sessions: int,
    machines: int,
    groups: int,
    *,
    seed: int = 0,
    now: datetime,
    closed_sessions: int | None = None,
    failures: int | None = None,
    users: int | None = None,
    troubled_group: int | None = None,
) -> MonitorData:
    """A deterministic tenant with ``sessions`` open sessions (same arguments, same rows).

    * ``groups`` delivery groups named ``DG-Finance``, ``DG-Call-Center``... (a mix of
      multi-session shared and single-session private ones, one Remote PC group from 4 up);
    * ``machines`` spread over them (~93% registered; a few unregistered, powered off,
      faulted, in maintenance); ``troubled_group`` (an index) gets ~30% unregistered;
    * ``sessions`` open sessions on registered machines (mostly Active, some Disconnected, a
      few others; LogOnDuration 5-120 s in ms, null while preparing), single-session
      machines holding at most one; plus ``closed_sessions`` ended ones (default a quarter);
    * ``failures`` ConnectionFailureLogs rows (default 1 per 40 sessions, at least 5) spread
      over the last 7 days, more of them recent, ``Id`` increasing with ``FailureDate``;
      each has its failed session (ended, ``FailureId`` set) in Sessions too.

    Dates are whole milliseconds, except every 500th session start which carries 7
    fractional digits (microseconds). ``now`` is the tenant's clock.
    """
    if sessions > 0 and machines <= 0:
        raise ValueError("sessions need machines")
    build = _TenantBuilder(seed, now)
    build.add_groups(groups)
    single_ids, multi_ids = build.add_machines(machines, troubled_group)
    user_count = users if users is not None else max(1, sessions * 9 // 10)
    build.add_open_sessions(sessions, single_ids, multi_ids, user_count)
    closed = sessions // 4 if closed_sessions is None else closed_sessions
    build.add_closed_sessions(closed, user_count)
    build.add_failures(max(5, sessions // 40) if failures is None else failures)
    build.data.reindex()
    return build.data


_DAY_MS = 86_400_000
_Profile = tuple[bool, int, int, int]
_NO_GROUP_PROFILE: _Profile = (False, 1, 2, 2)


def _machine_states(
    rng: random.Random, troubled: bool, single: bool
) -> tuple[RegistrationState, PowerState, int]:
    """(registration, power, fault) of a generated machine: ~93% registered, a few not."""
    r = rng.random()
    if r < (0.68 if troubled else 0.93):
        registration, power = RegistrationState.REGISTERED, PowerState.ON
    elif r < (0.98 if troubled else 0.99):
        registration = RegistrationState.UNREGISTERED
        power = PowerState(_pick(rng, _UNREGISTERED_POWER_TABLE))
    else:
        registration = RegistrationState.UNKNOWN
        power = rng.choice((PowerState.UNKNOWN, PowerState.UNMANAGED))
    fault = _default_fault(registration, power)
    if registration == RegistrationState.UNREGISTERED and power == PowerState.TURNING_ON:
        fault = rng.choice((FaultState.FAILED_TO_START, FaultState.STUCK_ON_BOOT))
    if registration == RegistrationState.REGISTERED and not single and rng.random() < 0.01:
        fault = FaultState.MAX_CAPACITY
    return registration, power, fault


class _TenantBuilder:
    """The steps of :func:`make_tenant`, in the order they draw from the one generator."""

    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.base = _whole_ms(now)
        self.data = MonitorData(seed=seed, clock=self.base)
        self.data._rng = random.Random(seed ^ 0x5EED)
        self.profiles: list[_Profile] = []
        self.catalogs: list[str] = []
        self.no_group_catalog = ""

    def add_groups(self, count: int) -> None:
        rng = self.rng
        for i in range(count):
            name = group_name(i)
            profile = _group_profile(name, i)
            self.profiles.append(profile)
            self.catalogs.append(_guid(rng))
            self.data.add_desktop_group(
                name,
                group_id=_guid(rng),
                is_remote_pc=profile[0],
                desktop_kind=profile[1],
                session_support=profile[2],
                delivery_type=profile[3],
            )
        self.no_group_catalog = _guid(rng)

    def _owners(self, machines: int) -> list[int | None]:
        """The group index of each machine, spread by weight (None: no groups at all)."""
        if not self.profiles:
            return [None] * machines
        weights = [1.0 if p[0] else (2.0 if p[2] == 1 else 3.0) for p in self.profiles]
        per_group = _split_counts(machines, weights)
        return [i for i, n in enumerate(per_group) for _ in range(n)]

    def add_machines(
        self, machines: int, troubled_group: int | None
    ) -> tuple[list[str], list[str]]:
        """Append the machines; returns the ids of the registered single- and multi-session."""
        single_ids: list[str] = []
        multi_ids: list[str] = []
        for n, owner in enumerate(self._owners(machines), start=1):
            row = self._machine(n, owner, owner is not None and owner == troubled_group)
            self.data.machines.append(row)
            if row["CurrentRegistrationState"] == RegistrationState.REGISTERED:
                single = self._profile(owner)[2] == 1
                (single_ids if single else multi_ids).append(row["Id"])
        self.data._machines_by_id = {m["Id"]: m for m in self.data.machines}
        return single_ids, multi_ids

    def _profile(self, owner: int | None) -> _Profile:
        return self.profiles[owner] if owner is not None else _NO_GROUP_PROFILE

    def _machine(self, n: int, owner: int | None, troubled: bool) -> Row:
        rng, base = self.rng, self.base
        profile = self._profile(owner)
        single = profile[2] == 1
        registration, power, fault = _machine_states(rng, troubled, single)
        if registration == RegistrationState.UNREGISTERED:
            changed = base - timedelta(milliseconds=rng.randrange(60_000, 6 * 3_600_000))
        else:
            changed = base - timedelta(milliseconds=rng.randrange(3_600_000, 7 * _DAY_MS))
        created = base - timedelta(milliseconds=rng.randrange(30 * _DAY_MS, 400 * _DAY_MS))
        prefix = _machine_prefix(group_name(owner)) if owner is not None else "POOL"
        return {
            "Id": _guid(rng),
            "Name": f"CORP\\{prefix}-VDA{n:05d}",
            "DnsName": f"{prefix.lower()}-vda{n:05d}.corp.example.com",
            "CurrentRegistrationState": int(registration),
            "RegistrationStateChangeDate": changed,
            "CurrentPowerState": int(power),
            "CurrentSessionCount": 0,
            "IsInMaintenanceMode": rng.random() < (0.10 if troubled else 0.03),
            "FaultState": int(fault),
            "FailureDate": changed if fault not in (FaultState.UNKNOWN, FaultState.NONE) else None,
            "LifecycleState": 0,
            "CatalogId": self.catalogs[owner] if owner is not None else self.no_group_catalog,
            "DesktopGroupId": self.data.desktop_groups[owner]["Id"] if owner is not None else None,
            "MachineRole": 0,
            "IsAssigned": profile[1] == 0,
            "AgentVersion": _AGENT_VERSIONS[min(3, int(rng.random() ** 2 * 4))],
            "OSType": rng.choice(_SINGLE_OS if single else _MULTI_OS),
            "CreatedDate": created,
            "ModifiedDate": changed,
        }

    def add_open_sessions(
        self, sessions: int, single_ids: list[str], multi_ids: list[str], user_count: int
    ) -> None:
        """Single-session machines hold one each, the rest go to multi-session ones."""
        rng, base = self.rng, self.base
        if not single_ids and not multi_ids:
            multi_ids = [m["Id"] for m in self.data.machines]
        singles_used = min(
            int(len(single_ids) * 0.85), sessions if not multi_ids else sessions // 3
        )
        placement = rng.sample(single_ids, singles_used)
        pool = multi_ids or single_ids
        placement += [pool[rng.randrange(len(pool))] for _ in range(sessions - singles_used)]
        rng.shuffle(placement)
        single_set = set(single_ids)
        machine_rows = self.data._machines_by_id
        append = self.data.sessions.append
        randrange = rng.randrange
        random_ = rng.random
        for i, machine_id in enumerate(placement):
            machine = machine_rows[machine_id]
            start = base - timedelta(milliseconds=randrange(60_000, 10 * 3_600_000))
            if i % 500 == 499:
                start += timedelta(microseconds=randrange(1, 1000))
            state = _pick(rng, _OPEN_TABLE)
            changed = start + (base - start) * random_()
            changed = changed.replace(microsecond=changed.microsecond // 1000 * 1000)
            logon: int | None = 5_000 + int(115_000 * random_() ** 2.2)
            if state == ConnectionState.PREPARING_SESSION or random_() < 0.02:
                logon = None
            multi = machine_id not in single_set
            append(
                {
                    "SessionKey": _guid(rng),
                    "StartDate": start,
                    "EndDate": None,
                    "LogOnDuration": logon,
                    "ConnectionState": state,
                    "ConnectionStateChangeDate": changed,
                    "FailureDate": None,
                    "FailureId": None,
                    "ExitCode": None,
                    "LifecycleState": 0,
                    "UserId": randrange(1, user_count + 1),
                    "MachineId": machine_id,
                    "SessionType": 1 if multi and random_() < 0.6 else 0,
                    "IsAnonymous": random_() < 0.005,
                    "CreatedDate": start,
                    "ModifiedDate": changed,
                }
            )
            machine["CurrentSessionCount"] += 1

    def add_closed_sessions(self, count: int, user_count: int) -> None:
        """Sessions that ended in the last day, on any machine."""
        rng, base = self.rng, self.base
        randrange = rng.randrange
        all_ids = [m["Id"] for m in self.data.machines]
        for _ in range(count):
            end = base - timedelta(milliseconds=randrange(0, _DAY_MS))
            start = end - timedelta(milliseconds=randrange(600_000, 8 * 3_600_000))
            where = all_ids[randrange(len(all_ids))] if all_ids else None
            self.data.sessions.append(
                {
                    "SessionKey": _guid(rng),
                    "StartDate": start,
                    "EndDate": end,
                    "LogOnDuration": 5_000 + int(115_000 * rng.random() ** 2.2),
                    "ConnectionState": int(ConnectionState.TERMINATED),
                    "ConnectionStateChangeDate": end,
                    "FailureDate": None,
                    "FailureId": None,
                    "ExitCode": 0,
                    "LifecycleState": 0,
                    "UserId": randrange(1, user_count + 1),
                    "MachineId": where,
                    "SessionType": 0,
                    "IsAnonymous": False,
                    "CreatedDate": start,
                    "ModifiedDate": end,
                }
            )

    def add_failures(self, count: int) -> None:
        """Failures over the last week, more of them recent, ``Id`` in time order."""
        rng, base = self.rng, self.base
        offsets = sorted(
            (min(7 * _DAY_MS - 1, int(rng.expovariate(1 / _DAY_MS))) for _ in range(count)),
            reverse=True,
        )
        all_ids = [m["Id"] for m in self.data.machines]
        for offset in offsets:
            when = base - timedelta(milliseconds=offset)
            where = all_ids[rng.randrange(len(all_ids))] if all_ids else None
            self.data._add_failed_launch(rng, when, where, _pick(rng, _FAILURE_TABLE))


def make_demo_tenant(
    now: datetime,
    *,
    seed: int,
    sessions: int,
    machines: int,
    groups: int = 3,
    troubled_group: int | None = 2,
    life: MonitorLife | None = None,
) -> MonitorData:
    """A small living tenant for ``--demo``: :func:`make_tenant` plus a :class:`MonitorLife`."""
    data = make_tenant(
        sessions,
        machines,
        groups,
        seed=seed,
        now=now,
        failures=max(5, sessions // 10),
        troubled_group=troubled_group,
    )
    data.life = life or MonitorLife(target_sessions=sessions)
    return data


# --- the seed customer's tenant: small, hand-written, fixed ids ------------------------------

SEED_MONITOR_NOW = datetime(2021, 12, 19, 2, 50, tzinfo=UTC)
SEED_GROUP_FINANCE = "4e6a2b1c-8d3f-4a7e-9b2c-1f0e5d6c7b8a"
SEED_GROUP_CALL_CENTER = "9c1d7e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f"
SEED_MACHINES = (
    "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",  # FIN-VDA001: registered, 2 sessions
    "1b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e",  # FIN-VDA002: registered, maintenance, 1 session
    "2c3d4e5f-6a7b-4c8d-ae9f-1a2b3c4d5e6f",  # CC-VDA001: registered, 1 session
    "3d4e5f6a-7b8c-4d9e-bfa0-2b3c4d5e6f7a",  # CC-VDA002: unregistered, powered on
)
SEED_SESSIONS = (
    "5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b8c",  # FIN-VDA001, Active
    "6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d",  # FIN-VDA001, Disconnected
    "7b8c9d0e-1f2a-4b3c-ad4e-5f6a7b8c9d0e",  # FIN-VDA002, Active
    "8c9d0e1f-2a3b-4c4d-be5f-6a7b8c9d0e1f",  # CC-VDA001, Active (7 fractional digits)
    "9d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a",  # CC-VDA001, ended
)


def seed_tenant() -> MonitorData:
    """The seed customer's Monitor data: 2 groups, 4 machines, 4 open sessions, 3 failures.

    Everything is fixed (ids above, dates around 2021-12-19T02:50Z), so tests can assert
    exact answers.
    """
    t = SEED_MONITOR_NOW
    data = MonitorData(seed=1, clock=t)
    data.add_desktop_group(
        "DG-Finance",
        group_id=SEED_GROUP_FINANCE,
        desktop_kind=1,
        session_support=2,
        delivery_type=2,
    )
    data.add_desktop_group(
        "DG-Call-Center",
        group_id=SEED_GROUP_CALL_CENTER,
        desktop_kind=0,
        session_support=1,
        delivery_type=0,
    )
    fin1, fin2, cc1, cc2 = SEED_MACHINES
    catalog_fin = "aa11bb22-cc33-4d44-8e55-ff6677889900"
    catalog_cc = "bb22cc33-dd44-4e55-9f66-0077889900aa"
    since = t - timedelta(days=3)
    registered, unregistered = RegistrationState.REGISTERED, RegistrationState.UNREGISTERED
    # (id, group, name, catalog, in maintenance, registration)
    machines = (
        (fin1, SEED_GROUP_FINANCE, "FIN-VDA001", catalog_fin, False, registered),
        (fin2, SEED_GROUP_FINANCE, "FIN-VDA002", catalog_fin, True, registered),
        (cc1, SEED_GROUP_CALL_CENTER, "CC-VDA001", catalog_cc, False, registered),
        (cc2, SEED_GROUP_CALL_CENTER, "CC-VDA002", catalog_cc, False, unregistered),
    )
    for machine_id, group_id, name, catalog, maintenance, registration in machines:
        private = group_id == SEED_GROUP_CALL_CENTER  # single-session, assigned desktops
        data.add_machine(
            group_id,
            name=f"CORP\\{name}",
            machine_id=machine_id,
            catalog_id=catalog,
            maintenance=maintenance,
            registration_state=registration,
            is_assigned=private,
            os_type=_SINGLE_OS[0] if private else _MULTI_OS[0],
            at=since,
        )
    data.machine(cc2)["RegistrationStateChangeDate"] = t - timedelta(minutes=20)
    data.machine(cc2)["FailureDate"] = t - timedelta(minutes=20)
    s1, s2, s3, s4, s5 = SEED_SESSIONS
    active, ended = ConnectionState.ACTIVE, ConnectionState.TERMINATED
    # (machine, key, started this long before t, ended this long before t, logon ms, user,
    # session type, connection state)
    sessions = (
        (fin1, s1, timedelta(hours=2), None, 12_345, 11, 1, active),
        (fin1, s2, timedelta(hours=1), None, 48_000, 12, 0, ConnectionState.DISCONNECTED),
        (fin2, s3, timedelta(minutes=30), None, 8_500, 13, 1, active),
        (cc1, s4, timedelta(minutes=10, microseconds=-123_456), None, 95_250, 14, 0, active),
        (cc1, s5, timedelta(hours=5), timedelta(hours=3), 30_000, 15, 0, ended),
    )
    for machine_id, key, started, stopped, logon, user, session_type, state in sessions:
        data.add_session(
            machine_id,
            session_key=key,
            start=t - started,
            end=None if stopped is None else t - stopped,
            logon_ms=logon,
            user_id=user,
            session_type=session_type,
            connection_state=state,
        )
    # (Id, failed this long before t, SessionFailureCode, machine, user)
    failures = (
        (101, timedelta(hours=3), 4, fin1, 12),
        (102, timedelta(minutes=45), 3, cc2, 14),
        (103, timedelta(minutes=5), 12, None, 16),
    )
    for failure_id, before, value, where, user in failures:
        data.add_failure(
            failure_date=t - before,
            failure_id=failure_id,
            value=value,
            machine_id=where,
            user_id=user,
        )
    return data
