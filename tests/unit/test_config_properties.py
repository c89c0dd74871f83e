"""Whatever the file holds, loading it ends in a Config or a ConfigError: never another exception,
never a hang.

Property tests feed `parse_config` random YAML (token soup and random structures dumped with
`yaml.safe_dump`, built from the real key names, plausible and junk values, shared objects that
become anchors and aliases); subprocess runs of `--check-config` with hostile files check the
exit code, the message and a wall-clock guard.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from exporter.config import Config, ConfigError, parse_config
from tests.support.config_text import TEST_CA_PEM

SOURCE = "fuzz.yml"
SECRET = "Zq8-s3cr3t-never-shown"
ENV = {"SET": "from-env", "EMPTY": ""}

PROPERTY_SETTINGS = settings(
    # a modest budget for the suite; CONFIG_FUZZ_EXAMPLES=20000 for a long local hunt
    max_examples=int(os.environ.get("CONFIG_FUZZ_EXAMPLES", "150")),
    deadline=None,
    derandomize=bool(os.environ.get("CI")),  # reproducible in CI, exploring locally
    suppress_health_check=[HealthCheck.too_slow],
)


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """(the config model inside a field's annotation, whether it is a list of them)."""
    args = getattr(annotation, "__args__", ())
    for candidate in (annotation, *args):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate, getattr(annotation, "__origin__", None) is list
    return None, False


def _key_names(model: type[BaseModel], seen: set[str]) -> set[str]:
    """Every field name of the config models, found by walking the model classes."""
    for name, field in model.model_fields.items():
        seen.add(name)
        sub, _ = _model_of(field.annotation)
        if sub is not None:
            _key_names(sub, seen)
    return seen


KEYS = sorted(_key_names(Config, {"client_id_file", "client_secret_file", "<<"}))
# Values for required keys that pass, so that examples reach the validators behind them.
GOOD = {"customer_id": "acme1234", "client_id": "cid", "client_secret": SECRET}

PLAUSIBLE = [
    "5m", "1ms", "500ms", "0", "-1s", "1e400", "1h30m", "us", "eu", "mars", "acme1234",
    "a/b", "/metrics", "/healthz", "/{x}", "metrics", ":9876", "[::1", "[::1]:9876", "::1:80",
    "https://api.example.test", "http://user:pw@x", "ftp://x", "/{customer_id}/x?{product}",
    "{", "${SET}", "${MISSING}", "$${SET}", "${EMPTY}", "/dev/zero", "/dev/null", "/nonexistent",
    "2024-13-01", "~", "yes", "", " ",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(PLAUSIBLE),
    st.text(max_size=12),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers(-3, 3), st.none())


junk = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=20,
)


