"""The workshop's checks on recorded state: each fails before its exercise and passes after.

The states in data/exercises/ were recorded with ``workshop.gather.state`` from a real kwok
cluster, the real operator and a real Docker engine, walking through the exercises in order
(app "wshop" in namespace "rec"), and trimmed to the fields the checks read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reconcile_lab import cli
from reconcile_lab.workshop import exercises
from reconcile_lab.workshop.observed import State, Verdict

DATA = Path(__file__).parent / "data" / "exercises"
REPO = Path(__file__).resolve().parents[2]


def recorded(name: str) -> State:
    data = json.loads((DATA / f"{name}.json").read_text())
    for key in ("replicasets", "pods", "events", "containers"):
        data[key] = tuple(data[key])
    return State(**data)


def check(number: str, state: State) -> Verdict:
    return exercises.find(number).check(state)


# (exercise, state before the intended action, state after it)
BEFORE_AFTER = [
    ("01", "00-nothing", "01-applied"),
    ("02", "01-applied", "02-scaled"),
    ("03", "02-scaled", "03-twin-reapplied"),
    ("04", "03-twin-reapplied", "04-service-repaired"),
    ("05", "04-service-repaired", "05-back-to-v1"),
    ("06", "07-operator-back", "06-all-deleted"),
    ("07", "05-back-to-v1", "07-operator-back"),
]


@pytest.mark.parametrize(("number", "before", "after"), BEFORE_AFTER)
def test_each_check_fails_before_its_exercise_and_passes_after(number: str, before: str,
                                                               after: str) -> None:
    failed = check(number, recorded(before))
    assert not failed.passed, failed
    assert failed.hint, "a FAIL always says what to do next"
    passed = check(number, recorded(after))
    assert passed.passed, passed
    assert passed.format(number).startswith(f"PASS  exercise {number}: ")


@pytest.mark.parametrize(("number", "state", "says", "hint"), [
    ("01", "00-nothing", "no WebApp wshop in namespace rec", "kubectl apply -f"),
    ("03", "03-twin-running", "no pod of the app has been replaced", "kubectl delete pod"),
    ("03", "03-pod-replaced", "no container of the twin has been killed", "docker kill"),
    ("03", "03-container-killed", "Docker keeps no desired state", "reconcile-lab docker apply"),
    ("05", "05-v2", "v2 is rolled out (revision 2); now roll back", "01-first-webapp"),
    ("06", "06-webapp-deleted", "Docker still has", "reconcile-lab docker delete wshop"),
    ("06", "00-nothing", "no trace of a WebApp wshop", "exercise 01"),
    ("07", "07-operator-down", "your change waits: generation 5 is not observed",
     "reconcile-lab operator start"),
])
def test_the_steps_in_between_say_where_the_participant_is(number: str, state: str, says: str,
                                                            hint: str) -> None:
    verdict = check(number, recorded(state))
    assert not verdict.passed
    assert says in verdict.summary
    assert hint in verdict.hint


def test_a_cluster_that_does_not_answer_fails_every_kubernetes_check_with_the_fix() -> None:
    down = State(app="hello", namespace="default", kube_error="connection refused")
    for exercise in (e for e in exercises.EXERCISES if e.number != "08"):
        verdict = exercise.check(down)
        assert not verdict.passed and "reconcile-lab cluster up" in verdict.hint


def test_the_state_after_the_last_rollback_still_counts_for_the_earlier_exercises() -> None:
    state = recorded("05-back-to-v1")
    assert [check(n, state).passed for n in ("01", "03", "04", "05")] == [True] * 4


def test_the_policy_check_names_what_is_missing_until_the_apiserver_refuses() -> None:
    refused = ("... ValidatingAdmissionPolicy 'reconcile-lab-webapp-images' with binding "
               "'reconcile-lab-webapp-images' denied request: spec.image untrusted/hello:v1 "
               "is not allowed here: images must start with reconcile-lab/")
    seen = {"labels": {}, "bindings": [], "accepted": True, "answer": "webapp created"}
    base = State(app="hello", namespace="shop", admission=seen)
    steps = [
        ({}, "the policy is not installed", "kubectl apply -f deploy/policy.yaml"),
        ({"bindings": ["reconcile-lab-pod-posture", "reconcile-lab-webapp-images"]},
         "namespace shop is not under the policy",
         "kubectl label namespace shop reconcile-lab.dev/policy=enforce"),
        ({"labels": {"reconcile-lab.dev/policy": "enforce"}}, "would still be accepted", "")]
    for change, says, hint in steps:
        seen = {**seen, **change}
        verdict = check("09", base._replace(admission=seen))
        assert not verdict.passed and says in verdict.summary and hint in verdict.hint
    seen = {**seen, "accepted": False, "answer": refused}
    passed = check("09", base._replace(admission=seen))
    assert passed.passed and "images must start with reconcile-lab/" in passed.summary
    twin = ({"Config": {"Image": "untrusted/hello:v1"}},)
    assert "Docker ran 1 container" in check(
        "09", base._replace(admission=seen, containers=twin)).hint


def _samples(*engines: str) -> tuple[tuple[dict[str, str], float], ...]:
    return tuple(({"__name__": "reconcile_lab_ready_replicas", "app": "hello", "engine": e,
                   "namespace": "default"}, 3.0) for e in engines)


def test_metrics_need_a_prometheus_with_both_engines() -> None:
    base = State(app="hello", namespace="default")
    assert "no Prometheus answers" in check("08", base).summary
    assert "make prometheus" in check("08", base).hint
    assert "no reconcile_lab_ready_replicas" in check("08", base._replace(prometheus=())).summary
    only_operator = check("08", base._replace(prometheus=_samples("kubernetes")))
    assert not only_operator.passed and "--watch" in only_operator.hint
    both = check("08", base._replace(prometheus=_samples("kubernetes", "docker")))
    assert both.passed and "docker: 3 ready" in both.summary


def test_numbers_are_found_with_or_without_the_leading_zero() -> None:
    assert exercises.find("3") is exercises.find("03")
    with pytest.raises(KeyError):
        exercises.find("99")


# --- the catalogue and the READMEs ----------------------------------------------------------


def test_every_exercise_has_a_readme_with_goal_steps_what_to_see_and_why() -> None:
    on_disk = sorted(p.name for p in (REPO / "examples" / "exercises").iterdir() if p.is_dir())
    assert on_disk == [f"{e.number}-{e.slug}" for e in exercises.EXERCISES]
    assert len(on_disk) >= 8
    for exercise in exercises.EXERCISES:
        text = (REPO / exercise.directory / "README.md").read_text()
        assert f"\n# {exercise.number} · " in text
        for part in ("**Goal.**", "## Steps", "## What you should see", "## Why it matters",
                     f"reconcile-lab exercise check {exercise.number}"):
            assert part in text, f"{exercise.directory}/README.md lacks {part!r}"


def test_every_file_a_readme_or_a_hint_names_exists() -> None:
    named = set()
    for exercise in exercises.EXERCISES:
        named |= set(re.findall(r"examples/exercises/[\w./-]+\.yaml",
                                (REPO / exercise.directory / "README.md").read_text()))
    named |= set(re.findall(r"examples/exercises/[\w./-]+\.yaml",
                            (REPO / "operator/reconcile_lab/workshop/exercises.py").read_text()))
    assert named
    for path in named:
        assert (REPO / path).is_file(), path


def test_exercise_list_prints_a_table_with_one_row_per_exercise(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILE_LAB_STATE", str(tmp_path))
    assert cli.main(["exercise", "list"]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split() == ["NN", "title", "difficulty", "minutes", "status"]
    assert [line[:2] for line in lines] == [e.number for e in exercises.EXERCISES]
    assert all(re.match(r"^\d\d  \S.*  (easy|medium|hard) +\d+ +not started$", line)
               for line in lines)


def _with_uids(state: State, webapp_uid: str, rs_uid: str) -> State:
    """The state with each object's uid in its events, as the apiserver records them."""
    def event(e: dict) -> dict:  # type: ignore[type-arg]
        uid = webapp_uid if e["involvedObject"]["kind"] == "WebApp" else rs_uid
        return {**e, "involvedObject": {**e["involvedObject"], "uid": uid}}
    return state._replace(events=tuple(event(dict(e)) for e in state.events))


@pytest.mark.parametrize(("number", "state"), [("03", "03-twin-reapplied"),
                                                ("04", "04-service-repaired")])
def test_evidence_about_an_earlier_object_of_the_same_name_does_not_count(
        number: str, state: str) -> None:
    now = recorded(state)
    webapp = now.webapp["metadata"]["uid"]  # type: ignore[index]
    rs = next(r for r in now.replicasets if r["spec"]["replicas"])["metadata"]["uid"]
    assert check(number, _with_uids(now, webapp, rs)).passed
    older = _with_uids(now, "uid-of-the-webapp-before-reset", "uid-of-the-rs-before-reset")
    assert not check(number, older).passed
