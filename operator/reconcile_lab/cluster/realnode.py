"""One real node beside kwok's simulated ones: containerd, kubelet and kube-proxy on this host.

Pods scheduled to it run as runc containers with a CNI bridge, answer HTTP on 127.0.0.1
through NodePorts, crash and restart for real. Start order: certificates and config files,
a record of the host's state (``hostchanges``), the cgroup root, containerd with the pause and
demo images, the kubelet (until its node is Ready), kube-proxy, metrics-server and its
APIService (``kubectl top``, CPU-based HPAs). ``down`` first withdraws that APIService, then
stops every process it started (the containers by their cgroups, the shims by PID) and undoes
every host-wide change, also after a run that was killed halfway; ``up`` runs it first.

An APIService whose server does not answer breaks API discovery for every client (kubectl,
the operator, the namespace controller: namespaces stay Terminating), so it exists only while
metrics-server runs: registered last, withdrawn first, and withdrawn by ``kwok.up`` when a
cluster comes back without this node (after a reboot, say).

Only 127.0.0.1 is ever listened on. It never touches the Docker engine's containerd, rules or
processes; the control plane itself is kwok.py's.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import FrameType

from reconcile_lab import paths
from reconcile_lab.cluster import (
    building,
    dockerd,
    hostchanges,
    hostcheck,
    metricsapi,
    metricsconfig,
    nodeconfig,
    nodeinfo,
    nodeparts,
    nodeprocs,
    probing,
)
from reconcile_lab.cluster.probing import ClusterError, Progress

NODES = ("real", "kwok", "both")
PROCESSES = ("apiproxy", "containerd", "coredns", "kubelet", "kube-proxy", "metrics-server")


def node_dir() -> Path:
    return paths.state_dir() / "realnode"


def run_dir(node: Path | None = None) -> Path:
    """Sockets and the kubelet's root: a unix socket's path has at most 107 bytes, and a state
    directory (a test's, say) can be deeper than that allows."""
    digest = hashlib.sha256(str(node or node_dir()).encode()).hexdigest()[:12]
    return Path("/run/reconcile-lab") / f"node-{digest}"


def _markers() -> tuple[str, str]:
    """What every command line of this node's processes contains one of (shims: run_dir)."""
    return f"{node_dir()}/", f"{run_dir()}/"


def _ours(cmdline: str) -> bool:
    return any(m in cmdline for m in _markers())


def _metrics_dir() -> Path:
    """metrics-server's files: its API's manifest, and the record of where it is registered."""
    return node_dir() / "metrics-server"


def record_file() -> Path:
    """Outside node_dir(): it must outlive the directory's removal until the very end."""
    return paths.state_dir() / "realnode-changes.json"


def _layout(cluster_dir: Path, *, progress: Progress) -> nodeconfig.Layout:
    kubeconfig = cluster_dir / "kubeconfig.yaml"
    server = probing.server_of(kubeconfig)
    if server is None:
        raise ClusterError(f"no apiserver address in {kubeconfig}.\n"
                           "  fix: reconcile-lab cluster down, then cluster up.")
    return nodeconfig.Layout(node=node_dir(), run=run_dir(), pki=cluster_dir / "pki", kubeconfig=kubeconfig,
                             server=server, cni_bin=nodeparts.cni_bin(progress=progress),
                             runc=nodeparts.runc(progress=progress))


# --- may a real node run here? --------------------------------------------------------------


def wanted(nodes: str, *, kwokctl_config: Path, progress: Progress) -> bool:
    """Whether to start the real node; says once, plainly, why not.

    ``--nodes real`` fails when it cannot run; ``both`` falls back to simulated nodes only.
    """
    if nodes not in NODES:
        raise ClusterError(f"--nodes {nodes!r}: choose one of {', '.join(NODES)}")
    if nodes == "kwok":
        return False
    problems: list[str] = []
    try:  # the demo images come from the Docker engine, runc and iptables with docker.io
        dockerd.ensure(progress=progress)
    except ClusterError as e:
        problems.append(str(e))
    runc: Path | None = None
    try:
        runc = nodeparts.runc(progress=progress)
    except ClusterError as e:
        problems.append(str(e))
    with contextlib.suppress(OSError):
        if nodeconfig.REAL_NODE_READY_MARK not in kwokctl_config.read_text():
            problems.append(f"the cluster was made by an earlier reconcile-lab, without every "
                            f"setting a real node needs now ({kwokctl_config}).\n  fix: "
                            "reconcile-lab cluster down, then reconcile-lab cluster up (a new, "
                            "empty cluster: apply your files again).")
    report = hostcheck.check(runc=runc, port_free=lambda p: probing.port_is_free(p)
                             or p in _own_ports())
    problems += report.problems
    for note in report.notes:
        progress(f"real node: {note}")
    if not problems:
        return True
    text = hostcheck.format_report(report._replace(problems=problems))
    if nodes == "real":
        raise ClusterError(text + "\n  or: --nodes kwok for simulated nodes only.")
    progress(text + "\n  → continuing with kwok's simulated nodes only (--nodes kwok to "
                    "skip this check).")
    return False


def _own_ports() -> set[int]:
    """Ports our own running node holds (they are not 'taken' for a second up)."""
    return set(nodeconfig.PORTS) if is_running() else set()


# --- processes ------------------------------------------------------------------------------


def _pid_file(name: str) -> Path:
    return node_dir() / "pids" / f"{name}.pid"


def our_pids() -> list[int]:
    """Processes whose command line points into this node's directory (shims included)."""
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and int(p.name) != os.getpid() and _ours(nodeprocs.cmdline(int(p.name)))]


