"""Can a real kubelet run on this machine? Plain answers before anything is started.

The parsers (``parse_*``, ``missing_capabilities``) are pure and take the text of the files they
read; ``check()`` reads those files and asks for free ports. Nothing here changes the host or
starts a process: it only reports what is wrong and what to do about it.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from reconcile_lab.cluster import nodeconfig

# Bits of the capability bounding set (linux/capability.h) the node cannot do without, and why.
REQUIRED_CAPABILITIES = {
    0: ("CAP_CHOWN", "container image layers are unpacked with their owners"),
    1: ("CAP_DAC_OVERRIDE", "the runtime writes into every container's directories"),
    5: ("CAP_KILL", "the kubelet stops containers"),
    6: ("CAP_SETGID", "containers run as their own group"),
    7: ("CAP_SETUID", "containers run as their own user"),
    12: ("CAP_NET_ADMIN", "the CNI bridge, veth pairs and iptables rules"),
    18: ("CAP_SYS_CHROOT", "runc pivots into the container's root"),
    21: ("CAP_SYS_ADMIN", "mounts, namespaces and cgroups"),
}
# Bits whose absence is worked around; said once, so that nobody is surprised.
WORKED_AROUND = {
    24: ("CAP_SYS_RESOURCE", "runc cannot lower a sandbox's oom_score_adj; containerd is "
         "configured with restrict_oom_score_adj = true"),
}
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "pids")
V2_CONTROLLERS = ("cpu", "memory", "pids")
TOOLS = {"iptables": "iptables", "iptables-save": "iptables", "iptables-restore": "iptables",
         "ip": "iproute2", "mount": "mount", "openssl": "openssl"}


class Cgroups(NamedTuple):
    """Where the cgroup hierarchies are mounted."""

    v1: dict[str, Path]   # controller (or "name=systemd") → mount point
    v2: Path | None       # the cgroup2 mount, if any

    @property
    def layout(self) -> str:
        if self.v1:
            return "hybrid" if self.v2 else "v1"
        return "v2" if self.v2 else "none"

    def hierarchies(self) -> list[Path]:
        """Every mount point once, v1 first."""
        seen: list[Path] = []
        for path in [*self.v1.values(), *([self.v2] if self.v2 else [])]:
            if path not in seen:
                seen.append(path)
        return seen


class Report(NamedTuple):
    problems: list[str]  # each blocks the real node and says what to do
    notes: list[str]     # worked around; worth knowing
    cgroups: Cgroups

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_cgroups(mountinfo: str) -> Cgroups:
    """The cgroup mounts in /proc/self/mountinfo."""
    v1: dict[str, Path] = {}
    v2: Path | None = None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, extra = left.split(), right.split()
        if len(fields) < 5 or len(extra) < 3:
            continue
        mount_point, fstype, options = Path(fields[4]), extra[0], extra[2].split(",")
        if fstype == "cgroup2":
            v2 = mount_point
        elif fstype == "cgroup":
            for option in options:
                if option in V1_CONTROLLERS or option.startswith("name=") or option in (
                        "devices", "freezer", "blkio", "hugetlb", "net_cls", "net_prio",
                        "perf_event", "rdma", "misc"):
                    v1[option] = mount_point
    return Cgroups(v1, v2)


def missing_capabilities(status: str) -> tuple[list[str], list[str]]:
    """(blocking, worked-around) capabilities absent from CapBnd in /proc/self/status."""
    bounding = 0
    for line in status.splitlines():
        if line.startswith("CapBnd:"):
            bounding = int(line.split(":", 1)[1].strip(), 16)
    blocking = [f"{name} ({why})" for bit, (name, why) in REQUIRED_CAPABILITIES.items()
                if not bounding >> bit & 1]
    worked = [f"{name} is missing: {why}" for bit, (name, why) in WORKED_AROUND.items()
              if not bounding >> bit & 1]
    return blocking, worked


def route_conflicts(proc_net_route: str, subnet: str, bridge: str) -> list[str]:
    """Interfaces other than our bridge that route into the pods' subnet (/proc/net/route)."""
    ours = ipaddress.ip_network(subnet)
    conflicts = []
    for line in proc_net_route.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8 or cols[0] == bridge:
            continue
        dest = ipaddress.IPv4Address(int(cols[1], 16).to_bytes(4, "little"))
        mask = ipaddress.IPv4Address(int(cols[7], 16).to_bytes(4, "little"))
        net = ipaddress.ip_network(f"{dest}/{mask}", strict=False)
        if net.prefixlen > 0 and net.overlaps(ours):
            conflicts.append(f"{cols[0]} ({net})")
    return conflicts


