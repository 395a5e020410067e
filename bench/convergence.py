"""Convergence throughput, peers, latency at scale and write efficiency, on the embedded kwok
cluster, every comparison measured in the same run.

For each size N and repeat, each contender gets a fresh kwok cluster (same binaries, same
settings) and converges N apps from nothing:

- ``raw``: a tight aiohttp loop POSTing the operator's own Deployment+Service pairs, as many
  requests in flight as the operator has workers: the physical-limit proxy;
- ``operator``: reconcile-lab's operator; the load generator POSTs N WebApps the same way;
- ``naive-kopf``: ``bench/peers/naive_kopf.py``, an ``@kopf.on.create`` operator with defaults;
- ``sample-controller``: ``k8s.io/sample-controller`` (Foo → Deployment only), built from the Go
  module proxy into the cache.

The harness only watches (one watch per resource, no polling) and timestamps when each child
appears and when each app is ready. It scrapes ``apiserver_request_total`` before and after
(``kubectl get --raw /metrics``), the operator's ``reconcile_lab_writes_total``, and the
controller's RSS and CPU time from /proc. At the largest N the operator run goes on: idle writes,
then spec-change and drift-repair latencies with the N WebApps present.

    make bench                                   # the full matrix; updates bench/RESULTS.md
    python bench/convergence.py --sizes 20 --repeats 1 --rounds 10 --idle 5   # a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from results import add_write_option, write_section  # bench/, next to this script

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO / "bench" / "peers"
NS = "bench"
CONTENDERS = ("raw", "operator", "naive-kopf", "sample-controller")
CONCURRENCY = 32  # the operator's worker threads (RECONCILE_LAB_WORKERS)
SAMPLE_VERSION = "v0.36.3"
WRITE_VERBS = ("POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION")

say: Callable[[str], None] = lambda m: print(f"[bench] {m}", file=sys.stderr, flush=True)  # noqa: E731


# --- small helpers --------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f}s")
        time.sleep(every)
    return value


def until_all(count: Callable[[], int], n: int, what: str, stall: float = 60) -> None:
    """Wait until ``count()`` reaches n; give up when it stops moving for ``stall`` seconds."""
    last, moved = -1, time.monotonic()
    while (now := count()) < n:
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved > stall:
            raise TimeoutError(f"{what}: stuck at {now}/{n} for {stall:.0f}s")
        time.sleep(0.05)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - a fixed http URL
            return bool(r.status == 200)
    except OSError:
        return False


def http_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - a fixed http URL
        return str(r.read().decode())


def proc_stats(pid: int) -> dict[str, float]:
    """RSS (MB), peak RSS (MB) and CPU seconds (user + system) of one process."""
    status = Path(f"/proc/{pid}/status").read_text()
    kb = {k: int(v.split()[0]) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(.*)$", status, re.M)}
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"rss_mb": kb.get("VmRSS", 0) / 1024, "peak_rss_mb": kb.get("VmHWM", 0) / 1024,
            "cpu_s": (int(fields[11]) + int(fields[12])) / ticks}


_SAMPLE = re.compile(r'^(\w+)\{(.*)\}\s+([0-9.e+-]+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if line.startswith(name + "{") and (m := _SAMPLE.match(line)):
            out.append((dict(_LABEL.findall(m.group(2))), float(m.group(3))))
    return out


def apiserver_writes(kubeconfig: Path) -> dict[str, float]:
    """Write requests so far, by ``resource[/subresource]`` (``apiserver_request_total``)."""
    from reconcile_lab.cluster import probing

    text = probing.kubectl(kubeconfig, "get", "--raw", "/metrics", timeout=60).stdout
    out: dict[str, float] = {}
    for labels, value in samples(text, "apiserver_request_total"):
        if labels.get("verb") in WRITE_VERBS:
            key = labels.get("resource", "") + (f"/{labels['subresource']}"
                                                if labels.get("subresource") else "")
            out[key] = out.get(key, 0) + value
    return out


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}


# --- watching -------------------------------------------------------------------------------


class Watch(threading.Thread):
    """One watch on one resource in the namespace: when each name first appeared and first
    became ready (by ``ready``), plus waiters for the latency rounds."""

    def __init__(self, open_stream: Callable[..., Any],
                 ready: Callable[[dict[str, Any]], bool]) -> None:
        super().__init__(daemon=True)
        self.open_stream = open_stream
        self.response = open_stream()  # returns once the watch is established
        self.version = ""
        self.stopped = False
        self.ready = ready
        self.added: dict[str, float] = {}
        self.readied: dict[str, float] = {}
        self.events = 0
        self._waiters: list[tuple[Callable[[str, dict[str, Any]], bool], threading.Event]] = []
        self._lock = threading.Lock()
        self.start()

    def run(self) -> None:
        while not self.stopped:
            buf = b""
            try:
                for chunk in self.response.stream(1 << 16):
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        self._handle(json.loads(line))
            except Exception as e:  # closed by stop(), or the connection broke
                if not self.stopped:
                    say(f"watch broke ({type(e).__name__}: {e}); resuming")
            if not self.stopped:  # the apiserver ended the watch: resume where it was
                with contextlib.suppress(Exception):
                    self.response = self.open_stream(resource_version=self.version)
                    continue
                time.sleep(0.2)

    def _handle(self, event: dict[str, Any]) -> None:
        now = time.monotonic()
        kind, obj = event.get("type", ""), event.get("object") or {}
        name = obj.get("metadata", {}).get("name", "")
        if kind == "ERROR":  # e.g. 410 Gone: list again from now
            self.version = ""
            return
        self.version = obj.get("metadata", {}).get("resourceVersion", self.version)
        self.events += 1
        if kind in ("ADDED", "MODIFIED"):
            self.added.setdefault(name, now)
            if name not in self.readied and self.ready(obj):
                self.readied[name] = now
        with self._lock:
            for predicate, flag in list(self._waiters):
                if predicate(kind, obj):
                    flag.set()
                    self._waiters.remove((predicate, flag))

    @contextlib.contextmanager
    def expect(self, predicate: Callable[[str, dict[str, Any]], bool]) -> Iterator[
            threading.Event]:
        """Register before acting, so that a fast reaction cannot be missed."""
        flag = threading.Event()
        with self._lock:
            self._waiters.append((predicate, flag))
        yield flag

    def stop(self) -> None:
        self.stopped = True
        with contextlib.suppress(Exception):
            self.response.shutdown()  # close() would wait for the reading thread


def _deployment_ready(d: dict[str, Any]) -> bool:
    want = (d.get("spec") or {}).get("replicas", 1)
    return int((d.get("status") or {}).get("readyReplicas") or 0) >= want


def _webapp_ready(w: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (w.get("status") or {}).get("conditions") or [])


def _foo_ready(f: dict[str, Any]) -> bool:
    want = (f.get("spec") or {}).get("replicas", 1)
    return int((f.get("status") or {}).get("availableReplicas") or 0) >= want


# --- contenders ------------------------------------------------------------------------------


def sample_controller_binary(say: Callable[[str], None]) -> Path:
    """k8s.io/sample-controller built from the Go module proxy, cached by version."""
    from reconcile_lab import paths

    out = paths.bin_dir("sample-controller", SAMPLE_VERSION) / "sample-controller"
    if out.is_file():
        return out
    say(f"building k8s.io/sample-controller {SAMPLE_VERSION} into {out.parent}")
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
    work = Path(tempfile.mkdtemp(prefix="sample-controller-"))
    try:
        for name in ("go.mod", "go.sum", "tools.go"):
            shutil.copy(PEERS / "sample-controller" / name, work / name)
        subprocess.run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out),
                        "k8s.io/sample-controller"], cwd=work, env=env, check=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def sample_controller_crd() -> Path:
    """The Foo CRD from the module's artifacts/examples (in the Go module cache).

    The variant with the status subresource: sample-controller writes its status with
    UpdateStatus, which plain ``crd.yaml`` answers with 404, so every sync fails and is retried
    forever (measured: 340 failed syncs in 2 minutes for 20 Foos, none ever reporting status).
    """
    modcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True,
                              check=True).stdout.strip()
    crd = Path(modcache) / f"k8s.io/sample-controller@{SAMPLE_VERSION}" / "artifacts" / \
        "examples" / "crd-status-subresource.yaml"
    if not crd.is_file():
        subprocess.run(["go", "mod", "download", f"k8s.io/sample-controller@{SAMPLE_VERSION}"],
                       check=True, env={**os.environ, "GOFLAGS": "-mod=mod"})
    return crd


class Contender:
    """One controller process (none for ``raw``)."""

    def __init__(self, name: str, kubeconfig: Path, logdir: Path) -> None:
        self.name, self.kubeconfig = name, kubeconfig
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.log = logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": f"{REPO / 'operator'}:{REPO}",
               "KUBECONFIG": str(self.kubeconfig)}
        health = f"http://127.0.0.1:{self.health_port}/healthz"
        if self.name == "operator":
            argv = [sys.executable, "-m", "reconcile_lab", "operator", "run", "--kubeconfig",
                    str(self.kubeconfig), "--metrics-port", str(self.metrics_port),
                    "--health-port", str(self.health_port), "--log-format", "json"]
        elif self.name == "naive-kopf":
            argv = [sys.executable, "-m", "kopf", "run", "--standalone", "--all-namespaces",
                    f"--liveness={health}", str(PEERS / "naive_kopf.py")]
        elif self.name == "sample-controller":
            argv = [str(sample_controller_binary(say)), f"-kubeconfig={self.kubeconfig}"]
        else:
            return
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        if self.name == "sample-controller":
            until(lambda: "Started workers" in self.log.read_text(errors="replace"), 60,
                  "sample-controller start")
        else:
            until(lambda: http_ok(health), 60, f"{self.name} liveness")
        time.sleep(1)  # let the first (empty) lists settle

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def writes(self) -> dict[str, float]:
        """The operator's own ``reconcile_lab_writes_total``, by kind/verb."""
        if self.name != "operator":
            return {}
        text = http_text(f"http://127.0.0.1:{self.metrics_port}/metrics")
        return {f"{labels['kind']}/{labels['verb']}": v
                for labels, v in samples(text, "reconcile_lab_writes_total")}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# --- one run ---------------------------------------------------------------------------------


