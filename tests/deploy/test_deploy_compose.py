"""The Compose stack: schema, mounted paths, Prometheus and Alertmanager configs, Grafana wiring.

No Docker engine here, so each piece is checked with the strongest tool that runs without one:
the Compose file against the Compose Specification schema (check-jsonschema's vendored copy),
every bind-mounted path against the repository, `promtool check config` on the real Prometheus
config (which pulls in the alert rules), `amtool check-config`, and the exporter's own
`--check-config` on the real-credentials variant.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support.helpers import require_binary, require_tool

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
RULES_FILE = REPO / "deploy" / "prometheus" / "citrix-cloud-exporter.rules.yml"
ALERTMANAGER_CONFIG = COMPOSE_DIR / "alertmanager.yml"
VARIANT_START = "# --- real credentials"
VARIANT_END = "# --- end of the real-credentials variant"


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def real_credentials_variant() -> dict[str, Any]:
    """The compose file with the commented exporter service swapped in for the demo one."""
    lines = COMPOSE_FILE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(VARIANT_START))
    end = next(i for i, line in enumerate(lines) if line.startswith(VARIANT_END))
    block = [line for line in lines[start + 1 : end] if line.startswith("#  ")]
    service = yaml.safe_load("\n".join(line[1:] for line in block))
    assert list(service) == ["exporter"], "the variant must define exactly the exporter service"
    data = compose()
    data["services"]["exporter"] = service["exporter"]
    return data


def bind_mounts(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(service, host path, container path) of every bind mount (named volumes excluded)."""
    found = []
    for name, service in data["services"].items():
        for volume in service.get("volumes", []):
            if isinstance(volume, dict):
                if volume.get("type") == "bind":
                    found.append((name, volume["source"], volume["target"]))
                continue
            source, _, rest = volume.partition(":")
            if source.startswith((".", "/", "~")):
                found.append((name, source, rest.split(":")[0]))
    return found


def referenced_paths(data: dict[str, Any]) -> list[tuple[str, Path]]:
    """Every host path the file refers to: bind mounts, build contexts, env files, secrets."""
    paths = [(f"{svc} volume {src}", COMPOSE_DIR / src) for svc, src, _ in bind_mounts(data)]
    for name, service in data["services"].items():
        build = service.get("build")
        if build:
            context = COMPOSE_DIR / (build if isinstance(build, str) else build["context"])
            paths.append((f"{name} build context", context))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile")
            paths.append((f"{name} Dockerfile", context / (dockerfile or "Dockerfile")))
        env_files = service.get("env_file", [])
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = env_file if isinstance(env_file, str) else env_file["path"]
            # The real file holds credentials and is git-ignored; its template is shipped.
            paths.append((f"{name} env_file {path} (.example)", COMPOSE_DIR / f"{path}.example"))
    for kind in ("secrets", "configs"):
        for name, spec in (data.get(kind) or {}).items():
            if "file" in spec:
                paths.append((f"{kind} {name}", COMPOSE_DIR / spec["file"]))
    return paths


@pytest.mark.parametrize("variant", ["demo", "real-credentials"])
def test_compose_file_matches_the_compose_spec(tmp_path: Path, variant: str) -> None:
    checker = require_tool("check-jsonschema", "check-jsonschema")
    data = compose() if variant == "demo" else real_credentials_variant()
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(data))
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", ["demo", "real-credentials"])
def test_every_referenced_path_exists(variant: str) -> None:
    data = compose() if variant == "demo" else real_credentials_variant()
    missing = [f"{what}: {path}" for what, path in referenced_paths(data) if not path.exists()]
    assert not missing, "paths relative to deploy/compose/ that do not exist:\n" + "\n".join(
        missing
    )


