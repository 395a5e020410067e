"""reconcile: sample-controller's order against a fake cluster that records every write."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

from reconcile_lab.declarative import reconciling
from tests import cases


class FakeCluster:
    """Stores what is applied; any call not listed in ``allowed`` fails loudly."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]] | None = None) -> None:
        self.objects = objects or {}
        self.writes: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.reads: list[str] = []
        self.status: Mapping[str, Any] | None = None

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(dict(manifest))
        obj["metadata"]["resourceVersion"] = str(len(self.writes) + 1)
        self.objects[(obj["kind"], obj["metadata"]["name"])] = obj
        self.writes.append(f"apply {obj['kind']}")
        return obj

    async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(kind)
        return self.objects.get((kind, name))

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
    return asyncio.run(reconciling.reconcile(webapp, observed or {}, cluster, now="T"))


def _ready(cluster: FakeCluster) -> None:
    """Play the Deployment controller: every pod ready."""
    d = cluster.objects[("Deployment", "web")]
    n = d["spec"]["replicas"]
    d["status"] = {"observedGeneration": 1, "replicas": n, "readyReplicas": n,
                   "updatedReplicas": n, "availableReplicas": n}
    d["metadata"]["generation"] = 1


def _observed(cluster: FakeCluster) -> dict[str, Any]:
    return {k: cluster.objects.get((k, "web")) for k in reconciling.KINDS}


def test_from_nothing_creates_both_children_and_reports_status() -> None:
    cluster = FakeCluster()
    outcome = _run(_webapp(replicas=2), cluster)
    assert cluster.writes == ["apply Deployment", "apply Service", "status"]
    assert [w.verb for w in outcome.writes[:2]] == ["created", "created"]
    assert outcome.result == "success"
    assert ("Normal", "Created") in cluster.events


def test_a_cache_that_knows_the_children_are_absent_saves_the_reads() -> None:
    cluster = FakeCluster()
    _run(_webapp(), cluster, {"Deployment": None, "Service": None})
    assert cluster.reads == []
    assert cluster.writes == ["apply Deployment", "apply Service", "status"]
    unknown = FakeCluster()
    _run(_webapp(), unknown)  # a kind the cache cannot speak for is read by name first
    assert unknown.reads == ["Deployment", "Service"]


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


def test_a_same_named_child_it_does_not_own_is_never_overwritten() -> None:
    stranger = {"kind": "Service", "metadata": {"name": "web", "ownerReferences": []}}
    cluster = FakeCluster({("Service", "web"): stranger})
    outcome = _run(_webapp(), cluster)
    assert "apply Service" not in cluster.writes
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
    assert cluster.writes == ["apply Service", "status"]
    assert outcome.result == "conflict"


def test_a_webapp_being_deleted_is_left_to_garbage_collection() -> None:
    cluster = FakeCluster()
    doc = _webapp()
    doc["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert _run(doc, cluster).result == "gone"
    assert cluster.writes == []


def test_a_failed_write_becomes_a_condition_and_an_error_to_retry() -> None:
    class Failing(FakeCluster):
        async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
            raise RuntimeError("apiserver unavailable")

    cluster = Failing()
    outcome = _run(_webapp(), cluster)
    assert outcome.result == "error"
    assert "apiserver unavailable" in outcome.error
    degraded = {c["type"]: c for c in cluster.status["conditions"]}["Degraded"]  # type: ignore[index]
    assert degraded["reason"] == "ApplyFailed"


def test_a_namespace_being_deleted_is_not_retried() -> None:
    class Terminating(FakeCluster):
        async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
            error = RuntimeError("namespace shop is being terminated")
            error.permanent = True  # type: ignore[attr-defined]
            raise error

    cluster = Terminating()
    outcome = _run(_webapp(), cluster)
    assert (outcome.result, outcome.retry) == ("gone", False)
    assert cluster.writes == []  # not even a status: the WebApp goes with its namespace
