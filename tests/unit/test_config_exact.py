"""Exact values of the configuration: every default, every validator's message, and how problems
are placed (key path, YAML line), ordered and de-duplicated.

The operator sees these messages at start-up and in ``--check-config``; a reworded or misplaced
message is a regression, so the tests compare whole lines rather than fragments.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, ValidationError

from exporter.config import (
    CLOUDLICENSE_URL,
    LICENSING_INSIGHTS_URL,
    PARTNER_URL,
    CollectorsConfig,
    ConfigError,
    CustomerConfig,
    ProductsCollectorConfig,
    RetryConfig,
    WebConfig,
    field_problems,
    load_config,
    parse_config,
)
from tests.support.config_text import MINIMAL, SECRET, customer, error_of, parse

# --------------------------------------------------------------------------------------------
# defaults: every field of every model
# --------------------------------------------------------------------------------------------

DEFAULT_COLLECTORS = {
    "licensing": {"enabled": True, "interval": None},
    "monitor": {
        "enabled": True,
        "interval": None,
        "max_pages": 500,
        "concurrency": 1,
        "overlap": 600.0,
        "desktop_groups_refresh": 600.0,
        "omit_zero_states": False,
    },
    "partner": {
        "enabled": False,
        "interval": None,
        "url": "https://partner.citrixworkspacesapi.net",
        "partner_id": None,
        "daas_summary_path": "/{partner_id}/licenseusage/partner/cloud/cvad/summary",
        "daas_customers_path": "/{partner_id}/licenseusage/partner/cloud/cvad/customers",
        "onprem_summary_path": "/{partner_id}/licenseusage/partner/onprem/cvad/summary",
        "onprem_customers_path": "/{partner_id}/licenseusage/partner/onprem/cvad/customers",
        "active_use": False,
        "active_use_path": (
            "/{partner_id}/activeuse/partner/tenant/cloud/cvad/current?customer={tenant_id}"
        ),
        "active_use_concurrency": 4,
    },
    "products": {
        "enabled": False,
        "interval": None,
        "url": "https://cloudlicense.citrixworkspacesapi.net",
        "path": "/{customer_id}/cloudlicenseusages/products/{product}/current",
        "products": ["secureworkspaceaccess", "xenmobile"],
    },
    "concurrent": {
        "enabled": False,
        "interval": None,
        "url": "https://cloudlicense.citrixworkspacesapi.net",
        "path": (
            "/{customer_id}/license/enterprise/cloud/cvad/ccu/summary"
            "?UsageType=device&LicenseModel=Concurrent"
        ),
    },
    "license_servers": {
        "enabled": False,
        "interval": None,
        "url": "https://licensing.citrixworkspacesapi.net",
        "servers_path": "/{customer_id}/licenseservers",
        "usage_path": "/{customer_id}/licenseusagedata?date={month}",
    },
}


def test_every_default_of_a_minimal_config() -> None:
    dump = parse(MINIMAL).model_dump()
    secret = dump["customers"][0].pop("client_secret")
    assert secret.get_secret_value() == SECRET
    assert dump == {
        "web": {"listen_address": ":9876", "telemetry_path": "/metrics"},
        "poll": {
            "interval": 300.0,
            "timeout": 30.0,
            "max_staleness": 3600.0,
            "retry": {
                "attempts": 4,
                "base_delay": 1.0,
                "max_delay": 60.0,
                "max_retry_after": 900.0,
            },
            "max_response_bytes": 33_554_432,
            "max_series": 20_000,
            "max_concurrency": 64,
            "omit_zero_states": False,
        },
        "customers": [
            {
                "customer_id": "acme1234",
                "client_id": "my-client",
                "region": "us",
                "api_url": None,
                "ca_file": None,
                "collectors": DEFAULT_COLLECTORS,
            }
        ],
    }
    assert (CLOUDLICENSE_URL, LICENSING_INSIGHTS_URL, PARTNER_URL) == (
        "https://cloudlicense.citrixworkspacesapi.net",
        "https://licensing.citrixworkspacesapi.net",
        "https://partner.citrixworkspacesapi.net",
    )


def test_a_mentioned_section_keeps_its_default_enabled_state() -> None:
    """``partner: {interval: 1h}`` must not switch partner on; an empty ``monitor:`` keeps it on."""
    extra = "    collectors:\n" + "".join(
        f"      {name}: {{interval: 1h}}\n" for name in DEFAULT_COLLECTORS
    )
    collectors = parse(customer(extra)).customers[0].collectors
    for name, defaults in DEFAULT_COLLECTORS.items():
        assert getattr(collectors, name).enabled is defaults["enabled"], name
        assert getattr(collectors, name).interval == 3600.0
    nulls = "    collectors:\n" + "".join(f"      {name}:\n" for name in DEFAULT_COLLECTORS)
    assert parse(customer(nulls)).customers[0].collectors == CollectorsConfig()


# --------------------------------------------------------------------------------------------
# collectors: enabled(), interval_or()
# --------------------------------------------------------------------------------------------


def test_enabled_lists_names_and_configs_in_declaration_order() -> None:
    extra = (
        "    collectors:\n"
        "      license_servers: {enabled: true}\n"
        "      licensing: {enabled: false}\n"
        "      products: {enabled: true}\n"
    )
    collectors = parse(customer(extra)).customers[0].collectors
    assert collectors.enabled() == [
        ("monitor", collectors.monitor),
        ("products", collectors.products),
        ("license_servers", collectors.license_servers),
    ]


def test_interval_or_uses_the_collector_interval_or_the_default() -> None:
    extra = "    collectors:\n      licensing: {interval: 2m}\n      monitor: {interval: null}\n"
    cust = parse(customer(extra)).customers[0]
    assert cust.collectors.monitor.interval is None
    assert cust.collectors.licensing.interval_or(7.0) == 120.0
    assert cust.collectors.monitor.interval_or(7.0) == 7.0
    assert cust.collectors.partner.interval_or(42.5) == 42.5


def test_omit_zero_states_global_default_and_per_customer_override() -> None:
    """``poll.omit_zero_states`` applies to every customer whose ``collectors.monitor`` does not
    set the key (also when it sets others, or has no monitor section); a customer's own value,
    either way, wins."""
    customers = (
        customer()
        + "  - {customer_id: zeros-kept, client_id: x, client_secret: y,\n"
        + "     collectors: {monitor: {omit_zero_states: false}}}\n"
        + "  - {customer_id: other, client_id: x, client_secret: y,\n"
        + "     collectors: {monitor: {interval: 1m}}}\n"
    )
    config = parse("poll:\n  omit_zero_states: true\n" + customers)
    omit = {c.customer_id: c.collectors.monitor.omit_zero_states for c in config.customers}
    assert omit == {"acme1234": True, "zeros-kept": False, "other": True}
    assert config.customers[2].collectors.monitor.interval == 60.0
    assert config.customers[0].collectors.licensing == CollectorsConfig().licensing
    on = customers.replace("omit_zero_states: false", "omit_zero_states: true")
    omit = {c.customer_id: c.collectors.monitor.omit_zero_states for c in parse(on).customers}
    assert omit == {"acme1234": False, "zeros-kept": True, "other": False}


def test_region_base_urls_and_api_url_override() -> None:
    base = {r: CustomerConfig(customer_id="a", client_id="b", client_secret="c", region=r)  # type: ignore[arg-type]
            for r in ("us", "eu", "ap-s", "jp")}  # fmt: skip
    assert {r: c.base_url for r, c in base.items()} == {
        "us": "https://api.cloud.com",
        "eu": "https://api.cloud.com",
        "ap-s": "https://api.cloud.com",
        "jp": "https://api.citrixcloud.jp",
    }
    cust = parse(customer(region="jp", api_url="'http://h:8080/p//'")).customers[0]
    assert (cust.api_url, cust.base_url) == ("http://h:8080/p", "http://h:8080/p")


def test_secrets_lists_each_credential_once_in_customer_order() -> None:
    text = (
        customer(client_secret="b-secret")
        + "  - {customer_id: two, client_id: x, client_secret: a-secret}\n"
        + "  - {customer_id: three, client_id: y, client_secret: b-secret}\n"
    )
    assert parse(text).secrets() == ["b-secret", "a-secret"]


# --------------------------------------------------------------------------------------------
# validators: the exact message of each
# --------------------------------------------------------------------------------------------


def collector_error(name: str, body: str) -> str:
    """The message for ``collectors.<name>: <body>`` of the only customer (on line 6)."""
    return error_of(customer(f"    collectors:\n      {name}: {body}\n"))


def at(key: str, message: str) -> str:
    return f"config.yml: customers[0].collectors.{key}: {message} (line 6)"


ALLOWED_PRODUCT = "allowed: {customer_id}, {product}"


@pytest.mark.parametrize(
    ("name", "body", "key", "message"),
    [
        ("products", "{path: 'x/{product}'}", "path", "must start with '/'"),
        ("products", "{path: '/{product}#top'}", "path", "must not contain a fragment"),
        ("products", "{path: '/{product'}", "path", "has an unbalanced '{' or '}'"),
        ("products", "{path: '/{product}}'}", "path", "has an unbalanced '{' or '}'"),
        ("products", "{path: '/{tenant}/{product}'}", "path",
         "unknown placeholder {tenant}; " + ALLOWED_PRODUCT),
        ("products", "{path: '/{product!r}'}", "path",
         "unknown placeholder {product}; " + ALLOWED_PRODUCT),
        ("products", "{path: '/{product:>9}'}", "path",
         "unknown placeholder {product}; " + ALLOWED_PRODUCT),
        # an escaped brace ends a literal part; the placeholders after it are still checked
        ("products", "{path: '/{{x}}/{bogus}'}", "path",
         "unknown placeholder {bogus}; " + ALLOWED_PRODUCT),
        ("products", "{path: '/{customer_id}'}", "path", "must contain {product}"),
        ("products", "{products: []}", "products", "must not be empty"),
        ("products", "{products: [" + "a," * 33 + "]}", "products", "must have at most 32 entries"),
        ("concurrent", "{path: '/{product}'}", "path",
         "unknown placeholder {product}; allowed: {customer_id}"),
        ("license_servers", "{servers_path: '/{month}'}", "servers_path",
         "unknown placeholder {month}; allowed: {customer_id}"),
        ("license_servers", "{usage_path: '/{x}'}", "usage_path",
         "unknown placeholder {x}; allowed: {customer_id}, {month}"),
        ("partner", "{daas_summary_path: '/{tenant_id}'}", "daas_summary_path",
         "unknown placeholder {tenant_id}; allowed: {partner_id}, {customer_id}"),
        ("partner", "{active_use_path: '/{partner_id}'}", "active_use_path",
         "must contain {tenant_id}"),
        ("partner", "{active_use_path: '/{who}'}", "active_use_path",
         "unknown placeholder {who}; allowed: {partner_id}, {customer_id}, {tenant_id}"),
        ("partner", "{partner_id: 'a b'}", "partner_id",
         "must be 1-64 characters of letters, digits, '_', '.' or '-'"),
        ("partner", "{active_use_concurrency: 17}", "active_use_concurrency", "must be at most 16"),
        ("monitor", "{max_pages: 0}", "max_pages", "must be at least 1"),
        ("monitor", "{max_pages: 100001}", "max_pages", "must be at most 100000"),
        ("monitor", "{concurrency: 9}", "concurrency", "must be at most 8"),
        ("monitor", "{overlap: soon}", "overlap", "invalid duration 'soon'"),
        ("monitor", "{overlap: [1]}", "overlap", "must be a duration such as 30s, 5m or 1h"),
        ("monitor", "{enabled: maybe}", "enabled", "must be true or false"),
        ("monitor", "{omit_zero_states: maybe}", "omit_zero_states", "must be true or false"),
        ("monitor", "{omit_zero_states: null}", "omit_zero_states", "must be true or false"),
        ("licensing", "{interval: 999ms}", "interval",
         "must be at least 1s (a poll interval; did you mean minutes, 'm'?)"),
        ("licensing", "{interval: {a: 1}}", "interval",
         "must be a duration such as 30s, 5m or 1h"),
    ],
)  # fmt: skip
def test_collector_messages(name: str, body: str, key: str, message: str) -> None:
    assert collector_error(name, body) == at(f"{name}.{key}", message)


def test_partner_with_every_path_null() -> None:
    nulls = ", ".join(
        f"{kind}_path: null"
        for kind in ("daas_summary", "daas_customers", "onprem_summary", "onprem_customers")
    )
    assert collector_error("partner", f"{{enabled: true, {nulls}}}") == at(
        "partner", "set at least one of the *_path keys"
    )
    partner = parse(customer(f"    collectors:\n      partner: {{{nulls}}}\n")).customers[0]
    assert partner.collectors.partner.enabled is False  # off, so nothing to poll is fine


def test_templates_that_pass() -> None:
    extra = (
        "    collectors:\n"
        "      products: {path: '/{{x}}/{customer_id}/{product}?a=b'}\n"
        "      license_servers: {usage_path: null}\n"
        "      partner: {daas_summary_path: null, partner_id: P_1.x-y}\n"
    )
    collectors = parse(customer(extra)).customers[0].collectors
    assert collectors.products.path == "/{{x}}/{customer_id}/{product}?a=b"
    assert collectors.license_servers.usage_path is None
    assert collectors.partner.daas_summary_path is None
    assert collectors.partner.partner_id == "P_1.x-y"


def test_products_problems_point_at_each_entry() -> None:
    assert collector_error("products", "{products: [a, 'b b', a, a]}").splitlines() == [
        "config.yml: customers[0].collectors.products.products[1]: must be 1-64 characters of "
        "letters, digits, '_', '.' or '-' (line 6)",
        "config.yml: customers[0].collectors.products.products[2]: duplicate product 'a' (line 6)",
        "config.yml: customers[0].collectors.products.products[3]: duplicate product 'a' (line 6)",
    ]


def test_nested_problems_read_as_one_message_when_a_model_is_built_directly() -> None:
    with pytest.raises(ValidationError) as info:
        ProductsCollectorConfig(products=["a", "a", "b b"])
    assert [error["msg"] for error in info.value.errors()] == [
        "Value error, duplicate product 'a'; "
        "must be 1-64 characters of letters, digits, '_', '.' or '-'"
    ]
    with pytest.raises(ValidationError) as info:
        RetryConfig(base_delay=2, max_delay=1)
    assert info.value.errors()[0]["msg"] == "Value error, must not be smaller than base_delay"


@pytest.mark.parametrize(
    ("api_url", "message"),
    [
        ("'http://[::1'", "is not a valid URL"),
        ("'http://h:port'", "is not a valid URL"),
        ("'http://h:0'", "must be an absolute http:// or https:// URL"),
        ("'ftp://h'", "must be an absolute http:// or https:// URL"),
        ("'https://'", "must be an absolute http:// or https:// URL"),
        ("'h/path'", "must be an absolute http:// or https:// URL"),
        ("'https://h/p?'", "must not contain a query string or fragment"),
        ("'https://h/p#'", "must not contain a query string or fragment"),
        ("'https://user@h'", "must not contain credentials"),
    ],
)
def test_api_url_messages(api_url: str, message: str) -> None:
    assert error_of(customer(api_url=api_url)) == (
        f"config.yml: customers[0].api_url: {message} (line 5)"
    )
    observed = customer(f"    collectors:\n      products: {{url: {api_url}}}\n")
    assert error_of(observed) == at("products.url", message)


@pytest.mark.parametrize(
    ("api_url", "stored"),
    [
        ("'http://h:1'", "http://h:1"),
        ("'https://h:65535/'", "https://h:65535"),
        ("'https://h/PREFIX//'", "https://h/PREFIX"),
        ("'HTTPS://H/'", "HTTPS://H"),
    ],
)
def test_api_url_accepted(api_url: str, stored: str) -> None:
    assert parse(customer(api_url=api_url)).customers[0].base_url == stored


def test_observed_collector_url_is_normalised() -> None:
    extra = "    collectors:\n      partner: {url: 'http://127.0.0.1:9/x/'}\n"
    assert parse(customer(extra)).customers[0].collectors.partner.url == "http://127.0.0.1:9/x"


@pytest.mark.parametrize(
    ("fields", "line", "message"),
    [
        ({"customer_id": "'" + "x" * 65 + "'"}, 2, "customer_id: must be 1-64 characters of "
         "letters, digits, '_', '.' or '-'"),
        ({"client_id": "'  '"}, 3, "client_id: must not be empty"),
        ({"client_secret": "' '"}, 4, "client_secret: must not be empty"),
        ({"region": "US"}, 5, "region: must be one of us, eu, ap-s, jp"),
        ({"region": "1"}, 5, "region: must be one of us, eu, ap-s, jp"),
        ({"collectors": "[]"}, 5, "collectors: must be a mapping"),
    ],
)  # fmt: skip
def test_customer_messages(fields: dict[str, str], line: int, message: str) -> None:
    assert error_of(customer(**fields)) == f"config.yml: customers[0].{message} (line {line})"


def test_customer_id_of_64_characters_is_accepted() -> None:
    assert parse(customer(customer_id="x" * 64)).customers[0].customer_id == "x" * 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("poll:\n  interval: 999ms\n",
         "poll.interval: must be at least 1s (a poll interval; did you mean minutes, 'm'?)"),
        ("poll:\n  timeout: [30s]\n", "poll.timeout: must be a duration such as 30s, 5m or 1h"),
        ("poll:\n  timeout: true\n", "poll.timeout: invalid duration True: must be a number "
         "of seconds or a string such as '5m'"),
        ("poll:\n  max_staleness: '1 hour'\n", "poll.max_staleness: invalid duration '1 hour'"),
        ("poll:\n  retry: 3\n", "poll.retry: must be a mapping"),
        ("poll:\n  retry: {max_retry_after: 0s}\n",
         "poll.retry.max_retry_after: invalid duration '0s': must be greater than zero"),
        ("poll:\n  max_series: many\n", "poll.max_series: must be an integer"),
        ("poll:\n  max_series: 1.0e3\n", "poll.max_series: must be an integer"),
        ("poll:\n  omit_zero_states: 2\n", "poll.omit_zero_states: must be true or false"),
        ("web: []\n", "web: must be a mapping"),
        ("web:\n  telemetry_path: 5\n", "web.telemetry_path: must be a string; put the value "
         "in quotes"),
    ],
)  # fmt: skip
def test_top_level_messages(text: str, message: str) -> None:
    line = text.count("\n")  # the last line of ``text`` holds the offending value
    assert error_of(text + MINIMAL) == f"config.yml: {message} (line {line})"


def test_interval_of_exactly_one_second_is_accepted() -> None:
    assert parse("poll:\n  interval: 1s\n" + MINIMAL).poll.interval == 1.0


# --------------------------------------------------------------------------------------------
# environment expansion
# --------------------------------------------------------------------------------------------


def test_escaped_references_stay_literal_and_are_never_looked_up() -> None:
    text = customer(client_id="'$${A}-${A}-$${UNSET}'", client_secret="'$${S}'")
    cust = parse(text, {"A": "1"}).customers[0]
    assert cust.client_id == "${A}-1-${UNSET}"
    assert cust.client_secret.get_secret_value() == "${S}"


def test_each_unset_variable_is_reported_once_per_value() -> None:
    text = customer(client_id="'${B}${A}${B}'", client_secret="'${A}'")
    assert error_of(text, {}) == (
        "config.yml: customers[0].client_id: environment variable B is not set (line 3)\n"
        "config.yml: customers[0].client_id: environment variable A is not set (line 3)\n"
        "config.yml: customers[0].client_secret: environment variable A is not set (line 4)"
    )


def test_an_unresolved_value_suppresses_its_follow_on_errors() -> None:
    """A value that cannot be expanded is not validated further: one problem, not two."""
    text = (
        "poll:\n  interval: ${I}\n  retry: ${R}\n"
        + customer(customer_id="'${C}'", region="${REGION}")
        + "    collectors: {monitor: {enabled: '${E}'}}\n"
    )
    assert error_of(text, {}).splitlines() == [
        "config.yml: poll.interval: environment variable I is not set (line 2)",
        "config.yml: poll.retry: environment variable R is not set (line 3)",
        "config.yml: customers[0].customer_id: environment variable C is not set (line 5)",
        "config.yml: customers[0].region: environment variable REGION is not set (line 8)",
        "config.yml: customers[0].collectors.monitor.enabled: environment variable E is not set "
        "(line 9)",
    ]


def test_expanded_values_are_validated_like_written_ones() -> None:
    text = "poll:\n  interval: ${I}\n" + customer(region="${REGION}")
    assert error_of(text, {"I": "1ms", "REGION": "mars"}).splitlines() == [
        "config.yml: poll.interval: must be at least 1s (a poll interval; did you mean minutes, "
        "'m'?) (line 2)",
        "config.yml: customers[0].region: must be one of us, eu, ap-s, jp (line 7)",
    ]


def test_keys_are_not_expanded() -> None:
    assert error_of("${K}: 1\n" + MINIMAL, {"K": "web"}) == (
        "config.yml: ${K}: unknown key (line 1)"
    )


# --------------------------------------------------------------------------------------------
# secret files
# --------------------------------------------------------------------------------------------


def file_error(value: str, field: str = "client_secret") -> str:
    return error_of(customer(f"    {field}_file: {value}\n", **{field: "<omit>"}))


@pytest.mark.parametrize("value", ["''", "'  '", "5", "[a]", "{a: b}", "null"])
def test_secret_file_must_be_a_path(value: str) -> None:
    assert file_error(value) == (
        "config.yml: customers[0].client_secret_file: must be a file path (line 4)"
    )
    assert file_error(value, "client_id") == (
        "config.yml: customers[0].client_id_file: must be a file path (line 4)"
    )


def test_both_fields_read_from_files(tmp_path: Path) -> None:
    (tmp_path / "id").write_text("  the-id\t\n")
    (tmp_path / "secret").write_text(f"{SECRET} \r\n")
    extra = f"    client_id_file: {tmp_path}/id\n    client_secret_file: {tmp_path}/secret\n"
    cust = parse(customer(extra, client_id="<omit>", client_secret="<omit>")).customers[0]
    assert cust.client_id == "  the-id"
    assert cust.client_secret.get_secret_value() == SECRET


def test_secret_file_problems_replace_field_required(tmp_path: Path) -> None:
    (tmp_path / "blank").write_text(" \n\t\n")
    (tmp_path / "latin1").write_bytes(b"caf\xe9")
    extra = (
        f"    client_id_file: {tmp_path}/blank\n"
        f"    client_secret_file: {tmp_path}/latin1\n"
        "    region: mars\n"
    )
    assert error_of(customer(extra, client_id="<omit>", client_secret="<omit>")).splitlines() == [
        f"config.yml: customers[0].client_id_file: file '{tmp_path}/blank' is empty (line 3)",
        f"config.yml: customers[0].client_secret_file: file '{tmp_path}/latin1' is not valid "
        "UTF-8 text (line 4)",
        "config.yml: customers[0].region: must be one of us, eu, ap-s, jp (line 5)",
    ]


def test_unresolved_file_path_with_the_field_also_given() -> None:
    """The missing variable is the one problem; "mutually exclusive" would be a follow-on."""
    extra = "    client_secret_file: ${D}/s\n"
    assert error_of(customer(extra), {}) == (
        "config.yml: customers[0].client_secret_file: environment variable D is not set (line 5)"
    )


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("it's", "'{dir}/it's'"),
        ("tab\tname", "'{dir}/tab\\tname'"),
        ("plain", "'{dir}/plain'"),
    ],
)
def test_file_paths_in_messages_are_quoted(tmp_path: Path, name: str, shown: str) -> None:
    path = f"{tmp_path}/{name}"
    yaml_path = path.replace("\t", "\\t").replace('"', '\\"')
    message = file_error(f'"{yaml_path}"')
    assert message == (
        f"config.yml: customers[0].client_secret_file: cannot read file "
        f"{shown.format(dir=tmp_path)}: No such file or directory (line 4)"
    )


def test_long_file_paths_are_cut_after_256_characters(tmp_path: Path) -> None:
    prefix = f"{tmp_path}/"
    exact = prefix + "d/" * ((256 - len(prefix)) // 2) + "x" * ((256 - len(prefix)) % 2)
    assert len(exact) == 256
    assert file_error(exact) == (
        f"config.yml: customers[0].client_secret_file: cannot read file '{exact}': "
        "No such file or directory (line 4)"
    )
    assert file_error(exact + "y") == (
        f"config.yml: customers[0].client_secret_file: cannot read file '{exact}...': "
        "No such file or directory (line 4)"
    )


# --------------------------------------------------------------------------------------------
# key paths, lines, order and de-duplication
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("k" * 64, "k" * 64),
        ("k" * 65, "['" + "k" * 64 + "...']"),
        ("''", "['']"),
        ('"' + "t" * 63 + '\\t"', "['" + "t" * 63 + "\\t']"),
        ('"' + "t" * 64 + '\\t"', "['" + "t" * 64 + "...']"),
        ("'a b.c'", "a b.c"),
    ],
)
def test_unknown_keys_are_shown_plain_or_quoted(key: str, shown: str) -> None:
    sep = "" if shown.startswith("[") else "."
    assert error_of(f"web: {{{key}: 1}}\n" + MINIMAL) == (
        f"config.yml: web{sep}{shown}: unknown key (line 1)"
    )


def test_problems_are_ordered_by_line_then_as_found() -> None:
    """Within one line the order is the order of the fields, not alphabetical."""
    text = (
        "customers:\n"
        "  - {customer_id: 'a b', client_id: 5, client_secret: '${S}', region: mars}\n"
        "web: {telemetry_path: x}\n"
    )
    assert error_of(text, {}).splitlines() == [
        "config.yml: customers[0].client_secret: environment variable S is not set (line 2)",
        "config.yml: customers[0].customer_id: must be 1-64 characters of letters, digits, "
        "'_', '.' or '-' (line 2)",
        "config.yml: customers[0].client_id: must be a string; put the value in quotes (line 2)",
        "config.yml: customers[0].region: must be one of us, eu, ap-s, jp (line 2)",
        "config.yml: web.telemetry_path: must start with '/' (line 3)",
    ]


def test_duplicate_keys_name_each_repetition() -> None:
    text = MINIMAL + "    region: us\n    region: eu\n    region: jp\n"
    assert error_of(text).splitlines() == [
        "config.yml: customers[0].region: duplicate key (line 6)",
        "config.yml: customers[0].region: duplicate key (line 7)",
    ]


def test_duplicate_keys_in_every_list_entry() -> None:
    text = (
        "customers:\n"
        "  - {customer_id: a, client_id: b, client_secret: c, client_id: d}\n"
        "  - {customer_id: e, client_id: f, client_secret: g, client_secret: h}\n"
        "  - customer_id: i\n    client_id: j\n    client_secret: k\n"
        "    collectors: {monitor: {enabled: true, enabled: false}}\n"
    )
    assert error_of(text).splitlines() == [
        "config.yml: customers[0].client_id: duplicate key (line 2)",
        "config.yml: customers[1].client_secret: duplicate key (line 3)",
        "config.yml: customers[2].collectors.monitor.enabled: duplicate key (line 7)",
    ]


def test_duplicate_key_in_an_anchor_is_reported_once() -> None:
    extra = (
        "    collectors:\n"
        "      licensing: &every {interval: 1m, interval: 2m}\n"
        "      monitor: *every\n"
    )
    assert error_of(customer(extra)) == (
        "config.yml: customers[0].collectors.licensing.interval: duplicate key (line 6)"
    )


def test_several_merge_keys_are_not_duplicates() -> None:
    text = (
        "eu: &eu {region: eu}\n"
        "url: &url {api_url: 'http://h'}\n"
        "customers:\n"
        "  - customer_id: a\n    client_id: b\n    client_secret: c\n"
        "    <<: *eu\n    <<: *url\n"
    )
    assert error_of(text).splitlines() == [
        "config.yml: eu: unknown key (line 1)",
        "config.yml: url: unknown key (line 2)",
    ]


def test_duplicate_below_an_empty_key_names_it_with_a_question_mark() -> None:
    assert error_of("'': {a: 1, a: 2}\n" + MINIMAL).splitlines() == [
        "config.yml: ?.a: duplicate key (line 1)",
        "config.yml: ['']: unknown key (line 1)",
    ]


def test_missing_keys_point_at_the_closest_line() -> None:
    text = "customers:\n  - customer_id: a\n\n    client_id: b\n  - customer_id: c\n"
    assert error_of(text).splitlines() == [
        "config.yml: customers[0].client_secret: field required (line 2)",
        "config.yml: customers[1].client_id: field required (line 5)",
        "config.yml: customers[1].client_secret: field required (line 5)",
    ]


def test_problems_of_an_alias_point_at_the_anchored_lines() -> None:
    text = (
        "customers:\n  - &c {customer_id: a, client_id: b, client_secret: c, region: x}\n  - *c\n"
    )
    assert error_of(text).splitlines() == [
        "config.yml: customers[0].region: must be one of us, eu, ap-s, jp (line 2)",
        "config.yml: customers[1].region: must be one of us, eu, ap-s, jp (line 2)",
    ]


def test_three_customers_with_one_id() -> None:
    text = MINIMAL + "".join(
        f"  - {{customer_id: acme1234, client_id: c{i}, client_secret: s{i}}}\n" for i in (1, 2)
    )
    assert error_of(text).splitlines() == [
        "config.yml: customers[1].customer_id: duplicate customer_id 'acme1234', already used "
        "by customers[0] (line 5)",
        "config.yml: customers[2].customer_id: duplicate customer_id 'acme1234', already used "
        "by customers[0] (line 6)",
    ]


# --------------------------------------------------------------------------------------------
# field_problems (the command line's --web.* flags) and messages for any pydantic error
# --------------------------------------------------------------------------------------------


class _Lists(BaseModel):
    """A model with bounds the configuration models do not happen to use (yet)."""

    pair: list[int] = Field(default=[1, 2], min_length=2)
    count: int = Field(default=5, gt=0, lt=10)
    name: str = Field(default="ab", min_length=2, max_length=3)


@pytest.mark.parametrize(
    ("data", "problems"),
    [
        ({"pair": [1]}, [("pair", "must have at least 2 entries")]),
        ({"pair": "x"}, [("pair", "must be a list")]),
        ({"pair": [1, "x"]}, [("pair[1]", "must be an integer")]),
        ({"count": 0}, [("count", "must be greater than 0")]),
        ({"count": 10}, [("count", "must be less than 10")]),
        ({"count": "x"}, [("count", "must be an integer")]),
        ({"name": "a"}, [("name", "must be at least 2 characters long")]),
        ({"name": "abcd"}, [("name", "must be at most 3 characters long")]),
    ],
)
def test_field_problems_translate_any_model(
    data: dict[str, object], problems: list[tuple[str, str]]
) -> None:
    with pytest.raises(ValidationError) as info:
        _Lists.model_validate(data)
    assert field_problems(info.value) == problems


def test_field_problems_of_the_web_flags() -> None:
    with pytest.raises(ValidationError) as info:
        WebConfig(listen_address="9876", telemetry_path="metrics")
    assert field_problems(info.value) == [
        ("listen_address", "must be [host]:port, e.g. ':9876' or '127.0.0.1:9876'"),
        ("telemetry_path", "must start with '/'"),
    ]


# --------------------------------------------------------------------------------------------
# load_config and parse_config entry points
# --------------------------------------------------------------------------------------------


def test_parse_config_names_an_unnamed_source() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("web: {}\n", environ={})
    assert info.value.messages == ("<config>: customers: field required (line 1)",)


def test_load_config_reads_a_pipe() -> None:
    """``--config.file <(generate-config)`` hands the exporter a pipe, not a regular file."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, customer(client_secret="${S}").encode())
        os.close(write_end)
        config = load_config(f"/dev/fd/{read_end}", environ={"S": "piped"})
    finally:
        os.close(read_end)
    assert config.secrets() == ["piped"]


def test_load_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_bytes(MINIMAL.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.messages == (f"{path}: configuration file is not valid UTF-8",)
