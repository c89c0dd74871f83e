"""Split the customers of one config across several exporter processes (`--shard INDEX/COUNT`).

Every replica reads the same config; replica INDEX of COUNT polls only the customers whose
stable hash lands in its shard, so each customer is polled by exactly one replica. The hash is
SHA-256 of the customer_id (never Python's per-process randomised ``hash()``), mapped to a shard
with jump consistent hashing (Lamping & Veach, 2014): a customer's shard depends only on its own
id and COUNT, so adding or removing other customers never moves it, and growing COUNT from N to
N+1 moves only about 1/(N+1) of the customers.

The shard comes from, in this order:

1. the ``--shard INDEX/COUNT`` flag;
2. ``CITRIX_EXPORTER_SHARD=INDEX/COUNT``;
3. ``CITRIX_EXPORTER_SHARD_INDEX`` and ``CITRIX_EXPORTER_SHARD_COUNT`` together. The index may be
   a number or a StatefulSet pod name such as ``citrix-cloud-exporter-2`` (the trailing ordinal
   is used), so a pod can pass ``metadata.name`` or the ``apps.kubernetes.io/pod-index`` label
   through the downward API.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "ENV_SHARD",
    "ENV_SHARD_COUNT",
    "ENV_SHARD_INDEX",
    "MAX_SHARDS",
    "Shard",
    "ShardError",
    "parse_shard",
    "resolve_shard",
    "shard_of",
]

ENV_SHARD = "CITRIX_EXPORTER_SHARD"
ENV_SHARD_INDEX = "CITRIX_EXPORTER_SHARD_INDEX"
ENV_SHARD_COUNT = "CITRIX_EXPORTER_SHARD_COUNT"
MAX_SHARDS = 1024

_SPEC_RE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
_ORDINAL_RE = re.compile(r"(?:.*-)?(\d+)")  # "2" or "citrix-cloud-exporter-2"


class ShardError(ValueError):
    """An unusable shard specification; the message is meant for the operator."""


def shard_of(customer_id: str, count: int) -> int:
    """The shard (0 <= shard < count) that polls ``customer_id``; same answer in every process."""
    if count < 1:
        raise ValueError("count must be at least 1")
    key = int.from_bytes(hashlib.sha256(customer_id.encode("utf-8")).digest()[:8], "big")
    # Jump consistent hash: a 64-bit LCG walks the buckets; the last one reached below count wins.
    bucket, jump = -1, 0
    while jump < count:
        bucket = jump
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        jump = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Replica ``index`` of ``count`` (0-based)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ShardError(f"shard count must be between 1 and {MAX_SHARDS}, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ShardError(
                f"shard index must be between 0 and {self.count - 1} "
                f"for {self.count} shard(s), got {self.index}"
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, customer_id: str) -> bool:
        """True if this replica polls ``customer_id``."""
        return shard_of(customer_id, self.count) == self.index

    def select(self, items: Sequence[T], key: str = "customer_id") -> list[T]:
        """The items (customer configs) whose attribute ``key`` this shard owns, in order."""
        return [item for item in items if self.owns(getattr(item, key))]


def parse_shard(spec: str) -> Shard:
    """``"INDEX/COUNT"`` (0-based index) -> :class:`Shard`; :class:`ShardError` if invalid."""
    match = _SPEC_RE.fullmatch(spec)
    if not match:
        raise ShardError(f"invalid shard {spec!r}: expected INDEX/COUNT, e.g. 0/3")
    return Shard(int(match.group(1)), int(match.group(2)))


def _parse_index(value: str) -> int:
    match = _ORDINAL_RE.fullmatch(value.strip())
    if not match:
        raise ShardError(
            f"invalid {ENV_SHARD_INDEX} {value!r}: expected a number or a pod name ending "
            "in -N (e.g. citrix-cloud-exporter-2)"
        )
    return int(match.group(1))


def _parse_count(value: str) -> int:
    if not value.strip().isdigit():
        raise ShardError(f"invalid {ENV_SHARD_COUNT} {value!r}: expected a number")
    return int(value)


def resolve_shard(flag: str | None, environ: Mapping[str, str]) -> Shard | None:
    """The shard from the flag or the environment (see the module doc), or None if unsharded."""
    if flag is not None:
        return parse_shard(flag)
    if environ.get(ENV_SHARD, "").strip():
        return parse_shard(environ[ENV_SHARD])
    index = environ.get(ENV_SHARD_INDEX, "").strip()
    count = environ.get(ENV_SHARD_COUNT, "").strip()
    if not index and not count:
        return None
    if not index or not count:
        missing = ENV_SHARD_INDEX if not index else ENV_SHARD_COUNT
        raise ShardError(
            f"{ENV_SHARD_INDEX} and {ENV_SHARD_COUNT} must be set together; {missing} is not set"
        )
    return Shard(_parse_index(index), _parse_count(count))
