"""The Compose stack: schema, mounted paths, Prometheus and Alertmanager configs, Grafana wiring.

No Docker engine here, so each piece is checked with the strongest tool that runs without one:
the Compose file against the Compose Specification schema (check-jsonschema's vendored copy),
every bind-mounted path against the repository, `promtool check config` on the real Prometheus
config (which pulls in the alert rules), `amtool check-config`, and the exporter's own
`--check-config` on the real-credentials variant. The TLS override (tls.yml) is checked merged
into the stack, its Prometheus config against the plain one, and its generate.sh for real.
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

from tests.support.helpers import (
    require_binary,
    require_exporter_flag,
    require_module,
    require_tool,
)

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
TLS_OVERRIDE = COMPOSE_DIR / "tls.yml"
GENERATE_TLS = COMPOSE_DIR / "tls" / "generate.sh"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
PROMETHEUS_TLS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus-tls.yml"
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


def merge_service(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Compose's merge for the keys an override sets here: volumes by target, the rest replaced."""
    merged = {**base, **override}
    if "volumes" in override:
        volumes = {v.split(":")[1]: v for v in base.get("volumes", [])}
        volumes.update({v.split(":")[1]: v for v in override["volumes"]})
        merged["volumes"] = list(volumes.values())
    return merged


def tls_variant() -> dict[str, Any]:
    """docker-compose.yml with tls.yml applied, as COMPOSE_FILE=docker-compose.yml:tls.yml does."""
    override = yaml.safe_load(TLS_OVERRIDE.read_text())
    assert set(override) == {"services"}
    data = compose()
    for name, service in override["services"].items():
        data["services"][name] = merge_service(data["services"][name], service)
    return data


VARIANTS = {"demo": compose, "real-credentials": real_credentials_variant, "tls": tls_variant}


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


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_compose_file_matches_the_compose_spec(tmp_path: Path, variant: str) -> None:
    checker = require_tool("check-jsonschema", "check-jsonschema")
    data = VARIANTS[variant]()
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(data))
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_referenced_path_exists(variant: str) -> None:
    data = VARIANTS[variant]()
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


@pytest.mark.parametrize("config", [PROMETHEUS_CONFIG, PROMETHEUS_TLS_CONFIG], ids=["plain", "tls"])
def test_prometheus_config_passes_promtool(config: Path) -> None:
    """The committed config, with the real rule file: fails if the rules are missing or broken."""
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "config", str(config)],
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


