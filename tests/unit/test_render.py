"""render: the children a WebApp asks for, and what counts as drift."""

from __future__ import annotations

import copy

from reconcile_lab import parsing, spec
from reconcile_lab.declarative import render

OWNER = render.Owner("web", "shop", "uid-1")


def _spec(**fields: object) -> spec.WebAppSpec:
    return parsing.parse_spec({"image": "reconcile-lab/hello:v1", **fields})


def test_deployment_follows_the_spec() -> None:
    d = render.deployment(OWNER, _spec(replicas=3, env=[{"name": "GREETING", "value": "hi"}],
                                       healthCheck={"path": "/healthz"}))
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert d["spec"]["replicas"] == 3
    assert c["image"] == "reconcile-lab/hello:v1"
    assert c["env"] == [{"name": "GREETING", "value": "hi"}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080, "scheme": "HTTP"}
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_a_replaced_instance_drains_before_it_stops_unless_told_not_to() -> None:
    def container(**rollout: int) -> dict[str, object]:
        d = render.deployment(OWNER, _spec(rollout=rollout) if rollout else _spec())
        c: dict[str, object] = d["spec"]["template"]["spec"]["containers"][0]
        return c

    assert container()["lifecycle"] == {"preStop": {"sleep": {"seconds": 3}}}
    assert container(drainSeconds=7)["lifecycle"] == {"preStop": {"sleep": {"seconds": 7}}}
    assert "lifecycle" not in container(drainSeconds=0)


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


def test_only_a_webapp_of_this_group_holding_the_controller_reference_owns_a_child() -> None:
    child = render.deployment(OWNER, _spec())
    assert render.owner_name(child) == OWNER.name
    assert render.controlled_by(child, OWNER.uid)
    assert not render.controlled_by(child, "another-uid")
    foreign = copy.deepcopy(child)
    foreign["metadata"]["ownerReferences"][0]["apiVersion"] = "example.com/v1"
    assert render.owner_name(foreign) is None
    not_controller = copy.deepcopy(child)
    not_controller["metadata"]["ownerReferences"][0]["controller"] = False
    assert render.controlling_webapp(not_controller) is None
