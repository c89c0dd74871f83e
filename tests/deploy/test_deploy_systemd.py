"""The systemd unit: its hardening, `systemd-analyze verify`, and its command line run for real.

`systemd-analyze verify` needs the ExecStart binary to exist, so it checks a copy of the unit
whose binary is this environment's installed console script. The ExecStart command line itself
is then run with `--check-config` appended, the config the unit's install notes put at
/etc/citrix-cloud-exporter/config.yml, and $CREDENTIALS_DIRECTORY holding the credential named
in LoadCredential=, as systemd would provide it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

from exporter.server import MAX_CONNECTIONS, connection_cap
from tests.support.helpers import require_binary

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "citrix-cloud-exporter.service"
CONFIG = REPO / "deploy" / "systemd" / "config.yml"
INSTALLED_CONFIG = "/etc/citrix-cloud-exporter/config.yml"


def unit_settings() -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value (systemd allows repeated keys)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), "keep unit lines unbroken"
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, line
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def service() -> dict[str, list[str]]:
    return unit_settings()["Service"]


def exec_start() -> list[str]:
    values = service()["ExecStart"]
    assert len(values) == 1
    return shlex.split(values[0])


def credentials() -> dict[str, str]:
    """LoadCredential= id -> source path."""
    return dict(v.split(":", 1) for v in service().get("LoadCredential", []))


def test_unit_hardening() -> None:
    settings = service()

    def one(key: str) -> str:
        assert len(settings.get(key, [])) == 1, key
        return settings[key][0]

    assert one("DynamicUser") == "yes"
    assert one("ProtectSystem") == "strict"
    assert one("NoNewPrivileges") == "yes"
    assert one("Restart") == "on-failure"
    assert one("CapabilityBoundingSet") == ""
    assert "2" in one("RestartPreventExitStatus").split()
    assert "client_secret" in credentials()
    assert "Environment" not in settings or all(
        "SECRET" not in v.upper() for v in settings["Environment"]
    )
    argv = exec_start()
    assert argv[0].startswith("/") and argv[0].endswith("/citrix-cloud-exporter")
    assert f"--config.file={INSTALLED_CONFIG}" in argv
    assert unit_settings()["Install"]["WantedBy"] == ["multi-user.target"]
    # Enough descriptors for the full connection cap and the upstream sockets beside it.
    assert connection_cap(int(one("LimitNOFILE"))) == MAX_CONNECTIONS


def test_reload_is_sighup_to_the_main_process() -> None:
    """`systemctl reload` must reach the exporter's own SIGHUP handler, nothing else."""
    assert service()["ExecReload"] == ["kill -HUP $MAINPID"]
    assert "ExecReload=kill -HUP $MAINPID" in (REPO / "docs" / "deploy.md").read_text()


def installed_console_script(tmp_path: Path) -> str:
    """This environment's `citrix-cloud-exporter`, or a stand-in that runs this checkout."""
    for directory in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = Path(directory) / "citrix-cloud-exporter"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    script = tmp_path / "citrix-cloud-exporter"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m exporter "$@"\n')
    script.chmod(0o755)
    return str(script)


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze", "systemd")
    binary = exec_start()[0]
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(binary, installed_console_script(tmp_path)))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    # Unknown or misspelt settings are only warnings: fail on any remark about our unit.
    assert UNIT.name not in output, output


def run_exec_start(extra: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = exec_start()
    args = [a.replace(INSTALLED_CONFIG, str(CONFIG)) for a in argv[1:]]
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args, *extra],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
    )  # fmt: skip


def test_exec_start_runs_with_the_credentials_systemd_provides(tmp_path: Path) -> None:
    credentials_dir = tmp_path / "credentials"
    credentials_dir.mkdir()
    for name in credentials():
        (credentials_dir / name).write_text("not-a-real-secret\n")
    env = {**os.environ, "CREDENTIALS_DIRECTORY": str(credentials_dir)}
    result = run_exec_start(["--check-config"], env)
    assert result.returncode == 0, result.stdout + result.stderr

    (credentials_dir / "client_secret").unlink()
    result = run_exec_start(["--check-config"], env)
    assert result.returncode == 2 and "client_secret" in result.stderr, result
