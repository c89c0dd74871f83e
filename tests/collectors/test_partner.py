"""The partner collector: summaries and per-customer figures, sanitised account names,
cardinality with 500 customers, 404 handling and the optional active-use calls."""

from __future__ import annotations

import pytest

from exporter.collector.fields import repair_label
from exporter.collector.observed import NAME_LIMIT
from exporter.simulator.observed_data import make_partner
from exporter.simulator.state import SimulatorState
from tests.support.helpers import SEED_CUSTOMER, samples, value
from tests.support.observed_helpers import fixed_state, observed_config, rescrape, scrape

CID = {"customer_id": SEED_CUSTOMER}
ODD_NAME = "Ünïcode Customer 0000 with a very long account name that goes on"
T0 = {**CID, "tenant_id": "tenant0000"}
T1 = {**CID, "tenant_id": "tenant0001"}
T2 = {**CID, "tenant_id": "tenant0002"}
NAMES = {
    "tenant0000": ODD_NAME,
    "tenant0001": "Customer 0001 Ltd",
    "tenant0002": "Customer 0002 Ltd",
}
SUMMARY_SERIES = 9  # 4 on-premises + 4 DaaS summary figures + citrix_partner_customers
TENANT_SERIES = 6  # on-premises users paid/free + DaaS licenses/users/overage + the info


@pytest.fixture
def sim_state() -> SimulatorState:
    return fixed_state(tenants=3)


def partner_series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {key: v for key, v in samples(text).items() if key[0].startswith("citrix_partner_")}


async def test_partner_summary_and_per_customer_values(base_url, exporter_factory, sim_state):
    _, text = await scrape(exporter_factory, observed_config(base_url, partner={}))
    assert value(text, "citrix_up", collector="partner") == 1
    # Tenants 0..2: on-premises users 20/21/22 with 0/1/2 free; DaaS licenses 50/60/70, users
    # 53/58/67 (tenant 0 is in overage by 3).
    expected = {
        ("citrix_partner_customers", ()): 3,
        ("citrix_partner_onprem_users", (("kind", "paid"),)): 60,
        ("citrix_partner_onprem_users", (("kind", "free"),)): 3,
        ("citrix_partner_onprem_license_servers", ()): 37,
        ("citrix_partner_onprem_customers", ()): 3,
        ("citrix_partner_daas_customers", ()): 3,
        ("citrix_partner_daas_licenses", ()): 180,
        ("citrix_partner_daas_users", ()): 178,
        ("citrix_partner_daas_overage", ()): 3,
    }
    for (name, extra), number in expected.items():
        assert value(text, name, **CID, **dict(extra)) == number, name
    # No kind="total" beside its parts: sum() counts every user once.
    assert value(text, "citrix_partner_onprem_users", kind="total", **CID) is None
    per_tenant = {
        "paid": (20, 20, 20),
        "free": (0, 1, 2),
    }
    for kind, numbers in per_tenant.items():
        for labels, number in zip((T0, T1, T2), numbers, strict=True):
            assert value(text, "citrix_partner_tenant_onprem_users", kind=kind, **labels) == number
    for name, numbers in {
        "citrix_partner_tenant_daas_licenses": (50, 60, 70),
        "citrix_partner_tenant_daas_users": (53, 58, 67),
        "citrix_partner_tenant_daas_overage": (3, 0, 0),
    }.items():
        for labels, number in zip((T0, T1, T2), numbers, strict=True):
            assert value(text, name, **labels) == number, name
    assert len(partner_series(text)) == SUMMARY_SERIES + 3 * TENANT_SERIES
    # Names only on the info series, one per customer, joined by tenant_id.
    for labels in (T0, T1, T2):
        name = NAMES[labels["tenant_id"]]
        assert value(text, "citrix_partner_tenant_info", tenant_name=name, **labels) == 1
    assert 'tenant_name="' not in "".join(
        line for line in text.splitlines() if not line.startswith("citrix_partner_tenant_info{")
    )
    assert "citrix_upstream_data_issues_total{" not in text
    assert "citrix_partner_tenant_daas_active_users{" not in text  # active_use is off
    assert sim_state.count("/activeuse/partner/tenant/cloud/cvad/current") == 0


