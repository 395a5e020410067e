"""What a real node changes on the host outside its state directory, recorded and undone.

The kubelet and kube-proxy change sysctls, the kubelet and containerd create directories
outside their configured ones, CNI makes a bridge and iptables chains, containerd mounts, the
kubelet makes a cgroup tree. Before anything starts, ``snapshot`` writes down what was there
(values of sysctls, directories that were absent) in a record file; ``undo`` puts it all back
and removes the record, also after a run that was killed halfway. The iptables sweep touches
only ``KUBE-*`` and ``CNI-*`` chains (and the rules that jump to them): Docker's rules stay.

This module does not start or stop processes: stop them first (``realnode.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconcile_lab.cluster import hostcheck, nodeconfig

Progress = Callable[[str], None]

# Every sysctl the kubelet (setupKernelTunables), kube-proxy (localhost NodePorts) and the CNI
# bridge (isGateway) may write.
SYSCTLS = ("vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
           "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes",
           "net.ipv4.conf.all.route_localnet", "net.ipv4.ip_forward",
           "net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")
# The Docker engine needs these on while it runs; restoring them under it would cut its
# containers off.
DOCKER_NEEDS = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables",
                "net.bridge.bridge-nf-call-ip6tables")
# Directories the node's components create at fixed places whatever they are told.
HOST_DIRS = ("/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni",
             "/run/containerd/runc/k8s.io", "/run/containerd/fifo", "/run/containerd/s",
             "/var/run/netns")
CHAIN_PREFIXES = ("KUBE-", "CNI-")
# A copy of the record outside every state directory: when one run's teardown fails and a node
# from another state directory starts next, the values from before the first run still win.
# On tmpfs, like the sysctls it describes it is gone after a reboot.
HOST_RECORD = Path("/run/reconcile-lab/host-changes.json")
TABLES = ("filter", "nat", "mangle", "raw")


# --- the record -----------------------------------------------------------------------------


def load(record: Path) -> dict[str, Any]:
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(record: Path, data: dict[str, Any]) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    partial = record.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    partial.rename(record)  # a kill mid-write never leaves half a record


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctl(name: str) -> str | None:
    try:
        return _sysctl_path(name).read_text().strip()
    except OSError:
        return None


def topmost_absent(path: Path) -> Path | None:
    """The highest ancestor of ``path`` (or ``path`` itself) that does not exist."""
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def snapshot(record: Path, *, dirs: tuple[Path, ...] = (), host_record: Path = HOST_RECORD) -> None:
    """Write down the host's state before the node's first process starts.

    Values already recorded win: after a failed run the record still holds the values from
    before it, and those are the ones to restore.
    """
    data, earlier = load(record), load(host_record)
    sysctls = data.setdefault("sysctls", {})
    for name, value in (earlier.get("sysctls") or {}).items():
        sysctls.setdefault(name, value)
    absent = data.setdefault("absent_dirs", [])
    absent += [d for d in earlier.get("absent_dirs") or [] if d not in absent]
    for name in SYSCTLS:
        value = read_sysctl(name)
        if value is not None:
            sysctls.setdefault(name, value)
    for d in (*map(Path, HOST_DIRS), *dirs):
        top = topmost_absent(d)
        if top is not None and str(top) not in absent:
            absent.append(str(top))
    _save(record, data)
    _save(host_record, data)


def note(record: Path, key: str, value: object) -> None:
    """Add one fact to the record (e.g. a cgroup controller we enabled)."""
    data = load(record)
    data[key] = value
    _save(record, data)


# --- pure helpers ---------------------------------------------------------------------------


def ours(chain: str) -> bool:
    return chain.startswith(CHAIN_PREFIXES)


def sweep_script(save: str) -> str:
    """iptables-restore --noflush input that removes our chains from iptables-save output.

    Rules in other chains that jump to ours are deleted first; then our chains are flushed and
    deleted. Nothing else is touched.
    """
    out: list[str] = []
    table: str | None = None
    chains: list[str] = []
    deletes: list[str] = []
    for line in save.splitlines():
        if line.startswith("*"):
            table, chains, deletes = line[1:].strip(), [], []
        elif line.startswith(":") and table:
            name = line[1:].split()[0]
            if ours(name):
                chains.append(name)
        elif line.startswith("-A ") and table:
            words = shlex.split(line)
            chain = words[1]
            target = next((words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-j", "-g")),
                          "")
            if not ours(chain) and ours(target):
                deletes.append("-D " + line[3:])
        elif line.strip() == "COMMIT" and table:
            if chains or deletes:
                out += [f"*{table}", *deletes, *(f"-F {c}" for c in chains),
                        *(f"-X {c}" for c in chains), "COMMIT"]
            table = None
    return "\n".join(out) + ("\n" if out else "")


def mounts_under(mountinfo: str, roots: list[Path]) -> list[Path]:
    """Mount points at or below any of ``roots``, deepest first (from /proc/self/mountinfo)."""
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = Path(fields[4].replace("\\040", " ").replace("\\011", "\t"))
        if any(point == r or r in point.parents for r in roots):
            found.append(point)
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


# --- undoing --------------------------------------------------------------------------------


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), input=stdin, capture_output=True, text=True, check=False,
                          timeout=60)


def remaining_chains() -> dict[str, list[str]]:
    """Our chains still present, per iptables binary and table (empty when none)."""
    left: dict[str, list[str]] = {}
    for binary in ("iptables", "ip6tables"):
        if shutil.which(f"{binary}-save") is None:
            continue
        for table in TABLES:
            save = _run(f"{binary}-save", "-t", table).stdout
            chains = [ln[1:].split()[0] for ln in save.splitlines()
                      if ln.startswith(":") and ours(ln[1:].split()[0])]
            if chains:
                left[f"{binary}/{table}"] = chains
    return left


def sweep_iptables() -> list[str]:
    """Remove our chains; returns the errors, if any."""
    errors = []
    for binary in ("iptables", "ip6tables"):
        if shutil.which(f"{binary}-restore") is None:
            continue
        for table in TABLES:
            script = sweep_script(_run(f"{binary}-save", "-t", table).stdout)
            if script:
                result = _run(f"{binary}-restore", "--noflush", stdin=script)
                if result.returncode != 0:
                    errors.append(f"{binary}-restore ({table}): {result.stderr.strip()}")
    return errors


def unmount_under(roots: list[Path]) -> list[str]:
    errors = []
    for point in mounts_under(Path("/proc/self/mountinfo").read_text(), roots):
        if _run("umount", str(point)).returncode != 0:
            result = _run("umount", "-l", str(point))
            # A shim may have unmounted it meanwhile: only a mount still there is an error.
            if result.returncode != 0 and point in mounts_under(
                    Path("/proc/self/mountinfo").read_text(), [point]):
                errors.append(f"umount {point}: {result.stderr.strip()}")
    return errors


def cgroup_dirs() -> list[Path]:
    """Our cgroup tree's top in every hierarchy where it exists."""
    cgroups = hostcheck.parse_cgroups(Path("/proc/self/mountinfo").read_text())
    return [h / nodeconfig.CGROUP_ROOT for h in cgroups.hierarchies()
            if (h / nodeconfig.CGROUP_ROOT).is_dir()]


