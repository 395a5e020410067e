"""One reconciliation of one WebApp, in sample-controller's order.

fetch the owner (gone → done) → reject a bad spec without retrying → for each child: missing →
create it from the pure constructor; not ours → refuse (Degraded, a Warning event); different
in a field we own → apply onto the object compared; entries someone else added to our lists →
remove them → compute the status → write it only if it changed (and not yet when the
Deployment was made just now: its controller's first report brings the next reconcile) →
events. A request the apiserver answers with a wait (429 and Retry-After) ends the pass there:
it is retried as a whole once that wait is over.

The same function runs whatever triggered it (the WebApp changed, a child changed or vanished,
the operator restarted): level-triggered. The outside world is reached only through the
:class:`Cluster` protocol, so tests can hand in a fake that fails loudly.

Never adopt: a missing child is *created* (an object someone made meanwhile makes that fail
with 409, and stays theirs), and a child that differs is written only onto the object that
was compared, by its uid (a stranger's object put in its place makes that fail too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from reconcile_lab import parsing
from reconcile_lab import spec as specs
from reconcile_lab.declarative import diffing, render, status

KINDS = render.KINDS
KIND = specs.KIND  # the owner, read back before a repair


class Cluster(Protocol):
    """What a reconcile may do. A failed call raises an exception whose attributes say what
    happened: ``conflict`` (409: it exists, or it changed), ``stale`` (it changed since it was
    read), ``permanent`` (trying again cannot help)."""

    async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]: ...
    async def apply(self, manifest: Mapping[str, Any], *, uid: str) -> dict[str, Any]: ...
    async def patch(self, kind: str, namespace: str, name: str,
                    ops: list[dict[str, Any]]) -> dict[str, Any]: ...
    async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def delete(self, kind: str, namespace: str, name: str, *, uid: str) -> bool: ...
    async def patch_status(self, namespace: str, name: str,
                           status: Mapping[str, Any]) -> dict[str, Any]: ...
    def event(self, webapp: Mapping[str, Any], *, type: str, reason: str, message: str) -> None: ...


class Write(NamedTuple):
    kind: str  # Deployment, Service, HorizontalPodAutoscaler, status
    verb: str  # created, updated, repaired, deleted, status
    fields: tuple[str, ...] = ()


class Outcome(NamedTuple):
    result: str  # success | conflict | invalid | stale | error | gone
    writes: tuple[Write, ...]
    status: Mapping[str, Any] | None
    error: str = ""
    retry: bool = True  # for errors: whether trying again can help
    retry_after: float | None = None  # for errors: the least wait the apiserver asked for

    @property
    def drift_repairs(self) -> tuple[Write, ...]:
        return tuple(w for w in self.writes if w.verb == "repaired")


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    return meta


def _same(live: Mapping[str, Any] | None, uid: str) -> bool:
    return live is not None and _meta(live).get("uid") == uid \
        and not _meta(live).get("deletionTimestamp")


def _failed(e: Exception, kind: str, name: str, namespace: str) -> status.Problem:
    if getattr(e, "status", 0) == 403:
        return status.Problem(status.Reason.FORBIDDEN, (
            f"the operator may not write {kind} {name} in {namespace} ({e}); fix: give its "
            "ServiceAccount back its Role (`reconcile-lab operator rbac --namespace "
            f"{namespace} | kubectl apply -f -`, or deploy/rbac.yaml)"))
    return status.Problem(status.Reason.APPLY_FAILED, str(e))


def _not_ours(kind: str, name: str) -> status.Problem:
    return status.Problem(
        status.Reason.CHILD_CONFLICT,
        f"{kind} {name} exists and is not controlled by this WebApp; the operator will not "
        f"overwrite it: delete or rename it")


class _Stale(Exception):
    """A child changed between the read and the write: reconcile again from the cache."""


async def _make_equal(cluster: Cluster, desired: Mapping[str, Any],
                      child: Mapping[str, Any] | None, uid: str) -> tuple[
                          Mapping[str, Any] | None, tuple[str, ...] | None]:
    """Make one child equal to ``desired``: (the child now, the fields written; None when
    nothing was written). None for the child: someone else's object is in the way."""
    meta = desired["metadata"]
    if child is None:
        try:
            return await cluster.create(desired), ()
        except Exception as e:
            if not getattr(e, "conflict", False):
                raise
        # 409: an object of that name exists now. Ours (a create whose answer was lost)?
        child = await cluster.read(desired["kind"], meta["namespace"], meta["name"])
        if child is None:
            raise _Stale() from None
        if not render.controlled_by(child, uid):
            return None, None
    fields = list(diffing.drift(desired, child))
    gone = diffing.released(desired, child)
    current: Mapping[str, Any] = child
    try:
        if fields or gone:
            if gone and (upgrade := diffing.ownership_upgrade(current)) is not None:
                current = await cluster.patch(desired["kind"], meta["namespace"], meta["name"],
                                              upgrade)
            current = await cluster.apply(desired, uid=_meta(current)["uid"])
            fields += [f"-{path}" for path in gone]
        found = diffing.extras(desired, current)
        if found:
            current = await cluster.patch(desired["kind"], meta["namespace"], meta["name"],
                                          diffing.removal(current, found))
            fields += [f"-{extra.describe()}" for extra in found]
    except Exception as e:
        if getattr(e, "stale", False):
            raise _Stale() from None
        raise
    return current, (tuple(fields) if fields else None)


