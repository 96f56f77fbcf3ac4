"""Kubernetes manifests: their structure, and kubernetes-validate, checkov and hadolint on them.

The linters live in a venv of their own, `.venv-ops` (`make setup`; see the Makefile for why).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .test_ops import DEPLOY, K8S, K8S_NAMESPACE, ROOT, k8s_object, k8s_objects, load_all_yaml

POSTGRES = K8S / "postgres"
OPS_BIN = ROOT / ".venv-ops" / "bin"
# The newest release has the newest schemas, but clusters lag: validate against a version
# that managed Kubernetes still offers (kubernetes-validate ships its schemas offline).
KUBERNETES_VERSION = "1.30.0"
# Kinds kubernetes-validate has no schema for: the Prometheus Operator's CRDs.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
# Every checkov check skipped on purpose, by the file that says why in an annotation. A new
# skip must be added here too, so none slips in unreviewed.
CHECKOV_SKIPS = {
    "deploy/k8s/statefulset.yaml": {"CKV_K8S_11", "CKV_K8S_19", "CKV_K8S_35", "CKV_K8S_43"},
    "deploy/k8s/postgres/statefulset.yaml": {"CKV_K8S_43"},
}


def tool(name: str) -> str:
    """The linter from .venv-ops, else from PATH; skips when neither has it."""
    path = OPS_BIN / name
    if path.is_file():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not installed: `make setup` installs it into .venv-ops")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    # checkov reads the whole tree it is given and starts slowly: a generous timeout.
    return subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)


def manifests(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")


def postgres_object(kind: str) -> dict[str, Any]:
    [found] = [o for p in manifests(POSTGRES) for o in load_all_yaml(p) if o["kind"] == kind]
    return found


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def qualmon_pod() -> dict[str, Any]:
    pod: dict[str, Any] = k8s_object("StatefulSet", "qualmon")["spec"]["template"]
    return pod


# -- structure --------------------------------------------------------------------


@pytest.mark.parametrize("directory", [K8S, POSTGRES], ids=lambda p: p.name)
def test_k8s_manifests_load_into_one_namespace(directory: Path) -> None:
    """Every manifest parses, lives in the qualmon namespace (checkov's CKV_K8S_21: not
    `default`; an overlay's `namespace:` moves them all), and the kustomization lists them."""
    objects = [o for p in manifests(directory) for o in load_all_yaml(p)]
    for o in objects:
        assert o.get("apiVersion") and o["metadata"].get("name"), o
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == K8S_NAMESPACE, o["metadata"]["name"]
    kustomization = load_all_yaml(directory / "kustomization.yaml")[0]
    assert kustomization["namespace"] == K8S_NAMESPACE
    assert set(kustomization["resources"]) == {p.name for p in manifests(directory)}


def test_k8s_has_every_kind_a_cluster_needs() -> None:
    """StatefulSet (no Deployment), both Services, PDB, NetworkPolicy, the monitoring objects."""
    kinds = {o["kind"] for o in k8s_objects()}
    assert kinds >= {
        "Namespace",
        "StatefulSet",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
        "PrometheusRule",
        "ConfigMap",
    }
    assert "Deployment" not in kinds
    namespace = k8s_object("Namespace")
    assert namespace["metadata"]["name"] == K8S_NAMESPACE
    # hostNetwork is outside the baseline Pod Security profile.
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_k8s_statefulset_is_probed_bounded_and_locked_down() -> None:
    """Probes on /healthz and /readyz, resources, a non-root read-only container, host
    networking with cluster DNS, the secrets from a Secret, a writable working directory."""
    statefulset = k8s_object("StatefulSet", "qualmon")
    pod = statefulset["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = env_of(container)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        port = container[probe]["httpGet"]["port"]
        assert port in ports or port in ports.values(), probe
    assert int(env["QUALMON_PORT"]["value"]) in ports.values()
    assert env["QUALMON_HOST"]["value"] == "0.0.0.0"
    for name, key in (("QUALMON_SECRET", "secret"), ("QUALMON_DB", "db-url")):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "qualmon", "key": key}
        assert "value" not in env[name]
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    assert "cpu" not in resources["limits"]  # why: the CKV_K8S_11 annotation
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["runAsNonRoot"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/var/lib/qualmon"} <= mounts  # the image's WORKDIR
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_k8s_each_pod_advertises_its_stable_name() -> None:
    """QUALMON_INSTANCE_ID is the pod name; QUALMON_ADVERTISE_URL is the pod's name under the
    headless Service, which publishes draining (not ready) pods too."""
    statefulset = k8s_object("StatefulSet", "qualmon")
    headless = k8s_object("Service", "qualmon-headless")
    assert statefulset["spec"]["serviceName"] == "qualmon-headless"
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert headless["spec"]["selector"].items() <= pod_labels.items()
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    names = [e["name"] for e in container["env"]]
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["QUALMON_INSTANCE_ID"]["value"] == "$(POD_NAME)"
    port = env["QUALMON_PORT"]["value"]
    assert env["QUALMON_ADVERTISE_URL"]["value"] == (
        f"http://$(POD_NAME).qualmon-headless.$(NAMESPACE).svc:{port}"
    )
    # $(VAR) expands only from variables defined earlier in the list.
    for name in ("QUALMON_INSTANCE_ID", "QUALMON_ADVERTISE_URL"):
        assert names.index("POD_NAME") < names.index(name)
        assert names.index("NAMESPACE") < names.index(name)


def test_k8s_drain_fits_in_the_grace_period() -> None:
    """preStop runs `qualmon drain`; the kubelet waits longer than the drain may take."""
    pod = qualmon_pod()["spec"]
    [container] = pod["containers"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["qualmon", "drain"]
    drain_seconds = float(env_of(container)["QUALMON_DRAIN_SECONDS"]["value"])
    assert drain_seconds == 600
    assert pod["terminationGracePeriodSeconds"] >= drain_seconds + 30


def test_k8s_disruption_budget_and_network_policy_select_the_pods() -> None:
    """One pod down at a time; the policy admits HTTP and UDP media to the qualmon pods."""
    pod_labels = qualmon_pod()["metadata"]["labels"]
    budget = k8s_object("PodDisruptionBudget", "qualmon")
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    policy = k8s_object("NetworkPolicy", "qualmon")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    ports = [p for rule in policy["spec"]["ingress"] for p in rule["ports"]]
    assert {"protocol": "TCP", "port": 8080} in ports
    assert {"protocol": "UDP"} in ports


def test_k8s_service_and_servicemonitor_reach_the_pods() -> None:
    """Service selects the pods; the ServiceMonitor selects the Service's metrics port, not
    the headless one (each pod once); the Service is named qualmon so the job is qualmon."""
    pod_labels = qualmon_pod()["metadata"]["labels"]
    service = k8s_object("Service", "qualmon")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    monitor = k8s_object("ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [
        o["metadata"]["name"]
        for o in k8s_objects()
        if o["kind"] == "Service" and selector.items() <= o["metadata"]["labels"].items()
    ]
    assert scraped == ["qualmon"]
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"


def test_k8s_postgres_reference_serves_qualmon() -> None:
    """The trial PostgreSQL: a volume claim, the password as a file, a Service on 5432, and a
    policy that admits the qualmon pods only."""
    statefulset = postgres_object("StatefulSet")
    pod = statefulset["spec"]["template"]
    [container] = pod["spec"]["containers"]
    env = env_of(container)
    assert "POSTGRES_PASSWORD" not in env
    password_dir = str(Path(env["POSTGRES_PASSWORD_FILE"]["value"]).parent)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[mounts[password_dir]]["secret"]["secretName"] == "qualmon-postgres"
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    assert Path(env["PGDATA"]["value"]).parent == Path(
        next(path for path, name in mounts.items() if name == claim["metadata"]["name"])
    )
    service = postgres_object("Service")
    assert service["spec"]["ports"][0]["port"] == 5432
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    policy = postgres_object("NetworkPolicy")
    [rule] = policy["spec"]["ingress"]
    [source] = rule["from"]
    qualmon_labels = qualmon_pod()["metadata"]["labels"]
    assert source["podSelector"]["matchLabels"].items() <= qualmon_labels.items()
    # qualmon's pods are not the database's: no selector of one picks the other.
    assert not service["spec"]["selector"].items() <= qualmon_labels.items()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("directory", [K8S, POSTGRES], ids=lambda p: p.name)
def test_kustomize_builds(directory: Path) -> None:
    """`kubectl kustomize` renders the kustomization to exactly the objects in the files."""
    result = run("kubectl", "kustomize", str(directory))
    assert result.returncode == 0, result.stderr
    rendered = [o for o in yaml.safe_load_all(result.stdout) if o is not None]
    expected = [o for p in manifests(directory) for o in load_all_yaml(p)]
    assert sorted(map(kind_and_name, rendered)) == sorted(map(kind_and_name, expected))
    for o in rendered:
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == K8S_NAMESPACE


def kind_and_name(o: dict[str, Any]) -> tuple[str, str]:
    return o["kind"], o["metadata"]["name"]


# -- linters ----------------------------------------------------------------------


def test_kubernetes_validate_strict() -> None:
    """Every built-in object passes `kubernetes-validate --strict` at the pinned version;
    only the Prometheus Operator's kinds lack a schema."""
    files = [str(p.relative_to(ROOT)) for d in (K8S, POSTGRES) for p in manifests(d)]
    result = run(tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, *files)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    unvalidated = [line for line in lines if not re.match(r"INFO \S+ passed for resource", line)]
    for line in unvalidated:
        m = re.match(r"WARN \S+ Couldn't find schema for kind (\w+) with api version", line)
        assert m is not None and m[1] in CRD_KINDS, line
    passed = sum(1 for line in lines if line.startswith("INFO"))
    builtin = [
        o
        for d in (K8S, POSTGRES)
        for p in manifests(d)
        for o in load_all_yaml(p)
        if o["kind"] not in CRD_KINDS
    ]
    assert passed == len(builtin)


def checkov(*args: str) -> dict[str, Any]:
    result = run(tool("checkov"), "--skip-download", "--output", "json", *args)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_checkov_kubernetes_fails_nothing_and_every_skip_says_why() -> None:
    """checkov on deploy/k8s (PostgreSQL included): no failed check, and each skip is one of
    the reviewed ones, with its reason in an annotation of the object it applies to."""
    report = checkov("--framework", "kubernetes", "--directory", str(K8S.relative_to(ROOT)))
    results = report["results"]
    failed = [f"{c['check_id']} {c['resource']}" for c in results["failed_checks"]]
    assert not failed, "\n".join(failed)
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] >= 150
    skipped: dict[str, set[str]] = {}
    for check in results["skipped_checks"]:
        path = check["file_path"].lstrip("/")
        skipped.setdefault(path, set()).add(check["check_id"])
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason.split()) >= 15, f"{check['check_id']} in {path}: reason {reason!r}"
    assert skipped == CHECKOV_SKIPS


def test_checkov_dockerfile() -> None:
    """checkov's Dockerfile checks all pass, none skipped."""
    report = checkov("--framework", "dockerfile", "--file", "deploy/Dockerfile")
    failed = [c["check_id"] for c in report["results"]["failed_checks"]]
    assert not failed
    assert report["summary"]["skipped"] == 0
    assert report["summary"]["passed"] > 0


def test_hadolint_dockerfile() -> None:
    """hadolint finds nothing in the Dockerfile, at any severity."""
    result = run(tool("hadolint"), "--failure-threshold", "style", str(DEPLOY / "Dockerfile"))
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
