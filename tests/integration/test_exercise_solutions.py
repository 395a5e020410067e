"""Every exercise's reset and solution on the real cluster, operator and Docker engine, through
the commands a participant runs: after `exercise reset NN` the check fails, after `exercise
solve NN` it passes, `exercise status` says so, and a reset after the solution makes it fail
again.

The exercises start and stop the operator themselves (`operator start|stop`, exercise 07), so
the session's operator steps aside meanwhile: two operators on one cluster would both act.
Every server the solutions start (the operator, the twin's loop, Prometheus in exercise 08)
listens on a free port, moved there by the variables of ``reconcile_lab.ports`` the way a
participant whose 8000 or 9090 is taken would move it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconcile_lab import ports
from reconcile_lab.workshop import catalog, running
from tests.conftest import Cluster, Operator, free_port

pytestmark = [pytest.mark.cluster, pytest.mark.realnode, pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
RL = [sys.executable, "-m", "reconcile_lab"]
TESTED = [e.number for e in catalog.ENTRIES]


@pytest.fixture(scope="module")
def env(test_state: Path) -> dict[str, str]:
    # What reset and solve start listens on free ports, never on 8000, 8001, 8080 or 9090.
    return {**os.environ, "RECONCILE_LAB_STATE": str(test_state),
            **{port.variable: str(free_port()) for port in ports.ALL},
            "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT)])}


@pytest.fixture(scope="module")
def own_operator(cluster: Cluster, operator: Operator, docker_engine: Any,
                 env: dict[str, str]) -> Iterator[None]:
    operator.kill(signal.SIGTERM)
    try:
        yield
    finally:
        subprocess.run([*RL, "operator", "stop"], env=env, capture_output=True, timeout=60,
                       check=False)
        operator.start()


def _running_with(*where: str) -> list[str]:
    """Command lines that name one of these paths: what a solution starts in the background
    names the exercise's files (the twin's loop) or keeps its data there (Prometheus)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and any(w.encode() in a for a in argv for w in where):
            found.append(b" ".join(argv).decode(errors="replace")[:200])
    return found


def exercise(env: dict[str, str], cluster: Cluster, *args: str,
             timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RL, "exercise", *args, "--kubeconfig", str(cluster.kubeconfig)],
                          env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize("number", TESTED)
def test_reset_then_the_check_fails_solve_then_it_passes(
        number: str, cluster: Cluster, namespace: str, own_operator: None,
        env: dict[str, str]) -> None:
    where = ("--namespace", namespace)
    try:
        reset = exercise(env, cluster, "reset", number, *where)
        assert reset.returncode == 0, reset.stdout + reset.stderr
        assert f"$ kubectl -n {namespace} delete webapp hello " in reset.stdout

        before = exercise(env, cluster, "check", number, *where)
        assert before.returncode == 1, f"exercise {number} passes right after its reset:\n" \
            + before.stdout
        assert before.stdout.startswith(f"FAIL  exercise {number}: "), before.stdout

        solve = exercise(env, cluster, "solve", number, *where)
        assert solve.returncode == 0, solve.stdout + solve.stderr
        for command in catalog.solution(catalog.find(number), namespace):
            # Up to the first example file: solve types the namespace's copy of it.
            head = catalog.FILE.split(command.split(" -f ")[0])[0]
            assert f"$ {head}" in solve.stdout, command
        assert f"PASS  exercise {number}: " in solve.stdout

        after = exercise(env, cluster, "check", number, *where)
        assert after.returncode == 0, after.stdout
        status = subprocess.run([*RL, "exercise", "status"], env=env, capture_output=True,
                                text=True, timeout=60, check=True).stdout
        row = next(line for line in status.splitlines() if line.startswith(f"{number}  "))
        assert "done (solved)" in row, status

        # After a solution, reset puts it all back: no evidence of it is left to count.
        again = exercise(env, cluster, "reset", number, *where)
        assert again.returncode == 0, again.stdout + again.stderr
        after_reset = exercise(env, cluster, "check", number, *where)
        assert after_reset.returncode == 1, f"exercise {number} passes after reset:\n" \
            + after_reset.stdout
        state = Path(env["RECONCILE_LAB_STATE"])
        left = _running_with(str(state / "exercises"), str(state / "prometheus"))
        assert not left, f"the solution of {number} left running after its reset: {left}"
    finally:
        running.stop_background(Path(env["RECONCILE_LAB_STATE"]) / "exercises" / number)
        # Every machine back, whatever step failed (exercise 14 takes a node's heartbeat).
        subprocess.run(["bash", "-c", catalog.REVIVE], env=running.environment(cluster.kubeconfig),
                       capture_output=True, timeout=60, check=False)
        subprocess.run([*RL, "docker", "delete", catalog.APP, "-n", namespace], env=env,
                       capture_output=True, timeout=120, check=False)
