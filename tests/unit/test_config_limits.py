"""Bounds on what a configuration can cost: the files it names, its YAML, its web settings.

Each hostile input must end in one ConfigError line naming the key path (or the YAML line),
never in a traceback, a hang or gigabytes of memory.
"""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path

import pytest

from exporter import cli
from exporter.config import (
    RESERVED_PATHS,
    ConfigError,
    WebConfig,
    load_config,
    parse_config,
    parse_listen_address,
)
from exporter.config.files import CA_FILE_MAX_BYTES, CONFIG_FILE_MAX_BYTES, SECRET_FILE_MAX_BYTES
from exporter.config.yaml_bounds import MAX_DEPTH, MAX_NODES
from tests.support.config_text import MINIMAL, SECRET, TEST_CA_PEM, customer, error_of, parse

# --------------------------------------------------------------------------------------------
# secret files: regular files of at most 64 KiB
# --------------------------------------------------------------------------------------------


def secret_file_error(path: str | Path, field: str = "client_secret") -> str:
    """The message for a customer whose ``<field>_file`` is ``path`` (key on line 4)."""
    return error_of(customer(f"    {field}_file: {path}\n", **{field: "<omit>"}))


def test_secret_file_from_dev_zero_is_refused_without_reading() -> None:
    assert secret_file_error("/dev/zero") == (
        "config.yml: customers[0].client_secret_file: cannot read file '/dev/zero': "
        "not a regular file (a character device) (line 4)"
    )


def test_secret_file_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "secret.fifo"
    os.mkfifo(fifo)  # nobody ever writes: an open without O_NONBLOCK would wait forever
    assert secret_file_error(fifo, "client_id") == (
        f"config.yml: customers[0].client_id_file: cannot read file '{fifo}': "
        "not a regular file (a FIFO) (line 4)"
    )


def test_secret_file_directory_is_named_as_such(tmp_path: Path) -> None:
    assert secret_file_error(tmp_path).endswith("not a regular file (a directory) (line 4)")


def test_secret_file_size_limit_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("s" * SECRET_FILE_MAX_BYTES)
    config = parse(customer(f"    client_secret_file: {path}\n", client_secret="<omit>"))
    assert len(config.customers[0].client_secret.get_secret_value()) == SECRET_FILE_MAX_BYTES
    path.write_text(SECRET + "s" * SECRET_FILE_MAX_BYTES)
    message = secret_file_error(path)
    assert message == (
        f"config.yml: customers[0].client_secret_file: cannot read file '{path}': "
        "larger than 64 KiB (line 4)"
    )
    assert SECRET not in message


def test_secret_file_behind_a_symlink_is_read(tmp_path: Path) -> None:
    """Kubernetes secret volumes and systemd credentials are symlinks: they must keep working."""
    (tmp_path / "..data").mkdir()
    (tmp_path / "..data" / "client_secret").write_text(SECRET + "\n")
    link = tmp_path / "client_secret"
    link.symlink_to(Path("..data") / "client_secret")
    config = parse(customer(f"    client_secret_file: {link}\n", client_secret="<omit>"))
    assert config.customers[0].client_secret.get_secret_value() == SECRET


def test_secret_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"\xff\xfe secret")
    assert secret_file_error(path).endswith(f"file '{path}' is not valid UTF-8 text (line 4)")


# --------------------------------------------------------------------------------------------
# ca_file: a regular file of PEM certificates, at most 1 MiB
# --------------------------------------------------------------------------------------------


def ca_error(path: str | Path) -> str:
    return error_of(customer(ca_file=str(path)))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not a bundle of PEM certificates (no certificate or crl found)"),
        (b"not a certificate\n", "not a bundle of PEM certificates (no certificate or crl found)"),
        (
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "not a bundle of PEM certificates (unreadable pem)",
        ),
    ],
)
def test_ca_file_must_hold_pem_certificates(tmp_path: Path, content: bytes, reason: str) -> None:
    """Used to pass --check-config and then fail with a traceback when serving."""
    path = tmp_path / "ca.pem"
    path.write_bytes(content)
    assert ca_error(path) == (
        f"config.yml: customers[0].ca_file: cannot read CA file '{path}': {reason} (line 5)"
    )


