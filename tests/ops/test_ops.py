"""Operations: dashboards, rules, alerts and deploy files are valid and work on a real Prometheus.

The Kubernetes PrometheusRule and dashboard ConfigMaps are derived from deploy/prometheus/*.yml
and dashboards/*.json; after changing those, regenerate them with

    .venv/bin/python -m tests.ops.test_ops --write-k8s
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from ..test_cli import CLI, free_port, read_until

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
DEPLOY = ROOT / "deploy"
PROM_DIR = DEPLOY / "prometheus"
RULE_FILES = (PROM_DIR / "rules.yml", PROM_DIR / "alerts.yml")
RULE_TESTS = sorted((PROM_DIR / "tests").glob("*.yaml"))
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "docker-compose.yml"
QUALMON_SERVICES = ("qualmon-1", "qualmon-2")
RUNBOOKS = ROOT / "docs" / "runbooks.md"
RUNBOOK_URL = "https://github.com/qualmon/qualmon/blob/main/docs/runbooks.md#"
PANEL_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SEVERITIES = {"critical", "warning", "info"}

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package `prometheus`)"
)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in DASHBOARDS}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data (rows only group), including those inside collapsed rows."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def rule_groups() -> list[dict[str, Any]]:
    return [group for path in RULE_FILES for group in load_yaml(path)["groups"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def recording_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "record" in rule]


def k8s_objects() -> list[dict[str, Any]]:
    """Every object in deploy/k8s (the kustomization is not one)."""
    paths = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    return [doc for path in paths for doc in load_all_yaml(path)]


def k8s_object(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        o
        for o in k8s_objects()
        if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/k8s, found {len(found)}"
    return found[0]


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def runbook_sections() -> dict[str, str]:
    """Anchor → text of each `## ` section of docs/runbooks.md."""
    sections: dict[str, str] = {}
    anchor = None
    for line in RUNBOOKS.read_text().splitlines():
        if line.startswith("## "):
            anchor = github_anchor(line[3:])
            sections[anchor] = ""
        elif anchor is not None:
            sections[anchor] += line + "\n"
    return sections


def run_tool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, input=stdin, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )


# -- derived Kubernetes manifests ----------------------------------------------


K8S_LABELS = {"app.kubernetes.io/name": "qualmon", "app.kubernetes.io/component": "monitor"}
K8S_NAMESPACE = "qualmon"


def expected_prometheus_rule() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "qualmon", "namespace": K8S_NAMESPACE, "labels": dict(K8S_LABELS)},
        "spec": {"groups": rule_groups()},
    }


def expected_dashboard_configmaps() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "qualmon-dashboard-" + path.stem.removeprefix("qualmon-"),
                "namespace": K8S_NAMESPACE,
                "labels": {**K8S_LABELS, "grafana_dashboard": "1"},
            },
            "data": {path.name: path.read_text()},
        }
        for path in DASHBOARDS
    ]


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings (PromQL, dashboard JSON) as readable `|` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _str)

GENERATED = "# Generated by `python -m tests.ops.test_ops --write-k8s` from {}; do not edit.\n"


def write_k8s() -> None:
    """Regenerate deploy/k8s/prometheusrule.yaml and dashboards-configmap.yaml."""

    def dump(docs: list[dict[str, Any]]) -> str:
        return yaml.dump_all(docs, Dumper=_LiteralDumper, sort_keys=False, width=100)

    rule = (
        GENERATED.format("deploy/prometheus/rules.yml and alerts.yml")
        + "# Add the labels your Prometheus' ruleSelector wants (kube-prometheus-stack: release).\n"
        + dump([expected_prometheus_rule()])
    )
    (K8S / "prometheusrule.yaml").write_text(rule)
    maps = (
        GENERATED.format("dashboards/*.json")
        + "# Labelled for the Grafana dashboard sidecar (kube-prometheus-stack's default label).\n"
        + dump(expected_dashboard_configmaps())
    )
    (K8S / "dashboards-configmap.yaml").write_text(maps)


# -- promtool ------------------------------------------------------------------


@needs_promtool
@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path) -> None:
    """Each rule file passes `promtool check rules`."""
    result = run_tool(str(PROMTOOL), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_check_example_config() -> None:
    """The example prometheus.yml is valid and finds its rule files."""
    result = run_tool(str(PROMTOOL), "check", "config", str(PROM_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


@needs_promtool
@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_rule_unit_tests(path: Path) -> None:
    """Each promtool unit-test file passes."""
    result = run_tool(str(PROMTOOL), "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    """Each alert is shown to fire on some series and to stay quiet at some time."""
    assert RULE_TESTS, "no promtool tests in deploy/prometheus/tests"
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for group in load_yaml(path)["tests"]:
            for case in group.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - fires == set(), "never shown firing"
    assert names - quiet == set(), "never shown quiet"


# -- alerts and runbooks ---------------------------------------------------------


def test_alerts_are_mixin_style_with_runbooks() -> None:
    """Qualmon… names, a severity, summary and description, a runbook_url that resolves."""
    sections = runbook_sections()
    problems = []
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names)), "duplicate alert names"
    assert len(names) >= 8
    for alert in alerts():
        name = alert["alert"]
        if not re.fullmatch(r"Qualmon[A-Z][A-Za-z0-9]+", name):
            problems.append(f"{name}: not a Qualmon… CamelCase name")
        if alert.get("labels", {}).get("severity") not in SEVERITIES:
            problems.append(f"{name}: severity not one of {sorted(SEVERITIES)}")
        annotations = alert.get("annotations", {})
        for key in ("summary", "description"):
            if not str(annotations.get(key, "")).strip():
                problems.append(f"{name}: no {key}")
        url = annotations.get("runbook_url", "")
        if not url.startswith(RUNBOOK_URL):
            problems.append(f"{name}: runbook_url {url!r} not under {RUNBOOK_URL}")
            continue
        anchor = url.removeprefix(RUNBOOK_URL)
        if anchor not in sections:
            problems.append(f"{name}: no section #{anchor} in docs/runbooks.md")
            continue
        for part in ("Meaning", "Impact", "Diagnosis", "Mitigation"):
            if f"**{part}.**" not in sections[anchor]:
                problems.append(f"{name}: runbook section lacks **{part}.**")
    assert not problems, "\n".join(problems)


def test_every_recording_rule_is_used() -> None:
    """Recording rules exist for alerts and dashboards; none is dead weight."""
    users = [a["expr"] for a in alerts()]
    users += [t["expr"] for d in dashboards().values() for p in panels(d) for t in p["targets"]]
    unused = [r["record"] for r in recording_rules() if not any(r["record"] in u for u in users)]
    assert not unused


# -- dashboards -----------------------------------------------------------------


def test_dashboards_exist_with_distinct_uids() -> None:
    """Both boards are there, each with its own fixed uid."""
    uids = {name: d.get("uid") for name, d in dashboards().items()}
    assert set(uids) == {"qualmon-fleet.json", "qualmon-capacity.json"}
    assert len(set(uids.values())) == len(uids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_provisionable(path: Path) -> None:
    """Fixed uid, no id, datasource and role variables, every panel on ${datasource} with a
    description and a unit."""
    board = json.loads(path.read_text())
    problems = []
    if not isinstance(board.get("uid"), str) or not re.fullmatch(r"[a-z0-9-]{1,40}", board["uid"]):
        problems.append(f"uid {board.get('uid')!r} is not a fixed short id")
    if "id" in board:
        problems.append("top-level id present (Grafana assigns it)")
    if not 36 <= board.get("schemaVersion", 0) <= 41:
        problems.append(f"schemaVersion {board.get('schemaVersion')}")
    variables = {v["name"]: v for v in board.get("templating", {}).get("list", [])}
    ds = variables.get("datasource", {})
    if (ds.get("type"), ds.get("query")) != ("datasource", "prometheus"):
        problems.append("no `datasource` variable of type datasource/prometheus")
    role = variables.get("role", {})
    role_query = role.get("query", {})
    role_query = role_query.get("query") if isinstance(role_query, dict) else role_query
    if (role.get("type"), role_query, role.get("includeAll")) != (
        "query",
        "label_values(qualmon_legs_active, role)",
        True,
    ):
        problems.append("no `role` query variable over qualmon_legs_active with includeAll")
    for name, var in variables.items():
        if var["type"] == "query" and var.get("datasource") != PANEL_DATASOURCE:
            problems.append(f"variable {name} not on ${{datasource}}")
    ids = [p["id"] for p in board["panels"]]
    ids += [c["id"] for p in board["panels"] if p["type"] == "row" for c in p.get("panels", [])]
    if len(ids) != len(set(ids)):
        problems.append("panel ids repeat")
    shown = list(panels(board))
    if len(shown) < 8:
        problems.append(f"only {len(shown)} panels")
    for panel in shown:
        title = panel.get("title", "?")
        if panel.get("datasource") != PANEL_DATASOURCE:
            problems.append(f"{title}: panel datasource {panel.get('datasource')}")
        if len(panel.get("description", "").strip()) < 20:
            problems.append(f"{title}: no description")
        if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append(f"{title}: no unit")
        if not panel.get("targets"):
            problems.append(f"{title}: no targets")
        for target in panel.get("targets", []):
            if target.get("datasource") != PANEL_DATASOURCE:
                problems.append(f"{title}/{target.get('refId')}: target not on ${{datasource}}")
            if not target.get("expr", "").strip():
                problems.append(f"{title}/{target.get('refId')}: empty expr")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_dashboard_thresholds_match_alerts() -> None:
    """A panel that plots an alerted recording rule marks the alert's threshold."""
    pattern = re.compile(r"\s*(?P<series>\w+:[\w:]+)\s*[<>]=?\s*(?P<value>[0-9.]+)\s*")
    problems = []
    checked = 0
    for alert in alerts():
        m = pattern.fullmatch(alert["expr"])
        if m is None:
            continue
        checked += 1
        threshold = float(m["value"])
        plotting = [
            (name, p)
            for name, d in dashboards().items()
            for p in panels(d)
            if any(m["series"] in t["expr"] for t in p["targets"])
        ]
        if not plotting:
            problems.append(f"{alert['alert']}: no panel plots {m['series']}")
        for name, p in plotting:
            steps = p["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
            if threshold not in [s.get("value") for s in steps]:
                problems.append(f"{alert['alert']}: {name} '{p['title']}' lacks {threshold}")
    assert checked >= 5, "alerts no longer compare recording rules against thresholds"
    assert not problems, "\n".join(problems)


# -- Kubernetes (generated parts; the rest, and the linters, in test_k8s.py) -----------


def test_k8s_prometheusrule_matches_the_rule_files() -> None:
    """The PrometheusRule carries exactly the groups of rules.yml and alerts.yml."""
    rule = k8s_object("PrometheusRule")
    assert rule["spec"]["groups"] == rule_groups(), (
        "out of sync: run `.venv/bin/python -m tests.ops.test_ops --write-k8s`"
    )


def test_k8s_dashboard_configmaps_match_the_dashboards() -> None:
    """The sidecar-labelled ConfigMaps hold exactly dashboards/*.json."""
    shipped: dict[str, Any] = {}
    for o in k8s_objects():
        if o["kind"] == "ConfigMap" and o["metadata"].get("labels", {}).get("grafana_dashboard"):
            assert o["metadata"]["labels"]["grafana_dashboard"] == "1"
            for name, text in o["data"].items():
                assert name not in shipped, f"{name} shipped twice"
                shipped[name] = json.loads(text)
    assert shipped == dashboards(), (
        "out of sync: run `.venv/bin/python -m tests.ops.test_ops --write-k8s`"
    )


# -- docker ----------------------------------------------------------------------


def test_dockerfile_is_two_stage_non_root_exec_form() -> None:
    """Builder and slim runtime, a non-root user, exec-form `qualmon serve`, a curl-free
    health check on /healthz, listening on all interfaces."""
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    froms = [line.split() for line in lines if line.startswith("FROM ")]
    assert len(froms) == 2 and froms[0][-2:] == ["AS", "builder"], froms
    assert froms[1][1] == "python:3.11-slim"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    [entrypoint] = [line for line in lines if line.startswith("ENTRYPOINT ")]
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == ["qualmon", "serve"]
    instructions = " ".join(line for line in lines if not line.startswith("#"))
    assert "HEALTHCHECK" in instructions and "/healthz" in instructions
    assert "urllib" in instructions and "curl" not in instructions
    text = (DEPLOY / "Dockerfile").read_text()
    assert "QUALMON_HOST=0.0.0.0" in text
    assert "COPY --from=builder" in text
    for line in lines:
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_compose_file_references_existing_files() -> None:
    """Compose parses; qualmon uses host networking; every bind mount and the build exist;
    Grafana's provisioning points at the mounted dashboards, read-only in the UI."""
    compose = load_yaml(COMPOSE)
    services = compose["services"]
    assert {"postgres", "qualmon-1", "qualmon-2", "prometheus", "grafana"} <= set(services)
    for name in QUALMON_SERVICES:
        assert services[name]["network_mode"] == "host"
        build = services[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    mounts: dict[str, dict[str, Path]] = {}
    for name, service in services.items():
        mounts[name] = {}
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                host = (DEPLOY / source).resolve()
                assert host.exists(), f"{name}: {source} does not exist"
                mounts[name][target] = host
    config_flag = next(a for a in services["prometheus"]["command"] if "--config.file=" in a)
    config_in_container = Path(config_flag.split("=", 1)[1])
    assert mounts["prometheus"][str(config_in_container.parent)] == PROM_DIR
    assert (PROM_DIR / config_in_container.name).is_file()
    providers = [
        provider
        for target, host in mounts["grafana"].items()
        if target.endswith("provisioning/dashboards")
        for path in host.glob("*.yml")
        for provider in load_yaml(path)["providers"]
    ]
    assert providers
    for provider in providers:
        assert provider["allowUiUpdates"] is False
        assert mounts["grafana"][provider["options"]["path"]] == ROOT / "dashboards"
    datasources = [
        ds
        for target, host in mounts["grafana"].items()
        if target.endswith("provisioning/datasources")
        for path in host.glob("*.yml")
        for ds in load_yaml(path)["datasources"]
    ]
    assert [ds["type"] for ds in datasources] == ["prometheus"]
    assert "//prometheus:" in datasources[0]["url"]


def test_compose_runs_two_instances_on_one_postgres() -> None:
    """Two qualmon instances on distinct host ports, each with its own instance id and an
    advertise URL on its own port, share the PostgreSQL service (started first, healthy);
    Prometheus scrapes both; compose waits out a drain before it kills one."""
    services = load_yaml(COMPOSE)["services"]
    envs = [services[name]["environment"] for name in QUALMON_SERVICES]
    ports = [int(env["QUALMON_PORT"]) for env in envs]
    assert len(set(ports)) == len(ports)
    assert len({env["QUALMON_INSTANCE_ID"] for env in envs}) == len(envs)
    for env, port in zip(envs, ports, strict=True):
        assert env["QUALMON_ADVERTISE_URL"] == f"http://127.0.0.1:{port}"
        assert env["QUALMON_HOST"] == "0.0.0.0"
    [db] = {env["QUALMON_DB"] for env in envs}
    m = re.fullmatch(
        r"postgresql://(\w+):\$\{QUALMON_PG_PASSWORD:\?[^}]+\}@([\d.]+):(\d+)/(\w+)", db
    )
    assert m is not None, db
    postgres = services["postgres"]
    assert (postgres["environment"]["POSTGRES_USER"], postgres["environment"]["POSTGRES_DB"]) == (
        m[1],
        m[4],
    )
    assert f"{m[2]}:{m[3]}:5432" in postgres["ports"]
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    for name in QUALMON_SERVICES:
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        grace = re.fullmatch(r"(\d+)m", services[name]["stop_grace_period"])
        assert grace is not None
        assert int(grace[1]) * 60 > float(services[name]["environment"]["QUALMON_DRAIN_SECONDS"])
    [job] = [j for j in load_yaml(PROM_DIR / "prometheus.yml")["scrape_configs"]]
    targets = [t for c in job["static_configs"] for t in c["targets"]]
    assert sorted(targets) == [f"host.docker.internal:{port}" for port in sorted(ports)]


def test_compose_config_validates() -> None:
    """`docker compose config -q` accepts the file (needs the compose plugin, not an engine)."""
    docker = shutil.which("docker")
    if docker is None or run_tool(docker, "compose", "version").returncode != 0:
        pytest.skip("docker compose not installed")
    env = {**os.environ, "QUALMON_SECRET": "x" * 32, "QUALMON_PG_PASSWORD": "y" * 32}
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# -- the real thing: a real Prometheus scraping `qualmon demo` -------------------


def substitute(expr: str) -> str:
    """A dashboard query as Grafana would send it with all variables at All."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__range", "1h")
    expr = re.sub(r"\$\{?(role|instance)\}?", ".*", expr)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def test_substitute_replaces_every_variable() -> None:
    """The test's variable substitution leaves valid PromQL."""
    assert substitute('rate(x{role=~"$role"}[$__rate_interval])') == 'rate(x{role=~".*"}[1m])'
    assert substitute('increase(y{instance=~"${instance}"}[$__range])') == (
        'increase(y{instance=~".*"}[1h])'
    )


def prometheus_config(path: Path, target: str) -> None:
    """The example config, scraping `target` every second with rules from deploy/."""
    config = load_yaml(PROM_DIR / "prometheus.yml")
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROM_DIR / f) for f in config["rule_files"]]
    assert sorted(config["rule_files"]) == sorted(str(p) for p in RULE_FILES)
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "qualmon"]
    job["static_configs"] = [{"targets": [target]}]
    path.write_text(yaml.safe_dump(config))


