"""The WebApp's status, computed from what was observed: conditions in metav1.Condition shape.

Three conditions, the way kubebuilder projects report them:

- ``Ready``: every desired replica runs the current spec and is ready;
- ``Progressing``: a rollout or a scale is under way;
- ``Degraded``: something needs a person (a child we do not own, a failed write, a stuck rollout).

Purely data-manipulative: no I/O. ``now`` is passed in so that tests are exact.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple


class Reason:
    """Every condition reason, in one place (CamelCase, as metav1.Condition wants)."""

    AVAILABLE = "Available"
    SCALED_TO_ZERO = "ScaledToZero"
    NOT_READY = "ReplicasNotReady"
    WAITING = "WaitingForDeployment"
    ROLLING_OUT = "RollingOut"
    ROLLOUT_COMPLETE = "RolloutComplete"
    DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    AS_EXPECTED = "AsExpected"
    CHILD_CONFLICT = "ChildConflict"
    APPLY_FAILED = "ApplyFailed"
    FORBIDDEN = "Forbidden"  # the operator may not write a child: its RBAC
    INVALID_SPEC = "InvalidSpec"


class EventReason:
    """Reasons of the Kubernetes Events the operator posts."""

    CREATED = "Created"
    UPDATED = "Updated"
    REPAIRED = "DriftRepaired"
    DELETED = "Deleted"
    CONFLICT = "ChildConflict"
    FAILED = "ApplyFailed"
    READY = "Ready"


READY, PROGRESSING, DEGRADED = "Ready", "Progressing", "Degraded"


class Problem(NamedTuple):
    """Why the WebApp is Degraded."""

    reason: str
    message: str


def _condition(kind: str, ok: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False", "reason": reason,
            "message": message, "observedGeneration": generation}


def _deployment_numbers(deployment: Mapping[str, Any] | None) -> dict[str, int]:
    status = (deployment or {}).get("status") or {}
    return {k: int(status.get(k) or 0)
            for k in ("replicas", "readyReplicas", "updatedReplicas", "availableReplicas")}


def _deployment_settled(deployment: Mapping[str, Any]) -> bool:
    """Whether the Deployment controller has seen the Deployment's latest spec."""
    generation = deployment.get("metadata", {}).get("generation", 0)
    observed = (deployment.get("status") or {}).get("observedGeneration", 0)
    return bool(observed >= generation)


def _deadline_exceeded(deployment: Mapping[str, Any]) -> bool:
    for cond in (deployment.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return True
    return False


def compute(
    *,
    name: str,
    generation: int,
    desired_replicas: int,
    deployment: Mapping[str, Any] | None,
    problems: Sequence[Problem] = (),
    selector: str,
) -> dict[str, Any]:
    """The status the WebApp should show, without transition times (see :func:`merge`)."""
    numbers = _deployment_numbers(deployment)
    ready_count, updated = numbers["readyReplicas"], numbers["updatedReplicas"]
    settled = deployment is not None and _deployment_settled(deployment)
    rolled_out = settled and updated >= desired_replicas and numbers["replicas"] == desired_replicas
    ready = rolled_out and ready_count >= desired_replicas and not problems

    if deployment is None:
        ready_cond = _condition(READY, False, Reason.WAITING, "the Deployment does not exist yet",
                                generation)
    elif ready and desired_replicas == 0:
        ready_cond = _condition(READY, True, Reason.SCALED_TO_ZERO, "scaled to 0 replicas",
                                generation)
    elif ready:
        ready_cond = _condition(READY, True, Reason.AVAILABLE,
                                f"{ready_count}/{desired_replicas} replicas ready", generation)
    else:
        ready_cond = _condition(READY, False, problems[0].reason if problems else Reason.NOT_READY,
                                f"{ready_count}/{desired_replicas} replicas ready", generation)

    stuck = deployment is not None and _deadline_exceeded(deployment)
    if stuck:
        progressing = _condition(PROGRESSING, False, Reason.DEADLINE_EXCEEDED,
                                 "the rollout stopped making progress", generation)
    elif rolled_out:
        progressing = _condition(PROGRESSING, False, Reason.ROLLOUT_COMPLETE,
                                 f"{name} runs generation {generation} everywhere", generation)
    else:
        progressing = _condition(PROGRESSING, True, Reason.ROLLING_OUT,
                                 f"{updated}/{desired_replicas} replicas updated", generation)

    all_problems = list(problems)
    if stuck:
        all_problems.append(Problem(Reason.DEADLINE_EXCEEDED,
                                    "pods of the new version do not become ready; check the image "
                                    "and the health check (kubectl describe pods)"))
    if all_problems:
        degraded = _condition(DEGRADED, True, all_problems[0].reason,
                              "; ".join(p.message for p in all_problems), generation)
    else:
        degraded = _condition(DEGRADED, False, Reason.AS_EXPECTED, "nothing needs attention",
                              generation)

    return {
        "observedGeneration": generation,
        "replicas": numbers["replicas"],
        "readyReplicas": ready_count,
        "updatedReplicas": updated,
        "selector": selector,
        "conditions": [ready_cond, progressing, degraded],
    }


def merge(old: Mapping[str, Any] | None, new: Mapping[str, Any], *, now: str) -> dict[str, Any]:
    """``new`` with each condition's lastTransitionTime kept unless its status changed."""
    previous = {c.get("type"): c for c in (old or {}).get("conditions") or []}
    conditions = []
    for cond in new["conditions"]:
        before = previous.get(cond["type"])
        same = before is not None and before.get("status") == cond["status"]
        since = before.get("lastTransitionTime") if same and before else None
        conditions.append({**cond, "lastTransitionTime": since or now})
    return {**new, "conditions": conditions}


def differs(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing ``new`` would change anything (so an unchanged status costs no write)."""
    old = old or {}
    return any(old.get(k) != v for k, v in new.items())


def timestamp(text: str | None) -> float:
    """An API timestamp ("2026-01-01T00:00:00Z") as seconds since the epoch; 0 when absent."""
    if not text:
        return 0.0
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def condition(status: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def is_ready(status: Mapping[str, Any] | None) -> bool:
    cond = condition(status, READY)
    return cond is not None and cond.get("status") == "True"


def unseen(webapp: Mapping[str, Any]) -> bool:
    """Whether the WebApp's status does not cover its spec: new, or changed since a reconcile
    last reported on it (``observedGeneration`` behind ``generation``)."""
    meta, status = webapp.get("metadata") or {}, webapp.get("status") or {}
    return bool(status.get("observedGeneration") != meta.get("generation", 1)
                and not meta.get("deletionTimestamp"))
