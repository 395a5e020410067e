"""`reconcile-lab compare` and `reconcile-lab watch`, for real, on both sides.

The harness measures on the test run's cluster and its real node (``--kubeconfig``: a host has
room for one real node), with an operator of its own in a namespace of its own, and a
single-node swarm on 127.0.0.1 when none is active; everything it made must be gone afterwards
and every value in its table must come from what it measured.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reconcile_lab.cluster import nodeinfo
from reconcile_lab.compare import report, scenarios
from tests import cases
from tests.conftest import Cluster, Operator
from tests.integration.test_makefile import Foreground, make

pytestmark = [pytest.mark.realnode]

ROOT = Path(__file__).resolve().parents[2]
RL = [sys.executable, "-m", "reconcile_lab"]


def _env(state: Path) -> dict[str, str]:
    return {**os.environ, "RECONCILE_LAB_STATE": str(state),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT)])}


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False,
                          timeout=60).stdout


def _swarm_state() -> str:
    return _docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()


def _compare(cluster: Cluster, operator: Operator, tmp_path_factory: pytest.TempPathFactory,
             *args: str, quick: bool = False, timeout: float = 400) -> dict[str, Any]:
    """One `reconcile-lab compare` run on the test run's cluster, whose own operator (it
    watches every namespace) is stopped meanwhile: one operator per WebApp is measured."""
    if not nodeinfo.node_ready(cluster.kubeconfig):
        pytest.fail("no real node in this cluster: see the fall-back message of cluster up "
                    "(run with -m 'not realnode' on a host that cannot have one)")
    out = tmp_path_factory.mktemp("compare")
    state = tmp_path_factory.mktemp("compare-state")
    swarm_before = _swarm_state()
    gwbridge_before = "docker_gwbridge" in _docker("network", "ls", "--format", "{{.Name}}")
    operator.kill(signal.SIGTERM)
    try:
        started = time.monotonic()
        compare_args = shlex.join(["--kubeconfig", str(cluster.kubeconfig), *args])
        done = make("compare", *(["QUICK=1"] if quick else []), f"OUT={out}",
                    f"COMPARE_ARGS={compare_args}", env=_env(state), timeout=timeout, ok=False)
        seconds = time.monotonic() - started
    finally:
        operator.start()
    print(done.stderr[-4000:], file=sys.stderr)
    return {"out": out, "state": state, "done": done, "seconds": seconds,
            "swarm_before": swarm_before, "gwbridge_before": gwbridge_before,
            "data": json.loads((out / "results.json").read_text())
            if (out / "results.json").is_file() else None}


@pytest.fixture(scope="module")
def quick(cluster: Cluster, operator: Operator, docker_engine: Any,
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `compare --quick` run for the whole module."""
    return _compare(cluster, operator, tmp_path_factory, quick=True)


