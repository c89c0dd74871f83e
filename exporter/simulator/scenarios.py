"""Ready-made simulator states.

* :func:`seed_state` reproduces Citrix's documentation examples (seeds 001 and 002) exactly:
  the tests' ground truth, so parsing is checked against what Citrix published.
* :func:`demo_state` is what ``--demo`` serves: three customers that exercise every alerting
  path (healthy, in overage, licences about to expire), with usage drifting slowly with the
  clock so dashboards look alive, yet reproducible for a given time. Each also has a small
  living Monitor tenant (3 delivery groups, the third with unregistered machines; sessions
  come and go, failures trickle in as the clock moves); acme-demo's has a fourth,
  autoscaled group (``DG-Autoscale``) powered off at night by the clock
  (:mod:`~exporter.simulator.autoscale`); :func:`autoscale_night` and
  :func:`autoscale_outage` pin it in one state for tests.

* :func:`observed_state` adds answers of the observed (undocumented) licensing APIs to the
  seed customer: a concurrent-model summary, Secure Private Access usage (Endpoint Management
  answers 404: not entitled), two License Servers of which one stopped phoning home, and a
  partner with 500 customers.

Bigger Monitor tenants for tests and benchmarks: :func:`monitor_tenants.make_tenant`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from .autoscale import STATES, add_autoscaled_group
from .monitor_tenants import make_demo_tenant, seed_tenant
from .observed_data import (
    CcuPeak,
    CcuSummary,
    FeatureUsage,
    LicenseServer,
    ObservedData,
    ProductUsage,
    make_partner,
)
from .state import (
    HistoryMonth,
    LicenseScenario,
    SimCustomer,
    SimulatorState,
    generate_history,
    utcnow,
)

SEED_CUSTOMER_ID = "xingqit48867"
SEED_CLIENT_ID = "seed-client"
SEED_CLIENT_SECRET = "seed-secret-Zq8!"

DEMO_CUSTOMER_IDS = ("acme-demo", "globex-demo", "initech-demo")


def _seed_month(month: date, available: int) -> HistoryMonth:
    return HistoryMonth(
        month=month,
        available=available,
        user_cumulative=3,
        user_new=0,
        user_released=0,
        device_cumulative=3,
        device_new=0,
        device_released=0,
    )


def seed_state() -> SimulatorState:
    """One customer whose answers are the documented examples of seeds 001 and 002.

    Only ``timeStamp`` and ``daysToExpire`` depend on the clock; with the clock set to
    2021-12-19T02:56:22Z they are the seed's values too (``daysToExpire`` 507). Its Monitor
    data is :func:`~exporter.simulator.monitor_tenants.seed_tenant` (fixed, not living).
    """
    licensing = LicenseScenario(
        product_name="XenDesktop",
        product_edition="XAXDFull",
        available=25,
        user_used=3,
        device_used=3,
        user_released=0,
        device_released=0,
        next_expiry=datetime(2023, 5, 10, tzinfo=UTC),
        expiring_count=25,
        next_activation=None,
        activating_count=0,
        entitled=True,
        history=[
            _seed_month(date(2021, 10, 1), 50),
            _seed_month(date(2021, 11, 1), 50),
            _seed_month(date(2021, 12, 1), 25),
        ],
    )
    customer = SimCustomer(
        customer_id=SEED_CUSTOMER_ID,
        client_id=SEED_CLIENT_ID,
        client_secret=SEED_CLIENT_SECRET,
        licensing=licensing,
        monitor=seed_tenant(),
    )
    return SimulatorState(customers={customer.customer_id: customer})


def _midnight_in(now: datetime, days: int) -> datetime:
    """Midnight UTC ``days`` calendar days after ``now`` (so ``daysToExpire`` == days)."""
    return datetime.combine((now.astimezone(UTC) + timedelta(days=days)).date(), time(), UTC)


# Monitor tenant sizes of the demo customers: (seed, open sessions, machines).
_DEMO_MONITOR = {
    "acme-demo": (11, 120, 45),
    "globex-demo": (22, 150, 60),
    "initech-demo": (33, 40, 20),
}


# Demo tenants with an autoscaled delivery group (autoscale.py), and its machines.
_DEMO_AUTOSCALED = {"acme-demo": 6}


def _demo_customer(customer_id: str, licensing: LicenseScenario, now: datetime) -> SimCustomer:
    seed, sessions, machines = _DEMO_MONITOR[customer_id]
    monitor = make_demo_tenant(now, seed=seed, sessions=sessions, machines=machines)
    if customer_id in _DEMO_AUTOSCALED:
        add_autoscaled_group(monitor, _DEMO_AUTOSCALED[customer_id], now)
    return SimCustomer(
        customer_id=customer_id,
        client_id=f"{customer_id}-client",
        client_secret=f"{customer_id}-secret",
        licensing=licensing,
        monitor=monitor,
    )


def pin_autoscale(state: SimulatorState, pinned: str | None) -> None:
    """Pin every autoscaled group of `state` in one of `autoscale.STATES` (None: follow the
    clock again); the tenants show it from their next OData request."""
    if pinned is not None and pinned not in STATES:
        raise ValueError(f"autoscale state must be one of {', '.join(STATES)}")
    for customer in state.customers.values():
        if customer.monitor.autoscale is not None:
            customer.monitor.autoscale.pinned = pinned


def autoscale_night(state: SimulatorState) -> None:
    """The nightly state: the autoscaled group's machines off and unregistered but one, on
    and registered. Unregistered machines, yet no outage: no alert should fire."""
    pin_autoscale(state, "night")


def autoscale_outage(state: SimulatorState) -> None:
    """The outage: the autoscaled group's machines all powered on and none registered."""
    pin_autoscale(state, "outage")