async def reconcile(
    webapp: Mapping[str, Any] | None,
    observed: Mapping[str, Mapping[str, Any] | None],
    cluster: Cluster,
    *,
    now: str,
) -> Outcome:
    """Make the children of ``webapp`` equal to its spec.

    ``observed`` maps kind → the child as cached, or None when the cache knows there is no object
    of that kind and name (ours or anyone's); a kind missing from it is read by name.
    """
    if webapp is None or _meta(webapp).get("deletionTimestamp"):
        return Outcome("gone", (), None)  # children go away by garbage collection
    meta = _meta(webapp)
    name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
    generation = int(meta.get("generation") or 1)
    old_status: Mapping[str, Any] = webapp.get("status") or {}
    spec_changed = old_status.get("observedGeneration") != generation

    try:
        spec = parsing.parse_spec(webapp.get("spec"), name=name)
    except parsing.InvalidWebApp as e:
        # The CRD schema normally refuses this; an old CRD may not. Retrying cannot help.
        refusal = [status.Problem(status.Reason.INVALID_SPEC, "; ".join(map(str, e.problems)))]
        new = status.compute(name=name, generation=generation, desired_replicas=0,
                             deployment=observed.get("Deployment"), problems=refusal,
                             selector=render.selector_string(name))
        invalid_writes = await _write_status(cluster, namespace, name, old_status, new, now)
        _warn(cluster, webapp, refusal, old_status)
        return Outcome("invalid", tuple(invalid_writes), new, retry=False)

    owner = render.Owner(name, namespace, uid)
    current: dict[str, Mapping[str, Any] | None] = {}
    problems: list[status.Problem] = []
    writes: list[Write] = []
    error = ""
    wait: float | None = None  # the longest Retry-After among the failures
    confirmed = False
    deployment_made = False
    for desired in render.children(owner, spec):
        kind = desired["kind"]
        # Someone else's object of the same name counts too: it must not be overwritten.
        try:
            child = (observed[kind] if kind in observed
                     else await cluster.read(kind, namespace, name))
        except Exception as e:  # what is there is not known: nothing to compare, nor to report
            return Outcome("error", tuple(writes), None, str(e),
                           retry_after=getattr(e, "retry_after", None))
        if child is not None and not render.controlled_by(child, uid):
            problems.append(_not_ours(kind, name))
            current[kind] = None
            continue
        # A child of an unchanged WebApp gone: drift, or the garbage collector taking it
        # because the WebApp was deleted and its watch has not said so yet (it was broken).
        # Made again from the cache, it would be a write for an owner that is gone.
        confirm = child is None and not spec_changed and not confirmed
        try:
            if confirm and not _same(await cluster.read(KIND, namespace, name), uid):
                return Outcome("gone", tuple(writes), None)
            confirmed = confirmed or confirm
            now_child, fields = await _make_equal(cluster, desired, child, uid)
        except _Stale:
            return Outcome("stale", tuple(writes), None)
        except Exception as e:  # any failure becomes a condition and a retry
            if getattr(e, "permanent", False):
                return Outcome("gone", tuple(writes), None, str(e), retry=False)
            if (asked := getattr(e, "retry_after", None)) is not None:
                # The apiserver asked this client to wait (429, or 503 while it starts): the
                # rest of the pass (the other children, the status) waits too, rather than
                # spend requests it would refuse the same way.
                _announce(cluster, webapp, writes)
                return Outcome("error", tuple(writes), None, str(e), retry_after=asked)
            error = str(e)
            problems.append(_failed(e, kind, name, namespace))
            current[kind] = child
            continue
        if now_child is None:
            problems.append(_not_ours(kind, name))
            current[kind] = None
            continue
        current[kind] = now_child
        deployment_made |= kind == "Deployment" and child is None and fields is not None
        if fields is not None:
            # A child that vanished or changed while the spec did not is drift being repaired.
            verb = "repaired" if not spec_changed else ("created" if child is None else "updated")
            writes.append(Write(kind, verb, fields))

    for kind in KINDS:
        if kind in current:
            continue
        # A kind the spec no longer asks for (autoscale removed): ours goes, by its uid.
        try:
            child = (observed[kind] if kind in observed
                     else await cluster.read(kind, namespace, name))
            if child is not None and render.controlled_by(child, uid) \
                    and await cluster.delete(kind, namespace, name, uid=_meta(child)["uid"]):
                writes.append(Write(kind, "deleted"))
        except Exception as e:
            if getattr(e, "permanent", False):
                return Outcome("gone", tuple(writes), None, str(e), retry=False)
            if not getattr(e, "stale", False):  # gone or replaced meanwhile: nothing to do
                error = str(e)
                wait = _longest(wait, getattr(e, "retry_after", None))
                problems.append(_failed(e, kind, name, namespace))

    new = status.compute(name=name, generation=generation, desired_replicas=spec.replicas,
                         deployment=current.get("Deployment"), problems=problems,
                         selector=render.selector_string(name))
    _announce(cluster, webapp, writes)
    if deployment_made and not problems:
        # A Deployment made just now has nothing to report yet. Its controller writes its
        # status at once, that change brings the next reconcile, and that one reports it:
        # one status write where there would be two, each a whole-object update of the
        # custom resource at the apiserver (bench/RESULTS.md counts them).
        return Outcome("success", tuple(writes), new)
    try:
        writes += await _write_status(cluster, namespace, name, old_status, new, now)
    except Exception as e:  # reported, and retried by the caller
        error = error or str(e)
        wait = _longest(wait, getattr(e, "retry_after", None))
    else:
        # Only once the status records them: a failed status write retried must not post
        # the same Warning again.
        _warn(cluster, webapp, problems, old_status)
        if status.is_ready(new) and not status.is_ready(old_status):
            cluster.event(webapp, type="Normal", reason=status.EventReason.READY,
                          message=status.condition(new, status.READY)["message"])  # type: ignore[index]
    if error:
        return Outcome("error", tuple(writes), new, error, retry_after=wait)
    result = "conflict" if any(p.reason == status.Reason.CHILD_CONFLICT for p in problems) \
        else "success"
    return Outcome(result, tuple(writes), new)


