"""Config-file text for the configuration tests: a minimal valid file, one customer's lines,
a test CA, and parsing with an explicit environment."""

from __future__ import annotations

import textwrap

import pytest

from exporter.config import Config, ConfigError, parse_config

SECRET = "s3cr3t-Value-Zq8!"

# A self-signed test CA (EC P-256, valid until 2126): ca_file must hold real PEM certificates.
TEST_CA_PEM = """\
-----BEGIN CERTIFICATE-----
MIIBqDCCAU2gAwIBAgIUGoKRyChkIJRW01S5ZCNW7MwZibcwCgYIKoZIzj0EAwIw
KDEmMCQGA1UEAwwdY2l0cml4LWNsb3VkLWV4cG9ydGVyIHRlc3QgQ0EwIBcNMjYx
MjAxMTA0NTA4WhgPMjEyNjExMDcxMDQ1MDhaMCgxJjAkBgNVBAMMHWNpdHJpeC1j
bG91ZC1leHBvcnRlciB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
XkehvCeATnYnaszA+aB7i8hbA/Ch969ysjHsqjrikUt83Z/HqRpoGQ9hqSjOJFkw
W/1j6oN7iOUmfvxzAlFZf6NTMFEwHQYDVR0OBBYEFFI9zUQF1QzqQ0caBOOSX2VY
lxbGMB8GA1UdIwQYMBaAFFI9zUQF1QzqQ0caBOOSX2VYlxbGMA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAIGgeksVfXxJfjk9gmtfmQBFCjycGlwy
RwT25R6I1v5bAiEAyS6o/sdxbT0NIdVPI+V2HlI0ECCH/tVImENb7bkTtJU=
-----END CERTIFICATE-----
"""

MINIMAL = """\
customers:
  - customer_id: acme1234
    client_id: my-client
    client_secret: s3cr3t-Value-Zq8!
"""


def parse(text: str, environ: dict[str, str] | None = None) -> Config:
    """Parse dedented YAML with an explicit (empty by default) environment."""
    return parse_config(textwrap.dedent(text), "config.yml", environ or {})


def error_of(text: str, environ: dict[str, str] | None = None) -> str:
    """The ConfigError message for dedented YAML that must be rejected."""
    with pytest.raises(ConfigError) as info:
        parse(text, environ)
    return str(info.value)


def customer(extra: str = "", **fields: str) -> str:
    """YAML with one customer on lines 2-4; ``fields`` override or add (``"<omit>"`` drops) keys.

    ``extra`` is appended verbatim, so its keys need four spaces of indentation.
    """
    values = {"customer_id": "acme1234", "client_id": "my-client", "client_secret": SECRET}
    values.update(fields)
    lines = [f"    {key}: {value}" for key, value in values.items() if value != "<omit>"]
    lines[0] = "  - " + lines[0].lstrip()
    return "customers:\n" + "\n".join(lines) + "\n" + extra
