"""The alert rules, as data: what tools/rules.py renders into
deploy/prometheus/citrix-cloud-exporter.rules.yml.

Every tunable number is a parameter written `[[name]]` (tools/rules.py lists them with their
defaults and fills them in); a line that carries one ends in a `# THRESHOLD` comment, so the
rendered file still shows what an operator may change, and the boundary unit tests
(deploy/prometheus/tests/boundaries.test.yml) pin it. `[[name%]]` is a share as a percentage.
`[[job]]` is the job selector and `[[runbook]]` the runbook base URL.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Alert:
    """One alerting rule. `fires_when` is its row in the header table (lines of at most ~46
    characters); `for_param` names the parameter holding its `for` duration; `for_comment`,
    when set, marks that duration `# THRESHOLD` in the output."""

    name: str
    severity: str
    expr: str
    for_param: str
    summary: str
    description: str
    fires_when: str
    comment: str = ""
    for_comment: str = ""


@dataclass(frozen=True)
class Group:
    name: str
    alerts: tuple[Alert, ...]


# The renewal: licenses activating at or before the expiry, at least as many as expire.
RENEWAL = """\
(
  max by (customer_id, product, edition) (citrix_licenses_activating)
  >= on (customer_id, product, edition)
  max by (customer_id, product, edition) (citrix_licenses_expiring)
  and on (customer_id, product, edition)
  max by (customer_id, product, edition) (citrix_licenses_next_activation_timestamp_seconds)
  <= on (customer_id, product, edition)
  max by (customer_id, product, edition) (citrix_licenses_next_expiry_timestamp_seconds)
)"""

_EXPIRING_DESCRIPTION = """\
{{ with printf "max(citrix_licenses_expiring{customer_id=%q,product=%q,edition=%q})"
$labels.customer_id $labels.product $labels.edition | query }}{{ . | first | value
| printf "%.0f" }}{{ end }} {{ $labels.product }} ({{ $labels.edition }}) licenses
of customer {{ $labels.customer_id }} expire in {{ $value | printf "%.1f" }} days."""

LICENSING = Group(
    "citrix-cloud-licensing",
    (
        Alert(
            "CitrixLicensesOverage",
            "warning",
            """\
