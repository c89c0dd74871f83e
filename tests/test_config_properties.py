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
from tests.test_config import TEST_CA_PEM

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


def _key_names(model: type[BaseModel], seen: set[str]) -> set[str]:
    """Every field name of the config models, found by walking the model classes."""
    for name, field in model.model_fields.items():
        seen.add(name)
        for candidate in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                _key_names(candidate, seen)
    return seen


KEYS = sorted(_key_names(Config, {"client_id_file", "client_secret_file", "<<"}))

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


@st.composite
def shared_structures(draw: st.DrawFn) -> Any:
    """A random tree in which some subtrees are the same object: safe_dump writes them as an
    anchor and aliases. Sometimes a list contains itself (a recursive alias)."""
    pool: list[Any] = []

    def remember(value: Any) -> Any:
        if isinstance(value, dict | list):
            pool.append(value)
        return value

    def reuse_or(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(strategy, st.builds(lambda i: pool[i % len(pool)] if pool else None,
                                             st.integers(0, 50)))  # fmt: skip

    tree = st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(reuse_or(children), max_size=4).map(remember),
            st.dictionaries(keys, reuse_or(children), max_size=5).map(remember),
        ),
        max_leaves=30,
    )
    customer = st.fixed_dictionaries(
        {"customer_id": st.sampled_from(["acme1234", "acme1234", "x y", "b"])},
        optional={
            "client_id": st.sampled_from(["cid", "", "${SET}"]),
            "client_secret": st.just(SECRET),
            "client_secret_file": st.sampled_from(["/dev/zero", "/nonexistent", "${MISSING}"]),
            "region": st.sampled_from(["us", "jp", "mars"]),
            "ca_file": st.sampled_from(["/dev/null", "/nonexistent"]),
            "collectors": reuse_or(tree),
            "junk": tree,
        },
    )
    document = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "web": reuse_or(tree),
                "poll": reuse_or(tree),
                "customers": st.lists(reuse_or(customer), max_size=3),
                "extra": tree,
            },
        )
    )
    if draw(st.booleans()) and pool:
        loop = pool[0]
        if isinstance(loop, list):
            loop.append(loop)
    return document


YAML_TOKENS = [
    *(f"{key}:" for key in KEYS), "\n", "\n  ", "\n    ", "\n  - ", "- ", " ", ": ", "[", "]",
    "{", "}", ",", "&a ", "*a", "&b ", "*b", "<<: ", "? ", "!!str ", "!!int ", "!!binary ",
    "!custom ", "'", '"', "|", ">", "#", "%", "@", "`", "---", "...", "${SET}", "${MISSING}",
    "5m", "1ms", "0", "-1", "1e999", ".nan", "2024-13-01", "null", "true", "acme1234", SECRET,
    "\t", "\\", "\x00", "\ufeff", "é",
]  # fmt: skip


def assert_config_or_config_error(text: str) -> None:
    """The property: a Config, or a ConfigError whose every line starts with the source."""
    try:
        result = parse_config(text, SOURCE, ENV)
    except ConfigError as err:
        assert err.messages, "a ConfigError must say something"
        for line in str(err).splitlines():
            assert line.startswith(f"{SOURCE}: "), line
    else:
        assert isinstance(result, Config)


@PROPERTY_SETTINGS
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    assert_config_or_config_error(text)


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(YAML_TOKENS), max_size=60).map("".join))
def test_random_yaml_token_soup(text: str) -> None:
    assert_config_or_config_error(text)


@PROPERTY_SETTINGS
@given(shared_structures())
def test_random_structures_with_aliases(document: Any) -> None:
    text = yaml.safe_dump(document, default_flow_style=None, allow_unicode=True)
    try:
        parse_config(text, SOURCE, ENV)
    except ConfigError as err:
        assert SECRET not in str(err), "a client_secret value reached an error message"


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
