"""metrics-server's API in the cluster: registered once metrics-server answers, withdrawn first.

An APIService whose server does not answer breaks API discovery for every client (kubectl, the
operator, the namespace controller: namespaces stay Terminating), so it exists only while
metrics-server runs. ``realnode`` registers it last and withdraws it first; ``kwok.up``
withdraws it when a cluster comes back without the node (after a reboot, say). What is
registered is ``metricsconfig``'s. An I/O adapter: it runs the kit's kubectl.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from reconcile_lab.cluster import metricsconfig, nodeprocs, probing
from reconcile_lab.cluster.probing import ClusterError, Progress

WAIT = 30.0  # seconds the apiserver has to find metrics-server answering


def _record(workdir: Path) -> Path:
    """The cluster the API was registered with: a withdrawal goes there."""
    return workdir / "registered.json"


def available(kubeconfig: Path) -> tuple[bool, str]:
    """Whether the apiserver serves metrics.k8s.io through metrics-server, and why not."""
    result = probing.kubectl(kubeconfig, "get", "apiservices.apiregistration.k8s.io",
                             metricsconfig.APISERVICE, "-o", "json")
    if result.returncode != 0:
        return False, result.stderr.strip() or "no answer"
    for condition in json.loads(result.stdout).get("status", {}).get("conditions", []):
        if condition.get("type") == "Available":
            return (condition.get("status") == "True",
                    f"{condition.get('reason')}: {condition.get('message')}")
    return False, "the apiserver has not checked it yet"


def register(kubeconfig: Path, pki: Path, workdir: Path,
             proc: subprocess.Popen[bytes] | None) -> None:
    """The Service and APIService, then wait until the apiserver finds metrics-server (``proc``,
    while it runs) answering. On failure they are withdrawn again, and the error says why."""
    manifest = {"apiVersion": "v1", "kind": "List",
                "items": metricsconfig.api_objects(ca_crt=(pki / "ca.crt").read_bytes())}
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "api.json"
    path.write_text(json.dumps(manifest, indent=2))
    _record(workdir).write_text(json.dumps({"kubeconfig": str(kubeconfig)}) + "\n")
    applied = probing.kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts",
                              "--field-manager=reconcile-lab", "-f", str(path))
    why = applied.stderr.strip()
    deadline = time.monotonic() + WAIT
    while applied.returncode == 0 and time.monotonic() < deadline \
            and (proc is None or proc.poll() is None):
        ok, why = available(kubeconfig)
        if ok:
            return
        time.sleep(0.2)
    withdraw(kubeconfig)
    log = workdir.parent / "logs" / "metrics-server.log"
    raise ClusterError(
        f"the apiserver does not reach metrics-server: APIService {metricsconfig.APISERVICE} is "
        f"not Available within {WAIT:.0f}s ({why}); it was removed again so that API discovery "
        f"keeps working. Last lines of {log}:\n{nodeprocs.tail(log)}\n"
        "  fix: reconcile-lab cluster down, then reconcile-lab cluster up; if it happens again, "
        f"the apiserver's side is in {kubeconfig.parent / 'logs' / 'kube-apiserver.log'}.")


def withdraw(kubeconfig: Path) -> bool:
    """Delete the metrics APIService and its Service (harmless when absent); whether the
    apiserver answered. Never waits long: a cluster that is gone has no discovery to break."""
    try:
        result = probing.kubectl(
            kubeconfig, "delete", f"apiservices.apiregistration.k8s.io/{metricsconfig.APISERVICE}",
            f"services/{metricsconfig.SERVICE}", "-n", metricsconfig.NAMESPACE,
            "--ignore-not-found", "--request-timeout=5s", timeout=15)
    except (ClusterError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def withdraw_recorded(workdir: Path, *, progress: Progress) -> None:
    """Withdraw the API from the cluster it was registered with, if any; say so when that
    cluster answers and still could not be told."""
    try:
        kubeconfig = Path(json.loads(_record(workdir).read_text())["kubeconfig"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    if not kubeconfig.is_file() or withdraw(kubeconfig):
        return
    server = probing.server_of(kubeconfig)
    if server is not None and probing.apiserver_ready(server):  # else the cluster is down too
        progress(f"could not remove APIService {metricsconfig.APISERVICE} (see "
                 f"`reconcile-lab cluster kubectl -- get apiservice`); until it is gone, "
                 "namespaces cannot be deleted. The next cluster up removes it first.")