def _longest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


async def _write_status(cluster: Cluster, namespace: str, name: str,
                        old: Mapping[str, Any], new: Mapping[str, Any], now: str) -> list[Write]:
    merged = status.merge(old, new, now=now)
    if not status.differs(old, merged):
        return []
    await cluster.patch_status(namespace, name, merged)
    return [Write("status", "status")]


def _announce(cluster: Cluster, webapp: Mapping[str, Any], writes: list[Write]) -> None:
    """A Normal event for what was done to the children: it happened, whatever follows. One
    per kind of action, not per child: every event is a write too."""
    reasons = {"created": status.EventReason.CREATED, "updated": status.EventReason.UPDATED,
               "repaired": status.EventReason.REPAIRED, "deleted": status.EventReason.DELETED}
    for verb, reason in reasons.items():
        done = [f"{w.kind} {_meta(webapp)['name']}"
                + (f" ({', '.join(w.fields[:4])})" if w.fields else "")
                for w in writes if w.verb == verb]
        if done:
            cluster.event(webapp, type="Normal", reason=reason,
                          message=f"{' and '.join(done)} {verb}")


def _warn(cluster: Cluster, webapp: Mapping[str, Any], problems: list[status.Problem],
          old: Mapping[str, Any]) -> None:
    """A Warning for each problem the previous status did not already report."""
    before = status.condition(old, status.DEGRADED) or {}
    for problem in problems:
        if before.get("status") != "True" or before.get("reason") != problem.reason:
            cluster.event(webapp, type="Warning", reason=problem.reason, message=problem.message)
