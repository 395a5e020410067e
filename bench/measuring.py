"""One measured run of the convergence harness: a fresh kwok cluster, one contender, N apps
from nothing; at the largest N the operator's run goes on with idle writes and latencies.

Starts and stops clusters and processes; formats nothing (``sections.py`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import contenders, watching
from bench.probing import apiserver_writes, delta, proc_stats, say, until, until_all

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO / "bench" / "peers"
NS = "bench"
CONCURRENCY = 32  # the operator's worker threads (RECONCILE_LAB_WORKERS)


def run_one(contender: str, n: int, *, repeat: int, logdir: Path, extras: bool,
            args: argparse.Namespace) -> dict[str, Any]:
    """A fresh cluster, one contender, N apps from nothing; extras: idle, latency, profile."""
    from kubernetes import client, config

    from reconcile_lab.cluster import kwok, probing

    quiet: Callable[[str], None] = lambda m: None  # noqa: E731
    kubeconfig = kwok.up(progress=quiet, nodes="kwok")
    # kwok's nodes take 110 pods each, like kubelet's default: enough nodes for N pods.
    kwok._kwokctl("scale", "node", "--replicas", str(max(kwok.NODES, n // 100 + 2)))
    result: dict[str, Any] = {"contender": contender, "n": n, "repeat": repeat}
    ctl: contenders.Contender | None = None
    watches: list[watching.Watch] = []
    try:
        crds = [str(REPO / "crds")]
        if contender == "sample-controller":
            crds.append(str(contenders.sample_controller_crd()))
        for crd in crds:
            probing.kubectl(kubeconfig, "apply", "--server-side", "-f", crd)
            probing.kubectl(kubeconfig, "wait", "--for=condition=established", "-f", crd,
                            timeout=60)
        probing.kubectl(kubeconfig, "create", "namespace", NS)
        config.load_kube_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        apps, core, custom = client.AppsV1Api(), client.CoreV1Api(), client.CustomObjectsApi()
        _warm_up(kubeconfig, core)
        ctl = contenders.Contender(contender, kubeconfig, logdir)
        ctl.start()

        stream: dict[str, Any] = {"_preload_content": False, "watch": True, "timeout_seconds": 3600}
        deployments = watching.Watch(
            lambda **kw: apps.list_namespaced_deployment(NS, **stream, **kw),
            watching.deployment_ready)
        services = watching.Watch(lambda **kw: core.list_namespaced_service(NS, **stream, **kw),
                                  lambda _: True)
        owners: watching.Watch | None = None
        if contender in ("operator", "naive-kopf"):
            owners = watching.Watch(lambda **kw: custom.list_namespaced_custom_object(
                "reconcile-lab.dev", "v1alpha1", NS, "webapps", **stream, **kw), watching.webapp_ready)
        elif contender == "sample-controller":
            owners = watching.Watch(lambda **kw: custom.list_namespaced_custom_object(
                "samplecontroller.k8s.io", "v1alpha1", NS, "foos", **stream, **kw), watching.foo_ready)
        watches = [w for w in (deployments, services, owners) if w is not None]

        kind = {"raw": "pairs", "sample-controller": "foos"}.get(contender, "webapps")
        loader = subprocess.Popen(
            [sys.executable, str(PEERS / "raw_client.py"), "--kubeconfig", str(kubeconfig),
             "--namespace", NS, "--count", str(n), "--kind", kind,
             "--concurrency", str(CONCURRENCY)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": f"{REPO / 'operator'}:{REPO}"})
        assert loader.stdin is not None and loader.stdout is not None
        until(lambda: loader.stdout.readline().strip() == "ready", 60, "load generator")  # type: ignore[union-attr]
        writes_before = apiserver_writes(kubeconfig)
        own_before = ctl.writes()
        proc_before = proc_stats(ctl.pid) if ctl.pid else {}
        profiler = _profile(ctl.pid, logdir / f"profile-{contender}-{n}.txt") \
            if args.profile and ctl.pid and contender == "operator" and extras else None

        t0 = time.monotonic()
        loader.stdin.write("go\n")
        loader.stdin.flush()
        loaded = json.loads(loader.stdout.readline())
        loader.wait()
        result["load_s"] = loaded["seconds"]
        result["load_errors"] = loaded["errors"]

        with_service = contender != "sample-controller"
        until_all(lambda: min(len(deployments.added),
                              len(services.added) if with_service else n), n, "children")
        result["children_s"] = max([*deployments.added.values(),
                                    *(services.added.values() if with_service else [])]) - t0
        until_all(lambda: len(deployments.readied), n, "ready Deployments")
        result["deployments_ready_s"] = max(deployments.readied.values()) - t0
        if owners is not None and contender != "naive-kopf":  # the naive one reports nothing
            until_all(lambda: len(owners.readied), n, "ready owners")
            result["owners_ready_s"] = max(owners.readied.values()) - t0
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=60)
        time.sleep(args.settle)  # late status writes belong to convergence
        result["writes"] = delta(apiserver_writes(kubeconfig), writes_before)
        result["own_writes"] = delta(ctl.writes(), own_before)
        if ctl.pid:
            after = proc_stats(ctl.pid)
            result["rss_mb"], result["cpu_s"] = after["rss_mb"], after["cpu_s"] - proc_before[
                "cpu_s"]
        say(f"{contender:>17} N={n:<5} children {result['children_s']:6.2f}s  "
            f"ready {result.get('owners_ready_s', result['deployments_ready_s']):6.2f}s  "
            f"(load {result['load_s']:.2f}s)")

        if extras and contender == "operator":
            result["idle"] = _idle(kubeconfig, ctl, args.idle)
            result["latency"] = _latencies(custom, apps, core, deployments, services, n,
                                           args.rounds)
            if ctl.pid:
                result["after_latency"] = proc_stats(ctl.pid)
    finally:
        for w in watches:
            w.stop()
        if ctl is not None:
            ctl.stop()
        kwok.down(progress=quiet)
    return result


def _warm_up(kubeconfig: Path, core: Any) -> None:
    """A fresh cluster holds the first Service creations for seconds (its Service range is not
    ready yet): create throw-away Services outside the namespace until one is quick."""
    for i in range(60):
        started = time.monotonic()
        core.create_namespaced_service("default", {
            "metadata": {"name": f"warm-up-{i}"},
            "spec": {"ports": [{"port": 80}], "selector": {"none": "none"}}})
        if time.monotonic() - started < 0.3:
            return
    raise TimeoutError("Service creation stays slow on a fresh cluster")


def _profile(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.is_file():
        say("py-spy is not installed in this environment: no profile")
        return None
    return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--format", "raw",
                             "--gil", "--nonblocking", "--rate", "50", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _idle(kubeconfig: Path, ctl: contenders.Contender, seconds: float) -> dict[str, Any]:
    before, own_before = apiserver_writes(kubeconfig), ctl.writes()
    cpu_before = proc_stats(ctl.pid)["cpu_s"] if ctl.pid else 0.0
    time.sleep(seconds)
    return {"seconds": seconds, "writes": delta(apiserver_writes(kubeconfig), before),
            "own_writes": delta(ctl.writes(), own_before),
            "cpu_s": (proc_stats(ctl.pid)["cpu_s"] - cpu_before) if ctl.pid else 0.0}


def _latencies(custom: Any, apps: Any, core: Any, deployments: watching.Watch,
               services: watching.Watch, n: int, rounds: int) -> dict[str, list[float]]:
    """Delete a child or change a spec, then wait for the watch to show the fix."""
    target = f"app-{n // 2}"
    times: dict[str, list[float]] = {"spec.image changed → Deployment updated": [],
                                     "Deployment deleted → recreated": [],
                                     "Service deleted → recreated": []}

    def timed(watch: watching.Watch, predicate: Callable[[str, dict[str, Any]], bool],
              act: Callable[[], Any], into: list[float]) -> None:
        with watch.expect(predicate) as seen:
            act()
            started = time.monotonic()
            if not seen.wait(30):
                raise TimeoutError("no reaction within 30s")
            into.append(time.monotonic() - started)

    def named(kind: str) -> Callable[[str, dict[str, Any]], bool]:
        return lambda t, o: t == kind and o["metadata"]["name"] == target

    for r in range(rounds):
        image = f"reconcile-lab/hello:v{1 + (r + 1) % 2}"

        def updated(t: str, o: dict[str, Any], image: str = image) -> bool:
            return bool(o["metadata"]["name"] == target and t == "MODIFIED"
                        and o["spec"]["template"]["spec"]["containers"][0]["image"] == image)

        def change(image: str = image) -> Any:
            return custom.patch_namespaced_custom_object(
                "reconcile-lab.dev", "v1alpha1", NS, "webapps", target, {"spec": {"image": image}})

        timed(deployments, updated, change, times["spec.image changed → Deployment updated"])
        timed(deployments, named("ADDED"),
              lambda: apps.delete_namespaced_deployment(target, NS, _preload_content=False),
              times["Deployment deleted → recreated"])
        timed(services, named("ADDED"),
              lambda: core.delete_namespaced_service(target, NS, _preload_content=False),
              times["Service deleted → recreated"])
    return times
