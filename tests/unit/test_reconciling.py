"""reconcile: sample-controller's order against a fake cluster that records every write."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

from reconcile_lab import spec
from reconcile_lab.declarative import reconciling, render
from reconcile_lab.declarative import status as statuses
from tests import cases


class ApiError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
        self.conflict = status == 409
        self.stale = status == 409 and "exists" not in message
        self.permanent = False


def _containers(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return containers


def _optional_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The managedFields tree of what a create set, as far as render.dropped looks."""
    if obj["kind"] != "Deployment":
        return {}
    app = {f"f:{k}": {} for k in ("lifecycle", "readinessProbe", "livenessProbe")
           if k in _containers(obj)[0]}
    return {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"app"}': app}}}}}


class FakeCluster:
    """Plays the apiserver's write semantics (create refuses an existing name, apply and patch
    refuse another version than the one compared) and records every call."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]] | None = None) -> None:
        self.objects = objects or {}
        self.writes: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.reads: list[str] = []
        self.status: Mapping[str, Any] | None = None
        self.version = 0
        self.webapp: dict[str, Any] | None = None  # the WebApp as the apiserver has it
        self.webapp_set = False  # else: the one the last reconcile was given
        self.owner_reads = 0

    def _store(self, obj: dict[str, Any], verb: str) -> dict[str, Any]:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.objects[(obj["kind"], obj["metadata"]["name"])] = obj
        self.writes.append(f"{verb} {obj['kind']}")
        return copy.deepcopy(obj)

    async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        if (manifest["kind"], manifest["metadata"]["name"]) in self.objects:
            raise ApiError(f"{manifest['kind']} already exists", 409)
        obj = copy.deepcopy(dict(manifest))
        obj["metadata"]["managedFields"] = [{"manager": "reconcile-lab", "operation": "Update",
                                             "fieldsV1": _optional_fields(obj)}]
        obj["metadata"]["uid"] = f"child-{self.version + 1}"
        return self._store(obj, "create")

    def _current(self, kind: str, name: str, uid: str) -> dict[str, Any]:
        have = self.objects.get((kind, name))
        if have is None or have["metadata"].get("uid") != uid:
            raise ApiError("it was replaced since it was compared", 409)
        return have

    async def apply(self, manifest: Mapping[str, Any], *, uid: str) -> dict[str, Any]:
        have = self._current(manifest["kind"], manifest["metadata"]["name"], uid)
        # What the apiserver does: the fields our create set stay with its Update entry, so
        # an optional field the spec dropped survives the apply.
        creates = [e for e in have["metadata"].get("managedFields") or []
                   if e["operation"] == "Update"]
        obj = copy.deepcopy(dict(manifest))
        if creates and obj["kind"] == "Deployment":
            kept, new = _containers(have)[0], _containers(obj)[0]
            for field in ("lifecycle", "readinessProbe", "livenessProbe"):
                if field in kept and field not in new:
                    new[field] = kept[field]
        obj["status"] = have.get("status")
        obj["metadata"]["managedFields"] = [*creates, {"manager": "reconcile-lab",
                                                       "operation": "Apply"}]
        obj["metadata"]["uid"] = uid
        return self._store(obj, "apply")

    async def patch(self, kind: str, namespace: str, name: str,
                    ops: list[dict[str, Any]]) -> dict[str, Any]:
        assert ops[0]["path"] == "/metadata/uid"
        obj = copy.deepcopy(self._current(kind, name, ops[0]["value"]))
        for op in ops[1:]:
            *parents, last = op["path"].strip("/").split("/")
            target: Any = obj
            for part in parents:
                target = target[int(part)] if isinstance(target, list) else target[part]
            if op["op"] == "test":
                have = target[int(last)] if isinstance(target, list) else target[last]
                if have != op["value"]:
                    raise ApiError("the server rejected our request", 422)
            elif op["op"] == "replace":
                target[last] = op["value"]
            else:
                assert op["op"] == "remove"
                del target[int(last) if isinstance(target, list) else last]
        return self._store(obj, "patch")

    async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        if kind == reconciling.KIND:  # the owner, read back before a repair
            self.owner_reads += 1
            return copy.deepcopy(self.webapp)
        self.reads.append(kind)
        found = self.objects.get((kind, name))
        return copy.deepcopy(found) if found is not None else None

    async def delete(self, kind: str, namespace: str, name: str, *, uid: str) -> bool:
        if (kind, name) not in self.objects:
            return False
        self._current(kind, name, uid)
        del self.objects[(kind, name)]
        self.writes.append(f"delete {kind}")
        return True

    async def patch_status(self, namespace: str, name: str,
                           status: Mapping[str, Any]) -> dict[str, Any]:
        self.writes.append("status")
        self.status = status
        return {"status": status}

    def event(self, webapp: Mapping[str, Any], *, type: str, reason: str, message: str) -> None:
        self.events.append((type, reason))


def _webapp(status: Mapping[str, Any] | None = None, generation: int = 1,
            **spec: Any) -> dict[str, Any]:
    doc = cases.webapp("web", "shop", **spec)
    doc["metadata"].update(uid="uid-1", generation=generation)
    if status is not None:
        doc["status"] = status
    return doc


def _run(webapp: dict[str, Any], cluster: FakeCluster,
         observed: dict[str, Any] | None = None) -> reconciling.Outcome:
    if not cluster.webapp_set:
        cluster.webapp = copy.deepcopy(webapp)
    if observed:  # a cache that knows the Deployment and Service knows the autoscaler too
        observed = {"HorizontalPodAutoscaler": None, **observed}
    return asyncio.run(reconciling.reconcile(webapp, observed or {}, cluster, now="T"))


def _ready(cluster: FakeCluster) -> None:
    """Play the Deployment controller: every pod ready."""
    d = cluster.objects[("Deployment", "web")]
    n = d["spec"]["replicas"]
    d["status"] = {"observedGeneration": 1, "replicas": n, "readyReplicas": n,
                   "updatedReplicas": n, "availableReplicas": n}
    d["metadata"]["generation"] = 1


def _observed(cluster: FakeCluster) -> dict[str, Any]:
    return {k: copy.deepcopy(cluster.objects.get((k, "web"))) for k in reconciling.KINDS}


def test_from_nothing_creates_both_children_and_reports_once_the_deployment_has() -> None:
    cluster = FakeCluster()
    outcome = _run(_webapp(replicas=2), cluster)
    # A Deployment made just now has nothing to report: the status waits for its controller.
    assert cluster.writes == ["create Deployment", "create Service"]
    assert [w.verb for w in outcome.writes[:2]] == ["created", "created"]
    assert outcome.result == "success"
    assert ("Normal", "Created") in cluster.events
    _ready(cluster)  # the Deployment controller reports: that event brings a reconcile
    _run(_webapp(replicas=2), cluster, _observed(cluster))
    assert cluster.writes[2:] == ["status"]
    assert statuses.is_ready(cluster.status or {})
    assert ("Normal", "Ready") in cluster.events


def test_a_problem_at_creation_is_reported_at_once() -> None:
    stranger = {"kind": "Service", "metadata": {"name": "web"}}
    cluster = FakeCluster()
    outcome = _run(_webapp(), cluster, {"Deployment": None, "Service": stranger})
    assert cluster.writes == ["create Deployment", "status"]
    assert outcome.result == "conflict"


def test_a_cache_that_knows_the_children_are_absent_saves_the_reads() -> None:
    cluster = FakeCluster()
    _run(_webapp(), cluster, {"Deployment": None, "Service": None})
    assert cluster.reads == []
    assert cluster.writes == ["create Deployment", "create Service"]
    unknown = FakeCluster()
    _run(_webapp(), unknown)  # a kind the cache cannot speak for is read by name first
    assert unknown.reads == ["Deployment", "Service", "HorizontalPodAutoscaler"]


def test_a_second_reconcile_of_an_unchanged_webapp_writes_nothing() -> None:
    cluster = FakeCluster()
    _run(_webapp(), cluster)
    _ready(cluster)
    _run(_webapp(), cluster, _observed(cluster))  # status becomes Ready
    settled = _webapp(status=cluster.status)
    before = list(cluster.writes)
    outcome = _run(settled, cluster, _observed(cluster))
    assert cluster.writes == before
    assert outcome.writes == ()


def test_a_hand_edited_child_is_repaired_and_counted_as_drift() -> None:
    cluster = FakeCluster()
    _run(_webapp(), cluster)
    _ready(cluster)
    _run(_webapp(), cluster, _observed(cluster))
    cluster.objects[("Deployment", "web")]["spec"]["replicas"] = 9
    outcome = _run(_webapp(status=cluster.status), cluster, _observed(cluster))
    assert [(w.kind, w.verb, w.fields) for w in outcome.drift_repairs] == [
        ("Deployment", "repaired", (".spec.replicas",))]
    assert cluster.objects[("Deployment", "web")]["spec"]["replicas"] == 1
    assert cluster.writes[-1:] == ["apply Deployment"]  # one write for one edit


def test_a_health_check_dropped_from_the_spec_leaves_the_pods_without_probes() -> None:
    cluster = FakeCluster()
    _run(_webapp(healthCheck={"path": "/healthz"}), cluster)
    _ready(cluster)
    assert "readinessProbe" in _containers(cluster.objects[("Deployment", "web")])[0]
    writes = len(cluster.writes)
    outcome = _run(_webapp(status=cluster.status, generation=2), cluster, _observed(cluster))
    container = _containers(cluster.objects[("Deployment", "web")])[0]
    assert "readinessProbe" not in container and "livenessProbe" not in container
    # Our create holds the probes: it becomes our apply's first, then the apply lets them go.
    assert cluster.writes[writes:] == ["patch Deployment", "apply Deployment", "status"]
    assert [w.fields for w in outcome.writes if w.kind == "Deployment"] == [(
        "-.spec.template.spec.containers[0].readinessProbe",
        "-.spec.template.spec.containers[0].livenessProbe")]


def _settled() -> tuple[FakeCluster, dict[str, Any]]:
    cluster = FakeCluster()
    _run(_webapp(), cluster)
    _ready(cluster)
    _run(_webapp(), cluster, _observed(cluster))
    return cluster, _webapp(status=cluster.status)


def test_a_deleted_child_of_a_live_webapp_is_made_again_after_one_read_of_the_owner() -> None:
    cluster, settled = _settled()
    del cluster.objects[("Deployment", "web")]
    outcome = _run(settled, cluster, {**_observed(cluster), "Deployment": None})
    assert [(w.kind, w.verb) for w in outcome.drift_repairs] == [("Deployment", "repaired")]
    assert cluster.owner_reads == 1


def test_no_child_is_made_again_for_a_webapp_the_apiserver_no_longer_has() -> None:
    # Its watch was broken: the cache still has the WebApp, the garbage collector took the
    # children. A create now would be a write for an owner that is gone.
    cluster, settled = _settled()
    del cluster.objects[("Deployment", "web")]
    del cluster.objects[("Service", "web")]
    before = list(cluster.writes)
    for live in (None, {**settled, "metadata": {**settled["metadata"], "uid": "uid-2"}}):
        cluster.webapp, cluster.webapp_set = live, True  # gone; or made again, same name
        outcome = _run(settled, cluster, {"Deployment": None, "Service": None})
        assert outcome.result == "gone" and cluster.writes == before


def test_a_new_webapps_children_are_created_without_reading_the_owner_back() -> None:
    cluster = FakeCluster()
    _run(_webapp(), cluster, {"Deployment": None, "Service": None})
    assert cluster.owner_reads == 0 and cluster.writes[:2] == ["create Deployment",
                                                              "create Service"]


def test_a_same_named_child_it_does_not_own_is_never_overwritten() -> None:
    stranger = {"kind": "Service", "metadata": {"name": "web", "ownerReferences": []}}
    cluster = FakeCluster({("Service", "web"): stranger})
    outcome = _run(_webapp(), cluster)
    assert not any(w.endswith("Service") for w in cluster.writes if w != "status")
    assert cluster.objects[("Service", "web")] is stranger
    assert outcome.result == "conflict"
    degraded = {c["type"]: c for c in cluster.status["conditions"]}["Degraded"]  # type: ignore[index]
    assert (degraded["status"], degraded["reason"]) == ("True", "ChildConflict")
    assert ("Warning", "ChildConflict") in cluster.events


def test_a_cached_stranger_is_a_conflict_without_a_read() -> None:
    stranger = {"kind": "Deployment", "metadata": {"name": "web", "ownerReferences": [
        {"kind": "WebApp", "name": "web", "uid": "uid-other", "controller": True}]}}
    cluster = FakeCluster()
    outcome = _run(_webapp(), cluster, {"Deployment": stranger, "Service": None})
    assert cluster.reads == []
    assert cluster.writes == ["create Service", "status"]
    assert outcome.result == "conflict"


def test_a_webapp_being_deleted_is_left_to_garbage_collection() -> None:
    cluster = FakeCluster()
    doc = _webapp()
    doc["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert _run(doc, cluster).result == "gone"
    assert cluster.writes == []


def test_a_failed_write_becomes_a_condition_and_an_error_to_retry() -> None:
    class Failing(FakeCluster):
        async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
            raise RuntimeError("apiserver unavailable")

    cluster = Failing()
    outcome = _run(_webapp(), cluster)
    assert outcome.result == "error"
    assert "apiserver unavailable" in outcome.error
    degraded = {c["type"]: c for c in cluster.status["conditions"]}["Degraded"]  # type: ignore[index]
    assert degraded["reason"] == "ApplyFailed"


def test_a_namespace_being_deleted_is_not_retried() -> None:
    class Terminating(FakeCluster):
        async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
            error = RuntimeError("namespace shop is being terminated")
            error.permanent = True  # type: ignore[attr-defined]
            raise error

    cluster = Terminating()
    outcome = _run(_webapp(), cluster)
    assert (outcome.result, outcome.retry) == ("gone", False)
    assert cluster.writes == []  # not even a status: the WebApp goes with its namespace


def test_a_hand_added_env_var_is_removed_with_one_write_and_then_nothing() -> None:
    cluster = FakeCluster()
    _run(_webapp(), cluster)
    _ready(cluster)
    _run(_webapp(), cluster, _observed(cluster))
    settled = _webapp(status=cluster.status)
    container = cluster.objects[("Deployment", "web")]["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "EXTRA", "value": "1"}]  # kubectl set env deployment/web EXTRA=1
    before = len(cluster.writes)
    outcome = _run(settled, cluster, _observed(cluster))
    assert cluster.writes[before:] == ["patch Deployment"]
    assert [(w.verb, w.fields) for w in outcome.drift_repairs] == [
        ("repaired", ("-.spec.template.spec.containers[0].env[EXTRA]",))]
    assert ("Normal", "DriftRepaired") in cluster.events
    assert container["env"] == [{"name": "EXTRA", "value": "1"}]  # the old copy, not the store
    assert cluster.objects[("Deployment", "web")]["spec"]["template"]["spec"]["containers"][0][
        "env"] == []
    again = len(cluster.writes)
    for _ in range(3):
        assert _run(settled, cluster, _observed(cluster)).writes == ()
    assert len(cluster.writes) == again


def test_a_stranger_created_after_the_cache_looked_is_not_adopted() -> None:
    stranger = {"kind": "Service", "metadata": {"name": "web", "resourceVersion": "7"},
                "spec": {"ports": [{"port": 1}]}}
    cluster = FakeCluster({("Service", "web"): stranger})
    # The cache saw no Service; the stranger appeared between that look and our write.
    outcome = _run(_webapp(), cluster, {"Deployment": None, "Service": None})
    assert cluster.objects[("Service", "web")] is stranger
    assert "ownerReferences" not in stranger["metadata"]
    assert outcome.result == "conflict"
    degraded = {c["type"]: c for c in cluster.status["conditions"]}["Degraded"]  # type: ignore[index]
    assert degraded["reason"] == "ChildConflict"


def test_a_child_replaced_since_the_cache_looked_is_not_written() -> None:
    cluster = FakeCluster()
    _run(_webapp(), cluster)
    observed = _observed(cluster)
    observed["Deployment"]["spec"]["replicas"] = 9  # what the cache shows: drift to repair
    cluster.objects[("Deployment", "web")]["metadata"]["uid"] = "a-strangers"  # replaced
    before = list(cluster.writes)
    outcome = _run(_webapp(status=cluster.status), cluster, observed)
    assert outcome.result == "stale"
    assert cluster.writes == before


def test_our_own_create_whose_answer_was_lost_is_recognised() -> None:
    cluster = FakeCluster()
    _run(_webapp(), cluster, {"Deployment": None, "Service": None})
    writes = list(cluster.writes)
    # A create succeeded but its answer never came: the cache still says there is none.
    outcome = _run(_webapp(status=cluster.status), cluster, {"Deployment": None, "Service": None})
    assert outcome.result == "success"
    assert cluster.reads == ["Deployment", "Service"]  # asked once the create said 409
    # No child written twice. The status the first pass left to the Deployment's first
    # report is written now: that report may have come before the watch showed the child.
    assert cluster.writes == [*writes, "status"]


def test_a_warning_is_posted_once_even_when_the_status_write_keeps_failing() -> None:
    class StatusDown(FakeCluster):
        async def patch_status(self, namespace: str, name: str,
                               status: Mapping[str, Any]) -> dict[str, Any]:
            raise RuntimeError("status write refused")

    stranger = {"kind": "Service", "metadata": {"name": "web", "ownerReferences": []}}
    cluster = StatusDown({("Service", "web"): stranger})
    for _ in range(3):
        assert _run(_webapp(), cluster).result == "error"
    assert ("Warning", "ChildConflict") not in cluster.events
    healthy = FakeCluster({("Service", "web"): stranger})
    _run(_webapp(), healthy)
    assert healthy.events.count(("Warning", "ChildConflict")) == 1


def test_a_write_refused_for_want_of_permission_says_so_and_names_the_fix() -> None:
    class Refuses(FakeCluster):
        async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
            if manifest["kind"] == "Deployment":
                raise ApiError('deployments.apps is forbidden: User "system:serviceaccount:'
                               'shop:op" cannot create resource "deployments"', 403)
            return await super().create(manifest)

    cluster = Refuses()
    outcome = _run(_webapp(), cluster, {"Deployment": None, "Service": None})
    assert outcome.result == "error" and outcome.retry
    degraded = next(c for c in cluster.status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "Forbidden"
    assert "may not write Deployment web in shop" in degraded["message"]
    assert "reconcile-lab operator rbac --namespace shop" in degraded["message"]
    assert ("Warning", "Forbidden") in cluster.events  # and Normal/Created for the Service


def test_a_failed_read_of_the_owner_is_a_failure_like_any_other_not_a_crash() -> None:
    class OwnerUnreadable(FakeCluster):
        async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
            if kind == reconciling.KIND:
                raise ApiError("webapps is forbidden", 403)
            return await super().read(kind, namespace, name)

    cluster, settled = _settled()
    refused = OwnerUnreadable(cluster.objects)
    del refused.objects[("Deployment", "web")]
    outcome = _run(settled, refused, {**_observed(cluster), "Deployment": None})
    assert outcome.result == "error" and outcome.retry and "forbidden" in outcome.error
    assert not any(w.startswith("create") for w in refused.writes)


def test_a_throttled_read_ends_the_reconcile_with_the_wait_asked_and_writes_nothing() -> None:
    class Throttled(FakeCluster):
        async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
            error = ApiError("too many requests", 429)
            error.retry_after = 2.0  # type: ignore[attr-defined]
            raise error

    cluster = Throttled()
    outcome = _run(_webapp(), cluster)
    assert (outcome.result, outcome.status, outcome.retry_after) == ("error", None, 2.0)
    assert cluster.writes == [] and cluster.events == []


def test_a_throttled_write_ends_the_pass_with_the_wait_asked() -> None:
    class Throttled(FakeCluster):
        """Refuses the Deployment's create with 429; everything else would succeed."""

        def __init__(self) -> None:
            super().__init__()
            self.attempts: list[str] = []

        async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
            self.attempts.append(f"create {manifest['kind']}")
            if manifest["kind"] == "Deployment":
                error = ApiError("too many requests", 429)
                error.retry_after = 3.0  # type: ignore[attr-defined]
                raise error
            return await super().create(manifest)

        async def patch_status(self, namespace: str, name: str,
                               status_: Mapping[str, Any]) -> dict[str, Any]:
            self.attempts.append("status")
            return await super().patch_status(namespace, name, status_)

    cluster = Throttled()
    outcome = _run(_webapp(), cluster, {"Deployment": None, "Service": None})
    assert outcome.result == "error" and outcome.retry_after == 3.0
    # Asked to wait, the pass spends no more requests: no Service, no status write.
    assert cluster.attempts == ["create Deployment"]


