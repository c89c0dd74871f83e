"""The web configuration file (--web.config.file): what loads, and each way it is rejected."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.config import ConfigError
from exporter.config.web_file import load_web_config, parse_web_config
from tests.support.tls import TLSFiles, bcrypt_hash, tls_files


@pytest.fixture
def tls(tmp_path: Path) -> TLSFiles:
    return tls_files(tmp_path)


def tls_section(tls: TLSFiles, **extra: str) -> str:
    lines = [f"  cert_file: {tls.cert_file}", f"  key_file: {tls.key_file}"]
    lines += [f"  {key}: {value}" for key, value in extra.items()]
    return "tls_server_config:\n" + "\n".join(lines) + "\n"


def rejected(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_web_config(text, "web.yml")
    return str(caught.value)


def test_a_full_file_loads(tls: TLSFiles) -> None:
    hashed = bcrypt_hash("s3cret")
    config = parse_web_config(
        tls_section(tls, client_auth_type="VerifyClientCertIfGiven", client_ca_file=tls.ca_file)
        + "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        + f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    assert config.tls_server_config is not None
    assert config.tls_server_config.min_version == "TLS12"
    assert config.http_server_config.headers == {"X-Frame-Options": "deny"}
    assert config.basic_auth_users["prometheus"].get_secret_value() == hashed


@pytest.mark.parametrize("text", ["", "# nothing\n", "basic_auth_users:\n"])
def test_an_empty_file_changes_nothing(text: str) -> None:
    config = parse_web_config(text)
    assert config.tls_server_config is None and not config.basic_auth_users
    assert config.http_server_config.headers == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls_server_confg: {}\n", "web.yml: tls_server_confg: unknown key (line 1)"),
        (
            "http_server_config:\n  headers: {}\n  colour: red\n",
            "web.yml: http_server_config.colour: unknown key (line 3)",
        ),
        ("- a\n", "web.yml: top level must be a mapping of keys (line 1)"),
        (
            "rate_limit: {interval: 1s}\n",
            "web.yml: rate_limit: is not supported by this exporter; remove it (line 1)",
        ),
        (
            "http_server_config:\n  headers:\n    Server: nginx\n",
            "web.yml: http_server_config.headers.Server: cannot be set; allowed: "
            "Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, "
            "X-XSS-Protection, Content-Security-Policy (line 3)",
        ),
        (
            "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
            "web.yml: http_server_config.headers.X-Content-Type-Options: must be one of: "
            "nosniff (line 3)",
        ),
        (
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            "web.yml: http_server_config.headers.X-Frame-Options: must be one of: deny, "
            "sameorigin (line 3)",
        ),
        (
            'http_server_config:\n  headers:\n    Content-Security-Policy: "a\\r\\nX: y"\n',
            "web.yml: http_server_config.headers.Content-Security-Policy: must be one line of "
            "printable characters (line 3)",
        ),
        (
            "basic_auth_users:\n  alice: plaintext\n",
            "web.yml: basic_auth_users.alice: must be a bcrypt hash ($2y$10$..., e.g. from "
            "`htpasswd -nBC 10 USER`) (line 2)",
        ),
        (
            "basic_auth_users:\n  alice: '$1$abc$def'\n",  # MD5 crypt, not bcrypt
            "web.yml: basic_auth_users.alice: must be a bcrypt hash",
        ),
        (
            "basic_auth_users:\n  'a:b': '$2y$10$" + "a" * 53 + "'\n",
            "web.yml: basic_auth_users.a:b: a user name must be non-empty, printable, without ':'",
        ),
    ],
)
def test_rejected_without_files(text: str, message: str) -> None:
    assert rejected(text).startswith(message)


def test_a_rejected_hash_is_never_quoted() -> None:
    assert "plaintext-password" not in rejected("basic_auth_users:\n  a: plaintext-password\n")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"client_auth_type": "RequireClientCertPlease"},
            "tls_server_config.client_auth_type: Input should be",
        ),
        ({"min_version": "TLS14"}, "tls_server_config.min_version: Input should be"),
        (
            {"min_version": "TLS13", "max_version": "TLS12"},
            "tls_server_config.min_version: must not be above max_version (line 4)",
        ),
        (
            {"client_auth_type": "RequireAndVerifyClientCert"},
            "tls_server_config.client_auth_type: needs client_ca_file (line 4)",
        ),
        (
            {"client_auth_type": "RequireAnyClientCert"},
            "tls_server_config.client_auth_type: needs client_ca_file (line 4)",
        ),
        (
            {"cipher_suites": "[TLS_AES_128_GCM_SHA256]"},
            "tls_server_config.cipher_suites: is not supported by this exporter; remove it",
        ),
        ({"colour": "red"}, "tls_server_config.colour: unknown key (line 4)"),
    ],
)
def test_rejected_tls_settings(tls: TLSFiles, extra: dict[str, str], message: str) -> None:
    assert message in rejected(tls_section(tls, **extra))


def test_a_ca_file_without_a_client_policy(tls: TLSFiles) -> None:
    assert "tls_server_config.client_ca_file: set client_auth_type too" in rejected(
        tls_section(tls, client_ca_file=str(tls.ca_file))
    )


def test_a_missing_certificate_names_key_and_file(tls: TLSFiles, tmp_path: Path) -> None:
    text = tls_section(tls).replace(str(tls.cert_file), str(tmp_path / "gone.pem"))
    assert rejected(text) == (
        f"web.yml: tls_server_config.cert_file: file '{tmp_path / 'gone.pem'}': "
        "No such file or directory (line 2)"
    )


def test_a_missing_key_names_key_and_file(tls: TLSFiles) -> None:
    os.unlink(tls.key_file)
    assert rejected(tls_section(tls)) == (
        f"web.yml: tls_server_config.key_file: file '{tls.key_file}': "
        "No such file or directory (line 3)"
    )


def test_a_directory_as_certificate(tls: TLSFiles, tmp_path: Path) -> None:
    text = tls_section(tls).replace(str(tls.cert_file), str(tmp_path))
    assert "cert_file: file" in rejected(text)
    assert "not a regular file (a directory)" in rejected(text)


def test_a_certificate_that_is_not_pem(tls: TLSFiles) -> None:
    tls.cert_file.write_text("not a certificate\n")
    assert "tls_server_config.cert_file: file" in rejected(tls_section(tls))
    assert "not a bundle of PEM certificates" in rejected(tls_section(tls))


def test_a_key_of_another_certificate(tls: TLSFiles) -> None:
    tls.ca.issue_cert("other.test").private_key_pem.write_to_path(str(tls.key_file))
    assert rejected(tls_section(tls)) == (
        "web.yml: tls_server_config.key_file: is not the key of the certificate in cert_file "
        "(line 3)"
    )


def test_a_key_that_is_not_a_key(tls: TLSFiles) -> None:
    tls.key_file.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    assert rejected(tls_section(tls)) == (
        f"web.yml: tls_server_config.key_file: file '{tls.key_file}' is not an unencrypted "
        "PEM private key (line 3)"
    )


def test_a_client_ca_that_is_not_pem(tls: TLSFiles, tmp_path: Path) -> None:
    bad = tmp_path / "ca-bad.pem"
    bad.write_text("junk\n")
    text = tls_section(tls, client_auth_type="RequireAndVerifyClientCert", client_ca_file=bad)
    assert "tls_server_config.client_ca_file: file" in rejected(text)


def test_the_file_itself_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read web configuration file: No such file"):
        load_web_config(tmp_path / "web.yml")


def test_tls_versions_reach_the_context(tls: TLSFiles) -> None:
    from exporter.config.tls_server import server_context

    config = parse_web_config(tls_section(tls, min_version="TLS13", max_version="TLS13"))
    assert config.tls_server_config is not None
    context = server_context(config.tls_server_config)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert context.verify_mode == ssl.CERT_NONE


# --- the command line ------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "exporter", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def valid_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yml"
    path.write_text("customers:\n  - {customer_id: c1, client_id: id, client_secret: s}\n")
    return path


def test_check_config_checks_the_web_config(tls: TLSFiles, tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text(tls_section(tls) + f"basic_auth_users:\n  prom: '{bcrypt_hash('x')}'\n")
    config = str(valid_config(tmp_path))
    done = cli("--config.file", config, "--web.config.file", str(web), "--check-config")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"{web}: valid"

    os.unlink(tls.key_file)
    done = cli("--config.file", config, "--web.config.file", str(web), "--check-config")
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {web}: tls_server_config.key_file: file ")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("mode", ["--demo", "--config.file"])
def test_an_unusable_web_config_stops_serving(tmp_path: Path, mode: str) -> None:
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  prom: hunter2\n")
    args = ["--demo"] if mode == "--demo" else ["--config.file", str(valid_config(tmp_path))]
    done = cli(*args, "--web.listen-address", "127.0.0.1:0", "--web.config.file", str(web))
    assert done.returncode == 2
    assert f"error: {web}: basic_auth_users.prom: must be a bcrypt hash" in done.stderr
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr


def test_log_level_warn_is_warning(tmp_path: Path) -> None:
    done = cli(
        "--config.file", str(valid_config(tmp_path)), "--log.level", "warn", "--check-config"
    )
    assert done.returncode == 0, done.stderr
