"""Test certificates (trustme) and bcrypt hashes for the web config tests, unit and e2e."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.helpers import require_module


@dataclass(frozen=True)
class TLSFiles:
    """A test CA and a server certificate for localhost/127.0.0.1, written as PEM files."""

    ca: Any  # trustme.CA
    ca_file: Path
    cert_file: Path
    key_file: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting only the test CA."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return context

    def client_cert(self, directory: Path, name: str = "client") -> tuple[Path, Path]:
        """A client certificate (chain, key) issued by the test CA."""
        issued = self.ca.issue_cert(f"{name}@example.test")
        chain, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
        issued.cert_chain_pems[0].write_to_path(str(chain))
        issued.private_key_pem.write_to_path(str(key))
        return chain, key


def tls_files(directory: Path) -> TLSFiles:
    """A fresh CA and server certificate in ``directory`` (trustme is a test dependency)."""
    trustme = require_module("trustme", "trustme")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    files = TLSFiles(ca, directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(files.ca_file))
    server.cert_chain_pems[0].write_to_path(str(files.cert_file))
    server.private_key_pem.write_to_path(str(files.key_file))
    return files


def bcrypt_hash(password: str, cost: int = 4) -> str:
    """A bcrypt hash as `htpasswd -B` writes it; cost 4 keeps tests fast."""
    bcrypt = require_module("bcrypt", "bcrypt")
    hashed: bytes = bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost))
    return hashed.decode()
