"""The controller: a work queue of WebApp keys, a pool of workers, retries, per-key state.

kopf's handlers (``handlers.py``) only tell it what happened (:meth:`Controller.enqueue`,
:meth:`Controller.child_event`, :meth:`Controller.forget`); each worker takes a key, reads the
WebApp and its children from the caches, and lets :func:`reconciling.reconcile` decide. What it
keeps per key (the trigger for the log, the failures for the back-off, the pending retry, when a
change was first seen for time-to-converge) lives in one map, dropped when the WebApp goes.

It talks to the cluster only through the ``reconciling.Cluster`` it is given, and reads
through :class:`Caches`, so tests drive it without kopf or an apiserver.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import random
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from reconcile_lab import spec as specs
from reconcile_lab.declarative import cache, reconciling, workqueue
from reconcile_lab.declarative import status as statuses
from reconcile_lab.observe import logs, metrics

ENGINE = metrics.KUBERNETES
Key = cache.Key
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
STALE_DELAY = 0.2  # a write refused because the child changed: read the cache again soon


class Caches(Protocol):
    """The watch's view: the cached object of a kind under a key, every WebApp's key, and
    whether an object was held unchanged since a point in the view's history; what a LIST
    shows gone while the watch said nothing is dropped from it."""

    def get(self, kind: str, key: Key) -> cache.Packed | None: ...
    def webapp_keys(self) -> Iterable[Key]: ...
    def mark(self) -> int: ...
    def unchanged_since(self, kind: str, key: Key, mark: int) -> bool: ...
    def drop(self, kind: str, key: Key) -> None: ...


@dataclasses.dataclass
class _KeyState:
    trigger: str = "queued"  # what last queued the key, for the log
    failures: int = 0  # consecutive failed reconciles, for the back-off
    last_error: str | None = None  # logged once while it repeats: one line, not a flood
    retry: asyncio.TimerHandle | None = None  # the one pending retry
    change_seen: tuple[int, float] | None = None  # (generation, since) until Ready


def _result_of(outcome: reconciling.Outcome) -> str:
    """The result label: every outcome counted as what it was."""
    if outcome.result == "gone":
        return "error" if outcome.error else "success"
    return outcome.result


class Controller:
    def __init__(self, cluster: reconciling.Cluster, memory: cache.ReadYourWrites, *,
                 workers: int, rng: random.Random | None = None,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.cluster = cluster
        self.memory = memory
        self.workers = workers
        self.queue: workqueue.WorkQueue[Key] = workqueue.WorkQueue()
        self.keys: dict[Key, _KeyState] = {}
        self.caches: Caches | None = None  # set by start(), once the store is filled
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._retry_delays = retry_delays
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle ---

    def start(self, caches: Caches) -> None:
        """Keep the caches and start the workers; harmless when already started."""
        if self.caches is not None:
            return
        self.caches = caches
        loop = asyncio.get_running_loop()
        self._tasks.update(loop.create_task(self._work_forever()) for _ in range(self.workers))

    def run_in_background(self, coro: Any) -> None:
        self._tasks.add(asyncio.get_running_loop().create_task(coro))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # --- what kopf tells it ---

    def enqueue(self, key: Key, trigger: str, *, listed: bool = False) -> None:
        """Queue ``key``; ``listed``: only a list reported it (it waits behind changes)."""
        self.keys.setdefault(key, _KeyState()).trigger = trigger
        if self.queue.add(key, listed=listed):
            metrics.enqueued(len(self.queue))

    def child_event(self, kind: str, key: Key, *, event_type: str, at_version: int) -> None:
        """A child of the WebApp ``key`` changed (or was deleted)."""
        if event_type == "DELETED":
            self.memory.deleted(kind, key, at_version)
        elif self.memory.is_echo(kind, key, at_version):
            return  # the watch showing our own write: the reconcile that made it saw it
        self.enqueue(key, f"{kind.lower()} {(event_type or 'listed').lower()}",
                     listed=not event_type)

    def webapp_event(self, key: Key, *, event_type: str, at_version: int,
                     unseen: bool = False) -> None:
        """``unseen``: the WebApp's status does not cover its generation (new, or changed
        while the operator was away): listed or not, it goes before what is merely listed."""
        if event_type == "DELETED":
            self.forget(key)
            metrics.forget_app(ENGINE, *key)
            logs.get(namespace=key[0], name=key[1]).info("webapp deleted; children are garbage")
        elif not self.memory.is_echo(specs.KIND, key, at_version):  # not our status write
            self.enqueue(key, "webapp" if event_type else "webapp listed",
                         listed=not event_type and not unseen)

    def tracked(self) -> dict[str, int]:
        """What is kept per key, by table: all of it goes when the WebApps go."""
        known = len(list(self.caches.webapp_keys())) if self.caches is not None else 0
        return {"keys": len(self.keys), "writes": len(self.memory), "queued": len(self.queue),
                "webapps": known}

    def forget(self, key: Key) -> None:
        """The WebApp is gone: drop everything kept for it."""
        state = self.keys.pop(key, None)
        if state is not None and state.retry is not None:
            state.retry.cancel()
        self.memory.forget(key)

    # --- the workers ---

    async def _work_forever(self) -> None:
        """One of ``workers``: take a key, reconcile it, mark it done; a key is never worked on
        twice at once."""
        while True:
            key, waited = await self.queue.get()
            try:
                with metrics.working(waited, len(self.queue)):
                    state = self.keys.get(key)
                    await self.reconcile(key, trigger=state.trigger if state else "queued")
            except Exception as e:  # a bug or a failed read must not stop the worker
                logs.get(namespace=key[0], name=key[1]).exception("reconcile crashed",
                                                                  error=str(e))
                metrics.count_reconcile(ENGINE, "error")
                self._retry(key, str(e), at_least=getattr(e, "retry_after", None) or 0.0)
            finally:
                self.queue.done(key)

    async def reconcile(self, key: Key, trigger: str) -> None:
        assert self.caches is not None, "start() first"
        namespace, name = key
        packed = self.caches.get(specs.KIND, key)
        if packed is None:
            self.forget(key)  # deleted (or never there): children go by garbage collection
            return
        webapp = self.memory.freshest(specs.KIND, key, packed.unpack())
        assert webapp is not None
        log = logs.get(namespace=namespace, name=name,
                       generation=webapp["metadata"].get("generation"), trigger=trigger)
        state = self.keys.setdefault(key, _KeyState())
        generation = int(webapp["metadata"].get("generation") or 1)
        old_status = webapp.get("status") or {}
        if state.change_seen is None and (old_status.get("observedGeneration") != generation
                                          or not statuses.is_ready(old_status)):
            state.change_seen = (generation, time.monotonic())
        observed: dict[str, dict[str, Any] | None] = {}
        for kind in reconciling.KINDS:
            child_packed = self.caches.get(kind, key)
            child = self.memory.freshest(kind, key,
                                         child_packed.unpack() if child_packed else None)
            if child is not None or not self.memory.is_vanished(kind, key):
                observed[kind] = child  # None: the cache knows there is none, ours or anyone's
        metrics.cr_active_workers.labels(metrics.CONTROLLER).inc()
        try:
            with metrics.timed_reconcile(ENGINE):
                now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                outcome = await reconciling.reconcile(webapp, observed, self.cluster, now=now)
        finally:
            metrics.cr_active_workers.labels(metrics.CONTROLLER).dec()
        metrics.count_reconcile(ENGINE, _result_of(outcome))
        self._report(log, outcome)
        if outcome.status is not None:
            desired = int((webapp.get("spec") or {}).get("replicas", 1))
            metrics.set_replicas(ENGINE, namespace, name, desired=desired,
                                 ready=int(outcome.status.get("readyReplicas", 0)))
            if statuses.is_ready(outcome.status) and state.change_seen is not None:
                seen_generation, since = state.change_seen
                state.change_seen = None
                if seen_generation <= generation:
                    metrics.time_to_converge.labels(ENGINE).observe(time.monotonic() - since)
        if outcome.result == "error" and outcome.retry:
            self._retry(key, outcome.error, at_least=outcome.retry_after or 0.0)
        elif outcome.result == "stale":
            self._schedule(key, STALE_DELAY * (1 + self._rng.random()), "stale")
        else:
            self._settled(key)

    @staticmethod
    def _report(log: Any, outcome: reconciling.Outcome) -> None:
        for write in outcome.drift_repairs:
            metrics.drift_corrections.labels(ENGINE, write.kind).inc()
            log.info("drift repaired", kind=write.kind, fields=list(write.fields))
        for write in outcome.writes:
            if write.verb in ("created", "updated"):
                log.info(f"{write.kind.lower()} {write.verb}", fields=list(write.fields))
        if outcome.result == "gone" and outcome.error:
            log.warning("reconcile failed for good; not retrying", error=outcome.error)

    # --- retries ---

    def _settled(self, key: Key) -> None:
        """A reconcile that needs no retry: the failures are forgotten, a pending retry
        cancelled (its work is done)."""
        state = self.keys.get(key)
        if state is None:
            return
        if state.last_error is not None:
            logs.get(namespace=key[0], name=key[1]).info(
                "reconcile succeeded again", after_failures=state.failures)
            state.last_error = None
        state.failures = 0
        if state.retry is not None:
            state.retry.cancel()
            state.retry = None

    def _retry(self, key: Key, error: str, *, at_least: float = 0.0) -> None:
        """kopf does not retry event handlers: a failed key is queued again, with a jittered
        exponential back-off (several failing WebApps must not retry in lockstep), and never
        sooner than the apiserver asked (Retry-After: a 429 of API Priority and Fairness)."""
        state = self.keys.setdefault(key, _KeyState())
        base = self._retry_delays[min(state.failures, len(self._retry_delays) - 1)]
        state.failures += 1
        delay = max(base * self._rng.uniform(0.8, 1.2), at_least * self._rng.uniform(1.0, 1.2))
        log = logs.get(namespace=key[0], name=key[1])
        if error != state.last_error:  # the same error again is said once (e.g. a 403)
            log.warning("reconcile failed; retrying", error=error, retry_in=round(delay, 2))
        else:
            log.debug("reconcile still failing; retrying", failures=state.failures,
                      retry_in=round(delay, 2))
        state.last_error = error
        metrics.count_retry()
        self._schedule(key, delay, "retry")

    def _schedule(self, key: Key, delay: float, trigger: str) -> None:
        state = self.keys.setdefault(key, _KeyState())
        if state.retry is not None:
            state.retry.cancel()

        def fire() -> None:
            if self.keys.get(key) is state:
                state.retry = None
                self.enqueue(key, trigger)

        state.retry = asyncio.get_running_loop().call_later(delay, fire)

    # --- the safety net: a periodic list catches what a broken watch missed ---

    async def resync_forever(self, list_children: Callable[[], set[tuple[str, str, str]]],
                             every: float) -> None:
        """Every ``every`` seconds, LIST the WebApps and their children (reads, never
        writes)."""
        last_error = ""
        while True:
            await asyncio.sleep(every)
            if self.caches is None:
                continue
            mark = self.caches.mark()
            try:
                live = await asyncio.to_thread(list_children)
            except Exception as e:  # the API is down or we may not list: say so once
                if str(e) != last_error:
                    logs.get(engine=ENGINE).warning("resync failed", error=str(e))
                last_error = str(e)
                continue
            if last_error:
                logs.get(engine=ENGINE).info("resync works again")
                last_error = ""
            self.resync(live, mark)

    def resync(self, live: set[tuple[str, str, str]], mark: int) -> None:
        """``live``: what the apiserver listed: (kind, namespace, owner) of every owned child,
        and (WebApp, namespace, name) of every WebApp; ``mark``: the caches' history when the
        LIST began. A child the watch delivered after that is newer than the answer, not lost."""
        assert self.caches is not None
        for key in list(self.caches.webapp_keys()):
            if (specs.KIND, *key) not in live:
                # Deleted while the watch was broken: its children are the garbage
                # collector's (made again from the stale cache, they would be writes for an
                # owner that is gone). A watch started again lists what is, and says nothing
                # of what went meanwhile: unless forgotten here, it would be kept for ever.
                if self.caches.unchanged_since(specs.KIND, key, mark):
                    self._deleted_unseen(key, live, mark)
                continue
            for kind in reconciling.KINDS:
                if (packed := self._lost(kind, key, live, mark)) is not None:
                    self.memory.vanished(kind, key, packed.version)
                    logs.get(namespace=key[0], name=key[1]).info("child vanished unseen",
                                                                 kind=kind)
                    self.enqueue(key, "resync")

    def _deleted_unseen(self, key: Key, live: set[tuple[str, str, str]], mark: int) -> None:
        """What the WebApp's DELETED event would have done, and its children's."""
        assert self.caches is not None
        self.caches.drop(specs.KIND, key)
        for kind in reconciling.KINDS:
            if self._lost(kind, key, live, mark) is not None:
                self.caches.drop(kind, key)
        self.webapp_event(key, event_type="DELETED", at_version=0)

    def _lost(self, kind: str, key: Key, live: set[tuple[str, str, str]],
              mark: int) -> cache.Packed | None:
        """Our child as the caches hold it, when the LIST did not show it and the caches held
        it unchanged since the LIST began (the watch lost its deletion); else None."""
        assert self.caches is not None
        packed = self.caches.get(kind, key)
        if (packed is not None and packed.owned and (kind, *key) not in live
                and self.caches.unchanged_since(kind, key, mark)):
            return packed
        return None
