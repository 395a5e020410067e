"""Questions about the cluster's nodes and what runs on them, answered from the API and /proc.

``realnode`` starts and stops the real node; this module only looks: whether that node is
Ready, which host process a pod's container is (what a fault drill kills), and one line per
node for ``cluster status``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconcile_lab.cluster import hostchanges, nodeconfig, nodeprocs, probing


def node_ready(kubeconfig: Path) -> bool:
    """Whether the real node reports Ready (False also when the apiserver does not answer)."""
    result = probing.kubectl(kubeconfig, "get", "node", nodeconfig.NODE_NAME, "-o", "json")
    if result.returncode != 0:
        return False
    return _ready(json.loads(result.stdout))


def _ready(node: Mapping[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def container_pid(pod: Mapping[str, Any], index: int = 0) -> int | None:
    """The host PID of the main process of a pod's container on this node (what ``kill -9``
    from the host hits), found through the container's cgroup: the one process there whose
    parent is outside it (the shim). None: the container does not run (yet)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if len(statuses) <= index or "://" not in str(statuses[index].get("containerID", "")):
        return None
    container_id = str(statuses[index]["containerID"]).split("://", 1)[1]
    for top in hostchanges.cgroup_dirs():
        for cgroup in top.rglob(f"*{container_id}*"):
            try:
                procs = {int(p) for p in (cgroup / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                continue
            main = sorted(p for p in procs if nodeprocs.parent(p) not in procs)
            if main:
                return main[0]
    return None


def describe_nodes(kubeconfig: Path) -> str:
    """One line per node: name, real or simulated, Ready or not."""
    result = probing.kubectl(kubeconfig, "get", "nodes", "-o", "json")
    if result.returncode != 0:
        return "unknown (the apiserver does not answer)"
    lines = []
    for node in json.loads(result.stdout).get("items", []):
        meta = node["metadata"]
        fake = (meta.get("annotations") or {}).get(nodeconfig.FAKE_KEY) == nodeconfig.FAKE_VALUE
        ready = _ready(node)
        kind = "simulated (kwok)" if fake else "real (kubelet + containerd)"
        lines.append(f"{meta['name']}: {kind}, {'Ready' if ready else 'NotReady'}")
    return "; ".join(lines) or "none"
