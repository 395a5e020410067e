"""kopf wiring for the WebApp operator.

Run it with ``kopf run -m reconcile_lab.declarative.handlers`` (or ``reconcile-lab operator run``).

This module only wires: kopf events in, :func:`reconciling.reconcile` decides, ``kube`` writes.

Why raw event handlers (``@kopf.on.event``) rather than kopf's create/update handlers: the
operator is level-triggered — one reconcile for every trigger — and keeps no state in the
objects, so kopf adds no finalizer, no progress or last-handled annotations: zero writes while
idle. Children are cached in kopf indexes, which kopf fills before any handler runs, so a
restarted operator compares against the real children instead of rewriting them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import datetime
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import kopf

from reconcile_lab import spec as specs
from reconcile_lab.declarative import kube, reconciling
from reconcile_lab.declarative import status as statuses
from reconcile_lab.observe import logs, metrics

ENGINE = metrics.KUBERNETES
WORKERS = int(os.environ.get("RECONCILE_LAB_WORKERS", "32"))
RETRY_DELAYS = (0.5, 1, 2, 5, 10, 30)

Key = tuple[str, str]
_locks: dict[Key, asyncio.Lock] = {}
_failures: dict[Key, int] = {}
_pending: dict[Key, tuple[int, float]] = {}  # generation seen → when, for time-to-converge
_retries: dict[Key, asyncio.TimerHandle] = {}
# What our own writes returned, until the watch catches up: an event already in flight when we
# wrote carries the older object, and comparing against it would write the same fix again.
_written: dict[tuple[str, str, str], dict[str, Any]] = {}


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
    if mine is None:
        return cached
    if cached is not None and _version(cached) >= _version(mine):
        del _written[(kind, *key)]  # the cache has caught up
        return cached
    return mine  # created or changed by us, not yet seen by the watch (deletions clear it)


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


def _slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the cache keeps of an object: managedFields are large and never compared."""
    obj = copy.deepcopy(dict(body))
    obj.get("metadata", {}).pop("managedFields", None)
    return obj


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
                cached = _one(index, key, key[1])
                if cached is not None and (kind, *key) not in live:
                    _vanished[(kind, *key)] = _version(cached)
                    logs.get(namespace=key[0], name=key[1]).info("child vanished unseen",
                                                                 kind=kind)
                    _background.add(task := asyncio.get_running_loop().create_task(
                        _reconcile(key, webapps, deployments, services, trigger="resync")))
                    task.add_done_callback(_background.discard)


# --- caches ---------------------------------------------------------------------------------


