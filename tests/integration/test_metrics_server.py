"""metrics-server on the real node: `kubectl top`, a CPU-based HPA, and an APIService that never
outlives it (an unavailable one breaks API discovery for every client).

These run on the test run's kwok cluster with its real node. A busy loop started with
``kubectl exec`` makes a pod use CPU; metrics-server scrapes every 10 s and needs two scrapes
for a rate, so its first figure comes 10-20 s after the pod or metrics-server starts.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from reconcile_lab.cluster import kwok, metricsconfig, nodeconfig, nodeprocs, realnode
from tests.conftest import Cluster, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.realnode, pytest.mark.slow]

BUSY = "sh -c 'while :; do :; done' >/dev/null 2>&1 &"
METRICS = f"/apis/{metricsconfig.API_GROUP}/{metricsconfig.API_VERSION}"


def busy_deployment(namespace: str, *, cpu: str = "100m") -> dict[str, Any]:
    """The demo image with a CPU request (an HPA's utilization is usage over request), under
    the restricted pod security the kit's own pods follow."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "busy", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "busy"}},
            "template": {
                "metadata": {"labels": {"app": "busy"}},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                        "runAsGroup": 65532,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "hello", "image": "reconcile-lab/hello:v1",
                        "imagePullPolicy": "Never",
                        "resources": {"requests": {"cpu": cpu}, "limits": {"cpu": "500m"}},
                        "securityContext": {"allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]},
                                            "runAsNonRoot": True},
                    }],
                },
            },
        },
    }


def running_pod(cluster: Cluster, namespace: str) -> str:
    def running() -> str | None:
        for pod in cluster.list("pods", namespace, "app=busy"):
            if pod["status"].get("phase") == "Running" \
                    and not pod["metadata"].get("deletionTimestamp"):
                return str(pod["metadata"]["name"])
        return None

    name: str = wait_for(running, timeout=60, interval=0.3, what="a running busy pod")
    return name


def cpu_millicores(quantity: str) -> float:
    if quantity.endswith("n"):
        return int(quantity[:-1]) / 1e6
    if quantity.endswith("u"):
        return int(quantity[:-1]) / 1e3
    if quantity.endswith("m"):
        return float(quantity[:-1])
    return float(quantity) * 1000


def pod_cpu(cluster: Cluster, namespace: str, pod: str) -> float | None:
    """The pod's CPU in millicores as the apiserver serves it from metrics-server, or None."""
    got = cluster.kubectl("get", "--raw", f"{METRICS}/namespaces/{namespace}/pods/{pod}",
                          check=False)
    if got.returncode != 0:
        return None
    return sum(cpu_millicores(c["usage"]["cpu"]) for c in json.loads(got.stdout)["containers"])


def apiservice(cluster: Cluster) -> dict[str, Any] | None:
    return cluster.get("apiservices.apiregistration.k8s.io", metricsconfig.APISERVICE)


