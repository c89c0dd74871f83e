"""Sharding customers across replicas: the assignment, the shard spec, and the CLI flag/env."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from exporter.config import Config
from exporter.sharding import (
    ENV_SHARD,
    ENV_SHARD_COUNT,
    ENV_SHARD_INDEX,
    Shard,
    ShardError,
    parse_shard,
    resolve_shard,
    shard_of,
)
from tests.support.helpers import SEED_CLIENT, SEED_CUSTOMER, SEED_SECRET
from tests.support.processes import free_port, http_ok, wait_until

EXPORTER = [sys.executable, "-m", "exporter"]
IDS = [f"customer-{i:04d}" for i in range(600)]
GOLDEN = Path(__file__).parent / "data" / "shard_golden.json"
SHARD_ENV = (ENV_SHARD, ENV_SHARD_INDEX, ENV_SHARD_COUNT)


def assignment(ids: list[str], count: int) -> dict[str, list[int]]:
    """customer -> the indices of every shard that owns it."""
    return {c: [i for i in range(count) if Shard(i, count).owns(c)] for c in ids}


def test_every_customer_is_polled_by_exactly_one_of_three_shards() -> None:
    owners = assignment(IDS, 3)
    assert all(len(shards) == 1 for shards in owners.values())
    sizes = [sum(shards == [i] for shards in owners.values()) for i in range(3)]
    assert all(150 <= size <= 250 for size in sizes), sizes  # roughly even


def test_assignment_is_stable_when_unrelated_customers_are_added() -> None:
    before = assignment(IDS[:100], 3)
    after = assignment(IDS[:100] + [f"new-{i}" for i in range(300)], 3)
    assert {c: after[c] for c in before} == before

    # Also through the config: a shard keeps its customers when others join.
    def config(ids: list[str]) -> Config:
        return Config.model_validate(
            {"customers": [{"customer_id": c, "client_id": "x", "client_secret": "y"}
                           for c in ids]}
        )  # fmt: skip

    small, large = config(IDS[:50]), config(IDS[:50] + IDS[300:])
    for index in range(3):
        kept = [c.customer_id for c in Shard(index, 3).select(small.customers)]
        grown = [c.customer_id for c in Shard(index, 3).select(large.customers)]
        assert grown[: len(kept)] == kept


def golden_table() -> dict[str, dict[str, int]]:
    """customer id -> {shard count: shard}, computed once and written down (tests/data)."""
    table: dict[str, dict[str, int]] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return table


def test_golden_shard_table() -> None:
    """Every customer keeps its shard across releases: a changed hash, byte order, key width,
    LCG constant or jump formula moves customers between replicas on upgrade, so literal values
    computed once (50 ids x 6 counts, including non-ASCII ids and the demo tenants) are pinned."""
    table = golden_table()
    assert len(table) == 50
    wrong = {
        (customer, count): (shard_of(customer, int(count)), expected)
        for customer, shards in table.items()
        for count, expected in shards.items()
        if shard_of(customer, int(count)) != expected
    }
    assert not wrong, f"(customer, count): (now, pinned) {wrong}"
    # Every shard of the small counts is used by the table, so a constant answer cannot pass.
    for count in ("2", "3", "5", "8"):
        assert {shards[count] for shards in table.values()} == set(range(int(count)))


def test_hash_is_stable_across_processes_and_releases() -> None:
    # Pinned values: changing the hash would move customers between replicas on upgrade.
    assert [shard_of(c, 3) for c in ("acme-demo", "globex-demo", "initech-demo")] == [1, 0, 2]
    table = golden_table()
    expected = [shards["5"] for shards in table.values()]
    code = (
        "import json, sys; from exporter.sharding import shard_of as s; "
        "print([s(c, 5) for c in json.loads(sys.stdin.read())])"
    )
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(list(table)), capture_output=True, text=True, check=True, env=env,
        )  # fmt: skip
        assert result.stdout.strip() == str(expected), seed


def test_growing_the_shard_count_moves_few_customers() -> None:
    moved = sum(shard_of(c, 3) != shard_of(c, 4) for c in IDS)
    assert moved < len(IDS) * 0.35  # ~1/4 with consistent hashing, not ~3/4 as with modulo
    assert all(shard_of(c, 1) == 0 for c in IDS)


@pytest.mark.parametrize(
    ("spec", "expected"), [("0/3", Shard(0, 3)), (" 2 / 3 ", Shard(2, 3)), ("0/1", Shard(0, 1))]
)
def test_parse_shard(spec: str, expected: Shard) -> None:
    assert parse_shard(spec) == expected
    assert str(expected) == spec.replace(" ", "")


@pytest.mark.parametrize("spec", ["3/3", "-1/3", "1", "a/b", "0/0", "1/2/3", "", "0/5000"])
def test_parse_shard_rejects(spec: str) -> None:
    with pytest.raises(ShardError):
        parse_shard(spec)


def test_resolve_shard_sources_and_precedence() -> None:
    assert resolve_shard(None, {}) is None
    assert resolve_shard("1/2", {ENV_SHARD: "0/4"}) == Shard(1, 2)
    assert resolve_shard(None, {ENV_SHARD: "3/4", ENV_SHARD_INDEX: "0"}) == Shard(3, 4)
    pair = {ENV_SHARD_INDEX: "citrix-cloud-exporter-2", ENV_SHARD_COUNT: "3"}
    assert resolve_shard(None, pair) == Shard(2, 3)
    assert resolve_shard(None, {ENV_SHARD_INDEX: "1", ENV_SHARD_COUNT: "3"}) == Shard(1, 3)
    assert resolve_shard(None, {ENV_SHARD: " ", ENV_SHARD_INDEX: "", ENV_SHARD_COUNT: ""}) is None
    for bad in (
        {ENV_SHARD_INDEX: "1"},
        {ENV_SHARD_COUNT: "3"},
        {ENV_SHARD_INDEX: "citrix-cloud-exporter", ENV_SHARD_COUNT: "3"},
        {ENV_SHARD_INDEX: "exporter-3", ENV_SHARD_COUNT: "3"},
        {ENV_SHARD_INDEX: "0", ENV_SHARD_COUNT: "three"},
    ):
        with pytest.raises(ShardError):
            resolve_shard(None, bad)


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------


async def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if k not in SHARD_ENV}
    proc = await asyncio.create_subprocess_exec(
        *EXPORTER, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**base, **(env or {})},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def write_config(tmp_path: Path, ids: list[str], base_url: str = "http://127.0.0.1:9") -> Path:
    path = tmp_path / "config.yml"
    lines = ["customers:"]
    for customer in ids:
        secret = SEED_SECRET if customer == SEED_CUSTOMER else "wrong-secret"
        lines.append(
            f"  - {{customer_id: {customer}, client_id: {SEED_CLIENT}, client_secret: "
            f"'{secret}', api_url: '{base_url}', collectors: {{monitor: {{enabled: false}}}}}}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def shard_count(stdout: str) -> tuple[int, int, str]:
    match = re.search(r"valid, (\d+) customer\(s\), (\d+) in shard (\d+/\d+)", stdout)
    assert match, stdout
    return int(match.group(1)), int(match.group(2)), match.group(3)


async def test_check_config_with_flag_and_env(tmp_path: Path) -> None:
    path = write_config(tmp_path, IDS[:30])
    counts = []
    for index in range(3):
        code, out, err = await run("--check-config", "--config.file", str(path),
                                   "--shard", f"{index}/3")  # fmt: skip
        assert code == 0, err
        total, in_shard, shard = shard_count(out)
        assert (total, shard) == (30, f"{index}/3")
        assert in_shard == sum(shard_of(c, 3) == index for c in IDS[:30])
        counts.append(in_shard)
    assert sum(counts) == 30
    code, out, err = await run("--check-config", "--config.file", str(path),
                               env={ENV_SHARD: "1/3"})  # fmt: skip
    assert code == 0 and shard_count(out) == (30, counts[1], "1/3"), err
    pod = {ENV_SHARD_INDEX: "citrix-cloud-exporter-2", ENV_SHARD_COUNT: "3"}
    code, out, err = await run("--check-config", "--config.file", str(path), env=pod)
    assert code == 0 and shard_count(out) == (30, counts[2], "2/3"), err
    code, out, err = await run("--check-config", "--config.file", str(path))
    assert code == 0 and "shard" not in out


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--shard", "3/3"], {}),
        (["--shard", "x"], {}),
        ([], {ENV_SHARD: "1-3"}),
        ([], {ENV_SHARD_INDEX: "citrix-cloud-exporter-1"}),
        (["--demo", "--once", "--shard", "0/0"], {}),
    ],
)
async def test_invalid_shard_exits_2(tmp_path: Path, args: list[str], env: dict[str, str]):
    if "--demo" not in args:
        args = ["--check-config", "--config.file", str(write_config(tmp_path, IDS[:3])), *args]
    code, _, err = await run(*args, env=env)
    assert code == 2, err
    assert "shard" in err.lower()


async def test_once_polls_only_its_own_customers(tmp_path: Path, base_url: str) -> None:
    """Other shards' customers (with wrong secrets here) are never polled by this one."""
    index = shard_of(SEED_CUSTOMER, 3)
    others = [c for c in IDS if shard_of(c, 3) != index][:4]
    path = write_config(tmp_path, [SEED_CUSTOMER, *others], base_url)
    code, out, err = await run("--once", "--config.file", str(path), "--shard", f"{index}/3")
    assert code == 0, err
    assert f'customer_id="{SEED_CUSTOMER}"' in out
    assert not any(f'customer_id="{c}"' in out for c in others)
    code, out, _ = await run("--once", "--config.file", str(path))  # unsharded: all polled
    assert code == 1 and all(f'customer_id="{c}"' in out for c in others)