@pytest.fixture(scope="module")
def crash_and_rollout(cluster: Cluster, operator: Operator, docker_engine: Any,
                      tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The two scenarios --quick leaves out where the real node shows most: a crash, and
    requests during a rollout; the operator and plain `docker run --restart always`."""
    return _compare(cluster, operator, tmp_path_factory, "--scenario", "crash-one",
                    "--scenario", "rollout", "--scenario", "rollout-unprobed",
                    "--engine", "operator", "--engine", "restart-always")


@pytest.fixture(scope="module")
def gates_and_folders(cluster: Cluster, operator: Operator, docker_engine: Any,
                      tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The article's governance and Git rows: an image the admission policy refuses, and a
    folder as what runs (a hand edit behind its back, a file removed)."""
    return _compare(cluster, operator, tmp_path_factory, "--scenario", "policy",
                    "--scenario", "git-drift", "--scenario", "git-remove",
                    "--engine", "operator", "--engine", "twin", "--engine", "twin-watch")


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.slow
def test_quick_compare_measures_who_recovers_a_killed_instance(quick: dict[str, Any]) -> None:
    assert quick["done"].returncode == 0, quick["done"].stderr[-3000:]
    assert quick["seconds"] < 150, f"--quick took {quick['seconds']:.0f}s"
    assert "its pods on the real node 'localhost'" in quick["done"].stderr
    found = report.outcomes_from_json(quick["data"])

    # A real container's process got SIGKILL: the kubelet restarted it in place.
    operator = found[("kill-one", "operator")]
    assert operator.recovered and operator.seconds is not None and operator.seconds < 10
    assert not operator.upper_bound and operator.min_ready == scenarios.REPLICAS - 1
    assert operator.restarts is not None and operator.restarts >= 1
    assert operator.commands == 0 and operator.repair_commands == 0
    kill = next(s for s in quick["data"]["scenarios"] if s["id"] == "kill-one")
    faults = [c for t in kill["timelines"] for m in t["markers"] if m["kind"] == "fault"
              for c in m["commands"]]
    assert any(c.startswith("kill -9 <main process of pod") for c in faults), faults

    twin = found[("kill-one", "twin")]
    assert not twin.recovered and twin.seconds is None
    # ... until a person types apply, which brings it back.
    assert twin.repair_commands == 1 and twin.repair_seconds is not None

    for engine in ("twin-watch", "swarm"):
        outcome = found[("kill-one", engine)]
        assert outcome.recovered, engine
        assert outcome.seconds is not None and 0 < outcome.seconds < 14, (engine, outcome)
        assert outcome.commands == 0

    # dockerd treats `docker kill` as a manual stop: the restart policy does not apply.
    assert not found[("kill-one", "restart-always")].recovered


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.slow
def test_quick_compare_covers_create_and_a_deleted_child(quick: dict[str, Any]) -> None:
    found = report.outcomes_from_json(quick["data"])
    assert {s for s, _ in found} == set(scenarios.QUICK)
    for engine in scenarios.ENGINES:
        created = found[("create", engine.id)]
        assert created.recovered and created.seconds is not None, engine
        assert created.commands >= 1  # somebody had to say what they wanted
    assert found[("delete-child", "operator")].recovered
    assert found[("delete-child", "twin-watch")].recovered
    assert found[("delete-child", "swarm")].recovered
    assert not found[("delete-child", "twin")].recovered
    # the removed containers took their restart policy with them
    assert not found[("delete-child", "restart-always")].recovered


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.slow
def test_the_table_shows_the_measured_values_from_real_processes(
        quick: dict[str, Any]) -> None:
    out: Path = quick["out"]
    table = (out / "comparison.md").read_text()
    data = quick["data"]
    kill = next(s for s in data["scenarios"] if s["id"] == "kill-one")
    row = next(line for line in table.splitlines() if line.startswith("| Kill one instance |"))
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    by_engine = {o["engine"]: o for o in kill["outcomes"]}
    for engine, text in zip(scenarios.ENGINES, cells, strict=True):
        o = by_engine[engine.id]
        if o["recovered"]:
            # A repair quicker than one sample shows as "≤ <sample period> s (no gap seen)".
            shown = max(o["seconds"], scenarios.SAMPLE_PERIOD) if "no gap seen" in text \
                else o["seconds"]
            assert text.startswith("✅") and f"{shown:.1f} s" in text, (engine, text)
        else:
            assert text.startswith("❌ not recovered within"), (engine, text)
    assert "Simulated pods" not in table and "kwok)" not in table
    assert "**Both sides run real processes.**" in table
    for name in ("create.png", "kill-one.png", "delete-child.png", "summary.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"({name})" in table or name == "summary.png"
    # every timeline was sampled about every 100 ms
    tl = next(t for t in kill["timelines"] if t["engine"] == "operator")
    times = [row[0] for row in tl["samples"]]
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    assert 0.08 < gaps[len(gaps) // 2] < 0.2


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.slow
def test_compare_leaves_nothing_behind(quick: dict[str, Any], cluster: Cluster) -> None:
    apps = {t["app"] for s in quick["data"]["scenarios"] for t in s["timelines"] if t["app"]}
    prefixes = {app.split("-")[0] + "-" for app in apps}
    assert len(prefixes) == 1
    names = _docker("ps", "-a", "--format", "{{.Names}}").split()
    networks = _docker("network", "ls", "--format", "{{.Name}}").split()
    assert not [n for n in names + networks if any(n.startswith(p) for p in prefixes)]
    assert _swarm_state() == quick["swarm_before"]
    if not quick["gwbridge_before"]:
        assert "docker_gwbridge" not in networks
    # On the test run's cluster it made a namespace only, and removes it.
    assert not (quick["state"] / "compare" / "kwok" / "clusters" / "reconcile-lab").exists()
    namespace = f"compare-{next(iter(prefixes))[1:-1]}"
    left = cluster.get("namespace", namespace)
    assert left is None or left["metadata"].get("deletionTimestamp"), left


@pytest.fixture(scope="module")
def cut_off(cluster: Cluster, operator: Operator, docker_engine: Any,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Faults on the controllers' own paths: each path to its API cut while the spec changes
    (the operator's to the apiserver, the --watch loop's to dockerd, a fault proxy in front of
    each), and the operator throttled by the apiserver."""
    return _compare(cluster, operator, tmp_path_factory, "--scenario", "cut-off",
                    "--scenario", "throttled", "--engine", "operator", "--engine", "twin-watch")


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.slow
def test_a_controller_cut_off_changes_nothing_until_the_heal_then_converges(
        cut_off: dict[str, Any]) -> None:
    assert cut_off["done"].returncode == 0, cut_off["done"].stderr[-3000:]
    data = cut_off["data"]
    found = report.outcomes_from_json(data)
    scenario = next(s for s in data["scenarios"] if s["id"] == "cut-off")
    for engine in ("operator", "twin-watch"):
        outcome = found[("cut-off", engine)]
        assert outcome.applicable and outcome.recovered, (engine, outcome)
        timeline = next(t for t in scenario["timelines"] if t["engine"] == engine)
        at = {m["step"]: m["t"] for m in timeline["markers"]}
        # Cut off, the controller saw the new spec (5) nowhere: 3 instances until the heal.
        during = [row for row in timeline["samples"] if at[1] + 2 < row[0] < at[3]]
        assert during and all(row[1] == 5 and row[2] == 3 for row in during), \
            (engine, during[:3])
        # The running instances kept serving: the controller's path is not the app's.
        assert outcome.requests and outcome.failed == 0, (engine, outcome)
        cut = next(m for m in timeline["markers"] if m["step"] == 0)
        assert cut["kind"] == "fault" and cut["commands"][0].startswith("reconcile-lab fault cut")
    for found_state in (cut_off["state"] / "compare" / "faults").glob("*"):
        pytest.fail(f"the fault proxies left {found_state} behind")


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.slow
def test_a_throttled_operator_is_refused_waits_as_asked_and_converges(
        cut_off: dict[str, Any], cluster: Cluster) -> None:
    found = report.outcomes_from_json(cut_off["data"])
    outcome = found[("throttled", "operator")]
    assert outcome.applicable and outcome.recovered, outcome
    # The apiserver's own count of what its priority level refused the operator.
    refused = float(outcome.note.split(" requests answered 429")[0])
    assert refused > 0, outcome.note
    assert not found[("throttled", "twin-watch")].applicable  # dockerd throttles nobody
    levels = cluster.kubectl("get", "prioritylevelconfigurations", "-o", "name").stdout
    assert "-throttled-" not in levels, "the throttle outlived the scenario"


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.slow
def test_a_crash_is_restarted_in_place_on_both_sides(crash_and_rollout: dict[str, Any]) -> None:
    assert crash_and_rollout["done"].returncode == 0, crash_and_rollout["done"].stderr[-3000:]
    found = report.outcomes_from_json(crash_and_rollout["data"])
    for engine in ("operator", "restart-always"):
        crash = found[("crash-one", engine)]
        assert crash.applicable and crash.recovered, (engine, crash)
        assert crash.restarts is not None and crash.restarts >= 1, (engine, crash)
        assert crash.repair_commands == 0


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.slow
def test_requests_during_a_rollout_are_counted_on_both_sides(
        crash_and_rollout: dict[str, Any]) -> None:
    data = crash_and_rollout["data"]
    found = report.outcomes_from_json(data)
    rollout = next(s for s in data["scenarios"] if s["id"] == "rollout")
    for engine in ("operator", "restart-always"):
        outcome = found[("rollout", engine)]
        assert outcome.recovered, (engine, outcome)
        assert outcome.requests is not None and outcome.requests > 20, (engine, outcome)
        assert outcome.failed is not None and outcome.failed < outcome.requests
        requests = next(t for t in rollout["timelines"] if t["engine"] == engine)["requests"]
        # Real answers from both versions: the Service reached real pods through the rollout.
        assert {version for _, ok, version in requests if ok} == {"v1", "v2"}, engine
    # Readiness, maxUnavailable 0 and a drain before each old pod stops: nothing is lost.
    operator = found[("rollout", "operator")]
    assert operator.failed == 0, f"{operator.failed} of {operator.requests} requests failed"
    table = (crash_and_rollout["out"] / "comparison.md").read_text()
    assert "n/a (simulated pods)" not in table
    # The same release of an app that takes 2 s to listen, without the readiness probe: the
    # Service sends requests to pods that do not listen yet.
    unprobed = found[("rollout-unprobed", "operator")]
    assert unprobed.recovered and unprobed.failed, unprobed


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.slow
def test_the_policy_refuses_before_anything_runs_and_docker_runs_it(
        gates_and_folders: dict[str, Any]) -> None:
    assert gates_and_folders["done"].returncode == 0, gates_and_folders["done"].stderr[-3000:]
    found = report.outcomes_from_json(gates_and_folders["data"])
    refused = found[("policy", "operator")]
    assert refused.recovered and refused.peak == 0, refused
    assert "is not allowed here" in refused.note  # the apiserver's own words
    for engine in ("twin", "twin-watch"):
        ran = found[("policy", engine)]
        assert not ran.recovered and ran.peak == scenarios.REPLICAS, (engine, ran)


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.slow
def test_the_folder_wins_where_a_loop_applies_it_and_a_removed_file_removes_its_app(
        gates_and_folders: dict[str, Any]) -> None:
    found = report.outcomes_from_json(gates_and_folders["data"])
    # A hand edit: `sync --watch` and the twin's loop put the folder back by themselves...
    for engine in ("operator", "twin-watch"):
        drift = found[("git-drift", engine)]
        assert drift.recovered and drift.repair_commands == 0, (engine, drift)
    # ... the one-shot twin waits for a person to apply the folder again.
    once = found[("git-drift", "twin")]
    assert not once.recovered and once.repair_commands == 1 and once.repair_seconds is not None
    # A file removed: sync prunes its WebApp, `apply --prune` its containers; the loop owns
    # nothing and keeps it running.
    assert found[("git-remove", "operator")].recovered
    assert found[("git-remove", "twin")].recovered
    assert not found[("git-remove", "twin-watch")].recovered


# --- the live view --------------------------------------------------------------------------


@pytest.mark.cluster
@pytest.mark.docker
def test_watch_once_shows_the_webapp_and_the_operators_events(
        cluster: Cluster, operator: Operator, namespace: str, docker_engine: Any,
        tmp_path: Path) -> None:
    cluster.apply(cases.webapp("live", namespace, replicas=2))
    cluster.kubectl("wait", "-n", namespace, "webapp/live", "--for=condition=Ready",
                    "--timeout=30s", timeout=40)
    done = subprocess.run([*RL, "watch", "--once", "--kubeconfig", str(cluster.kubeconfig),
                           "--namespace", namespace], env=_env(tmp_path / "state"),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    rows = [x.split("│")[1].split() for x in done.stdout.splitlines() if x.count("│") >= 2]
    row = next(r for r in rows if r and r[0] == f"{namespace}/live")
    assert row[1:6] == ["reconcile-lab/hello:v1", "2", "2", "2", "Available"], row
    assert "Created: Deployment live and Service live created" in done.stdout
    assert "Docker: the twin's labelled containers" in done.stdout


@pytest.mark.docker
def test_watch_stops_cleanly_on_ctrl_c(tmp_path: Path, docker_engine: Any) -> None:
    watch = Foreground("watch", f"WATCH_ARGS=--interval 0.5 --kubeconfig {tmp_path / 'none.yaml'}",
                       log=tmp_path / "watch.log", env=_env(tmp_path / "state"))
    time.sleep(3)
    watch.ctrl_c(timeout=15)
    out = watch.output()
    assert "Traceback" not in out and "watch: stopped" in out, out
    assert "no cluster: no kubeconfig" in out


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.chaos  # it stops the kit's own Docker engine, with every container on it
def test_a_dead_machine_is_replaced_by_the_cluster_and_waited_for_on_docker(
        cluster: Cluster, operator: Operator, docker_engine: Any,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    run = _compare(cluster, operator, tmp_path_factory, "--scenario", "machine-dies",
                   "--engine", "operator", "--engine", "twin", "--engine", "restart-always")
    assert run["done"].returncode == 0, run["done"].stderr[-3000:]
    found = report.outcomes_from_json(run["data"])
    k8s = found[("machine-dies", "operator")]
    # Noticed after the node controller's grace, evicted rescheduleAfterSeconds later, placed
    # on the nodes left: all without a command.
    assert k8s.recovered and k8s.commands == 0 and k8s.repair_commands == 0, k8s
    assert k8s.seconds is not None and 40 <= k8s.seconds < 100, k8s
    for engine in ("twin", "restart-always"):
        outcome = found[("machine-dies", engine)]
        # One host: nothing acts until a person starts its engine again.
        assert not outcome.recovered and outcome.repair_commands >= 1, (engine, outcome)
        assert outcome.repair_seconds is not None, (engine, outcome)
    assert subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.slow
def test_load_scales_the_operators_app_out_and_back_in_and_docker_waits_for_a_person(
        cluster: Cluster, operator: Operator, docker_engine: Any,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    run = _compare(cluster, operator, tmp_path_factory, "--scenario", "autoscale-out",
                   "--scenario", "autoscale-in", "--engine", "operator", "--engine", "twin",
                   timeout=900)
    assert run["done"].returncode == 0, run["done"].stderr[-3000:]
    found = report.outcomes_from_json(run["data"])
    out, back = found[("autoscale-out", "operator")], found[("autoscale-in", "operator")]
    # The HPA, fed by metrics-server from the real kubelet, scaled out and in: no command.
    assert out.recovered and out.commands == 0 and out.repair_commands == 0, out
    assert back.recovered and back.commands == 0, back
    assert f"scaled out to {scenarios.AUTOSCALE_MAX} in" in back.note, back
    assert back.seconds is not None and back.seconds >= scenarios.SCALE_IN_AFTER, back
    assert out.requests and back.requests, (out, back)  # the load was real
    twin = found[("autoscale-out", "twin")]
    # Nothing read autoscale on Docker: a person scaled it, and that worked.
    assert not twin.recovered and twin.repair_commands >= 1, twin
    assert twin.repair_seconds is not None, twin
    assert not found[("autoscale-in", "twin")].applicable


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.slow
def test_make_article_measures_the_claims_and_writes_their_table(
        cluster: Cluster, operator: Operator, docker_engine: Any,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A trial run of `make article` (one claim, two engines), into files of the test's own."""
    out = tmp_path_factory.mktemp("article")
    doc = out / "mapping.md"
    doc.write_text((ROOT / "docs" / "mapping.md").read_text())
    operator.kill(signal.SIGTERM)  # one operator per WebApp is measured: compare's own
    try:
        compare_args = shlex.join(["--kubeconfig", str(cluster.kubeconfig), "--engine",
                                   "operator", "--engine", "twin"])
        done = make("article", f"COMPARE_ARGS={compare_args}",
                    f"ARTICLE_ARGS=--only policy --data {out / 'article.json'} --doc {doc}",
                    env=_env(tmp_path_factory.mktemp("article-state")), timeout=300, ok=False)
    finally:
        operator.start()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    data = json.loads((out / "article.json").read_text())
    assert data["meta"]["argv"][0] == "bench/article.py" and data["meta"]["commit"]
    row = next(line for line in doc.read_text().splitlines() if "| Policy: " in line)
    assert "✅ refused: nothing ran" in row and "❌ ran 3 of untrusted/hello:v1" in row, row
    assert "| not measured |" in doc.read_text()  # the claims it was not asked to measure