def other_nodes() -> list[int]:
    """Processes of a real node run from another state directory: the host-wide state (bridge,
    chains, cgroup tree) is then theirs, not leftovers."""
    anyone = (f"/{node_dir().name}/", f"{run_dir().parent}/node-")
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = nodeprocs.cmdline(int(p.name))
                if (p / "comm").read_text().strip() in (*PROCESSES, "containerd-shim") \
                        and any(a in cmdline for a in anyone) and not _ours(cmdline):
                    found.append(int(p.name))
    return found


def _running_pid(name: str) -> int | None:
    try:
        pid = int(_pid_file(name).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if nodeprocs.alive(pid) and _ours(nodeprocs.cmdline(pid)) else None


def is_running() -> bool:
    return all(_running_pid(n) is not None for n in PROCESSES)


# --- up -------------------------------------------------------------------------------------


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def up(*, cluster_dir: Path, progress: Progress) -> None:
    """Start the real node (harmless when it runs); on any failure undo what was started."""
    kubeconfig = cluster_dir / "kubeconfig.yaml"
    if is_running() and nodeinfo.node_ready(kubeconfig):
        if not metricsapi.available(kubeconfig)[0]:  # deleted by hand, say: registered again
            metricsapi.register(kubeconfig, cluster_dir / "pki", _metrics_dir(), proc=None)
        progress(f"real node {nodeconfig.NODE_NAME!r} already running")
        return
    if down(progress=progress, leftovers=True):
        progress("removed what an earlier run of the real node left behind")
    # `kill` gets the same clean-up as ^C (signal handlers belong to the main thread only).
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    started = time.monotonic()
    try:
        _start(_layout(cluster_dir, progress=progress), progress=progress)
    except BaseException:
        progress("the real node did not come up: stopping it and undoing its host changes")
        down(progress=progress)
        raise
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    progress(f"real node {nodeconfig.NODE_NAME!r} Ready in {time.monotonic() - started:.1f}s "
             f"(containerd, CoreDNS, kubelet, kube-proxy, metrics-server; logs: "
             f"{node_dir() / 'logs'})")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _start(layout: nodeconfig.Layout, *, progress: Progress) -> None:
    n = layout.node
    nodeparts.certificates(layout)
    cgroups = hostcheck.parse_cgroups(Path("/proc/self/mountinfo").read_text())
    v1 = bool(cgroups.v1)
    containerd_toml = _write(n / "containerd.toml", nodeconfig.containerd_toml(layout))
    _write(n / "cni" / "net.d" / "10-reconcile-lab.conflist", nodeconfig.cni_conflist(layout))
    kubelet_config = _write(n / "kubelet" / "config.yaml",
                            nodeconfig.kubelet_config(layout, cgroup_v1=v1,
                                                      cluster_dns=nodeconfig.BRIDGE_ADDRESS))
    corefile = _write(n / "Corefile", nodeconfig.corefile(layout))
    kubelet_kubeconfig = _write(n / "kubelet" / "kubeconfig", nodeconfig.kubelet_kubeconfig(layout))
    proxy_config = _write(n / "kube-proxy.yaml", nodeconfig.kube_proxy_config(layout))
    hostchanges.snapshot(record_file(), dirs=(layout.run,))  # before anything can change
    for d in (n / "cni" / "ipam", n / "kubelet" / "pod-logs", layout.runc_root,
              layout.kubelet_root):
        d.mkdir(parents=True, exist_ok=True)
    _prepare_cgroups(cgroups)

    progress(f"starting containerd {building.CONTAINERD.version} (socket {layout.socket})")
    containerd = nodeprocs.spawn("containerd", [str(building.CONTAINERD.binary("containerd")),
                                                "--config", str(containerd_toml)], node=n)
    nodeprocs.wait("containerd", containerd,
                   lambda: nodeparts.ctr(layout, "version", timeout=5).returncode == 0, 30, node=n)
    _bridge()  # before CNI would make it: CoreDNS listens on its address
    apiserver_port = layout.server.rsplit(":", 1)[1]
    nodeprocs.spawn("apiproxy", [str(nodeparts.go_program("apiproxy", progress=progress)),
                                 f"{nodeconfig.BRIDGE_ADDRESS}:{apiserver_port}",
                                 f"127.0.0.1:{apiserver_port}"], node=n)
    coredns = nodeprocs.spawn("coredns", [str(building.COREDNS.binary("coredns")),
                                          "-conf", str(corefile)], node=n)
    nodeparts.import_images(layout, progress=progress)
    nodeprocs.wait("coredns", coredns, lambda: nodeprocs.http_ok(
        f"http://127.0.0.1:{nodeconfig.DNS_READY_PORT}/ready"), 30, node=n)

    progress(f"starting the kubelet (node {nodeconfig.NODE_NAME!r}, API on "
             f"127.0.0.1:{nodeconfig.KUBELET_PORT})")
    kubelet = nodeprocs.spawn("kubelet", [str(building.KUBERNETES.binary("kubelet")),
                                          *nodeconfig.kubelet_args(layout, kubelet_config,
                                                                   kubelet_kubeconfig)], node=n)
    nodeprocs.wait("kubelet", kubelet, lambda: nodeinfo.node_ready(layout.kubeconfig), 90, node=n)

    proxy = nodeprocs.spawn("kube-proxy", [str(building.KUBERNETES.binary("kube-proxy")),
                                           f"--config={proxy_config}"], node=n)
    nodeprocs.wait("kube-proxy", proxy, lambda: nodeprocs.http_ok(
        f"http://127.0.0.1:{nodeconfig.PROXY_HEALTHZ_PORT}/healthz"), 30, node=n)

    # Last: it scrapes a kubelet that answers, and its API is registered only once it serves.
    port = nodeconfig.METRICS_SERVER_PORT
    progress(f"starting metrics-server {building.METRICS_SERVER.version} (127.0.0.1:{port}, "
             f"scraping every {metricsconfig.RESOLUTION})")
    metrics = nodeprocs.spawn("metrics-server", [
        str(building.METRICS_SERVER.binary("metrics-server")),
        *metricsconfig.args(layout)], node=n)
    nodeprocs.wait("metrics-server", metrics, lambda: nodeprocs.http_ok(
        f"https://127.0.0.1:{port}/healthz", ca=layout.pki / "ca.crt"), 30, node=n)
    metricsapi.register(layout.kubeconfig, layout.pki, _metrics_dir(), proc=metrics)


def _bridge() -> None:
    """The pods' bridge with the gateway address the CNI plugin would give it."""
    name, address = nodeconfig.BRIDGE, f"{nodeconfig.BRIDGE_ADDRESS}/24"
    for args in (["link", "add", name, "type", "bridge"], ["addr", "add", address, "dev", name],
                 ["link", "set", name, "up"]):
        result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
        if result.returncode != 0 and "File exists" not in result.stderr:
            raise ClusterError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def _prepare_cgroups(cgroups: hostcheck.Cgroups) -> None:
    """The kubelet's cgroupRoot must exist in every hierarchy it uses."""
    if cgroups.v1:
        for hierarchy in {*cgroups.v1.values()}:
            top = hierarchy / nodeconfig.CGROUP_ROOT
            top.mkdir(exist_ok=True)
            if (hierarchy / "cpuset.cpus").is_file():
                # A new v1 cpuset starts empty, and nothing can join an empty cpuset.
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not (top / name).read_text().strip():
                        (top / name).write_text((hierarchy / name).read_text())
        return
    assert cgroups.v2 is not None
    root = cgroups.v2
    available = (root / "cgroup.controllers").read_text().split()
    enabled = (root / "cgroup.subtree_control").read_text().split()
    turned_on = []
    for controller in ("cpuset", "cpu", "io", "memory", "hugetlb", "pids"):
        if controller in available and controller not in enabled:
            (root / "cgroup.subtree_control").write_text(f"+{controller}")
            turned_on.append(controller)
    if turned_on:
        hostchanges.note(record_file(), "v2_enabled",
                         {str(root / "cgroup.subtree_control"): turned_on})
    (root / nodeconfig.CGROUP_ROOT).mkdir(exist_ok=True)


# --- down -----------------------------------------------------------------------------------


def down(*, progress: Progress, leftovers: bool = False, sweep: bool = True) -> bool:
    """Stop the node and undo its host changes; returns whether there was anything to do.

    ``sweep``: also remove the host-wide pieces (bridge, cgroup tree) when no record says they
    are ours, e.g. after the state directory was deleted, unless another node runs.
    """
    others = other_nodes()
    there = bool(our_pids() or record_file().exists() or node_dir().exists()
                 or run_dir().exists()) or (
        sweep and not others and bool(hostchanges.cgroup_dirs() or Path(
            f"/sys/class/net/{nodeconfig.BRIDGE}").exists()))
    if not there:
        return False
    # While metrics-server still answers: see the module's doc.
    metricsapi.withdraw_recorded(_metrics_dir(), progress=progress)
    # The kubelet and kube-proxy first, so that nobody restarts a container while it goes.
    agents = [p for p in (_running_pid("kubelet"), _running_pid("kube-proxy")) if p]
    nodeprocs.signal_all(agents, signal.SIGTERM)
    if not nodeprocs.gone(agents, 5):
        nodeprocs.signal_all(agents, signal.SIGKILL)
        nodeprocs.gone(agents, 5)
    if not others:  # the cgroup tree's name is host-wide: only ours when no other node runs
        nodeprocs.signal_all(hostchanges.cgroup_pids(), signal.SIGKILL)
    rest = our_pids()
    nodeprocs.signal_all(rest, signal.SIGTERM)
    if not nodeprocs.gone(rest, 3):
        nodeprocs.signal_all(our_pids(), signal.SIGKILL)
        nodeprocs.gone(our_pids(), 5)
    if others:
        progress(f"another real node runs (pids {', '.join(map(str, others))}): its "
                 "bridge, chains and cgroups stay; only this state directory's node is stopped")
        errors = hostchanges.unmount_under([node_dir(), run_dir()])
    else:
        errors = hostchanges.undo(record_file(), node_dirs=[node_dir(), run_dir()],
                                  docker_running=dockerd.answers(), progress=progress)
    for d in (node_dir(), run_dir()):
        if not hostchanges.mounts_under(Path("/proc/self/mountinfo").read_text(), [d]):
            shutil.rmtree(d, ignore_errors=True)  # never through a mount still in place
    with contextlib.suppress(OSError):  # the parent, once no node uses it
        run_dir().parent.rmdir()
    if errors:
        raise ClusterError("the real node is stopped, but some host changes could not be "
                           "undone:\n" + "\n".join(f"- {e}" for e in errors) +
                           f"\n  fix: undo them by hand; the record is {record_file()}")
    if not leftovers:
        progress("real node stopped; its mounts, bridge, iptables chains, cgroups, sysctls "
                 "and directories are undone")
    return True


# --- images ---------------------------------------------------------------------------------


def load_images(names: list[str], *, cluster_dir: Path, progress: Progress) -> None:
    """Images from the Docker engine into the running node's containerd; pods that use them
    start with no pull (their imagePullPolicy says Never or IfNotPresent)."""
    if not is_running():
        raise ClusterError("the real node is not running: there is no containerd to load "
                           "images into.\n  fix: reconcile-lab cluster up (without --nodes kwok).")
    started = time.monotonic()
    progress(f"loading {', '.join(names)} into the real node's containerd")
    nodeparts.import_docker_images(_layout(cluster_dir, progress=progress), names)
    progress(f"loaded in {time.monotonic() - started:.1f}s")


# --- leaving ------------------------------------------------------------------------------------


def forget(kubeconfig: Path) -> None:
    """Remove the real node's Node object (when the cluster goes on without it)."""
    probing.kubectl(kubeconfig, "delete", "node", nodeconfig.NODE_NAME, "--ignore-not-found",
                    "--wait=false")