max by (customer_id, product, edition) (citrix_licenses_overage)
  > [[overage_licenses]]  # THRESHOLD licenses in overage""",
            "overage_for",
            "Citrix Cloud licenses in overage",
            """\
Customer {{ $labels.customer_id }} uses {{ $value | printf "%.0f" }}
{{ $labels.product }} ({{ $labels.edition }}) licenses more than it has available.""",
            "overage > [[overage_licenses]] licenses",
        ),
        Alert(
            "CitrixLicensesLow",
            "warning",
            """\
(
  max by (customer_id, product, edition) (citrix_licenses_remaining)
  / max by (customer_id, product, edition) (citrix_licenses_available > 0)
)
  < [[low_share]]  # THRESHOLD share of available licenses remaining
unless on (customer_id, product, edition)
max by (customer_id, product, edition) (citrix_licenses_overage) > 0""",
            "low_for",
            "Few Citrix Cloud licenses remaining",
            """\
Only {{ $value | humanizePercentage }} of customer {{ $labels.customer_id }}'s
{{ $labels.product }} ({{ $labels.edition }}) licenses remain unused.""",
            "remaining < [[low_share%]] % ([[low_share]]) of available\n"
            "(not while in overage: CitrixLicensesOverage)",
        ),
        Alert(
            "CitrixLicensesExpiring",
            "warning",
            """\
(
  max by (customer_id, product, edition) (citrix_licenses_next_expiry_timestamp_seconds)
  - time()
) / 86400
  < [[expiry_warning_days]]  # THRESHOLD days: warning
  >= [[expiry_critical_days]]  # THRESHOLD days: critical (below: the critical rule)
and on (customer_id, product, edition)
max by (customer_id, product, edition) (citrix_licenses_expiring) > 0
unless on (customer_id, product, edition)
"""
            + RENEWAL,
            "expiry_warning_for",
            "Citrix Cloud licenses expire within a month",
            _EXPIRING_DESCRIPTION,
            "next expiry in < [[expiry_warning_days]] days (and >= [[expiry_critical_days]]),\n"
            "while citrix_licenses_expiring > 0, unless a\n"
            "scheduled activation covers them (renewal)",
            comment="Two rules, one alert name: warning from [[expiry_warning_days]] days out, "
            "critical from\n[[expiry_critical_days]]. The ranges do not overlap, so exactly one "
            "of them fires at a time.",
        ),
        Alert(
            "CitrixLicensesExpiring",
            "critical",
            """\
(
  max by (customer_id, product, edition) (citrix_licenses_next_expiry_timestamp_seconds)
  - time()
) / 86400
  < [[expiry_critical_days]]  # THRESHOLD days: critical (the warning's lower bound)
and on (customer_id, product, edition)
max by (customer_id, product, edition) (citrix_licenses_expiring) > 0
unless on (customer_id, product, edition)
"""
            + RENEWAL,
            "expiry_critical_for",
            "Citrix Cloud licenses expire within a week",
            _EXPIRING_DESCRIPTION,
            "next expiry in < [[expiry_critical_days]] days,\n"
            "while citrix_licenses_expiring > 0, unless a\n"
            "scheduled activation covers them (renewal)",
        ),
        Alert(
            "CitrixLicensesOverageForecast",
            "warning",
            """\
# Days until the fitted usage line (predict_linear's) crosses the available licenses:
# predict_linear(used[w], d) > available exactly when this is < d days.
(
  max by (customer_id, product, edition) (citrix_licenses_available)
  - max by (customer_id, product, edition)
    (predict_linear(citrix_licenses_used[[[forecast_window]]], 0))
)
/ max by (customer_id, product, edition) (deriv(citrix_licenses_used[[[forecast_window]]]) > 0)
/ 86400
  < [[forecast_days]]  # THRESHOLD days until overage at the current trend
unless on (customer_id, product, edition)
max by (customer_id, product, edition) (citrix_licenses_overage) > 0""",
            "forecast_for",
            "Citrix Cloud licenses heading for overage",
            """\
At the trend of the last [[forecast_window]], customer {{ $labels.customer_id }} will use more
{{ $labels.product }} ({{ $labels.edition }}) licenses than it has in
{{ $value | printf "%.1f" }} days.""",
            "usage trend ([[forecast_window]]) crosses available in\n"
            "< [[forecast_days]] days (not while in overage)",
        ),
    ),
)

