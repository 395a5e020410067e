"""deploy/policy.yaml on a real kube-apiserver: refused before anything is stored.

Every request is a server-side dry run: admission runs in full and nothing is created, so the
test needs no node. The policies bind to labelled namespaces only: the same request in an
unlabelled namespace is admitted.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from reconcile_lab import parsing
from reconcile_lab.declarative import policy, render
from tests import cases
from tests.conftest import REPO, Cluster, wait_for

pytestmark = [pytest.mark.cluster]
POLICY = REPO / "deploy" / "policy.yaml"


@pytest.fixture(scope="module")
def enforced(cluster: Cluster) -> Iterator[str]:
    """A namespace the policies bind to, with the policies installed meanwhile."""
    name = f"t-policy-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("apply", "-f", str(POLICY))
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, f"{policy.LABEL}={policy.ENFORCE}")
    # A new policy takes a moment to reach the apiserver's admission: wait for a refusal.
    wait_for(lambda: _submit(cluster, _webapp(name, "nginx:1.27")).returncode != 0,
             timeout=60, interval=0.5, what="the policies to be in force")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
    cluster.kubectl("delete", "--ignore-not-found", "-f", str(POLICY), check=False)


def _submit(cluster: Cluster, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(obj),
                           check=False)


def _webapp(namespace: str, image: str) -> dict[str, Any]:
    return cases.webapp("shop", namespace, image=image)


def _pod(namespace: str, image: str = cases.IMAGE, **extra: Any) -> dict[str, Any]:
    container = {"name": "app", "image": image, **extra.pop("container", {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": namespace},
            "spec": {"containers": [container], **extra}}


def _refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0, f"admitted: {result.stdout}"
    assert "denied request" in result.stderr or "forbidden" in result.stderr.lower(), \
        result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_a_webapp_outside_the_allowed_images_is_refused_with_the_policys_message(
        cluster: Cluster, enforced: str) -> None:
    refused = _submit(cluster, _webapp(enforced, "nginx:1.27"))
    _refused(refused, "spec.image nginx:1.27 is not allowed here", "reconcile-lab/",
             policy.WEBAPPS)
    # What the comparison reads out of kubectl's answer: the policy's own message.
    assert policy.refusal(refused.stderr) == ("spec.image nginx:1.27 is not allowed here: images "
                                              f"must start with reconcile-lab/ (policy "
                                              f"{policy.WEBAPPS})")
    admitted = _submit(cluster, _webapp(enforced, cases.IMAGE))
    assert admitted.returncode == 0, admitted.stderr


def test_a_pod_with_a_foreign_image_or_asking_for_privilege_is_refused(
        cluster: Cluster, enforced: str) -> None:
    _refused(_submit(cluster, _pod(enforced, "busybox:1.36")),
             "image busybox:1.36 is not allowed here", policy.PODS)
    _refused(_submit(cluster, _pod(enforced, container={"securityContext": {
        "privileged": True}})), "asks for privilege")
    _refused(_submit(cluster, _pod(enforced, container={"securityContext": {
        "allowPrivilegeEscalation": True}})), "asks for privilege")
    _refused(_submit(cluster, _pod(enforced, hostNetwork=True)), "host namespace")
    admitted = _submit(cluster, _pod(enforced, container={"securityContext": {
        "allowPrivilegeEscalation": False}}))
    assert admitted.returncode == 0, admitted.stderr


def test_the_pods_the_operator_renders_pass(cluster: Cluster, enforced: str) -> None:
    webapp = parsing.parse_spec({"image": cases.IMAGE, "healthCheck": {"path": "/healthz"}})
    template = render.deployment(render.Owner("shop", enforced, "uid-1"), webapp)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "shop", "namespace": enforced},
           "spec": template["spec"]["template"]["spec"]}
    admitted = _submit(cluster, pod)
    assert admitted.returncode == 0, admitted.stderr


def test_namespaces_without_the_label_are_not_bound(cluster: Cluster, enforced: str,
                                                    namespace: str) -> None:
    for obj in (_webapp(namespace, "nginx:1.27"), _pod(namespace, "busybox:1.36")):
        admitted = _submit(cluster, obj)
        assert admitted.returncode == 0, admitted.stderr
