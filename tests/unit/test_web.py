"""The web page's pure parts: readings → the live page's JSON, a compare run → replay frames,
and the fault buttons of each exercise, which must be the README's own commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconcile_lab.compare import report, scenarios, timeline, view
from reconcile_lab.compare.timeline import Marker, Request, Sample, Timeline
from reconcile_lab.web import model, replay
from reconcile_lab.workshop import buttons, catalog

REPO = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000.0


def _pod(name: str, *, ready: bool = True, restarts: int = 0, created: str = "2027-01-15T08:00:00Z",
         waiting: str = "", deleting: bool = False) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "namespace": "default", "creationTimestamp": created,
                               "labels": {view.LABEL_APP: "hello"}}
    if deleting:
        meta["deletionTimestamp"] = created
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {"metadata": meta, "status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}],
        "containerStatuses": [{"restartCount": restarts, "state": state}]}}


def _frame(**parts: object) -> view.Frame:
    return view.Frame(now=NOW, **parts)  # type: ignore[arg-type]


def test_pods_say_their_state_restarts_and_readiness() -> None:
    pods = view.from_pods([_pod("hello-b", ready=False, restarts=2, waiting="CrashLoopBackOff"),
                           _pod("hello-a"), _pod("gone", deleting=True),
                           {"metadata": {"name": "not-ours"}}])
    assert [(p.name, p.state, p.ready, p.restarts) for p in pods] == [
        ("gone", "Terminating", True, 0), ("hello-a", "Running", True, 0),
        ("hello-b", "CrashLoopBackOff", False, 2)]
    assert {p.app for p in pods} == {"default/hello"}


def test_containers_keep_dockers_status_text_and_the_restarts_inspect_counted() -> None:
    listed = [{"Id": "c1", "Names": ["/hello-1"], "State": "exited",
               "Status": "Exited (137) 3 seconds ago", "Created": NOW - 90,
               "Labels": {view.LABEL_APP: "hello"}},
              {"Id": "c2", "Names": ["/hello-2"], "State": "running", "Status": "Up 2 minutes",
               "Created": NOW - 120, "Labels": {view.LABEL_APP: "hello"}}]
    found = view.from_container_list(listed, {"c2": 1})
    assert [(c.name, c.state, c.ready, c.restarts) for c in found] == [
        ("hello-1", "Exited (137) 3 seconds ago", False, 0), ("hello-2", "Up 2 minutes", True, 1)]


def test_the_page_groups_instances_under_their_app_with_ages_and_health() -> None:
    frame = _frame(
        kubernetes=(view.App("default/hello", "reconcile-lab/hello:v1", 3, 3, 2, "Progressing"),),
        kubernetes_instances=(view.Instance("default/hello", "hello-a", "Running", True, 1,
                                            NOW - 75),),
        docker=(view.App("hello", "reconcile-lab/hello:v1", None, 3, 3),),
        docker_instances=(view.Instance("hello", "hello-1", "Up 1 second", True, 0, 0.0),),
        kubernetes_actions=(view.Action(NOW - 10, "default/hello DriftRepaired: Service"),
                            view.Action(NOW - 900, "too old")),
        docker_actions=(view.Action(NOW - 5, "hello-1 die (exit 137)", warning=True),))
    runs = [model.Run(1, NOW - 6, "03", "kill a container", "docker", "docker kill hello-1",
                      exit=0, output="hello-1\n")]
    page = model.page(frame, number="03", namespace="default", runs=runs)
    k8s, docker = page["engines"]
    assert k8s["apps"][0]["health"] == "short" and docker["apps"][0]["health"] == "unknown"
    assert k8s["apps"][0]["instances"] == [{"name": "hello-a", "state": "Running", "ready": True,
                                            "restarts": 1, "age": "1m15s"}]
    assert docker["apps"][0]["instances"][0]["age"] == "?"
    assert [(e["engine"], e["text"]) for e in page["events"]] == [
        ("docker", "hello-1 die (exit 137)"), ("you", "$ docker kill hello-1"),
        ("kubernetes", "default/hello DriftRepaired: Service")]
    assert page["runs"][0]["state"] == "ok"
    assert "pass -f FILE" in docker["note"]


def test_a_button_runs_the_command_of_its_namespace() -> None:
    page = model.exercise("03", "team-a")
    commands = [f["command"] for f in page["faults"]]
    assert "docker kill hello.team-a-1" in commands
    assert commands[0].startswith("kubectl -n team-a delete $(kubectl -n team-a get pods")
    assert page["readme"] == "examples/exercises/03-self-healing/README.md"


@pytest.mark.parametrize("number", sorted(buttons.FAULTS))
def test_every_button_is_a_command_its_readme_gives(number: str) -> None:
    entry = catalog.find(number)
    readme = (REPO / entry.directory / "README.md").read_text()
    for fault in buttons.faults(number):
        command = fault.command.replace(catalog.TWIN, catalog.APP)
        assert command in readme, f"{entry.directory}/README.md does not give `{command}`"
        assert fault.engine in ("kubernetes", "docker")


def test_the_exercise_shown_is_the_one_started_last_and_not_done() -> None:
    assert model.current_exercise({}) == "01"
    assert model.current_exercise({"01": (5.0, True)}) == "02"
    assert model.current_exercise({"03": (10.0, False), "04": (20.0, False),
                                   "05": (30.0, True)}) == "04"
    assert model.current_exercise({"08": (40.0, False)}) == "01"  # 08 has no buttons


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.9, "59s"), (75, "1m15s"),
                                               (900, "15m"), (7500, "2h5m"), (200000, "2d")])
def test_ages_read_like_kubectl(seconds: float, text: str) -> None:
    assert model.age(seconds) == text


def _run() -> dict[str, object]:
    scenario = next(s for s in scenarios.SCENARIOS if s.id == "kill-one")
    k8s = Timeline("kill-one", "operator", "a", samples=(
        Sample(-1.0, 3, 3, 3, 3, 2), Sample(0.5, 3, 3, 2, 2, 2), Sample(1.5, 3, 3, 3, 3, 2),
        Sample(6.0, 3, 3, 3, 3, 2)),
        markers=(Marker(0.0, "kill one", "fault", ("kill -9 …",), 0, 0.01),),
        requests=(Request(0.2, True, "v1"), Request(0.6, False)), end=6.0, child_kinds=2)
    twin = Timeline("kill-one", "twin", "b", samples=(
        Sample(-1.0, None, 3, 3, 3), Sample(0.5, None, 2, 2, 2), Sample(1.6, None, 3, 3, 3),
        Sample(6.0, None, 3, 3, 3)),
        markers=(Marker(0.0, "kill one", "fault", ("docker kill b-1",), 0, 0.01),
                 Marker(1.2, "repair: apply", "repair", ("reconcile-lab docker apply -f f",))),
        end=6.0)
    outcomes = tuple(timeline.analyse(t, scenario) for t in (k8s, twin))
    meta = report.Meta("2027-01-15 08:00 UTC", 3.0, False, "x86_64", "27", "v1.36")
    return report.to_json([report.Result(scenario, outcomes, (k8s, twin))], meta)


def test_a_replay_frame_is_the_last_sample_then_and_the_requests_so_far() -> None:
    line = timeline.from_json(_run()["scenarios"][0]["timelines"][0])  # type: ignore[index]
    assert replay.at(line, -2.0)["ready"] == 3  # before the first sample: the first
    assert replay.at(Timeline("s", "e", "a", (), ()), 1.0)["ready"] == 0
    assert replay.at(line, 0.49) == {"desired": 3, "actual": 3, "ready": 3, "current": 3,
                                          "children": 2, "requests": 1, "failed": 0,
                                          "version": "v1"}
    assert (replay.at(line, 0.5)["ready"], replay.at(line, 0.7)["failed"]) == (2, 1)


def test_a_replay_steps_over_the_whole_run_with_every_marker() -> None:
    played = replay.scenario(_run(), "kill-one", step=0.5)
    assert (played["start"], played["end"]) == (-1.0, 6.0)
    assert [f["t"] for f in played["frames"]][:7] == [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]
    assert len(played["frames"]) == 15
    assert [[e["ready"] for e in f["engines"]] for f in played["frames"]][3:6] == [
        [2, 2], [2, 2], [3, 2]]
    assert [(m["engine"], m["kind"], m["commands"]) for m in played["markers"]] == [
        ("operator", "fault", ["kill -9 …"]), ("twin", "fault", ["docker kill b-1"]),
        ("twin", "repair", ["reconcile-lab docker apply -f f"])]
    assert played["engines"][0]["outcome"].startswith("recovered in")
    assert re.match(r"not recovered by itself · 0 command\(s\) typed; then 1 more",
                    played["engines"][1]["outcome"])


def test_a_long_run_gets_a_coarser_step_not_a_huge_page() -> None:
    line = Timeline("s", "e", "a", samples=(Sample(0.0, 1, 1, 1, 1), Sample(1000.0, 1, 1, 1, 1)),
                    markers=(), end=1000.0)
    assert len(replay.frames([line], 0.1)) <= replay.MAX_FRAMES + 1


def test_a_file_that_is_not_a_compare_run_says_what_to_pass() -> None:
    with pytest.raises(replay.ReplayError, match="make compare QUICK=1"):
        replay.check({"something": []}, "x.json")
    with pytest.raises(replay.ReplayError, match="measured no scenario"):
        replay.check({"scenarios": []}, "x.json")
    assert replay.scenarios(_run()) == [{"id": "kill-one", "title": "Kill one instance",
                                         "engines": ["operator", "twin"]}]


def test_the_events_shown_are_the_webapps_and_their_childrens() -> None:
    def event(kind: str, namespace: str, name: str) -> dict[str, object]:
        return {"involvedObject": {"kind": kind, "namespace": namespace, "name": name}}

    apps = [view.App("team-a/hello", "img", 3, 3, 3)]
    items = [event("WebApp", "team-a", "hello"), event("ReplicaSet", "team-a", "hello-7f9"),
             event("Pod", "team-a", "hello-7f9-abcde"), event("Pod", "team-a", "hellothere-1"),
             event("Pod", "team-b", "hello-7f9-abcde"), event("Node", "", "localhost"),
             event("WebApp", "team-b", "other")]
    kept = view.of_apps(items, apps)
    assert [(e["involvedObject"]["kind"], e["involvedObject"]["namespace"])  # type: ignore[index]
            for e in kept] == [("WebApp", "team-a"), ("ReplicaSet", "team-a"), ("Pod", "team-a"),
                               ("WebApp", "team-b")]


EVERYWHERE = "0.0.0.0"  # noqa: S104 (what the page must refuse)


@pytest.mark.parametrize("address", [EVERYWHERE, "192.168.1.5", "::", "127.0.0.2", "example"])
def test_the_page_refuses_any_address_but_127_0_0_1(address: str) -> None:
    import argparse

    from reconcile_lab.web import command

    with pytest.raises(argparse.ArgumentTypeError, match=r"127\.0\.0\.1 only.*ssh -L"):
        command.loopback_only(address)
    assert command.loopback_only("localhost") == "127.0.0.1"