def _demo_licensing(
    now: datetime,
    *,
    available: int,
    user_used: int,
    device_used: int,
    expiry_days: int,
    drift_amplitude: int,
    drift_period_minutes: float,
    drift_phase: float,
    activation_days: int | None = None,
    activating_count: int = 0,
) -> LicenseScenario:
    return LicenseScenario(
        available=available,
        user_used=user_used,
        device_used=device_used,
        next_expiry=_midnight_in(now, expiry_days),
        expiring_count=available,
        next_activation=None if activation_days is None else _midnight_in(now, activation_days),
        activating_count=activating_count,
        history=generate_history(
            now.date(), available=available, user_used=user_used, device_used=device_used
        ),
        drift_amplitude=drift_amplitude,
        drift_period_minutes=drift_period_minutes,
        drift_phase=drift_phase,
    )


def demo_state(now: datetime | None = None) -> SimulatorState:
    """Three plausible customers; dates are anchored on ``now`` (default: the real time).

    * ``acme-demo``: healthy, 500 licences, ~320 used, expiry in 200 days, 100 more licences
      activating in 45 days;
    * ``globex-demo``: in overage, 100 licences, ~112 used (drift keeps it above 100);
    * ``initech-demo``: 250 licences expiring in 20 days.

    ``acme-demo`` also answers the observed APIs (:func:`observed_data`, with a partner of 12
    customers), which ``--demo`` enables for it.

    The state keeps the real clock, so usage drifts by a few licences as minutes pass, and
    the Monitor tenants (built at ``now``) are ticked to the clock on each OData request.
    """
    anchor = (now or utcnow()).astimezone(UTC)
    customers = [
        _demo_customer(
            "acme-demo",
            _demo_licensing(
                anchor,
                available=500,
                user_used=320,
                device_used=337,
                expiry_days=200,
                activation_days=45,
                activating_count=100,
                drift_amplitude=4,
                drift_period_minutes=47.0,
                drift_phase=0.0,
            ),
            anchor,
        ),
        _demo_customer(
            "globex-demo",
            _demo_licensing(
                anchor,
                available=100,
                user_used=112,
                device_used=118,
                expiry_days=310,
                drift_amplitude=3,
                drift_period_minutes=31.0,
                drift_phase=1.0,
            ),
            anchor,
        ),
        _demo_customer(
            "initech-demo",
            _demo_licensing(
                anchor,
                available=250,
                user_used=181,
                device_used=190,
                expiry_days=20,
                drift_amplitude=3,
                drift_period_minutes=23.0,
                drift_phase=2.0,
            ),
            anchor,
        ),
    ]
    # acme-demo is also a Citrix partner with on-premises License Servers: the observed APIs
    # (concurrent model, other products, License Servers, partner customers) have data too.
    customers[0].observed = observed_data(anchor, tenants=DEMO_PARTNER_TENANTS)
    return SimulatorState(customers={c.customer_id: c for c in customers})


