"""The exercise checks against the real cluster, operator and Docker engine: each fails before
the participant's action and passes after it, through `reconcile-lab exercise check`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconcile_lab.imperative import containers
from reconcile_lab.workshop import exercises
from tests import cases
from tests.conftest import Cluster, Operator, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]  # the pods run as real containers
ROOT = Path(__file__).resolve().parents[2]
RL = [sys.executable, "-m", "reconcile_lab"]


def _env(state: Path) -> dict[str, str]:
    return {**os.environ, "RECONCILE_LAB_STATE": str(state),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT)])}


class Checker:
    def __init__(self, cluster: Cluster, namespace: str, app: str, state: Path) -> None:
        self.cluster, self.namespace, self.app, self.state = cluster, namespace, app, state

    def __call__(self, number: str) -> tuple[bool, str]:
        done = subprocess.run(
            [*RL, "exercise", "check", number, "--namespace", self.namespace, "--app", self.app,
             "--kubeconfig", str(self.cluster.kubeconfig)],
            env=_env(self.state), capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode in (0, 1), done.stderr
        assert done.stdout.startswith(("PASS  exercise", "FAIL  exercise")), done.stdout
        return done.returncode == 0, done.stdout

    def until(self, number: str, text: str, timeout: float = 30) -> str:
        """Check again every second until the output says ``text``; return it."""
        def seen() -> str | None:
            out = self(number)[1]
            return out if text in out else None
        return str(wait_for(seen, timeout=timeout, interval=1,
                            what=f"exercise {number} to say {text!r}"))

    def passes(self, number: str, timeout: float = 30) -> str:
        return self.until(number, f"PASS  exercise {number}", timeout=timeout)

    def webapp(self, **fields: Any) -> None:
        self.cluster.apply(cases.webapp(self.app, self.namespace, **fields))


@pytest.fixture
def check(cluster: Cluster, operator: Operator, namespace: str, tmp_path: Path) -> Checker:
    return Checker(cluster, namespace, f"ex{uuid.uuid4().hex[:6]}", tmp_path / "state")


def test_01_02_04_first_webapp_then_scale_then_drift_repair(check: Checker) -> None:
    ok, out = check("01")
    assert not ok and "no WebApp" in out and "kubectl apply" in out
    check.webapp(replicas=3, healthCheck={"path": "/healthz"})
    assert "3/3 replicas" in check.passes("01")

    ok, out = check("02")
    assert not ok and "asks for 3 replicas" in out
    check.cluster.kubectl("scale", "-n", check.namespace, f"webapp/{check.app}", "--replicas=5")
    check.passes("02")

    ok, out = check("04")
    assert not ok and "no drift repaired yet" in out
    check.cluster.kubectl("delete", "-n", check.namespace, "service", check.app)
    assert f"Service {check.app} repaired" in check.passes("04")


def test_05_rollout_and_rollback(check: Checker) -> None:
    check.webapp(replicas=2)
    check.passes("01")
    ok, out = check("05")
    assert not ok and "no rollout to v2 yet" in out
    check.webapp(replicas=2, image="reconcile-lab/hello:v2")
    assert check.until("05", "now roll back").startswith("FAIL")
    check.webapp(replicas=2)
    assert "revision 3" in check.passes("05")


@pytest.mark.docker
def test_03_and_06_self_healing_and_garbage_collection_on_both_engines(
        check: Checker, docker_engine: Any, tmp_path: Path) -> None:
    check.webapp(replicas=2, healthCheck={"path": "/healthz", "periodSeconds": 1})
    check.passes("01")
    file = tmp_path / "webapp.yaml"
    # The same file on both sides, namespace included: the checker reads the twin's containers
    # of the WebApp's namespace, named as the twin names them there.
    file.write_text(yaml.safe_dump(cases.webapp(check.app, check.namespace, replicas=2,
                                                 healthCheck={"path": "/healthz",
                                                              "periodSeconds": 1})))
    first = containers.container_name(containers.docker_name(check.app, check.namespace), 1)
    twin = [*RL, "docker", "apply", "-f", str(file)]
    env = _env(check.state)
    try:
        assert subprocess.run(twin, env=env, capture_output=True, timeout=120,
                              check=False).returncode == 0
        ok, out = check("03")
        assert not ok and "no pod of the app has been replaced yet" in out

        pods = check.cluster.list("pods", check.namespace, f"app.kubernetes.io/instance={check.app}")
        check.cluster.kubectl("delete", "pod", "-n", check.namespace,
                              pods[0]["metadata"]["name"], "--wait=false")
        check.until("03", "no container of the twin has been killed yet")
        subprocess.run(["docker", "kill", first], capture_output=True, check=True)
        ok, out = check("03")
        assert not ok and "Docker keeps no desired state" in out
        # A restart counts when StartedAt is clearly later than Created.
        time.sleep(exercises.RESTARTED_AFTER + 0.5)
        assert subprocess.run(twin, env=env, capture_output=True, timeout=120,
                              check=False).returncode == 0
        check.passes("03")

        ok, out = check("06")
        assert not ok and "still exists" in out
        check.cluster.kubectl("delete", "webapp", "-n", check.namespace, check.app)
        out = check.until("06", "Docker still has", timeout=60)
        assert first in out and "reconcile-lab docker delete" in out
        subprocess.run([*RL, "docker", "delete", check.app, "-n", check.namespace], env=env,
                       capture_output=True, timeout=120, check=True)
        check.passes("06")
    finally:
        subprocess.run([*RL, "docker", "delete", check.app, "-n", check.namespace], env=env,
                       capture_output=True, timeout=120, check=False)
