"""The operator as a pod on the real node, from the image `make docker-build` builds offline.

`make docker-build deploy IMG=...` builds the image (no registry), loads it into the real node's
containerd and applies the shipped least-privilege RBAC and Deployment (imagePullPolicy Never).
The pod must then reconcile a WebApp into real pods that answer, log no 403, and answer /metrics
through its Service; `make undeploy` removes it. A verb missing from deploy/rbac.yaml shows up
here as a Forbidden in the pod's log and a WebApp that never gets Ready.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from reconcile_lab.cluster import nodeconfig, providers, realnode
from reconcile_lab.declarative import permissions
from tests.conftest import Cluster, Operator, denials, wait_for
from tests.integration.test_makefile import make
from tests.integration.test_realnode import answering, ready_pods, webapp

pytestmark = [pytest.mark.cluster, pytest.mark.realnode, pytest.mark.slow]
IMG = "reconcile-lab/operator:in-cluster-test"
PORT = 30185  # beside test_realnode's NodePorts
NS = permissions.NAMESPACE
COLD_BUILD = 1800  # a fresh cache: mmdebstrap and pip download first


def _namespace_gone(cluster: Cluster) -> None:
    wait_for(lambda: cluster.get("namespace", NS) is None, timeout=120, interval=0.5,
             what=f"namespace {NS} to be deleted")


def operator_pod(cluster: Cluster) -> dict[str, Any] | None:
    selector = ",".join(f"{k}={v}" for k, v in permissions.LABELS.items())
    pods = [p for p in cluster.list("pods", NS, selector)
            if not p["metadata"].get("deletionTimestamp")]
    return pods[0] if len(pods) == 1 else None


def _ready(pod: dict[str, Any] | None) -> bool:
    statuses = (pod or {}).get("status", {}).get("containerStatuses") or [{}]
    return bool(statuses[0].get("ready"))


@pytest.fixture(scope="module")
def in_cluster(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[Cluster]:
    if request.config.getoption("cluster_provider") != "kwok":
        pytest.skip("the real node belongs to the kit's own kwok cluster")
    if not realnode.is_running():
        pytest.fail("no real node in this cluster: see the fall-back message of cluster up "
                    "(run with -m 'not realnode' on a host that cannot have one)")
    providers.remember("kwok")  # what `cluster up` records; make's commands find it so
    # Only the pod may reconcile here: the session's out-of-cluster operator pauses meanwhile.
    session_operator: Operator = request.getfixturevalue("operator")
    session_operator.kill(signal.SIGTERM)
    try:
        yield from _deployed(cluster)
    finally:
        session_operator.start()


def _deployed(cluster: Cluster) -> Iterator[Cluster]:
    # A clean start: test_deploy.py puts this namespace's pods on simulated nodes.
    make("undeploy")
    _namespace_gone(cluster)
    make("docker-build", "deploy", f"IMG={IMG}", timeout=COLD_BUILD)
    try:
        pod = wait_for(lambda: (p := operator_pod(cluster)) and _ready(p) and p, timeout=120,
                       interval=0.5, what="the operator's pod to be ready")
        assert pod["spec"]["nodeName"] == nodeconfig.NODE_NAME, "not on the real node"
        yield cluster
    finally:
        log = cluster.kubectl("logs", "-n", NS, f"deployment/{permissions.NAME}", "--tail=40",
                              check=False)
        print(f"the operator pod's log (last lines):\n{log.stdout}{log.stderr}")
        make("undeploy")


def test_the_image_runs_unprivileged_and_is_never_pulled(in_cluster: Cluster) -> None:
    pod = operator_pod(in_cluster)
    assert pod is not None
    (container,) = pod["spec"]["containers"]
    assert (container["image"], container["imagePullPolicy"]) == (IMG, "Never")
    (status,) = pod["status"]["containerStatuses"]
    assert status["restartCount"] == 0, status
    uid = in_cluster.kubectl("exec", "-n", NS, pod["metadata"]["name"], "--", "id", "-u")
    assert uid.stdout.strip() == "65532"


def test_the_pod_reconciles_a_webapp_with_the_shipped_rbac(in_cluster: Cluster,
                                                          namespace: str) -> None:
    cluster = in_cluster
    cluster.apply(webapp("hello", namespace, port=PORT, replicas=2))
    wait_for(lambda: cluster.get("deployment", "hello", namespace)
             and cluster.get("service", "hello", namespace), timeout=60,
             what="the operator pod to create the Deployment and the Service")
    pods = ready_pods(cluster, namespace, "hello", 2)
    answering(PORT, {p["metadata"]["name"] for p in pods})
    ready = cluster.kubectl("wait", "-n", namespace, "webapp/hello", "--for=condition=Ready",
                            "--timeout=60s", timeout=90, check=False)

    log = cluster.kubectl("logs", "-n", NS, f"deployment/{permissions.NAME}").stdout
    denied = denials(log)
    assert not denied, "the shipped RBAC lacks a permission:\n" + "\n".join(denied[:3])
    assert ready.returncode == 0, f"WebApp hello is not Ready: {ready.stderr}"
    assert any(_about(line, namespace, "hello") for line in log.splitlines()), \
        f"no line of the pod's log is about {namespace}/hello:\n{log[-2000:]}"

    # The pod's own metrics, through its Service: it saw this WebApp's replicas ready.
    def ready_replicas() -> float | None:
        text = cluster.kubectl("get", "--raw", f"/api/v1/namespaces/{NS}/services/"
                               f"{permissions.NAME}-metrics:metrics/proxy/metrics").stdout
        for line in text.splitlines():
            if line.startswith("reconcile_lab_ready_replicas{") and \
                    f'namespace="{namespace}"' in line and 'app="hello"' in line:
                return float(line.rsplit(" ", 1)[1])
        return None

    assert wait_for(lambda: ready_replicas() == 2, timeout=30, interval=0.5,
                    what="the pod's /metrics to report 2 ready replicas of hello")


def _about(line: str, namespace: str, name: str) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and event.get("namespace") == namespace \
        and event.get("name") == name