EXPORTER = Group(
    "citrix-cloud-exporter",
    (
        Alert(
            "CitrixExporterDown",
            "critical",
            "up{[[job]]} == 0",
            "exporter_down_for",
            "Citrix Cloud exporter cannot be scraped",
            """\
Prometheus has failed to scrape the exporter {{ $labels.instance }} (job
{{ $labels.job }}) for a while: no Citrix Cloud alert can fire for the customers
it serves.""",
            "up{[[job]]} == 0: the scrape fails",
            for_comment="how long the scrape may fail before alerting",
        ),
        Alert(
            "CitrixExporterAbsent",
            "critical",
            "absent(citrix_exporter_build_info{[[job]]})",
            "exporter_absent_for",
            "Citrix Cloud exporter missing from Prometheus",
            """\
Prometheus has no citrix_exporter_build_info series matching {[[job]]}: no exporter
is scraped (target gone, service discovery or relabelling changed), so no Citrix
Cloud alert can fire.""",
            "no citrix_exporter_build_info{[[job]]}",
            for_comment="how long no exporter may be scraped",
        ),
        Alert(
            "CitrixExporterReloadFailing",
            "warning",
            "citrix_exporter_config_last_reload_successful == 0",
            "reload_failing_for",
            "Citrix Cloud exporter cannot reload its configuration",
            """\
The last configuration reload of the exporter on {{ $labels.instance }} failed; it
still runs the configuration it loaded {{ with printf
"time() - max(citrix_exporter_config_last_reload_success_timestamp_seconds{instance=%q})"
$labels.instance | query }}{{ . | first | value | humanizeDuration }} ago{{ else
}}before{{ end }}. Its log says why.""",
            "citrix_exporter_config_last_reload_successful\n== 0",
            for_comment="how long a failed reload may stand",
        ),
        Alert(
            "CitrixCollectorDown",
            "warning",
            "citrix_up == 0",
            "collector_down_for",
            "Citrix Cloud exporter collector failing",
            """\
The {{ $labels.collector }} collector of customer {{ $labels.customer_id }} on
{{ $labels.instance }} fails every poll; {{ with printf
"time() - max(citrix_last_success_timestamp_seconds{customer_id=%q,collector=%q})"
$labels.customer_id $labels.collector | query }}its last success was
{{ . | first | value | humanizeDuration }} ago{{ else }}it has not succeeded since
the exporter started{{ end }}.""",
            "citrix_up == 0",
            for_comment="how long a collector may fail before alerting",
        ),
        Alert(
            "CitrixDataStale",
            "warning",
            """\
time() - citrix_last_success_timestamp_seconds
  > [[stale_seconds]]  # THRESHOLD seconds since the last successful poll""",
            "stale_for",
            "Citrix Cloud data is stale",
            """\
The {{ $labels.collector }} collector of customer {{ $labels.customer_id }} on
{{ $labels.instance }} last polled successfully {{ $value | humanizeDuration }} ago.""",
            "last successful poll older than [[stale_seconds]] s",
        ),
        Alert(
            "CitrixTokenRequestsFailing",
            "warning",
            """\
sum by (customer_id) (increase(citrix_token_request_failures_total[30m]))
  > [[token_failures]]  # THRESHOLD failed token requests in 30m
unless on (customer_id)
max by (customer_id) (citrix_token_expiry_timestamp_seconds) > time()""",
            "token_for",
            "Citrix Cloud token requests failing",
            """\
{{ $value | printf "%.0f" }} bearer token requests for customer
{{ $labels.customer_id }} failed in the last 30 minutes and the exporter holds no
valid token: every collector of this customer is failing.""",
            "> [[token_failures]] token requests failed in the last 30m and\n"
            "the customer holds no unexpired token",
        ),
        Alert(
            "CitrixUpstreamThrottled",
            "info",
            """\
sum by (customer_id) (rate(citrix_api_requests_total{code="429"}[30m]))
/ sum by (customer_id) (rate(citrix_api_requests_total[30m]))
  > [[throttled_share]]  # THRESHOLD share of requests answered 429
# or no request is sent at all: a Retry-After is being honoured.
or on (customer_id)
max by (customer_id) (citrix_upstream_throttled_until_timestamp_seconds) - time() > 0""",
            "throttled_for",
            "Citrix Cloud is throttling the exporter",
            """\
{{ with printf
"max(citrix_upstream_throttled_until_timestamp_seconds{customer_id=%q}) - time() > 0"
$labels.customer_id | query }}Citrix Cloud asked the exporter to wait (Retry-After): no
request for customer {{ $labels.customer_id }} is sent for another
{{ . | first | value | humanizeDuration }}.{{ else }}{{ $value | humanizePercentage }}
of the exporter's Citrix Cloud API requests for customer {{ $labels.customer_id }}
were answered 429 (throttled) over the last 30 minutes.{{ end }}""",
            "> [[throttled_share%]] % ([[throttled_share]]) of requests answered 429, 30m,\n"
            "or requests held back after a Retry-After",
        ),
        Alert(
            "CitrixUpstreamDataIssues",
            "warning",
            """\
max by (customer_id, collector, issue) (increase(citrix_upstream_data_issues_total[1h]))
  > [[data_issues]]  # THRESHOLD odd upstream values in the last hour""",
            "data_issues_for",
            "Citrix Cloud API answers changed shape",
            """\
The {{ $labels.collector }} collector of customer {{ $labels.customer_id }} met
{{ $value | printf "%.0f" }} upstream values in the last hour it could not read
({{ $labels.issue }}): the API may have changed.""",
            "> [[data_issues]] unreadable upstream values in 1h",
        ),
    ),
)

