"""The simulator's OData engine and Monitor data, without HTTP: filters, $apply, generator."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from exporter.simulator import odata
from exporter.simulator.monitor import (
    MODEL,
    ConnectionState,
    FaultState,
    MonitorData,
    RegistrationState,
)
from exporter.simulator.monitor_tenants import (
    SEED_GROUP_CALL_CENTER,
    SEED_GROUP_FINANCE,
    SEED_MACHINES,
    SEED_MONITOR_NOW,
    SEED_SESSIONS,
    make_demo_tenant,
    make_tenant,
    seed_tenant,
)

NOW = datetime(2024, 6, 4, 10, 0, tzinfo=UTC)
S1, S2, S3, S4, S5 = SEED_SESSIONS
FIN1, FIN2, CC1, CC2 = SEED_MACHINES
SEVEN_DIGITS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z")
THREE_DIGITS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def run(data: MonitorData, entity_set: str, **params: str) -> odata.QueryResult:
    options = odata.parse_options({f"${k}": v for k, v in params.items()})
    return odata.execute(MODEL, data, entity_set, options)


def values(data: MonitorData, entity_set: str, **params: str) -> list[dict[str, Any]]:
    result = run(data, entity_set, **params)
    return [result.project(row) for row in result.rows]


def keys(data: MonitorData, expr: str) -> set[str]:
    return {row["SessionKey"] for row in run(data, "Sessions", filter=expr).rows}


@pytest.fixture
def seed() -> MonitorData:
    return seed_tenant()


# --- $filter -----------------------------------------------------------------------------------

# The seed sessions: S1 Active 12345 ms FIN1; S2 Disconnected 48000 FIN1; S3 Active 8500 FIN2
# (maintenance); S4 Active 95250 CC1 (start has microseconds); S5 ended, 30000, CC1.
FILTER_CASES = [
    ("ConnectionState eq 5", {S1, S3, S4}),
    ("ConnectionState ne 5", {S2, S5}),
    ("LogOnDuration gt 30000", {S2, S4}),
    ("LogOnDuration ge 30000", {S2, S4, S5}),
    ("LogOnDuration lt 12345", {S3}),
    ("LogOnDuration le 12345", {S1, S3}),
    ("ConnectionState gt -1", {S1, S2, S3, S4, S5}),
    ("EndDate eq null", {S1, S2, S3, S4}),
    ("EndDate ne null", {S5}),
    ("null eq EndDate", {S1, S2, S3, S4}),
    ("EndDate gt 2000-01-01T00:00:00Z", {S5}),  # ordering with null is false
    ("EndDate lt 2100-01-01T00:00:00Z", {S5}),
    ("EndDate gt null", set()),
    ("not (EndDate gt 2000-01-01T00:00:00Z)", {S1, S2, S3, S4}),
    ("ConnectionState eq 5 and LogOnDuration gt 10000", {S1, S4}),
    ("ConnectionState eq 2 or ConnectionState eq 3", {S2, S5}),
    ("not ConnectionState eq 5", {S2, S5}),
    ("ConnectionState eq 2 or ConnectionState eq 5 and LogOnDuration gt 50000", {S2, S4}),
    ("(ConnectionState eq 2 or ConnectionState eq 5) and LogOnDuration gt 50000", {S4}),
    ("  ( ( ConnectionState   eq 5 ) )  ", {S1, S3, S4}),
    ("StartDate ge 2021-12-19T02:20:00Z", {S3, S4}),
    ("StartDate ge 2021-12-19T02:20Z", {S3, S4}),
    ("StartDate ge 2021-12-19T03:20:00+01:00", {S3, S4}),
    ("StartDate gt 2021-12-19T02:40:00.123Z", {S4}),
    ("StartDate ge 2021-12-19T02:40:00.1234560Z", {S4}),
    ("StartDate gt 2021-12-19T02:40:00.124Z", set()),
    ("ModifiedDate ge 2021-12-19T00:00:00Z and ModifiedDate lt 2021-12-19T02:00:00.000Z", {S1, S2}),
    (f"SessionKey eq {S2}", {S2}),
    (f"MachineId eq {FIN1.upper()}", {S1, S2}),
    (f"MachineId ne {FIN1}", {S3, S4, S5}),
    (f"Machine/DesktopGroupId eq {SEED_GROUP_CALL_CENTER}", {S4, S5}),
    ("Machine/IsInMaintenanceMode eq true", {S3}),
    ("Machine/IsInMaintenanceMode", {S3}),
    ("not Machine/IsInMaintenanceMode", {S1, S2, S4, S5}),
    ("Machine/Name eq 'CORP\\CC-VDA001'", {S4, S5}),
    ("IsAnonymous eq false and SessionType eq 1", {S1, S3}),
    ("CreatedDate eq StartDate", {S1, S2, S3, S4, S5}),
    ("ModifiedDate gt StartDate", {S5}),
    ("UserId ge 12 and UserId le 14", {S2, S3, S4}),
]


@pytest.mark.parametrize(("expr", "expected"), FILTER_CASES)
def test_filter(seed: MonitorData, expr: str, expected: set[str]) -> None:
    assert keys(seed, expr) == expected


def test_filter_strings_and_quotes(seed: MonitorData) -> None:
    seed.add_desktop_group("O'Brien Lab", group_id="12345678-aaaa-4bbb-8ccc-1234567890ab")
    names = [r["Name"] for r in values(seed, "DesktopGroups", filter="Name eq 'O''Brien Lab'")]
    assert names == ["O'Brien Lab"]
    assert [r["Name"] for r in values(seed, "DesktopGroups", filter="Name ne 'DG-Finance'")] == [
        "DG-Call-Center",
        "O'Brien Lab",
    ]
    assert [r["Name"] for r in values(seed, "DesktopGroups", filter="Name gt 'DG-G'")] == [
        "O'Brien Lab"
    ]
    machines = values(seed, "Machines", filter="IsInMaintenanceMode eq true or FaultState eq 4")
    assert [m["Id"] for m in machines] == [FIN2, CC2]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("ConnectionState eq", "unexpected end"),
        ("ConnectionState eq 5 and", "unexpected end"),
        ("(ConnectionState eq 5", "')' expected"),
        ("ConnectionState eq 5)", "unexpected ')'"),
        ("ConnectionState == 5", "Syntax error"),
        ("ConnectionState eq 5 extra", "unexpected 'extra'"),
        ("Bogus eq 1", "Could not find a property named 'Bogus'"),
        ("Machine/Bogus eq 1", "Could not find a property named 'Bogus'"),
        ("Machine/DesktopGroup/Name eq 'x'", "not supported by the simulator"),
        ("StartDate/Year eq 1", "not a navigation property"),
        ("Machine eq null", "cannot be used as a value"),
        ("StartDate gt '2021-12-19T00:00:00Z'", "incompatible types"),
        (f"SessionKey eq '{S1}'", "'Edm.Guid' and 'Edm.String'"),
        ("ConnectionState eq 'Active'", "incompatible types"),
        ("LogOnDuration gt 12344.5", "not supported by the simulator"),
        ("LogOnDuration eq 30000L", "not supported by the simulator"),
        ("StartDate gt 2021-12-19", "Syntax error"),
        ("StartDate gt 2021-13-45T00:00:00Z", "Invalid Edm.DateTimeOffset"),
        ("ConnectionState", "boolean expression was expected"),
        ("ConnectionState eq 5 and LogOnDuration", "boolean expression was expected"),
        ("substringof('a',Machine/Name)", "not supported by the simulator"),
        ("contains(Machine/Name,'FIN')", "not supported by the simulator"),
        ("Name eq 'unterminated", "Syntax error"),
        ("", "empty"),
    ],
)
def test_filter_errors(seed: MonitorData, expr: str, message: str) -> None:
    with pytest.raises(odata.ODataError) as caught:
        run(seed, "Sessions", filter=expr) if expr else odata.parse_expression(expr)
    assert caught.value.status == 400
    assert message in caught.value.message
    assert caught.value.body() == {"error": {"code": "", "message": caught.value.message}}


def test_filter_on_failures(seed: MonitorData) -> None:
    rows = values(seed, "ConnectionFailureLogs", filter="FailureDate gt 2021-12-19T02:00:00Z")
    assert [r["Id"] for r in rows] == [102, 103]
    assert [r["Id"] for r in values(seed, "ConnectionFailureLogs", filter="Id ge 102")] == [
        102,
        103,
    ]
    assert values(seed, "ConnectionFailureLogs", filter="MachineId eq null")[0]["Id"] == 103


def test_filter_compiles_once_and_is_fast() -> None:
    data = make_tenant(20_000, 500, 5, seed=3, now=NOW, closed_sessions=0, failures=0)
    started = time.perf_counter()
    result = run(
        data,
        "Sessions",
        filter=(
            "EndDate eq null and (ConnectionState eq 5 or ConnectionState eq 2) and "
            "Machine/CurrentRegistrationState eq 1 and StartDate ge 2024-06-04T00:00:00Z"
        ),
    )
    elapsed = time.perf_counter() - started
    assert 0 < result.count <= 20_000
    assert elapsed < 1.0  # about 30 ms here; generous for slow CI machines


# --- $select, $expand, $orderby, $top, $skip, $count --------------------------------------------


def test_select_keeps_schema_order(seed: MonitorData) -> None:
    result = run(seed, "Sessions", select="LogOnDuration, SessionKey", filter=f"SessionKey eq {S1}")
    assert [result.project(r) for r in result.rows] == [{"SessionKey": S1, "LogOnDuration": 12345}]
    assert result.context_suffix == "(SessionKey,LogOnDuration)"
    everything = values(seed, "Sessions", select="*", top="1")[0]
    assert list(everything) == list(MODEL["Sessions"].properties)


def test_select_errors(seed: MonitorData) -> None:
    for params in (
        {"select": "Bogus"},
        {"select": "Machine/Name"},
        {"select": "Machine"},
        {"select": "SessionKey,"},
        {"expand": "Bogus"},
        {"expand": "StartDate"},
        {"expand": "Machine($filter=Name eq 'x')"},
        {"expand": "Machine($select=Name;$expand=DesktopGroup)"},
        {"expand": "Machine($select=Bogus)"},
    ):
        with pytest.raises(odata.ODataError):
            run(seed, "Sessions", **params)


def test_expand(seed: MonitorData) -> None:
    rows = values(
        seed,
        "Sessions",
        select="SessionKey",
        expand="Machine($select=DesktopGroupId,Name)",
        filter="EndDate eq null",
    )
    assert rows[0] == {
        "SessionKey": S1,
        "Machine": {"Name": "CORP\\FIN-VDA001", "DesktopGroupId": SEED_GROUP_FINANCE},
    }
    assert [r["Machine"]["DesktopGroupId"] for r in rows] == [
        SEED_GROUP_FINANCE,
        SEED_GROUP_FINANCE,
        SEED_GROUP_FINANCE,
        SEED_GROUP_CALL_CENTER,
    ]
    full = values(seed, "Sessions", expand="Machine", top="1")[0]
    assert list(full)[-1] == "Machine"
    assert full["Machine"]["Id"] == FIN1
    assert list(full["Machine"]) == list(MODEL["Machines"].properties)
    machines = values(seed, "Machines", select="Name", expand="DesktopGroup($select=Name)")
    assert [m["DesktopGroup"] for m in machines] == [
        {"Name": "DG-Finance"},
        {"Name": "DG-Finance"},
        {"Name": "DG-Call-Center"},
        {"Name": "DG-Call-Center"},
    ]
    # A missing target expands to null.
    seed.remove_desktop_group("DG-Finance", keep_machines=True)
    machines = values(seed, "Machines", select="Name", expand="DesktopGroup")
    assert machines[0] == {"Name": "CORP\\FIN-VDA001", "DesktopGroup": None}


def test_orderby_top_skip_count(seed: MonitorData) -> None:
    result = run(seed, "Sessions", orderby="LogOnDuration desc", select="LogOnDuration")
    assert [r["LogOnDuration"] for r in result.rows] == [95250, 48000, 30000, 12345, 8500]
    result = run(seed, "Sessions", orderby="EndDate, StartDate desc", top="3", skip="1")
    assert [r["SessionKey"] for r in result.rows] == [S3, S2, S1]  # nulls first ascending
    assert result.count == 5  # before $skip/$top
    result = run(seed, "Sessions", orderby="EndDate desc", top="1")
    assert result.rows[0]["SessionKey"] == S5  # nulls last descending
    result = run(seed, "Sessions", orderby="Machine/Name asc,LogOnDuration", select="SessionKey")
    assert [r["SessionKey"] for r in result.rows] == [S5, S4, S1, S2, S3]
    result = run(seed, "Sessions", top="0", count="true")
    assert result.rows == []
    assert result.count == 5
    assert run(seed, "Sessions", skip="10").rows == []
    for bad in ({"top": "-1"}, {"top": "x"}, {"skip": "1.5"}, {"count": "yes"}, {"orderby": "X"}):
        with pytest.raises(odata.ODataError):
            run(seed, "Sessions", **bad)
    with pytest.raises(odata.ODataError, match="not supported"):
        odata.parse_options({"$search": "x"})


# --- $apply -----------------------------------------------------------------------------------


def test_apply_groupby_nav_path_and_count(seed: MonitorData) -> None:
    rows = values(
        seed,
        "Sessions",
        apply=(
            "filter(EndDate eq null)/groupby((ConnectionState,Machine/DesktopGroupId),"
            "aggregate($count as n))"
        ),
    )
    assert rows == [
        {"ConnectionState": 2, "Machine": {"DesktopGroupId": SEED_GROUP_FINANCE}, "n": 1},
        {"ConnectionState": 5, "Machine": {"DesktopGroupId": SEED_GROUP_FINANCE}, "n": 2},
        {"ConnectionState": 5, "Machine": {"DesktopGroupId": SEED_GROUP_CALL_CENTER}, "n": 1},
    ]


def test_apply_chains_and_options(seed: MonitorData) -> None:
    machines = values(
        seed,
        "Machines",
        apply=(
            "groupby((DesktopGroupId,CurrentRegistrationState,IsInMaintenanceMode),"
            "aggregate($count as n))"
        ),
        orderby="CurrentRegistrationState desc",
    )
    assert machines[0] == {
        "DesktopGroupId": SEED_GROUP_CALL_CENTER,
        "CurrentRegistrationState": 2,
        "IsInMaintenanceMode": False,
        "n": 1,
    }
    assert sum(m["n"] for m in machines) == 4
    # groupby without aggregate: distinct values; filter after groupby on an alias.
    assert values(seed, "Sessions", apply="groupby((UserId))/filter(UserId gt 13)") == [
        {"UserId": 14},
        {"UserId": 15},
    ]
    busy = values(
        seed,
        "Sessions",
        apply="groupby((MachineId),aggregate($count as n))/filter(n ge 2)",
        count="true",
        select="n",
    )
    assert busy == [{"n": 2}, {"n": 2}]
    nested = values(
        seed,
        "Sessions",
        apply="groupby((Machine/DesktopGroupId),aggregate($count as n))",
        filter=f"Machine/DesktopGroupId eq {SEED_GROUP_FINANCE}",
    )
    assert nested == [{"Machine": {"DesktopGroupId": SEED_GROUP_FINANCE}, "n": 3}]
    failures = values(seed, "ConnectionFailureLogs", apply="groupby((ConnectionFailureEnumValue))")
    assert failures == [
        {"ConnectionFailureEnumValue": 3},
        {"ConnectionFailureEnumValue": 4},
        {"ConnectionFailureEnumValue": 12},
    ]
    filtered = values(seed, "Sessions", apply="filter(EndDate ne null)", select="SessionKey")
    assert filtered == [{"SessionKey": S5}]


@pytest.mark.parametrize(
    "apply",
    [
        "groupby(ConnectionState)",
        "groupby((ConnectionState),aggregate($count))",
        "groupby((ConnectionState),aggregate(LogOnDuration with median as m))",
        "groupby((Bogus))",
        "groupby((ConnectionState),filter(EndDate eq null))",
        "aggregate(SessionKey with sum as s)",
        "aggregate($count as n)",
        "groupby((ConnectionState),aggregate($count as n, $count as m))",
        "groupby((ConnectionState),aggregate(SessionKey with countdistinct as n))",
        "groupby((ConnectionState),aggregate($count as ConnectionState))",
        "compute(LogOnDuration mul 2 as x)",
        "filter(EndDate eq null",
        "filter(EndDate eq null)/",
        "groupby((ConnectionState))/filter(LogOnDuration gt 1)",
    ],
)
def test_apply_errors(seed: MonitorData, apply: str) -> None:
    with pytest.raises(odata.ODataError) as caught:
        run(seed, "Sessions", apply=apply)
    assert caught.value.status == 400


def test_apply_rejects_expand(seed: MonitorData) -> None:
    with pytest.raises(odata.ODataError, match="expand"):
        run(seed, "Sessions", apply="groupby((MachineId))", expand="Machine")


# --- formatting -------------------------------------------------------------------------------


def test_datetime_literals_and_format() -> None:
    assert odata.parse_datetime("2024-06-04T10:00:00.1234567Z") == datetime(
        2024, 6, 4, 10, 0, 0, 123456, tzinfo=UTC
    )
    assert odata.parse_datetime("2024-06-04T12:00:00+02:00") == datetime(2024, 6, 4, 10, tzinfo=UTC)
    assert odata.format_datetime(datetime(2024, 6, 4, 10, tzinfo=UTC)) == (
        "2024-06-04T10:00:00.000Z"
    )
    assert odata.format_datetime(datetime(2024, 6, 4, 10, 0, 0, 123000, tzinfo=UTC)) == (
        "2024-06-04T10:00:00.123Z"
    )
    assert odata.format_datetime(datetime(2024, 6, 4, 10, 0, 0, 123456, tzinfo=UTC)) == (
        "2024-06-04T10:00:00.1234560Z"
    )


# --- generator --------------------------------------------------------------------------------


def test_make_tenant_is_deterministic() -> None:
    first = make_tenant(300, 40, 4, seed=7, now=NOW)
    again = make_tenant(300, 40, 4, seed=7, now=NOW)
    other = make_tenant(300, 40, 4, seed=8, now=NOW)
    for name in MODEL:
        assert first.rows(name) == again.rows(name), name
    assert first.sessions != other.sessions


def test_make_tenant_shape() -> None:
    data = make_tenant(2_000, 150, 5, seed=1, now=NOW, troubled_group=2)
    assert [g["Name"] for g in data.desktop_groups] == [
        "DG-Finance",
        "DG-Call-Center",
        "DG-Engineering",
        "DG-RemotePC",
        "DG-Sales",
    ]
    assert len({g["Id"] for g in data.desktop_groups}) == 5
    assert sum(g["IsRemotePC"] for g in data.desktop_groups) == 1
    assert {g["SessionSupport"] for g in data.desktop_groups} == {1, 2}
    assert len(data.machines) == 150
    open_sessions = data.open_sessions()
    assert len(open_sessions) == 2_000
    failures = data.connection_failures
    assert len(failures) == 50  # 1 per 40 open sessions
    assert len(data.sessions) == 2_000 + 500 + 50  # open, closed (a quarter), failed

    states = Counter(s["ConnectionState"] for s in open_sessions)
    assert states.most_common(1)[0][0] == ConnectionState.ACTIVE
    assert 0.7 < states[ConnectionState.ACTIVE] / 2_000 < 0.9
    assert 0.08 < states[ConnectionState.DISCONNECTED] / 2_000 < 0.2
    assert len(states) >= 5
    logons = [s["LogOnDuration"] for s in open_sessions if s["LogOnDuration"] is not None]
    assert 0 < len(open_sessions) - len(logons) < 200
    assert min(logons) >= 5_000
    assert max(logons) <= 120_000

    machines = {m["Id"]: m for m in data.machines}
    assert all(
        machines[s["MachineId"]]["CurrentRegistrationState"] == RegistrationState.REGISTERED
        for s in open_sessions
    )
    per_machine = Counter(s["MachineId"] for s in open_sessions)
    assert all(m["CurrentSessionCount"] == per_machine[m["Id"]] for m in data.machines)
    singles = {g["Id"] for g in data.desktop_groups if g["SessionSupport"] == 1}
    assert all(
        m["CurrentSessionCount"] <= 1 for m in data.machines if m["DesktopGroupId"] in singles
    )
    registration = Counter(m["CurrentRegistrationState"] for m in data.machines)
    assert registration[RegistrationState.UNREGISTERED] > 0
    assert registration[RegistrationState.REGISTERED] > 100
    troubled = data.machines_in("DG-Engineering")
    unregistered = [m for m in troubled if m["CurrentRegistrationState"] == 2]
    assert len(unregistered) / len(troubled) > 0.1
    assert any(m["FaultState"] == FaultState.UNREGISTERED for m in data.machines)
    assert any(m["IsInMaintenanceMode"] for m in data.machines)
    assert any(m["CurrentPowerState"] == 2 for m in data.machines)  # some powered off

    ids = [f["Id"] for f in failures]
    assert ids == sorted(ids) == list(range(1, 51))
    dates = [f["FailureDate"] for f in failures]
    assert dates == sorted(dates)
    assert NOW - timedelta(days=7) <= dates[0] and dates[-1] <= NOW
    assert len({f["ConnectionFailureEnumValue"] for f in failures}) >= 5
    failed = {s["FailureId"]: s for s in data.sessions if s["FailureId"] is not None}
    assert set(failed) == set(ids)
    assert all(failed[f["Id"]]["SessionKey"] == f["SessionKey"] for f in failures)

    stamps = [odata.format_datetime(s["StartDate"]) for s in data.sessions]
    seven = [s for s in stamps if SEVEN_DIGITS.fullmatch(s)]
    assert 0 < len(seven) < 20
    assert all(THREE_DIGITS.fullmatch(s) or SEVEN_DIGITS.fullmatch(s) for s in stamps)


def test_make_tenant_100k_sessions() -> None:
    started = time.perf_counter()
    data = make_tenant(100_000, 5_000, 20, seed=42, now=NOW)
    built = time.perf_counter() - started
    assert len(data.open_sessions()) == 100_000
    assert len(data.machines) == 5_000
    assert len(data.desktop_groups) == 20
    assert data.desktop_groups[19]["Name"] == "DG-Pool-20"
    assert len(data.connection_failures) == 2_500
    assert built < 10  # ~1.5 s here
    result = run(
        data,
        "Sessions",
        apply=(
            "filter(EndDate eq null)/groupby((ConnectionState,Machine/DesktopGroupId),"
            "aggregate($count as n))"
        ),
    )
    assert sum(row["n"] for row in result.rows) == 100_000


# --- mutations ----------------------------------------------------------------------------------


def test_mutations(seed: MonitorData) -> None:
    at = SEED_MONITOR_NOW + timedelta(minutes=1)
    fin1 = seed.machine(FIN1)
    assert fin1["CurrentSessionCount"] == 2
    added = seed.add_session(FIN1, start=at, connection_state=ConnectionState.DISCONNECTED)
    assert fin1["CurrentSessionCount"] == 3
    assert keys(seed, "EndDate eq null and ConnectionState eq 2") == {S2, added["SessionKey"]}
    seed.end_session(S1, at=at)
    assert fin1["CurrentSessionCount"] == 2
    ended = seed.session(S1)
    assert ended["EndDate"] == at
    assert ended["ConnectionState"] == ConnectionState.TERMINATED
    seed.set_connection_state(S2, ConnectionState.ACTIVE, at=at)
    assert keys(seed, "ConnectionStateChangeDate ge " + odata.format_datetime(at)) == {
        S1,
        S2,
        added["SessionKey"],
    }

    seed.set_registration_state(CC1, RegistrationState.UNREGISTERED, at=at)
    assert seed.machine(CC1)["FaultState"] == FaultState.UNREGISTERED
    assert seed.machine(CC1)["FailureDate"] == at
    seed.set_registration_state(CC2, RegistrationState.REGISTERED, at=at)
    assert seed.machine(CC2)["FaultState"] == FaultState.NONE
    unregistered = values(seed, "Machines", filter="CurrentRegistrationState eq 2", select="Id")
    assert unregistered == [{"Id": CC1}]
    seed.set_maintenance(FIN2, False)
    assert not seed.machine(FIN2)["IsInMaintenanceMode"]

    when = datetime(2021, 12, 19, 2, 55, 30, 250000, tzinfo=UTC)
    failure = seed.add_failure(failure_date=when, failure_id=500, value=13, machine_id=CC1)
    assert failure["CreatedDate"] == when
    assert seed.add_failure(failure_date=when)["Id"] == 501
    recent = values(seed, "ConnectionFailureLogs", filter="FailureDate gt 2021-12-19T02:55:00Z")
    assert [(r["Id"], odata.format_datetime(r["FailureDate"])) for r in recent] == [
        (500, "2021-12-19T02:55:30.250Z"),
        (501, "2021-12-19T02:55:30.250Z"),
    ]
    with pytest.raises(KeyError):
        seed.add_session("00000000-0000-4000-8000-000000000000")
    with pytest.raises(ValueError, match="exists"):
        seed.add_session(FIN1, session_key=S3)


def test_remove_desktop_group(seed: MonitorData) -> None:
    kept = seed_tenant()
    kept.remove_desktop_group("DG-Call-Center", keep_machines=True)
    assert [g["Name"] for g in kept.desktop_groups] == ["DG-Finance"]
    assert kept.machine(CC1)["DesktopGroupId"] is None
    assert len(kept.sessions) == 5
    grouped = values(
        kept, "Sessions", apply="groupby((Machine/DesktopGroupId),aggregate($count as n))"
    )
    assert grouped == [
        {"Machine": {"DesktopGroupId": None}, "n": 2},
        {"Machine": {"DesktopGroupId": SEED_GROUP_FINANCE}, "n": 3},
    ]

    seed.remove_desktop_group(SEED_GROUP_CALL_CENTER)
    assert [m["Id"] for m in seed.machines] == [FIN1, FIN2]
    assert {s["SessionKey"] for s in seed.sessions} == {S1, S2, S3}
    assert len(seed.connection_failures) == 3  # history is kept
    with pytest.raises(KeyError):
        seed.desktop_group("DG-Call-Center")


# --- life -----------------------------------------------------------------------------------------


def _snapshot(data: MonitorData) -> tuple[Any, ...]:
    return (
        frozenset(s["SessionKey"] for s in data.open_sessions()),
        len(data.sessions),
        tuple(f["Id"] for f in data.connection_failures),
        tuple((m["Id"], m["CurrentRegistrationState"]) for m in data.machines),
    )


def test_tick_makes_the_tenant_live() -> None:
    data = make_demo_tenant(NOW, seed=11, sessions=120, machines=45)
    before_open = {s["SessionKey"] for s in data.open_sessions()}
    before_failures = len(data.connection_failures)
    before_machines = {m["Id"]: m["CurrentRegistrationState"] for m in data.machines}
    assert data.tick(NOW) == 0
    assert data.tick(NOW + timedelta(seconds=14)) == 0  # same 15 s step
    steps = data.tick(NOW + timedelta(hours=1))
    assert steps == 240
    after_open = {s["SessionKey"] for s in data.open_sessions()}
    assert before_open - after_open  # some sessions ended
    assert after_open - before_open  # some started
    assert 60 <= len(after_open) <= 200
    assert len(data.connection_failures) > before_failures
    assert data.connection_failures[-1]["FailureDate"] > NOW
    changed = [
        m for m in data.machines if m["CurrentRegistrationState"] != before_machines[m["Id"]]
    ]
    events = [m for m in data.machines if m["RegistrationStateChangeDate"] > NOW]
    assert changed or events  # machines unregistered and/or recovered
    per_machine = Counter(s["MachineId"] for s in data.open_sessions())
    assert all(m["CurrentSessionCount"] == per_machine[m["Id"]] for m in data.machines)


def test_tick_is_deterministic_from_the_clock() -> None:
    one = make_demo_tenant(NOW, seed=5, sessions=60, machines=25)
    other = make_demo_tenant(NOW, seed=5, sessions=60, machines=25)
    one.tick(NOW + timedelta(minutes=30))
    for minute in range(1, 31):
        other.tick(NOW + timedelta(minutes=minute, seconds=7))
    other.tick(NOW + timedelta(minutes=30))
    assert _snapshot(one) == _snapshot(other)


def test_static_tenant_does_not_tick(seed: MonitorData) -> None:
    before = _snapshot(seed)
    assert seed.tick(SEED_MONITOR_NOW + timedelta(hours=5)) == 0
    assert _snapshot(seed) == before
