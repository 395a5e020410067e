"""kopf wiring for the WebApp operator.

Run it with ``kopf run -m reconcile_lab.declarative.handlers`` (or ``reconcile-lab operator run``).

This module only wires: kopf events in, a work queue of keys, a pool of workers in which
:func:`reconciling.reconcile` decides, ``kube`` writes.

Why raw event handlers (``@kopf.on.event``) rather than kopf's create/update handlers: the
operator is level-triggered — one reconcile for every trigger — and keeps no state in the
objects, so kopf adds no finalizer, no progress or last-handled annotations: zero writes while
idle. Children are cached in kopf indexes, which kopf fills before any handler runs, so a
restarted operator compares against the real children instead of rewriting them. The caches
hold every Deployment and Service by name, someone else's reduced to its owner: whether a
same-named object is in the way is answered without asking the apiserver. Handlers only
queue the WebApp's key and return (controller-runtime's shape): a burst of events costs one
reconcile per WebApp, and no event body is held while reconciles wait for a worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import kopf

from reconcile_lab import spec as specs
from reconcile_lab.declarative import kube, reconciling, workqueue
from reconcile_lab.declarative import status as statuses
from reconcile_lab.observe import logs, metrics

ENGINE = metrics.KUBERNETES
WORKERS = int(os.environ.get("RECONCILE_LAB_WORKERS", "32"))
RETRY_DELAYS = (0.5, 1, 2, 5, 10, 30)

Key = tuple[str, str]
_queue: workqueue.WorkQueue[Key] = workqueue.WorkQueue()
_triggers: dict[Key, str] = {}  # what last queued each key, for the log
_failures: dict[Key, int] = {}
_pending: dict[Key, tuple[int, float]] = {}  # generation seen → when, for time-to-converge
_retries: dict[Key, asyncio.TimerHandle] = {}


class _Packed(NamedTuple):
    """What the caches keep of an object: its name, resourceVersion, whether a WebApp owns it,
    and compact JSON without managedFields (of someone else's object, only name and owners).
    Decoded, a Deployment takes about ten times the memory of its JSON (measured:
    bench/RESULTS.md); a reconcile decodes only the three objects it compares."""

    name: str
    version: int
    data: bytes
    owned: bool = True

    def unpack(self) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.data)
        return obj


def _pack(body: Mapping[str, Any], owned: bool = True) -> _Packed:
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    obj = {**body, "metadata": meta} if owned else {"metadata": {
        k: meta[k] for k in ("name", "namespace", "ownerReferences") if k in meta}}
    data = json.dumps(obj, separators=(",", ":")).encode()
    return _Packed(str(meta.get("name", "")), _version(body), data, owned)


# What our own writes returned, until the watch catches up: an event already in flight when we
# wrote carries the older object, and comparing against it would write the same fix again.
_written: dict[tuple[str, str, str], _Packed] = {}
# The resourceVersion of each child's deletion, until the watch shows the child again: a write
# whose result arrives after the watch reported the deletion must not bring the object back.
_deleted: dict[tuple[str, str, str], int] = {}


def _version(obj: Mapping[str, Any] | None) -> int:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:  # opaque in principle; etcd revisions in practice
        return 0


# Children the cache still holds but a fresh LIST no longer shows: a watch that broke (the
# apiserver restarted) resumes with a relist, and kopf reports no deletion for what vanished
# in the gap. Maps (kind, namespace, owner) to the resourceVersion the cache holds.
_vanished: dict[tuple[str, str, str], int] = {}
RESYNC_SECONDS = float(os.environ.get("RECONCILE_LAB_RESYNC_SECONDS", "30"))
_indexes: list[kopf.Index[Key, Any]] = []  # webapps, deployments, services, once handlers run


def _freshest(kind: str, key: Key, cached: dict[str, Any] | None) -> dict[str, Any] | None:
    gone = _vanished.get((kind, *key))
    if gone is not None:
        if cached is not None and _version(cached) > gone:
            del _vanished[(kind, *key)]  # a newer object arrived: the cache is right again
        else:
            cached = None  # stale: reconcile reads the child by name instead
    mine = _written.get((kind, *key))
    if mine is not None and mine.version <= _deleted.get((kind, *key), 0):
        del _written[(kind, *key)]  # written before the deletion the watch already reported
        mine = None
    if mine is None:
        return cached
    if cached is not None and _version(cached) >= mine.version:
        del _written[(kind, *key)]  # the cache has caught up
        return cached
    return mine.unpack()  # created or changed by us, not yet seen by the watch


def _seen_by_watch(kind: str, key: Key, packed: _Packed) -> _Packed:
    """Called with every object the watch delivers: our own write is no longer needed once the
    cache holds it or something newer (deletions clear it too)."""
    _deleted.pop((kind, *key), None)
    mine = _written.get((kind, *key))
    if mine is not None and packed.version >= mine.version:
        del _written[(kind, *key)]
    return packed


def _owned(body: kopf.Body, **_: Any) -> bool:
    """Children are recognised by their controlling owner reference, not by labels:
    a label edited away must still be seen (and repaired)."""
    for ref in body.metadata.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == specs.KIND \
                and str(ref.get("apiVersion", "")).startswith(specs.GROUP + "/"):
            return True
    return False


def _owner_name(body: Mapping[str, Any]) -> str | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == specs.KIND:
            return str(ref["name"])
    return None


# --- start-up -------------------------------------------------------------------------------


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    logs.configure(json=os.environ.get("RECONCILE_LAB_LOG_FORMAT") == "json"
                   if os.environ.get("RECONCILE_LAB_LOG_FORMAT") else None)
    # Peering (several replicas, one active) is chosen on the command line; a dead peer's
    # record must expire quickly for a standby to take over.
    settings.peering.lifetime = int(os.environ.get("RECONCILE_LAB_PEERING_LIFETIME", "10"))
    settings.peering.stealth = True
    # kopf would post every INFO log line as an Event; post only what we decide to.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # Memory: kopf's per-object workers hold the last event body until they idle out, and it
    # posts Events for many objects at once, each on its own TLS connection (~0.3 MB each).
    # A posting worker keeps its slot until it idles out: with a long idle, Events would lag.
    settings.queueing.idle_timeout = 1.0
    settings.posting.worker_limit = 32
    settings.posting.idle_timeout = 0.05
    asyncio.get_running_loop().set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="kube"))
    kube.connect(os.environ.get("RECONCILE_LAB_KUBECONFIG") or None, pool_size=WORKERS)
    port = int(os.environ.get("RECONCILE_LAB_METRICS_PORT", "8000"))
    if port:
        metrics.serve(port, addr=os.environ.get("RECONCILE_LAB_METRICS_ADDR", "127.0.0.1"))
    metrics.init_controller(max_concurrent=WORKERS)
    logs.get(engine=ENGINE).info("operator started", metrics_port=port, workers=WORKERS)
    if RESYNC_SECONDS > 0:
        _background.add(asyncio.get_running_loop().create_task(_resync_forever()))


_background: set[asyncio.Task[None]] = set()


async def _resync_forever() -> None:
    """Every RESYNC_SECONDS, two LISTs (reads, never writes) catch deletions a watch missed."""
    while True:
        await asyncio.sleep(RESYNC_SECONDS)
        if not _indexes:
            continue
        webapps, deployments, services = _indexes
        try:
            live = await asyncio.to_thread(kube.owned_children)
        except Exception as e:  # the API is down: the next round will tell
            logs.get(engine=ENGINE).warning("resync failed", error=str(e))
            continue
        for key in list(webapps.keys()):
            for kind, index in (("Deployment", deployments), ("Service", services)):
                cached = _find(index, key, key[1])
                if cached is not None and cached.owned and (kind, *key) not in live:
                    _vanished[(kind, *key)] = cached.version
                    logs.get(namespace=key[0], name=key[1]).info("child vanished unseen",
                                                                 kind=kind)
                    _enqueue(key, "resync")


# --- caches ---------------------------------------------------------------------------------


@kopf.index(specs.GROUP, specs.VERSION, specs.PLURAL)
def webapps(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Key, _Packed]:
    return {(namespace, name): _seen_by_watch(specs.KIND, (namespace, name), _pack(body))}


def _child(kind: str, namespace: str, name: str, body: kopf.Body) -> dict[Key, _Packed]:
    """Children are cached under their own name, which is their WebApp's."""
    if not _owned(body):
        return {(namespace, name): _pack(body, owned=False)}
    return {(namespace, name): _seen_by_watch(kind, (namespace, name), _pack(body))}


@kopf.index("apps", "v1", "deployments")
def deployments(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Key, _Packed]:
    return _child("Deployment", namespace, name, body)


@kopf.index("v1", "services")
def services(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Key, _Packed]:
    return _child("Service", namespace, name, body)


def _find(index: kopf.Index[Key, _Packed], key: Key, name: str) -> _Packed | None:
    for packed in index.get(key, []):
        if packed.name == name:
            return packed
    return None


def _one(index: kopf.Index[Key, _Packed], key: Key, name: str) -> dict[str, Any] | None:
    packed = _find(index, key, name)
    return packed.unpack() if packed is not None else None


# --- the outside world, as reconciling.Cluster ----------------------------------------------


class _Kube:
    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        result = await asyncio.to_thread(kube.apply, manifest)
        metrics.writes.labels(ENGINE, manifest["kind"], "apply").inc()
        meta = manifest["metadata"]
        _written[(manifest["kind"], meta["namespace"], meta["name"])] = _pack(result)
        return result

    async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(kube.read, kind, namespace, name)

    async def patch_status(self, namespace: str, name: str,
                           status: Mapping[str, Any]) -> dict[str, Any]:
        result = await asyncio.to_thread(kube.patch_status, namespace, name, status)
        metrics.writes.labels(ENGINE, specs.KIND, "status").inc()
        _written[(specs.KIND, namespace, name)] = _pack(result)
        return result

    def event(self, webapp: Mapping[str, Any], *, type: str, reason: str, message: str) -> None:
        kopf.event(kopf.Body(dict(webapp)), type=type, reason=reason, message=message)


_CLUSTER = _Kube()


# --- the work queue and its workers ---------------------------------------------------------


def _enqueue(key: Key, trigger: str) -> None:
    _triggers[key] = trigger
    if _queue.add(key):
        metrics.enqueued(len(_queue))


async def _work_forever() -> None:
    """One of WORKERS: take a key, reconcile it, mark it done; a key is never worked on twice
    at once."""
    while True:
        key, waited = await _queue.get()
        try:
            with metrics.working(waited, len(_queue)):
                await _reconcile(key, trigger=_triggers.pop(key, "queued"))
        except Exception as e:  # a bug must not stop the worker: log it, try again later
            logs.get(namespace=key[0], name=key[1]).exception("reconcile crashed", error=str(e))
            _retry(key, str(e))
        finally:
            _queue.done(key)


# --- reconciling ----------------------------------------------------------------------------


async def _reconcile(key: Key, trigger: str) -> None:
    namespace, name = key
    webapps, deployments, services = _indexes
    cached = _one(webapps, key, name)
    if cached is None:
        return  # deleted: children go by garbage collection
    webapp = _freshest(specs.KIND, key, cached)
    assert webapp is not None
    log = logs.get(namespace=namespace, name=name,
                   generation=webapp["metadata"].get("generation"), trigger=trigger)
    generation = int(webapp["metadata"].get("generation") or 1)
    old_status = webapp.get("status") or {}
    if key not in _pending and (old_status.get("observedGeneration") != generation
                                or not statuses.is_ready(old_status)):
        _pending[key] = (generation, time.monotonic())
    observed: dict[str, dict[str, Any] | None] = {}
    for kind, index in (("Deployment", deployments), ("Service", services)):
        child = _freshest(kind, key, _one(index, key, name))
        if child is not None or (kind, *key) not in _vanished:
            observed[kind] = child  # None: the cache knows there is none, ours or anyone's
    metrics.cr_active_workers.labels(metrics.CONTROLLER).inc()
    try:
        with metrics.timed_reconcile(ENGINE):
            now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            outcome = await reconciling.reconcile(webapp, observed, _CLUSTER, now=now)
    finally:
        metrics.cr_active_workers.labels(metrics.CONTROLLER).dec()
    metrics.count_reconcile(ENGINE, "success" if outcome.result in ("success", "gone")
                            else outcome.result)
    for write in outcome.drift_repairs:
        metrics.drift_corrections.labels(ENGINE, write.kind).inc()
        log.info("drift repaired", kind=write.kind, fields=list(write.fields))
    for write in outcome.writes:
        if write.verb in ("created", "updated"):
            log.info(f"{write.kind.lower()} {write.verb}", fields=list(write.fields))
    if outcome.status is not None:
        spec_replicas = (webapp.get("spec") or {}).get("replicas", 1)
        metrics.set_replicas(ENGINE, namespace, name, desired=int(spec_replicas),
                             ready=int(outcome.status.get("readyReplicas", 0)))
        if statuses.is_ready(outcome.status) and key in _pending:
            seen_generation, since = _pending.pop(key)
            if seen_generation <= generation:
                metrics.time_to_converge.labels(ENGINE).observe(time.monotonic() - since)
    if outcome.result == "error" and outcome.retry:
        _retry(key, outcome.error)
    else:
        _failures.pop(key, None)


def _retry(key: Key, error: str) -> None:
    """kopf does not retry event handlers: a failed key is queued again, with backoff."""
    attempt = _failures.get(key, 0)
    _failures[key] = attempt + 1
    delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
    logs.get(namespace=key[0], name=key[1]).warning("reconcile failed; retrying", error=error,
                                                    retry_in=delay)
    metrics.count_retry()
    if (old := _retries.pop(key, None)) is not None:
        old.cancel()
    _retries[key] = asyncio.get_running_loop().call_later(delay, _enqueue, key, "retry")


# --- kopf's events: each only queues the WebApp's key ---------------------------------------


def _start_workers_once(webapps: kopf.Index[Key, Any], deployments: kopf.Index[Key, Any],
                        services: kopf.Index[Key, Any]) -> None:
    """On the first event: keep the indexes and start the workers. Started from a handler,
    they inherit its context, which ``kopf.event`` needs to post Events."""
    if not _indexes:
        _indexes.extend((webapps, deployments, services))
        loop = asyncio.get_running_loop()
        _background.update(loop.create_task(_work_forever()) for _ in range(WORKERS))


@kopf.on.event(specs.GROUP, specs.VERSION, specs.PLURAL)
async def webapp_changed(event: Mapping[str, Any], namespace: str, name: str,
                         webapps: kopf.Index[Key, Any], deployments: kopf.Index[Key, Any],
                         services: kopf.Index[Key, Any], **_: Any) -> None:
    key = (namespace, name)
    _start_workers_once(webapps, deployments, services)
    if event.get("type") == "DELETED":
        metrics.forget_app(ENGINE, namespace, name)
        _pending.pop(key, None)
        _failures.pop(key, None)
        for kind in (specs.KIND, *reconciling.KINDS):
            _written.pop((kind, *key), None)
            _deleted.pop((kind, *key), None)
        if (timer := _retries.pop(key, None)) is not None:
            timer.cancel()
        logs.get(namespace=namespace, name=name).info("webapp deleted; children are garbage")
        return
    _enqueue(key, "webapp")


async def _child_changed(kind: str, event: Mapping[str, Any], namespace: str, body: kopf.Body,
                         webapps: kopf.Index[Key, Any], deployments: kopf.Index[Key, Any],
                         services: kopf.Index[Key, Any]) -> None:
    _start_workers_once(webapps, deployments, services)
    deleted = event.get("type") == "DELETED"
    if not _owned(body):
        # Someone else's object: when one that stood in a WebApp's way goes, make the child.
        name = body.metadata.name or ""
        if deleted and (namespace, name) in webapps:
            _enqueue((namespace, name), f"{kind.lower()} in the way deleted")
        return
    owner = _owner_name(body) or ""
    if deleted:
        _written.pop((kind, namespace, owner), None)
        _deleted[(kind, namespace, owner)] = _version(body)
    _enqueue((namespace, owner), f"{kind.lower()} {str(event.get('type') or 'listed').lower()}")


@kopf.on.event("apps", "v1", "deployments")
async def deployment_changed(event: Mapping[str, Any], namespace: str, body: kopf.Body,
                             webapps: kopf.Index[Key, Any], deployments: kopf.Index[Key, Any],
                             services: kopf.Index[Key, Any], **_: Any) -> None:
    await _child_changed("Deployment", event, namespace, body, webapps, deployments, services)


@kopf.on.event("v1", "services")
async def service_changed(event: Mapping[str, Any], namespace: str, body: kopf.Body,
                          webapps: kopf.Index[Key, Any], deployments: kopf.Index[Key, Any],
                          services: kopf.Index[Key, Any], **_: Any) -> None:
    await _child_changed("Service", event, namespace, body, webapps, deployments, services)
