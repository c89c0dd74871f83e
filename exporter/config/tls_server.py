"""The server-side TLS context of ``tls_server_config``: built here for loading and for serving.

Loading the web config builds a context and throws it away, so ``--check-config`` fails on
exactly what serving would fail on (an unreadable file, a key of another certificate). Serving
calls :func:`configure` on one long-lived context; a reload can call it again on the same
context, and new connections get the new certificate while open ones keep theirs.

Go's ``client_auth_type`` values map onto Python's three verify modes:

* ``NoClientCert`` and ``RequestClientCert``: no certificate asked for (Go asks in the second
  case but never checks or uses it, so who gets in is the same);
* ``VerifyClientCertIfGiven``: a certificate is optional, and verified against
  ``client_ca_file`` if given;
* ``RequireAndVerifyClientCert`` and ``RequireAnyClientCert``: a certificate verified against
  ``client_ca_file`` is required. Python cannot require a certificate without verifying it, so
  the second one is stricter here than in Go and needs ``client_ca_file`` (models check that).
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from exporter.config.errors import quoted
from exporter.config.files import SECRET_FILE_MAX_BYTES, FileProblem, check_ca_file, read_bounded

if TYPE_CHECKING:
    from exporter.config.web_file import TLSServerConfig

__all__ = ["TLSProblem", "configure", "server_context"]

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
VERIFY_MODES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


class TLSProblem(ValueError):
    """A file of ``tls_server_config`` cannot be used; ``key`` names its key."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


def server_context(tls: TLSServerConfig) -> ssl.SSLContext:
    """A new server context configured from ``tls``; :class:`TLSProblem` if a file is unusable."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    configure(context, tls)
    return context


def configure(context: ssl.SSLContext, tls: TLSServerConfig) -> None:
    """Load ``tls`` into ``context`` (new connections use it); :class:`TLSProblem` on failure."""
    _check_file("cert_file", tls.cert_file, check_ca_file)  # a chain parses like a CA bundle
    _check_file("key_file", tls.key_file, _check_key_file)
    if tls.client_ca_file is not None:
        _check_file("client_ca_file", tls.client_ca_file, check_ca_file)
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file, password=_no_password)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TLSProblem("key_file", "is not the key of the certificate in cert_file") from None
        message = f"file {quoted(tls.key_file)} is not an unencrypted PEM private key"
        raise TLSProblem("key_file", message) from None
    if tls.client_ca_file is not None:
        context.load_verify_locations(cafile=tls.client_ca_file)
    context.verify_mode = VERIFY_MODES[tls.client_auth_type]
    with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated, and asked for explicitly
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = TLS_VERSIONS[tls.min_version]
        context.maximum_version = TLS_VERSIONS[tls.max_version]


def _check_key_file(path: str) -> None:
    read_bounded(path, SECRET_FILE_MAX_BYTES)


def _check_file(key: str, path: str, check: Callable[[str], None]) -> None:
    """Run ``check(path)``; its :class:`FileProblem` becomes a :class:`TLSProblem` on ``key``."""
    try:
        check(path)
    except FileProblem as exc:
        raise TLSProblem(key, f"file {quoted(path)}: {exc}") from None


def _no_password() -> bytes:
    """An encrypted key fails to load instead of prompting on the terminal."""
    return b""
