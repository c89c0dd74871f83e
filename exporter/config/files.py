"""Bounded reads of the files a configuration names: the config itself, secret files, CA files.

A path in the config is trusted to be *meant* as a file, not to *be* a small regular file: a
typo such as ``client_secret_file: /dev/zero`` used to read gigabytes, and a FIFO made
``--check-config`` wait forever. So every read here

* looks at the file type first (``os.stat``) and refuses anything but a regular file where a
  regular file is required, without opening it (opening some devices has side effects);
* opens with ``O_NONBLOCK`` (a FIFO swapped in after the check cannot block the open) and checks
  the type again on the open descriptor (``fstat``), which closes that race;
* reads at most ``limit + 1`` bytes, so an oversized or growing file costs ``limit`` at most.

Symbolic links are followed on purpose (no ``O_NOFOLLOW``): Kubernetes secret volumes and
systemd credentials present each secret as a symlink into a hidden data directory.

Errors are :class:`FileProblem` with a short reason that never contains the file's content.
"""

from __future__ import annotations

import os
import ssl
import stat
from functools import lru_cache

__all__ = [
    "CA_FILE_MAX_BYTES",
    "CONFIG_FILE_MAX_BYTES",
    "SECRET_FILE_MAX_BYTES",
    "FileProblem",
    "check_ca_file",
    "file_identity",
    "read_bounded",
]

# A client id or secret is well under 100 bytes; 64 KiB leaves room for any sane wrapping.
SECRET_FILE_MAX_BYTES = 64 * 1024
# CA bundles are larger than secrets: Debian's whole system bundle is ~220 KB.
CA_FILE_MAX_BYTES = 1024 * 1024
# ~1.7 KB per customer with every option spelled out: 2,500 such customers (yaml_bounds'
# node bound is reached at about the same size).
CONFIG_FILE_MAX_BYTES = 4 * 1024 * 1024

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileProblem(ValueError):
    """A file cannot be used; ``str()`` is the reason, e.g. ``not a regular file (a FIFO)``."""


def read_bounded(path: str, limit: int, *, regular_only: bool = True) -> bytes:
    """The content of ``path`` if it has at most ``limit`` bytes; :class:`FileProblem` if not.

    With ``regular_only=False`` pipes are accepted too (``--config.file /dev/stdin``); devices,
    directories and sockets never are. The size bound holds either way.
    """
    try:
        _check_kind(os.stat(path).st_mode, regular_only)
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise FileProblem(_reason(exc)) from None
    try:
        _check_kind(os.fstat(fd).st_mode, regular_only)
        if not regular_only:
            os.set_blocking(fd, True)  # a pipe: wait for its writer, as `cat` would
        data = _read_at_most(fd, limit + 1)
    except OSError as exc:
        raise FileProblem(_reason(exc)) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileProblem(f"larger than {_size(limit)}")
    return data


def check_ca_file(path: str) -> None:
    """Raise :class:`FileProblem` unless ``path`` is a bounded regular file of PEM certificates.

    The exporter loads it with ``load_verify_locations(cafile=...)`` for every TLS connection;
    doing the same here makes ``--check-config`` fail where serving would fail.
    """
    try:
        identity = file_identity(path)
    except OSError as exc:
        raise FileProblem(_reason(exc)) from None
    # The file's identity is part of the key, so an edited file is checked again.
    _check_pem_certificates(path, identity)


def file_identity(path: str) -> tuple[int, ...]:
    """What tells a replaced or edited file from the one read before (OSError if it is gone)."""
    info = os.stat(path)
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


@lru_cache(maxsize=64)
def _check_pem_certificates(path: str, identity: tuple[int, ...]) -> None:
    """Parse the CA file once per version: partner configs repeat one proxy CA per customer.

    A bare client context parses the file exactly like ``ssl.create_default_context()`` would,
    without the latter's ~17 ms of loading the system store for every customer.
    """
    read_bounded(path, CA_FILE_MAX_BYTES)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        detail = (exc.reason or "unreadable PEM").lower().replace("_", " ")
        raise FileProblem(f"not a bundle of PEM certificates ({detail})") from None
    except OSError as exc:
        raise FileProblem(_reason(exc)) from None


def _check_kind(mode: int, regular_only: bool) -> None:
    """Refuse what cannot be a file of text: directories, devices, sockets (and FIFOs if asked)."""
    if stat.S_ISREG(mode) or (stat.S_ISFIFO(mode) and not regular_only):
        return
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
    raise FileProblem(f"not a regular file ({kind})")


def _read_at_most(fd: int, count: int) -> bytes:
    """Up to ``count`` bytes from ``fd``: fewer only at end of file."""
    chunks: list[bytes] = []
    remaining = count
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _reason(exc: OSError) -> str:
    """The OS's short explanation ("No such file or directory") without repeating the path."""
    return exc.strerror or type(exc).__name__


def _size(limit: int) -> str:
    """``65536`` -> ``64 KiB``, ``1048576`` -> ``1 MiB`` for messages."""
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    if limit % 1024 == 0:
        return f"{limit // 1024} KiB"
    return f"{limit} bytes"