DEMO_PARTNER_TENANTS = 12
OBSERVED_TENANTS = 500
HEALTHY_SERVER = "ls1.corp.example.com"
SILENT_SERVER = "ls2.branch.example.com"


def observed_data(now: datetime, *, tenants: int = OBSERVED_TENANTS) -> ObservedData:
    """The observed APIs' answers, with dates anchored on ``now``:

    * concurrent model: 57 of 200 licenses in use, peaks 83 (24 h), 121 (month), 164 (all time);
    * ``secureworkspaceaccess``: 42 of 100 used, all 100 expiring in 90 days; ``xenmobile``
      is absent, so it answers 404 (not entitled);
    * License Servers: ``ls1.corp.example.com`` healthy (phoned home 2 hours ago, licenses
      until 200 days from now); ``ls2.branch.example.com`` stopped phoning home 3 days ago,
      its CCU licenses expire in 20 days and it is not compliant;
    * this month's usage: feature ``XDT_PLT_UD`` in two SKUs (ls1 120 users of which 20 free
      plus 5 paid, ls2 30 free), ``XDT_ADV_CCU`` on ls2 (15 paid);
    * a partner (the customer itself) with ``tenants`` customers
      (:func:`~exporter.simulator.observed_data.make_partner`) and 37 License Servers.
    """
    anchor = now.astimezone(UTC)
    return ObservedData(
        ccu=CcuSummary(
            total=200,
            assigned=57,
            report_time=anchor - timedelta(minutes=10),
            last_24h_peak=CcuPeak(83, anchor - timedelta(hours=5)),
            month_peak=CcuPeak(121, anchor - timedelta(days=3)),
            all_time_peak=CcuPeak(164, datetime(2023, 3, 14, 9, 30, tzinfo=UTC)),
        ),
        products={
            "secureworkspaceaccess": ProductUsage(
                product_name="SecureWorkspaceAccess",
                product_edition="Standard",
                available=100,
                used=42,
                next_expiry=_midnight_in(anchor, 90),
                expiring_count=100,
            )
        },
        license_servers=[
            LicenseServer(
                fqdn=HEALTHY_SERVER,
                host_id="host-ls1",
                phoning_home=True,
                last_phone_home=anchor - timedelta(hours=2),
                license_expiration=_midnight_in(anchor, 200),
            ),
            LicenseServer(
                fqdn=SILENT_SERVER,
                host_id="host-ls2",
                phoning_home=False,
                last_phone_home=anchor - timedelta(days=3),
                license_expiration=_midnight_in(anchor, 20),
                compliant=False,
                ccu=True,
            ),
        ],
        usage={
            anchor.strftime("%Y-%m"): [
                FeatureUsage(
                    "CVAD_PREM_UD",
                    "XDT_PLT_UD",
                    "Citrix Virtual Apps and Desktops Premium",
                    {HEALTHY_SERVER: (120, 20), SILENT_SERVER: (30, 30)},
                ),
                FeatureUsage(
                    "CVAD_PREM_UD_TRIAL",
                    "XDT_PLT_UD",
                    "Citrix Virtual Apps and Desktops Premium",
                    {HEALTHY_SERVER: (5, 0)},
                ),
                FeatureUsage(
                    "CVAD_ADV_CCU",
                    "XDT_ADV_CCU",
                    "Citrix Virtual Apps and Desktops Advanced Concurrent",
                    {SILENT_SERVER: (15, 0)},
                ),
            ]
        },
        partner=make_partner(tenants, license_servers=37),
    )


def observed_state(
    now: datetime | None = None, *, tenants: int = OBSERVED_TENANTS
) -> SimulatorState:
    """:func:`seed_state` whose customer also answers the observed APIs (:func:`observed_data`)."""
    state = seed_state()
    customer = state.customers[SEED_CUSTOMER_ID]
    customer.observed = observed_data(now or utcnow(), tenants=tenants)
    return state