def check_real_credentials_config(*args: str) -> subprocess.CompletedProcess[str]:
    """`--check-config` of config.yml with the values of citrix.env.example in the env."""
    env = dict(os.environ)
    for line in (COMPOSE_DIR / "citrix.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return subprocess.run(
        [sys.executable, "-m", "exporter", "--check-config",
         "--config.file", str(COMPOSE_DIR / "config.yml"), *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
    )  # fmt: skip


def test_real_credentials_config_is_valid() -> None:
    result = check_real_credentials_config()
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------------------------
# TLS and basic auth (tls.yml, tls/generate.sh, prometheus-tls.yml)
# --------------------------------------------------------------------------------------------


def mount_of(service: dict[str, Any], host: Path) -> str:
    """Where `service` mounts the host directory `host`."""
    found = [
        rest.split(":")[0]
        for volume in service["volumes"]
        for source, _, rest in [volume.partition(":")]
        if (COMPOSE_DIR / source).resolve() == host
    ]
    assert len(found) == 1, service["volumes"]
    return found[0]


def test_tls_override_wiring() -> None:
    """The exporter and Prometheus read the files generate.sh makes, from the same directory."""
    override = yaml.safe_load(TLS_OVERRIDE.read_text())["services"]
    assert set(override) == {"exporter", "prometheus"}
    data = tls_variant()
    exporter, prometheus = data["services"]["exporter"], data["services"]["prometheus"]
    tls_dir = GENERATE_TLS.parent
    command = exporter["command"]
    assert command[: len(compose()["services"]["exporter"]["command"])] == compose()["services"][
        "exporter"]["command"]  # fmt: skip
    assert command[-2:] == ["--web.config.file", f"{mount_of(exporter, tls_dir)}/web.yml"]
    mounts = {dst: (COMPOSE_DIR / src).resolve() for _, src, dst in bind_mounts(data)}
    assert mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS_TLS_CONFIG
    job = next(
        j
        for j in yaml.safe_load(PROMETHEUS_TLS_CONFIG.read_text())["scrape_configs"]
        if j["job_name"] == "citrix-cloud-exporter"
    )
    in_prometheus = mount_of(prometheus, tls_dir)
    assert job["scheme"] == "https"
    assert job["tls_config"] == {"ca_file": f"{in_prometheus}/ca.crt"}
    assert job["basic_auth"]["password_file"] == f"{in_prometheus}/password"
    assert "/healthz" not in str(exporter["healthcheck"]), "/healthz needs the password now"


def test_prometheus_tls_config_is_the_plain_one_plus_tls() -> None:
    """One place per fact: only the exporter job's scheme, tls_config and basic_auth differ."""
    plain = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    tls = yaml.safe_load(PROMETHEUS_TLS_CONFIG.read_text())
    for job in tls["scrape_configs"]:
        if job["job_name"] == "citrix-cloud-exporter":
            for key in ("scheme", "tls_config", "basic_auth"):
                job.pop(key)
    assert tls == plain


def test_generate_script_makes_a_certificate_password_and_web_config(tmp_path: Path) -> None:
    openssl = require_binary("openssl", "openssl")
    bcrypt = require_module("bcrypt", "bcrypt")
    out = tmp_path / "tls"
    result = subprocess.run(
        ["sh", str(GENERATE_TLS), str(out)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    gitignore = (GENERATE_TLS.parent / ".gitignore").read_text().splitlines()
    ignored = [line for line in gitignore if line and not line.startswith("#")]
    assert sorted(p.name for p in out.iterdir()) == sorted(ignored), "all made, all git-ignored"
    verify = subprocess.run(
        [openssl, "verify", "-CAfile", str(out / "ca.crt"), "-verify_hostname", "exporter",
         str(out / "tls.crt")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    web = yaml.safe_load((out / "web.yml").read_text())
    password = (out / "password").read_bytes()
    [(user, hashed)] = web["basic_auth_users"].items()
    assert user == yaml.safe_load(PROMETHEUS_TLS_CONFIG.read_text())["scrape_configs"][0][
        "basic_auth"]["username"]  # fmt: skip
    assert bcrypt.checkpw(password, hashed.encode())
    # Run again: everything rotates.
    subprocess.run(["sh", str(GENERATE_TLS), str(out)], check=True, capture_output=True)
    assert (out / "password").read_bytes() != password


def test_generated_web_config_passes_check_config(tmp_path: Path) -> None:
    require_binary("openssl", "openssl")
    require_module("bcrypt", "bcrypt")
    require_exporter_flag("--web.config.file")
    out = tmp_path / "tls"
    subprocess.run(["sh", str(GENERATE_TLS), str(out)], check=True, capture_output=True)
    exporter = tls_variant()["services"]["exporter"]
    in_container = mount_of(exporter, GENERATE_TLS.parent)
    web = out / "web.yml"
    web.write_text(web.read_text().replace(in_container, str(out)))
    result = check_real_credentials_config("--web.config.file", str(web))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("doc", ["README.md", "docs/deploy.md"])
def test_documented_https_scrape_config_passes_promtool(tmp_path: Path, doc: str) -> None:
    """The scrape config a reader copies: HTTPS, trusting a CA, with basic auth, and valid."""
    promtool = require_binary("promtool")
    blocks = re.findall(r"```yaml\n(scrape_configs:.*?)```", (REPO / doc).read_text(), re.S)
    https = [yaml.safe_load(b) for b in blocks if "scheme: https" in b]
    assert https, f"{doc} shows no scrape config with scheme: https"
    for config in https:
        [job] = config["scrape_configs"]
        assert job["tls_config"]["ca_file"] and job["basic_auth"]["password_file"]
        path = tmp_path / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        result = subprocess.run(
            [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
