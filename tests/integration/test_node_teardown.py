"""cluster down leaves the host as it found it: after a clean run, and after a run killed halfway.

Each case runs the CLI with a state directory of its own and compares the host with a snapshot
taken before: processes, mounts, the bridge, KUBE-*/CNI-* chains, the cgroup tree, sysctls and
directories (the list in hostchanges.py). The test run's real node, if any, is stopped for the
duration, since only one real node fits on a host, and started again afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconcile_lab.cluster import hostchanges, kwok, nodeconfig, probing, realnode
from tests.conftest import free_port, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.realnode, pytest.mark.slow]


def host_state() -> dict[str, Any]:
    return {
        "sysctls": {n: hostchanges.read_sysctl(n) for n in hostchanges.SYSCTLS},
        "dirs": {d: Path(d).exists() for d in hostchanges.HOST_DIRS},
    }


def leftovers(before: dict[str, Any], state: Path) -> list[str]:
    """Everything a node run left on the host (empty when nothing)."""
    found = []
    run = realnode.run_dir(state / "realnode")
    markers = (f"{state}/", f"{run}/")
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                zombie = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
            except (OSError, IndexError):
                continue
            if any(m in cmdline for m in markers) and not zombie:
                found.append(f"process {proc.name}: {cmdline[:120]}")
    mountinfo = Path("/proc/self/mountinfo").read_text()
    found += [f"mount {m}" for m in hostchanges.mounts_under(mountinfo, [state, run])]
    if run.exists():
        found.append(f"directory {run}")
    if Path(f"/sys/class/net/{nodeconfig.BRIDGE}").exists():
        found.append(f"bridge {nodeconfig.BRIDGE}")
    found += [f"chains {where}: {chains}" for where, chains in
              hostchanges.remaining_chains().items()]
    found += [f"cgroup {c}" for c in hostchanges.cgroup_dirs()]
    now = host_state()
    found += [f"sysctl {n}: {before['sysctls'][n]} → {v}" for n, v in now["sysctls"].items()
              if v != before["sysctls"][n]]
    found += [f"directory {d} {'appeared' if e else 'vanished'}" for d, e in now["dirs"].items()
              if e != before["dirs"][d]]
    return found


@pytest.fixture
def alone(request: pytest.FixtureRequest) -> Iterator[None]:
    """No other real node on the host while a case runs; the test run's comes back after."""
    say = lambda m: print(f"[node] {m}", file=sys.stderr)  # noqa: E731
    had = realnode.is_running()
    if had:
        realnode.down(progress=say)
    yield
    if had:
        kwok.up(progress=say, nodes="both")


class Run:
    """The CLI against a state directory of its own."""

    def __init__(self, tmp_path: Path) -> None:
        self.state = tmp_path / "state"
        home = tmp_path / "home"
        home.mkdir()
        self.env = {**os.environ, "RECONCILE_LAB_STATE": str(self.state), "HOME": str(home),
                    "RECONCILE_LAB_CACHE": os.environ.get(
                        "RECONCILE_LAB_CACHE", str(Path.home() / ".cache" / "reconcile-lab"))}
        self.port = free_port()

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "reconcile_lab", *args]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, env=self.env,
                              timeout=600, check=False)

    def up(self) -> subprocess.CompletedProcess[str]:
        return self.cli("cluster", "up", "--provider", "kwok", "--nodes", "both",
                        "--apiserver-port", str(self.port))

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kwok" / "clusters" / "reconcile-lab" / "kubeconfig.yaml"

    def running_pods(self, count: int) -> None:
        """A Deployment's pods running on the real node: containers, mounts, rules, cgroups."""
        k = probing.kubectl
        k(self.kubeconfig, "create", "deployment", "h", "--image=reconcile-lab/hello:v1",
          f"--replicas={count}")
        k(self.kubeconfig, "create", "service", "nodeport", "h", "--tcp=8080:8080",
          "--node-port=30190")

        def running() -> bool:
            out = k(self.kubeconfig, "get", "pods", "-o", "json").stdout
            pods = json.loads(out or '{"items": []}')["items"]
            return sum(p["status"].get("phase") == "Running" for p in pods) == count

        wait_for(running, timeout=60, interval=0.3, what=f"{count} running pods")

    def kill_everything(self, only: tuple[str, ...] = ()) -> None:
        """kill -9 of every process started from this state directory (or matching ``only``)."""
        markers = only or (f"{self.state}/", f"{realnode.run_dir(self.state / 'realnode')}/")
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) != os.getpid():
                try:
                    cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if any(m in cmdline for m in markers):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(proc.name), signal.SIGKILL)


def test_down_after_a_clean_run_leaves_the_host_as_it_was(tmp_path: Path, alone: None) -> None:
    before = host_state()
    run = Run(tmp_path)
    up = run.up()
    assert up.returncode == 0, up.stderr
    assert "real node 'localhost' Ready" in up.stderr, up.stderr
    run.running_pods(2)
    status = run.cli("cluster", "status", "--provider", "kwok").stdout
    assert "localhost: real" in status and "simulated (kwok)" in status, status
    assert leftovers(before, run.state), "a running node changes the host (else the check is blind)"
    down = run.cli("cluster", "down", "--provider", "kwok")
    assert down.returncode == 0, down.stderr
    assert leftovers(before, run.state) == []


def test_down_after_every_process_was_killed_leaves_the_host_as_it_was(
        tmp_path: Path, alone: None) -> None:
    before = host_state()
    run = Run(tmp_path)
    assert run.up().returncode == 0
    run.running_pods(2)
    run.kill_everything()  # etcd, apiserver, kubelet, containerd, shims; the containers live on
    down = run.cli("cluster", "down", "--provider", "kwok")
    assert down.returncode == 0, down.stderr
    assert leftovers(before, run.state) == []


def test_the_next_up_cleans_up_after_an_up_killed_halfway(tmp_path: Path, alone: None) -> None:
    before = host_state()
    run = Run(tmp_path)
    proc = subprocess.Popen(run.argv("cluster", "up", "--provider", "kwok", "--nodes", "both",
                                     "--apiserver-port", str(run.port)),
                            env=run.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    pid_file = run.state / "realnode" / "pids" / "kubelet.pid"
    wait_for(pid_file.exists, timeout=120, interval=0.05, what="the kubelet starting")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    # The control plane lives on (kwokctl detaches it); the node's processes die with the run.
    run.kill_everything(only=(f"{run.state}/realnode/", f"{realnode.run_dir(run.state / 'realnode')}/"))
    time.sleep(0.5)
    assert (run.state / "realnode-changes.json").is_file()  # the record survived the kill

    again = run.up()
    assert again.returncode == 0, again.stderr
    assert "removed what an earlier run of the real node left behind" in again.stderr
    run.running_pods(1)
    down = run.cli("cluster", "down", "--provider", "kwok")
    assert down.returncode == 0, down.stderr
    assert leftovers(before, run.state) == []
