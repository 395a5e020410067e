"""The embedded cluster: a real control plane comes up, runs a Deployment, and goes away whole."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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

    again = _cli("cluster", "up", "--provider", "kwok", "--nodes", "kwok", env=env)  # harmless
    assert again.returncode == 0 and "already running" in again.stderr
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