@kopf.index(specs.GROUP, specs.VERSION, specs.PLURAL)
def webapps(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {(namespace, name): _slim(body)}


@kopf.index("apps", "v1", "deployments", when=_owned)
def deployments(namespace: str, body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {(namespace, _owner_name(body) or ""): _slim(body)}


@kopf.index("v1", "services", when=_owned)
def services(namespace: str, body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {(namespace, _owner_name(body) or ""): _slim(body)}


def _one(index: kopf.Index[Key, dict[str, Any]], key: Key, name: str) -> dict[str, Any] | None:
    for obj in index.get(key, []):
        if obj.get("metadata", {}).get("name") == name:
            return obj
    return None


# --- the outside world, as reconciling.Cluster ----------------------------------------------


class _Kube:
    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        result = await asyncio.to_thread(kube.apply, manifest)
        metrics.writes.labels(ENGINE, manifest["kind"], "apply").inc()
        meta = manifest["metadata"]
        _written[(manifest["kind"], meta["namespace"], meta["name"])] = _slim(result)
        return result

    async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(kube.read, kind, namespace, name)

    async def patch_status(self, namespace: str, name: str,
                           status: Mapping[str, Any]) -> dict[str, Any]:
        result = await asyncio.to_thread(kube.patch_status, namespace, name, status)
        metrics.writes.labels(ENGINE, specs.KIND, "status").inc()
        _written[(specs.KIND, namespace, name)] = _slim(result)
        return result

    def event(self, webapp: Mapping[str, Any], *, type: str, reason: str, message: str) -> None:
        kopf.event(kopf.Body(dict(webapp)), type=type, reason=reason, message=message)


_CLUSTER = _Kube()


# --- reconciling ----------------------------------------------------------------------------


async def _reconcile(key: Key, webapps: kopf.Index[Key, Any], deployments: kopf.Index[Key, Any],
                     services: kopf.Index[Key, Any], trigger: str) -> None:
    namespace, name = key
    lock = _locks.setdefault(key, asyncio.Lock())
    async with metrics.queued(lock):
        if _one(webapps, key, name) is None:
            return  # deleted: children go by garbage collection
        webapp = _freshest(specs.KIND, key, _one(webapps, key, name))
        assert webapp is not None
        log = logs.get(namespace=namespace, name=name,
                       generation=webapp["metadata"].get("generation"), trigger=trigger)
        generation = int(webapp["metadata"].get("generation") or 1)
        old_status = webapp.get("status") or {}
        if key not in _pending and (old_status.get("observedGeneration") != generation
                                    or not statuses.is_ready(old_status)):
            _pending[key] = (generation, time.monotonic())
        observed = {"Deployment": _freshest("Deployment", key, _one(deployments, key, name)),
                    "Service": _freshest("Service", key, _one(services, key, name))}
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
        attempt = _failures.get(key, 0)
        _failures[key] = attempt + 1
        delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
        log.warning("reconcile failed; retrying", error=outcome.error, retry_in=delay)
        _schedule(key, delay, webapps, deployments, services)
    else:
        _failures.pop(key, None)


def _schedule(key: Key, delay: float, webapps: kopf.Index[Key, Any],
              deployments: kopf.Index[Key, Any], services: kopf.Index[Key, Any]) -> None:
    """kopf does not retry event handlers: failures are re-queued here, with backoff."""
    metrics.count_retry()
    if (old := _retries.pop(key, None)) is not None:
        old.cancel()
    loop = asyncio.get_running_loop()
    _retries[key] = loop.call_later(delay, lambda: loop.create_task(
        _reconcile(key, webapps, deployments, services, trigger="retry")))


@kopf.on.event(specs.GROUP, specs.VERSION, specs.PLURAL)
async def webapp_changed(event: Mapping[str, Any], namespace: str, name: str,
                         webapps: kopf.Index[Key, Any], deployments: kopf.Index[Key, Any],
                         services: kopf.Index[Key, Any], **_: Any) -> None:
    key = (namespace, name)
    if not _indexes:
        _indexes.extend((webapps, deployments, services))
    if event.get("type") == "DELETED":
        metrics.forget_app(ENGINE, namespace, name)
        _pending.pop(key, None)
        _failures.pop(key, None)
        _locks.pop(key, None)
        for kind in (specs.KIND, *reconciling.KINDS):
            _written.pop((kind, *key), None)
        if (timer := _retries.pop(key, None)) is not None:
            timer.cancel()
        logs.get(namespace=namespace, name=name).info("webapp deleted; children are garbage")
        return
    await _reconcile(key, webapps, deployments, services, trigger="webapp")


async def _child_changed(kind: str, event: Mapping[str, Any], namespace: str, body: kopf.Body,
                         webapps: kopf.Index[Key, Any], deployments: kopf.Index[Key, Any],
                         services: kopf.Index[Key, Any]) -> None:
    owner = _owner_name(body)
    if owner is None:
        return
    if event.get("type") == "DELETED":
        _written.pop((kind, namespace, owner), None)
    trigger = f"{kind.lower()} {str(event.get('type') or 'listed').lower()}"
    await _reconcile((namespace, owner), webapps, deployments, services, trigger=trigger)


@kopf.on.event("apps", "v1", "deployments", when=_owned)
async def deployment_changed(event: Mapping[str, Any], namespace: str, body: kopf.Body,
                             webapps: kopf.Index[Key, Any], deployments: kopf.Index[Key, Any],
                             services: kopf.Index[Key, Any], **_: Any) -> None:
    await _child_changed("Deployment", event, namespace, body, webapps, deployments, services)


@kopf.on.event("v1", "services", when=_owned)
async def service_changed(event: Mapping[str, Any], namespace: str, body: kopf.Body,
                          webapps: kopf.Index[Key, Any], deployments: kopf.Index[Key, Any],
                          services: kopf.Index[Key, Any], **_: Any) -> None:
    await _child_changed("Service", event, namespace, body, webapps, deployments, services)
