"""A participant's shell, as the README has it: the kit's env, `make test`, then `make demo`.

After `eval "$(reconcile-lab cluster env)"` the shell's $KUBECONFIG is the main cluster's and
~/.kube/config is the participant's own. `make test` then makes (and removes) clusters of its
own, and `make demo` must still find the main cluster as it was. Neither file may change by a
byte. Here the session's cluster plays the main one, so the demo runs on its real node.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconcile_lab import demoing, paths
from tests.conftest import Cluster, Operator
from tests.integration.test_makefile import make

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.slow, pytest.mark.realnode]


def _shell_after_eval(home: Path) -> dict[str, str]:
    """The environment of a bash that ran the README's eval line."""
    script = f'eval "$("{sys.executable}" -m reconcile_lab cluster env)" && env -0'
    env = {**os.environ, "HOME": str(home),
           "RECONCILE_LAB_CACHE": str(paths.cache_dir())}  # the caches, as before HOME moved
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, check=True)
    pairs = (item.split(b"=", 1) for item in done.stdout.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode() for k, v in pairs}


def _pytest_args(tmp_path: Path, name: str, *selection: str) -> str:
    # Its own basetemp: the inner run never rotates away this run's temporary directories.
    # Quoted: make hands PYTEST_ARGS to a shell.
    return "PYTEST_ARGS=" + shlex.join(["-q", "-p", "no:cacheprovider",
                                        f"--basetemp={tmp_path / name}", *selection])


def test_with_the_kits_env_make_test_then_make_demo_work_and_change_no_kubeconfig(
        cluster: Cluster, operator: Operator, docker_engine: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    own = home / ".kube" / "config"
    own.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n"
                   "current-context: mine\n")
    shell = _shell_after_eval(home)
    assert shell["KUBECONFIG"] == str(cluster.kubeconfig)
    before = {p: p.read_bytes() for p in (cluster.kubeconfig, own)}

    make("test-unit", _pytest_args(tmp_path, "unit", "-k", "test_spec"), env=shell)
    make("test-integration", _pytest_args(tmp_path, "integration", "-k",
                                          "test_manifests_and_dashboards_regenerate"), env=shell)
    inner = make("test", _pytest_args(tmp_path, "test", "tests/integration/test_cluster.py",
                                      "-k", "up_runs_a_deployment or another_kit_cluster"),
                 env=shell, timeout=900)
    assert "2 passed" in inner.stdout, inner.stdout[-2000:]
    assert {p: p.read_bytes() for p in before} == before, "make test changed a kubeconfig"

    operator.kill(signal.SIGTERM)  # the demo starts the kit's own operator
    try:
        demo = make("demo", env=shell, timeout=600)
        # The same fault on both sides: SIGKILL to a main process; the kubelet restarts it.
        assert "killed → restarted in place in" in demo.stdout, demo.stdout
        assert "kwok simulates pods" not in demo.stdout  # the real node ran it
    finally:
        stop = subprocess.run([sys.executable, "-m", "reconcile_lab", "operator", "stop"],
                              env=shell, capture_output=True, text=True, check=False)
        cluster.kubectl("delete", "-n", demoing.NAMESPACE, "webapp", demoing.APP,
                        "--ignore-not-found", "--wait=true", "--timeout=60s", timeout=90)
        subprocess.run([sys.executable, "-m", "reconcile_lab", "docker", "delete", "-f",
                        str(demoing.EXAMPLE)], env=shell, capture_output=True, check=False)
        operator.start()
    assert stop.returncode == 0, stop.stderr
    assert {p: p.read_bytes() for p in before} == before, "make demo changed a kubeconfig"