def cgroup_problems(cgroups: Cgroups, v2_controllers: str) -> list[str]:
    if cgroups.layout == "none":
        return ["no cgroup hierarchy is mounted under /sys/fs/cgroup.\n"
                "  fix: mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup) or run on a host "
                "with systemd's default cgroup set-up."]
    if cgroups.v1:
        absent = [c for c in V1_CONTROLLERS if c not in cgroups.v1]
        if absent:
            return [f"cgroup v1 controllers {', '.join(absent)} are not mounted "
                    "(/proc/self/mountinfo).\n  fix: mount them under /sys/fs/cgroup/<name>, "
                    "or boot with systemd.unified_cgroup_hierarchy=1 for cgroup v2."]
        return []
    absent = [c for c in V2_CONTROLLERS if c not in v2_controllers.split()]
    if absent:
        return [f"cgroup v2 controllers {', '.join(absent)} are not available in "
                f"{cgroups.v2}/cgroup.controllers.\n  fix: enable them for this (container's) "
                "cgroup, e.g. with Docker's --cgroupns=private, or run on the host itself."]
    return []


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def check(*, runc: Path | None, port_free: Callable[[int], bool] = _port_free) -> Report:
    """Everything a real node needs from this host, in the order a person would fix it."""
    problems: list[str] = []
    notes: list[str] = []
    cgroups = parse_cgroups(_read("/proc/self/mountinfo"))
    if sys.platform != "linux":
        problems.append(f"this is {sys.platform}, and a real kubelet needs Linux.\n"
                        "  fix: use --provider kind (Docker Desktop runs a Linux VM) or run on Linux.")
        return Report(problems, notes, cgroups)
    if os.geteuid() != 0:
        problems.append("a real node mounts, makes cgroups and network bridges: it needs root.\n"
                        "  fix: run `sudo reconcile-lab cluster up`, or --nodes kwok for simulated "
                        "nodes only.")
    blocking, worked = missing_capabilities(_read("/proc/self/status"))
    if blocking:
        problems.append("this process's capability bounding set (CapBnd in /proc/self/status) "
                        f"lacks {'; '.join(blocking)}.\n  fix: run on the host or in a container "
                        "started with --privileged.")
    notes += worked
    problems += cgroup_problems(cgroups, _read(f"{cgroups.v2}/cgroup.controllers")
                                if cgroups.v2 else "")
    if "overlay" not in _read("/proc/filesystems"):
        problems.append("the kernel has no overlay filesystem (/proc/filesystems), which "
                        "containerd's snapshotter needs.\n  fix: modprobe overlay.")
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        problems.append(f"missing tools from the Debian packages {', '.join(missing)}.\n"
                        f"  fix: apt-get install {' '.join(missing)}.")
    if runc is None:
        problems.append("no runc found (Debian's runc comes with docker.io).\n"
                        "  fix: apt-get install runc.")
    taken = [f"{port} ({what})" for port, what in nodeconfig.PORTS.items() if not port_free(port)]
    if taken:
        problems.append(f"ports on 127.0.0.1 already taken: {', '.join(taken)}; another real "
                        "node may run from a different state directory.\n  fix: find the owner "
                        f"with `ss -ltnp 'sport = :{nodeconfig.KUBELET_PORT}'`; if it is a "
                        "reconcile-lab node, run `cluster down` with its RECONCILE_LAB_STATE.")
    conflicts = route_conflicts(_read("/proc/net/route"), nodeconfig.POD_SUBNET, nodeconfig.BRIDGE)
    if conflicts:
        problems.append(f"the pods' subnet {nodeconfig.POD_SUBNET} is already routed via "
                        f"{', '.join(conflicts)} (/proc/net/route).\n  fix: remove that route "
                        "or network, or change POD_SUBNET in cluster/nodeconfig.py.")
    return Report(problems, notes, cgroups)


def format_report(report: Report) -> str:
    lines = [f"a real node cannot run here ({len(report.problems)} "
             f"problem{'s' if len(report.problems) != 1 else ''}):"]
    lines += [f"- {p}" for p in report.problems]
    return "\n".join(lines)
