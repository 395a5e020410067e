"""status: conditions from observations, transitions kept stable, no needless writes."""

from __future__ import annotations

from typing import Any

from reconcile_lab.declarative import status


def _deploy(replicas: int, ready: int, updated: int, generation: int = 1,
            observed: int = 1) -> dict[str, Any]:
    return {"metadata": {"generation": generation},
            "status": {"observedGeneration": observed, "replicas": replicas,
                       "readyReplicas": ready, "updatedReplicas": updated}}


def _conds(s: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in s["conditions"]}


def _compute(deployment: dict[str, Any] | None, desired: int = 3,
             problems: tuple[status.Problem, ...] = ()) -> dict[str, Any]:
    return status.compute(name="web", generation=2, desired_replicas=desired,
                          deployment=deployment, problems=problems, selector="a=b")


def test_all_ready_is_ready_and_not_progressing() -> None:
    s = _compute(_deploy(3, 3, 3))
    assert _conds(s) == {"Ready": ("True", "Available"),
                         "Progressing": ("False", "RolloutComplete"),
                         "Degraded": ("False", "AsExpected")}
    assert (s["observedGeneration"], s["readyReplicas"], s["selector"]) == (2, 3, "a=b")


def test_rolling_out_is_progressing_not_ready() -> None:
    s = _compute(_deploy(4, 3, 1))
    assert _conds(s)["Ready"][0] == "False"
    assert _conds(s)["Progressing"] == ("True", "RollingOut")


def test_a_deployment_not_yet_seen_by_its_controller_is_not_ready() -> None:
    assert _conds(_compute(_deploy(3, 3, 3, generation=2, observed=1)))["Ready"][0] == "False"


def test_missing_deployment_and_scaled_to_zero() -> None:
    assert _conds(_compute(None))["Ready"] == ("False", "WaitingForDeployment")
    assert _conds(_compute(_deploy(0, 0, 0), desired=0))["Ready"] == ("True", "ScaledToZero")


def test_a_conflict_degrades() -> None:
    s = _compute(_deploy(3, 3, 3), problems=(status.Problem(status.Reason.CHILD_CONFLICT, "x"),))
    assert _conds(s)["Degraded"] == ("True", "ChildConflict")
    assert _conds(s)["Ready"] == ("False", "ChildConflict")


def test_transition_times_survive_unchanged_conditions() -> None:
    first = status.merge(None, _compute(_deploy(3, 3, 3)), now="T1")
    again = status.merge(first, _compute(_deploy(3, 3, 3)), now="T2")
    assert again == first
    assert not status.differs(first, again)
    later = status.merge(first, _compute(_deploy(3, 2, 3)), now="T3")
    times = {c["type"]: c["lastTransitionTime"] for c in later["conditions"]}
    assert times == {"Ready": "T3", "Progressing": "T1", "Degraded": "T1"}
    assert status.differs(first, later)


def test_a_webapp_is_unseen_until_a_status_covers_its_generation() -> None:
    new = {"metadata": {"generation": 1}}
    assert status.unseen(new)
    assert not status.unseen({**new, "status": {"observedGeneration": 1}})
    assert status.unseen({"metadata": {"generation": 2}, "status": {"observedGeneration": 1}})
    going = {"metadata": {"generation": 1, "deletionTimestamp": "T"}}
    assert not status.unseen(going)  # nothing to make for it: it waits with the listed