async def test_500_customers_grow_the_series_linearly(base_url, exporter_factory, sim_state):
    sim_state.customers[SEED_CUSTOMER].observed.partner = make_partner(500, license_servers=37)
    _, text = await scrape(exporter_factory, observed_config(base_url, partner={}))
    found = partner_series(text)
    assert len(found) == SUMMARY_SERIES + 500 * TENANT_SERIES == 3009
    assert value(text, "citrix_partner_customers", **CID) == 500
    assert value(text, "citrix_partner_daas_customers", **CID) == 500
    tenants = {dict(labels).get("tenant_id") for _, labels in found} - {None}
    assert len(tenants) == 500
    # Nothing per user: the only labels are the partner, the customer and small enums.
    label_names = {name for _, labels in found for name, _ in labels}
    assert label_names == {"customer_id", "tenant_id", "tenant_name", "kind"}
    named = {name for (name, labels) in found if "tenant_name" in dict(labels)}
    assert named == {"citrix_partner_tenant_info"}
    in_overage = [
        labels for (name, labels), v in found.items()
        if name == "citrix_partner_tenant_daas_overage" and v > 0
    ]  # fmt: skip
    assert len(in_overage) == len(range(0, 500, 7))
    # Four requests whatever the number of customers.
    assert sim_state.count("/cvad/customers") == 2 and sim_state.count("/cvad/summary") == 2


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Contoso Ltd", "Contoso Ltd"),
        ("  Contoso\nLtd\t ", "Contoso Ltd"),
        ("A\x00B\x1bC", "A B C"),
        ("x" * 80, "x" * 64),
        ("y" * 63 + " z", "y" * 63),
        ("\n\t ", ""),
    ],
)
def test_account_names_are_sanitised(raw, clean):
    assert repair_label(raw, NAME_LIMIT, tidy=True) == (clean, False)  # tidying is no repair


async def test_a_404_call_is_skipped_and_every_404_is_not_entitled(
    base_url, exporter_factory, sim_state
):
    config = observed_config(
        base_url, partner={"onprem_customers_path": "/{partner_id}/no/such/list"}
    )
    exporter, text = await scrape(exporter_factory, config)
    assert value(text, "citrix_up", collector="partner") == 1
    assert "citrix_partner_tenant_onprem_users{" not in text
    assert value(text, "citrix_partner_tenant_daas_users", **T1) == 58
    sim_state.customers[SEED_CUSTOMER].observed.partner = None  # not a partner: all 404
    text = await rescrape(exporter)
    job = exporter.poller.jobs[0]
    assert job.status.last_ok is True and "HTTP 404 for every partner call" in str(
        job.status.not_entitled
    )
    assert value(text, "citrix_collector_entitled", collector="partner") == 0
    assert "citrix_partner_" not in text  # dropped at once, not kept until max_staleness


async def test_null_paths_are_not_called_and_partner_id_is_used(
    base_url, exporter_factory, sim_state
):
    config = observed_config(
        base_url,
        partner={
            "partner_id": SEED_CUSTOMER,
            "onprem_summary_path": None,
            "onprem_customers_path": None,
            "daas_summary_path": None,
        },
    )
    _, text = await scrape(exporter_factory, config)
    called = set(sim_state.counts_by_path()) - {f"/cctrustoauth2/{SEED_CUSTOMER}/tokens/clients"}
    assert called == {f"/{SEED_CUSTOMER}/licenseusage/partner/cloud/cvad/customers"}
    assert value(text, "citrix_partner_customers", **CID) == 3
    assert "citrix_partner_onprem_users{" not in text


async def test_another_partner_id_is_refused(base_url, exporter_factory, sim_state):
    config = observed_config(base_url, partner={"partner_id": "someone-else"})
    _, text = await scrape(exporter_factory, config)
    assert value(text, "citrix_up", collector="partner") == 0
    assert {r.path.split("/")[1] for r in sim_state.requests if "licenseusage" in r.path} == {
        "someone-else"
    }


async def test_active_use_per_customer(base_url, exporter_factory, sim_state):
    config = observed_config(base_url, partner={"active_use": True, "active_use_concurrency": 2})
    _, text = await scrape(exporter_factory, config)
    for labels, (ccu, ud) in zip((T0, T1, T2), ((0, 10), (1, 11), (2, 12)), strict=True):
        assert value(text, "citrix_partner_tenant_daas_active_users", model="ccu", **labels) == ccu
        assert value(text, "citrix_partner_tenant_daas_active_users", model="ud", **labels) == ud
    queries = sorted(
        r.query["customer"] for r in sim_state.requests if r.path.endswith("/cvad/current")
    )
    assert queries == ["tenant0000", "tenant0001", "tenant0002"]
    assert len(partner_series(text)) == SUMMARY_SERIES + 3 * (TENANT_SERIES + 2)
