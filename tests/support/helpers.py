"""Helpers shared by the tests: configs for the simulator, exposition parsing, binaries."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import sysconfig
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import Config
from exporter.exposition.blocks import Format
from exporter.exposition.scrape import MetricsBody

SEED_CUSTOMER = "xingqit48867"
SEED_CLIENT = "seed-client"
SEED_SECRET = "seed-secret-Zq8!"


class Clock:
    """A clock the test moves by hand, for any clock the code takes (wall or monotonic):
    calling it gives `now`, in seconds; a datetime given stands for its timestamp."""

    def __init__(self, now: float | datetime) -> None:
        self.set(now)

    def __call__(self) -> float:
        return self.now

    def set(self, now: float | datetime) -> None:
        self.now = now.timestamp() if isinstance(now, datetime) else now


class SleepRecorder:
    """Stands in for asyncio.sleep in the upstream client: records delays, returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make_config(
    base_url: str, customers: list[dict[str, Any]] | None = None, **poll: Any
) -> Config:
    """A config for the seed customer (or the given ones) against `base_url`."""
    customers = customers or [
        {"customer_id": SEED_CUSTOMER, "client_id": SEED_CLIENT, "client_secret": SEED_SECRET}
    ]
    retry = {"attempts": 3, "base_delay": 1, "max_delay": 30}
    retry.update(poll.pop("retry", {}))
    return Config.model_validate(
        {
            "poll": {"interval": 60, "timeout": 5, "retry": retry, **poll},
            "customers": [
                {"api_url": base_url, "collectors": {"monitor": {"enabled": False}}, **c}
                for c in customers
            ],
        }
    )


def url_of(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse exposition text into {(sample name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def scraped(body: MetricsBody, fmt: Format, gzip: bool = False) -> bytes:
    """The whole /metrics body `body` serves, as one bytes object (a scrape sends it in parts)."""
    return b"".join(await body.parts(fmt, gzip))


def value(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample `name` whose labels include `labels`, or None."""
    found = [
        v
        for (sample_name, sample_labels), v in samples(text).items()
        if sample_name == name and labels.items() <= dict(sample_labels).items()
    ]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
    return found[0] if found else None


def missing(message: str) -> NoReturn:
    """A test dependency is missing: skip locally, but fail in CI, where everything must be."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_binary(name: str, package: str = "prometheus prometheus-alertmanager") -> str:
    """Path of a system binary the test needs; skips locally, fails in CI, when missing."""
    path = shutil.which(name)
    if path:
        return path
    missing(f"{name} not installed (apt-get install {package})")


def require_tool(name: str, package: str) -> str:
    """A tool from a pip package (next to this interpreter first), else skip or fail in CI."""
    for directory in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    missing(f"{name} not installed (pip install {package})")


def require_exporter_flag(flag: str) -> None:
    """A flag of this checkout's exporter that another change brings: skip until it is there
    (fail in CI), for tests written ahead of it."""
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--help"],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=60,
    )  # fmt: skip
    if flag not in result.stdout:
        missing(f"this exporter has no {flag}")


def require_module(name: str, package: str) -> Any:
    """Import a test-only package, else skip locally or fail in CI."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"{name} not installed (pip install {package})")


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """(cert, key) PEM files of a throwaway certificate of 127.0.0.1, made with openssl."""
    openssl = require_binary("openssl", "openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
