"""Drift-repair and spec-change latency of the operator on the embedded kwok cluster.

For each of N rounds: delete the Deployment, delete the Service, scale the Deployment by hand,
change the WebApp's spec; time from the API call returning to the repaired (or updated) child
being visible through the API, polled every 10 ms. Other WebApps sit in the cluster meanwhile.
The apiserver's audit log counts the operator's writes on the target's children meanwhile: each
hand edit needs one, and any beyond that is futile.

    make bench-drift                      # or: python bench/drift_repair.py --rounds 50 --apps 200

Prints its Markdown section; with --write [DIR], saves the raw times in DIR/data/drift_repair.json
and regenerates DIR/RESULTS.md (default: bench/).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "operator")]  # run as a script: bench/ is a package

from kubernetes import client, config  # noqa: E402

from bench import machines, results, sections  # noqa: E402
from bench.probing import free_port, say  # noqa: E402

POLL_S = 0.01
SETTLE_S = 3.0  # after the last round, for late writes to reach the audit log
EDITS_PER_ROUND = 4
GROUP, VERSION, PLURAL = "reconcile-lab.dev", "v1alpha1", "webapps"
NS = "bench"


def webapp(name: str, replicas: int = 1, image: str = "reconcile-lab/hello:v1") -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "WebApp",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"image": image, "replicas": replicas}}


def until(predicate: Callable[[], bool], timeout: float = 20.0) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError("no repair within the timeout")
        time.sleep(POLL_S)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--apps", type=int, default=100, help="other WebApps present")
    results.add_write_option(parser)
    args = parser.parse_args()

    os.environ.setdefault("RECONCILE_LAB_STATE", tempfile.mkdtemp(prefix="bench-state-"))
    from reconcile_lab.cluster import kwok, kwokconfig, probing
    from reconcile_lab.observe import audit

    started = time.monotonic()

    kubeconfig = kwok.up(progress=say, nodes="kwok")
    probing.kubectl(kubeconfig, "apply", "--server-side", "-f", str(REPO / "crds"))
    probing.kubectl(kubeconfig, "wait", "--for=condition=established", "-f", str(REPO / "crds"))
    probing.kubectl(kubeconfig, "create", "namespace", NS)
    config.load_kube_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    apps, core, custom = client.AppsV1Api(), client.CoreV1Api(), client.CustomObjectsApi()

    log = Path(os.environ["RECONCILE_LAB_STATE"]) / "operator.log"
    health, metrics_port = free_port(), free_port()  # a shared machine: no fixed ports
    with log.open("ab") as out:
        operator = subprocess.Popen(
            [sys.executable, "-m", "reconcile_lab", "operator", "run", "--kubeconfig",
             str(kubeconfig), "--metrics-port", str(metrics_port), "--health-port", str(health),
             "--log-format", "json"], stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO / "operator")}, start_new_session=True)
    try:
        until(lambda: _ok(f"http://127.0.0.1:{health}/healthz"), timeout=60)
        say(f"creating {args.apps} background WebApps")
        for i in range(args.apps):
            custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, webapp(f"bg-{i}"))
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, webapp("target", 2))
        until(lambda: len(apps.list_namespaced_deployment(NS).items) == args.apps + 1, 120)
        # Measure a settled operator, not the burst of creating the background apps.
        def all_ready() -> bool:
            listed: Any = custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)
            return all(_ready(w) for w in listed["items"])

        until(all_ready, 120)
        time.sleep(2)

        def dep() -> Any:
            return apps.read_namespaced_deployment("target", NS)

        times: dict[str, list[float]] = {"Deployment deleted → recreated": [],
                                         "Service deleted → recreated": [],
                                         "Deployment scaled by hand → reverted": [],
                                         "spec.image changed → Deployment updated": []}
        say(f"{args.rounds} rounds")
        writes = audit.AuditLog(kwokconfig.audit_log())
        mark = writes.mark()
        for r in range(args.rounds):
            uid = dep().metadata.uid
            apps.delete_namespaced_deployment("target", NS)

            def new_deployment(uid: str = uid) -> bool:
                return _exists_new(apps.read_namespaced_deployment, uid)

            times["Deployment deleted → recreated"].append(until(new_deployment))
            suid = str(core.read_namespaced_service("target", NS).metadata.uid)  # type: ignore[union-attr]
            core.delete_namespaced_service("target", NS)

            def new_service(suid: str = suid) -> bool:
                return _exists_new(core.read_namespaced_service, suid)

            times["Service deleted → recreated"].append(until(new_service))
            apps.patch_namespaced_deployment_scale("target", NS, {"spec": {"replicas": 7}})

            def reverted() -> bool:
                return bool(dep().spec.replicas == 2)

            times["Deployment scaled by hand → reverted"].append(until(reverted))
            image = f"reconcile-lab/hello:v{1 + (r + 1) % 2}"
            custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "target",
                                                  {"spec": {"image": image}})

            def updated(image: str = image) -> bool:
                return bool(dep().spec.template.spec.containers[0].image == image)

            times["spec.image changed → Deployment updated"].append(until(updated))
        time.sleep(SETTLE_S)
        child_writes = [w for w in writes.writes(since=mark, namespace=NS, name="target")
                        if w.resource in ("deployments", "services")]
    finally:
        os.killpg(operator.pid, signal.SIGTERM)
        operator.wait(timeout=30)
        kwok.down(progress=say)

    data = {"meta": machines.describe("bench/drift_repair.py", sys.argv[1:], started=started,
                                      versions={}),
            "apps": args.apps, "poll_s": POLL_S, "times": times,
            "writes": {"rounds": args.rounds, "needed": EDITS_PER_ROUND * args.rounds,
                       "operator_child_writes": len(child_writes),
                       "by_verb": dict(Counter(f"{w.verb} {w.resource}" for w in child_writes))}}
    print(sections.drift_repair(data))
    if args.write:
        results.save(args.write, "drift_repair", data)
        results.regenerate(args.write)
    return 0


def _ready(webapp: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in webapp.get("status", {}).get("conditions", []))


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - a fixed http URL
            return bool(r.status == 200)
    except OSError:
        return False


def _exists_new(read: Callable[[str, str], Any], old_uid: str) -> bool:
    try:
        return bool(read("target", NS).metadata.uid != old_uid)
    except client.exceptions.ApiException:
        return False


if __name__ == "__main__":
    sys.exit(main())