def available(cluster: Cluster) -> bool:
    conditions = ((apiservice(cluster) or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


def discovery_failure(cluster: Cluster, namespace: str) -> str | None:
    """Why the namespace controller cannot finish deleting ``namespace``: the API discovery
    it needs (every resource of every group, to delete them all) failed."""
    status = (cluster.get("namespace", namespace) or {}).get("status") or {}
    for condition in status.get("conditions") or []:
        if condition["type"] == "NamespaceDeletionDiscoveryFailure" \
                and condition["status"] == "True":
            return str(condition["message"])
    return None


def a_namespace_can_be_deleted(cluster: Cluster) -> bool:
    name = f"t-gone-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    return cluster.kubectl("delete", "namespace", name, "--timeout=30s",
                           check=False).returncode == 0


def say(message: str) -> None:
    print(f"[node] {message}")


@pytest.fixture(autouse=True)
def _needs_the_real_node(cluster: Cluster) -> None:
    if not realnode.is_running():
        pytest.fail("no real node in this cluster: see the fall-back message of cluster up "
                    "(run with -m 'not realnode' on a host that cannot have one)")


@pytest.fixture
def node_back(cluster: Cluster) -> Iterator[None]:
    """The test run's real node, with its metrics API, after a test that stops it."""
    yield
    kwok.up(progress=say, nodes="both")
    wait_for(lambda: available(cluster), timeout=30, what="the metrics API Available again")


def test_kubectl_top_shows_the_cpu_of_a_busy_pod_on_the_real_node(
        cluster: Cluster, namespace: str) -> None:
    assert available(cluster), apiservice(cluster)
    cluster.apply(busy_deployment(namespace))
    pod = running_pod(cluster, namespace)
    assert cluster.get("pod", pod, namespace)["spec"]["nodeName"] == nodeconfig.NODE_NAME  # type: ignore[index]
    cluster.kubectl("exec", "-n", namespace, pod, "--", "sh", "-c", BUSY)

    log = realnode.node_dir() / "logs" / "metrics-server.log"
    busy = wait_for(lambda: (cpu := pod_cpu(cluster, namespace, pod)) is not None and cpu > 200
                    and cpu, timeout=60, interval=1,
                    what=f"{pod} using CPU in the metrics API (see {log})")
    assert busy <= 600  # the limit is 500m; one sample may run a little over
    top = cluster.kubectl("top", "pod", "-n", namespace, pod, "--no-headers")
    name, cpu, _memory = top.stdout.split()
    assert name == pod and cpu_millicores(cpu) > 200, top.stdout


def test_an_hpa_on_cpu_utilization_scales_a_busy_deployment_out(
        cluster: Cluster, namespace: str) -> None:
    cluster.apply(busy_deployment(namespace))
    cluster.apply({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "busy", "namespace": namespace},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": "busy"},
                 "minReplicas": 1, "maxReplicas": 3,
                 "metrics": [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization",
                                               "averageUtilization": 50}}}]},
    })
    pod = running_pod(cluster, namespace)
    cluster.kubectl("exec", "-n", namespace, pod, "--", "sh", "-c", BUSY)

    # One pod at up to 500m of a 100m request: far over 50 %, so the HPA asks for its maximum.
    def scaled() -> bool:
        hpa = cluster.get("hpa", "busy", namespace) or {}
        return int((hpa.get("status") or {}).get("desiredReplicas") or 0) >= 2

    wait_for(scaled, timeout=90, interval=1, what="the HPA to scale the busy Deployment out")
    hpa = cluster.get("hpa", "busy", namespace) or {}
    current = hpa["status"]["currentMetrics"][0]["resource"]["current"]
    assert current["averageUtilization"] > 50, hpa["status"]
    wait_for(lambda: (cluster.get("deployment", "busy", namespace) or {})
             .get("spec", {}).get("replicas", 0) >= 2, timeout=30, what="more replicas")


def test_the_metrics_api_goes_before_metrics_server_and_comes_back_with_the_node(
        cluster: Cluster, node_back: None) -> None:
    assert available(cluster)
    pid = next(p for p in realnode.our_pids() if "/metrics-server " in nodeprocs.cmdline(p))
    stopping = threading.Thread(target=realnode.down, kwargs={"progress": say})
    stopping.start()
    # metrics-server seen gone, then its APIService seen still there: the wrong order.
    wrong = []
    while stopping.is_alive():
        dead = not nodeprocs.alive(pid)
        if dead and apiservice(cluster) is not None:
            wrong.append("metrics-server had stopped while its APIService was still registered")
        time.sleep(0.02)
    stopping.join()
    assert wrong == []
    assert not nodeprocs.alive(pid)
    assert apiservice(cluster) is None, "still registered, with nobody serving it"
    assert cluster.get("service", metricsconfig.SERVICE, metricsconfig.NAMESPACE) is None
    assert a_namespace_can_be_deleted(cluster)

    kwok.up(progress=say, nodes="both")
    wait_for(lambda: available(cluster), timeout=30, what="the metrics API Available again")
    assert a_namespace_can_be_deleted(cluster)


def test_a_killed_node_leaves_no_metrics_api_once_the_cluster_comes_back_without_it(
        cluster: Cluster, node_back: None) -> None:
    """A reboot kills metrics-server with everything else; its APIService stays in etcd. The
    next `cluster up` withdraws it before anything else, whatever the node left behind."""
    assert available(cluster)
    pids = realnode.our_pids()
    nodeprocs.signal_all(pids, signal.SIGKILL)
    assert nodeprocs.gone(pids, 10)
    # The hazard: registered, nobody serving it, and API discovery fails on it: a namespace
    # being deleted stays Terminating.
    wait_for(lambda: not available(cluster), timeout=40, what="the APIService unavailable")
    stuck = f"t-stuck-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", stuck)
    cluster.kubectl("delete", "namespace", stuck, "--wait=false")
    why = wait_for(lambda: discovery_failure(cluster, stuck), timeout=30,
                   what="the namespace controller's discovery to fail")
    assert metricsconfig.API_GROUP in why
    # Nor any record of it: a cluster without a running node has no metrics API, whatever the
    # node left behind.
    shutil.rmtree(realnode.node_dir() / "metrics-server")

    kwok.up(progress=say, nodes="kwok")
    assert apiservice(cluster) is None, "still registered, with nobody serving it"
    wait_for(lambda: cluster.get("namespace", stuck) is None, timeout=30,
             what=f"namespace {stuck} deleted once the metrics API is withdrawn")
