"""diffing: what counts as drift, what is an extra, and what our field manager must give up."""

from __future__ import annotations

import copy

from reconcile_lab.declarative import diffing, render
from tests.unit.test_render import OWNER, _spec


def test_a_child_as_stored_is_not_drift() -> None:
    desired = render.deployment(OWNER, _spec(healthCheck={"initialDelaySeconds": 0},
                                             resources={"limits": {"cpu": "0.5"}}))
    stored = copy.deepcopy(desired)
    c = stored["spec"]["template"]["spec"]["containers"][0]
    del c["readinessProbe"]["initialDelaySeconds"]  # omitempty
    c["resources"]["limits"]["cpu"] = "500m"  # canonical quantity
    c["terminationMessagePath"] = "/dev/termination-log"  # an apiserver default
    stored["metadata"]["labels"]["someone-else"] = "added"  # another manager's label
    assert diffing.drift(desired, stored) == []


def test_edits_to_owned_fields_are_drift() -> None:
    desired = render.deployment(OWNER, _spec(env=[{"name": "A", "value": "1"},
                                                  {"name": "C", "value": "3"}]))
    edited = copy.deepcopy(desired)
    edited["spec"]["replicas"] = 7
    env = edited["spec"]["template"]["spec"]["containers"][0]["env"]
    env[0]["value"] = "changed"
    del env[1]
    del edited["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    assert set(diffing.drift(desired, edited)) == {
        ".spec.replicas", ".spec.template.spec.containers[0].env[0].value",
        ".spec.template.spec.containers[0].env[1]",
        ".metadata.labels.app.kubernetes.io/managed-by",
    }


def test_an_entry_someone_added_to_our_list_is_an_extra_not_drift() -> None:
    # `kubectl set env deployment/web EXTRA=1`: server-side apply cannot remove it (another
    # manager owns the entry), so counting it as drift would re-apply forever.
    desired = render.deployment(OWNER, _spec(env=[{"name": "A", "value": "1"}]))
    edited = copy.deepcopy(desired)
    edited["spec"]["template"]["spec"]["containers"][0]["env"].insert(
        0, {"name": "EXTRA", "value": "1"})
    assert diffing.drift(desired, edited) == []
    found = diffing.extras(desired, edited)
    assert [(e.pointer, e.key) for e in found] == [
        ("/spec/template/spec/containers/0/env/0", "EXTRA")]
    assert found[0].describe() == ".spec.template.spec.containers[0].env[EXTRA]"


