"""The embedded default cluster: a real control plane with simulated nodes, run by kwokctl.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are real processes built from
source (see building.py); kwok fakes the nodes and the pods' lifecycle. Beside them, one real
node (realnode.py) runs pods for real; the simulated nodes are then tainted so that only work
that opts in lands there. Everything lives under ``state_dir()`` and every component listens
on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from reconcile_lab.cluster import building, metricsapi, nodeconfig, nodeinfo, probing, realnode
from reconcile_lab.cluster.kwokconfig import (
    APISERVER_ARGS,
    AUDIT_POLICY,
    CONFIG,
    NAME,
    cluster_dir,
    kubeconfig,
    kwokctl_env,
    pick_ports,
    recorded_ports,
    workdir,
)
from reconcile_lab.cluster.probing import ClusterError, Progress

NODES = 3

RESTART_SECONDS = 60


def _kwokctl(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess[str]:
    tool = building.KWOK.binary("kwokctl")
    result = subprocess.run([str(tool), "--name", NAME, *args], env=kwokctl_env(), text=True,
                            capture_output=capture, check=False, timeout=600)
    if check and result.returncode != 0:
        raise ClusterError(
            f"kwokctl {' '.join(args[:2])} failed (exit {result.returncode}):\n"
            f"{(result.stderr or '').strip()[-2000:]}\n"
            f"  component logs: {cluster_dir() / 'logs'}"
        )
    return result


def exists() -> bool:
    return (cluster_dir() / "kwok.yaml").is_file()


def apiserver_url() -> str | None:
    return probing.server_of(kubeconfig()) if kubeconfig().is_file() else None


def is_running() -> bool:
    url = apiserver_url()
    return url is not None and probing.apiserver_ready(url) \
        and probing.apiserver_ready_with(kubeconfig())


def up(*, progress: Progress, apiserver_port: int | None = None, nodes: str = "both",
       apiserver_args: Mapping[str, str] | None = None) -> Path:
    """Start the cluster (building what is missing); harmless when it already runs.

    ``nodes``: ``both`` (a real node when the host allows one, plus simulated nodes), ``real``
    or ``kwok`` (simulated only). ``apiserver_args``: more kube-apiserver flags (without the
    ``--``) for a cluster created now, e.g. a drill's short etcd compaction interval.
    """
    extra = dict(apiserver_args or {})
    building.build_all(progress=progress)
    if is_running():
        progress(f"kwok cluster {NAME!r} already running at {apiserver_url()}")
    elif exists() and (problem := _restart(progress)) is not None:
        progress(f"the stopped cluster's data cannot be used: {problem}\n"
                 "  starting a new, empty cluster instead: the WebApps and everything else in "
                 "the old one are gone; apply your files again (kubectl apply -f …)")
        down(progress=progress)
        _create(progress, apiserver_port, extra)
    elif not exists():
        _create(progress, apiserver_port, extra)
    if not realnode.is_running():
        # A node that was killed (a reboot, say) left its metrics API registered, with nobody
        # serving it: every client's API discovery would fail on it until the node is back.
        metricsapi.withdraw(kubeconfig())
    real = realnode.wanted(nodes, kwokctl_config=workdir() / "kwokctl-config.yaml",
                           progress=progress)
    _ensure_nodes(progress, count=0 if nodes == "real" else NODES, tainted=real)
    if real:
        realnode.up(cluster_dir=cluster_dir(), progress=progress)
    elif realnode.down(progress=progress, sweep=False):
        realnode.forget(kubeconfig())
    return kubeconfig()


def _create(progress: Progress, apiserver_port: int | None,
            apiserver_args: Mapping[str, str]) -> None:
    if apiserver_port is not None:
        probing.require_free_port(apiserver_port, what="kube-apiserver")
    config = workdir() / "kwokctl-config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    ports = "".join(f"  {o}: {p}\n" for o, p in pick_ports(apiserver_port).items())
    extra = "".join(f"  - key: {k}\n    value: {json.dumps(str(v))}\n"
                    for k, v in {**APISERVER_ARGS, **apiserver_args}.items())
    config.write_text(CONFIG.format(ports=ports, extra=extra)
                      + nodeconfig.kwokctl_patches(cluster_dir() / "pki"))
    audit = workdir() / "audit-policy.yaml"
    audit.write_text(AUDIT_POLICY)
    k8s, etcd, kwok = building.KUBERNETES, building.ETCD, building.KWOK
    args = [
        "create", "cluster",
        "--runtime", "binary",
        "--config", str(config),
        "--kubeconfig", "",  # never add a context to the user's ~/.kube/config
        "--etcd-binary", str(etcd.binary("etcd")),
        "--kube-apiserver-binary", str(k8s.binary("kube-apiserver")),
        "--kube-controller-manager-binary", str(k8s.binary("kube-controller-manager")),
        "--kube-scheduler-binary", str(k8s.binary("kube-scheduler")),
        "--kwok-controller-binary", str(kwok.binary("kwok")),
        "--kube-authorization",
        "--kube-audit-policy", str(audit),
        "--disable-qps-limits",  # the apiserver's limits come back: kwokconfig.APISERVER_ARGS
        "--wait", "120s",
    ]
    progress(f"starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and "
             f"kwok on 127.0.0.1 (data and logs: {cluster_dir()})")
    started = time.monotonic()
    try:
        _kwokctl(*args)
    except ClusterError:
        _kwokctl("delete", "cluster", check=False)  # never leave half a cluster behind
        raise
    progress(f"control plane ready in {time.monotonic() - started:.0f}s")


def _holder(port: int) -> str:
    """Who listens on a 127.0.0.1 port: "pid N (command)", or "another process"."""
    result = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True,
                            text=True, check=False)
    text = result.stdout.strip()
    if "pid=" in text:
        pid = text.split("pid=", 1)[1].split(",", 1)[0]
        name = text.split('(("', 1)[1].split('"', 1)[0] if '(("' in text else "?"
        return f"pid {pid} ({name})"
    return "another process"


def _restart(progress: Progress) -> str | None:
    """Start a stopped cluster on its data (after a reboot or a kill). None when it runs; else
    why its data cannot be used. Bounded: never more than RESTART_SECONDS."""
    _kill_ours()  # leftovers of the killed run would hold its ports
    # kwokctl believes a pid file whose PID answers signal 0, and with PIDs reused (pid_max is
    # 32768 here, thread ids count) it would take some other process for the killed etcd or
    # apiserver and not start them: the apiserver then refuses connections until kwokctl's
    # two-minute wait ends. None of the cluster's processes runs now: no pid file is true.
    for pid_file in (cluster_dir() / "pids").glob("*.pid"):
        pid_file.unlink(missing_ok=True)
    taken = {o: p for o, p in recorded_ports().items() if not probing.port_is_free(p)}
    if taken:
        return ", ".join(f"its {o} {p} is now used by {_holder(p)}" for o, p in taken.items())
    if not kubeconfig().is_file() or apiserver_url() is None:
        return f"its kubeconfig {kubeconfig()} is missing or empty"
    progress(f"kwok cluster {NAME!r} exists but is stopped: starting it on its data")
    started = time.monotonic()
    tool = building.KWOK.binary("kwokctl")
    log = cluster_dir() / "logs" / "kwokctl-start.log"
    with log.open("a") as out:
        proc = subprocess.Popen([str(tool), "--name", NAME, "start", "cluster"], env=kwokctl_env(),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    problem = _wait_restarted(progress, started)
    if problem is None:  # kwokctl finishes its own checks; the components run on their own
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    return problem


def _wait_restarted(progress: Progress, started: float) -> str | None:
    started_at = time.time() - (time.monotonic() - started)
    while time.monotonic() - started < RESTART_SECONDS:
        if is_running():
            progress(f"control plane back in {time.monotonic() - started:.0f}s, with its data")
            return None
        dead = [c for c in ("etcd", "kube-apiserver") if _exited(c, since=started_at)]
        if dead:
            return f"{' and '.join(dead)} exited at start-up: {_last_line(dead[0])}"
        time.sleep(0.25)
    return (f"it did not answer within {RESTART_SECONDS}s; "
            f"last line of kube-apiserver.log: {_last_line('kube-apiserver')}")


def _exited(component: str, *, since: float) -> bool:
    """Did the component kwokctl started after ``since`` (a wall-clock time) exit?"""
    pid_file = cluster_dir() / "pids" / f"{component}.pid"
    try:
        if pid_file.stat().st_mtime < since:
            return False  # the killed run's: not started again yet
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False  # not started yet
    return not Path(f"/proc/{pid}").exists()


def _last_line(component: str) -> str:
    try:
        lines = (cluster_dir() / "logs" / f"{component}.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    return (lines.strip().splitlines() or ["(empty)"])[-1][:300]


def _ensure_nodes(progress: Progress, *, count: int = NODES, tainted: bool = False) -> None:
    # kwokctl scale reads its node template from $KWOK_WORKDIR/kwok.yaml: every caller gets
    # the same simulated nodes, tainted when a real node takes the ordinary pods.
    (workdir() / "kwok.yaml").write_text(nodeconfig.kwok_node_resource(tainted=tainted))
    _kwokctl("scale", "node", "--replicas", str(count))
    taint = f"{nodeconfig.FAKE_KEY}={nodeconfig.FAKE_VALUE}:NoSchedule"
    probing.kubectl(kubeconfig(), "taint", "nodes", "-l", nodeconfig.FAKE_NODE_LABEL,
                    *([taint, "--overwrite"] if tainted else [f"{nodeconfig.FAKE_KEY}:NoSchedule-"]))
    _revive(progress)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready = [n for n in probing.ready_nodes(kubeconfig()) if n != nodeconfig.NODE_NAME]
        if len(ready) >= count:
            tag = f" (tainted {taint})" if tainted and ready else ""
            progress(f"{len(ready)} simulated nodes Ready{tag}: {', '.join(sorted(ready))}")
            return
        time.sleep(0.5)
    raise ClusterError(f"the {count} kwok nodes did not become Ready within 60s; "
                       f"see {cluster_dir() / 'logs' / 'kwok-controller.log'}")


def _revive(progress: Progress) -> None:
    """Every simulated machine that "died" (its heartbeat, the node Lease, taken from kwok:
    exercise 14, compare's machine-dies) is brought back: its Lease deleted, kwok makes a new
    one and renews it."""
    found = probing.kubectl(kubeconfig(), "get", "leases", "-n", nodeconfig.NODE_LEASE_NAMESPACE,
                            "-o", f"jsonpath={nodeconfig.DEAD_LEASES}")
    dead = found.stdout.split() if found.returncode == 0 else []
    if dead:
        probing.kubectl(kubeconfig(), "delete", "lease", "-n", nodeconfig.NODE_LEASE_NAMESPACE,
                        *dead)
        progress(f"brought back {len(dead)} simulated machine(s) whose heartbeat had been "
                 f"taken: {', '.join(dead)}")


def _our_pids() -> list[int]:
    """Processes whose command line points into our cluster directory."""
    marker = str(cluster_dir())
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(proc.name))
    return pids


def _kill_ours(wait: float = 10) -> None:
    """SIGKILL every process of this cluster and wait (bounded) until they are gone."""
    for pid in _our_pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait
    while _our_pids() and time.monotonic() < deadline:
        time.sleep(0.1)


def down(*, progress: Progress) -> None:
    """Stop every process ``up`` started and remove its data; nothing else."""
    try:
        realnode.down(progress=progress)  # the real node first, with every host change it made
    finally:
        _down(progress)


def _down(progress: Progress) -> None:
    if not exists() and not _our_pids():
        progress(f"kwok cluster {NAME!r} is not there: nothing to do")
        return
    url = apiserver_url()
    if building.KWOK.is_built():
        _kwokctl("delete", "cluster", check=False)
    _kill_ours()  # stragglers kwokctl lost track of
    shutil.rmtree(cluster_dir(), ignore_errors=True)
    progress(f"kwok cluster {NAME!r} removed" + (f" (was {url})" if url else ""))


def status() -> dict[str, object]:
    return {
        "provider": "kwok",
        "name": NAME,
        "exists": exists(),
        "running": is_running(),
        "apiserver": apiserver_url(),
        "kubeconfig": str(kubeconfig()),
        "processes": len(_our_pids()),
        "nodes": nodeinfo.describe_nodes(kubeconfig()) if is_running() else "none",
        "real node": "running" if realnode.is_running() else "not running",
        "data": str(cluster_dir()),
    }


def load_images(names: list[str], *, progress: Progress) -> None:
    """Into the real node's containerd; simulated nodes run no containers and need none."""
    if not realnode.is_running():
        progress("no real node in this cluster: its (simulated) pods need no image")
        return
    realnode.load_images(names, cluster_dir=cluster_dir(), progress=progress)


COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
              "kwok-controller")


def restart(component: str, *, down_for: float = 0.0) -> float:
    """Kill one control-plane component and start it again with the same command line.

    For fault drills: what happens to the operator while the apiserver (or etcd) is gone?
    Returns the seconds the component was down.
    """
    if component not in COMPONENTS:
        raise ClusterError(f"unknown component {component!r}; one of {', '.join(COMPONENTS)}")
    pid_file = cluster_dir() / "pids" / f"{component}.pid"
    try:
        pid = int(pid_file.read_text().strip())
        proc = Path(f"/proc/{pid}")
        argv = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
        cwd = str((proc / "cwd").readlink())
    except (OSError, ValueError) as e:
        raise ClusterError(f"{component} is not running in {cluster_dir()}: {e}") from None
    stopped = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    while Path(f"/proc/{pid}").exists() and time.monotonic() - stopped < 10:
        time.sleep(0.02)
    time.sleep(down_for)
    with (cluster_dir() / "logs" / f"{component}.log").open("a") as log:
        new = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file.write_text(str(new.pid))
    return time.monotonic() - stopped
