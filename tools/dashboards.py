"""Generate grafana/dashboards/*.json (the committed files are this script's output).

    python -m tools.dashboards            # rewrite grafana/dashboards/*.json
    python -m tools.dashboards --check    # exit 1 and name the files that are out of date

tests/deploy/test_dashboards.py fails when the committed JSON differs from what this produces,
so edit the dashboards here, regenerate, and commit both.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .grafana import (
    UP_DOWN,
    Column,
    Json,
    Layout,
    Q,
    Scope,
    by_regexp,
    dashboard,
    dashboard_link,
    fixed_color,
    gauge,
    heatmap,
    nan_mapping,
    query_variable,
    relative_time,
    stat,
    state_timeline,
    table,
    thresholds,
    timeseries,
)
from .rules import PARAMS

OUT_DIR = Path(__file__).resolve().parent.parent / "grafana" / "dashboards"

JOB_VARIABLE = query_variable(
    "job", "Job", "label_values(citrix_exporter_build_info, job)", "Prometheus job of the exporter"
)
INSTANCE_VARIABLE = query_variable(
    "instance",
    "Instance",
    'label_values(citrix_exporter_build_info{job=~"$job"}, instance)',
    "Exporter replica (one per shard when customers are sharded)",
)

# Colours of request codes in the upstream panels: throttling and server errors stand out.
CODE_COLOURS = [
    by_regexp("/ 429$/", color=fixed_color("orange")),
    by_regexp("/ 5\\d\\d$/", color=fixed_color("red")),
    by_regexp("/ error$/", color=fixed_color("purple")),
]

# -- Citrix Cloud licensing ----------------------------------------------------------------------

LIC = Scope("job", "instance", "customer_id", "product")
LIC_BY = "customer_id, product, edition"
LIC_LEGEND = "{{customer_id}} {{product}} {{edition}}"
DAYS_STEPS = thresholds("red", (7, "orange"), (30, "green"))


def lic(metric: str, *extra: str, by: str = LIC_BY) -> str:
    """The metric per customer/product/edition; max() folds duplicate exporter replicas."""
    return f"max by ({by}) ({LIC(metric, *extra)})"


LIC_COLUMNS = {"customer_id": "Customer", "product": "Product", "edition": "Edition"}


def date_column(title: str, query: str) -> Column:
    """A column of a `_timestamp_seconds` query shown as a date (Grafana counts milliseconds)."""
    return Column(title, f"{query} * 1000", unit="dateTimeAsIso")


def days_until(metric: str) -> str:
    return f"({lic(metric)} - time()) / 86400"


def expiry_columns(days_title: str) -> list[Column]:
    """Days until the next expiry (coloured by the expiry alert's thresholds) and how many
    licenses expire then: the pair both licensing tables show."""
    return [
        Column(
            days_title,
            days_until("citrix_licenses_next_expiry_timestamp_seconds"),
            unit="none",
            decimals=0,
            steps=DAYS_STEPS,
            cell="color-text",
        ),
        Column("Expiring", lic("citrix_licenses_expiring")),
    ]


def ratio_of_available(metric: str) -> str:
    return f"{lic(metric)} / clamp_min({lic('citrix_licenses_available')}, 1)"


# Panels that show one value per customer show the TOP customers only (topk / bottomk), so they
# stay readable with hundreds of customers; the tables list every customer.
TOP = 10
LICENSING_UID = "citrix-cloud-licensing"
# A customer's cell links to the licensing dashboard filtered to that customer.
CUSTOMER_LINK = dashboard_link("Licenses of this customer", LICENSING_UID, "customer_id")
# The overage forecast uses the CitrixLicensesOverageForecast alert's trend window.
FORECAST_WINDOW = PARAMS["forecast_window"].default
# The CitrixLicensesLow alert's share of available licenses remaining: red below it.
LOW_SHARE = float(PARAMS["low_share"].default)


def overage_column(title: str, expr: str) -> Column:
    """Licenses over: red from 1."""
    return Column(title, expr, steps=thresholds("green", (1, "red")), cell="color-background")


def share_used_column(title: str, expr: str) -> Column:
    """A share of the licenses in use: orange from 90 %, red from 100 % (overage)."""
    steps = thresholds("green", (0.9, "orange"), (1, "red"))
    return Column(title, expr, unit="percentunit", steps=steps, cell="color-text")


def top(expr: str, k: str = "topk") -> str:
    """The TOP series of `expr` (`k` is topk or bottomk)."""
    return f"{k}({TOP}, {expr})"


def overage_then_share(overage: str, share: str) -> str:
    """A rank ordering rows by overage, then by share used (both highest first): the overage
    times 1000 plus the share (capped at 999, far above any real share)."""
    return f"{overage} * 1000 + clamp_max({share}, 999)"


def days_to_overage() -> str:
    """Days until the fitted usage line crosses the available licenses, the alert's formula:
    predict_linear(used[w], d) > available exactly when this is < d. 0 while in overage; NaN
    (shown as "no overage forecast") when usage is flat or falling."""
    used = LIC("citrix_licenses_used")
    fit = f"max by ({LIC_BY}) (predict_linear({used}[{FORECAST_WINDOW}], 0))"
    growth = f"max by ({LIC_BY}) (deriv({used}[{FORECAST_WINDOW}]) > 0)"
    days = f"({lic('citrix_licenses_available')} - {fit}) / {growth} / 86400"
    return f"clamp_min({days}, 0) or {lic('citrix_licenses_used')} * NaN"


def month_used() -> str:
    """Licenses used in each month of the historical usage (live or backfilled): the smaller
    of the user and device assignments, as citrix_licenses_used is."""
    by_assignment = LIC_BY + ", assignment"
    return f"min by ({LIC_BY}) ({lic('citrix_licenses_month_assigned', by=by_assignment)})"


def licensing() -> Json:
    layout = Layout()
    layout.row("All customers")
    layout.add(
        table(
            "Customers by overage and share used",
            "Every selected customer and product, those in overage first (most licenses over "
            "first), then by the share of available licenses used: the customers that need "
            "licenses soonest are at the top. Used % is citrix_licenses_used / "
            "citrix_licenses_available; overage and the days until the next expiry are "
            "highlighted. Click a customer to see only its licenses.",
            "short",
            LIC_COLUMNS,
            [
                overage_column("Overage", lic("citrix_licenses_overage")),
                share_used_column("Used %", ratio_of_available("citrix_licenses_used")),
                Column(
                    "Remaining %",
                    ratio_of_available("citrix_licenses_remaining"),
                    unit="percentunit",
                    steps=thresholds("red", (LOW_SHARE, "orange"), (0.2, "green")),
                    cell="color-background",
                ),
                Column("Available", lic("citrix_licenses_available")),
                Column("Used", lic("citrix_licenses_used")),
                Column("Remaining", lic("citrix_licenses_remaining")),
                *expiry_columns("Days to next expiry"),
            ],
            sort_by="Overage",
            sort_key=overage_then_share(
                lic("citrix_licenses_overage"), ratio_of_available("citrix_licenses_used")
            ),
            links={"Customer": CUSTOMER_LINK},
        ),
        24,
        10,
    )

    layout.row(f"Per customer and product (top {TOP})")
    for title, metric, what in [
        ("Available", "citrix_licenses_available", "Licenses available (purchased)"),
        ("Used", "citrix_licenses_used", "Licenses in use (the smaller of user and device usage)"),
    ]:
        layout.add(
            stat(
                title,
                f"{what}, from {metric}, for the {TOP} customers and products with the most.",
                "short",
                Q(top(lic(metric)), LIC_LEGEND),
                steps=thresholds("blue"),
            ),
            6,
            5,
        )
    layout.add(
        stat(
            "Remaining",
            f"Licenses not yet consumed (citrix_licenses_remaining) of the {TOP} customers and "
            "products with the fewest; red when none are left.",
            "short",
            Q(top(lic("citrix_licenses_remaining"), "bottomk"), LIC_LEGEND),
            steps=thresholds("red", (1, "green")),
        ),
        6,
        5,
    )
    layout.add(
        stat(
            "Overage",
            "Licenses used beyond those available (citrix_licenses_overage), the "
            f"{TOP} customers and products with the most. Anything above 0 is highlighted: the "
            "customer is out of compliance or will be billed for overage.",
            "short",
            Q(top(lic("citrix_licenses_overage")), LIC_LEGEND),
            steps=thresholds("green", (1, "red")),
            color_mode="background",
        ),
        6,
        5,
    )
    for title, metric, k, colours, steps, high in [
        ("Used (% of available)", "citrix_licenses_used", "topk",
         "The highest shares. Orange from 90 %, red from 100 % (overage).",
         thresholds("green", (0.9, "orange"), (1, "red")), 1.2),
        ("Remaining (% of available)", "citrix_licenses_remaining", "bottomk",
         "The lowest shares. Red below 10 % (the CitrixLicensesLow alert), orange below 20 %.",
         thresholds("red", (LOW_SHARE, "orange"), (0.2, "green")), 1),
    ]:  # fmt: skip
        layout.add(
            gauge(
                title,
                f"{metric} / citrix_licenses_available, {TOP} customers and products. {colours}",
                "percentunit",
                Q(top(ratio_of_available(metric), k), LIC_LEGEND),
                steps=steps,
                low=0,
                high=high,
            ),
            12,
            6,
        )

    layout.row("Over time")
    layout.add(
        timeseries(
            "License usage over time",
            "Licenses used (solid) against licenses available (dashed), per customer and "
            "product. The licensing collector polls every 15 minutes by default, hence steps.",
            "short",
            Q(lic("citrix_licenses_used"), LIC_LEGEND + " used"),
            Q(lic("citrix_licenses_available"), LIC_LEGEND + " available"),
            overrides=[
                by_regexp(
                    "/ available$/",
                    **{"custom.lineStyle": {"fill": "dash", "dash": [10, 10]}},
                    **{"custom.fillOpacity": 0},
                )
            ],
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Overage over time",
            "citrix_licenses_overage per customer and product: licenses used beyond those "
            "available.",
            "short",
            Q(lic("citrix_licenses_overage"), LIC_LEGEND),
            steps=thresholds("green", (1, "red")),
            threshold_style="area",
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "User vs device assignment",
            "Licenses in use by assignment kind (citrix_licenses_usage{assignment}); Citrix "
            "counts the smaller of the two as used. Released licenses "
            "(citrix_licenses_released) are shown dashed.",
            "short",
            Q(
                lic("citrix_licenses_usage", by=LIC_BY + ", assignment"),
                LIC_LEGEND + " {{assignment}}",
            ),
            Q(
                lic("citrix_licenses_released", by=LIC_BY + ", assignment"),
                LIC_LEGEND + " {{assignment}} released",
            ),
            overrides=[
                by_regexp("/ released$/", **{"custom.lineStyle": {"fill": "dash", "dash": [4, 4]}})
            ],
        ),
        24,
        8,
    )

    trend_rows(layout)

    layout.row("Expiry and activation")
    layout.add(
        stat(
            "Days until next expiry",
            "(citrix_licenses_next_expiry_timestamp_seconds - time()) / 86400 per customer and "
            "product: orange below 30 days, red below 7 days (the CitrixLicensesExpiring "
            "alert fires at the same thresholds while licenses are expiring).",
            "none",
            Q(days_until("citrix_licenses_next_expiry_timestamp_seconds"), LIC_LEGEND),
            steps=DAYS_STEPS,
            decimals=0,
            color_mode="background",
        ),
        8,
        7,
    )
    layout.add(
        table(
            "Expiry and activation schedule",
            "When the next licenses expire and how many (nextExpiredLicenses), and when the "
            "next purchased licenses become available and how many (nextActivatingLicense; "
            "empty when none is scheduled).",
            "short",
            LIC_COLUMNS,
            [
                date_column("Next expiry", lic("citrix_licenses_next_expiry_timestamp_seconds")),
                *expiry_columns("Days to expiry"),
                date_column(
                    "Next activation", lic("citrix_licenses_next_activation_timestamp_seconds")
                ),
                Column("Activating", lic("citrix_licenses_activating")),
            ],
            sort_by="Days to expiry",
        ),
        16,
        7,
    )

    layout.row("Current month (historical usage)")
    layout.add(
        table(
            "This month: available licenses",
            "From the historical usage API (fetched once a day): the month these figures "
            "describe (citrix_licenses_month_start_timestamp_seconds) and the licenses available "
            "in it.",
            "short",
            LIC_COLUMNS,
            [
                date_column("Month", lic("citrix_licenses_month_start_timestamp_seconds")),
                Column("Available", lic("citrix_licenses_month_available")),
            ],
            sort_by="Customer",
        ),
        10,
        7,
    )
    by_assignment = LIC_BY + ", assignment"
    layout.add(
        table(
            "This month: assignments",
            "From the historical usage API, per assignment kind: licenses assigned "
            "cumulatively up to this month, newly assigned and released in the month.",
            "short",
            {**LIC_COLUMNS, "assignment": "Assignment"},
            [
                Column("Assigned", lic("citrix_licenses_month_assigned", by=by_assignment)),
                Column(
                    "Newly assigned",
                    lic("citrix_licenses_month_newly_assigned", by=by_assignment),
                ),
                Column("Released", lic("citrix_licenses_month_released", by=by_assignment)),
            ],
            sort_by="Customer",
        ),
        14,
        7,
    )

    concurrent_rows(layout)
    license_server_rows(layout)
    partner_rows(layout)

    return dashboard(
        uid=LICENSING_UID,
        title="Citrix Cloud licensing",
        description="License usage, overage, expiry and monthly figures per Citrix Cloud "
        "customer and product, the concurrent license model, registered License Servers and "
        "a partner's customers, from citrix-cloud-exporter.",
        variables=[
            JOB_VARIABLE,
            INSTANCE_VARIABLE,
            query_variable(
                "customer_id",
                "Customer",
                'label_values(citrix_licenses_available{job=~"$job", instance=~"$instance"}, '
                "customer_id)",
                "Citrix Cloud customer id",
            ),
            query_variable(
                "product",
                "Product",
                'label_values(citrix_licenses_available{job=~"$job", instance=~"$instance", '
                'customer_id=~"$customer_id"}, product)',
                "Licensed product",
            ),
        ],
        layout=layout,
        time_from="now-7d",
    )


def trend_rows(layout: Layout) -> None:
    layout.row("Trend, forecast and billing")
    layout.add(
        relative_time(
            timeseries(
                "Usage trend (12 months)",
                "Licenses used (the smaller of user and device assignments, "
                "citrix_licenses_month_assigned) against licenses available "
                "(citrix_licenses_month_available, dashed) per month, over the last 12 months "
                "whatever the dashboard's time range. The historical usage API's months, as "
                "recorded since the exporter started or loaded by `citrix-cloud-exporter "
                "backfill`.",
                "short",
                Q(month_used(), LIC_LEGEND + " used"),
                Q(lic("citrix_licenses_month_available"), LIC_LEGEND + " available"),
                overrides=[
                    by_regexp(
                        "/ available$/",
                        **{"custom.lineStyle": {"fill": "dash", "dash": [10, 10]}},
                        **{"custom.fillOpacity": 0},
                    )
                ],
            ),
            "1y",
            interval="1d",
        ),
        24,
        8,
    )
    layout.add(
        table(
            "Overage forecast",
            "Days until a customer runs out of licenses at the current trend: usage "
            f"(citrix_licenses_used) fitted over the last {FORECAST_WINDOW} with "
            "predict_linear, and the day the line crosses citrix_licenses_available (the "
            "CitrixLicensesOverageForecast alert warns below "
            f'{PARAMS["forecast_days"].default} days). 0 while in overage; "no overage '
            'forecast" when usage is flat or falling. Growth is licenses per day.',
            "short",
            LIC_COLUMNS,
            [
                Column(
                    "Days until overage",
                    days_to_overage(),
                    unit="none",
                    decimals=0,
                    steps=DAYS_STEPS,
                    cell="color-text",
                    mappings=nan_mapping("no overage forecast"),
                ),
                Column(
                    "Growth per day",
                    f"max by ({LIC_BY}) "
                    f"(deriv({LIC('citrix_licenses_used')}[{FORECAST_WINDOW}])) * 86400",
                    decimals=1,
                ),
                Column("Used", lic("citrix_licenses_used")),
                Column("Available", lic("citrix_licenses_available")),
            ],
            sort_by="Days until overage",
            links={"Customer": CUSTOMER_LINK},
        ),
        12,
        8,
    )

    def peak(metric: str) -> str:
        return f"max by ({LIC_BY}) (max_over_time({LIC(metric)}[$__range]))"

    layout.add(
        relative_time(
            table(
                "Monthly peak (billing)",
                "This calendar month so far, whatever the dashboard's time range: the highest "
                "license usage (citrix_licenses_used) and overage (citrix_licenses_overage) "
                "per customer and product, and the peak against the licenses available now: "
                "what a usage-based bill counts. Highest overage first.",
                "short",
                LIC_COLUMNS,
                [
                    overage_column("Peak overage", peak("citrix_licenses_overage")),
                    Column("Peak used", peak("citrix_licenses_used")),
                    Column("Available", lic("citrix_licenses_available")),
                    share_used_column(
                        "Peak % of available",
                        f"{peak('citrix_licenses_used')} / "
                        f"clamp_min({lic('citrix_licenses_available')}, 1)",
                    ),
                ],
                sort_by="Peak overage",
                descending=True,
                links={"Customer": CUSTOMER_LINK},
            ),
            "now/M",
        ),
        12,
        8,
    )


# The rows below show the collectors of observed (undocumented) APIs: concurrent,
# license_servers and partner, disabled by default (docs/observed-apis.md). Their metrics have
# no `product` label.
OBSERVED_NOTE = " Empty unless the {} collector is enabled (an observed, undocumented API)."
NO_PRODUCT = ("product",)
SERVER_BY = "customer_id, fqdn"
TENANT_BY = "customer_id, tenant_id"
INFO_BY = "customer_id, tenant_id, tenant_name"
ZERO_ONE = thresholds("red", (1, "green"))


def per(metric: str, by: str, *extra: str) -> str:
    """max by (`by`) of a metric without a product label (max folds exporter replicas)."""
    return f"max by ({by}) ({LIC(metric, *extra, without=NO_PRODUCT)})"


def named(expr: str) -> str:
    """A per-tenant `expr` with the tenant's account name, joined from its info series."""
    info = per("citrix_partner_tenant_info", INFO_BY)
    return f"({expr}) * on ({TENANT_BY}) group_left (tenant_name) {info}"


def onprem_users(by: str) -> str:
    """On-premises users, paid plus free (there is no kind="total": the sum is the total)."""
    return f"sum by ({by}) ({per('citrix_partner_tenant_onprem_users', by + ', kind')})"


def daas_share() -> str:
    """A partner's customer's DaaS users per DaaS license (above 1 in overage)."""
    users = per("citrix_partner_tenant_daas_users", TENANT_BY)
    return f"{users} / clamp_min({per('citrix_partner_tenant_daas_licenses', TENANT_BY)}, 1)"


def concurrent_rows(layout: Layout) -> None:
    note = OBSERVED_NOTE.format("concurrent")
    layout.row("Concurrent license model")
    layout.add(
        table(
            "Concurrent licenses and peaks",
            "The concurrent (CCU) model per customer: licenses available and in use at the last "
            "report (citrix_licenses_concurrent_available, _assigned), and the highest usage "
            "in the last 24 hours, this month and ever (citrix_licenses_concurrent_peak)." + note,
            "short",
            {"customer_id": "Customer"},
            [
                Column("Available", per("citrix_licenses_concurrent_available", "customer_id")),
                Column("In use", per("citrix_licenses_concurrent_assigned", "customer_id")),
                Column(
                    "Peak 24h",
                    per("citrix_licenses_concurrent_peak", "customer_id", 'window="24h"'),
                ),
                Column(
                    "Peak this month",
                    per("citrix_licenses_concurrent_peak", "customer_id", 'window="month"'),
                ),
                Column(
                    "All-time peak",
                    per("citrix_licenses_concurrent_peak", "customer_id", 'window="all_time"'),
                ),
                date_column(
                    "All-time peak at",
                    per(
                        "citrix_licenses_concurrent_peak_timestamp_seconds",
                        "customer_id",
                        'window="all_time"',
                    ),
                ),
            ],
            sort_by="Customer",
        ),
        12,
        7,
    )
    layout.add(
        timeseries(
            "Concurrent usage over time",
            "Concurrent licenses in use (solid) against those available (dashed), and the "
            "24-hour peak, per customer." + note,
            "short",
            Q(per("citrix_licenses_concurrent_assigned", "customer_id"), "{{customer_id}} in use"),
            Q(
                per("citrix_licenses_concurrent_available", "customer_id"),
                "{{customer_id}} available",
            ),
            Q(
                per("citrix_licenses_concurrent_peak", "customer_id", 'window="24h"'),
                "{{customer_id}} 24h peak",
            ),
            overrides=[
                by_regexp(
                    "/ available$/",
                    **{"custom.lineStyle": {"fill": "dash", "dash": [10, 10]}},
                    **{"custom.fillOpacity": 0},
                )
            ],
        ),
        12,
        7,
    )


def license_server_rows(layout: Layout) -> None:
    note = OBSERVED_NOTE.format("license_servers")
    last_phone_home = per("citrix_license_server_last_phone_home_timestamp_seconds", SERVER_BY)
    expiry = per("citrix_license_server_license_expiry_timestamp_seconds", SERVER_BY)
    layout.row("License Servers")
    layout.add(
        table(
            "License Servers",
            "On-premises License Servers registered with Citrix Cloud: whether each phones home "
            "(sends usage data), hours since it last did (red from 24, the "
            "CitrixLicenseServerNotPhoningHome alert), days until its licenses expire (the "
            "CitrixLicenseServerLicensesExpiring alert warns below 30), and its compliance, "
            "concurrent (CCU) and expired flags (1 = yes)." + note,
            "short",
            {"customer_id": "Customer", "fqdn": "License Server"},
            [
                Column(
                    "Phoning home",
                    per("citrix_license_server_phoning_home", SERVER_BY),
                    steps=ZERO_ONE,
                    cell="color-background",
                ),
                Column(
                    "Hours since phone-home",
                    f"(time() - {last_phone_home}) / 3600",
                    unit="none",
                    decimals=1,
                    steps=thresholds("green", (12, "orange"), (24, "red")),
                    cell="color-text",
                ),
                Column(
                    "Days to license expiry",
                    f"({expiry} - time()) / 86400",
                    unit="none",
                    decimals=0,
                    steps=DAYS_STEPS,
                    cell="color-text",
                ),
                Column(
                    "Compliant",
                    per("citrix_license_server_compliant", SERVER_BY),
                    steps=ZERO_ONE,
                    cell="color-text",
                ),
                Column("CCU", per("citrix_license_server_ccu", SERVER_BY)),
                Column(
                    "Expired",
                    per("citrix_license_server_expired", SERVER_BY),
                    steps=thresholds("green", (1, "red")),
                    cell="color-text",
                ),
            ],
            sort_by="Phoning home",
        ),
        24,
        7,
    )
    layout.add(
        timeseries(
            "License Server users by feature",
            "Users per License Server and feature this month, paid (count - freeUsersCount) "
            "and free, from the License Usage Insights data (citrix_license_server_users)." + note,
            "short",
            Q(
                per("citrix_license_server_users", SERVER_BY + ", feature, kind"),
                "{{fqdn}} {{feature}} {{kind}}",
            ),
        ),
        24,
        8,
    )


def partner_rows(layout: Layout) -> None:
    note = OBSERVED_NOTE.format("partner")
    layout.row("Partner customers")
    for title, metric, description, steps in [
        (
            "Customers",
            "citrix_partner_customers",
            "Customers of the partner in the per-customer lists (citrix_partner_customers).",
            thresholds("blue"),
        ),
        (
            "DaaS licenses",
            "citrix_partner_daas_licenses",
            "Citrix DaaS licenses across the partner's customers, as the partner summary "
            "states (citrix_partner_daas_licenses).",
            thresholds("blue"),
        ),
        (
            "DaaS users",
            "citrix_partner_daas_users",
            "Citrix DaaS users across the partner's customers, as the partner summary states "
            "(citrix_partner_daas_users).",
            thresholds("blue"),
        ),
        (
            "DaaS overage",
            "citrix_partner_daas_overage",
            "Citrix DaaS license overage across the partner's customers, as the partner "
            "summary states (citrix_partner_daas_overage); red above 0.",
            thresholds("green", (1, "red")),
        ),
    ]:
        layout.add(
            stat(
                title,
                description + note,
                "short",
                Q(per(metric, "customer_id"), "{{customer_id}}"),
                steps=steps,
            ),
            6,
            4,
        )
    layout.add(
        stat(
            "On-premises users",
            "Users of on-premises Citrix Virtual Apps and Desktops across the partner's "
            "customers, paid and free (their sum is the total), as the partner summary states "
            "(citrix_partner_onprem_users), and the License Servers it counts "
            "(citrix_partner_onprem_license_servers)." + note,
            "short",
            Q(per("citrix_partner_onprem_users", "customer_id, kind"), "{{customer_id}} {{kind}}"),
            Q(
                per("citrix_partner_onprem_license_servers", "customer_id"),
                "{{customer_id}} License Servers",
            ),
            steps=thresholds("blue"),
        ),
        24,
        4,
    )
    layout.add(
        table(
            "Partner customers",
            "Each of the partner's customers (tenant id, and the account name from "
            "citrix_partner_tenant_info): Citrix DaaS licenses, users and overage (the "
            "CitrixPartnerCustomerOverage alert fires above 0), the share of the DaaS licenses "
            "in use, and on-premises users, paid and free (their sum is the total). Customers "
            "in overage come first (most over first), then by share used. Click a customer id "
            "for its licenses (when the exporter also polls that customer)." + note,
            "short",
            {"customer_id": "Partner", "tenant_id": "Customer id", "tenant_name": "Account"},
            [
                overage_column(
                    "DaaS overage", named(per("citrix_partner_tenant_daas_overage", TENANT_BY))
                ),
                share_used_column("DaaS used %", named(daas_share())),
                Column(
                    "DaaS licenses", named(per("citrix_partner_tenant_daas_licenses", TENANT_BY))
                ),
                Column("DaaS users", named(per("citrix_partner_tenant_daas_users", TENANT_BY))),
                Column("On-prem users", named(onprem_users(TENANT_BY))),
                Column(
                    "On-prem paid",
                    named(per("citrix_partner_tenant_onprem_users", TENANT_BY, 'kind="paid"')),
                ),
                Column(
                    "On-prem free",
                    named(per("citrix_partner_tenant_onprem_users", TENANT_BY, 'kind="free"')),
                ),
            ],
            sort_by="DaaS overage",
            sort_key=named(
                overage_then_share(
                    per("citrix_partner_tenant_daas_overage", TENANT_BY), daas_share()
                )
            ),
            links={"Customer id": CUSTOMER_LINK},
        ),
        24,
        10,
    )


# -- Citrix DaaS sessions and machines -----------------------------------------------------------

DAAS = Scope("job", "instance", "customer_id", "delivery_group")
GROUP_BY = "customer_id, delivery_group"
GROUP_LEGEND = "{{customer_id}} {{delivery_group}}"
NO_GROUP = ("delivery_group",)  # citrix_connection_failures_total has no delivery_group label


# The CitrixLogonSlow alert's p95 threshold, drawn on the per-group p95 panel.
LOGON_P95_SECONDS = float(PARAMS["logon_p95_seconds"].default)
# The CitrixMachinesUnregistered alert's share of a group's powered-on machines: red above it.
UNREGISTERED_SHARE = float(PARAMS["unregistered_share"].default)


def total(metric: str, *extra: str, by: str | None = None) -> str:
    aggregation = f"sum by ({by})" if by else "sum"
    return f"{aggregation} ({DAAS(metric, *extra)})"


# With `omit_zero_states` the exporter leaves out state series whose value is 0 (sessions by
# state, machines by registration, power and fault state), so a sum over them can be empty.
# These two show 0 then, as they do when the exporter zero-fills (the default).
def state_total(metric: str, *extra: str) -> str:
    """The sum over every selected group; 0 when no series has the state."""
    return f"{total(metric, *extra)} or vector(0)"


def state_per_group(metric: str, *extra: str) -> str:
    """The sum per group; 0 for a group without a series in the state (its in-maintenance
    count is always there, 0 or not)."""
    every_group = total("citrix_machines_in_maintenance", by=GROUP_BY)
    return f"{total(metric, *extra, by=GROUP_BY)} or {every_group} * 0"


def unregistered_ratio() -> str:
    """Of each group's machines powered on and not in maintenance, the share unregistered: what
    CitrixMachinesUnregistered measures. A group with none powered on (an autoscaled group at
    night) has no value rather than 100 %."""
    unregistered = total("citrix_machines_unregistered_powered_on", by=GROUP_BY)
    return f"{unregistered} / ({total('citrix_machines_powered_on', by=GROUP_BY)} > 0)"


def logon_quantile(q: float, by: str = "le") -> str:
    bucket = DAAS("citrix_logon_duration_seconds_bucket")
    return f"histogram_quantile({q}, sum by ({by}) (rate({bucket}[$__rate_interval])))"


def daas() -> Json:
    layout = Layout()
    layout.row("Now")
    for title, expr, description, steps in [
        (
            "Active sessions",
            state_total("citrix_sessions", 'state="active"'),
            'Open sessions in the active state (citrix_sessions{state="active"}).',
            thresholds("blue"),
        ),
        (
            "Disconnected sessions",
            state_total("citrix_sessions", 'state="disconnected"'),
            "Open sessions whose client has disconnected (still holding a machine).",
            thresholds("blue"),
        ),
        (
            "Registered machines",
            state_total("citrix_machines", 'registration_state="registered"'),
            "Machines registered with the delivery controller, ready for sessions.",
            thresholds("green"),
        ),
        (
            "Unregistered machines",
            state_total("citrix_machines", 'registration_state="unregistered"'),
            "Machines not registered: powered off, or broken (VDA, network, time, DNS).",
            thresholds("green", (1, "orange")),
        ),
        (
            "Machines in maintenance",
            total("citrix_machines_in_maintenance"),
            "Machines in maintenance mode: no new sessions are brokered to them.",
            thresholds("green", (1, "blue")),
        ),
        (
            "Faulted machines",
            state_total("citrix_machines_faulted"),
            "Machines with a fault state (failed to start, stuck on boot, unregistered, max "
            "capacity, VM not found).",
            thresholds("green", (1, "red")),
        ),
    ]:
        layout.add(
            stat(title, description, "short", Q(expr, title), steps=steps, text_mode="value"),
            4,
            4,
        )

    layout.row("Sessions")
    layout.add(
        timeseries(
            "Sessions by state",
            "Open sessions (EndDate null) by connection state, summed over the selected "
            "customers and delivery groups.",
            "short",
            Q(total("citrix_sessions", by="state"), "{{state}}"),
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Sessions per delivery group",
            "Open sessions of every state per customer and delivery group, stacked.",
            "short",
            Q(state_per_group("citrix_sessions"), GROUP_LEGEND),
            stack=True,
            fill=30,
        ),
        12,
        8,
    )

    layout.add(
        relative_time(
            timeseries(
                "Daily peak sessions",
                "The most sessions open at once (every state) in each day, per customer and "
                "delivery group, over the last 30 days whatever the dashboard's time range: "
                "max_over_time of the per-group session count over a day (a 1-minute "
                "subquery), one bar per day.",
                "short",
                Q(f"max_over_time(({state_per_group('citrix_sessions')})[1d:1m])", GROUP_LEGEND),
                draw="bars",
            ),
            "30d",
            interval="1d",
        ),
        24,
        8,
    )

    layout.row("Machines")
    layout.add(
        timeseries(
            "Usable capacity per delivery group",
            "Machines that can take sessions: powered on, not in maintenance and registered "
            "(citrix_machines_powered_on - citrix_machines_unregistered_powered_on). Autoscaled "
            "groups drop at night by design; a group at 0 while its machines are powered on "
            "is down (the CitrixDeliveryGroupDown alert).",
            "short",
            Q(
                f"{total('citrix_machines_powered_on', by=GROUP_BY)} - "
                f"{total('citrix_machines_unregistered_powered_on', by=GROUP_BY)}",
                GROUP_LEGEND,
            ),
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Machines by registration state",
            "Active machines by registration state (citrix_machines{registration_state}).",
            "short",
            Q(total("citrix_machines", by="registration_state"), "{{registration_state}}"),
            overrides=[
                by_regexp("/^unregistered$/", color=fixed_color("orange")),
                by_regexp("/^registered$/", color=fixed_color("green")),
            ],
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Unregistered machines (% of delivery group)",
            "Share of each delivery group's machines powered on (and not in maintenance) "
            "that are unregistered, as the CitrixMachinesUnregistered alert counts them; it "
            "fires above 10 % (red line). Machines switched off do not count, so an autoscaled "
            "group at night shows nothing.",
            "percentunit",
            Q(unregistered_ratio(), GROUP_LEGEND),
            steps=thresholds("green", (UNREGISTERED_SHARE, "red")),
            threshold_style="line",
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Machines in maintenance",
            "Machines in maintenance mode per customer and delivery group.",
            "short",
            Q(total("citrix_machines_in_maintenance", by=GROUP_BY), GROUP_LEGEND),
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Faulted machines by fault state",
            "Machines with a fault, by fault state (citrix_machines_faulted{fault_state}).",
            "short",
            Q(total("citrix_machines_faulted", by="fault_state"), "{{fault_state}}"),
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Machines by power state",
            "Active machines by power state (citrix_machines_by_power_state{power_state}).",
            "short",
            Q(total("citrix_machines_by_power_state", by="power_state"), "{{power_state}}"),
            stack=True,
            fill=30,
        ),
        8,
        8,
    )
    layout.add(
        table(
            "Delivery groups",
            "Per delivery group now, most unregistered first (the share of the machines "
            "powered on): machines by state, maintenance, faults and open sessions.",
            "short",
            {"customer_id": "Customer", "delivery_group": "Delivery group"},
            [
                Column(
                    "Unregistered %",
                    unregistered_ratio(),
                    unit="percentunit",
                    steps=thresholds("green", (UNREGISTERED_SHARE, "red")),
                    cell="color-background",
                ),
                Column("Machines", total("citrix_machines", by=GROUP_BY)),
                Column(
                    "Registered",
                    state_per_group("citrix_machines", 'registration_state="registered"'),
                ),
                Column(
                    "Unregistered",
                    state_per_group("citrix_machines", 'registration_state="unregistered"'),
                ),
                Column("In maintenance", total("citrix_machines_in_maintenance", by=GROUP_BY)),
                Column(
                    "Faulted",
                    state_per_group("citrix_machines_faulted"),
                    steps=thresholds("green", (1, "red")),
                    cell="color-text",
                ),
                Column("Sessions", state_per_group("citrix_sessions")),
            ],
            sort_by="Unregistered %",
            descending=True,
        ),
        16,
        8,
    )
    layout.add(
        table(
            "Delivery group inventory",
            "Delivery groups with their delivery type and session support "
            "(citrix_delivery_group_info).",
            "short",
            {
                "customer_id": "Customer",
                "delivery_group": "Delivery group",
                "delivery_type": "Delivery type",
                "session_support": "Session support",
            },
            [
                Column(
                    "Groups",
                    "max by (customer_id, delivery_group, delivery_type, session_support) "
                    f"({DAAS('citrix_delivery_group_info')})",
                )
            ],
            sort_by="Customer",
        ),
        8,
        8,
    )

    layout.row("Connections and logons")
    failures = DAAS("citrix_connection_failures_total", without=NO_GROUP)
    layout.add(
        timeseries(
            "Connection failure rate by reason",
            "Connection failures per minute by failure reason, over the selected customers. "
            "From citrix_connection_failures_total, which has no delivery group: the delivery "
            "group filter does not apply here (it does in the per-group panel).",
            "cpm",
            Q(
                f"sum by (failure_reason) (rate({failures}[$__rate_interval])) * 60",
                "{{failure_reason}}",
            ),
            stack=True,
            fill=30,
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Connection failure rate by customer",
            "Connection failures per minute per customer (all reasons). The "
            "CitrixConnectionFailureSpike alert compares this with the customer's daily "
            "average.",
            "cpm",
            Q(
                f"sum by (customer_id) (rate({failures}[$__rate_interval])) * 60",
                "{{customer_id}}",
            ),
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Connection failures per delivery group",
            "Connection failures per minute per customer and delivery group (all reasons), "
            "from citrix_connection_failures_by_group_total: the group of the machine the "
            "failure names. unknown: no machine (none was available) or one not known.",
            "cpm",
            Q(
                f"sum by ({GROUP_BY}) (rate("
                f"{DAAS('citrix_connection_failures_by_group_total')}[$__rate_interval])) * 60",
                GROUP_LEGEND,
            ),
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Logon duration p50 / p95",
            "Median and 95th percentile logon duration over the selected customers and "
            "delivery groups, from the citrix_logon_duration_seconds histogram (buckets from "
            "5 s to 300 s).",
            "s",
            Q(logon_quantile(0.5), "p50"),
            Q(logon_quantile(0.95), "p95"),
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Logon duration p95 per delivery group",
            "95th percentile logon duration per customer and delivery group "
            "(histogram_quantile over citrix_logon_duration_seconds_bucket by delivery_group). "
            f"The red line is the CitrixLogonSlow threshold ({LOGON_P95_SECONDS:g} s).",
            "s",
            Q(logon_quantile(0.95, by=f"{GROUP_BY}, le"), GROUP_LEGEND),
            steps=thresholds("green", (LOGON_P95_SECONDS, "red")),
            threshold_style="line",
        ),
        12,
        8,
    )
    layout.add(
        heatmap(
            "Logon duration distribution",
            "Logons per minute by logon duration bucket (citrix_logon_duration_seconds).",
            "cpm",
            Q(
                "sum by (le) (rate("
                f"{DAAS('citrix_logon_duration_seconds_bucket')}[$__rate_interval])) * 60",
                "{{le}}",
            ),
            y_unit="s",
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Logons per minute",
            "Sessions that logged on per minute (citrix_logon_duration_seconds_count), per "
            "customer and delivery group.",
            "cpm",
            Q(
                f"sum by ({GROUP_BY}) (rate("
                f"{DAAS('citrix_logon_duration_seconds_count')}[$__rate_interval])) * 60",
                GROUP_LEGEND,
            ),
        ),
        12,
        8,
    )

    return dashboard(
        uid="citrix-daas-sessions-machines",
        title="Citrix DaaS sessions and machines",
        description="Sessions, machines, connection failures and logon durations per Citrix "
        "DaaS customer and delivery group (Monitor Service), from citrix-cloud-exporter.",
        variables=[
            JOB_VARIABLE,
            INSTANCE_VARIABLE,
            query_variable(
                "customer_id",
                "Customer",
                'label_values(citrix_machines{job=~"$job", instance=~"$instance"}, customer_id)',
                "Citrix Cloud customer id",
            ),
            query_variable(
                "delivery_group",
                "Delivery group",
                'label_values(citrix_machines{job=~"$job", instance=~"$instance", '
                'customer_id=~"$customer_id"}, delivery_group)',
                "Delivery group name",
            ),
        ],
        layout=layout,
        time_from="now-6h",
    )


# -- Exporter health ---------------------------------------------------------------------------

HEALTH = Scope("job", "instance", "customer_id", "collector")
TARGET = Scope("job", "instance")
NO_COLLECTOR = ("collector",)
COLLECTOR_BY = "customer_id, collector"
COLLECTOR_LEGEND = "{{customer_id}} {{collector}}"
STALE_STEPS = thresholds("green", (1800, "orange"), (3600, "red"))


def per_customer(metric: str, *extra: str) -> str:
    return HEALTH(metric, *extra, without=NO_COLLECTOR)


def rate_or_zero(metric: str, *extra: str, fallback: str, by: str = "customer_id") -> str:
    """The rate of a counter whose series may not exist yet (no failure so far), or 0 for every
    customer that `fallback` (another counter) has, so the panel shows 0 rather than no data."""
    return (
        f"sum by ({by}) (rate({per_customer(metric, *extra)}[$__rate_interval]))"
        f" or sum by ({by}) (rate({per_customer(fallback)}[$__rate_interval])) * 0"
    )


def exporter_health() -> Json:
    layout = Layout()
    layout.row("Status")
    layout.add(
        stat(
            "Exporter targets",
            "Whether Prometheus can scrape each exporter replica (up).",
            "none",
            Q(TARGET("up"), "{{instance}}"),
            mappings=UP_DOWN,
            steps=thresholds("red", (1, "green")),
            color_mode="background",
        ),
        6,
        4,
    )
    layout.add(
        stat(
            "Collectors down",
            "Customer/collector pairs whose last poll failed (citrix_up == 0).",
            "none",
            Q(f"count({HEALTH('citrix_up')} == 0) or vector(0)", "down"),
            steps=thresholds("green", (1, "red")),
            color_mode="background",
            text_mode="value",
        ),
        6,
        4,
    )
    layout.add(
        stat(
            "Oldest successful poll",
            "Age of the least recent successful poll over the selected customers and "
            "collectors. CitrixDataStale fires after an hour.",
            "s",
            Q(f"max(time() - {HEALTH('citrix_last_success_timestamp_seconds')})", "age"),
            steps=STALE_STEPS,
            text_mode="value",
        ),
        6,
        4,
    )
    layout.add(
        stat(
            "Exporter version",
            "Version of each running exporter (citrix_exporter_build_info).",
            "none",
            Q(f"count by (version) ({TARGET('citrix_exporter_build_info')})", "{{version}}"),
            text_mode="name",
            steps=thresholds("blue"),
        ),
        6,
        4,
    )

    layout.row("Collectors")
    layout.add(
        state_timeline(
            "Collector status",
            "citrix_up per customer and collector: UP when the last poll succeeded. A "
            "collector the customer is not entitled to (HTTP 404) stays DOWN; disable it in "
            "the config.",
            "none",
            Q(f"max by ({COLLECTOR_BY}) ({HEALTH('citrix_up')})", COLLECTOR_LEGEND),
            mappings=UP_DOWN,
        ),
        24,
        8,
    )
    layout.add(
        timeseries(
            "Time since last successful poll",
            "time() - citrix_last_success_timestamp_seconds per customer and collector. A "
            "healthy collector stays below its poll interval; the red line is the one-hour "
            "CitrixDataStale threshold.",
            "s",
            Q(
                f"time() - max by ({COLLECTOR_BY}) "
                f"({HEALTH('citrix_last_success_timestamp_seconds')})",
                COLLECTOR_LEGEND,
            ),
            steps=thresholds("green", (3600, "red")),
            threshold_style="line",
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Poll duration",
            "Wall time of each collector's last poll (citrix_collector_duration_seconds), "
            "including upstream retries and backoff.",
            "s",
            Q(
                f"max by ({COLLECTOR_BY}) ({HEALTH('citrix_collector_duration_seconds')})",
                COLLECTOR_LEGEND,
            ),
        ),
        12,
        8,
    )
    layout.add(
        table(
            "Collectors now",
            "Every customer and collector, failing ones first: last poll result, time since "
            "the last success and the last poll's duration.",
            "short",
            {"customer_id": "Customer", "collector": "Collector"},
            [
                Column(
                    "Up",
                    f"max by ({COLLECTOR_BY}) ({HEALTH('citrix_up')})",
                    unit="none",
                    steps=thresholds("red", (1, "green")),
                    cell="color-background",
                ),
                Column(
                    "Since last success",
                    f"time() - max by ({COLLECTOR_BY}) "
                    f"({HEALTH('citrix_last_success_timestamp_seconds')})",
                    unit="s",
                    steps=STALE_STEPS,
                    cell="color-text",
                ),
                Column(
                    "Poll duration",
                    f"max by ({COLLECTOR_BY}) ({HEALTH('citrix_collector_duration_seconds')})",
                    unit="s",
                ),
            ],
            sort_by="Up",
        ),
        24,
        8,
    )

    layout.row("Upstream API")
    layout.add(
        timeseries(
            "Upstream requests by endpoint and code",
            "Requests to Citrix Cloud per second by logical endpoint and HTTP status "
            "(citrix_api_requests_total); 429 (throttled) is orange, 5xx red, network errors "
            "purple.",
            "reqps",
            Q(
                "sum by (endpoint, code) (rate("
                f"{per_customer('citrix_api_requests_total')}[$__rate_interval]))",
                "{{endpoint}} {{code}}",
            ),
            overrides=CODE_COLOURS,
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Throttled and failed requests by customer",
            "Per customer: requests answered 429 (throttled) and requests that failed with a "
            "5xx or a network error, per second; 0 when there were none.",
            "reqps",
            Q(
                rate_or_zero(
                    "citrix_api_requests_total",
                    'code="429"',
                    fallback="citrix_api_requests_total",
                ),
                "{{customer_id}} 429",
            ),
            Q(
                rate_or_zero(
                    "citrix_api_requests_total",
                    'code=~"5..|error"',
                    fallback="citrix_api_requests_total",
                ),
                "{{customer_id}} 5xx/error",
            ),
            overrides=CODE_COLOURS,
        ),
        12,
        8,
    )

    layout.row("Authentication")
    layout.add(
        timeseries(
            "Token requests and failures",
            "Bearer token requests per second per customer, and those that failed "
            "(citrix_token_requests_total, citrix_token_request_failures_total). A token "
            "normally lasts an hour, so requests are rare.",
            "reqps",
            Q(
                f"sum by (customer_id) (rate({per_customer('citrix_token_requests_total')}"
                "[$__rate_interval]))",
                "{{customer_id}} requests",
            ),
            Q(
                rate_or_zero(
                    "citrix_token_request_failures_total",
                    fallback="citrix_token_requests_total",
                ),
                "{{customer_id}} failures",
            ),
            overrides=[by_regexp("/ failures$/", color=fixed_color("red"))],
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Token time to expiry",
            "Time until the bearer token in hand expires (citrix_token_expiry_timestamp_seconds"
            " - time()). The exporter renews it 5 minutes before expiry; a line that drops "
            "below 0 means renewals are failing.",
            "s",
            Q(
                "max by (customer_id) "
                f"({per_customer('citrix_token_expiry_timestamp_seconds')}) - time()",
                "{{customer_id}}",
            ),
            steps=thresholds("red", (300, "green")),
            threshold_style="line",
            min_zero=False,
        ),
        12,
        8,
    )

    layout.row("Exporter")
    layout.add(
        timeseries(
            "Upstream data issues",
            "Odd upstream values skipped or mapped to unknown, per second, by customer, "
            "collector and kind (citrix_upstream_data_issues_total); 0 when there were none.",
            "ops",
            Q(
                f"sum by ({COLLECTOR_BY}, issue) (rate("
                f"{HEALTH('citrix_upstream_data_issues_total')}[$__rate_interval]))"
                f" or max by ({COLLECTOR_BY}) ({HEALTH('citrix_up')}) * 0",
                "{{customer_id}} {{collector}} {{issue}}",
            ),
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Scrape duration",
            "How long Prometheus takes to scrape each exporter replica. /metrics only renders "
            "the last snapshot, so this stays small however slow Citrix Cloud is.",
            "s",
            Q(TARGET("scrape_duration_seconds"), "{{instance}}"),
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Exporter memory and CPU",
            "Resident memory of each exporter process (process_resident_memory_bytes); CPU "
            "usage is on the right axis.",
            "bytes",
            Q(TARGET("process_resident_memory_bytes"), "{{instance}} memory"),
            Q(
                f"rate({TARGET('process_cpu_seconds_total')}[$__rate_interval])",
                "{{instance}} CPU",
            ),
            overrides=[
                by_regexp(
                    "/ CPU$/",
                    unit="percentunit",
                    **{"custom.axisPlacement": "right"},
                )
            ],
        ),
        8,
        8,
    )

    return dashboard(
        uid="citrix-exporter-health",
        title="Citrix Cloud exporter health",
        description="Is citrix-cloud-exporter polling Citrix Cloud successfully: collector "
        "status, data age, poll duration, upstream requests and throttling, tokens.",
        variables=[
            JOB_VARIABLE,
            INSTANCE_VARIABLE,
            query_variable(
                "customer_id",
                "Customer",
                'label_values(citrix_up{job=~"$job", instance=~"$instance"}, customer_id)',
                "Citrix Cloud customer id",
            ),
            query_variable(
                "collector",
                "Collector",
                'label_values(citrix_up{job=~"$job", instance=~"$instance", '
                'customer_id=~"$customer_id"}, collector)',
                "Collector (licensing, monitor, ...)",
            ),
        ],
        layout=layout,
        time_from="now-6h",
        refresh="30s",
    )


# -- output ------------------------------------------------------------------------------------

DASHBOARDS = {
    "citrix-cloud-licensing.json": licensing,
    "citrix-daas-sessions-machines.json": daas,
    "citrix-exporter-health.json": exporter_health,
}


def render(board: Json) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def build_all() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {name: render(build()) for name, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report out-of-date files")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory")
    args = parser.parse_args(argv)
    stale = []
    for name, text in build_all().items():
        path = args.out / name
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    verb = "out of date" if args.check else "written"
    for path in stale:
        print(f"{verb}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
