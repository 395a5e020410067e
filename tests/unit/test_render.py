"""render: the children a WebApp asks for, and what counts as drift."""

from __future__ import annotations

import copy

from reconcile_lab import spec
from reconcile_lab.declarative import render

OWNER = render.Owner("web", "shop", "uid-1")


def _spec(**fields: object) -> spec.WebAppSpec:
    return spec.parse_spec({"image": "reconcile-lab/hello:v1", **fields})


def test_deployment_follows_the_spec() -> None:
    d = render.deployment(OWNER, _spec(replicas=3, env=[{"name": "GREETING", "value": "hi"}],
                                       healthCheck={"path": "/healthz"}))
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert d["spec"]["replicas"] == 3
    assert c["image"] == "reconcile-lab/hello:v1"
    assert c["env"] == [{"name": "GREETING", "value": "hi"}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080, "scheme": "HTTP"}
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_children_are_owned_and_labelled() -> None:
    for child in render.children(OWNER, _spec()):
        meta = child["metadata"]
        assert meta["ownerReferences"] == [OWNER.reference()]
        assert meta["ownerReferences"][0]["controller"] is True
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "reconcile-lab"
        assert meta["labels"]["app.kubernetes.io/name"] == "web"


def test_pods_meet_the_restricted_pod_security_standard() -> None:
    pod = render.deployment(OWNER, _spec())["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["readOnlyRootFilesystem"] is True


def test_service_selects_the_pods_on_the_app_port() -> None:
    svc = render.service(OWNER, _spec(port=9090))
    d = render.deployment(OWNER, _spec(port=9090))
    assert svc["spec"]["selector"] == d["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["port"] == 9090


def test_a_child_as_stored_is_not_drift() -> None:
    desired = render.deployment(OWNER, _spec(healthCheck={"initialDelaySeconds": 0},
                                             resources={"limits": {"cpu": "0.5"}}))
    stored = copy.deepcopy(desired)
    c = stored["spec"]["template"]["spec"]["containers"][0]
    del c["readinessProbe"]["initialDelaySeconds"]  # omitempty
    c["resources"]["limits"]["cpu"] = "500m"  # canonical quantity
    c["terminationMessagePath"] = "/dev/termination-log"  # an apiserver default
    stored["metadata"]["labels"]["someone-else"] = "added"  # another manager's label
    assert render.drift(desired, stored) == []


def test_edits_to_owned_fields_are_drift() -> None:
    desired = render.deployment(OWNER, _spec(env=[{"name": "A", "value": "1"}]))
    edited = copy.deepcopy(desired)
    edited["spec"]["replicas"] = 7
    edited["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "B", "value": "2"})
    del edited["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    assert set(render.drift(desired, edited)) == {
        ".spec.replicas", ".spec.template.spec.containers[0].env",
        ".metadata.labels.app.kubernetes.io/managed-by",
    }
