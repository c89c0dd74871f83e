"""Tests for configuration loading, validation messages and durations."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from exporter.config import (
    REGION_BASE_URLS,
    CollectorsConfig,
    ConfigError,
    CustomerConfig,
    PartnerCollectorConfig,
    PollConfig,
    RetryConfig,
    WebConfig,
    load_config,
    parse_config,
)
from exporter.durations import format_duration, parse_duration
from tests.support.config_text import MINIMAL, SECRET, TEST_CA_PEM, customer, error_of, parse

# --------------------------------------------------------------------------------------------
# durations
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("90", 90.0),
        ("1.5", 1.5),
        (" 2m ", 120.0),
        ("2M", 120.0),
        (45, 45.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration_accepts(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    ["5 minutes", "", "abc", "5x", "m", "1.5.5s", "1h 30m", "--1", "0", "0s", "-1", "-5m", 0, -3,
     0.0, True, math.nan, math.inf, "inf", "nan"],
)  # fmt: skip
def test_parse_duration_rejects(value: str | float) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


def test_parse_duration_messages_explain() -> None:
    with pytest.raises(ValueError, match=r"'5 minutes'.*'30s'"):
        parse_duration("5 minutes")
    with pytest.raises(ValueError, match="greater than zero"):
        parse_duration("0s")
    with pytest.raises(ValueError, match="greater than zero"):
        parse_duration(-5)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (300, "5m"),
        (5400, "1h30m"),
        (30, "30s"),
        (1.5, "1.5s"),
        (0.25, "250ms"),
        (3600, "1h"),
        (86400, "1d"),
        (90000, "1d1h"),
        (90.5, "1m30.5s"),
        (0, "0s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0.5, 1.5, 30, 90.5, 300, 5400, 86400, 93784.25])
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


# --------------------------------------------------------------------------------------------
# defaults and values
# --------------------------------------------------------------------------------------------


def test_minimal_config_uses_defaults() -> None:
    config = parse(MINIMAL)
    assert config.web == WebConfig(listen_address=":9876", telemetry_path="/metrics")
    assert config.poll == PollConfig(interval=300.0, timeout=30.0, max_staleness=3600.0)
    assert config.poll.retry == RetryConfig(attempts=4, base_delay=1.0, max_delay=60.0)
    (cust,) = config.customers
    assert cust.customer_id == "acme1234"
    assert cust.client_id == "my-client"
    assert cust.client_secret.get_secret_value() == SECRET
    assert cust.region == "us"
    assert cust.api_url is None
    assert cust.ca_file is None
    assert cust.base_url == "https://api.cloud.com"
    assert [name for name, _ in cust.collectors.enabled()] == ["licensing", "monitor"]
    assert cust.collectors.partner.enabled is False
    assert cust.collectors.monitor.interval_or(300.0) == 300.0
    assert config.secrets() == [SECRET]


def test_full_example(tmp_path: Path) -> None:
    ca = tmp_path / "custom.pem"
    ca.write_text(TEST_CA_PEM)
    (tmp_path / "client_secret").write_text(SECRET + "\n")
    text = f"""\
    web:
      listen_address: "127.0.0.1:9000"
      telemetry_path: /prom
    poll:
      interval: 5m
      timeout: 30s
      max_staleness: 1h
      retry: {{attempts: 2, base_delay: 500ms, max_delay: 10s}}
    customers:
      - customer_id: acme1234
        client_id: ${{CITRIX_CLIENT_ID}}
        client_secret_file: ${{CREDENTIALS_DIRECTORY}}/client_secret
        region: eu
        api_url: https://api.example.test/
        ca_file: {ca}
        collectors:
          licensing: {{interval: 15m}}
          monitor: {{interval: 1m}}
          partner: {{enabled: false}}
    """
    env = {"CITRIX_CLIENT_ID": "cid-1", "CREDENTIALS_DIRECTORY": str(tmp_path)}
    config = parse(text, env)
    assert config.web.listen_address == "127.0.0.1:9000"
    assert config.web.telemetry_path == "/prom"
    assert config.poll.retry == RetryConfig(attempts=2, base_delay=0.5, max_delay=10.0)
    cust = config.customers[0]
    assert cust.client_id == "cid-1"
    assert cust.client_secret.get_secret_value() == SECRET
    assert cust.base_url == "https://api.example.test"
    assert cust.ca_file == str(ca)
    assert cust.collectors.licensing.interval_or(config.poll.interval) == 900.0
    assert cust.collectors.monitor.interval_or(config.poll.interval) == 60.0
    assert cust.collectors.partner.interval_or(config.poll.interval) == 300.0
    assert [name for name, _ in cust.collectors.enabled()] == ["licensing", "monitor"]


def test_collector_defaults_apply_when_section_omits_enabled() -> None:
    extra = (
        "    collectors:\n"
        "      licensing:\n"
        "      monitor: {enabled: false}\n"
        "      partner: {interval: 1h}\n"
    )
    config = parse(customer(extra))
    collectors = config.customers[0].collectors
    assert collectors.licensing.enabled is True
    assert collectors.partner.enabled is False
    assert collectors.partner.interval == 3600.0
    assert [name for name, _ in collectors.enabled()] == ["licensing"]


def test_enabled_collectors_keep_field_order() -> None:
    config = parse(customer("    collectors: {partner: {enabled: true}, monitor: {enabled: true}}"))
    names = [name for name, _ in config.customers[0].collectors.enabled()]
    assert names == ["licensing", "monitor", "partner"]


def test_empty_sections_mean_defaults() -> None:
    config = parse("web:\npoll:\n  retry:\n" + customer("    collectors:\n"))
    assert config.web == WebConfig()
    assert config.poll == PollConfig()


@pytest.mark.parametrize(("region", "url"), sorted(REGION_BASE_URLS.items()))
def test_region_base_urls(region: str, url: str) -> None:
    assert parse(customer(region=region)).customers[0].base_url == url


def test_region_urls_match_citrix() -> None:
    assert REGION_BASE_URLS["jp"] == "https://api.citrixcloud.jp"
    assert {REGION_BASE_URLS[r] for r in ("us", "eu", "ap-s")} == {"https://api.cloud.com"}


@pytest.mark.parametrize(
    ("api_url", "base_url"),
    [
        ("https://api.example.test", "https://api.example.test"),
        ("https://api.example.test/", "https://api.example.test"),
        ("http://127.0.0.1:8080/sim//", "http://127.0.0.1:8080/sim"),
    ],
)
def test_api_url_overrides_region(api_url: str, base_url: str) -> None:
    config = parse(customer(region="jp", api_url=api_url))
    assert config.customers[0].api_url == base_url
    assert config.customers[0].base_url == base_url


@pytest.mark.parametrize(
    "api_url",
    [
        "ftp://api.example.test",
        "api.example.test",
        "/relative",
        "https://api.example.test/?x=1",
        "https://api.example.test/#frag",
        "https://user:hunter2pw@api.example.test",
        "https://api.example.test:99999",
    ],
)
def test_api_url_rejected(api_url: str) -> None:
    message = error_of(customer(api_url=f"'{api_url}'"))
    assert message.startswith("config.yml: customers[0].api_url: ")
    assert message.endswith("(line 5)")
    assert "hunter2pw" not in message


@pytest.mark.parametrize(
    ("value", "seconds"), [("90", 90.0), ("1h30m", 5400.0), ("2.5", 2.5), ("'45'", 45.0)]
)
def test_poll_interval_forms(value: str, seconds: float) -> None:
    assert parse(f"poll:\n  interval: {value}\n" + MINIMAL).poll.interval == seconds


def test_ca_file_ok_and_missing(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(TEST_CA_PEM)
    assert parse(customer(ca_file=str(ca))).customers[0].ca_file == str(ca)
    missing = tmp_path / "missing.pem"
    message = error_of(customer(ca_file=str(missing)))
    assert message == (
        f"config.yml: customers[0].ca_file: cannot read CA file '{missing}': "
        "No such file or directory (line 5)"
    )


def test_models_are_frozen() -> None:
    config = parse(MINIMAL)
    with pytest.raises(ValidationError):
        config.poll.interval = 1.0


def test_models_can_be_built_directly() -> None:
    cust = CustomerConfig(customer_id="a", client_id="b", client_secret="c", region="jp")  # type: ignore[arg-type]
    assert cust.base_url == "https://api.citrixcloud.jp"
    assert CollectorsConfig().partner == PartnerCollectorConfig(enabled=False)
    assert PollConfig(interval="5m").interval == 300.0  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# error messages
# --------------------------------------------------------------------------------------------


def test_missing_required_key_names_parent_line() -> None:
    text = "poll:\n  interval: 1m\ncustomers:\n  - customer_id: acme1234\n    client_id: x\n"
    assert error_of(text) == "config.yml: customers[0].client_secret: field required (line 4)"


def test_missing_customers() -> None:
    assert error_of("web: {}\n") == "config.yml: customers: field required (line 1)"
    assert error_of("customers: []\n") == "config.yml: customers: must not be empty (line 1)"
    assert error_of("customers:\n") == "config.yml: customers: must not be empty (line 1)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("colour: red\n" + MINIMAL, "colour: unknown key (line 1)"),
        ("web: {port: 1}\n" + MINIMAL, "web.port: unknown key (line 1)"),
        ("poll:\n  intervall: 1m\n" + MINIMAL, "poll.intervall: unknown key (line 2)"),
        ("poll:\n  retry:\n    tries: 3\n" + MINIMAL, "poll.retry.tries: unknown key (line 3)"),
        (MINIMAL + "    colectors: {}\n", "customers[0].colectors: unknown key (line 5)"),
        (
            MINIMAL + "    collectors:\n      inventory: {}\n",
            "customers[0].collectors.inventory: unknown key (line 6)",
        ),
        (
            MINIMAL + "    collectors:\n      monitor:\n        pages: 3\n",
            "customers[0].collectors.monitor.pages: unknown key (line 7)",
        ),
    ],
)
def test_unknown_keys_at_every_level(text: str, expected: str) -> None:
    assert error_of(text) == f"config.yml: {expected}"


def test_unknown_key_example_from_docs() -> None:
    text = """\
    customers:
      - customer_id: acme1234
        client_id: my-client
        client_secret: x
        region: us

        colectors:
          monitor: {interval: 1m}
    """
    assert error_of(text) == "config.yml: customers[0].colectors: unknown key (line 7)"


def test_invalid_duration_message() -> None:
    text = "web: {}\npoll:\n  interval: 5 minutes\n" + MINIMAL
    assert error_of(text) == "config.yml: poll.interval: invalid duration '5 minutes' (line 3)"


@pytest.mark.parametrize("value", ["0", "0s", "-5m", "-1"])
def test_non_positive_durations_rejected(value: str) -> None:
    message = error_of(f"poll:\n  timeout: {value}\n" + MINIMAL)
    assert message.startswith("config.yml: poll.timeout: invalid duration")
    assert message.endswith("must be greater than zero (line 2)")


def test_collector_interval_error_path() -> None:
    text = (
        MINIMAL
        + "  - customer_id: other\n    client_id: c\n    client_secret: d\n"
        + "    collectors:\n      monitor: {interval: soon}\n"
    )
    assert error_of(text) == (
        "config.yml: customers[1].collectors.monitor.interval: invalid duration 'soon' (line 9)"
    )


@pytest.mark.parametrize(("attempts", "message"), [(0, "at least 1"), (11, "at most 10")])
def test_retry_attempts_range(attempts: int, message: str) -> None:
    text = f"poll:\n  retry:\n    attempts: {attempts}\n" + MINIMAL
    assert error_of(text) == f"config.yml: poll.retry.attempts: must be {message} (line 3)"


def test_retry_max_delay_not_below_base_delay() -> None:
    text = "poll:\n  retry: {base_delay: 10s, max_delay: 1s}\n" + MINIMAL
    assert error_of(text) == (
        "config.yml: poll.retry.max_delay: must not be smaller than base_delay (line 2)"
    )


def test_web_validation() -> None:
    message = error_of('web:\n  listen_address: "9876"\n  telemetry_path: metrics\n' + MINIMAL)
    assert message.splitlines() == [
        "config.yml: web.listen_address: must be [host]:port, e.g. ':9876' or '127.0.0.1:9876'"
        " (line 2)",
        "config.yml: web.telemetry_path: must start with '/' (line 3)",
    ]


def test_region_message() -> None:
    assert error_of(customer(region="mars")) == (
        "config.yml: customers[0].region: must be one of us, eu, ap-s, jp (line 5)"
    )


@pytest.mark.parametrize("customer_id", ["'acme 1234'", "'a/b'", "''", "x" * 65])
def test_customer_id_format(customer_id: str) -> None:
    message = error_of(customer(customer_id=customer_id))
    assert message.startswith("config.yml: customers[0].customer_id: must be 1-64 characters")


def test_numeric_scalar_must_be_quoted() -> None:
    assert error_of(customer(client_id="012345")) == (
        "config.yml: customers[0].client_id: must be a string; put the value in quotes (line 3)"
    )


def test_duplicate_customer_ids() -> None:
    text = MINIMAL + "  - customer_id: acme1234\n    client_id: b\n    client_secret: c\n"
    assert error_of(text) == (
        "config.yml: customers[1].customer_id: duplicate customer_id 'acme1234', "
        "already used by customers[0] (line 5)"
    )


def test_duplicate_yaml_key() -> None:
    text = MINIMAL + "    region: us\n    region: eu\n"
    assert error_of(text) == "config.yml: customers[0].region: duplicate key (line 6)"


def test_yaml_syntax_error() -> None:
    text = "customers:\n  - customer_id: a\n    client_id: [b\n"
    message = error_of(text)
    assert message.startswith("config.yml: YAML syntax error at line 4, column 1: ")


def test_yaml_syntax_error_position() -> None:
    text = "web:\n  listen_address: ':1'\n telemetry_path: /m\n"
    assert error_of(text).startswith("config.yml: YAML syntax error at line 3, column 2: ")


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "~\n"])
def test_empty_file(text: str) -> None:
    assert error_of(text) == "config.yml: configuration is empty"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_top_level_not_a_mapping(text: str) -> None:
    assert error_of(text) == "config.yml: top level must be a mapping of keys (line 1)"


def test_customer_entry_not_a_mapping() -> None:
    assert error_of("customers:\n  - acme\n") == (
        "config.yml: customers[0]: must be a mapping (line 2)"
    )


def test_all_errors_reported_one_per_line_in_line_order() -> None:
    text = """\
    poll:
      interval: forever
      bogus: 1
    customers:
      - customer_id: acme1234
        client_id: x
        region: mars
      - customer_id: second
        client_id: y
        client_secret: ${MISSING}
    """
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert info.value.messages == (
        "config.yml: poll.interval: invalid duration 'forever' (line 2)",
        "config.yml: poll.bogus: unknown key (line 3)",
        "config.yml: customers[0].client_secret: field required (line 5)",
        "config.yml: customers[0].region: must be one of us, eu, ap-s, jp (line 7)",
        "config.yml: customers[1].client_secret: environment variable MISSING is not set (line 10)",
    )
    assert str(info.value) == "\n".join(info.value.messages)


# --------------------------------------------------------------------------------------------
# environment expansion
# --------------------------------------------------------------------------------------------


def test_env_expansion() -> None:
    text = customer(client_id="pre-${A}-${B}", client_secret="${CITRIX_CLIENT_SECRET}")
    config = parse(text, {"A": "1", "B": "2", "CITRIX_CLIENT_SECRET": SECRET})
    assert config.customers[0].client_id == "pre-1-2"
    assert config.customers[0].client_secret.get_secret_value() == SECRET


def test_env_missing_variable() -> None:
    text = customer(client_secret="${CITRIX_CLIENT_SECRET}")
    assert error_of(text) == (
        "config.yml: customers[0].client_secret: environment variable CITRIX_CLIENT_SECRET "
        "is not set (line 4)"
    )


def test_env_escaped_reference_is_literal() -> None:
    text = customer(client_secret="'a$${X}b'", client_id="'$$notvar ${Y}'")
    config = parse(text, {"X": "expanded", "Y": "y"})
    assert config.customers[0].client_secret.get_secret_value() == "a${X}b"
    assert config.customers[0].client_id == "$$notvar y"


def test_env_expansion_is_not_recursive_and_skips_yaml_syntax() -> None:
    config = parse(customer(client_secret="${S}"), {"S": "x: [${T}"})
    assert config.customers[0].client_secret.get_secret_value() == "x: [${T}"


def test_env_expansion_for_non_string_fields() -> None:
    text = "poll:\n  interval: ${I}\n  retry: {attempts: '${N}'}\n" + customer(
        "    collectors: {monitor: {enabled: '${E}'}}\n"
    )
    config = parse(text, {"I": "2m", "N": "3", "E": "false"})
    assert config.poll.interval == 120.0
    assert config.poll.retry.attempts == 3
    assert config.customers[0].collectors.monitor.enabled is False


def test_env_defaults_to_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITRIX_TEST_CLIENT_ID", "from-the-environment")
    config = parse_config(customer(client_id="${CITRIX_TEST_CLIENT_ID}"))
    assert config.customers[0].client_id == "from-the-environment"


# --------------------------------------------------------------------------------------------
# secret files
# --------------------------------------------------------------------------------------------


def test_secret_file_strips_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(f"{SECRET}\n\n")
    (tmp_path / "id").write_text("file-client \n")
    extra = f"    client_id_file: {tmp_path}/id\n    client_secret_file: {tmp_path}/secret\n"
    text = customer(extra, client_id="<omit>", client_secret="<omit>")
    config = parse(text)
    assert config.customers[0].client_id == "file-client"
    assert config.customers[0].client_secret.get_secret_value() == SECRET
    assert config.secrets() == [SECRET]


def test_secret_file_path_expands_env(tmp_path: Path) -> None:
    (tmp_path / "client_secret").write_text(SECRET)
    extra = "    client_secret_file: ${CREDENTIALS_DIRECTORY}/client_secret\n"
    config = parse(
        customer(extra, client_secret="<omit>"), {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    )
    assert config.customers[0].client_secret.get_secret_value() == SECRET


def test_secret_file_path_env_missing() -> None:
    extra = "    client_secret_file: ${CREDENTIALS_DIRECTORY}/client_secret\n"
    assert error_of(customer(extra, client_secret="<omit>")) == (
        "config.yml: customers[0].client_secret_file: environment variable "
        "CREDENTIALS_DIRECTORY is not set (line 4)"
    )


def test_secret_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    message = error_of(customer(f"    client_secret_file: {path}\n", client_secret="<omit>"))
    assert message == (
        f"config.yml: customers[0].client_secret_file: cannot read file '{path}': "
        "No such file or directory (line 4)"
    )


def test_secret_file_unreadable(tmp_path: Path) -> None:
    message = error_of(customer(f"    client_id_file: {tmp_path}\n", client_id="<omit>"))
    assert message.startswith(
        f"config.yml: customers[0].client_id_file: cannot read file '{tmp_path}': "
    )
    assert message.endswith("(line 4)")


def test_secret_file_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_text("\n")
    message = error_of(customer(f"    client_secret_file: {path}\n", client_secret="<omit>"))
    assert (
        message == f"config.yml: customers[0].client_secret_file: file '{path}' is empty (line 4)"
    )


def test_secret_and_secret_file_both_given(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("other")
    message = error_of(customer(f"    client_secret_file: {path}\n"))
    assert message == (
        "config.yml: customers[0].client_secret_file: client_secret and client_secret_file "
        "are mutually exclusive; set only one of them (line 5)"
    )


def test_client_id_and_file_both_given(tmp_path: Path) -> None:
    message = error_of(customer(f"    client_id_file: {tmp_path}/id\n"))
    assert message.startswith("config.yml: customers[0].client_id_file: client_id and")


def test_neither_secret_nor_file() -> None:
    assert error_of(customer(client_secret="<omit>")) == (
        "config.yml: customers[0].client_secret: field required (line 2)"
    )


@pytest.mark.parametrize(("text", "env"), [("''", {}), ("${EMPTY}", {"EMPTY": ""})])
def test_empty_secret_rejected(text: str, env: dict[str, str]) -> None:
    assert error_of(customer(client_secret=text), env) == (
        "config.yml: customers[0].client_secret: must not be empty (line 4)"
    )


# --------------------------------------------------------------------------------------------
# secrets never leak
# --------------------------------------------------------------------------------------------


def test_secret_never_in_error_messages(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    env = {"SECRET": SECRET}
    cases = [
        customer(client_secret="${SECRET}", customer_id="'bad id'"),
        customer(client_secret="${SECRET}", region="mars"),
        customer(f"    client_secret_file: {secret_file}\n", client_secret="${SECRET}"),
        customer(f"    client_secret_file: {secret_file}\n    bogus: 1\n", client_secret="<omit>"),
        customer(client_secret=f"[{SECRET}]"),
        customer(client_secret=f"{{value: {SECRET}}}"),
        customer(client_secret="123456789012345"),
        customer(client_secret="${SECRET}") + "  - customer_id: acme1234\n",
        customer(client_secret=SECRET, api_url=f"'https://u:{SECRET}@h'"),
    ]
    for text in cases:
        message = error_of(text, env)
        assert SECRET not in message
        assert "123456789012345" not in message


def test_secret_never_in_repr(tmp_path: Path) -> None:
    config = parse(customer(client_secret="${SECRET}"), {"SECRET": SECRET})
    for rendered in (
        repr(config),
        str(config),
        repr(config.customers[0]),
        str(config.model_dump()),
    ):
        assert SECRET not in rendered
    assert config.secrets() == [SECRET]


# --------------------------------------------------------------------------------------------
# load_config
# --------------------------------------------------------------------------------------------


def test_load_config_from_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(customer(client_secret="${S}"))
    assert (
        load_config(path, environ={"S": "x"}).customers[0].client_secret.get_secret_value() == "x"
    )
    assert load_config(str(path), environ={"S": "y"}).secrets() == ["y"]


def test_load_config_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("customers:\n  - customer_id: a\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value).startswith(f"{path}: customers[0].client_id: field required (line 2)")


def test_load_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yml"
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config(path, environ={})
