"""The embedded cluster: a real control plane comes up, runs a Deployment, and goes away whole."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconcile_lab.cluster import kwok, probing
from tests.conftest import Cluster, free_port, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconcile_lab", *args], capture_output=True,
                          text=True, env=env, timeout=600, check=False)


def test_up_runs_a_deployment_and_down_leaves_nothing_behind(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "RECONCILE_LAB_STATE": str(tmp_path / "state"), "HOME": str(home),
           "RECONCILE_LAB_CACHE": os.environ.get("RECONCILE_LAB_CACHE",
                                                 str(Path.home() / ".cache" / "reconcile-lab"))}
    port = free_port()
    up = _cli("cluster", "up", "--provider", "kwok", "--nodes", "kwok", "--apiserver-port",
              str(port), env=env)
    assert up.returncode == 0, up.stderr
    assert "simulated nodes Ready" in up.stderr
    kubeconfig = tmp_path / "state" / "kwok" / "clusters" / "reconcile-lab" / "kubeconfig.yaml"
    cluster = Cluster(kubeconfig, probing.kubectl_binary())

    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert len(nodes) == kwok.NODES
    assert all(any(c["type"] == "Ready" and c["status"] == "True"
                   for c in n["status"]["conditions"]) for n in nodes)

    cluster.kubectl("create", "deployment", "hello", "--image=reconcile-lab/hello:v1",
                    "--replicas=3")
    wait_for(lambda: (cluster.get("deployment", "hello", "default") or {})
             .get("status", {}).get("readyReplicas") == 3, timeout=60, what="3 ready replicas")

    # A machine that "died" (its node's heartbeat taken, as exercise 14 does) is brought back
    # by the next up, which is otherwise harmless.
    from reconcile_lab.cluster import nodeconfig

    cluster.kubectl("patch", "lease", nodes[0]["metadata"]["name"], "-n",
                    nodeconfig.NODE_LEASE_NAMESPACE, "--type", "merge", "-p",
                    json.dumps(nodeconfig.dead_lease()))
    again = _cli("cluster", "up", "--provider", "kwok", "--nodes", "kwok", env=env)
    assert again.returncode == 0 and "already running" in again.stderr
    assert f"brought back 1 simulated machine(s) whose heartbeat had been taken: " \
        f"{nodes[0]['metadata']['name']}" in again.stderr
    holders = cluster.kubectl("get", "leases", "-n", nodeconfig.NODE_LEASE_NAMESPACE, "-o",
                              "jsonpath={.items[*].spec.holderIdentity}").stdout
    assert nodeconfig.DEAD_HOLDER not in holders
    status = _cli("cluster", "status", "--json", env=env)
    assert json.loads(status.stdout)["running"] is True
    assert _cli("cluster", "env", env=env).stdout.startswith(f"export KUBECONFIG={kubeconfig}")

    listening = [p for p in range(port, port + 1) if _listening(p)]
    assert listening == [port]
    down = _cli("cluster", "down", "--provider", "kwok", env=env)
    assert down.returncode == 0, down.stderr
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit()
                 and str(tmp_path / "state") in _cmdline(p)]
    assert leftovers == []
    assert not _listening(port)
    assert not (tmp_path / "state" / "kwok" / "clusters" / "reconcile-lab").exists()
    assert not (home / ".kube").exists(), "the user's ~/.kube was touched"


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_taken_port_is_named_with_the_fix(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        env = {**os.environ, "RECONCILE_LAB_STATE": str(tmp_path / "state")}
        result = _cli("cluster", "up", "--provider", "kwok", "--apiserver-port", str(taken),
                      env=env)
    assert result.returncode == 1
    assert f"port {taken} on 127.0.0.1 is already taken" in result.stderr
    assert "fix:" in result.stderr


def _env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    from reconcile_lab import paths

    return {**os.environ, "RECONCILE_LAB_STATE": str(tmp_path / "state"),
            "RECONCILE_LAB_CACHE": str(paths.cache_dir()), **extra}


def test_another_kit_cluster_coming_and_going_leaves_every_kubeconfig_as_it_was(
        tmp_path: Path, cluster: Cluster) -> None:
    # The shell of a participant after `eval "$(reconcile-lab cluster env)"`: $KUBECONFIG is
    # the main cluster's; ~/.kube/config is their own. `make test` makes and removes another.
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    own = home / ".kube" / "config"
    own.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n"
                   "current-context: mine\n")
    before = {p: p.read_bytes() for p in (cluster.kubeconfig, own)}
    env = _env_for(tmp_path, HOME=str(home), KUBECONFIG=str(cluster.kubeconfig))
    for action in ("up", "down"):
        result = _cli("cluster", action, "--provider", "kwok", env=env)
        assert result.returncode == 0, result.stderr
    assert {p: p.read_bytes() for p in before} == before
    cluster.kubectl("get", "namespace", "default")  # the main cluster still answers


@pytest.mark.parametrize("ran_for", [0.0, 20.0], ids=["right-after-creation", "after-a-while"])
def test_killed_with_every_process_it_comes_back_with_its_data(tmp_path: Path,
                                                                ran_for: float) -> None:
    env = _env_for(tmp_path)
    try:
        up = _cli("cluster", "up", "--provider", "kwok", env=env)
        assert up.returncode == 0, up.stderr
        kubeconfig = tmp_path / "state" / "kwok" / "clusters" / "reconcile-lab" / "kubeconfig.yaml"
        c = Cluster(kubeconfig, probing.kubectl_binary())
        c.kubectl("create", "namespace", "kept")
        time.sleep(ran_for)
        ours = [p for p in Path("/proc").iterdir() if p.name.isdigit()
                and str(tmp_path / "state") in _cmdline(p)]
        assert len(ours) >= 5
        for proc in ours:  # a reboot, a killed terminal
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)
        started = time.monotonic()
        again = _cli("cluster", "up", "--provider", "kwok", env=env)
        took = time.monotonic() - started
        assert again.returncode == 0, again.stderr
        assert "with its data" in again.stderr, again.stderr
        assert c.get("namespace", "kept") is not None
        print(f"back in {took:.1f}s")
        assert took < 60
    finally:
        _cli("cluster", "down", "--provider", "kwok", env=env)