AUTOSCALE = {"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 50}


def test_autoscale_makes_an_autoscaler_on_the_webapp_and_removing_it_deletes_it() -> None:
    cluster = FakeCluster()
    _run(_webapp(autoscale=AUTOSCALE), cluster)
    assert "create HorizontalPodAutoscaler" in cluster.writes
    hpa = cluster.objects[("HorizontalPodAutoscaler", "web")]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": spec.API_VERSION, "kind": spec.KIND,
                                             "name": "web"}
    assert render.controlled_by(hpa, "uid-1")

    cluster.writes.clear()
    outcome = _run(_webapp(generation=2), cluster, _observed(cluster))
    assert cluster.writes[:1] == ["delete HorizontalPodAutoscaler"]
    assert ("HorizontalPodAutoscaler", "web") not in cluster.objects
    assert reconciling.Write("HorizontalPodAutoscaler", "deleted") in outcome.writes
    assert ("Normal", "Deleted") in cluster.events

    cluster.writes.clear()  # gone: nothing more to do
    _run(_webapp(generation=2, status=cluster.status), cluster, _observed(cluster))
    assert not any(w.startswith("delete") for w in cluster.writes)


def test_someone_elses_autoscaler_of_the_same_name_is_never_deleted() -> None:
    theirs = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
              "metadata": {"name": "web", "namespace": "shop", "uid": "theirs"}, "spec": {}}
    cluster = FakeCluster({("HorizontalPodAutoscaler", "web"): theirs})
    _run(_webapp(), cluster)
    assert cluster.objects[("HorizontalPodAutoscaler", "web")] is theirs
    assert not any(w.startswith("delete") for w in cluster.writes)


def test_a_hand_edited_autoscaler_is_put_back() -> None:
    cluster = FakeCluster()
    _run(_webapp(autoscale=AUTOSCALE), cluster)
    _ready(cluster)
    _run(_webapp(autoscale=AUTOSCALE), cluster, _observed(cluster))
    cluster.objects[("HorizontalPodAutoscaler", "web")]["spec"]["maxReplicas"] = 50
    cluster.writes.clear()
    outcome = _run(_webapp(status=cluster.status, autoscale=AUTOSCALE), cluster,
                   _observed(cluster))
    assert cluster.writes[0] == "apply HorizontalPodAutoscaler"
    assert cluster.objects[("HorizontalPodAutoscaler", "web")]["spec"]["maxReplicas"] == 6
    assert [w.kind for w in outcome.drift_repairs] == ["HorizontalPodAutoscaler"]
