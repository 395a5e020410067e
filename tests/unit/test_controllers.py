"""Exercise 10's check, on the states the exercise goes through."""

from __future__ import annotations

from typing import Any

from reconcile_lab.workshop import controllers, exercises
from reconcile_lab.workshop.observed import State


def _obj(*managers: str, **annotations: str) -> dict[str, Any]:
    return {"metadata": {"annotations": annotations, "managedFields": [
        *({"manager": m, "operation": "Update"} for m in managers),
        {"manager": "kube-controller-manager", "subresource": "status"}]}}


HANDLED = {controllers.HANDLED: "{}"}
WEBAPP = _obj("kubectl-client-side-apply", **HANDLED)


def _check(**parts: Any) -> Any:
    return exercises.find("10").check(State(app="hello", namespace="default", **parts))


def test_it_fails_at_every_step_before_the_last_and_says_what_comes_next() -> None:
    steps = [
        ({}, "no WebApp", "--edge-triggered"),
        ({"webapp": _obj("kubectl-client-side-apply")}, "never handled", "reset 10"),
        ({"webapp": WEBAPP, "service": _obj("edge-triggered"), "operator_kind": "edge"},
         "still the one the edge-triggered operator made", "kubectl delete service hello"),
        ({"webapp": WEBAPP, "operator_kind": "edge"}, "does nothing", "operator stop"),
        ({"webapp": WEBAPP, "operator_kind": "level"}, "not back yet", "wait"),
        ({"webapp": WEBAPP}, "no operator runs", "operator start"),
        ({"webapp": WEBAPP, "service": _obj("kubectl-create")}, "not by an operator",
         "kubectl delete service"),
    ]
    for parts, says, hint in steps:
        verdict = _check(**parts)
        assert not verdict.passed, parts
        assert says in verdict.summary and hint in verdict.hint, (parts, verdict)


def test_it_passes_once_the_kits_operator_made_the_service_again() -> None:
    verdict = _check(webapp=WEBAPP, service=_obj("reconcile-lab"), operator_kind="level")
    assert verdict.passed and "level" in verdict.hint, verdict


def test_the_managers_leave_out_status_writers() -> None:
    assert controllers.managers(_obj("a", "b")) == {"a", "b"}
    assert controllers.managers(None) == set()