def run_one(contender: str, n: int, *, logdir: Path, extras: bool, args: argparse.Namespace,
            ) -> dict[str, Any]:
    """A fresh cluster, one contender, N apps from nothing; extras: idle, latency, profile."""
    from kubernetes import client, config

    from reconcile_lab.cluster import kwok, probing

    quiet: Callable[[str], None] = lambda m: None  # noqa: E731
    kubeconfig = kwok.up(progress=quiet, nodes="kwok")
    # kwok's nodes take 110 pods each, like kubelet's default: enough nodes for N pods.
    kwok._kwokctl("scale", "node", "--replicas", str(max(kwok.NODES, n // 100 + 2)))
    result: dict[str, Any] = {"contender": contender, "n": n}
    ctl: Contender | None = None
    watches: list[Watch] = []
    try:
        crds = [str(REPO / "crds")]
        if contender == "sample-controller":
            crds.append(str(sample_controller_crd()))
        for crd in crds:
            probing.kubectl(kubeconfig, "apply", "--server-side", "-f", crd)
            probing.kubectl(kubeconfig, "wait", "--for=condition=established", "-f", crd,
                            timeout=60)
        probing.kubectl(kubeconfig, "create", "namespace", NS)
        config.load_kube_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        apps, core, custom = client.AppsV1Api(), client.CoreV1Api(), client.CustomObjectsApi()
        _warm_up(kubeconfig, core)
        ctl = Contender(contender, kubeconfig, logdir)
        ctl.start()

        stream = {"_preload_content": False, "watch": True, "timeout_seconds": 3600}
        deployments = Watch(lambda **kw: apps.list_namespaced_deployment(NS, **stream, **kw),
                            _deployment_ready)
        services = Watch(lambda **kw: core.list_namespaced_service(NS, **stream, **kw),
                         lambda _: True)
        owners: Watch | None = None
        if contender in ("operator", "naive-kopf"):
            owners = Watch(lambda **kw: custom.list_namespaced_custom_object(
                "reconcile-lab.dev", "v1alpha1", NS, "webapps", **stream, **kw), _webapp_ready)
        elif contender == "sample-controller":
            owners = Watch(lambda **kw: custom.list_namespaced_custom_object(
                "samplecontroller.k8s.io", "v1alpha1", NS, "foos", **stream, **kw), _foo_ready)
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
                             "--nonblocking", "--rate", "50", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _idle(kubeconfig: Path, ctl: Contender, seconds: float) -> dict[str, Any]:
    before, own_before = apiserver_writes(kubeconfig), ctl.writes()
    cpu_before = proc_stats(ctl.pid)["cpu_s"] if ctl.pid else 0.0
    time.sleep(seconds)
    return {"seconds": seconds, "writes": delta(apiserver_writes(kubeconfig), before),
            "own_writes": delta(ctl.writes(), own_before),
            "cpu_s": (proc_stats(ctl.pid)["cpu_s"] - cpu_before) if ctl.pid else 0.0}


def _latencies(custom: Any, apps: Any, core: Any, deployments: Watch, services: Watch, n: int,
               rounds: int) -> dict[str, list[float]]:
    """Delete a child or change a spec, then wait for the watch to show the fix."""
    target = f"app-{n // 2}"
    times: dict[str, list[float]] = {"spec.image changed → Deployment updated": [],
                                     "Deployment deleted → recreated": [],
                                     "Service deleted → recreated": []}

    def timed(watch: Watch, predicate: Callable[[str, dict[str, Any]], bool],
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
        timed(deployments, lambda t, o, image=image: o["metadata"]["name"] == target
              and t == "MODIFIED"
              and o["spec"]["template"]["spec"]["containers"][0]["image"] == image,
              lambda image=image: custom.patch_namespaced_custom_object(
                  "reconcile-lab.dev", "v1alpha1", NS, "webapps", target,
                  {"spec": {"image": image}}),
              times["spec.image changed → Deployment updated"])
        timed(deployments, named("ADDED"),
              lambda: apps.delete_namespaced_deployment(target, NS, _preload_content=False),
              times["Deployment deleted → recreated"])
        timed(services, named("ADDED"),
              lambda: core.delete_namespaced_service(target, NS, _preload_content=False),
              times["Service deleted → recreated"])
    return times


# --- the matrix and the report --------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,500,1000",
                        help="comma-separated N (default: 100,500,1000)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per size")
    parser.add_argument("--largest-repeats", type=int, default=None,
                        help="repeats at the largest size (default: --repeats)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--rounds", type=int, default=200,
                        help="latency rounds at the largest N (each: 3 events)")
    parser.add_argument("--idle", type=float, default=60, help="idle window, seconds")
    parser.add_argument("--settle", type=float, default=3,
                        help="seconds after convergence before the write count is taken")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the operator while it converges the largest N")
    parser.add_argument("--json", type=Path, default=None, help="write raw results here")
    add_write_option(parser, "RESULTS.md, convergence.json and the plot")
    parser.add_argument("--report-from", type=Path, default=None, metavar="JSON",
                        help="only render the report (and with --write the plots) from the raw "
                             "results of an earlier run (--json)")
    args = parser.parse_args()
    if args.report_from:
        return _publish(json.loads(args.report_from.read_text()), args)

    os.environ.setdefault("RECONCILE_LAB_STATE", tempfile.mkdtemp(prefix="bench-state-"))
    sys.path.insert(0, str(REPO / "operator"))
    from reconcile_lab.cluster import kwok

    # SIGTERM unwinds like Ctrl-C: every run's `finally` stops its controller and its cluster.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    say(f"state in {os.environ['RECONCILE_LAB_STATE']}")
    kwok.up(progress=say, nodes="kwok")  # builds what is missing, once
    kwok.down(progress=say)
    sizes = [int(s) for s in args.sizes.split(",")]
    contenders = [c for c in args.contenders.split(",") if c]
    logdir = Path(os.environ["RECONCILE_LAB_STATE"]) / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    for n in sizes:
        repeats = args.largest_repeats if n == max(sizes) and args.largest_repeats else \
            args.repeats
        for r in range(repeats):
            # Rotate the order, so that no contender always runs on a warmer (or busier) machine.
            order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
            for contender in order:
                extras = n == max(sizes) and r == 0
                try:
                    results.append(run_one(contender, n, logdir=logdir, extras=extras,
                                           args=args))
                except TimeoutError as e:  # recorded, and the matrix goes on
                    say(f"{contender} N={n}: {e}")
                    results.append({"contender": contender, "n": n, "error": str(e)})
    say(f"done in {(time.monotonic() - started) / 60:.1f} min; logs in {logdir}")

    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.machine(),
            "cores": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version(),
            "load": os.getloadavg(), "versions": _versions(), "argv": sys.argv[1:],
            "minutes": (time.monotonic() - started) / 60}
    data = {"meta": meta, "runs": results}
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))
    return _publish(data, args)