DAAS = Group(
    "citrix-cloud-daas",
    (
        Alert(
            "CitrixMachinesUnregistered",
            "warning",
            """\
# Of the machines powered on and not in maintenance: a powered-off machine is
# unregistered by design (autoscale at night), and no fault.
max by (customer_id, delivery_group) (citrix_machines_unregistered_powered_on)
/ max by (customer_id, delivery_group) (citrix_machines_powered_on > 0)
  > [[unregistered_share]]  # THRESHOLD share of the group's powered-on machines""",
            "unregistered_for",
            "Many Citrix DaaS machines unregistered",
            """\
{{ $value | humanizePercentage }} of the powered-on machines in delivery group
{{ $labels.delivery_group }} of customer {{ $labels.customer_id }} are unregistered.""",
            "> [[unregistered_share%]] % ([[unregistered_share]]) of a group's powered-on\n"
            "machines unregistered (none on: nothing)",
        ),
        Alert(
            "CitrixDeliveryGroupDown",
            "critical",
            """\
# Every machine powered on (and not in maintenance) is unregistered: no one can connect.
# Alertmanager holds back CitrixMachinesUnregistered for the group meanwhile.
max by (customer_id, delivery_group) (citrix_machines_unregistered_powered_on)
  == on (customer_id, delivery_group)
max by (customer_id, delivery_group) (citrix_machines_powered_on)
  > [[group_down_machines]]  # THRESHOLD machines powered on (all off at night: no outage)""",
            "group_down_for",
            "Citrix DaaS delivery group down",
            """\
All powered-on machines ({{ $value | printf "%.0f" }}) of delivery group
{{ $labels.delivery_group }} of customer {{ $labels.customer_id }} are unregistered:
no session can start there.""",
            "every powered-on machine of a group\n"
            "unregistered, > [[group_down_machines]] powered on",
            for_comment="how long every powered-on machine may be unregistered",
        ),
        Alert(
            "CitrixConnectionFailureSpike",
            "warning",
            """\
# max over exporters of each exporter's sum: redundant exporters count the same
# failures, and must not double them.
max by (customer_id) (sum by (customer_id, job, instance)
  (increase(citrix_connection_failures_total[10m])))
  >= [[spike_failures]]  # THRESHOLD failures in 10 minutes (ignore quiet tenants)
and on (customer_id)
(
  max by (customer_id) (sum by (customer_id, job, instance)
    (rate(citrix_connection_failures_total[10m])))
  > [[spike_factor]]  # THRESHOLD times the customer's 1-day average rate
    * max by (customer_id) (sum by (customer_id, job, instance)
      (rate(citrix_connection_failures_total[1d])))
)""",
            "spike_for",
            "Citrix DaaS connection failures spiking",
            """\
{{ $value | printf "%.0f" }} connection failures for customer
{{ $labels.customer_id }} in the last 10 minutes, well above its usual rate.""",
            ">= [[spike_failures]] failures in 10m and the 10m rate > [[spike_factor]] x\n"
            "the customer's 1-day average rate",
        ),
        Alert(
            "CitrixMachinesFaulted",
            "warning",
            """\
# Unregistered machines have their own alerts (CitrixMachinesUnregistered and
# CitrixDeliveryGroupDown), with a share that tolerates a few.
sum by (customer_id, delivery_group) (max by (customer_id, delivery_group, fault_state)
  (citrix_machines_faulted{fault_state!="unregistered"}))
  > [[faulted_machines]]  # THRESHOLD faulted machines in the delivery group""",
            "faulted_for",
            "Citrix DaaS machines faulted",
            """\
{{ $value | printf "%.0f" }} machines of delivery group {{ $labels.delivery_group }}
of customer {{ $labels.customer_id }} are in a fault state other than unregistered.""",
            "> [[faulted_machines]] machines of a group in a fault state\n"
            "(other than unregistered)",
        ),
        Alert(
            "CitrixLogonSlow",
            "warning",
            """\
histogram_quantile(0.95, sum by (customer_id, delivery_group, le)
  (max by (customer_id, delivery_group, le)
    (rate(citrix_logon_duration_seconds_bucket[30m]))))
  > [[logon_p95_seconds]]  # THRESHOLD seconds, the 95th percentile logon duration
and on (customer_id, delivery_group)
max by (customer_id, delivery_group) (increase(citrix_logon_duration_seconds_count[30m]))
  >= [[logon_min_count]]  # THRESHOLD logons in 30 minutes (ignore a lone slow logon)""",
            "logon_for",
            "Citrix DaaS logons slow",
            """\
95 % of the logons to delivery group {{ $labels.delivery_group }} of customer
{{ $labels.customer_id }} in the last 30 minutes took up to
{{ $value | printf "%.0f" }} seconds.""",
            "95th percentile logon over 30m > [[logon_p95_seconds]] s,\n"
            "with >= [[logon_min_count]] logons in 30m",
        ),
    ),
)

