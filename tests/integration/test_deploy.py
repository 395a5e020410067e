"""The in-cluster operator's manifests: least privilege, admitted under restricted pod security."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconcile_lab.declarative import permissions
from tests.conftest import Cluster, wait_for

pytestmark = [pytest.mark.cluster]
REPO = Path(__file__).resolve().parents[2]
SA = f"system:serviceaccount:{permissions.NAMESPACE}:{permissions.NAME}"


@pytest.fixture(scope="module")
def deployed(cluster: Cluster) -> Iterator[Cluster]:
    # Admission and RBAC only: the pod goes to a simulated node, where admission is real and
    # the container is not (test_incluster.py runs the real image on the real node).
    cluster.simulate_pods_in(permissions.NAMESPACE)
    cluster.kubectl("apply", "-f", str(REPO / "deploy" / "rbac.yaml"))
    cluster.kubectl("apply", "-f", str(REPO / "deploy" / "operator.yaml"))
    yield cluster
    # Gone before the next module deploys again (into a namespace not being terminated).
    cluster.kubectl("delete", "--ignore-not-found", "-f", str(REPO / "deploy" / "operator.yaml"),
                    "-f", str(REPO / "deploy" / "rbac.yaml"), timeout=180)


@pytest.mark.parametrize(("verb", "resource", "allowed"), [
    ("watch", "webapps.reconcile-lab.dev", True),
    ("patch", "webapps.reconcile-lab.dev --subresource=status", True),
    ("patch", "deployments.apps", True),
    ("create", "services", True),
    ("create", "events", True),
    ("update", "webapps.reconcile-lab.dev", False),  # the spec belongs to people
    ("delete", "deployments.apps", False),  # garbage collection deletes, not the operator
    ("delete", "services", False),
    ("get", "secrets", False),
    ("list", "pods", False),
    ("create", "statefulsets.apps", False),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", False),
])
def test_the_service_account_can_do_only_what_the_operator_needs(
        deployed: Cluster, verb: str, resource: str, allowed: bool) -> None:
    result = deployed.kubectl("auth", "can-i", verb, *resource.split(), "--all-namespaces",
                              f"--as={SA}", check=False)
    assert result.stdout.strip() == ("yes" if allowed else "no"), result.stderr


def test_the_operator_deployment_is_admitted_in_a_restricted_namespace(deployed: Cluster) -> None:
    labels = deployed.get("namespace", permissions.NAMESPACE)["metadata"]["labels"]  # type: ignore[index]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    wait_for(lambda: (deployed.get("deployment", permissions.NAME, permissions.NAMESPACE) or {})
             .get("status", {}).get("readyReplicas") == 1, timeout=60,
             what="the operator's pod to be admitted and (simulated) ready")
