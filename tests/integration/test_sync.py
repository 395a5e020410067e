"""A folder as what runs, for real: `reconcile-lab sync DIR` on the kit's cluster and
`reconcile-lab docker apply -f DIR --prune` on the Docker engine, as a person runs them.

What is checked is what the folder promises: every file's app is there as the file says, a hand
edit is put back by the next sync, a removed file removes its app, and nothing outside the
project (no label, another project, another namespace) is ever touched; a bad file changes
nothing at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import cases
from tests.conftest import Cluster, Operator, wait_for

ROOT = Path(__file__).resolve().parents[2]
RL = [sys.executable, "-m", "reconcile_lab"]
PROJECT = "reconcile-lab.dev/project"


def _run(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECONCILE_LAB_STATE": str(state),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT)])}
    return subprocess.run([*RL, *args], capture_output=True, text=True, timeout=180, env=env,
                          check=False)


def _write(folder: Path, name: str, **spec: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(cases.webapp(name, **spec)))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "apps"


@pytest.mark.cluster
def test_the_cluster_becomes_the_folder_and_only_the_projects_webapps_are_pruned(
        cluster: Cluster, operator: Operator, namespace: str, folder: Path,
        test_state: Path) -> None:
    kubeconfig = str(cluster.kubeconfig)
    _write(folder, "front", replicas=2)
    _write(folder, "back", replicas=1)
    cluster.apply(cases.webapp("by-hand", namespace))  # in the namespace, not of the project
    other = f"t-{uuid.uuid4().hex[:8]}"  # another team's folder of the same name
    cluster.kubectl("create", "namespace", other)
    try:
        theirs = cases.webapp("theirs", other)
        theirs["metadata"]["labels"] = {PROJECT: "apps"}
        cluster.apply(theirs)

        done = _run("sync", str(folder), "-n", namespace, "--kubeconfig", kubeconfig,
                    state=test_state)
        assert done.returncode == 0, done.stderr
        assert "webapp.reconcile-lab.dev/front applied" in done.stdout
        synced = {w["metadata"]["name"]: w for w in cluster.list("webapps", namespace,
                                                                  f"{PROJECT}=apps")}
        assert set(synced) == {"front", "back"}
        assert synced["front"]["spec"]["replicas"] == 2
        wait_for(lambda: (cluster.get("deployment", "front", namespace) or {}).get(
            "status", {}).get("readyReplicas") == 2, timeout=120, what="front's pods")

        # A hand edit stays until the next sync, which puts the folder's value back.
        cluster.kubectl("scale", "webapp", "front", "-n", namespace, "--replicas=1")
        again = _run("sync", str(folder), "-n", namespace, "--kubeconfig", kubeconfig,
                     state=test_state)
        assert again.returncode == 0, again.stderr
        assert "webapp.reconcile-lab.dev/front configured" in again.stdout
        assert "webapp.reconcile-lab.dev/back unchanged" in again.stdout
        assert (cluster.get("webapp", "front", namespace) or {})["spec"]["replicas"] == 2

        # A file removed: its app goes, and its children with it.
        (folder / "back.yaml").unlink()
        pruned = _run("sync", str(folder), "-n", namespace, "--kubeconfig", kubeconfig,
                      state=test_state)
        assert pruned.returncode == 0, pruned.stderr
        assert "webapp.reconcile-lab.dev/back pruned" in pruned.stdout
        assert cluster.get("webapp", "back", namespace) is None
        wait_for(lambda: cluster.get("deployment", "back", namespace) is None, timeout=60,
                 what="back's Deployment to be collected")
        assert cluster.get("webapp", "by-hand", namespace) is not None
        assert cluster.get("webapp", "theirs", other) is not None
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


@pytest.mark.cluster
def test_one_bad_file_and_nothing_is_applied_or_pruned(
        cluster: Cluster, namespace: str, folder: Path, test_state: Path) -> None:
    _write(folder, "good", replicas=1)
    (folder / "bad.yaml").write_text(yaml.safe_dump(cases.webapp("bad", replicas=-1)))
    done = _run("sync", str(folder), "-n", namespace, "--kubeconfig", str(cluster.kubeconfig),
                state=test_state)
    assert done.returncode == 2
    assert f"{folder / 'bad.yaml'}" in done.stderr and "spec.replicas" in done.stderr
    assert cluster.list("webapps", namespace) == []


@pytest.fixture
def project_apps(docker_engine: Any) -> Iterator[list[str]]:
    """App names of the Docker test, removed afterwards whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        subprocess.run([*RL[:3], "docker", "delete", name], capture_output=True, timeout=120,
                       check=False)


@pytest.mark.docker
def test_the_twin_prunes_what_left_the_folder_and_nothing_else(
        folder: Path, tmp_path: Path, project_apps: list[str]) -> None:
    run = f"p{uuid.uuid4().hex[:6]}"
    keep, gone, outside = f"{run}-keep", f"{run}-gone", f"{run}-outside"
    project_apps += [keep, gone, outside]
    _write(folder, keep, replicas=1)
    _write(folder, gone, replicas=1)
    alone = tmp_path / "alone.yaml"
    alone.write_text(yaml.safe_dump(cases.webapp(outside, replicas=1)))
    state = tmp_path / "state"
    assert _run("docker", "apply", "-f", str(alone), state=state).returncode == 0
    first = _run("docker", "apply", "-f", str(folder), "--prune", state=state)
    assert first.returncode == 0, first.stderr
    labelled = subprocess.run(["docker", "ps", "--filter", "label=reconcile-lab/project=apps",
                               "--format", "{{.Names}}"], capture_output=True, text=True,
                              check=True).stdout.split()
    assert sorted(labelled) == [f"{gone}-1", f"{keep}-1"]

    (folder / f"{gone}.yaml").unlink()
    second = _run("docker", "apply", "-f", str(folder), "--prune", state=state)
    assert second.returncode == 0, second.stderr
    assert f"# pruning {gone}: labelled reconcile-lab/project=apps, in no file any more" in \
        second.stdout
    left = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True,
                          text=True, check=True).stdout.split()
    assert f"{gone}-1" not in left and f"{keep}-1" in left and f"{outside}-1" in left
    networks = subprocess.run(["docker", "network", "ls", "--format", "{{.Name}}"],
                              capture_output=True, text=True, check=True).stdout.split()
    assert gone not in networks and keep in networks