def cgroup_pids() -> set[int]:
    pids: set[int] = set()
    for top in cgroup_dirs():
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in procs.read_text().split())
    return pids


def remove_cgroups(wait: float = 10.0) -> list[str]:
    """rmdir our cgroup tree, leaves first; processes in it must be gone (or going)."""
    deadline = time.monotonic() + wait
    while True:
        errors = []
        for top in cgroup_dirs():
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: len(Path(w[0]).parts),
                                        reverse=True):
                try:
                    Path(dirpath).rmdir()
                except FileNotFoundError:
                    pass
                except OSError as e:
                    errors.append(f"rmdir {dirpath}: {e.strerror}")
        if not errors or time.monotonic() > deadline:
            return errors
        time.sleep(0.2)


def delete_bridge() -> list[str]:
    if not Path(f"/sys/class/net/{nodeconfig.BRIDGE}").exists():
        return []
    result = _run("ip", "link", "delete", nodeconfig.BRIDGE)
    return [] if result.returncode == 0 else [f"ip link delete {nodeconfig.BRIDGE}: "
                                              f"{result.stderr.strip()}"]


def undo(record: Path, *, node_dirs: list[Path], docker_running: bool, progress: Progress,
         host_record: Path = HOST_RECORD) -> list[str]:
    """Put the host back as the record says; returns what could not be undone.

    The bridge, our iptables chains and our cgroup tree go even without a record: their names
    are ours alone. The record is removed only when everything else succeeded.
    """
    data = {**load(host_record), **load(record)}
    absent = [Path(p) for p in data.get("absent_dirs", []) or []]
    errors = delete_bridge()
    errors += sweep_iptables()
    errors += unmount_under([*node_dirs, *absent])
    errors += remove_cgroups()
    for path, controllers in (data.get("v2_enabled", {}) or {}).items():
        for controller in controllers:
            with contextlib.suppress(OSError):  # still used by someone: leave it on
                Path(path).write_text(f"-{controller}")
    restored = []
    for name, before in (data.get("sysctls", {}) or {}).items():
        if docker_running and name in DOCKER_NEEDS:
            continue
        now = read_sysctl(name)
        if now is not None and now != before:
            try:
                _sysctl_path(name).write_text(str(before))
                restored.append(f"{name} {now}→{before}")
            except OSError as e:
                errors.append(f"sysctl {name}={before}: {e.strerror}")
    for path in sorted(absent, key=lambda p: len(p.parts), reverse=True):
        shutil.rmtree(path, ignore_errors=True)
        if path.exists():
            errors.append(f"could not remove {path}")
    if restored:
        progress(f"sysctls restored: {', '.join(restored)}")
    if not errors:
        record.unlink(missing_ok=True)
        host_record.unlink(missing_ok=True)
    return errors
