"""The command line's own wiring: what reaches kubectl, and what reaches a shell's `eval`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconcile_lab import cli
from reconcile_lab.cluster import probing

# A state and a cache path with everything a shell would otherwise split or expand.
AWKWARD = "my state $HOME `id` 'q' \"dq\""


def test_cluster_env_is_eval_safe_in_a_real_bash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / AWKWARD
    kubectl = tmp_path / f"bin {AWKWARD}" / "kubectl"
    monkeypatch.setenv("RECONCILE_LAB_STATE", str(state))
    monkeypatch.setattr(probing, "kubectl_binary", lambda: str(kubectl))
    assert cli.main(["cluster", "env", "--provider", "kwok"]) == 0
    exports = capsys.readouterr().out
    result = subprocess.run(
        ["bash", "-c", 'eval "$1" && printf "%s\\n" "$KUBECONFIG" "$PATH"', "bash", exports],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=10, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    kubeconfig, path = result.stdout.splitlines()
    assert kubeconfig == str(cli.providers.kubeconfig("kwok"))
    assert kubeconfig.startswith(str(state))
    assert path == f"{kubectl.parent}:/usr/bin:/bin"


@pytest.fixture
def executed(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []

    def execve(path: str, argv: list[str], env: Any) -> None:
        calls.append(argv)

    monkeypatch.setattr(cli.os, "execve", execve)
    monkeypatch.setattr(probing, "kubectl_args", lambda kubeconfig: ["kubectl", "--kubeconfig",
                                                                     "KC"])
    return calls


def test_the_double_dash_of_the_makefile_does_not_reach_kubectl(
        executed: list[list[str]]) -> None:
    # The Makefile's KUBECTL is `reconcile-lab cluster kubectl --`; passed on, the `--` makes
    # kubectl print its help and exit 0, so `make install` installed nothing.
    cli.main(["cluster", "kubectl", "--", "apply", "-f", "crds/"])
    cli.main(["cluster", "kubectl", "get", "webapps", "-A"])
    cli.main(["cluster", "kubectl", "--", "exec", "pod", "--", "ls"])
    assert executed == [["kubectl", "--kubeconfig", "KC", "apply", "-f", "crds/"],
                        ["kubectl", "--kubeconfig", "KC", "get", "webapps", "-A"],
                        ["kubectl", "--kubeconfig", "KC", "exec", "pod", "--", "ls"]]


def test_kopfs_retries_go_on_for_ever_each_request_from_the_first_step() -> None:
    import itertools

    from reconcile_lab.declarative import handlers

    backoffs = handlers._RetryForever()
    first = list(itertools.islice(backoffs, 12))
    assert first == [*handlers.KOPF_RETRIES, 30.0, 30.0, 30.0, 30.0]
    assert list(itertools.islice(backoffs, 3)) == [1, 1, 2]  # a new request starts again
    assert not hasattr(backoffs, "__len__")  # kopf would count a last attempt
