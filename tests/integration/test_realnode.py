"""The real node: a WebApp's pods are real containers that answer, crash, restart and come back.

These run on the test run's kwok cluster with its real node (``--cluster-nodes auto`` turns it
on when a test marked ``realnode`` is selected). HTTP goes through a NodePort on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from reconcile_lab.cluster import nodeconfig, nodeinfo, realnode
from tests.conftest import Cluster, Operator, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.realnode, pytest.mark.slow]

# Inside nodeconfig.NODE_PORT_RANGE, far below kwokctl's ports; one per test, because a deleted
# namespace's Service may hold its port a little longer.
PORTS = {"answer": 30180, "faults": 30181, "dns": 30182, "api": 30183}


@pytest.fixture(autouse=True)
def _needs_the_real_node(cluster: Cluster) -> None:
    # A failure, not a skip: a host that cannot run the real node leaves these unproven, and
    # says so (`-m "not realnode"` leaves them out on purpose).
    if not realnode.is_running():
        pytest.fail("no real node in this cluster: see the fall-back message of cluster up "
                    "(run with -m 'not realnode' on a host that cannot have one)")


def webapp(name: str, namespace: str, *, port: int, replicas: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "reconcile-lab.dev/v1alpha1", "kind": "WebApp",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": "reconcile-lab/hello:v1", "replicas": replicas, "port": 8080,
                 "healthCheck": {"path": "/healthz", "periodSeconds": 1},
                 "service": {"type": "NodePort", "nodePort": port}},
    }


def answer(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
            body: dict[str, Any] = json.loads(r.read())
            return body
    except (OSError, ValueError):
        return None


def answering(port: int, pods: set[str], *, timeout: float = 30) -> None:
    """Every one of ``pods`` has answered through the Service."""
    seen: set[str] = set()

    def all_seen() -> bool:
        if (body := answer(port)) is not None:
            seen.add(body["hostname"])
        return pods <= seen

    wait_for(all_seen, timeout=timeout, interval=0.02, what=f"answers from {sorted(pods)}")


def ready_pods(cluster: Cluster, namespace: str, name: str, count: int) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        pods = [p for p in cluster.list("pods", namespace, f"reconcile-lab/app={name}")
                if not p["metadata"].get("deletionTimestamp")
                and any(c["type"] == "Ready" and c["status"] == "True"
                        for c in p["status"].get("conditions", []))]
        return pods if len(pods) == count else None

    pods: list[dict[str, Any]] = wait_for(ready, timeout=60, interval=0.2,
                                          what=f"{count} ready pods of {name}")
    return pods


def container_pid(pod: dict[str, Any]) -> int:
    """The host PID of the pod's app container (the helper ``compare`` kills with, too)."""
    pid = nodeinfo.container_pid(pod)
    assert pid is not None, f"no running container of {pod['metadata']['name']} on this host"
    return pid


def test_a_webapp_runs_as_real_containers_that_answer_log_and_exec(
        cluster: Cluster, operator: Operator, namespace: str) -> None:
    port = PORTS["answer"]
    cluster.apply(webapp("hello", namespace, port=port))
    pods = ready_pods(cluster, namespace, "hello", 3)
    assert {p["spec"]["nodeName"] for p in pods} == {nodeconfig.NODE_NAME}
    for pod in pods:
        pid = container_pid(pod)
        # The demo app, seen from the host: its entry point (which stops on SIGTERM) and the
        # HTTP server it runs.
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[:2] == [b"/bin/sh", b"/serve"], cmdline
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert any(Path(f"/proc/{c}/cmdline").read_bytes().startswith(b"httpd")
                   for c in children), children
    answering(port, {p["metadata"]["name"] for p in pods})

    first = pods[0]["metadata"]["name"]
    exec_ = cluster.kubectl("exec", "-n", namespace, first, "--", "hostname")
    assert exec_.stdout.strip() == first
    cluster.kubectl("exec", "-n", namespace, first, "--", "sh", "-c",
                    "echo written-to-stdout > /proc/1/fd/1")
    wait_for(lambda: "written-to-stdout" in cluster.kubectl("logs", "-n", namespace,
                                                             first).stdout,
             timeout=10, what="the line in kubectl logs")


