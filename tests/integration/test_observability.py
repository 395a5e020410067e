"""What participants watch in Grafana, checked against a real Prometheus that scraped a real run.

A Prometheus from the distribution (Debian's ``prometheus``; never its service: the binary, on
127.0.0.1, with storage of its own) scrapes the test operator and a Docker twin under
``--watch`` every second while both engines make one WebApp true, repair a deleted Deployment
and a killed container, and follow a scale-up. Then every query of every dashboard panel runs
through Prometheus' HTTP API: it must parse and return data, and panels meant to compare the
engines must show both. ``promtool`` checks both /metrics endpoints and every scrape config;
the in-cluster manifests are applied to the test cluster and Prometheus' service discovery is
pointed at it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from reconcile_lab.imperative import containers
from reconcile_lab.observe import command, dashboards, grafana, render
from tests import cases
from tests.conftest import Cluster, Operator, free_port, prometheus_binaries, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO / dashboards.OBSERVABILITY
LABEL = "reconcile-lab/app"
PAUSE = 3  # seconds between the scenario's steps: a few scrapes see each state
MODELS = {d.uid: json.loads((REPO / dashboards.DASHBOARDS / d.file).read_text())
          for d in dashboards.ALL}
PANELS = [(uid, panel) for uid, model in MODELS.items() for panel in grafana.panels(model)]


# --- Prometheus from the distribution ---------------------------------------------------------


@dataclass
class Prometheus:
    binary: Path
    promtool: Path
    config: dict[str, Any]
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config))
        check = subprocess.run([str(self.promtool), "check", "config", str(config)],
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        with (self.workdir / "prometheus.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [str(self.binary), f"--config.file={config}",
                 f"--storage.tsdb.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 "--storage.tsdb.retention.time=1h"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self.ready, timeout=60, what="Prometheus to be ready")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{path} {params}: {e.read().decode()}") from None
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def value(self, expr: str) -> float:
        result = self.query(expr)
        return sum(float(r["value"][1]) for r in result) if result else 0.0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


# --- the scenario -----------------------------------------------------------------------------


@dataclass
class Run:
    prometheus: Prometheus
    namespace: str
    app: str
    twin_port: int
    operator: Operator
    started: float

    def window(self) -> str:
        """A rate/range window covering the whole scenario (at least Grafana's 4 scrapes)."""
        return f"{max(30, int(time.monotonic() - self.started) + 15)}s"

    def values(self, uid: str) -> dict[str, str]:
        window = self.window()
        common = {"__rate_interval": window, "__range": window}
        if uid == dashboards.RECONCILIATION.uid:
            return {**common, "namespace": self.namespace, "app": self.app}
        # An operator run outside a cluster carries no namespace or pod label: "All".
        return {**common, "job": dashboards.OPERATOR_JOB, "namespace": ".*", "pod": ".*"}


def _metric(port: int, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` with ``labels``; 0 while nothing serves on the port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            head, value = line.rsplit(" ", 1)
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
    return total


def _webapp_file(path: Path, app: str, namespace: str, replicas: int) -> Path:
    body = cases.webapp(app, namespace, replicas=replicas,
                        healthCheck={"path": "/healthz", "periodSeconds": 1})
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.fixture(scope="module")
def run(cluster: Cluster, operator: Operator, docker_engine: Any,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    client: docker.DockerClient = docker_engine
    binary, promtool = prometheus_binaries()
    work = tmp_path_factory.mktemp("observability")
    namespace, app = f"obs-{uuid.uuid4().hex[:6]}", f"obs{uuid.uuid4().hex[:6]}"
    twin_port = free_port()
    prometheus = Prometheus(binary, promtool, {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": dashboards.OPERATOR_JOB,
             "static_configs": [{"targets": [f"127.0.0.1:{operator.metrics_port}"]}]},
            {"job_name": dashboards.TWIN_JOB,
             "static_configs": [{"targets": [f"127.0.0.1:{twin_port}"]}]},
        ]}, work)
    prometheus.start()
    twin: subprocess.Popen[bytes] | None = None
    cluster.kubectl("create", "namespace", namespace)
    try:
        wait_for(lambda: prometheus.value(f'up{{job="{dashboards.OPERATOR_JOB}"}}') == 1,
                 timeout=60, what="Prometheus' first scrape of the operator")
        started = time.monotonic()
        webapp = _webapp_file(work / "webapp.yaml", app, namespace, replicas=2)
        # The operator makes it true …
        cluster.kubectl("apply", "-f", str(webapp))
        cluster.kubectl("wait", "-n", namespace, f"webapp/{app}", "--for=condition=Ready",
                        "--timeout=60s", timeout=70)
        # … and so does the twin, polling the same file every second.
        with (work / "twin.log").open("wb") as log:
            twin = subprocess.Popen(
                [sys.executable, "-m", "reconcile_lab", "docker", "apply", "-f", str(webapp),
                 "--watch", "--interval", "1", "--metrics-port", str(twin_port),
                 "--log-format", "json"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "RECONCILE_LAB_STATE": str(work / "state"),
                     "PYTHONPATH": str(REPO / "operator")})
        wait_for(lambda: _ready(twin_port, app, namespace) == 2, timeout=90,
                 what="the twin to make the app true")

        time.sleep(PAUSE)
        # Drift on each side: a Deployment deleted by hand, a container killed.
        before = cluster.get("deployment", app, namespace)
        assert before is not None
        cluster.kubectl("delete", "deployment", app, "-n", namespace, "--wait=false")
        wait_for(lambda: (cluster.get("deployment", app, namespace) or {}).get("metadata", {})
                 .get("uid") not in (None, before["metadata"]["uid"]), timeout=30,
                 what="the operator to recreate the Deployment")
        time.sleep(PAUSE)
        client.containers.get(containers.container_name(containers.docker_name(app, namespace), 1)).kill()
        wait_for(lambda: _metric(twin_port, "reconcile_lab_drift_corrections_total",
                                 engine="docker", kind="Container") >= 1, timeout=60,
                 what="the twin to repair the killed container")

        time.sleep(PAUSE)
        # A change of the desired state, seen by both engines.
        _webapp_file(webapp, app, namespace, replicas=3)
        cluster.kubectl("apply", "-f", str(webapp))
        wait_for(lambda: _ready(twin_port, app, namespace) == 3 and _ready(
            operator.metrics_port, app, namespace) == 3, timeout=90,
            what="both engines to converge on 3 replicas")

        result = Run(prometheus, namespace, app, twin_port, operator, started)
        # A few scrapes after the last event: Prometheus has seen all of it.
        wait_for(lambda: prometheus.value(
            f'reconcile_lab_ready_replicas{{app="{app}"}}') == 6, timeout=30,
            what="Prometheus to scrape both engines at 3 ready replicas")
        time.sleep(3)
        yield result
    finally:
        if twin is not None and twin.poll() is None:
            os.killpg(twin.pid, signal.SIGTERM)
            twin.wait(timeout=30)
        for c in client.containers.list(all=True, filters={"label": f"{LABEL}={app}"}):
            c.remove(force=True)
        network = containers.docker_name(app, namespace)
        for n in client.networks.list(names=[network]):
            if n.name == network:
                n.remove()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        prometheus.stop()


def _ready(port: int, app: str, namespace: str) -> float:
    return _metric(port, "reconcile_lab_ready_replicas", app=app, namespace=namespace)


# --- every panel, through Prometheus ----------------------------------------------------------


@dataclass
class Answer:
    expr: str
    series: list[dict[str, Any]]

    def finite(self) -> list[dict[str, Any]]:
        return [s for s in self.series if math.isfinite(float(s["value"][1]))]


@pytest.fixture(scope="module")
def answers(run: Run) -> dict[tuple[str, int], list[Answer]]:
    found: dict[tuple[str, int], list[Answer]] = {}
    for uid, panel in PANELS:
        values = run.values(uid)
        found[(uid, panel["id"])] = [
            Answer(expr, run.prometheus.query(expr))
            for expr in (grafana.substitute(t["expr"], values) for t in panel["targets"])]
    return found


@pytest.mark.parametrize(("uid", "panel"), PANELS,
                         ids=[f"{uid.removeprefix('reconcile-lab-')}:{p['title']}"
                              for uid, p in PANELS])
def test_every_panel_query_parses_and_returns_data(
        answers: dict[tuple[str, int], list[Answer]], uid: str, panel: dict[str, Any]) -> None:
    for answer in answers[(uid, panel["id"])]:
        assert answer.finite(), f"no data (or only NaN) for {answer.expr}: {answer.series}"


def _rows(model: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    rows: dict[int, list[dict[str, Any]]] = {}
    for panel in grafana.panels(model):
        rows.setdefault(panel["gridPos"]["y"], []).append(panel)
    return rows


def test_panels_side_by_side_show_both_engines(
        answers: dict[tuple[str, int], list[Answer]]) -> None:
    uid = dashboards.RECONCILIATION.uid
    for row in _rows(MODELS[uid]).values():
        series = [s["metric"] for p in row for a in answers[(uid, p["id"])] for s in a.finite()]
        titles = [p["title"] for p in row]
        if any("engine" in labels for labels in series):
            assert {labels.get("engine") for labels in series} >= set(dashboards.ENGINES), titles
        else:  # one line per process: told apart by scrape job
            assert {labels.get("job") for labels in series} >= {
                dashboards.OPERATOR_JOB, dashboards.TWIN_JOB}, titles


def test_the_panels_say_what_happened(run: Run) -> None:
    """Not just data: the numbers behind the panels match the scenario."""
    p, app = run.prometheus, run.app
    for engine in dashboards.ENGINES:
        sel = f'engine="{engine}", app="{app}"'
        assert p.value(f"reconcile_lab_desired_replicas{{{sel}}}") == 3
        assert p.value(f"reconcile_lab_ready_replicas{{{sel}}}") == 3
        assert p.value(f'max_over_time(reconcile_lab_desired_replicas{{{sel}}}[{run.window()}])'
                       f" - min_over_time(reconcile_lab_desired_replicas{{{sel}}}"
                       f"[{run.window()}])") == 1, "the scale-up from 2 to 3 is visible"
    window = run.window()
    assert p.value(f'increase(reconcile_lab_drift_corrections_total{{engine="kubernetes", '
                   f'kind="Deployment"}}[{window}])') >= 1
    assert p.value(f'increase(reconcile_lab_drift_corrections_total{{engine="docker", '
                   f'kind="Container"}}[{window}])') >= 1
    assert p.value(f'increase(reconcile_lab_time_to_converge_seconds_count{{engine="docker"}}'
                   f"[{window}])") >= 1


# --- promtool ---------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["operator", "twin"])
def test_promtool_finds_nothing_to_complain_about_in_metrics(run: Run, engine: str) -> None:
    port = run.operator.metrics_port if engine == "operator" else run.twin_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read()
    check = subprocess.run([str(run.prometheus.promtool), "check", "metrics"], input=text,
                           capture_output=True, check=False)
    output = (check.stdout + check.stderr).decode()
    print(f"promtool check metrics ({engine}, {len(text.splitlines())} lines): "
          f"exit {check.returncode}, output {output!r}")
    assert check.returncode == 0 and output == "", output


def _kubernetes_sd(promtool: Path, tmp: Path) -> bool:
    """Whether this Prometheus has Kubernetes service discovery: Debian builds it without."""
    probe = tmp / "probe.yml"
    probe.write_text(yaml.safe_dump({"scrape_configs": [
        {"job_name": "probe", "kubernetes_sd_configs": [{"role": "endpointslice"}]}]}))
    return subprocess.run([str(promtool), "check", "config", str(probe)], capture_output=True,
                          check=False).returncode == 0


def _in_cluster_config(targets: Path | None = None, kubeconfig: Path | None = None) -> Any:
    """The in-cluster scrape config, discovering from the test cluster's API (kubeconfig) or,
    for a Prometheus without Kubernetes discovery, from a file of the same targets."""
    config = yaml.safe_load((OBSERVABILITY / "prometheus" / "prometheus-in-cluster.yml")
                            .read_text())
    for job in config["scrape_configs"]:
        if kubeconfig is not None:
            for sd in job["kubernetes_sd_configs"]:
                sd["kubeconfig_file"] = str(kubeconfig)
        else:
            del job["kubernetes_sd_configs"]
            job["file_sd_configs"] = [{"files": [str(targets)]}]
    return config


@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus-compose.yml",
                                  "prometheus-in-cluster.yml"])
def test_promtool_accepts_every_scrape_config(run: Run, name: str, tmp_path: Path) -> None:
    path = OBSERVABILITY / "prometheus" / name
    if name == "prometheus-in-cluster.yml" and not _kubernetes_sd(run.prometheus.promtool,
                                                                   tmp_path):
        path = tmp_path / name  # everything but the discovery mechanism
        path.write_text(yaml.safe_dump(_in_cluster_config(targets=tmp_path / "targets.json")))
    check = subprocess.run([str(run.prometheus.promtool), "check", "config", str(path)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


# --- the picture without Grafana --------------------------------------------------------------


@pytest.mark.parametrize("uid", [d.uid for d in dashboards.ALL])
def test_the_dashboard_renders_to_a_png(run: Run, tmp_path: Path, uid: str) -> None:
    out = tmp_path / f"{uid}.png"
    since = f"{int(time.monotonic() - run.started) + 5}s"
    app = {"namespace": run.namespace, "app": run.app} \
        if uid == dashboards.RECONCILIATION.uid else {}
    render.render(run.prometheus.url, out, dashboard=uid, since=since, rate_interval="10s", **app)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 50_000
    if target := os.environ.get("RECONCILE_LAB_RENDER_TO"):  # to refresh docs/img by hand
        shutil.copyfile(out, Path(target) / f"{uid.removeprefix('reconcile-lab-')}.png")


# --- in the cluster ---------------------------------------------------------------------------

MONITORING = dashboards.MONITORING_NAMESPACE
PROMETHEUS_SA = f"system:serviceaccount:{MONITORING}:prometheus"


@pytest.fixture(scope="module")
def in_cluster(cluster: Cluster) -> Iterator[Cluster]:
    for namespace in ("reconcile-lab-system", MONITORING):  # no images for these pods here
        cluster.simulate_pods_in(namespace)
    cluster.kubectl("apply", "-f", str(REPO / "deploy" / "rbac.yaml"))
    cluster.kubectl("apply", "-f", str(REPO / "deploy" / "operator.yaml"))
    cluster.kubectl("apply", "--server-side", "--field-manager=tests", "-f",
                    str(OBSERVABILITY / "in-cluster"))
    yield cluster
    cluster.kubectl("delete", "--ignore-not-found", "--wait=false", "-f",
                    str(OBSERVABILITY / "in-cluster"), check=False)


@pytest.mark.parametrize(("args", "allowed"), [
    (("list", "endpointslices.discovery.k8s.io", "-n", "reconcile-lab-system"), True),
    (("watch", "pods", "-n", "reconcile-lab-system"), True),
    (("list", "services", "-n", "reconcile-lab-system"), True),
    (("list", "endpointslices.discovery.k8s.io", "-n", "default"), False),
    (("get", "secrets", "-n", "reconcile-lab-system"), False),
    (("list", "webapps.reconcile-lab.dev", "--all-namespaces"), False),
])
def test_prometheus_may_discover_the_operator_and_nothing_more(
        in_cluster: Cluster, args: tuple[str, ...], allowed: bool) -> None:
    result = in_cluster.kubectl("auth", "can-i", *args, f"--as={PROMETHEUS_SA}", check=False)
    assert result.stdout.strip() == ("yes" if allowed else "no"), result.stderr


def test_prometheus_and_grafana_are_admitted_under_restricted_pod_security(
        in_cluster: Cluster) -> None:
    def ready(name: str) -> bool:
        deployment = in_cluster.get("deployment", name, MONITORING) or {}
        return bool(deployment.get("status", {}).get("readyReplicas") == 1)

    for name in ("prometheus", "grafana"):
        wait_for(lambda: ready(name), timeout=60,  # noqa: B023 (called at once)
                 what=f"{name}'s pod to be admitted and (simulated) ready")


def _endpointslice_targets(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    """What Kubernetes discovery (role: endpointslice) makes of every EndpointSlice in the
    namespace: one target per address and port, with its __meta_kubernetes_* labels."""
    targets = []
    for slice_ in cluster.list("endpointslices", namespace):
        service = slice_["metadata"].get("labels", {}).get("kubernetes.io/service-name", "")
        for endpoint in slice_.get("endpoints") or []:
            pod_name = endpoint.get("targetRef", {}).get("name", "")
            pod = cluster.get("pod", pod_name, namespace) or {}
            for port in slice_.get("ports") or []:
                container = next(
                    (c["name"] for c in pod.get("spec", {}).get("containers", [])
                     if any(p.get("containerPort") == port["port"] for p in c.get("ports") or [])),
                    "")
                for address in endpoint["addresses"]:
                    targets.append({"targets": [f"{address}:{port['port']}"], "labels": {
                        "__meta_kubernetes_namespace": namespace,
                        "__meta_kubernetes_service_name": service,
                        "__meta_kubernetes_endpointslice_port_name": port.get("name", ""),
                        "__meta_kubernetes_pod_name": pod_name,
                        "__meta_kubernetes_pod_container_name": container}})
    return targets


def test_in_cluster_discovery_finds_the_operators_metrics_service(
        in_cluster: Cluster, run: Run, tmp_path: Path) -> None:
    """The in-cluster scrape config against the test cluster: with Kubernetes discovery when
    this Prometheus has it; else its relabelling, fed what that discovery would find."""
    system = "reconcile-lab-system"

    def addresses() -> list[Any]:
        slices = in_cluster.list("endpointslices", system,
                                 "kubernetes.io/service-name=reconcile-lab-operator-metrics")
        return [a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]
                if e.get("conditions", {}).get("ready")]

    wait_for(addresses, timeout=60, what="the operator's metrics Service to have an endpoint")
    if _kubernetes_sd(run.prometheus.promtool, tmp_path):
        config = _in_cluster_config(kubeconfig=in_cluster.kubeconfig)
    else:
        found = _endpointslice_targets(in_cluster, system)
        (ip, _), = {tuple(t["targets"][0].split(":")) for t in found}
        # What must be dropped: another port of the same pod, another Service's endpoints.
        found.append({"targets": [f"{ip}:8080"], "labels": {
            **found[0]["labels"], "__meta_kubernetes_endpointslice_port_name": "health"}})
        found.append({"targets": [f"{ip}:9999"], "labels": {
            **found[0]["labels"], "__meta_kubernetes_service_name": "something-else"}})
        (tmp_path / "targets.json").write_text(json.dumps(found))
        config = _in_cluster_config(targets=tmp_path / "targets.json")
    prometheus = Prometheus(run.prometheus.binary, run.prometheus.promtool, config, tmp_path)
    prometheus.start()
    try:
        def discovered() -> list[dict[str, Any]]:
            targets: list[dict[str, Any]] = prometheus.api("targets", state="active")[
                "activeTargets"]
            return targets

        (target,) = wait_for(discovered, timeout=30, what="a discovered target")
        labels = target["labels"]
        assert labels["job"] == dashboards.OPERATOR_JOB
        assert labels["namespace"] == system
        assert labels["pod"].startswith("reconcile-lab-operator-")
        assert labels["container"] == "operator"
        assert target["scrapeUrl"].endswith(":8000/metrics")
    finally:
        prometheus.stop()


# --- make grafana, where it cannot run --------------------------------------------------------


def test_make_grafana_refuses_at_once_when_an_image_is_missing(docker_engine: Any) -> None:
    images = command.compose_images()
    if not command.missing_images(images):
        pytest.skip("the images are here: `make grafana` would start the stack")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "reconcile_lab", "observe", "up"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO / "operator")})
    assert done.returncode == 1
    assert time.monotonic() - started < 30
    for image in command.missing_images(images):
        assert f"docker pull {image}" in done.stderr
    assert not docker_engine.containers.list(  # nothing was started
        all=True, filters={"label": "com.docker.compose.project=reconcile-lab-observability"})
