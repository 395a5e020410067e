"""The comparison's pure core: scenarios, what a timeline means, the table, the live view."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from reconcile_lab import parsing
from reconcile_lab.compare import driving, report, scenarios, timeline, view
from reconcile_lab.compare.scenarios import Target
from reconcile_lab.compare.timeline import Marker, Request, Sample, Timeline

KILL = scenarios.BY_SCENARIO["kill-one"]


def steady(t0: float, t1: float, n: int, *, desired: int | None = 3, children: int | None = 2,
           current: int | None = None) -> list[Sample]:
    """Samples every 0.1 s from t0 to t1 (excluded) with n ready."""
    out = []
    t = t0
    while t < t1 - 1e-9:
        out.append(Sample(round(t, 3), desired, n, n, n if current is None else current,
                          children))
        t += 0.1
    return out


def kill_timeline(engine: str, samples: list[Sample], *, end: float,
                  markers: tuple[Marker, ...] | None = None) -> Timeline:
    return Timeline("kill-one", engine, "app", tuple(samples),
                    markers or (Marker(0.0, "kill one", "fault", ("docker kill app-1",), 0),),
                    end=end, child_kinds=2)


# --- scenarios ------------------------------------------------------------------------------


def test_the_quick_subset_is_create_kill_and_delete_a_child() -> None:
    assert scenarios.QUICK == ("create", "kill-one", "delete-child")
    assert [s.id for s in scenarios.select(quick=True)] == list(scenarios.QUICK)
    assert len(scenarios.select()) == len(scenarios.SCENARIOS)
    with pytest.raises(KeyError):
        scenarios.select(("nope",))


def test_every_scenario_is_bounded_and_every_engine_is_covered_or_excused() -> None:
    for s in scenarios.SCENARIOS:
        # A dead machine is noticed after the node controller's 50 s of grace; CPU use reaches
        # the autoscaler through the kubelet's and metrics-server's 10-15 s periods, each way.
        assert s.window <= {"machine-dies": 100, "rollout": 45, "rollout-unprobed": 45,
                            "autoscale-out": 90, "autoscale-in": 200}.get(s.id, 30)
        for engine, why in s.not_applicable:
            assert engine in scenarios.BY_ID and len(why) > 20


def test_under_load_the_target_is_the_most_instances_and_without_it_the_fewest() -> None:
    out, back = scenarios.BY_SCENARIO["autoscale-out"], scenarios.BY_SCENARIO["autoscale-in"]
    assert out.initial == back.initial == Target(scenarios.AUTOSCALE_MIN, scenarios.V1)
    assert out.target == Target(scenarios.AUTOSCALE_MAX, scenarios.V1)
    assert back.target == Target(scenarios.AUTOSCALE_MIN, scenarios.V1)
    assert out.load and back.load and not scenarios.BY_SCENARIO["rollout"].load
    # scale-in is measured from the load's end, and only where something scaled out by itself
    assert back.steps[back.measure_from] == scenarios.LOAD_OFF
    assert {e for e, _ in back.not_applicable} == {e.id for e in scenarios.ENGINES
                                                   if e != scenarios.OPERATOR}
    doc = driving.webapp("app", out.initial, out.shape)
    parsed = parsing.parse_document(doc)
    assert parsed.spec.autoscale is not None
    assert parsed.spec.autoscale.maxReplicas == scenarios.AUTOSCALE_MAX


@pytest.mark.parametrize(("scenario", "target"), [
    ("create", Target(3, scenarios.V1)),
    ("scale", Target(5, scenarios.V1)),
    ("kill-one", Target(3, scenarios.V1)),
    ("rollout", Target(3, scenarios.V1)),
    ("kill-controller", Target(5, scenarios.V1)),
    ("cut-off", Target(5, scenarios.V1)),
    ("throttled", Target(5, scenarios.V1)),  # the other apps are not this app's target
    ("delete-app", Target(0, scenarios.V1, gone=True)),
    ("policy", Target(3, scenarios.UNTRUSTED)),
    ("git-drift", Target(3, scenarios.V1)),  # the folder still says 3
    ("git-remove", Target(0, scenarios.V1, gone=True)),
    ("machine-dies", Target(3, scenarios.V1)),  # made again elsewhere, or brought back
])
def test_the_target_follows_the_changes_and_ignores_the_faults(scenario: str,
                                                               target: Target) -> None:
    assert scenarios.BY_SCENARIO[scenario].target == target


def test_a_fault_on_the_controller_is_not_repaired_by_hand_and_is_timed_from_its_end() -> None:
    by_fault = {s.id for s in scenarios.SCENARIOS if s.controller_fault}
    assert by_fault == {"kill-controller", "cut-off", "throttled"}
    for sid in by_fault:
        s = scenarios.BY_SCENARIO[sid]
        assert s.steps[s.measure_from].action in ("restart-controller", "heal-controller",
                                                  "change")
        assert not s.steps[s.measure_from].fault
    # Only the engines with a controller outside the engine take part.
    cut = scenarios.BY_SCENARIO["cut-off"]
    assert [e.id for e in scenarios.ENGINES if cut.why_not(e.id) is None] == \
        ["operator", "twin-watch"]


def test_the_rollout_waits_for_v2_between_its_two_legs() -> None:
    s = scenarios.BY_SCENARIO["rollout"]
    assert scenarios.target_after(s.initial, s.steps[:1]).image == scenarios.V2
    assert [step.action for step in s.steps] == ["rollout", "wait-converged", "rollout"]


def test_app_names_are_dns_labels_unique_per_run_scenario_and_engine() -> None:
    names = {scenarios.app_name("ab12", s.id, e.id) for s in scenarios.SCENARIOS
             for e in scenarios.ENGINES}
    assert len(names) == len(scenarios.SCENARIOS) * len(scenarios.ENGINES)
    from reconcile_lab import spec

    assert all(spec.NAME_RULES[0].check(n) for n in names)


def test_the_unprobed_release_differs_from_the_release_only_in_its_health_check() -> None:
    probed, unprobed = scenarios.BY_SCENARIO["rollout"], scenarios.BY_SCENARIO["rollout-unprobed"]
    assert probed.steps == unprobed.steps and probed.rate == unprobed.rate
    assert probed.shape._replace(probed=False) == unprobed.shape
    from reconcile_lab.compare import driving

    with_probe = driving.webapp("a", Target(3, scenarios.V1), probed.shape)["spec"]
    without = driving.webapp("a", Target(3, scenarios.V1), unprobed.shape)["spec"]
    assert "healthCheck" in with_probe and "healthCheck" not in without
    # Both take as long to listen: what the probe is for.
    assert with_probe["env"] == without["env"] == [
        {"name": "STARTUP_SECONDS", "value": str(scenarios.STARTUP)}]


# --- gates: the right outcome is that nothing runs ------------------------------------------

POLICY = scenarios.BY_SCENARIO["policy"]


def gate_timeline(engine: str, samples: list[Sample], figure: str = "") -> Timeline:
    markers = [Marker(0.0, "policy on", "command", ("kubectl label …",), 0),
               Marker(2.0, "create", "command", ("kubectl apply -f webapp.yaml",), 1)]
    if figure:
        markers.append(Marker(2.3, figure, "figure"))
    return Timeline("policy", engine, "app", tuple(samples), tuple(markers), end=14)


def test_a_gate_holds_when_no_instance_ever_ran_and_says_the_apiservers_answer() -> None:
    refused = "refused by the apiserver: spec.image untrusted/hello:v1 is not allowed here"
    outcome = timeline.analyse(gate_timeline("operator", steady(-1, 14, 0, desired=0,
                                                                children=0), refused), POLICY)
    assert outcome.recovered and outcome.peak == 0 and outcome.seconds is None
    assert outcome.commands == 2 and outcome.note == refused
    assert report.cell(outcome, POLICY) == "✅ refused: nothing ran · 2 commands typed"


def test_a_gate_that_let_the_image_run_says_how_many_and_how_soon() -> None:
    samples = steady(-1, 3.4, 0, desired=3) + steady(3.4, 4, 1) + steady(4, 14, 3)
    outcome = timeline.analyse(gate_timeline("twin", samples), POLICY)
    assert not outcome.recovered and outcome.peak == 3 and outcome.seconds == 1.4
    assert report.cell(outcome, POLICY) == \
        f"❌ ran 3 of {scenarios.UNTRUSTED}, the first 1.4 s after the command · 2 commands typed"
    # Instances from before the guarded command are not the gate's business.
    before = steady(-1, 1, 3) + steady(1, 14, 0)
    assert timeline.analyse(gate_timeline("twin", before), POLICY).recovered


# --- what a timeline means ------------------------------------------------------------------


def test_a_dip_then_back_is_recovered_at_the_first_sample_that_stays_back() -> None:
    samples = steady(-1, 0, 3) + steady(0, 1.2, 2) + steady(1.2, 5, 3)
    outcome = timeline.analyse(kill_timeline("operator", samples, end=5), KILL)
    assert outcome.recovered and outcome.seconds == 1.2 and not outcome.upper_bound
    assert outcome.min_ready == 2 and outcome.commands == 0


def test_recovery_faster_than_the_sampling_is_an_upper_bound() -> None:
    samples = steady(-1, 0.02, 3) + steady(0.3, 4, 3)
    outcome = timeline.analyse(kill_timeline("operator", samples, end=4), KILL)
    assert outcome.recovered and outcome.upper_bound and outcome.seconds == 0.3
    assert report.cell(outcome, KILL).startswith("✅ recovered in ≤ 0.3 s (no gap seen)")


def test_a_faults_clock_starts_when_a_sample_first_shows_it() -> None:
    # kubectl took 0.8 s to return; the pod was gone from 0.5 s and back at 1.0 s.
    samples = steady(-1, 0.5, 3) + steady(0.5, 1.0, 2) + steady(1.0, 4, 3)
    markers = (Marker(0.0, "kill one", "fault", ("kubectl delete pod x",), 0, end=0.8),)
    outcome = timeline.analyse(kill_timeline("operator", samples, end=4, markers=markers), KILL)
    assert (outcome.clock_from, outcome.seconds, outcome.upper_bound) == (0.5, 0.5, False)


def test_a_fault_seen_in_a_single_sample_is_timed_not_bounded() -> None:
    samples = steady(-1, 0.3, 3) + steady(0.3, 0.4, 2) + steady(0.4, 4, 3)
    markers = (Marker(0.0, "kill one", "fault", ("kubectl delete pod x",), 0, end=0.35),)
    outcome = timeline.analyse(kill_timeline("operator", samples, end=4, markers=markers), KILL)
    assert (outcome.seconds, outcome.upper_bound, outcome.min_ready) == (0.1, False, 2)


def test_a_flicker_shorter_than_the_hold_is_not_a_recovery() -> None:
    samples = steady(0, 3, 2) + steady(3, 3.5, 3)
    outcome = timeline.analyse(kill_timeline("twin", samples, end=3.5), KILL)
    assert not outcome.recovered and outcome.seconds is None


def test_a_repair_by_hand_is_timed_separately_and_recovery_by_itself_stays_false() -> None:
    samples = steady(-1, 0, 3) + steady(0, 14, 2) + steady(14, 16, 2) + steady(16, 18, 3)
    markers = (Marker(0.0, "kill one", "fault", ("docker kill app-1",), 0),
               Marker(14.0, "repair: apply", "repair", ("reconcile-lab docker apply -f x",)))
    outcome = timeline.analyse(kill_timeline("twin", samples, end=18, markers=markers), KILL)
    assert not outcome.recovered
    assert (outcome.repair_commands, outcome.repair_seconds) == (1, 2.0)
    assert report.cell(outcome, KILL) == ("❌ not recovered within 14 s · 0 commands typed; "
                                          "then 1 command → recovered 2.0 s later")


def test_a_missing_child_object_is_not_recovered_even_with_every_pod_ready() -> None:
    samples = steady(0, 5, 3, children=1)
    assert not timeline.analyse(kill_timeline("operator", samples, end=5), KILL).recovered


def test_gone_means_no_instance_and_no_child_left() -> None:
    gone = Target(0, scenarios.V1, gone=True)
    assert timeline.matches(Sample(0, 0, 0, 0, 0, 0), gone)
    assert timeline.matches(Sample(0, 0, 0, 0, 0, None), gone)
    assert not timeline.matches(Sample(0, 0, 0, 0, 0, 1), gone)
    assert not timeline.matches(Sample(0, 0, 1, 0, 0, None), gone)


def test_the_controller_scenario_is_timed_from_the_restart_and_counts_typed_commands() -> None:
    s = scenarios.BY_SCENARIO["kill-controller"]
    samples = steady(-1, 6.5, 3, desired=5) + steady(6.5, 10, 5, desired=5)
    markers = (Marker(0.0, "controller killed", "fault", ("kill -9 1",), 0),
               Marker(0.3, "spec: replicas 5", "command", ("kubectl apply -f webapp.yaml",), 1),
               Marker(0.6, "wait 5 s", "note", (), 2),
               Marker(5.6, "controller restarted", "command", ("reconcile-lab operator run",), 3))
    outcome = timeline.analyse(Timeline("kill-controller", "operator", "app", tuple(samples),
                                        markers, end=10, child_kinds=2), s)
    assert outcome.recovered and outcome.seconds == 0.9
    assert outcome.commands == 2 and outcome.min_ready == 3


def test_requests_count_only_where_traffic_is_real() -> None:
    s = scenarios.BY_SCENARIO["rollout"]
    requests = (Request(-0.5, True, "v1"), Request(1.0, False), Request(1.1, True, "v2"))
    tl = Timeline("rollout", "twin", "app", tuple(steady(0, 3, 3)),
                  (Marker(0.0, "roll out v2", "command", ("x",), 0),), requests, end=3)
    outcome = timeline.analyse(tl, s)
    assert (outcome.requests, outcome.failed) == (2, 1)
    assert report.traffic_cell(outcome, s) == "1 of 2"
    # The Kubernetes side's requests (to the Service's NodePort) are counted the same way.
    operator = timeline.analyse(tl._replace(engine="operator"), s)
    assert (operator.requests, operator.failed) == (2, 1)
    assert report.traffic_cell(operator, s) == "1 of 2"
    silent = timeline.analyse(tl._replace(engine="operator", requests=()), s)
    assert silent.failed is None and report.traffic_cell(silent, s) == "not measured"


def test_every_fault_applies_to_the_operator_a_crash_too() -> None:
    for s in scenarios.SCENARIOS:
        assert s.why_not(scenarios.OPERATOR.id) is None, s.id
    assert "kwok" not in scenarios.OPERATOR.title and "real node" in scenarios.OPERATOR.how


def test_restarts_in_place_reach_the_outcome_and_survive_json() -> None:
    crash = scenarios.BY_SCENARIO["crash-one"]
    tl = kill_timeline("operator", steady(-1, 0, 3) + steady(0, 1.5, 2) + steady(1.5, 5, 3),
                       end=5)._replace(scenario="crash-one", restarts=1)
    outcome = timeline.analyse(tl, crash)
    assert outcome.recovered and outcome.restarts == 1
    assert timeline.from_json(json.loads(json.dumps(timeline.to_json(tl)))).restarts == 1
    assert timeline.analyse(tl._replace(restarts=None), crash).restarts is None


def test_not_applicable_engines_carry_their_reason() -> None:
    s = scenarios.BY_SCENARIO["kill-controller"]
    outcome = timeline.analyse(Timeline(s.id, "swarm", "app", (), ()), s)
    assert not outcome.applicable and "dockerd" in outcome.note
    assert report.cell(outcome, s) == "n/a"


def test_a_timeline_survives_json() -> None:
    tl = kill_timeline("twin", steady(0, 1, 3), end=1)._replace(
        requests=(Request(0.1, True, "v1"),))
    again = timeline.from_json(json.loads(json.dumps(timeline.to_json(tl))))
    assert again == tl


# --- reading what the engines report --------------------------------------------------------


def _pod(name: str, ready: bool, image: str = scenarios.V1, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"containers": [{"image": image}]},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_terminating_pods_no_longer_count_and_current_means_ready_on_the_image() -> None:
    pods = [_pod("a", True), _pod("b", True, scenarios.V2), _pod("c", False),
            _pod("d", True, deleting=True)]
    assert timeline.count_pods(pods, scenarios.V2) == timeline.Counts(3, 2, 1)


def test_restarts_are_summed_over_every_container_of_every_instance() -> None:
    pods = [{"status": {"containerStatuses": [{"restartCount": 2}, {"restartCount": 1}]}},
            {"status": {"containerStatuses": [{"restartCount": 0}]}}, {"status": {}}]
    assert timeline.pod_restarts(pods) == 3
    assert timeline.container_restarts([{"RestartCount": 1}, {"RestartCount": 4}, {}]) == 5


def test_the_services_node_port_is_where_requests_go() -> None:
    service = {"spec": {"type": "NodePort", "ports": [{"port": 8080, "nodePort": 30123}]}}
    assert timeline.node_port(service) == 30123
    assert timeline.node_port({"spec": {"ports": [{"port": 8080}]}}) is None
    assert timeline.node_port(None) is None


def test_containers_are_ready_when_running_and_not_starting_or_unhealthy() -> None:
    containers = [
        {"State": "running", "Status": "Up 3 seconds (healthy)", "Image": scenarios.V1,
         "Ports": [{"IP": "127.0.0.1", "PublicPort": 32768, "PrivatePort": 8080}]},
        {"State": "running", "Status": "Up 1 second (health: starting)", "Image": scenarios.V1},
        {"State": "running", "Status": "Up 9 seconds (unhealthy)", "Image": scenarios.V1},
        {"State": "exited", "Status": "Exited (137) 2 seconds ago", "Image": scenarios.V1},
        {"State": "running", "Status": "Up 5 seconds", "Image": scenarios.V2},
    ]
    assert timeline.count_containers(containers, scenarios.V1) == timeline.Counts(4, 2, 1)
    assert timeline.loopback_port(containers[0]) == 32768
    assert timeline.loopback_port(containers[1]) is None


# --- the report -----------------------------------------------------------------------------


def _result(scenario: scenarios.Scenario) -> report.Result:
    timelines = []
    for engine in scenarios.ENGINES:
        samples = steady(-1, 0, 3) + steady(0, 0.5, 2) + steady(0.5, 4, 3)
        timelines.append(Timeline(scenario.id, engine.id, f"app-{engine.id}", tuple(samples),
                                  (Marker(0.0, "kill one", "fault", ("docker kill x",), 0),),
                                  end=4, child_kinds=0, restarts=1))
    outcomes = tuple(timeline.analyse(t, scenario) for t in timelines)
    return report.Result(scenario, outcomes, tuple(timelines), plot=f"{scenario.id}.png")


def test_the_report_is_the_articles_table_with_measured_cells_from_real_processes() -> None:
    meta = report.Meta("2026-01-01 00:00 UTC", 90.0, True, "x86_64, 2 cores", "20.10", "v1.36.3")
    text = report.markdown([_result(KILL), _result(scenarios.BY_SCENARIO["crash-one"])], meta)
    header = next(line for line in text.splitlines() if line.startswith("| Scenario |"))
    assert header.count("|") == len(scenarios.ENGINES) + 2
    assert "| Kubernetes operator |" in header and "¹" not in header
    row = next(line for line in text.splitlines() if line.startswith("| Kill one instance |"))
    assert row.count("✅ recovered in 0.5 s · 0 commands typed") == len(scenarios.ENGINES)
    crash = next(line for line in text.splitlines()
                 if line.startswith("| An instance crashes"))
    assert crash.split("|")[2].strip().startswith("✅ recovered in 0.5 s")
    assert "Simulated pods" not in text and "On kind" not in text and "on kwok" not in text
    assert "**Both sides run real processes.**" in text
    details = [line for line in text.splitlines() if line.startswith("| An instance crashes")
               and "| Kubernetes operator |" in line]
    assert len(details) == 1 and "| 1 |" in details[0]  # restarted in place
    assert "![Kill one instance](kill-one.png)" in text
    data = report.to_json([_result(KILL)], meta)
    assert report.outcomes_from_json(json.loads(json.dumps(data)))[("kill-one", "operator")] \
        .recovered


# --- the live view --------------------------------------------------------------------------


def _text(renderable: Any) -> str:
    console = Console(file=io.StringIO(), width=170, color_system=None)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_the_view_shows_both_engines_side_by_side_with_their_actions() -> None:
    webapps = [{"metadata": {"namespace": "default", "name": "hello"},
                "spec": {"image": scenarios.V1, "replicas": 3},
                "status": {"replicas": 3, "readyReplicas": 2,
                           "conditions": [{"type": "Ready", "status": "False",
                                           "reason": "ReplicasNotReady"}]}}]
    events = [{"involvedObject": {"namespace": "default", "name": "hello"}, "type": "Normal",
               "reason": "DriftRepaired", "message": "Service hello repaired",
               "lastTimestamp": "2026-01-01T10:00:02Z"},
              {"involvedObject": {"namespace": "default", "name": "hello"}, "type": "Normal",
               "reason": "Created", "message": "Deployment hello created",
               "lastTimestamp": "2026-01-01T10:00:00Z"}]
    actions, repairs = view.from_events(events)
    assert [a.text.split()[1] for a in actions] == ["DriftRepaired:", "Created:"]
    containers = [{"Labels": {"reconcile-lab/app": "hello"}, "State": "running",
                   "Status": "Up 2 minutes (healthy)", "Image": scenarios.V1},
                  {"Labels": {"reconcile-lab/app": "hello"}, "State": "exited",
                   "Status": "Exited (137)", "Image": scenarios.V1}]
    docker_events = [{"Action": "die", "timeNano": 1_700_000_000_000_000_000,
                      "Actor": {"Attributes": {"name": "hello-1", "exitCode": "137"}}},
                     {"Action": "exec_start: sh", "Actor": {"Attributes": {"name": "hello-2"}}}]
    frame = view.Frame(now=1_700_000_000.0, kubernetes=view.from_webapps(webapps),
                       docker=view.from_containers(containers, {}),
                       kubernetes_actions=actions, kubernetes_repairs=repairs,
                       docker_actions=view.from_docker_events(docker_events))
    text = _text(view.render(frame))
    assert "default/hello" in text and "ReplicasNotReady" in text
    assert "Deployment hello created" in text and "hello-1 die (exit 137)" in text
    assert "exec_start" not in text  # health probes are not actions
    assert "1 stopped" in text and "Docker keeps no desired state" in text
    assert "1 DriftRepaired event(s)" in text
    assert "no --watch loop answers on 127.0.0.1:8001" in text


def test_the_view_reads_the_twins_metrics_and_says_when_an_engine_is_down() -> None:
    metrics = "\n".join([
        "# HELP reconcile_lab_desired_replicas Replicas the WebApp asks for.",
        'reconcile_lab_desired_replicas{app="hello",engine="docker",namespace="default"} 3.0',
        'reconcile_lab_desired_replicas{app="x",engine="kubernetes",namespace="default"} 9.0',
        'reconcile_lab_drift_corrections_total{engine="docker",kind="Container"} 2.0',
        'reconcile_lab_drift_corrections_total{engine="docker",kind="Network"} 1.0',
    ])
    desired, repairs = view.from_twin_metrics(metrics)
    assert desired == {"hello": 3} and repairs == 3.0
    frame = view.Frame(now=0.0, docker=view.from_containers([], desired), docker_repairs=repairs,
                       kubernetes_error="no cluster: no kubeconfig at /x (fix: reconcile-lab "
                                        "cluster up)", docker_desired_from="the loop")
    text = _text(view.render(frame))
    assert "no cluster" in text and "3 correction(s) by the --watch loop" in text
    assert "hello" in text and "desired: the loop" in text


# --- the real node's containers, seen from the host ------------------------------------------


def test_a_containers_main_process_is_the_one_whose_parent_is_outside_its_cgroup(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconcile_lab.cluster import hostchanges, nodeinfo, nodeprocs

    # 210 (the entry point, started by the shim 50) runs 120 (a reused, lower PID) and 300.
    parents = {210: 50, 120: 210, 300: 210}
    cgroup = tmp_path / "kubepods" / "pod1" / "cri-containerd-abc123.scope"
    cgroup.mkdir(parents=True)
    (cgroup / "cgroup.procs").write_text("120\n210\n300\n")
    (tmp_path / "kubepods" / "cgroup.procs").write_text("50\n")
    monkeypatch.setattr(hostchanges, "cgroup_dirs", lambda: [tmp_path])
    monkeypatch.setattr(nodeprocs, "parent", parents.get)
    pod = {"status": {"containerStatuses": [{"containerID": "containerd://abc123"}]}}
    assert nodeinfo.container_pid(pod) == 210
    assert nodeinfo.container_pid({"status": {"containerStatuses": [
        {"containerID": "containerd://other"}]}}) is None
    assert nodeinfo.container_pid({"status": {}}) is None  # not started yet


def test_what_an_engine_counted_goes_into_its_outcomes_note() -> None:
    s = scenarios.BY_SCENARIO["throttled"]
    samples = tuple(timeline.Sample(t / 10, 5 if t > 3 else 3, 5 if t > 20 else 3,
                                    5 if t > 20 else 3, 5 if t > 20 else 3, 2)
                    for t in range(0, 60))
    markers = (timeline.Marker(0.1, "controller throttled", "fault", ("kubectl apply",), 0),
               timeline.Marker(0.2, "30 more apps", "command", ("kubectl apply",), 1),
               timeline.Marker(0.3, "spec: replicas 5", "command", ("kubectl apply",), 2),
               timeline.Marker(4.0, "57 requests answered 429", "figure", (), 4),
               timeline.Marker(4.0, "throttle lifted", "command", ("kubectl delete",), 4))
    outcome = timeline.analyse(timeline.Timeline("throttled", "operator", "app", samples,
                                                 markers, end=6.0, child_kinds=2), s)
    assert outcome.recovered and outcome.note == "57 requests answered 429"
    assert outcome.seconds is not None and 1.5 < outcome.seconds < 2.0  # from the change


def test_a_refusal_by_the_kits_policy_is_told_from_any_other_failure() -> None:
    from reconcile_lab.declarative import policy

    said = ('The webapps "a" is invalid: : ValidatingAdmissionPolicy '
            f"'{policy.WEBAPPS}' with binding '{policy.WEBAPPS}' denied request: spec.image "
            "untrusted/hello:v1 is not allowed here\n")
    assert policy.refusal(said) == "spec.image untrusted/hello:v1 is not allowed here"
    assert policy.refusal(said.replace(policy.WEBAPPS, "someone-elses")) is None
    assert policy.refusal('error: the server doesn\'t have a resource type "webapps"') is None


def test_a_tally_counts_failures_and_the_versions_that_answered_in_its_window() -> None:
    requests = [Request(0.1, True, "v1"), Request(0.6, False), Request(1.2, True, "v2"),
                Request(1.7, True, "v1"), Request(2.5, True, "v2")]
    assert timeline.tally(requests) == timeline.Tally(4, 1, {"v1": 2, "v2": 2})
    assert timeline.tally(requests, since=1, until=2) == timeline.Tally(2, 0, {"v1": 1, "v2": 1})


def test_a_machine_dies_on_simulated_nodes_with_the_webapps_own_reschedule_time() -> None:
    s = scenarios.BY_SCENARIO["machine-dies"]
    assert s.faulty and not s.controller_fault  # a person brings the Docker host back
    assert s.shape.simulated and not s.traffic  # simulated pods answer no request
    from reconcile_lab.compare import driving

    app = driving.webapp("a", s.initial, s.shape)
    assert app["spec"]["rescheduleAfterSeconds"] == scenarios.RESCHEDULE_AFTER
    from reconcile_lab.cluster import nodeconfig

    # The heartbeat is taken, its renewTime left alone: no renewal after the machine died.
    patch = nodeconfig.dead_lease()["spec"]
    assert isinstance(patch, dict) and "renewTime" not in patch
    assert patch["holderIdentity"] == nodeconfig.DEAD_HOLDER


def test_a_silent_fault_is_timed_from_the_fault_and_never_noticed_is_not_recovered() -> None:
    s = scenarios.BY_SCENARIO["machine-dies"]
    fault = (Marker(0.0, "the machine dies", "fault", ("…",), 0, end=0.3),)
    # The node controller takes the node for gone after its grace; the pods come back elsewhere.
    noticed = steady(-1, 55, 3) + steady(55, 62, 2) + steady(62, 100, 3)
    outcome = timeline.analyse(Timeline("machine-dies", "operator", "app", tuple(noticed), fault,
                                        end=100, child_kinds=2), s)
    assert outcome.recovered and outcome.seconds == 61.7 and not outcome.upper_bound
    # Nothing ever showed the dead machine: its instances are still taken for serving.
    blind = steady(-1, 100, 3)
    outcome = timeline.analyse(Timeline("machine-dies", "operator", "app", tuple(blind), fault,
                                        end=100, child_kinds=2), s)
    assert not outcome.recovered and outcome.seconds is None


def test_scaling_by_hand_is_a_repair_and_a_loops_file_edit_counts_as_one_act(
        tmp_path: Path) -> None:
    class Loop(driving.Driver):
        engine = scenarios.WATCH

        def do(self, step: scenarios.Step, target: Target, mark: driving.Mark) -> None:
            mark("edit", step.label, [])  # a loop re-reads the file: nothing typed

    ctx = driving.Context(run="r", work=tmp_path, docker=None,  # type: ignore[arg-type]
                          snapshot=None, env={})  # type: ignore[arg-type]
    marks: list[tuple[str, str, list[str]]] = []
    scenario = scenarios.BY_SCENARIO["autoscale-out"]
    assert Loop(ctx, "app").scale_by_hand(scenario.target,
                                          lambda *m: marks.append(m))  # type: ignore[arg-type]
    assert marks == [("repair", "repair: scale to 4 by hand",
                      ["edit webapp.yaml: replicas 4"])]
