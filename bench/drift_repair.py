"""Drift-repair and spec-change latency of the operator on the embedded kwok cluster.

For each of N rounds: delete the Deployment, delete the Service, scale the Deployment by hand,
change the WebApp's spec; time from the API call returning to the repaired (or updated) child
being visible through the API, polled every 10 ms. Other WebApps sit in the cluster meanwhile.

    make bench-drift                      # or: python bench/drift_repair.py --rounds 50 --apps 200

Writes a Markdown section to stdout and, with --write [DIR], into RESULTS.md there (default: bench/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config

from results import add_write_option, write_section  # bench/, next to this script

REPO = Path(__file__).resolve().parents[1]
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
        time.sleep(0.01)
    return time.monotonic() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--apps", type=int, default=100, help="other WebApps present")
    add_write_option(parser)
    args = parser.parse_args()

    os.environ.setdefault("RECONCILE_LAB_STATE", tempfile.mkdtemp(prefix="bench-state-"))
    sys.path.insert(0, str(REPO / "operator"))
    from reconcile_lab.cluster import kwok, probing

    say = lambda m: print(f"[bench] {m}", file=sys.stderr, flush=True)  # noqa: E731
    kubeconfig = kwok.up(progress=say, nodes="kwok")
    probing.kubectl(kubeconfig, "apply", "--server-side", "-f", str(REPO / "crds"))
    probing.kubectl(kubeconfig, "wait", "--for=condition=established", "-f", str(REPO / "crds"))
    probing.kubectl(kubeconfig, "create", "namespace", NS)
    config.load_kube_config(config_file=str(kubeconfig))
    apps, core, custom = client.AppsV1Api(), client.CoreV1Api(), client.CustomObjectsApi()

    log = Path(os.environ["RECONCILE_LAB_STATE"]) / "operator.log"
    health = 18080
    with log.open("ab") as out:
        operator = subprocess.Popen(
            [sys.executable, "-m", "reconcile_lab", "operator", "run", "--kubeconfig",
             str(kubeconfig), "--metrics-port", "18000", "--health-port", str(health),
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
        until(lambda: all(_ready(w) for w in custom.list_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL)["items"]), 120)
        time.sleep(2)

        def dep() -> Any:
            return apps.read_namespaced_deployment("target", NS)

        times: dict[str, list[float]] = {"Deployment deleted → recreated": [],
                                         "Service deleted → recreated": [],
                                         "Deployment scaled by hand → reverted": [],
                                         "spec.image changed → Deployment updated": []}
        say(f"{args.rounds} rounds")
        for r in range(args.rounds):
            uid = dep().metadata.uid
            apps.delete_namespaced_deployment("target", NS)
            times["Deployment deleted → recreated"].append(until(
                lambda uid=uid: _exists_new(apps.read_namespaced_deployment, uid)))
            suid = core.read_namespaced_service("target", NS).metadata.uid
            core.delete_namespaced_service("target", NS)
            times["Service deleted → recreated"].append(until(
                lambda suid=suid: _exists_new(core.read_namespaced_service, suid)))
            apps.patch_namespaced_deployment_scale("target", NS, {"spec": {"replicas": 7}})
            times["Deployment scaled by hand → reverted"].append(until(
                lambda: dep().spec.replicas == 2))
            image = f"reconcile-lab/hello:v{1 + (r + 1) % 2}"
            custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "target",
                                                  {"spec": {"image": image}})
            times["spec.image changed → Deployment updated"].append(until(
                lambda image=image: dep().spec.template.spec.containers[0].image == image))
    finally:
        os.killpg(operator.pid, signal.SIGTERM)
        operator.wait(timeout=30)
        kwok.down(progress=say)

    rows = [f"| {k} | {len(v)} | {statistics.median(v) * 1000:.0f} | {pct(v, .95) * 1000:.0f} | "
            f"{pct(v, .99) * 1000:.0f} | {max(v) * 1000:.0f} |" for k, v in times.items()]
    section = "\n".join([
        "## Drift repair and spec-change latency",
        "",
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; kwok cluster (real control plane, simulated pods); "
        f"{args.apps} other WebApps present; `python bench/drift_repair.py --rounds "
        f"{args.rounds} --apps {args.apps}`. Latency from the API call returning to the "
        "repaired child being visible, polled every 10 ms (so ±10 ms).",
        "",
        "| event | n | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ])
    print(section)
    print(json.dumps({k: sorted(v) for k, v in times.items()}), file=sys.stderr)
    if args.write:
        write_section(section, args.write)
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
