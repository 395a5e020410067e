"""What a participant's cluster, Docker engine and Prometheus look like now, for the checks.

A thin I/O adapter: it runs the kit's ``kubectl`` and the ``docker`` CLI (the same commands a
participant would use to look), asks Prometheus one query, and returns an
``observed.State``. It reads only; it decides nothing.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from reconcile_lab import ports, spec
from reconcile_lab.cluster import probing
from reconcile_lab.imperative import containers
from reconcile_lab.workshop import delivery, exercises
from reconcile_lab.workshop.observed import INSTANCE, LABEL_APP, State

WHO = ("--show-managed-fields",)  # who wrote a child (exercise 10): kubectl hides it otherwise


def _kubectl(kubeconfig: Path, *args: str) -> Any:
    result = probing.kubectl(kubeconfig, *args, "-o", "json", timeout=30)
    if result.returncode != 0:
        if "NotFound" in result.stderr or "not found" in result.stderr:
            return None
        raise probing.ClusterError(result.stderr.strip().splitlines()[-1] if result.stderr
                                   else f"kubectl {' '.join(args)} failed")
    return json.loads(result.stdout)


def _kubernetes(kubeconfig: Path, app: str, namespace: str) -> dict[str, Any]:
    ns = ["-n", namespace]
    selector = ["-l", f"{INSTANCE}={app}"]
    try:
        return {
            "webapp": _kubectl(kubeconfig, "get", "webapp", app, *ns),
            "deployment": _kubectl(kubeconfig, "get", "deployment", app, *ns, *WHO),
            "service": _kubectl(kubeconfig, "get", "service", app, *ns, *WHO),
            "replicasets": tuple((_kubectl(kubeconfig, "get", "replicasets", *ns, *selector)
                                  or {}).get("items", [])),
            "pods": tuple((_kubectl(kubeconfig, "get", "pods", *ns, *selector) or {})
                          .get("items", [])),
            "events": tuple((_kubectl(kubeconfig, "get", "events", *ns) or {}).get("items", [])),
        }
    except (probing.ClusterError, subprocess.TimeoutExpired, ValueError) as e:
        return {"kube_error": str(e)[:300]}


def _admission(kubeconfig: Path, app: str, namespace: str) -> dict[str, Any]:
    """The namespace's labels, the policy bindings installed, and what the apiserver answers
    a server-side dry run of a WebApp from an untrusted image (nothing is stored)."""
    probe = {"apiVersion": spec.API_VERSION, "kind": spec.KIND,
             "metadata": {"name": f"{app}-admission-check"},
             "spec": {"image": exercises.UNTRUSTED_IMAGE}}
    try:
        ns = _kubectl(kubeconfig, "get", "namespace", namespace) or {}
        bindings = _kubectl(kubeconfig, "get", "validatingadmissionpolicybindings") or {}
        dry = subprocess.run([*probing.kubectl_args(kubeconfig), "create", "--dry-run=server",
                              "-n", namespace, "-f", "-"], input=json.dumps(probe),
                             env=probing.kubectl_env(), capture_output=True, text=True,
                             timeout=30, check=False)
    except (probing.ClusterError, subprocess.TimeoutExpired, ValueError) as e:
        return {"kube_error": str(e)[:300]}
    return {"admission": {
        "labels": (ns.get("metadata") or {}).get("labels") or {},
        "bindings": sorted(b["metadata"]["name"] for b in bindings.get("items", [])),
        "accepted": dry.returncode == 0,
        "answer": (dry.stderr or dry.stdout).strip()[-500:]}}


def _leases(kubeconfig: Path) -> dict[str, Any]:
    """Every node's heartbeat: who holds its Lease (exercise 14 takes one away)."""
    try:
        found = _kubectl(kubeconfig, "get", "leases", "-n", "kube-node-lease") or {}
    except (probing.ClusterError, subprocess.TimeoutExpired, ValueError) as e:
        return {"kube_error": str(e)[:300]}
    return {"leases": tuple(found.get("items", []))}


def _autoscaler(kubeconfig: Path, app: str, namespace: str) -> dict[str, Any]:
    """The app's HorizontalPodAutoscaler (exercise 15), its status included."""
    try:
        return {"autoscaler": _kubectl(kubeconfig, "get", "hpa", app, "-n", namespace)}
    except (probing.ClusterError, subprocess.TimeoutExpired, ValueError) as e:
        return {"kube_error": str(e)[:300]}