def test_killed_deleted_and_removed_instances_come_back_and_answer(
        cluster: Cluster, operator: Operator, namespace: str) -> None:
    port = PORTS["faults"]
    cluster.apply(webapp("hello", namespace, port=port))
    pods = ready_pods(cluster, namespace, "hello", 3)
    answering(port, {p["metadata"]["name"] for p in pods})

    # kill -9 of the app's process on the host: the same pod restarts it
    victim = pods[0]
    name = victim["metadata"]["name"]
    os.kill(container_pid(victim), signal.SIGKILL)

    def restarted() -> bool:
        pod = cluster.get("pod", name, namespace) or {}
        statuses = pod.get("status", {}).get("containerStatuses") or [{}]
        return statuses[0].get("restartCount") == 1 and statuses[0].get("ready") is True

    wait_for(restarted, timeout=30, interval=0.2, what=f"{name} restarted once and ready")
    answering(port, {name})

    # a deleted pod is replaced by a new one that answers
    gone = pods[1]["metadata"]["name"]
    cluster.kubectl("delete", "pod", "-n", namespace, gone, "--wait=false")
    now = ready_pods(cluster, namespace, "hello", 3)
    fresh = {p["metadata"]["name"] for p in now} - {p["metadata"]["name"] for p in pods}
    assert len(fresh) == 1
    answering(port, fresh)

    # the operator recreates a deleted Deployment, and the app answers again
    cluster.kubectl("delete", "deployment", "-n", namespace, "hello", "--wait=false")
    before = {p["metadata"]["name"] for p in now}

    def replaced() -> set[str] | None:
        names = {p["metadata"]["name"] for p in ready_pods(cluster, namespace, "hello", 3)}
        return names if not names & before else None

    again = wait_for(replaced, timeout=60, interval=0.5, what="pods of a recreated Deployment")
    answering(port, again)


def test_pods_find_a_webapp_by_its_service_name(cluster: Cluster, operator: Operator,
                                                namespace: str) -> None:
    cluster.apply(webapp("hello", namespace, port=PORTS["dns"], replicas=1))
    pod = ready_pods(cluster, namespace, "hello", 1)[0]["metadata"]["name"]
    service = wait_for(lambda: cluster.get("service", "hello", namespace), what="the Service")
    looked_up = cluster.kubectl("exec", "-n", namespace, pod, "--", "nslookup", "hello",
                                check=False)
    assert service["spec"]["clusterIP"] in looked_up.stdout, looked_up.stdout + looked_up.stderr
    fetched = cluster.kubectl("exec", "-n", namespace, pod, "--", "wget", "-q", "-O", "-",
                              "http://hello:8080/")
    assert json.loads(fetched.stdout)["hostname"] == pod  # by name, through the ClusterIP


@pytest.mark.simulated
def test_a_namespace_that_opts_in_runs_its_pods_on_simulated_nodes(
        cluster: Cluster, operator: Operator, namespace: str) -> None:
    cluster.apply({**webapp("many", namespace, port=PORTS["answer"], replicas=5),
                   "spec": {"image": "reconcile-lab/hello:v1", "replicas": 5}})
    pods = ready_pods(cluster, namespace, "many", 5)
    nodes = {p["spec"]["nodeName"] for p in pods}
    assert nodeconfig.NODE_NAME not in nodes, nodes
    listed = cluster.kubectl("get", "nodes", "-l", nodeconfig.FAKE_NODE_LABEL, "-o", "json")
    simulated = {n["metadata"]["name"] for n in json.loads(listed.stdout)["items"]}
    assert nodes <= simulated


def test_pods_reach_the_apiserver_as_kubernetes_default(cluster: Cluster, operator: Operator,
                                                        namespace: str) -> None:
    cluster.apply(webapp("client", namespace, port=PORTS["api"], replicas=1))
    pod = ready_pods(cluster, namespace, "client", 1)[0]["metadata"]["name"]
    # Plain HTTP to the TLS port: only the apiserver's Go TLS server answers exactly this
    # (stdin stays open a little: busybox nc would otherwise hang up before the answer).
    talked = cluster.kubectl("exec", "-n", namespace, pod, "--", "sh", "-c",
                             "(printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n'; sleep 2) | "
                             "nc -w 3 kubernetes.default.svc.cluster.local 443", check=False)
    assert "Client sent an HTTP request to an HTTPS server" in talked.stdout, \
        talked.stdout + talked.stderr
    # ... and an in-cluster client that checks the certificate against the Service's IP passes.
    sans = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                           str(cluster.kubeconfig.parent / "pki" / "admin.crt")],
                          capture_output=True, text=True, check=True).stdout
    cluster_ip = cluster.get("service", "kubernetes", "default")["spec"]["clusterIP"]  # type: ignore[index]
    assert f"IP Address:{cluster_ip}" in sans, sans