async def stop_process(proc: asyncio.subprocess.Process, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"


@contextlib.asynccontextmanager
async def process(
    *args: str, log: Path, env: dict[str, str] | None = None, stdout_pipe: bool = False
) -> AsyncIterator[asyncio.subprocess.Process]:
    with open(log, "wb") as out:  # noqa: ASYNC230 - a local file, opened once per process
        proc = await asyncio.create_subprocess_exec(
            *args,
            env=env,
            cwd=log.parent,
            stdout=asyncio.subprocess.PIPE if stdout_pipe else out,
            stderr=out,
        )
    try:
        yield proc
    finally:
        await stop_process(proc)


class PromAPI:
    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url

    async def query(self, expr: str) -> tuple[str, Any]:
        """("success", result) or ("error", message)."""
        async with self.http.get(self.url + "/api/v1/query", params={"query": expr}) as r:
            body = await r.json(content_type=None)
        if body.get("status") != "success":
            return "error", f"{body.get('errorType')}: {body.get('error')}"
        return "success", body["data"]["result"]

    async def value(self, expr: str) -> float | None:
        status, result = await self.query(expr)
        if status != "success" or not result:
            return None
        return float(result[0]["value"][1])

    async def get(self, path: str, **params: str) -> Any:
        async with self.http.get(self.url + path, params=params) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["data"]


async def poll(condition: Any, *, timeout: float, what: str, logs: list[Path]) -> Any:
    """Poll an async condition; on timeout fail with `what` and the processes' log tails."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = await condition()
        except aiohttp.ClientError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n{tail(p)}" for p in logs)
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{tails}")
        await asyncio.sleep(1.0)


def panel_queries() -> list[tuple[str, str]]:
    """(label, PromQL) for every target of every panel, variables substituted."""
    return [
        (f"{name} / {p['title']} / {t['refId']}", substitute(t["expr"]))
        for name, d in dashboards().items()
        for p in panels(d)
        for t in p["targets"]
    ]


@pytest.mark.realtime
@pytest.mark.timeout(180)
@pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="prometheus/promtool not installed (Debian package `prometheus`)",
)
async def test_every_panel_returns_data_from_a_real_prometheus(tmp_path: Path) -> None:
    """With `qualmon demo` scraped by a real Prometheus loading our rules: every dashboard
    query succeeds with data, variables resolve, every rule evaluates cleanly, and
    `promtool check metrics` accepts the demo's /metrics."""
    qualmon_port, prom_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUALMON_")}
    env.update(QUALMON_PORT=str(qualmon_port), QUALMON_DB=str(tmp_path / "qualmon.db"))
    (tmp_path / "demo").mkdir()
    (tmp_path / "prometheus").mkdir()
    demo_log = tmp_path / "demo" / "demo.log"
    prom_log = tmp_path / "prometheus" / "prometheus.log"
    config = tmp_path / "prometheus" / "prometheus.yml"
    prometheus_config(config, f"127.0.0.1:{qualmon_port}")
    logs = [demo_log, prom_log]
    prom_args = (
        str(PROMETHEUS),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'prometheus' / 'data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
    )
    # --seconds: the demo stops by itself even if this test is killed.
    demo_args = (*CLI, "demo", "--seconds", "170")
    async with (
        process(*demo_args, log=demo_log, env=env, stdout_pipe=True) as demo,
        process(*prom_args, log=prom_log) as prometheus,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
    ):
        assert demo.stdout is not None
        await read_until(demo.stdout, "Ctrl-C to stop", timeout=30)
        prom = PromAPI(http, f"http://127.0.0.1:{prom_port}")

        async def ready() -> bool:
            async with http.get(prom.url + "/-/ready") as r:
                return r.status == 200

        await poll(ready, timeout=20, what="Prometheus ready", logs=logs)
        await poll(
            lambda: prom.value('up{job="qualmon"} == 1'),
            timeout=20,
            what="the qualmon target up",
            logs=logs,
        )
        await poll(
            lambda: prom.value("sum(qualmon_sessions_active) >= 4"),
            timeout=30,
            what="four demo sessions live in Prometheus",
            logs=logs,
        )

        queries = panel_queries()
        assert len(queries) >= 30

        async def failing() -> dict[str, str]:
            failures = {}
            for label, expr in queries:
                status, result = await prom.query(expr)
                if status != "success":
                    failures[label] = f"{result}\n      {expr}"
                elif not result:
                    failures[label] = f"empty result\n      {expr}"
            return failures

        deadline = time.monotonic() + 30
        while True:
            failures = await failing()
            errors = any("empty result" not in f for f in failures.values())
            if not failures or errors or time.monotonic() > deadline:
                break  # query errors do not heal; empty results may still fill
            await asyncio.sleep(2.0)
        assert not failures, f"{len(failures)} of {len(queries)} panel queries fail:\n" + "\n".join(
            f"  {label}: {why}" for label, why in sorted(failures.items())
        )

        # Template variables: label_values(metric, label) finds values.
        for name, board in dashboards().items():
            for var in board["templating"]["list"]:
                if var["type"] != "query":
                    continue
                m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", var["definition"])
                assert m is not None, f"{name}: {var['definition']}"
                values = await prom.get(f"/api/v1/label/{m[2]}/values", **{"match[]": m[1]})
                assert values, f"{name}: variable {var['name']} has no values"
                if var["name"] == "role":
                    assert set(values) == {"therapist", "client"}

        # Every rule from deploy/prometheus loaded and evaluates without error.
        async def evaluated() -> dict[str, Any] | None:
            groups = (await prom.get("/api/v1/rules"))["groups"]
            rules = {r["name"]: r for g in groups for r in g["rules"]}
            return None if any(r["health"] == "unknown" for r in rules.values()) else rules

        loaded = await poll(evaluated, timeout=10, what="every rule evaluated", logs=logs)
        expected = {r.get("record") or r["alert"] for g in rule_groups() for r in g["rules"]}
        assert set(loaded) == expected
        bad = {n: r.get("lastError") for n, r in loaded.items() if r["health"] != "ok"}
        assert not bad, bad
        # The shared loss rule sees the demo's 5 % client loss through the real pipeline.
        await poll(
            lambda: prom.value('qualmon:loss_ratio:rate5m{role="client"} > 0'),
            timeout=20,
            what="client loss in qualmon:loss_ratio:rate5m",
            logs=logs,
        )

        async with http.get(f"http://127.0.0.1:{qualmon_port}/metrics") as r:
            assert r.status == 200
            exposition = await r.text()
        assert "process_cpu_seconds_total" in exposition
        check = await asyncio.to_thread(
            run_tool, str(PROMTOOL), "check", "metrics", stdin=exposition
        )
        assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), (
            check.stdout + check.stderr
        )

        # Both stop cleanly on SIGTERM.
        await stop_process(prometheus)
        await stop_process(demo)
        assert prometheus.returncode == 0, tail(prom_log)
        assert demo.returncode == 0, tail(demo_log)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-k8s"]:
        sys.exit("usage: python -m tests.ops.test_ops --write-k8s")
    write_k8s()
