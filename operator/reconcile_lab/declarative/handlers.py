"""kopf wiring for the WebApp operator.

Run it with ``kopf run -m reconcile_lab.declarative.handlers`` (or ``reconcile-lab operator run``).

This module only wires: kopf's events go to the :class:`controlling.Controller` (kept in kopf's
``memo``, never in a module global), whose workers let :func:`reconciling.reconcile` decide and
``kube`` write.

Why raw event handlers (``@kopf.on.event``) rather than kopf's create/update handlers: the
operator is level-triggered — one reconcile for every trigger — and keeps no state in the
objects, so kopf adds no finalizer, no progress or last-handled annotations: zero writes while
idle. Every WebApp, Deployment and Service is kept in a ``cache.Store``, filled by one LIST of
each kind before any reconcile runs and then by the watch, so a restarted operator compares
against the real children instead of rewriting them. (Not kopf's indexes: kopf holds every
handler until every listed object has been indexed, and its wake-ups for that grow with the
square of the objects listed: behind a few thousand, a restarted operator sat idle for minutes.)
The store holds every Deployment and Service by name, someone else's reduced to its owner:
whether a same-named object is in the way is answered without asking the apiserver. Handlers only
queue the WebApp's key and return (controller-runtime's shape): a burst of events costs one
reconcile per WebApp, and no event body is held while reconciles wait for a worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import itertools
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import kopf

from reconcile_lab import ports
from reconcile_lab import spec as specs
from reconcile_lab.declarative import cache, controlling, kube, peers, render
from reconcile_lab.declarative import status as statuses
from reconcile_lab.observe import logs, metrics

Key = cache.Key


# Seconds. kopf's defaults: no server or client timeout, none for connecting, and 70 s of
# inactivity; a silent watch would then be noticed after 70 s, a silent request never.
WATCH_SERVER_TIMEOUT = 300
WATCH_CLIENT_TIMEOUT = WATCH_SERVER_TIMEOUT + 30
WATCH_INACTIVITY_TIMEOUT = 20
CONNECT_TIMEOUT = 5
REQUEST_TIMEOUT = 30
KOPF_RETRIES = (1, 1, 2, 3, 5, 8, 13, 21)  # kopf's default error_backoffs, then it gives up
RETRY_CEILING = 30


class _RetryForever:
    """kopf's back-off between attempts of a refused or failed API request: its own steps, then
    every RETRY_CEILING seconds, for ever. kopf's default gives up after the steps, and a watch
    that gives up stops the whole operator: a RoleBinding gone for a minute would leave it
    stopped, where a client-go informer keeps trying. Iterable again and again (each request
    starts from the first step) and not Sized (kopf then counts no last attempt)."""

    def __iter__(self) -> Iterator[float]:
        yield from KOPF_RETRIES
        yield from itertools.repeat(float(RETRY_CEILING))


class _NoDiffBase(kopf.DiffBaseStorage):
    """kopf works out what changed in an object, against a copy of it kept since the last
    event, for create/update handlers. This operator has none: it compares each child with
    what the WebApp says it should be, not one event with the one before. Without this, every
    event of every watched object would be deep-copied and diffed for nothing (``bench/
    convergence.py --profile`` shows it among the operator's heaviest work)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


class Settings:
    """The operator's knobs, read once from the environment ``reconcile-lab operator run``
    prepares."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.workers = int(env.get("RECONCILE_LAB_WORKERS", "32"))
        self.resync_seconds = float(env.get("RECONCILE_LAB_RESYNC_SECONDS", "30"))
        self.namespace = env.get("RECONCILE_LAB_NAMESPACE") or None  # None: every namespace
        self.kubeconfig = env.get("RECONCILE_LAB_KUBECONFIG") or None
        self.metrics_port = ports.OPERATOR_METRICS.get(env)
        self.metrics_addr = env.get("RECONCILE_LAB_METRICS_ADDR", "127.0.0.1")
        self.peering_lifetime = int(env.get("RECONCILE_LAB_PEERING_LIFETIME", "10"))
        fmt = env.get("RECONCILE_LAB_LOG_FORMAT")
        self.json_logs = (fmt == "json") if fmt else None


_T = TypeVar("_T")


def _counted(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``fn`` (a ``kube`` call); a failure counted by its HTTP status before it goes on."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        metrics.count_api_error(int(getattr(e, "status", 0) or 0))
        raise


async def _call(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    return await asyncio.to_thread(_counted, fn, *args, **kwargs)


def _live(namespace: str | None) -> set[tuple[str, str, str]]:
    """What the resync compares the caches with: the owned children and the WebApps."""
    return _counted(lambda: kube.owned_children(namespace) | kube.live_webapps(namespace))


class _Kube:
    """The cluster as ``reconciling.Cluster`` sees it: ``kube`` in threads, every answer
    remembered until the watch shows it, Events through kopf."""

    def __init__(self, memory: cache.ReadYourWrites) -> None:
        self.memory = memory

    def _wrote(self, kind: str, answer: dict[str, Any], verb: str) -> dict[str, Any]:
        metrics.writes.labels(metrics.KUBERNETES, kind, verb).inc()
        meta = answer.get("metadata") or {}
        self.memory.wrote(kind, (meta.get("namespace", ""), meta.get("name", "")), answer)
        return answer

    async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        return self._wrote(manifest["kind"], await _call(kube.create, manifest), "create")

    async def apply(self, manifest: Mapping[str, Any], *, uid: str) -> dict[str, Any]:
        return self._wrote(manifest["kind"], await _call(kube.apply, manifest, uid=uid), "apply")

    async def patch(self, kind: str, namespace: str, name: str,
                    ops: list[dict[str, Any]]) -> dict[str, Any]:
        return self._wrote(kind, await _call(kube.patch, kind, namespace, name, ops), "patch")

    async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return await _call(kube.read, kind, namespace, name)

    async def delete(self, kind: str, namespace: str, name: str, *, uid: str) -> bool:
        deleted: bool = await _call(kube.delete, kind, namespace, name, uid=uid)
        if deleted:
            metrics.writes.labels(metrics.KUBERNETES, kind, "delete").inc()
        return deleted

    async def patch_status(self, namespace: str, name: str,
                           status: Mapping[str, Any]) -> dict[str, Any]:
        answer = await _call(kube.patch_status, namespace, name, status)
        return self._wrote(specs.KIND, answer, "status")

    def event(self, webapp: Mapping[str, Any], *, type: str, reason: str, message: str) -> None:
        kopf.event(kopf.Body(dict(webapp)), type=type, reason=reason, message=message)


# --- start-up -------------------------------------------------------------------------------


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours = Settings(os.environ)
    logs.configure(json=ours.json_logs)
    for handler in logging.getLogger().handlers:  # kopf's, set up before this handler runs
        handler.addFilter(logs.RepeatsMuted())
    # Peering (several replicas, one active) is chosen on the command line; a dead peer's
    # record must expire quickly for a standby to take over.
    settings.peering.lifetime = ours.peering_lifetime
    settings.peering.stealth = True
    # kopf would post every INFO log line as an Event; post only what we decide to.
    settings.posting.level = logging.WARNING
    settings.persistence.diffbase_storage = _NoDiffBase()
    # A watch can go silent without being closed (a dropped NAT entry, a half-dead peer:
    # `reconcile-lab fault stall`): no event, no error. These bound how long the operator can
    # be blind (docs/reliability.md, "a silent connection"):
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT  # the apiserver ends each watch
    settings.watching.client_timeout = WATCH_CLIENT_TIMEOUT  # we end it if that end is lost
    settings.watching.connect_timeout = CONNECT_TIMEOUT  # TCP + TLS of a new watch
    # No event and no bookmark for this long: a new watch, from the last resourceVersion (a
    # request, not a LIST): the events missed meanwhile are replayed.
    settings.watching.inactivity_timeout = WATCH_INACTIVITY_TIMEOUT
    settings.networking.connect_timeout = CONNECT_TIMEOUT
    settings.networking.request_timeout = REQUEST_TIMEOUT  # kopf's own: Events, peering
    settings.networking.error_backoffs = _RetryForever()
    if ours.namespace:
        # One namespace, under a Role: no cluster-wide scanning of CRDs and namespaces, which
        # the Role cannot list (kopf would retry those lists before serving anything).
        settings.scanning.disabled = True
    # Memory: kopf's per-object workers hold the last event body until they idle out, and it
    # posts Events for many objects at once, each on its own TLS connection (~0.3 MB each).
    # A posting worker keeps its slot until it idles out: with a long idle, Events would lag.
    settings.queueing.idle_timeout = 1.0
    # kopf lists each kind in one answer unless told otherwise: a thousand Deployments decoded
    # at once. In pages, as the operator's own lists are, only one page is held at a time.
    settings.watching.chunk_size = kube.PAGE
    settings.posting.worker_limit = 32
    settings.posting.idle_timeout = 0.05
    asyncio.get_running_loop().set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=ours.workers, thread_name_prefix="kube"))
    kube.connect(ours.kubeconfig, pool_size=ours.workers)
    if not settings.peering.standalone:
        _refuse_to_freeze_a_peer(settings.peering, ours.namespace)
    if ours.metrics_port:
        metrics.serve(ours.metrics_port, addr=ours.metrics_addr)
    metrics.init_controller(max_concurrent=ours.workers)
    memory, store = cache.ReadYourWrites(), cache.Store()
    listed = await asyncio.to_thread(_fill, store, memory, ours.namespace)
    controller = controlling.Controller(_Kube(memory), memory, workers=ours.workers)
    # Every WebApp of that list is a key, as an informer's first list makes each an add: a
    # WebApp new or changed while the operator was away goes first, before kopf's own list
    # (thousands of events, seconds at start-up behind a backlog) has reached it.
    for key, unseen in listed:
        controller.webapp_event(key, event_type="", at_version=0, unseen=unseen)
    memo.memory, memo.store, memo.controller = memory, store, controller
    metrics.track_state(controller.tracked)
    if ours.resync_seconds > 0:
        controller.run_in_background(controller.resync_forever(
            lambda: _live(ours.namespace), ours.resync_seconds))
    logs.get(engine=metrics.KUBERNETES).info(
        "operator started", metrics_port=ours.metrics_port, workers=ours.workers,
        namespace=ours.namespace or "(all)")


def _refuse_to_freeze_a_peer(peering: Any, namespace: str | None) -> None:
    """kopf pauses every replica when two of equal priority are alive: nothing would act.
    Read the peering record before kopf joins it, and stop with one clear message instead."""
    path = (f"/apis/kopf.dev/v1/clusterkopfpeerings/{peering.name}" if peering.clusterwide
            else f"/apis/kopf.dev/v1/namespaces/{namespace}/kopfpeerings/{peering.name}")
    try:
        record = kube.get_json(path) or {}
    except kube.KubeError as e:  # unreadable (e.g. a Role without it): kopf still pauses
        logs.get(engine=metrics.KUBERNETES).warning("peering record not checked", error=str(e))
        return
    equal = peers.same_priority(record.get("status"), peering.priority,
                                now=datetime.datetime.now(datetime.UTC),
                                me=os.environ.get("POD_ID"))
    if equal:
        raise kopf.PermanentError(
            f"another replica with priority {peering.priority} is alive in the peering "
            f"{peering.name!r} ({', '.join(equal)}): kopf would pause both and nothing would "
            "act. fix: give this replica another --priority, or leave it out (a random one)")


@kopf.on.cleanup()
async def shut_down(memo: kopf.Memo, **_: Any) -> None:
    await memo.controller.stop()


# --- caches ---------------------------------------------------------------------------------


def _packed(kind: str, key: Key, body: Mapping[str, Any],
            memory: cache.ReadYourWrites) -> cache.Packed:
    """What the store keeps of an object; of someone else's child, only who owns it."""
    if kind != specs.KIND and render.controlling_webapp(body) is None:
        return cache.pack(body, owned=False)
    return memory.seen(kind, key, cache.pack(body))


def _fill(store: cache.Store, memory: cache.ReadYourWrites,
          namespace: str | None) -> list[tuple[Key, bool]]:
    """One LIST of each kind before any reconcile runs: the informer's cache sync. Returns
    every WebApp listed, and whether its status does not cover its spec (``status.unseen``)."""
    webapps = []
    for kind in cache.KINDS:
        for obj in kube.list_all(kind, namespace):
            meta = obj.get("metadata") or {}
            key = (meta.get("namespace", ""), meta.get("name", ""))
            store.put(kind, key, _packed(kind, key, obj, memory))
            if kind == specs.KIND:
                webapps.append((key, statuses.unseen(obj)))
    return webapps


def _seen(memo: kopf.Memo, kind: str, event_type: str, key: Key,
          body: Mapping[str, Any]) -> controlling.Controller:
    """Keep the store equal to the watch, and hand back the controller, its workers started on
    the first event: started from a handler, they inherit its context, which ``kopf.event``
    needs to post Events."""
    store: cache.Store = memo.store
    if event_type == "DELETED":
        store.drop(kind, key)
    else:
        store.put(kind, key, _packed(kind, key, body, memo.memory))
    controller: controlling.Controller = memo.controller
    controller.start(store)
    return controller


@kopf.on.event(specs.GROUP, specs.VERSION, specs.PLURAL)
async def webapp_changed(event: Mapping[str, Any], namespace: str, name: str, body: kopf.Body,
                         memo: kopf.Memo, **_: Any) -> None:
    event_type = str(event.get("type") or "")
    _seen(memo, specs.KIND, event_type, (namespace, name), body).webapp_event(
        (namespace, name), event_type=event_type, at_version=cache.version(body),
        unseen=statuses.unseen(body))


def _child_changed(kind: str, event: Mapping[str, Any], namespace: str, name: str,
                   body: kopf.Body, memo: kopf.Memo) -> None:
    """Children are kept under their own name, which is their WebApp's."""
    event_type = str(event.get("type") or "")
    controller = _seen(memo, kind, event_type, (namespace, name), body)
    owner = render.owner_name(body)
    if owner is None:
        # Someone else's object: when one that stood in a WebApp's way goes, make the child.
        if event_type == "DELETED" and memo.store.get(specs.KIND, (namespace, name)):
            controller.enqueue((namespace, name), f"{kind.lower()} in the way deleted")
        return
    controller.child_event(kind, (namespace, owner), event_type=event_type,
                           at_version=cache.version(body))


@kopf.on.event("apps", "v1", "deployments")
async def deployment_changed(event: Mapping[str, Any], namespace: str, name: str,
                             body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _child_changed("Deployment", event, namespace, name, body, memo)


@kopf.on.event("v1", "services")
async def service_changed(event: Mapping[str, Any], namespace: str, name: str,
                          body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _child_changed("Service", event, namespace, name, body, memo)


@kopf.on.event("autoscaling", "v2", "horizontalpodautoscalers")
async def autoscaler_changed(event: Mapping[str, Any], namespace: str, name: str,
                             body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _child_changed(render.AUTOSCALER, event, namespace, name, body, memo)