def test_stack_wiring() -> None:
    data = compose()
    services = data["services"]
    assert set(services) == {"exporter", "prometheus", "alertmanager", "grafana"}
    exporter = services["exporter"]
    assert exporter["command"] == ["--demo", "--web.listen-address", ":9876"]
    assert (COMPOSE_DIR / exporter["build"]["context"]).resolve() == REPO
    mounts = {(svc, (COMPOSE_DIR / src).resolve(), dst) for svc, src, dst in bind_mounts(data)}
    assert ("prometheus", PROMETHEUS_CONFIG, "/etc/prometheus/prometheus.yml") in mounts
    assert ("prometheus", RULES_FILE, "/etc/prometheus/" + RULES_FILE.name) in mounts
    assert ("alertmanager", ALERTMANAGER_CONFIG, "/etc/alertmanager/alertmanager.yml") in mounts
    grafana = {src: dst for svc, src, dst in mounts if svc == "grafana"}
    assert grafana[REPO / "grafana" / "provisioning"] == "/etc/grafana/provisioning"
    assert REPO / "grafana" / "dashboards" in grafana
    assert "3000" in " ".join(services["grafana"]["ports"])
    # Nothing secret inline: the real variant takes every credential from its env_file.
    variant = real_credentials_variant()["services"]["exporter"]
    assert "environment" not in variant and variant["env_file"]
    assert "SECRET" not in yaml.safe_dump(data).upper().replace("CLIENT_SECRET_FILE", "")


def test_prometheus_config_passes_promtool() -> None:
    """The committed config, with the real rule file: fails if the rules are missing or broken."""
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert RULES_FILE.name in result.stdout + result.stderr  # the rules were loaded too


def test_prometheus_scrapes_the_compose_services() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    services = compose()["services"]
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert "exporter:9876" in targets
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    for target in [*targets, *alertmanagers]:
        host = target.split(":")[0]
        assert host in services or host == "localhost", target
    # Scraping faster than the exporter polls only re-reads its snapshot: 30s-60s is plenty.
    interval = config["global"]["scrape_interval"]
    assert re.fullmatch(r"(30|[345]\d|60)s|1m", interval), interval


def test_alertmanager_config_passes_amtool() -> None:
    amtool = require_binary("amtool")
    result = subprocess.run(
        [amtool, "check-config", str(ALERTMANAGER_CONFIG)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_matches_the_stack() -> None:
    """Datasources point at a Compose service; dashboard providers read the mounted directory."""
    data = compose()
    grafana_mounts = {
        (COMPOSE_DIR / src).resolve(): dst
        for svc, src, dst in bind_mounts(data)
        if svc == "grafana"
    }
    provisioning = REPO / "grafana" / "provisioning"
    dashboards_dir = grafana_mounts[REPO / "grafana" / "dashboards"]
    assert provisioning.is_dir(), "grafana/provisioning/ is missing"
    assert list((REPO / "grafana" / "dashboards").glob("*.json")), "no dashboards to provision"
    datasources = [
        source
        for path in sorted(provisioning.glob("datasources/*.y*ml"))
        for source in (yaml.safe_load(path.read_text()) or {}).get("datasources", [])
    ]
    prometheus = [s for s in datasources if s.get("type") == "prometheus"]
    assert prometheus, "no Prometheus datasource under grafana/provisioning/datasources/"
    for source in prometheus:
        url = urlsplit(source["url"])
        assert url.hostname in data["services"] and url.port == 9090, source["url"]
    providers = [
        provider
        for path in sorted(provisioning.glob("dashboards/*.y*ml"))
        for provider in (yaml.safe_load(path.read_text()) or {}).get("providers", [])
    ]
    assert providers, "no dashboard provider under grafana/provisioning/dashboards/"
    for provider in providers:
        path = provider.get("options", {}).get("path", "")
        assert path == dashboards_dir or path.startswith(dashboards_dir + "/"), (
            f"dashboard provider reads {path!r}; compose mounts grafana/dashboards at "
            f"{dashboards_dir!r}"
        )
        host_dir = REPO / "grafana" / "dashboards" / os.path.relpath(path, dashboards_dir)
        assert list(host_dir.glob("*.json")), f"the provider's {path} holds no dashboards"


def test_real_credentials_config_is_valid(tmp_path: Path) -> None:
    env = dict(os.environ)
    for line in (COMPOSE_DIR / "citrix.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--check-config",
         "--config.file", str(COMPOSE_DIR / "config.yml")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
