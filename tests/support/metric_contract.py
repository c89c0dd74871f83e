"""The metric names and labels the exporter promises, and PromQL selector parsing: the contract
the dashboards and alert rules are written against (tests/deploy/test_dashboards.py and
test_alert_rules.py both check against it)."""

from __future__ import annotations

import re

_LICENSE = {"customer_id", "product", "edition"}
_GROUP = {"customer_id", "delivery_group"}
_COLLECTOR = {"customer_id", "collector"}
_SERVER = {"customer_id", "fqdn"}
_TENANT = {"customer_id", "tenant_id"}
# The metric names and labels (besides job and instance) the exporter promises: the contract the
# dashboards and alert rules are written against. test_alert_rules.py uses it too.
METRICS: dict[str, set[str]] = {
    "citrix_licenses_available": _LICENSE,
    "citrix_licenses_used": _LICENSE,
    "citrix_licenses_remaining": _LICENSE,
    "citrix_licenses_overage": _LICENSE,
    "citrix_licenses_usage": _LICENSE | {"assignment"},
    "citrix_licenses_released": _LICENSE | {"assignment"},
    "citrix_licenses_next_expiry_timestamp_seconds": _LICENSE,
    "citrix_licenses_expiring": _LICENSE,
    "citrix_licenses_next_activation_timestamp_seconds": _LICENSE,
    "citrix_licenses_activating": _LICENSE,
    "citrix_licenses_month_start_timestamp_seconds": _LICENSE,
    "citrix_licenses_month_available": _LICENSE,
    "citrix_licenses_month_assigned": _LICENSE | {"assignment"},
    "citrix_licenses_month_newly_assigned": _LICENSE | {"assignment"},
    "citrix_licenses_month_released": _LICENSE | {"assignment"},
    "citrix_sessions": _GROUP | {"state"},
    "citrix_machines": _GROUP | {"registration_state"},
    "citrix_machines_in_maintenance": _GROUP,
    "citrix_machines_faulted": _GROUP | {"fault_state"},
    "citrix_machines_by_power_state": _GROUP | {"power_state"},
    "citrix_machines_powered_on": _GROUP,
    "citrix_machines_unregistered_powered_on": _GROUP,
    "citrix_delivery_group_info": _GROUP | {"delivery_type", "session_support"},
    "citrix_connection_failures_total": {"customer_id", "failure_reason"},
    "citrix_connection_failures_by_group_total": _GROUP | {"failure_reason"},
    "citrix_logon_duration_seconds_bucket": _GROUP | {"le"},
    "citrix_logon_duration_seconds_sum": _GROUP,
    "citrix_logon_duration_seconds_count": _GROUP,
    # Observed (undocumented) licensing APIs: concurrent model, License Servers, partner. Names
    # and labels as the exporter exposes them under --demo.
    "citrix_licenses_concurrent_available": {"customer_id"},
    "citrix_licenses_concurrent_assigned": {"customer_id"},
    "citrix_licenses_concurrent_peak": {"customer_id", "window"},
    "citrix_licenses_concurrent_peak_timestamp_seconds": {"customer_id", "window"},
    "citrix_licenses_concurrent_report_timestamp_seconds": {"customer_id"},
    "citrix_license_server_phoning_home": _SERVER,
    "citrix_license_server_last_phone_home_timestamp_seconds": _SERVER,
    "citrix_license_server_license_expiry_timestamp_seconds": _SERVER,
    "citrix_license_server_compliant": _SERVER,
    "citrix_license_server_ccu": _SERVER,
    "citrix_license_server_expired": _SERVER,
    "citrix_license_server_users": _SERVER | {"feature", "kind"},
    "citrix_partner_customers": {"customer_id"},
    "citrix_partner_daas_customers": {"customer_id"},
    "citrix_partner_daas_licenses": {"customer_id"},
    "citrix_partner_daas_users": {"customer_id"},
    "citrix_partner_daas_overage": {"customer_id"},
    "citrix_partner_onprem_customers": {"customer_id"},
    "citrix_partner_onprem_license_servers": {"customer_id"},
    "citrix_partner_onprem_users": {"customer_id", "kind"},
    "citrix_partner_tenant_info": _TENANT | {"tenant_name"},
    "citrix_partner_tenant_daas_licenses": _TENANT,
    "citrix_partner_tenant_daas_users": _TENANT,
    "citrix_partner_tenant_daas_overage": _TENANT,
    "citrix_partner_tenant_onprem_users": _TENANT | {"kind"},
    "citrix_up": _COLLECTOR,
    "citrix_last_success_timestamp_seconds": _COLLECTOR,
    "citrix_collector_duration_seconds": _COLLECTOR,
    "citrix_collector_entitled": _COLLECTOR,
    "citrix_api_requests_total": {"customer_id", "endpoint", "code"},
    "citrix_token_requests_total": {"customer_id"},
    "citrix_token_request_failures_total": {"customer_id"},
    "citrix_token_expiry_timestamp_seconds": {"customer_id"},
    "citrix_upstream_data_issues_total": _COLLECTOR | {"issue"},
    "citrix_upstream_throttled_until_timestamp_seconds": {"customer_id"},
    "citrix_exporter_build_info": {"version", "revision", "python_version"},
    "citrix_exporter_config_last_reload_successful": set(),
    "citrix_exporter_config_last_reload_success_timestamp_seconds": set(),
    # Prometheus' own and prometheus-client's process metrics.
    "up": set(),
    "scrape_duration_seconds": set(),
    "process_resident_memory_bytes": set(),
    "process_cpu_seconds_total": set(),
}
COUNTER_SUFFIXES = ("_total", "_bucket", "_sum", "_count")
COUNTERS = {name for name in METRICS if name.endswith(COUNTER_SUFFIXES)}

_SELECTOR = re.compile(r"\b([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_IDENTIFIER = re.compile(r'"(?:[^"\\]|\\.)*"|\b[a-zA-Z_:][\w:]*\b')


def selectors(expr: str) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """(metric, {label: (operator, value)}) for every `metric{...}` in a PromQL expression."""
    return [
        (name, {label: (op, value) for label, op, value in _MATCHER.findall(body)})
        for name, body in _SELECTOR.findall(expr)
    ]


def metric_names(expr: str) -> set[str]:
    """Identifiers outside string literals that name metrics of the contract or look like ours."""
    words = {w for w in _IDENTIFIER.findall(expr) if not w.startswith('"')}
    return {w for w in words if w in METRICS or w.startswith("citrix_")}
