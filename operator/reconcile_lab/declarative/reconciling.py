"""One reconciliation of one WebApp, in sample-controller's order.

fetch the owner (gone → done) → reject a bad spec without retrying → for each child: missing →
create it from the pure constructor; not ours → refuse (Warning event, Degraded); different in
a field we own → apply → compute the status → write it only if it changed → events.

The same function runs whatever triggered it (the WebApp changed, a child changed or vanished,
the operator restarted): level-triggered. The outside world is reached only through the
:class:`Cluster` protocol, so tests can hand in a fake that fails loudly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from reconcile_lab import spec as specs
from reconcile_lab.declarative import render, status

KINDS = ("Deployment", "Service")


class Cluster(Protocol):
    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]: ...
    async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def patch_status(self, namespace: str, name: str,
                           status: Mapping[str, Any]) -> dict[str, Any]: ...
    def event(self, webapp: Mapping[str, Any], *, type: str, reason: str, message: str) -> None: ...


class Write(NamedTuple):
    kind: str  # Deployment, Service, status
    verb: str  # created, updated, repaired, status
    fields: tuple[str, ...] = ()


class Outcome(NamedTuple):
    result: str  # success | conflict | invalid | error | gone
    writes: tuple[Write, ...]
    status: Mapping[str, Any] | None
    error: str = ""
    retry: bool = True  # for errors: whether trying again can help

    @property
    def drift_repairs(self) -> tuple[Write, ...]:
        return tuple(w for w in self.writes if w.verb == "repaired")


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    return meta


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
        spec = specs.parse_spec(webapp.get("spec"), name=name)
    except specs.InvalidWebApp as e:
        # The CRD schema normally refuses this; an old CRD may not. Retrying cannot help.
        refusal = [status.Problem(status.Reason.INVALID_SPEC, "; ".join(map(str, e.problems)))]
        new = status.compute(name=name, generation=generation, desired_replicas=0,
                             deployment=observed.get("Deployment"), problems=refusal,
                             selector=render.selector_string(name))
        invalid_writes = await _write_status(cluster, namespace, name, old_status, new, now)
        return Outcome("invalid", tuple(invalid_writes), new)

    owner = render.Owner(name, namespace, uid)
    current: dict[str, Mapping[str, Any] | None] = {}
    problems: list[status.Problem] = []
    writes: list[Write] = []
    error = ""
    for desired in render.children(owner, spec):
        kind = desired["kind"]
        # Someone else's object of the same name counts too: it must not be overwritten.
        child = observed[kind] if kind in observed else await cluster.read(kind, namespace, name)
        if child is not None and render.controller_uid(child) != uid:
            problems.append(status.Problem(
                status.Reason.CHILD_CONFLICT,
                f"{kind} {name} exists and is not controlled by this WebApp; the operator will not "
                f"overwrite it: delete or rename it"))
            current[kind] = None
            continue
        fields = tuple(render.drift(desired, child)) if child is not None else ()
        if child is not None and not fields:
            current[kind] = child
            continue
        # A child that vanished or changed while the spec did not is drift being repaired.
        verb = "repaired" if not spec_changed else ("created" if child is None else "updated")
        try:
            current[kind] = await cluster.apply(desired)
        except Exception as e:  # any failure becomes a condition and a retry
            if getattr(e, "permanent", False):
                return Outcome("gone", tuple(writes), None, str(e), retry=False)
            error = str(e)
            problems.append(status.Problem(status.Reason.APPLY_FAILED, error))
            current[kind] = child
            continue
        writes.append(Write(kind, verb, fields))

    new = status.compute(name=name, generation=generation, desired_replicas=spec.replicas,
                         deployment=current.get("Deployment"), problems=problems,
                         selector=render.selector_string(name))
    _announce(cluster, webapp, writes, problems, old_status, new)
    try:
        writes += await _write_status(cluster, namespace, name, old_status, new, now)
    except Exception as e:  # reported, and retried by the caller
        error = error or str(e)
    if error:
        return Outcome("error", tuple(writes), new, error)
    result = "conflict" if any(p.reason == status.Reason.CHILD_CONFLICT for p in problems) \
        else "success"
    return Outcome(result, tuple(writes), new)


async def _write_status(cluster: Cluster, namespace: str, name: str,
                        old: Mapping[str, Any], new: Mapping[str, Any], now: str) -> list[Write]:
    merged = status.merge(old, new, now=now)
    if not status.differs(old, merged):
        return []
    await cluster.patch_status(namespace, name, merged)
    return [Write("status", "status")]


def _announce(cluster: Cluster, webapp: Mapping[str, Any], writes: list[Write],
              problems: list[status.Problem], old: Mapping[str, Any],
              new: Mapping[str, Any]) -> None:
    """Events for what was done, and for problems when they first appear."""
    reasons = {"created": status.EventReason.CREATED, "updated": status.EventReason.UPDATED,
               "repaired": status.EventReason.REPAIRED}
    for w in writes:
        detail = f" ({', '.join(w.fields[:4])})" if w.fields else ""
        cluster.event(webapp, type="Normal", reason=reasons[w.verb],
                      message=f"{w.kind} {_meta(webapp)['name']} {w.verb}{detail}")
    before = status.condition(old, status.DEGRADED) or {}
    for problem in problems:
        if before.get("status") != "True" or before.get("reason") != problem.reason:
            cluster.event(webapp, type="Warning", reason=problem.reason, message=problem.message)
    if status.is_ready(new) and not status.is_ready(old):
        cluster.event(webapp, type="Normal", reason=status.EventReason.READY,
                      message=status.condition(new, status.READY)["message"])  # type: ignore[index]