async def test_demo_once_with_shard() -> None:
    code, out, err = await run("--demo", "--once", "--shard", "0/3")
    assert code == 0, err
    assert 'customer_id="globex-demo"' in out  # shard 0 of 3 (pinned above)
    assert 'customer_id="acme-demo"' not in out and 'customer_id="initech-demo"' not in out


async def test_empty_shard_is_valid_and_serves_its_own_metrics(tmp_path: Path) -> None:
    customer = IDS[0]
    empty = next(i for i in range(3) if shard_of(customer, 3) != i)
    path = write_config(tmp_path, [customer])
    shard = ["--shard", f"{empty}/3"]
    code, out, err = await run("--check-config", "--config.file", str(path), *shard)
    assert code == 0 and shard_count(out) == (1, 0, f"{empty}/3"), err
    code, out, err = await run("--once", "--config.file", str(path), *shard)
    assert code == 0, err
    assert "citrix_exporter_build_info" in out and "citrix_up{" not in out

    port = free_port()
    base = {k: v for k, v in os.environ.items() if k not in SHARD_ENV}
    proc = await asyncio.create_subprocess_exec(
        *EXPORTER, "--config.file", str(path), *shard,
        "--web.listen-address", f"127.0.0.1:{port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=base,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            await wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), 10)
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                text = await resp.text()
        assert "citrix_exporter_build_info" in text and "citrix_up{" not in text
        proc.terminate()
        _, err_bytes = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0
        assert "no customer in this shard" in err_bytes.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_limits_and_messages_name_what_is_wrong() -> None:
    """The operator reads these messages: each names the bad value and the variable to fix."""
    assert Shard(1023, 1024).count == 1024  # MAX_SHARDS itself is allowed
    with pytest.raises(ShardError, match=r"^shard count must be between 1 and 1024, got 1025$"):
        Shard(0, 1025)
    with pytest.raises(ShardError) as caught:
        parse_shard("3/3")
    assert str(caught.value) == "shard index must be between 0 and 2 for 3 shard(s), got 3"
    with pytest.raises(ShardError, match=r"invalid shard 'x': expected INDEX/COUNT, e\.g\. 0/3"):
        parse_shard("x")
    with pytest.raises(ValueError, match=r"^count must be at least 1$"):
        shard_of("acme", 0)
    together = f"{ENV_SHARD_INDEX} and {ENV_SHARD_COUNT} must be set together"
    cases = [
        ({ENV_SHARD_INDEX: "1"}, f"{together}; {ENV_SHARD_COUNT} is not set"),
        ({ENV_SHARD_COUNT: "3"}, f"{together}; {ENV_SHARD_INDEX} is not set"),
        (
            {ENV_SHARD_INDEX: "pod-x", ENV_SHARD_COUNT: "3"},
            f"invalid {ENV_SHARD_INDEX} 'pod-x': expected a number or a pod name ending "
            "in -N (e.g. citrix-cloud-exporter-2)",
        ),
        (
            {ENV_SHARD_INDEX: "0", ENV_SHARD_COUNT: "three"},
            f"invalid {ENV_SHARD_COUNT} 'three': expected a number",
        ),
    ]
    for environ, message in cases:
        with pytest.raises(ShardError) as caught:
            resolve_shard(None, environ)
        assert str(caught.value) == message
