"""Property tests: whatever JSON Citrix Cloud answers, every collector fails cleanly or exports
only valid values.

Each collector is served hypothesis-generated JSON over real HTTP (tests/support/hostile.py):
the real field names in their real nesting, any node of which may instead be any other JSON
(lists, objects, nulls, booleans, NaN, infinities, negative and huge numbers, strings with lone
surrogates, long strings, out-of-range timestamps). For every answer: - the poll succeeds, or
fails with an UpstreamError-derived failure (`citrix_up` 0); never an exception escaping into
the poller's "internal error" path, nor a result that the poller's publish-time check has to
refuse as unrenderable (the collectors repair label values); - the exposition renders and
parses, every label value is valid UTF-8 of at most LABEL_LIMIT characters, and every `citrix_*`
value is finite and not negative; - a second, well-behaved customer on the same server keeps its
values.

One server (in its own thread and event loop) serves the whole module; each example swaps the
programmed answers and runs one poll in `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.collector.fields import LABEL_LIMIT
from exporter.config import Config
from exporter.runtime import Exporter
from tests.support.helpers import make_config
from tests.support.hostile import HostileUpstream

NOW_TS = 1_796_040_000.0  # 2026-11-30T12:00:00Z
CUSTOMER = {"customer_id": "prop1", "client_id": "prop-client", "client_secret": "prop-secret-1"}
GOOD = {"customer_id": "good1", "client_id": "good-client", "client_secret": "good-secret-2"}
SETTINGS = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- the generated JSON ---------------------------------------------------------------------

# Values that real answers never should carry, and each collector must survive.
HOSTILE = (
    math.nan, math.inf, -math.inf, -1, -7.5, -(10**30), 10**30, 2**53 + 1, 1e308, True, None,
    "\ud800", "a\udfffb", "x" * 300, "", " \n\t", "-5", "NaN", "Infinity", "1e400",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-02:00", "2026-13-45T00:00:00Z", [], {},
)  # fmt: skip
# Values a real answer carries: small counts and enum values, the ids the Monitor sets share,
# a timestamp just after the exporter's clock (so logons and failures count).
PLAIN = st.one_of(
    st.integers(min_value=0, max_value=12),
    st.sampled_from(["g1", "g2", "2026-11-30T12:00:01.1234567Z", "Sales", "12"]),
    st.text(max_size=8),
    st.floats(),
)
LEAF = st.one_of(st.sampled_from(HOSTILE), PLAIN)
ANY_JSON = st.recursive(
    LEAF,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=6), children, max_size=3),
    ),
    max_leaves=8,
)
L = "leaf"  # a field whose value is a scalar in the real API
# Label sources and enum values get more of the values that matter to them.
NAME = st.one_of(st.sampled_from(["\ud800", "Sales \udc80 desks", "y" * 1000, "Sales"]), LEAF)
ENUM = st.one_of(st.integers(min_value=0, max_value=3), LEAF)
ACTIVE = st.one_of(st.just(0), ENUM)  # LifecycleState: most groups active


def shaped(template: Any) -> st.SearchStrategy[Any]:
    """The real structure of `template` (dict: its keys; [x]: a list of x; L: a scalar; a
    strategy: a scalar drawn from it), each object or list of which may instead (one time in
    eight) be any JSON. A missing field is a null here, which the collectors read alike."""
    if template is L:
        return LEAF
    if isinstance(template, st.SearchStrategy):
        return template
    real: st.SearchStrategy[Any]
    if isinstance(template, dict):
        real = st.fixed_dictionaries({key: shaped(sub) for key, sub in template.items()})
    else:
        real = st.lists(shaped(template[0]), min_size=1, max_size=4)
    # one_of would pick each branch as often, however often it is listed.
    return st.integers(min_value=0, max_value=7).flatmap(lambda i: ANY_JSON if i == 7 else real)


USAGE = {"totalUsageCount": L, "releasedCount": L}
MONTH_USAGE = {"cumulativeAssignedCount": L, "newAssignedCount": L, "releasedCount": L}
CURRENT = {
    "productName": NAME, "productEdition": NAME, "totalUsageCount": L,
    "totalAvailableLicenseCount": L, "remainingLicenseCount": L,
    "userLicenseUsage": USAGE, "deviceLicenseUsage": USAGE,
    "nextExpiredLicenses": {"nextExpiredTime": L, "totalCount": L},
    "nextActivatingLicense": {"activatingTime": L, "activatingCount": L},
}  # fmt: skip
HISTORY = {
    "historicalUsageList": [
        {"timeStamp": L, "totalAvailableLicenseCount": L,
         "userLicenseUsage": MONTH_USAGE, "deviceLicenseUsage": MONTH_USAGE}
    ]
}  # fmt: skip
PEAK = {"assignedLicenseCount": L, "reportTime": L}
CCU = {
    "currentCcu": {"totalLicenseCount": L, "assignedLicenseCount": L, "reportTime": L},
    "last24HoursPeak": PEAK, "monthPeak": PEAK, "allTimePeak": PEAK,
}  # fmt: skip
SERVERS = {
    "licenseServersStatus": [
        {"fqdn": NAME, "isPhoningHome": L, "isCompliant": L, "isCcu": L, "isExpired": L,
         "lastPhoningHomeTime": L, "licenseExpirationDate": L}
    ]
}  # fmt: skip
SERVER_USAGE = {
    "skus": [
        {"features": [
            {"featureID": NAME,
             "licenseServerUsages": [{"fqdn": NAME, "count": L, "freeUsersCount": L}]}
        ]}
    ]
}  # fmt: skip
TENANTS = {
    "customers": [
        {"customerId": NAME, "orgId": NAME, "accountName": NAME, "customerName": NAME,
         "totalUsers": L, "paidUsers": L, "freeUsers": L, "totalLicenses": L, "licenseOverage": L}
    ]
}  # fmt: skip
ONPREM_SUMMARY = {"totalUsers": L, "paidUsers": L, "freeUsers": L, "licenseServers": L,
                  "customers": L}  # fmt: skip
DAAS_SUMMARY = {"totalCustomers": L, "totalLicenses": L, "totalUsers": L, "totalOverage": L}
ACTIVE_USE = {"ccuActiveUse": L, "udActiveUse": L}
# Delivery group ids, mostly shared by the Monitor sets so that rows join their group.
ID = st.one_of(st.sampled_from(["g1", "g2"]), LEAF)
GROUPS = {
    "value": [
        {"Id": ID, "Name": NAME, "DeliveryType": ENUM, "SessionSupport": ENUM,
         "LifecycleState": ACTIVE}
    ]
}  # fmt: skip
SESSIONS = {
    "value": [
        {"ConnectionState": ENUM, "Machine": {"DesktopGroupId": ID}, "n": L, "SessionKey": L,
         "StartDate": L, "LogOnDuration": L}
    ]
}  # fmt: skip
MACHINES = {
    "value": [
        {"DesktopGroupId": ID, "CurrentRegistrationState": ENUM, "CurrentPowerState": ENUM,
         "FaultState": ENUM, "IsInMaintenanceMode": L, "n": L}
    ]
}  # fmt: skip
FAILURES = {"value": [{"Id": L, "FailureDate": L, "ConnectionFailureEnumValue": ENUM}]}

# -- one upstream for the module ------------------------------------------------------------


class Upstream:
    """A HostileUpstream in its own thread; `program` maps a path suffix to the JSON that
    `prop1` gets for it (anything else gets HostileUpstream's good answers)."""

    def __init__(self) -> None:
        self.hostile = HostileUpstream()
        self.program: dict[str, Any] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner = web.AppRunner(self.hostile.app())
        self.url = ""

    def serve(self, suffixes: list[str]) -> None:
        for suffix in suffixes:
            self.hostile.on(CUSTOMER["customer_id"], suffix, self._answer(suffix))

    def _answer(self, suffix: str) -> Any:
        def answer(_request: web.Request) -> web.Response:
            body = json.dumps(self.program.get(suffix))
            return web.Response(text=body, content_type="application/json")

        return answer

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result()

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    server.start()
    yield server
    server.stop()


async def _no_sleep(_delay: float) -> None:
    return None


async def _poll(config: Config) -> tuple[Exporter, str]:
    exporter = Exporter(config, sleep=_no_sleep, clock=lambda: NOW_TS, process_metrics=False)
    await exporter.open()
    try:
        await exporter.poller.run_all_once()
        return exporter, generate_latest(exporter.registry).decode()
    finally:
        await exporter.close()


def check(upstream: Upstream, collectors: dict[str, Any], answers: dict[str, Any]) -> None:
    """Serve `answers` to `prop1` with `collectors` enabled, poll once, check the result."""
    upstream.serve(list(answers))
    upstream.program = answers
    prop1 = {**CUSTOMER, "collectors": {"licensing": {"enabled": False}, **collectors}}
    config = make_config(upstream.url, [prop1, GOOD], retry={"attempts": 1})
    exporter, text = asyncio.run(_poll(config))
    for job in exporter.poller.jobs:
        # Neither an exception nor a result only the poller's last check stopped.
        error = str(job.status.last_error)
        assert not error.startswith(("internal error", "result cannot be rendered")), error
    good_available = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for label in sample.labels.values():
                assert len(label) <= LABEL_LIMIT
                label.encode("utf-8")  # valid UTF-8: no lone surrogate got through
            if sample.name.startswith("citrix_"):
                assert math.isfinite(sample.value) and sample.value >= 0, sample
            if (
                sample.name == "citrix_licenses_available"
                and sample.labels["customer_id"] == "good1"
            ):
                good_available = sample.value
    assert good_available == 25


def observed(name: str, upstream: Upstream, **options: Any) -> dict[str, Any]:
    return {name: {"enabled": True, "url": upstream.url, **options}}


# -- one property per collector -------------------------------------------------------------


def shaped_answers(by_suffix: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The answer of each upstream path suffix, `shaped` like the template given for it."""
    return st.fixed_dictionaries({suffix: shaped(shape) for suffix, shape in by_suffix.items()})


@SETTINGS
@given(shaped_answers({"/ud/current": CURRENT, "/ud/historicalusage": HISTORY}))
def test_licensing(upstream: Upstream, answers: dict[str, Any]) -> None:
    check(upstream, {"licensing": {"enabled": True}}, answers)


@SETTINGS
@given(
    shaped_answers(
        {
            "/products/secureworkspaceaccess/current": CURRENT,
            "/products/xenmobile/current": CURRENT,
        }
    )
)
def test_products(upstream: Upstream, answers: dict[str, Any]) -> None:
    check(upstream, observed("products", upstream), answers)


@SETTINGS
@given(shaped_answers({"/ccu/summary": CCU}))
def test_concurrent(upstream: Upstream, answers: dict[str, Any]) -> None:
    check(upstream, observed("concurrent", upstream), answers)


@SETTINGS
@given(shaped_answers({"/licenseservers": SERVERS, "/licenseusagedata": SERVER_USAGE}))
def test_license_servers(upstream: Upstream, answers: dict[str, Any]) -> None:
    check(upstream, observed("license_servers", upstream), answers)


@SETTINGS
@given(
    shaped_answers(
        {
            "/onprem/cvad/summary": ONPREM_SUMMARY,
            "/cloud/cvad/summary": DAAS_SUMMARY,
            "/onprem/cvad/customers": TENANTS,
            "/cloud/cvad/customers": TENANTS,
            "/tenant/cloud/cvad/current": ACTIVE_USE,
        }
    )
)
def test_partner(upstream: Upstream, answers: dict[str, Any]) -> None:
    check(upstream, observed("partner", upstream, active_use=True), answers)


@SETTINGS
@given(
    shaped_answers(
        {
            "/monitorodata/DesktopGroups": GROUPS,
            "/monitorodata/Sessions": SESSIONS,
            "/monitorodata/Machines": MACHINES,
            "/monitorodata/ConnectionFailureLogs": FAILURES,
        }
    )
)
def test_monitor(upstream: Upstream, answers: dict[str, Any]) -> None:
    check(upstream, {"monitor": {"enabled": True}}, answers)