def _model_dicts(model: type[BaseModel], top: bool = False) -> st.SearchStrategy[Any]:
    """Mappings shaped like ``model``: its keys with good, plausible or junk values, sometimes
    an unknown key, sometimes no mapping at all."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {"junk": junk}
    for name, field in model.model_fields.items():
        sub, is_list = _model_of(field.annotation)
        if sub is None:
            good = GOOD[name] if field.is_required() else field.default
            value = st.one_of(*[st.just(good)] * 3, scalars, st.lists(scalars, max_size=3))
        elif is_list:
            value = st.lists(_model_dicts(sub), min_size=int(field.is_required()), max_size=3)
        else:
            value = _model_dicts(sub)
        (required if field.is_required() else optional)[name] = value
    shaped = st.fixed_dictionaries(required, optional=optional)
    return shaped if top else st.one_of(*[shaped] * 7, junk)  # mostly shaped


CONFIG_SHAPED = _model_dicts(Config, top=True)


def _containers(value: Any) -> list[Any]:
    """Every list and dict in ``value`` (a shared one once per place it appears)."""
    if not isinstance(value, dict | list):
        return []
    found = [value]
    for child in value.values() if isinstance(value, dict) else value:
        found += _containers(child)
    return found


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """A config-shaped random document in which some containers appear twice (safe_dump
    writes them as an anchor and aliases); one in ten has a list inside itself."""
    document = draw(CONFIG_SHAPED)
    for _ in range(draw(st.integers(0, 3))):
        containers = _containers(document)
        source = draw(st.sampled_from(containers))
        target = draw(st.sampled_from(containers))
        if any(inner is target for inner in _containers(source)):
            continue  # the source would contain itself: no accidental cycles
        if isinstance(target, list):
            target.append(source)
        else:
            target[draw(st.sampled_from(KEYS))] = source
    lists = [value for value in _containers(document) if isinstance(value, list)]
    if lists and draw(st.sampled_from([False] * 9 + [True])):
        lists[0].append(lists[0])
    return document


YAML_TOKENS = [
    *(f"{key}:" for key in KEYS), "\n", "\n  ", "\n    ", "\n  - ", "- ", " ", ": ", "[", "]",
    "{", "}", ",", "&a ", "*a", "&b ", "*b", "<<: ", "? ", "!!str ", "!!int ", "!!binary ",
    "!!bool ", "!!float ", "!!timestamp ", "!!set ", "!!omap ", "!!merge ", "!custom ", "'",
    '"', "|", ">", "#", "%", "@", "`", "---", "...", "${SET}", "${MISSING}", "5m", "1ms", "0",
    "-1", "1e999", ".nan", "2024-13-01", "null", "true", "acme1234", SECRET, "\t", "\\",
    "\x00", "\ufeff", "\r", "é",
]  # fmt: skip


def assert_config_or_config_error(text: str) -> str:
    """The property: a Config, or a ConfigError whose every line starts with the source (one
    problem per line). Returns the error message ("" for a Config)."""
    try:
        result = parse_config(text, SOURCE, ENV)
    except ConfigError as err:
        assert err.messages, "a ConfigError must say something"
        for line in str(err).splitlines():
            assert line.startswith(f"{SOURCE}: "), line
        return str(err)
    assert isinstance(result, Config)
    return ""


@PROPERTY_SETTINGS
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    assert_config_or_config_error(text)


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(YAML_TOKENS), max_size=60).map("".join))
def test_random_yaml_token_soup(text: str) -> None:
    assert_config_or_config_error(text)


@PROPERTY_SETTINGS
@given(documents())
def test_random_structures_with_aliases(document: Any) -> None:
    text = yaml.safe_dump(document, default_flow_style=None, allow_unicode=True)
    message = assert_config_or_config_error(text)
    assert SECRET not in message, "a client_secret value reached an error message"


# --------------------------------------------------------------------------------------------
# hostile files through the command line: exit 2, a message naming the key or line, no hang
# --------------------------------------------------------------------------------------------

CUSTOMER = "customers:\n  - customer_id: acme1234\n    client_id: my-client\n"
SECRET_LINE = f"    client_secret: {SECRET}\n"
# "billion laughs": each list holds the previous one nine times, 9^9 values in ten lines
BOMB = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10)
)


def hostile_configs(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (config text, what the message must contain)."""
    fifo = tmp_path / "secret.fifo"
    os.mkfifo(fifo)
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_text(TEST_CA_PEM.replace("MII", "XXX"))
    return {
        "deep nesting": (
            CUSTOMER + SECRET_LINE + "x: " + "[" * 5000 + "]" * 5000 + "\n",
            "YAML document is nested too deeply (more than 50 levels) (line 5)",
        ),
        "alias bomb": (CUSTOMER + SECRET_LINE + BOMB, "expands through aliases"),
        "/dev/zero secret file": (
            CUSTOMER + "    client_secret_file: /dev/zero\n",
            "customers[0].client_secret_file: cannot read file '/dev/zero': not a regular file",
        ),
        "FIFO secret file": (
            CUSTOMER + f"    client_secret_file: {fifo}\n",
            "customers[0].client_secret_file: cannot read file",
        ),
        "bad ca_file": (
            CUSTOMER + SECRET_LINE + f"    ca_file: {bad_ca}\n",
            f"customers[0].ca_file: cannot read CA file '{bad_ca}': not a bundle of PEM",
        ),
        "telemetry_path /healthz": (
            "web:\n  telemetry_path: /healthz\n" + CUSTOMER + SECRET_LINE,
            "web.telemetry_path: '/healthz' is taken by the exporter itself",
        ),
        "poll.interval 1ms": (
            "poll:\n  interval: 1ms\n" + CUSTOMER + SECRET_LINE,
            "poll.interval: must be at least 1s",
        ),
        "collector interval 500ms": (
            CUSTOMER + SECRET_LINE + "    collectors:\n      licensing: {interval: 500ms}\n",
            "customers[0].collectors.licensing.interval: must be at least 1s",
        ),
        "month 13": (CUSTOMER + SECRET_LINE + "x: 2024-13-01\n", "at line 5"),
    }


@pytest.mark.parametrize(
    "name",
    [
        "deep nesting",
        "alias bomb",
        "/dev/zero secret file",
        "FIFO secret file",
        "bad ca_file",
        "telemetry_path /healthz",
        "poll.interval 1ms",
        "collector interval 500ms",
        "month 13",
    ],
)
def test_check_config_with_hostile_file(tmp_path: Path, name: str) -> None:
    text, expected = hostile_configs(tmp_path)[name]
    path = tmp_path / "config.yml"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--check-config", "--config.file", str(path)],
        capture_output=True,
        text=True,
        timeout=20,  # a hang (FIFO) or a runaway expansion fails the test instead of blocking
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "(line " in result.stderr or "at line " in result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert "valid" not in result.stdout