def _publish(data: dict[str, Any], args: argparse.Namespace) -> int:
    section = report(data)
    print(section)
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        (args.write / "convergence.json").write_text(json.dumps(data, indent=1))
        plot(data, args.write)
        write_section(section, args.write)
    return 0


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _versions() -> dict[str, str]:
    import kopf
    import kubernetes

    from reconcile_lab.cluster import versions

    go = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True,
                        check=False).stdout.strip()
    return {"kubernetes": versions.KUBERNETES, "etcd": versions.ETCD, "kwok": versions.KWOK,
            "kopf": kopf.__version__ if hasattr(kopf, "__version__") else _dist("kopf"),
            "kubernetes-client": kubernetes.__version__, "sample-controller": SAMPLE_VERSION,
            "go": go}


def _dist(name: str) -> str:
    from importlib import metadata

    return metadata.version(name)


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def summary(data: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """Medians per (contender, N), with rates and the ratio to the raw rate."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    runs = [r for r in data["runs"] if "error" not in r]
    for key in sorted({(r["contender"], r["n"]) for r in runs}, key=lambda k: (k[1], k[0])):
        mine = [r for r in runs if (r["contender"], r["n"]) == key]
        n = key[1]
        row: dict[str, Any] = {"repeats": len(mine)}
        for k in ("children_s", "deployments_ready_s", "owners_ready_s", "load_s", "cpu_s",
                  "rss_mb"):
            row[k] = _median(mine, k)
        row["rate"] = n / row["children_s"]
        row["writes_per_app"] = statistics.median(
            _attributed(r["writes"], r["contender"], n) / n for r in mine)
        row["breakdown"] = mine[0]["writes"]
        out[key] = row
    for (_, n), row in out.items():
        raw = out.get(("raw", n))
        row["ratio"] = row["rate"] / raw["rate"] if raw else None
    return out


# Resources a controller of this kind writes for its apps; the rest (pods, replicasets, leases,
# endpointslices, deployments/status …) are the control plane's and kwok's work, equal for all.
_MINE = ("deployments", "services", "webapps", "webapps/status", "foos", "foos/status",
         "events")


def _attributed(writes: dict[str, float], contender: str, n: int) -> float:
    """The controller's writes on its own resources, minus the N owners the harness created."""
    total = sum(v for k, v in writes.items() if k in _MINE)
    return total - (0 if contender == "raw" else n)


def _ms(values: list[float], q: float) -> str:
    return f"{pct(values, q) * 1000:.0f}"


def report(data: dict[str, Any]) -> str:
    meta, rows = data["meta"], summary(data)
    sizes = sorted({n for _, n in rows})
    biggest = max(sizes)
    runs = [r for r in data["runs"] if "error" not in r]
    failed = [r for r in data["runs"] if "error" in r]
    v = meta["versions"]
    lines = [
        "## Convergence throughput, peers and efficiency",
        "",
        f"{meta['date']}, {meta['machine']} ({meta['cpu']}), {meta['cores']} cores shared with "
        f"other work (load average at the end {meta['load'][0]:.1f}), Python {meta['python']}, "
        f"kopf {v['kopf']}, kubernetes client {v['kubernetes-client']}, {v['go']}; kwok cluster "
        f"(Kubernetes {v['kubernetes']}, etcd {v['etcd']}, kwok {v['kwok']}: real control plane, "
        "simulated pods, client QPS limits off in the control plane); "
        f"`python bench/convergence.py {' '.join(meta['argv'])}` ({meta['minutes']:.0f} min).",
        "",
        "Every contender gets a fresh cluster for each run, in rotating order; each figure is the "
        "median over the repeats shown. The machine is noisy (2 shared cores): **the ratios "
        "within one run matter more than the absolute numbers.** Times run from the first "
        "request of the load generator (32 requests in flight) to the harness's watch seeing "
        "the last object.",
        "",
        "| N | contender | runs | all children exist s | rate apps/s | × raw | all ready s | "
        "CPU s/app | writes/app |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (contender, n), row in rows.items():
        ready = row["owners_ready_s"] or row["deployments_ready_s"]
        cpu = f"{row['cpu_s'] / n * 1000:.1f} ms" if row["cpu_s"] is not None else "–"
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "–"
        lines.append(f"| {n} | {contender} | {row['repeats']} | {row['children_s']:.2f} | "
                     f"{row['rate']:.0f} | {ratio} | {ready:.2f} | {cpu} | "
                     f"{row['writes_per_app']:.2f} |")
    for r in failed:
        lines.append(f"| {r['n']} | {r['contender']} | failed: {r['error']} | | | | | | |")
    lines += [
        "",
        "- *raw*: Deployment+Service pairs POSTed by a tight aiohttp loop (no controller): the "
        "physical-limit proxy. *all ready* for raw and naive-kopf: every Deployment ready "
        "(neither reports status on an owner); for the operator: every WebApp `Ready=True`; "
        "for sample-controller: every Foo's `status.availableReplicas` equal to its replicas.",
        "- *sample-controller* creates a Deployment only (no Service): half the children.",
        "- *writes/app*: `apiserver_request_total{verb=~\"POST|PUT|PATCH|APPLY|DELETE\"}` on "
        "deployments, services, the owner kind (and its status) and events, before/after, "
        "minus the N owners the load generator created; raw's figure is the children alone "
        "(2/app) plus the control plane's events.",
        "",
    ]
    op = next((r for r in runs if r["contender"] == "operator" and r["n"] == biggest
               and "idle" in r), None)
    raw = next((r for r in runs if r["contender"] == "raw" and r["n"] == biggest), None)
    if op is not None:
        own = op["own_writes"]
        children = sum(v for k, v in own.items() if k.split("/")[0] in ("Deployment", "Service"))
        status = sum(v for k, v in own.items() if k.endswith("/status"))
        events = op["writes"].get("events", 0) - (raw["writes"].get("events", 0) if raw else 0)
        idle = op["idle"]
        idle_mine = sum(v for k, v in idle["writes"].items() if k in _MINE)
        lines += [
            f"### The operator at N={biggest} (first run)",
            "",
            f"- Writes by the operator (`reconcile_lab_writes_total`): {children:.0f} children "
            f"applies, {status:.0f} status patches → **{(children + status) / biggest:.2f} "
            f"writes per WebApp, {status / biggest:.2f} beyond the children**; plus "
            f"{max(events, 0) / biggest:.2f} Events per WebApp more than the raw run's (the "
            "operator's Created and Ready events, posted by kopf).",
            f"- Idle for {idle['seconds']:.0f} s with {biggest} WebApps: "
            f"{sum(idle['own_writes'].values()):.0f} operator writes; "
            f"{idle_mine:.0f} writes on deployments/services/webapps/events at the apiserver "
            f"({idle['cpu_s']:.2f} CPU s).",
            f"- RSS after converging {biggest} WebApps: {op['rss_mb']:.0f} MB; after the "
            f"latency rounds {op['after_latency']['rss_mb']:.0f} MB (peak "
            f"{op['after_latency']['peak_rss_mb']:.0f} MB). CPU to converge: "
            f"{op['cpu_s']:.1f} s ({op['cpu_s'] / biggest * 1000:.1f} ms per WebApp).",
            "",
            f"Apiserver writes during that convergence, by resource (N={biggest}):",
            "",
            "| resource | operator | raw |",
            "|---|---|---|",
        ]
        keys = sorted(set(op["writes"]) | set(raw["writes"] if raw else {}))
        for k in keys:
            lines.append(f"| {k} | {op['writes'].get(k, 0):.0f} | "
                         f"{(raw or {}).get('writes', {}).get(k, 0):.0f} |")
        lines += ["", f"### Latency with {biggest} WebApps present", "",
                  f"{len(next(iter(op['latency'].values())))} rounds; from the API call "
                  "returning to the harness's watch seeing the fixed child (no polling).", "",
                  "| event | n | p50 ms | p95 ms | p99 ms | max ms |",
                  "|---|---|---|---|---|---|"]
        for event, values in op["latency"].items():
            lines.append(f"| {event} | {len(values)} | {_ms(values, .5)} | {_ms(values, .95)} | "
                         f"{_ms(values, .99)} | {max(values) * 1000:.0f} |")
        lines.append("")
    lines += ["![convergence](convergence.png)", ""]
    return "\n".join(lines)


def plot(data: dict[str, Any], where: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary(data)
    sizes = sorted({n for _, n in rows})
    contenders = [c for c in CONTENDERS if any(k[0] == c for k in rows)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / max(1, len(contenders))
    for i, c in enumerate(contenders):
        xs = [j + i * width for j, n in enumerate(sizes) if (c, n) in rows]
        left.bar(xs, [rows[(c, n)]["rate"] for n in sizes if (c, n) in rows], width, label=c)
    left.set_xticks([j + width * (len(contenders) - 1) / 2 for j in range(len(sizes))],
                    [f"N={n}" for n in sizes])
    left.set_ylabel("apps with every child created / s")
    left.set_title("Convergence throughput (median)")
    left.legend(fontsize=8)
    op = next((r for r in data["runs"] if "latency" in r), None)
    if op is not None:
        for event, values in op["latency"].items():
            ordered = sorted(v * 1000 for v in values)
            right.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))],
                       label=event)
        right.axvline(1000, color="grey", linestyle=":", linewidth=1)
        right.set_xscale("log")
        right.set_xlabel("ms")
        right.set_ylabel("fraction of events")
        right.set_title(f"Latency with N={op['n']} WebApps (CDF)")
        right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(where / "convergence.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
