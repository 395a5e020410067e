"""The Makefile targets README and `make help` name, run for real, each checked for its effect.

A target that exits 0 and does nothing is the failure looked for here (the Makefile's KUBECTL
once handed kubectl a `--`, and install, uninstall, deploy and undeploy printed kubectl's help).
They run on the tests' own kwok cluster, in the tests' own state dir, with this Python
environment (`-o deps`: never (re)build an environment from a test). Slow or machine-wide
targets (demo, compare, bench, test*, cluster, down, run, grafana) are left out;
docker-build runs in test_incluster.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconcile_lab import cli
from reconcile_lab.cluster import images, providers
from reconcile_lab.declarative import permissions
from tests.conftest import Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
CRD = "webapps.reconcile-lab.dev"


def make(*targets: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    venv = Path(sys.executable).parent.parent
    result = subprocess.run(["make", "--no-print-directory", "-o", "deps", f"VENV={venv}",
                             *targets], cwd=REPO, capture_output=True, text=True,
                            timeout=timeout, env=dict(os.environ), check=False)
    assert result.returncode == 0, f"make {' '.join(targets)}:\n{result.stdout}{result.stderr}"
    assert "Usage:\n  kubectl" not in result.stdout + result.stderr, "kubectl printed its help"
    return result


@pytest.fixture
def kwok_cluster(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[Cluster]:
    if request.config.getoption("cluster_provider") != "kwok":
        pytest.skip("the Makefile targets run on the kit's own kwok cluster")
    providers.remember("kwok")  # what `cluster up` records; make's commands find it so
    assert providers.kubeconfig() == cluster.kubeconfig
    yield cluster
    make("install")  # the rest of the session needs the CRD back


def exists(cluster: Cluster, kind: str, name: str, namespace: str | None = None) -> bool:
    return cluster.get(kind, name, namespace) is not None


def deployed_objects(cluster: Cluster) -> dict[str, bool]:
    ns = permissions.NAMESPACE
    return {
        "namespace": exists(cluster, "namespace", ns),
        "serviceaccount": exists(cluster, "serviceaccount", permissions.NAME, ns),
        "clusterrole": exists(cluster, "clusterrole", permissions.NAME),
        "clusterrolebinding": exists(cluster, "clusterrolebinding", permissions.NAME),
        "deployment": exists(cluster, "deployment", permissions.NAME, ns),
        "service": exists(cluster, "service", f"{permissions.NAME}-metrics", ns),
    }


def test_help_lists_every_target_this_test_runs() -> None:
    shown = re.sub(r"\x1b\[[0-9;]*m", "", make("help").stdout)  # without its colours
    for target in ("install", "uninstall", "deploy", "undeploy", "status", "manifests",
                   "dashboards"):
        assert re.search(rf"^  {target} +\S", shown, re.MULTILINE), f"make help lacks {target}"


def test_manifests_and_dashboards_regenerate_exactly_what_is_committed() -> None:
    before = {path: (REPO / path).read_text() for path in cli.generated()}
    make("manifests", "dashboards")
    assert {path: (REPO / path).read_text() for path in cli.generated()} == before
    changed = subprocess.run(["git", "status", "--porcelain", "--", "crds", "deploy",
                              "examples/observability"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout
    assert changed == "", f"make manifests/dashboards changed committed files:\n{changed}"


def test_install_deploy_undeploy_uninstall_do_their_jobs(kwok_cluster: Cluster) -> None:
    cluster = kwok_cluster
    status = make("status").stdout
    assert "running" in status

    make("install")
    crd = cluster.get("crd", CRD)
    assert crd is not None and any(c["type"] == "Established" and c["status"] == "True"
                                   for c in crd["status"]["conditions"])

    # deploy loads IMG from the Docker engine into the nodes: any local image will do here
    # (test_incluster.py runs the real one).
    images.build(progress=print)
    subprocess.run(["docker", "tag", images.image("v1"), "reconcile-lab/operator:make-test"],
                   check=True)
    make("deploy", "IMG=reconcile-lab/operator:make-test")
    assert all(deployed_objects(cluster).values()), deployed_objects(cluster)
    deployment = cluster.get("deployment", permissions.NAME, permissions.NAMESPACE)
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "reconcile-lab/operator:make-test"  # IMG reached it

    make("undeploy")
    assert not any(deployed_objects(cluster).values()), deployed_objects(cluster)
    subprocess.run(["docker", "image", "rm", "reconcile-lab/operator:make-test"], check=False,
                   capture_output=True)

    make("uninstall")
    assert cluster.get("crd", CRD) is None
