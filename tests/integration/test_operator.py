"""The operator against a real control plane: children follow the WebApp, drift is repaired,
nothing is written when nothing differs, bad input is refused, restarts lose nothing."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from reconcile_lab.declarative import render
from tests import cases
from tests.conftest import Cluster, Operator, wait_for

pytestmark = [pytest.mark.cluster]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return c


def _ready(cluster: Cluster, name: str, namespace: str, timeout: float = 30) -> dict[str, Any]:
    cluster.kubectl("wait", "-n", namespace, f"webapp/{name}", "--for=condition=Ready",
                    f"--timeout={int(timeout)}s", timeout=timeout + 10)
    webapp = cluster.get("webapp", name, namespace)
    assert webapp is not None
    return webapp


def _deployment(cluster: Cluster, name: str, namespace: str) -> dict[str, Any]:
    return wait_for(lambda: cluster.get("deployment", name, namespace), timeout=10,
                    what=f"deployment {name}")  # type: ignore[no-any-return]


def test_children_follow_every_change_and_go_with_the_webapp(
        cluster: Cluster, operator: Operator, namespace: str) -> None:
    cluster.apply(cases.webapp("shop", namespace, replicas=2, healthCheck={"path": "/healthz"}))
    webapp = _ready(cluster, "shop", namespace)
    assert webapp["status"]["readyReplicas"] == 2
    d = _deployment(cluster, "shop", namespace)
    svc = cluster.get("service", "shop", namespace)
    assert svc is not None and svc["spec"]["ports"][0]["port"] == 8080
    assert d["metadata"]["ownerReferences"][0]["uid"] == webapp["metadata"]["uid"]
    assert "readinessProbe" in _container(d)

    # Only the health check taken out of the spec: nothing the operator sets differs, and
    # still the probes must go (they are the operator's, set by its create).
    cluster.apply(cases.webapp("shop", namespace, replicas=2))
    wait_for(lambda: "readinessProbe" not in _container(_deployment(cluster, "shop", namespace)),
             timeout=10, what="the probes to go with the health check")
    assert "livenessProbe" not in _container(_deployment(cluster, "shop", namespace))

    cluster.apply(cases.webapp("shop", namespace, image="reconcile-lab/hello:v2", replicas=3,
                               port=9090, env=[{"name": "GREETING", "value": "hej"}]))
    _ready(cluster, "shop", namespace)
    d = _deployment(cluster, "shop", namespace)
    c = _container(d)
    assert (d["spec"]["replicas"], c["image"]) == (3, "reconcile-lab/hello:v2")
    assert c["env"] == [{"name": "GREETING", "value": "hej"}]
    assert c["ports"][0]["containerPort"] == 9090
    svc = cluster.get("service", "shop", namespace)
    assert svc is not None and svc["spec"]["ports"][0]["port"] == 9090

    cluster.kubectl("scale", "-n", namespace, "webapp/shop", "--replicas=5")
    wait_for(lambda: _deployment(cluster, "shop", namespace)["spec"]["replicas"] == 5,
             timeout=10, what="kubectl scale to reach the Deployment")
    ready = _ready(cluster, "shop", namespace)
    assert ready["status"]["readyReplicas"] == 5

    table = cluster.kubectl("get", "webapp", "shop", "-n", namespace).stdout
    assert table.split()[:5] == ["NAME", "IMAGE", "DESIRED", "READY", "STATUS"]
    assert "reconcile-lab/hello:v2" in table and "Available" in table

    cluster.kubectl("delete", "webapp", "shop", "-n", namespace, "--wait=true")
    wait_for(lambda: cluster.get("deployment", "shop", namespace) is None
             and cluster.get("service", "shop", namespace) is None,
             timeout=90, what="garbage collection of the children")
    assert cluster.list("pods", namespace, "app.kubernetes.io/name=shop") == [] or wait_for(
        lambda: cluster.list("pods", namespace, "app.kubernetes.io/name=shop") == [],
        timeout=30, what="pods to go")


def _repair_time(cluster: Cluster, namespace: str, damage: list[str], kind: str,
                 repaired: Any) -> float:
    before = cluster.get(kind, "drift", namespace)
    assert before is not None
    started = time.monotonic()
    cluster.kubectl(*damage, "-n", namespace)
    wait_for(lambda: repaired(cluster.get(kind, "drift", namespace), before), timeout=10,
             interval=0.02, what=f"repair after {' '.join(damage)}")
    return time.monotonic() - started


def test_drift_is_repaired_within_two_seconds(
        cluster: Cluster, operator: Operator, namespace: str,
        record_property: Callable[[str, object], None]) -> None:
    cluster.apply(cases.webapp("drift", namespace, replicas=2))
    _ready(cluster, "drift", namespace)
    def recreated(now: dict[str, Any] | None, before: dict[str, Any]) -> bool:
        return now is not None and now["metadata"]["uid"] != before["metadata"]["uid"]

    def rescaled(now: dict[str, Any] | None, before: dict[str, Any]) -> bool:
        return now is not None and now["spec"]["replicas"] == 2

    times: dict[str, list[float]] = {"deployment deleted": [], "service deleted": [],
                                     "scaled by hand": []}
    repairs_before = operator.metric("reconcile_lab_drift_corrections_total")
    for _ in range(5):
        times["deployment deleted"].append(_repair_time(
            cluster, namespace, ["delete", "deployment", "drift", "--wait=false"], "deployment",
            recreated))
        times["service deleted"].append(_repair_time(
            cluster, namespace, ["delete", "service", "drift", "--wait=false"], "service",
            recreated))
        times["scaled by hand"].append(_repair_time(
            cluster, namespace, ["scale", "deployment", "drift", "--replicas=7"], "deployment",
            rescaled))
    report = {k: {"p50": round(statistics.median(v), 3), "max": round(max(v), 3)}
              for k, v in times.items()}
    print("drift repair seconds:", json.dumps(report))
    record_property("rounds", len(times["deployment deleted"]))
    for kind, values in times.items():
        record_property(f"{kind.replace(' ', '_')}_max_s", round(max(values), 3))
    assert all(t < 2.0 for v in times.values() for t in v), report
    # Counted once the reconcile that repaired reports, a moment after the repair shows.
    wait_for(lambda: operator.metric("reconcile_lab_drift_corrections_total") - repairs_before
             >= 15, timeout=5, what="15 drift corrections counted")
    events = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    assert "DriftRepaired" in events


def test_an_unchanged_webapp_causes_no_write(cluster: Cluster, operator: Operator,
                                             namespace: str) -> None:
    cluster.apply(cases.webapp("quiet", namespace, replicas=2))
    _ready(cluster, "quiet", namespace)
    time.sleep(1)  # let the last status and pod updates settle
    audit = cluster.audit()
    mark = audit.mark()
    reconciles_before = operator.metric("reconcile_lab_reconciliations_total")
    # Touch the WebApp and its children without changing anything the operator owns: each is
    # an event and a full reconcile, and each finds nothing to do.
    cluster.kubectl("annotate", "-n", namespace, "webapp/quiet", "touched=1")
    cluster.kubectl("label", "-n", namespace, "deployment/quiet", "unrelated=1")
    cluster.kubectl("annotate", "-n", namespace, "service/quiet", "touched=1")
    wait_for(lambda: operator.metric("reconcile_lab_reconciliations_total")
             >= reconciles_before + 3, timeout=10, what="the reconciles the touches trigger")
    time.sleep(2)
    # Counted by the apiserver: a no-op apply would change no resourceVersion, yet it is a
    # write (and a hot loop when repeated).
    assert audit.writes(since=mark, namespace=namespace, name="quiet") == []
    assert audit.writes(since=mark, namespace=namespace, agent=None,
                        resource="webapps/status") == []


INVALID_IDS = [c.id for c in cases.INVALID]


@pytest.mark.parametrize("case", cases.INVALID, ids=INVALID_IDS)
def test_invalid_webapps_are_refused_at_apply_naming_the_field(
        cluster: Cluster, case: cases.Invalid) -> None:
    result = cluster.kubectl("apply", "-n", "default", "-f", "-",
                             input=yaml.safe_dump(cases.document(case)), check=False)
    assert result.returncode != 0
    assert case.field in result.stderr or case.field.replace("spec.", "") in result.stderr, \
        result.stderr
    assert cluster.get("webapp", case.name, "default") is None


def test_pods_are_admitted_under_the_restricted_pod_security_standard(
        cluster: Cluster, operator: Operator, namespace: str) -> None:
    cluster.kubectl("label", "namespace", namespace,
                    "pod-security.kubernetes.io/enforce=restricted")
    # Enforcement is really on: a privileged pod is refused in this namespace.
    bad = cluster.kubectl("run", "rogue", "-n", namespace, "--image=reconcile-lab/hello:v1",
                          "--privileged", check=False)
    assert bad.returncode != 0 and "violates PodSecurity" in bad.stderr
    cluster.apply(cases.webapp("strict", namespace, replicas=2, healthCheck={"path": "/healthz"}))
    webapp = _ready(cluster, "strict", namespace, timeout=60)
    assert webapp["status"]["readyReplicas"] == 2


def test_scale_subresource_serves_kubectl_scale_and_an_hpa(
        cluster: Cluster, operator: Operator, namespace: str) -> None:
    cluster.apply(cases.webapp("elastic", namespace, replicas=1))
    _ready(cluster, "elastic", namespace)
    scale = json.loads(cluster.kubectl("get", "--raw", f"/apis/reconcile-lab.dev/v1alpha1/"
                                       f"namespaces/{namespace}/webapps/elastic/scale").stdout)
    assert scale["status"]["selector"] == \
        "app.kubernetes.io/name=elastic,app.kubernetes.io/instance=elastic"
    cluster.kubectl("autoscale", "-n", namespace, "webapp/elastic", "--min=2", "--max=4",
                    "--cpu=50%")

    def hpa_can_scale() -> bool:
        hpa = cluster.get("hpa", "elastic", namespace) or {}
        for cond in hpa.get("status", {}).get("conditions", []):
            if cond["type"] == "AbleToScale" and cond["status"] == "True":
                return True
        return False

    wait_for(hpa_can_scale, timeout=60, interval=1, what="the HPA to read the scale subresource")
    # minReplicas=2 > 1: the HPA raises the WebApp through the scale subresource.
    wait_for(lambda: (cluster.get("webapp", "elastic", namespace) or {})
             .get("spec", {}).get("replicas") == 2, timeout=60, interval=1,
             what="the HPA to scale the WebApp")


def test_autoscale_is_an_hpa_of_the_operators_kept_against_hand_edits_and_removed_with_it(
        cluster: Cluster, operator: Operator, namespace: str) -> None:
    scale = {"minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}
    cluster.apply(cases.webapp("auto", namespace, autoscale=scale))
    webapp = _ready(cluster, "auto", namespace)
    hpa = wait_for(lambda: cluster.get("hpa", "auto", namespace), timeout=10,
                   what="the operator's HPA")
    assert render.controlled_by(hpa, webapp["metadata"]["uid"])
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "WebApp"
    # The HPA writes the WebApp's replicas (min 2 > 1), the operator carries it to the
    # Deployment.
    wait_for(lambda: _deployment(cluster, "auto", namespace)["spec"]["replicas"] == 2,
             timeout=60, interval=1, what="the HPA's count to reach the Deployment")
    # A hand edit of the autoscaler is put back.
    cluster.kubectl("patch", "hpa", "auto", "-n", namespace, "--type", "merge", "-p",
                    '{"spec":{"maxReplicas":9}}')
    wait_for(lambda: (cluster.get("hpa", "auto", namespace) or {}).get("spec", {})
             .get("maxReplicas") == 5, timeout=10, what="maxReplicas put back")
    # autoscale taken out of the spec: the autoscaler goes, the count stays the WebApp's.
    cluster.apply(cases.webapp("auto", namespace, replicas=1))
    wait_for(lambda: cluster.get("hpa", "auto", namespace) is None, timeout=10,
             what="the HPA to go with autoscale")
    wait_for(lambda: _deployment(cluster, "auto", namespace)["spec"]["replicas"] == 1,
             timeout=10, what="replicas from the WebApp again")


def test_a_same_named_child_it_does_not_own_is_left_alone(
        cluster: Cluster, operator: Operator, namespace: str) -> None:
    cluster.kubectl("create", "service", "clusterip", "taken", "--tcp=80:80", "-n", namespace)
    before = cluster.get("service", "taken", namespace)
    cluster.apply(cases.webapp("taken", namespace))

    def degraded() -> dict[str, Any] | None:
        webapp = cluster.get("webapp", "taken", namespace) or {}
        for cond in webapp.get("status", {}).get("conditions", []):
            if cond["type"] == "Degraded" and cond["status"] == "True":
                return dict(cond)
        return None

    cond = wait_for(degraded, timeout=20, what="a Degraded condition")
    assert cond["reason"] == "ChildConflict"
    after = cluster.get("service", "taken", namespace)
    assert after is not None and before is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    events = cluster.kubectl("get", "events", "-n", namespace,
                             "--field-selector=type=Warning", "-o", "json").stdout
    assert "ChildConflict" in events
    # Out of the way, as the condition's message says: the WebApp gets its own Service.
    cluster.kubectl("delete", "service", "taken", "-n", namespace)

    def own_service() -> bool:
        service = cluster.get("service", "taken", namespace) or {}
        webapp = cluster.get("webapp", "taken", namespace) or {}
        return render.controlled_by(service, webapp.get("metadata", {}).get("uid", ""))

    wait_for(own_service, timeout=20, what="the WebApp's own Service")
    wait_for(lambda: degraded() is None, timeout=20, what="Degraded to clear")


@pytest.mark.simulated
def test_restarting_the_operator_mid_work_loses_and_duplicates_nothing(
        cluster: Cluster, operator: Operator, namespace: str) -> None:
    names = [f"app-{i:02d}" for i in range(30)]
    operator.kill()
    text = "---\n".join(yaml.safe_dump(cases.webapp(n, namespace, replicas=1)) for n in names)
    cluster.apply(text)
    operator.start()
    wait_for(lambda: len(cluster.list("deployments", namespace)) >= 10, timeout=60,
             interval=0.05, what="some of the work to be done")
    operator.kill()  # SIGKILL in the middle of converging
    cluster.kubectl("scale", "-n", namespace, "webapp/app-00", "--replicas=2")  # while it is down
    operator.start()
    for name in names:
        _ready(cluster, name, namespace, timeout=60)
    deployments = cluster.list("deployments", namespace)
    assert sorted(d["metadata"]["name"] for d in deployments) == names
    assert sorted(s["metadata"]["name"] for s in cluster.list("services", namespace)) == names
    for d in deployments:
        assert len(d["metadata"]["ownerReferences"]) == 1
        # Written once (app-00 at most twice: it was scaled, perhaps before it existed):
        # a restart re-applied nothing.
        assert d["metadata"]["generation"] <= (2 if d["metadata"]["name"] == "app-00" else 1)
    replicasets = cluster.list("replicasets", namespace)
    assert len(replicasets) == len(names)  # no spurious rollouts
    assert cluster.get("deployment", "app-00", namespace)["spec"]["replicas"] == 2  # type: ignore[index]