def _project(kubeconfig: Path, namespace: str) -> dict[str, Any]:
    """The WebApps of exercise 13's project in the namespace, and the twin's apps of it."""
    selector = f"{delivery.PROJECT_LABEL}={delivery.PROJECT}"
    try:
        found = _kubectl(kubeconfig, "get", "webapps", "-n", namespace, "-l", selector) or {}
    except (probing.ClusterError, subprocess.TimeoutExpired, ValueError) as e:
        return {"kube_error": str(e)[:300]}
    label = f"label={containers.LABEL_PROJECT}={delivery.PROJECT}"
    apps: set[str] = set()
    for listing in (_docker("ps", "-a", "--filter", label, "--format", "{{json .Labels}}"),
                    _docker("network", "ls", "--filter", label, "--format",
                            "{{json .Labels}}")):
        for line in listing.stdout.splitlines():
            labels = dict(kv.split("=", 1) for kv in json.loads(line).split(",") if "=" in kv)
            if labels.get(containers.LABEL_NAMESPACE, containers.DEFAULT_NAMESPACE) == namespace:
                apps.add(labels.get(containers.LABEL_APP, ""))
    return {"project": tuple(found.get("items", [])), "project_docker": tuple(sorted(apps))}


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=30,
                          check=False)


def _docker_side(app: str, namespace: str) -> dict[str, Any]:
    try:
        ids = _docker("ps", "-aq", "--filter", f"label={LABEL_APP}={app}")
        if ids.returncode != 0:
            return {"docker_error": ids.stderr.strip()[:300]}
        owned = [c for c in (json.loads(_docker("inspect", *ids.stdout.split()).stdout)
                             if ids.stdout.split() else [])
                 if containers.owned((c.get("Config") or {}).get("Labels"), app, namespace)]
        network = _docker("network", "inspect", containers.docker_name(app, namespace))
        ours = network.returncode == 0 and any(
            containers.owned(n.get("Labels"), app, namespace) for n in json.loads(network.stdout))
    except (OSError, subprocess.TimeoutExpired, ValueError) as e:
        return {"docker_error": str(e)[:300]}
    return {"containers": tuple(owned), "network": ours}


def _operator_running(kind: str | None) -> bool | None:
    """``kind``: the background operator's (``command.running_kind``); else its health port."""
    if kind is not None:
        return True
    try:
        # ports.url is always http://127.0.0.1:PORT…, never file: or a custom scheme.
        url = ports.url(ports.OPERATOR_HEALTH, "/healthz")
        with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310
            return bool(r.status == 200)
    except OSError:
        return False


def _fault_proxy() -> dict[str, Any] | None:
    from reconcile_lab.faults import command, proxy

    try:
        return proxy.send(command.control_path(), "status")
    except proxy.ProxyError:
        return None


def prometheus_samples(url: str, app: str) -> tuple[tuple[dict[str, str], float], ...] | None:
    if not url.startswith(("http://", "https://")):
        return None
    query = urllib.parse.urlencode({"query": f'reconcile_lab_ready_replicas{{app="{app}"}}'})
    try:
        # The scheme was checked above: only http(s), never file: or a custom handler.
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/v1/query?{query}",  # noqa: S310
                                    timeout=3) as r:
            body = json.loads(r.read())
    except (OSError, ValueError):
        return None
    return tuple((dict(s.get("metric", {})), float(s.get("value", [0, "0"])[1]))
                 for s in body.get("data", {}).get("result", []))


def state(app: str, namespace: str, *, kubeconfig: Path | None = None,
          prometheus: str | None = None, need: tuple[str, ...] = (
              "kubernetes", "docker", "operator", "prometheus")) -> State:
    """Observe what the checks need (``need`` skips the slow parts a check does not use)."""
    prometheus = prometheus or ports.url(ports.PROMETHEUS)
    parts: dict[str, Any] = {}
    if "kubernetes" in need:
        if kubeconfig is None:
            from reconcile_lab.cluster import providers

            kubeconfig = providers.kubeconfig()
        if not kubeconfig.is_file():
            parts["kube_error"] = f"no kubeconfig at {kubeconfig}"
        else:
            parts.update(_kubernetes(kubeconfig, app, namespace))
            if "policy" in need:
                parts.update(_admission(kubeconfig, app, namespace))
            if "project" in need:
                parts.update(_project(kubeconfig, namespace))
            if "nodes" in need:
                parts.update(_leases(kubeconfig))
            if "autoscaler" in need:
                parts.update(_autoscaler(kubeconfig, app, namespace))
    if "docker" in need:
        parts.update(_docker_side(app, namespace))
    if "operator" in need:
        from reconcile_lab.declarative import command

        parts["operator_kind"] = command.running_kind()
        parts["operator_running"] = _operator_running(parts["operator_kind"])
    if "traffic" in need:
        from reconcile_lab.compare import traffic

        parts["traffic"] = traffic.read_record(app, namespace)
    if "faults" in need:
        parts["fault_proxy"] = _fault_proxy()
    if "prometheus" in need:
        parts["prometheus"] = prometheus_samples(prometheus, app)
    return State(app=app, namespace=namespace, prometheus_url=prometheus, **parts)
