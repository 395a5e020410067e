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


def _zombie(**parts: Any) -> Any:
    base: dict[str, Any] = {"webapp": {"metadata": {"uid": "u1"}}, "operator_kind": "proxied",
                            "service": {"metadata": {}},
                            "fault_proxy": {"mode": "pass", "open": 4, "stalled_total": 0,
                                            "last_stall": None}}
    return exercises.find("11").check(State(app="hello", namespace="default",
                                            **{**base, **parts}))


def _repaired(at: str, uid: str = "u1") -> dict[str, Any]:
    return {"reason": "DriftRepaired", "message": "Service hello repaired", "lastTimestamp": at,
            "involvedObject": {"kind": "WebApp", "name": "hello", "uid": uid}}


STALLED = {"mode": "stall", "open": 4, "stalled": 4, "stalled_total": 4,
           "last_stall": 1796154000.0}  # 2026-12-01T19:40:00Z


def test_the_zombie_check_wants_a_repair_made_while_the_connections_were_silent() -> None:
    steps = [
        ({"fault_proxy": None}, "no fault proxy answers", "reset 11"),
        ({"operator_kind": "level"}, "does not go through the fault proxy", "reset 11"),
        ({}, "nothing has been silenced", "reconcile-lab fault stall"),
        # Repaired before the stall: exercise 04, not this one.
        ({"fault_proxy": STALLED, "events": (_repaired("2026-12-01T19:39:00Z"),)},
         "nothing is broken yet", "kubectl delete service hello"),
        ({"fault_proxy": STALLED, "service": None}, "has not noticed", "wait"),
        # Another WebApp of the same name (made again): its events are not evidence.
        ({"fault_proxy": STALLED, "events": (_repaired("2026-12-01T19:40:31Z", uid="u0"),)},
         "nothing is broken yet", "kubectl delete service"),
    ]
    for parts, says, hint in steps:
        verdict = _zombie(**parts)
        assert not verdict.passed, parts
        assert says in verdict.summary and hint in verdict.hint, (parts, verdict)
    passed = _zombie(fault_proxy={**STALLED, "mode": "pass"},
                     events=(_repaired("2026-12-01T19:40:31Z"),))
    assert passed.passed and "31 s after the stall began" in passed.summary, passed


def test_a_dead_machine_counts_once_its_pods_were_evicted_and_run_elsewhere() -> None:
    from reconcile_lab.workshop import catalog
    from tests.unit.test_delivery import BASE, _webapp

    def lease(node: str, holder: str = "kwok") -> dict[str, Any]:
        return {"metadata": {"name": node}, "spec": {"holderIdentity": holder}}

    def pod(name: str, node: str, gone: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, **({"deletionTimestamp": "t"} if gone else {})}
        return {"metadata": meta, "spec": {"nodeName": node}}

    up = (lease("n0"), lease("n1"), lease("n2"))
    pods = (pod(f"{BASE.app}-a", "n0"), pod(f"{BASE.app}-b", "n1"), pod(f"{BASE.app}-c", "n2"))
    start = BASE._replace(leases=up, pods=pods, events=())

    def check(state: State) -> Any:
        return exercises.find("14").check(state)

    assert "no node Lease was taken" in check(start).summary
    dead = start._replace(leases=(lease("n0", catalog.DEAD_HOLDER), *up[1:]))
    waiting = check(dead)
    assert not waiting.passed and "still taken for serving" in waiting.summary
    assert "rescheduleAfterSeconds" in waiting.hint
    evicted = {"reason": "TaintManagerEviction",
               "involvedObject": {"kind": "Pod", "name": f"{BASE.app}-a"}}
    moved = dead._replace(events=(evicted,), pods=(
        pod(f"{BASE.app}-a", "n0", gone=True), *pods[1:], pod(f"{BASE.app}-d", "n1")),
        webapp=_webapp())
    passed = check(moved)
    assert passed.passed and passed.summary.startswith("3/3 ready on n1, n2")
    # A dead machine that ran none of the app's pods proves nothing about the app.
    elsewhere = start._replace(leases=(*up[:2], lease("n3", catalog.DEAD_HOLDER)))
    assert "none of" in check(elsewhere).summary


def test_autoscaling_counts_once_the_autoscaler_itself_scaled_out_this_very_object() -> None:
    from tests.unit.test_delivery import BASE, _webapp

    def check(state: State) -> Any:
        return exercises.find("15").check(state)

    scaled = _webapp(replicas=1, ready=1)
    scaled["spec"]["autoscale"] = {"minReplicas": 1, "maxReplicas": 4,
                                   "scaleInAfterSeconds": 20}
    owner = {"apiVersion": "reconcile-lab.dev/v1alpha1", "kind": "WebApp", "name": BASE.app,
             "uid": "w1", "controller": True}
    hpa = {"metadata": {"name": BASE.app, "uid": "h2", "ownerReferences": [owner]}}
    twin = ({"State": {"Running": True}},)
    start = BASE._replace(webapp=scaled, autoscaler=hpa, events=(), containers=twin)

    assert "has no autoscale" in check(BASE._replace(autoscaler=hpa)).summary
    assert "no HorizontalPodAutoscaler" in check(start._replace(autoscaler=None)).summary
    idle = check(start)
    assert not idle.passed and "nothing has asked for more" in idle.summary
    assert "--path /cgi-bin/work" in idle.hint

    def rescale(uid: str, why: str) -> dict[str, Any]:
        return {"reason": "SuccessfulRescale", "message": f"New size: 4; reason: {why}",
                "involvedObject": {"kind": "HorizontalPodAutoscaler", "name": BASE.app,
                                   "uid": uid}}

    above = "cpu resource utilization (percentage of request) above target"
    # An earlier autoscaler of the same name (before a reset) proves nothing; nor does a
    # scale-in, nor one to the minimum.
    assert not check(start._replace(events=(rescale("h1", above),))).passed
    assert not check(start._replace(events=(rescale("h2", "All metrics below target"),))).passed
    passed = check(start._replace(events=(rescale("h2", above),)))
    assert passed.passed and "by itself" in passed.summary
    assert "twin still runs 1 container" in passed.hint