@pytest.mark.parametrize(
    ("make", "kind"),
    [("dev_zero", "a character device"), ("fifo", "a FIFO"), ("dir", "a directory")],
)
def test_ca_file_must_be_a_regular_file(tmp_path: Path, make: str, kind: str) -> None:
    path: str | Path = "/dev/zero"
    if make == "fifo":
        path = tmp_path / "ca.fifo"
        os.mkfifo(path)
    elif make == "dir":
        path = tmp_path
    assert ca_error(path).endswith(f"'{path}': not a regular file ({kind}) (line 5)")


def test_ca_file_limit_is_1_mib_not_64_kib(tmp_path: Path) -> None:
    """A system-sized bundle (~220 KB) is fine; the limit stops only absurd files."""
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(TEST_CA_PEM * (300 * 1024 // len(TEST_CA_PEM)))
    assert bundle.stat().st_size > 4 * SECRET_FILE_MAX_BYTES
    assert parse(customer(ca_file=str(bundle))).customers[0].ca_file == str(bundle)
    huge = tmp_path / "huge.pem"
    huge.write_text(TEST_CA_PEM * (CA_FILE_MAX_BYTES // len(TEST_CA_PEM) + 1))
    assert ca_error(huge).endswith(f"'{huge}': larger than 1 MiB (line 5)")


def test_ca_file_edited_after_a_check_is_checked_again(tmp_path: Path) -> None:
    """The parse is cached per file version (partner configs repeat one CA), never beyond."""
    path = tmp_path / "ca.pem"
    path.write_text(TEST_CA_PEM)
    parse(customer(ca_file=str(path)))
    path.write_text("replaced by junk, same path\n")
    assert "not a bundle of PEM certificates" in ca_error(path)


# --------------------------------------------------------------------------------------------
# the config file itself
# --------------------------------------------------------------------------------------------


def test_config_file_from_a_device_or_too_large(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^/dev/zero: cannot read configuration file: not a "):
        load_config("/dev/zero")
    big = tmp_path / "big.yml"
    big.write_text(MINIMAL + "#" * CONFIG_FILE_MAX_BYTES)
    with pytest.raises(ConfigError, match=r"cannot read configuration file: larger than 4 MiB$"):
        load_config(big)


# --------------------------------------------------------------------------------------------
# web: listen address and telemetry path (the same model serves the command line)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        (":9876", (None, 9876)),
        ("127.0.0.1:9876", ("127.0.0.1", 9876)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:9876", ("::1", 9876)),
        ("[::]:65535", ("::", 65535)),
    ],
)
def test_listen_address_parses(address: str, parsed: tuple[str | None, int]) -> None:
    assert parse_listen_address(address) == parsed
    assert WebConfig(listen_address=address).listen_address == address


@pytest.mark.parametrize(
    ("address", "detail"),
    [
        ("[::1", "unbalanced '[' or ']'"),
        ("::1]:9876", "unbalanced '[' or ']'"),
        ("::1:9876", "an IPv6 host goes in brackets"),
        ("[::1]", "must be [host]:port"),
        ("[example]:9876", "must have an IPv6 address inside '[...]'"),
        ("my host:9876", "must have a host name or IP address"),
        (":99999", "must be [host]:port"),
        (":\u0661\u0662", "must be [host]:port"),  # Arabic-Indic digits pass str.isdigit()
        ("", "must be [host]:port"),
    ],
)
def test_listen_address_rejected(address: str, detail: str) -> None:
    with pytest.raises(ValueError, match=r"^.*" + detail.replace("[", r"\[").replace("]", r"\]")):
        parse_listen_address(address)
    message = error_of(f"web:\n  listen_address: '{address}'\n" + MINIMAL)
    assert message.startswith("config.yml: web.listen_address: ") and message.endswith("(line 2)")
    assert detail in message


def test_serve_binds_with_the_validating_parser() -> None:
    """One parser for the key, the flag and the bind call (issue #11): serve() binds at the
    validated WebConfig's bind_address, which is the parser's answer."""
    assert inspect.signature(cli.serve).parameters["web_config"].annotation == "WebConfig"
    bind = WebConfig(listen_address="[::1]:9876").bind_address
    assert bind == parse_listen_address("[::1]:9876") == ("::1", 9876)


@pytest.mark.parametrize("path", RESERVED_PATHS)
def test_telemetry_path_cannot_shadow_own_endpoints(path: str) -> None:
    assert error_of(f"web:\n  telemetry_path: '{path}'\n" + MINIMAL) == (
        f"config.yml: web.telemetry_path: '{path}' is taken by the exporter itself; "
        "use e.g. /metrics (line 2)"
    )


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/{x}", "must not contain '{' or '}'"),  # aiohttp served metrics on every path
        ("/metrics}", "must not contain '{' or '}'"),
        ("/my metrics", "must be a plain path"),
        ("/metrics\t", "must be a plain path"),
        ("/metrics?format=text", "must be a plain path"),
        ("/metrics#top", "must be a plain path"),
        ("/m%20x", "must be a plain path"),
        ("/m\u00e9triques", "must be a plain path"),
    ],
)
def test_telemetry_path_must_be_literal(path: str, detail: str) -> None:
    message = error_of(f'web:\n  telemetry_path: "{path}"\n' + MINIMAL)
    assert message.startswith(f"config.yml: web.telemetry_path: {detail}")
    assert message.endswith("(line 2)")


@pytest.mark.parametrize("path", ["/metrics", "/prometheus/metrics", "/-/metrics", "/m.txt"])
def test_telemetry_path_accepted(path: str) -> None:
    assert parse(f"web:\n  telemetry_path: {path}\n" + MINIMAL).web.telemetry_path == path


# --------------------------------------------------------------------------------------------
# YAML: depth, alias expansion, scalars that fail to construct
# --------------------------------------------------------------------------------------------


def test_deeply_nested_flow_document() -> None:
    """5,000 levels used to end in a RecursionError traceback."""
    text = MINIMAL + "x: " + "[" * 5000 + "]" * 5000 + "\n"
    assert error_of(text) == (
        f"config.yml: YAML document is nested too deeply (more than {MAX_DEPTH} levels) (line 5)"
    )


def test_deeply_nested_block_document_names_the_line() -> None:
    lines = "".join(" " * level + "k:\n" for level in range(1, MAX_DEPTH + 10))
    message = error_of(MINIMAL + "x:\n" + lines)
    assert message.startswith("config.yml: YAML document is nested too deeply")
    assert message.endswith(f"(line {5 + MAX_DEPTH})")


def test_nesting_within_the_limit_reaches_validation() -> None:
    text = MINIMAL + "x: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert error_of(text) == "config.yml: x: unknown key (line 5)"


def test_billion_laughs_is_refused_before_expanding() -> None:
    """Nine levels of nine aliases: 10^9 values, which used to expand for minutes."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    message = error_of(MINIMAL + "\n".join(lines) + "\n")
    # l5 is the first list whose expansion (9^6 values) exceeds the bound
    assert message == (
        f"config.yml: YAML document expands through aliases to more than {MAX_NODES:,} values "
        "(line 10)"
    )


def test_alias_chain_cannot_nest_beyond_the_limit() -> None:
    """Each alias adds depth without adding lines: 20 links of 10 levels is 200 deep."""
    lines = ["a0: &a0 " + "[" * 10 + "1" + "]" * 10]
    lines += [f"a{i}: &a{i} {'[' * 9}*a{i - 1}{']' * 9}" for i in range(1, 20)]
    message = error_of(MINIMAL + "\n".join(lines) + "\n")
    assert message.startswith("config.yml: YAML document is nested too deeply through aliases")


def test_recursive_alias_names_the_line() -> None:
    assert error_of(MINIMAL + "x: &loop [1, *loop]\n") == (
        "config.yml: YAML document has a recursive alias (an anchor used inside itself) (line 5)"
    )


def test_legitimate_anchors_aliases_and_merge_keys_still_work() -> None:
    text = """\
    customers:
      - customer_id: a
        client_id: b
        client_secret: cccccc
        collectors: &collectors
          licensing: {interval: 15m}
          monitor: &monitor {enabled: false, max_pages: 20}
      - customer_id: c
        client_id: d
        client_secret: eeeeee
        collectors: *collectors
      - customer_id: e
        client_id: f
        client_secret: gggggg
        collectors:
          monitor: {<<: *monitor, enabled: true}
    """
    first, second, third = parse(text).customers
    assert first.collectors == second.collectors
    assert second.collectors.licensing.interval == 900.0
    assert second.collectors.monitor.enabled is False
    assert third.collectors.monitor.enabled is True
    assert third.collectors.monitor.max_pages == 20


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("2024-13-01", "timestamp"),  # ValueError: month must be in 1..12
        ("1" * 5000, "int"),  # ValueError: beyond Python's integer digit limit
        ("!!int ''", "int"),  # IndexError
        ("!!bool maybe", "bool"),  # KeyError
        ("!!timestamp soon", "timestamp"),  # AttributeError
    ],
)
def test_scalars_that_fail_to_construct_name_the_line(value: str, kind: str) -> None:
    """Each used to escape as a traceback instead of a YAML error with its line."""
    assert error_of(MINIMAL + f"x: {value}\n") == (
        f"config.yml: YAML syntax error at line 5, column 4: invalid {kind} value"
    )


def test_control_character_names_the_line() -> None:
    """PyYAML's reader error spans lines and escaped the loader's error handling."""
    assert error_of(MINIMAL + "x: \x07\n") == (
        "config.yml: YAML syntax error at line 5: character #x0007 is not allowed in YAML"
    )


def test_recursion_anywhere_is_a_config_error() -> None:
    """The last line of defence: a RecursionError from any stage is reported, not raised."""
    text = MINIMAL + "x: " + "[" * 30 + "]" * 30 + "\n"
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 60)
    try:
        with pytest.raises(ConfigError) as info:
            parse_config(text, "config.yml", {})
    finally:
        sys.setrecursionlimit(old)
    assert str(info.value) == "config.yml: configuration is nested too deeply"


# --------------------------------------------------------------------------------------------
# poll: interval floor and the upstream bounds
# --------------------------------------------------------------------------------------------


def test_poll_interval_below_a_second() -> None:
    assert error_of("poll:\n  interval: 1ms\n" + MINIMAL) == (
        "config.yml: poll.interval: must be at least 1s (a poll interval; did you mean "
        "minutes, 'm'?) (line 2)"
    )


def test_collector_interval_below_a_second() -> None:
    extra = "    collectors:\n      licensing:\n        interval: 500ms\n"
    assert error_of(customer(extra)) == (
        "config.yml: customers[0].collectors.licensing.interval: must be at least 1s "
        "(a poll interval; did you mean minutes, 'm'?) (line 7)"
    )


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("max_response_bytes", "1024", 1024),
        ("max_response_bytes", str(2**31), 2**31),
        ("max_series", "1", 1),
        ("max_series", "10000000", 10_000_000),
    ],
)
def test_poll_bounds_accepted(key: str, value: str, expected: int) -> None:
    assert getattr(parse(f"poll:\n  {key}: {value}\n" + MINIMAL).poll, key) == expected


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max_response_bytes", "1023", "must be at least 1024"),
        ("max_response_bytes", str(2**31 + 1), f"must be at most {2**31}"),
        ("max_response_bytes", "32MiB", "must be an integer"),
        ("max_series", "0", "must be at least 1"),
        ("max_series", "10000001", "must be at most 10000000"),
        ("max_series", "1.5", "must be an integer"),
    ],
)
def test_poll_bounds_rejected(key: str, value: str, message: str) -> None:
    assert error_of(f"poll:\n  {key}: {value}\n" + MINIMAL) == (
        f"config.yml: poll.{key}: {message} (line 2)"
    )


def test_max_retry_after() -> None:
    assert parse(MINIMAL).poll.retry.max_retry_after == 900.0
    text = "poll:\n  retry:\n    max_retry_after: {}\n" + MINIMAL
    assert parse(text.format("15m")).poll.retry.max_retry_after == 900.0
    assert parse(text.format("2h")).poll.retry.max_retry_after == 7200.0
    assert error_of(text.format("0")) == (
        "config.yml: poll.retry.max_retry_after: invalid duration 0: "
        "must be greater than zero (line 3)"
    )
    assert error_of(text.format("soon")) == (
        "config.yml: poll.retry.max_retry_after: invalid duration 'soon' (line 3)"
    )


# --------------------------------------------------------------------------------------------
# one problem, one line: keys and paths with control characters are escaped
# --------------------------------------------------------------------------------------------


def test_unknown_key_with_control_characters_stays_on_one_line() -> None:
    """Found by the property test: a key "\\r" split the message (a forged log line)."""
    assert error_of(MINIMAL + 'web: {"\\r": 1, "' + "k" * 100 + '": 2}\n') == (
        "config.yml: web['\\r']: unknown key (line 5)\n"
        f"config.yml: web['{'k' * 64}...']: unknown key (line 5)"
    )


def test_file_paths_with_control_characters_stay_on_one_line() -> None:
    text = customer(
        '    client_secret_file: "/x\\ny"\n    ca_file: "/a\\rb"\n', client_secret="<omit>"
    )
    assert error_of(text) == (
        "config.yml: customers[0].client_secret_file: cannot read file '/x\\ny': "
        "No such file or directory (line 4)\n"
        "config.yml: customers[0].ca_file: cannot read CA file '/a\\rb': "
        "No such file or directory (line 5)"
    )
