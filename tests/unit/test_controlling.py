"""The controller without kopf or an apiserver: what it counts, retries and keeps."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any

import pytest
import structlog

from reconcile_lab.declarative import cache, controlling
from reconcile_lab.observe import metrics
from tests import cases
from tests.unit.test_reconciling import FakeCluster

KEY = ("shop", "web")


class Caches(cache.Store):
    """The operator's store, filled from whole objects."""

    def add(self, kind: str, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        self.put(kind, (meta["namespace"], meta["name"]), cache.pack(body))


def _webapp(name: str = "web") -> dict[str, Any]:
    doc = cases.webapp(name, "shop")
    doc["metadata"].update(uid=f"uid-{name}", generation=1, resourceVersion="1")
    return doc


def _sample(name: str, **labels: str) -> float:
    value = metrics.prom.REGISTRY.get_sample_value(name, labels)
    return value or 0.0


def _controller(cluster: Any, caches: Caches, **kw: Any) -> controlling.Controller:
    c = controlling.Controller(cluster, cache.ReadYourWrites(), workers=1,
                               rng=random.Random(1), **kw)
    c.caches = caches  # no workers: the tests call reconcile() themselves
    return c


def test_a_failed_read_is_counted_as_an_error_and_retried() -> None:
    class ReadFails(FakeCluster):
        async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
            raise RuntimeError("connection refused")

    async def go() -> None:
        caches = Caches()
        caches.add("WebApp", _webapp())
        memory = cache.ReadYourWrites()
        memory.vanished("Deployment", KEY, 0)  # the cache cannot speak for it: read by name
        c = controlling.Controller(ReadFails(), memory, workers=1, retry_delays=(0.01,))
        before = _sample("controller_runtime_reconcile_errors_total", controller="webapp")
        c.start(caches)
        c.enqueue(KEY, "test")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if c.keys[KEY].failures >= 2:
                break
        await c.stop()
        assert c.keys[KEY].failures >= 2  # retried, again and again
        assert _sample("controller_runtime_reconcile_errors_total",
                       controller="webapp") >= before + 2

    asyncio.run(go())


@pytest.mark.parametrize(("result", "cr"), [
    ("success", "success"), ("conflict", "error"), ("invalid", "error"), ("error", "error"),
    ("stale", "requeue")])
def test_every_outcome_is_counted_under_its_own_result(result: str, cr: str) -> None:
    before = _sample("controller_runtime_reconcile_total", controller="webapp", result=cr)
    ours = _sample("reconcile_lab_reconciliations_total", engine="kubernetes", result=result)
    metrics.count_reconcile(metrics.KUBERNETES, result)
    assert _sample("controller_runtime_reconcile_total", controller="webapp",
                   result=cr) == before + 1
    assert _sample("reconcile_lab_reconciliations_total", engine="kubernetes",
                   result=result) == ours + 1


def test_a_permanent_failure_is_an_error_a_deletion_is_not() -> None:
    from reconcile_lab.declarative import reconciling

    assert controlling._result_of(reconciling.Outcome("gone", (), None, "ns gone", False)) == \
        "error"
    assert controlling._result_of(reconciling.Outcome("gone", (), None)) == "success"


def test_a_success_cancels_the_pending_retry_and_forgets_the_failures() -> None:
    async def go() -> None:
        caches = Caches()
        caches.add("WebApp", _webapp())
        c = _controller(FakeCluster(), caches)
        c._retry(KEY, "boom")
        c._retry(KEY, "boom")
        timer = c.keys[KEY].retry
        assert timer is not None and c.keys[KEY].failures == 2
        await c.reconcile(KEY, "test")
        assert timer.cancelled() and c.keys[KEY].retry is None
        assert c.keys[KEY].failures == 0

    asyncio.run(go())


def test_an_error_that_repeats_is_logged_once_and_its_end_once() -> None:
    async def go() -> list[tuple[str, str]]:
        caches = Caches()
        caches.add("WebApp", _webapp())
        c = _controller(FakeCluster(), caches)
        with structlog.testing.capture_logs() as logged:
            for error in ("403 forbidden", "403 forbidden", "403 forbidden", "timed out"):
                c._retry(KEY, error)
            await c.reconcile(KEY, "test")
        return [(e["log_level"], e["event"]) for e in logged
                if e["event"].startswith("reconcile ")]

    assert asyncio.run(go()) == [
        ("warning", "reconcile failed; retrying"),  # 403: said once…
        ("debug", "reconcile still failing; retrying"),
        ("debug", "reconcile still failing; retrying"),
        ("warning", "reconcile failed; retrying"),  # …a new error is said again
        ("info", "reconcile succeeded again"),
    ]


def test_retries_are_jittered_so_failing_webapps_do_not_retry_in_lockstep() -> None:
    async def go() -> list[float]:
        loop = asyncio.get_running_loop()
        c = _controller(FakeCluster(), Caches())
        delays = []
        for i in range(5):
            key = ("shop", f"app-{i}")
            c._retry(key, "boom")
            timer = c.keys[key].retry
            assert timer is not None
            delays.append(timer.when() - loop.time())
            timer.cancel()
        return delays

    delays = asyncio.run(go())
    assert len({round(d, 3) for d in delays}) == 5
    assert all(0.35 < d < 0.65 for d in delays)  # 0.5 s ± 20 %


def test_nothing_is_kept_of_a_deleted_webapp() -> None:
    async def go() -> None:
        caches = Caches()
        c = _controller(FakeCluster(), caches)
        for i in range(20):
            caches.add("WebApp", _webapp(f"app-{i}"))
            key = ("shop", f"app-{i}")
            c.enqueue(key, "test")
            await c.reconcile(key, "test")
            c.memory.wrote("Deployment", key, {"metadata": {"resourceVersion": "3"}})
            c._retry(key, "boom")
        assert len(c.keys) == 20 and len(c.memory) > 0
        for i in range(20):
            key = ("shop", f"app-{i}")
            caches.drop("WebApp", key)
            c.webapp_event(key, event_type="DELETED", at_version=0)
        assert c.keys == {} and len(c.memory) == 0

    asyncio.run(go())


def test_the_watch_showing_our_own_write_queues_nothing() -> None:
    async def go() -> None:
        caches = Caches()
        caches.add("WebApp", _webapp())
        cluster = FakeCluster()
        c = _controller(cluster, caches)
        c.memory.wrote("Deployment", KEY, {"metadata": {"namespace": "shop", "name": "web",
                                                        "resourceVersion": "7"}})
        c.child_event("Deployment", KEY, event_type="ADDED", at_version=7)
        assert len(c.queue) == 0
        c.child_event("Deployment", KEY, event_type="MODIFIED", at_version=8)  # someone else
        assert len(c.queue) == 1

    asyncio.run(go())


def _child(kind: str, name: str = "web") -> dict[str, Any]:
    return {"kind": kind, "metadata": {"namespace": "shop", "name": name, "resourceVersion": "5",
                                       "ownerReferences": [{"kind": "WebApp", "name": name,
                                                            "uid": f"uid-{name}",
                                                            "controller": True}]}}


def test_the_resync_queues_a_webapp_whose_child_vanished_unseen() -> None:
    async def go() -> None:
        caches = Caches()
        caches.add("WebApp", _webapp())
        caches.add("Deployment", _child("Deployment"))
        c = _controller(FakeCluster(), caches)
        c.resync({("WebApp", *KEY), ("Service", *KEY)}, caches.mark())
        assert len(c.queue) == 1

    asyncio.run(go())


def test_the_resync_does_not_take_a_child_newer_than_its_list_for_one_lost() -> None:
    # The LIST is answered before the operator creates the Service; the watch shows the
    # Service before the answer is compared. It is newer than the answer, not lost.
    async def go() -> None:
        caches = Caches()
        caches.add("WebApp", _webapp())
        caches.add("Deployment", _child("Deployment"))
        began = caches.mark()
        caches.add("Service", _child("Service"))
        c = _controller(FakeCluster(), caches)
        c.resync({("WebApp", *KEY), ("Deployment", *KEY)}, began)
        assert len(c.queue) == 0
        assert not c.memory.is_vanished("Service", KEY)
        c.resync({("WebApp", *KEY), ("Deployment", *KEY)}, caches.mark())  # the next LIST
        assert len(c.queue) == 1

    asyncio.run(go())


def test_the_resync_keeps_a_webapp_created_while_its_list_was_in_flight() -> None:
    async def go() -> None:
        caches = Caches()
        began = caches.mark()
        caches.add("WebApp", _webapp())
        c = _controller(FakeCluster(), caches)
        c.keys[KEY] = controlling._KeyState(failures=2)
        c.resync(set(), began)
        assert caches.get("WebApp", KEY) is not None and c.keys[KEY].failures == 2

    asyncio.run(go())


def test_the_resync_leaves_the_children_of_a_webapp_deleted_unseen_to_the_garbage_collector(
        ) -> None:
    # A watch broken meanwhile: the WebApp and its children are gone, the cache still has them.
    async def go() -> None:
        caches = Caches()
        caches.add("WebApp", _webapp())
        caches.add("Deployment", _child("Deployment"))
        caches.add("Service", _child("Service"))
        c = _controller(FakeCluster(), caches)
        c.keys[KEY] = controlling._KeyState(failures=2)
        c.resync(set(), caches.mark())
        assert len(c.queue) == 0
        # Forgotten, as its DELETED event would have had it: the store, the per-key state.
        assert len(caches) == 0 and KEY not in c.keys
        assert c.tracked() == {"keys": 0, "writes": 0, "queued": 0, "webapps": 0}

    asyncio.run(go())


def test_a_throttled_key_waits_at_least_what_the_apiserver_asked() -> None:
    class Throttled(FakeCluster):
        async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
            from reconcile_lab.declarative import kube

            raise kube.KubeError("creating: too many requests", 429, retry_after=4.0)

    async def go() -> None:
        caches = Caches()
        caches.add("WebApp", _webapp())
        c = _controller(Throttled(), caches, retry_delays=(0.5, 1.0))
        scheduled: list[float] = []
        c._schedule = lambda key, delay, trigger: scheduled.append(delay)  # type: ignore[method-assign]
        c.memory.vanished("Deployment", KEY, 0)
        await c.reconcile(KEY, "test")
        assert scheduled and 4.0 <= scheduled[0] <= 4.8, scheduled  # not the 0.5 s back-off

    asyncio.run(go())


def test_a_listed_webapp_whose_spec_was_never_seen_goes_before_the_merely_listed() -> None:
    async def go() -> None:
        c = _controller(FakeCluster(), Caches())
        c.webapp_event(("shop", "old"), event_type="", at_version=1)
        c.webapp_event(("shop", "new"), event_type="", at_version=2, unseen=True)
        first, _ = await c.queue.get()
        assert first == ("shop", "new")

    asyncio.run(go())
