"""The checks of exercises 12 (a release that loses no request) and 13 (a folder defines what
runs): each fails before its exercise, says where the participant is, and passes after.

The states start from one recorded on a real cluster (``01-applied``) and change only what
each exercise changes: the count `reconcile-lab traffic` keeps, the WebApps of the project."""

from __future__ import annotations

import copy
from typing import Any

from reconcile_lab.workshop import delivery, exercises
from reconcile_lab.workshop.observed import State
from tests.unit.test_exercises import recorded

BASE = recorded("01-applied")


def _count(kube_failed: int, versions: dict[str, int], docker_failed: int = 4) -> dict[str, Any]:
    return {"engines": {
        "kubernetes": {"ok": sum(versions.values()), "failed": kube_failed, "versions": versions},
        "docker": {"ok": 290, "failed": docker_failed, "versions": {"v1": 150, "v2": 140}}}}


def _webapp(replicas: int = 3, probed: bool = True, ready: int = 3,
            project: str | None = None) -> dict[str, Any]:
    assert BASE.webapp is not None
    w = copy.deepcopy(dict(BASE.webapp))
    if not probed:
        w["spec"].pop("healthCheck")
    w["spec"]["replicas"] = replicas
    w["status"]["readyReplicas"] = ready
    if project:
        w["metadata"]["labels"] = {delivery.PROJECT_LABEL: project}
    return w


def check(number: str, state: State) -> tuple[bool, str, str]:
    v = exercises.find(number).check(state)
    return v.passed, v.summary, v.hint


def test_a_release_counts_only_with_two_versions_no_failure_and_a_health_check() -> None:
    assert check("12", BASE._replace(webapp=_webapp(probed=False)))[:2] == (
        False, f"no requests counted for {BASE.app} yet")
    same = BASE._replace(traffic=_count(0, {"v1": 300}))
    assert "one version only (v1)" in check("12", same)[1]
    lost = BASE._replace(webapp=_webapp(probed=False), traffic=_count(7, {"v1": 150, "v2": 143}))
    passed, summary, hint = check("12", lost)
    assert not passed and summary.startswith("7 of 300 requests failed")
    assert "no readiness probe" in hint
    lucky = BASE._replace(webapp=_webapp(probed=False), traffic=_count(0, {"v1": 150, "v2": 150}))
    assert not check("12", lucky)[0]  # nothing failed this time, and nothing would say why
    passed, summary, notice = check("12", BASE._replace(
        traffic=_count(0, {"v1": 150, "v2": 150})))
    assert passed and summary == "a release (v1 → v2) under 300 requests, none failed on " \
        "Kubernetes"
    assert notice.endswith("on Docker 4 of 294 failed")


def test_the_folder_wins_on_both_engines_and_a_removed_file_removes_its_app() -> None:
    nothing = BASE._replace(webapp=None)
    passed, summary, hint = check("13", nothing)
    assert not passed and "nothing was synced" in summary and "reconcile-lab sync out/apps" in hint
    goodbye = _webapp(replicas=1, project="apps")
    goodbye["metadata"]["name"] = delivery.GOODBYE
    synced = BASE._replace(project=(_webapp(project="apps"), goodbye),
                           project_docker=(delivery.GOODBYE, BASE.app))
    assert "goodbye is still in the cluster" in check("13", synced)[1]
    by_hand = synced._replace(project=(_webapp(replicas=1, ready=1, project="apps"),))
    passed, summary, hint = check("13", by_hand)
    assert not passed and "a hand edit nobody put back" in summary and "the folder wins" in hint
    only_kube = by_hand._replace(project=(_webapp(project="apps"),))
    passed, summary, hint = check("13", only_kube)
    assert not passed and "on Docker goodbye still runs" in summary
    assert hint == "reconcile-lab docker apply -f out/apps --prune"
    done = only_kube._replace(project_docker=(BASE.app,))
    passed, summary, _ = check("13", done)
    assert passed and summary.startswith("the cluster and the Docker engine equal the folder")