def test_an_env_var_added_to_an_app_without_env_is_an_extra_too() -> None:
    desired = render.deployment(OWNER, _spec())
    edited = copy.deepcopy(desired)
    edited["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "X", "value": "1"}]
    assert [e.key for e in diffing.extras(desired, edited)] == ["X"]
    stored = copy.deepcopy(desired)
    del stored["spec"]["template"]["spec"]["containers"][0]["env"]  # omitempty
    assert diffing.drift(desired, stored) == [] and diffing.extras(desired, stored) == []


def test_the_removal_applies_only_to_the_version_compared_and_keeps_indexes_right() -> None:
    desired = render.deployment(OWNER, _spec())
    edited = copy.deepcopy(desired)
    edited["metadata"]["uid"] = "uid-42"
    c = edited["spec"]["template"]["spec"]["containers"]
    c[0]["env"] = [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]
    c.append({"name": "sidecar", "image": "x"})
    ops = diffing.removal(edited, diffing.extras(desired, edited))
    assert ops[0] == {"op": "test", "path": "/metadata/uid", "value": "uid-42"}
    # Deeper entries first, then each list from its end: no removal moves another's index;
    # each entry is tested to be the one seen before it goes.
    assert [(op["op"], op["path"]) for op in ops[1:]] == [
        (verb, path) for path in ("/spec/template/spec/containers/0/env/1",
                                  "/spec/template/spec/containers/0/env/0",
                                  "/spec/template/spec/containers/1")
        for verb in ("test", "remove")]
    assert ops[1]["value"] == {"name": "Y", "value": "2"}


def _entry(manager: str, operation: str, **container: object) -> dict[str, object]:
    app = {f"f:{f}": v for f, v in container.items()}
    return {"manager": manager, "operation": operation, "fieldsV1": {"f:spec": {"f:template": {
        "f:spec": {"f:containers": {'k:{"name":"app"}': app}}}}}}


def test_what_our_entries_hold_and_the_spec_dropped_is_released_what_others_set_stays() -> None:
    with_check = render.deployment(OWNER, _spec(healthCheck={"path": "/healthz"},
                                                rollout={"drainSeconds": 0}))
    without = render.deployment(OWNER, _spec(rollout={"drainSeconds": 0}))
    assert diffing.drift(without, with_check) == []  # drift looks only at what desired sets
    ours = copy.deepcopy(with_check)
    ours["metadata"]["managedFields"] = [_entry(
        "reconcile-lab", "Update", readinessProbe={}, livenessProbe={}, image={},
        imagePullPolicy={}, terminationMessagePath={})]  # the last two: defaults, left alone
    assert diffing.released(without, ours) == [
        ".spec.template.spec.containers[0].readinessProbe",
        ".spec.template.spec.containers[0].livenessProbe"]
    assert diffing.released(with_check, ours) == []  # still asked for
    theirs = copy.deepcopy(with_check)
    theirs["metadata"]["managedFields"] = [_entry("kubectl-edit", "Update", readinessProbe={})]
    assert diffing.released(without, theirs) == []


def test_a_port_the_spec_moved_away_from_is_released() -> None:
    old = render.service(OWNER, _spec())
    old["metadata"]["managedFields"] = [{"manager": "reconcile-lab", "operation": "Update",
                                         "fieldsV1": {"f:spec": {"f:ports": {
                                             'k:{"port":8080,"protocol":"TCP"}': {}}}}}]
    assert diffing.released(render.service(OWNER, _spec(port=9090)), old) == [
        ".spec.ports[port=8080,protocol=TCP]"]
    assert diffing.released(render.service(OWNER, _spec()), old) == []


def test_the_upgrade_turns_our_create_into_our_apply_or_merges_it_into_the_apply() -> None:
    d = render.deployment(OWNER, _spec())
    d["metadata"]["uid"] = "child-1"
    status = {"manager": "kube-controller-manager", "operation": "Update",
              "subresource": "status"}
    d["metadata"]["managedFields"] = [status, _entry("reconcile-lab", "Update", image={})]
    assert diffing.ownership_upgrade(d) == [
        {"op": "test", "path": "/metadata/uid", "value": "child-1"},
        {"op": "test", "path": "/metadata/managedFields/1/manager", "value": "reconcile-lab"},
        {"op": "test", "path": "/metadata/managedFields/1/operation", "value": "Update"},
        {"op": "replace", "path": "/metadata/managedFields/1/operation", "value": "Apply"}]
    d["metadata"]["managedFields"].append(_entry("reconcile-lab", "Apply", env={}))
    ops = diffing.ownership_upgrade(d)
    assert ops is not None and ops[-2:] == [
        {"op": "replace", "path": "/metadata/managedFields/2/fieldsV1",
         "value": _entry("", "", env={}, image={})["fieldsV1"]},
        {"op": "remove", "path": "/metadata/managedFields/1"}]
    d["metadata"]["managedFields"] = [status, _entry("reconcile-lab", "Apply", env={})]
    assert diffing.ownership_upgrade(d) is None


def test_tolerations_are_an_atomic_list_compared_item_by_item() -> None:
    desired = render.deployment(OWNER, _spec())
    stored = copy.deepcopy(desired)
    assert diffing.drift(desired, stored) == []
    tolerations = stored["spec"]["template"]["spec"]["tolerations"]
    tolerations[0]["tolerationSeconds"] = 300  # `kubectl edit` of how long a pod waits
    assert diffing.drift(desired, stored) == [".spec.template.spec.tolerations[0].tolerationSeconds"]
    tolerations.append({"key": "x", "operator": "Exists"})  # one added by hand: the list differs
    assert ".spec.template.spec.tolerations" in diffing.drift(desired, stored)