OBSERVED = Group(
    "citrix-cloud-observed",
    (
        Alert(
            "CitrixLicenseServerNotPhoningHome",
            "warning",
            """\
(
  time()
  - max by (customer_id, fqdn) (citrix_license_server_last_phone_home_timestamp_seconds)
) / 3600
  > [[phone_home_hours]]  # THRESHOLD hours since the License Server last phoned home""",
            "phone_home_for",
            "Citrix License Server not phoning home",
            """\
License Server {{ $labels.fqdn }} of customer {{ $labels.customer_id }} last sent
its usage data to Citrix Cloud {{ $value | printf "%.0f" }} hours ago.""",
            "last phone-home > [[phone_home_hours]] hours ago",
        ),
        Alert(
            "CitrixLicenseServerLicensesExpiring",
            "warning",
            """\
(
  max by (customer_id, fqdn) (citrix_license_server_license_expiry_timestamp_seconds)
  - time()
) / 86400
  < [[license_server_expiry_days]]  # THRESHOLD days until the License Server's licenses expire""",
            "license_server_expiry_for",
            "Citrix License Server licenses expire within a month",
            """\
The licenses of License Server {{ $labels.fqdn }} of customer
{{ $labels.customer_id }} {{ if lt $value 0.0 }}have expired{{ else }}expire in
{{ $value | printf "%.1f" }} days{{ end }}.""",
            "License Server licenses expire in < [[license_server_expiry_days]] days\n"
            "(or have expired)",
        ),
        Alert(
            "CitrixPartnerCustomerOverage",
            "warning",
            """\
(
  max by (customer_id, tenant_id) (citrix_partner_tenant_daas_overage)
    > [[partner_overage_licenses]]  # THRESHOLD licenses in overage
)
# The tenant's name, from its info series (one: replicas, or a rename, may show two).
* on (customer_id, tenant_id) group_left (tenant_name)
topk by (customer_id, tenant_id) (1, citrix_partner_tenant_info)""",
            "partner_overage_for",
            "A partner's customer is in Citrix DaaS license overage",
            """\
{{ $labels.tenant_name }} ({{ $labels.tenant_id }}), a customer of partner
{{ $labels.customer_id }}, uses {{ $value | printf "%.0f" }} Citrix DaaS licenses
more than it owns.""",
            "a partner's customer has DaaS overage > [[partner_overage_licenses]]",
        ),
        Alert(
            "CitrixConcurrentLicensesNearLimit",
            "warning",
            """\
max by (customer_id) (citrix_licenses_concurrent_assigned)
/ max by (customer_id) (citrix_licenses_concurrent_available > 0)
  > [[concurrent_share]]  # THRESHOLD share of concurrent licenses in use""",
            "concurrent_for",
            "Citrix concurrent licenses near the limit",
            """\
Customer {{ $labels.customer_id }} uses {{ $value | humanizePercentage }} of its
concurrent licenses.""",
            "> [[concurrent_share%]] % ([[concurrent_share]]) of concurrent licenses\nin use",
        ),
    ),
)

GROUPS = (LICENSING, EXPORTER, DAAS, OBSERVED)
