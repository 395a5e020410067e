"""``reconcile-lab compare``: run the matrix, scenario by scenario, engines side by side.

For each scenario every engine runs on a thread of its own (same app, same steps, its own
name): set up, sample every ~100 ms from one second before the first step, do the steps,
watch until the target is reached and held or the window ends, then — only for engines with
nothing watching — type the repair a person would type. Then everything is removed.

An I/O adapter: it runs in a state directory of its own, so the user's cluster and operator
are never touched; it owns the Kubernetes side (``kubeside``: a cluster with its real node, or
with ``--kubeconfig`` a namespace on a running one, and the operator), the --watch loop's fault
proxy, the swarm (initialised on 127.0.0.1 when none is active, left at the end) and the output
files. What the samples mean is decided by ``timeline``; the table by ``report``; the pictures
by ``plot``.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from reconcile_lab import paths
from reconcile_lab.cluster import dockerd, images, versions
from reconcile_lab.compare import (
    dockerdrivers,
    driving,
    kubedriver,
    kubeside,
    probes,
    processes,
    report,
    scenarios,
    swarming,
    timeline,
)
from reconcile_lab.compare.scenarios import Scenario, Step, Target

LEAD = 1.0  # seconds sampled before the first step: the plots show the steady state first
SETTLED = 2.0  # a recovery held this long ends the observation early
AFTER_LAST = 8.0  # seconds watched at least after the last step
REPORT = "comparison.md"
RESULTS = "results.json"
_ALL: tuple[type[driving.Driver], ...] = (kubedriver.OperatorDriver, *dockerdrivers.DRIVERS,
                                          swarming.SwarmDriver)
DRIVERS = {d.engine.id: d for d in _ALL}


class Sampler:
    """Samples one engine every SAMPLE_PERIOD on a thread; times relative to ``t0``."""

    def __init__(self, driver: driving.Driver, t0: float) -> None:
        self.driver = driver
        self.t0 = t0
        self.samples: list[timeline.Sample] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"sample-{driver.app}")

    def clock(self) -> float:
        return time.monotonic() - self.t0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                values = self.driver.sample()
                self.samples.append(timeline.Sample(round(began - self.t0, 3), *values))
            except Exception:  # a sample missed (API busy) is a gap, not a failed run
                self.errors += 1
            self._stop.wait(max(0.0, scenarios.SAMPLE_PERIOD - (time.monotonic() - began)))


def run_engine(driver: driving.Driver, scenario: Scenario) -> timeline.Timeline:
    """One engine through one scenario; never raises (a failure is the timeline's error)."""
    markers: list[timeline.Marker] = []
    sampler: Sampler | None = None
    traffic: probes.Traffic | None = None
    try:
        initial = scenario.initial
        if scenario.setup:
            driver.prepare(initial)
        restarts_before = driver.restarts()
        sampler = Sampler(driver, time.monotonic() + LEAD)
        sampler.start()
        clock = sampler.clock
        if scenario.traffic and driver.has_traffic:
            traffic = probes.Traffic(
                driver.ports, clock, rate=scenario.rate, paused=scenario.load,
                path=scenarios.LOAD_PATH if scenario.load else "/")
            traffic.start()
        time.sleep(LEAD)
        for i, step in enumerate(scenario.steps):
            _do(driver, scenario, i, step, markers, sampler, traffic)
        target = scenario.target
        starts = [m.effective for m in markers if m.step == scenario.measure_from] or [0.0]
        # A step that took long (a loop that had to be stopped first) still gets time to act.
        until = max(scenario.window, markers[-1].t + AFTER_LAST if markers else 0.0)
        since = starts[0]
        if scenario.silent:  # nothing to settle until the engine has noticed the fault
            since = _noticed(sampler, target, driver.child_kinds, since=since, until=until)
        settled = _watch(sampler, target, driver.child_kinds, since=since, until=until)
        if settled is None and scenario.faulty and not scenario.controller_fault:
            def repair_mark(kind: str, label: str, commands: list[str]) -> None:
                markers.append(timeline.Marker(clock(), label, kind, tuple(commands)))
            if driver.repair(scenario, repair_mark):
                since = next(m.t for m in markers if m.kind == "repair")
                _watch(sampler, target, driver.child_kinds, since=since,
                       until=clock() + scenario.repair_window)
        end = clock()
        restarts_after = driver.restarts()
        restarts = None if restarts_before is None or restarts_after is None \
            else max(0, restarts_after - restarts_before)
        return timeline.Timeline(scenario.id, driver.engine.id, driver.app,
                                 tuple(sampler.samples), tuple(markers),
                                 tuple(traffic.requests) if traffic else (), end=end,
                                 child_kinds=driver.child_kinds, restarts=restarts)
    except Exception as e:
        return timeline.Timeline(scenario.id, driver.engine.id, driver.app,
                                 tuple(sampler.samples) if sampler else (), tuple(markers),
                                 error=f"{type(e).__name__}: {e}"[:500],
                                 end=sampler.clock() if sampler else 0.0,
                                 child_kinds=driver.child_kinds)
    finally:
        if traffic is not None:
            traffic.stop()
        if sampler is not None:
            sampler.stop()
        try:
            driver.cleanup()
        except Exception as e:
            driver.ctx.say(f"cleanup of {driver.app} failed ({e}); the final sweep retries")


def _do(driver: driving.Driver, scenario: Scenario, i: int, step: Step,
        markers: list[timeline.Marker], sampler: Sampler,
        traffic: probes.Traffic | None) -> None:
    target = scenarios.target_after(scenario.initial, scenario.steps[: i + 1])

    def mark(kind: str, label: str, commands: list[str]) -> None:
        markers.append(timeline.Marker(sampler.clock(), label, kind, tuple(commands), i))

    if step.action == "wait":
        mark("note", step.label, [])
        time.sleep(step.seconds)
    elif step.action == "wait-converged":
        since = markers[-1].t if markers else 0.0
        at = _watch(sampler, target, driver.child_kinds, since=since,
                    until=sampler.clock() + step.seconds, hold=scenarios.HOLD)
        if scenario.load:  # how long the load took to be answered: a figure of the outcome
            mark("figure", f"scaled out to {target.replicas} in {at - since:.1f} s"
                 if at is not None else f"not at {target.replicas} after {step.seconds:g} s",
                 [])
        else:
            mark("note", f"{target.image.rsplit(':', 1)[-1]} everywhere" if at is not None
                 else "gave up waiting", [])
    elif step.action in (scenarios.LOAD_ON.action, scenarios.LOAD_OFF.action):
        # The world, not a command: clients start (or stop) sending requests that cost CPU.
        on = step.action == scenarios.LOAD_ON.action
        mark("fault" if step.fault else "note", step.label,
             [f"{scenario.rate:g} requests/s to {scenarios.LOAD_PATH}"] if on else [])
        if traffic is not None:
            (traffic.resume if on else traffic.pause)()
    else:
        driver.do(step, target, mark)
        done = sampler.clock()
        markers[:] = [m._replace(end=done) if m.step == i and m.kind == "fault" else m
                      for m in markers]


def _noticed(sampler: Sampler, target: Target, child_kinds: int, *, since: float,
             until: float) -> float:
    """When a sample first shows the target missed (a silent fault noticed), or ``until``."""
    while sampler.clock() < until:
        found = next((s.t for s in list(sampler.samples)
                      if s.t >= since and not timeline.matches(s, target, child_kinds)), None)
        if found is not None:
            return found
        time.sleep(0.2)
    return until


def _watch(sampler: Sampler, target: Target, child_kinds: int, *, since: float, until: float,
           hold: float = SETTLED) -> float | None:
    """Wait until ``target`` is reached and held for ``hold`` seconds, or until ``until``."""
    while True:
        samples = list(sampler.samples)
        at = timeline.settled_at(samples, target, since=since, child_kinds=child_kinds,
                                 hold=0.0)
        now = sampler.clock()
        if at is not None and now - at >= hold:
            return at
        if now >= until:
            return timeline.settled_at(samples, target, since=since, child_kinds=child_kinds)
        time.sleep(0.2)


# --- the whole run --------------------------------------------------------------------------


class Harness:
    def __init__(self, out: Path, *, quick: bool, only: Sequence[str] = (),
                 engines: Sequence[str] = (), keep_cluster: bool = False,
                 kubeconfig: Path | None = None, say: Callable[[str], None] = print) -> None:
        self.out = out
        self.selected = scenarios.select(tuple(only) or None, quick=quick)
        self.engines = [e for e in scenarios.ENGINES if not engines or e.id in engines]
        self.quick = quick
        self.keep_cluster = keep_cluster
        self.kubeconfig = kubeconfig  # a cluster of the user's: only our namespace is ours
        self.say = say
        self.run_id = secrets.token_hex(2)
        self.ctx: driving.Context | None = None
        self.swarm: swarming.Swarm | None = None
        self.kube: kubeside.KubeSide | None = None

    def _state(self) -> Path:
        # A state directory of its own: its cluster never meets the user's cluster or operator.
        return paths.state_dir() / "compare"

    def setup(self) -> driving.Context:
        self.out.mkdir(parents=True, exist_ok=True)
        work = self.out / "work"
        work.mkdir(exist_ok=True)
        state = self._state()
        os.environ["RECONCILE_LAB_STATE"] = str(state)
        source_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "RECONCILE_LAB_STATE": str(state), "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join(
                   p for p in (source_root, os.environ.get("PYTHONPATH", "")) if p)}
        dockerd.ensure(progress=self.say)
        images.build(progress=self.say)
        docker = probes.Docker()
        ctx = driving.Context(run=self.run_id, work=work, docker=docker,
                              snapshot=probes.Snapshot(docker), env=env, say=self.say,
                              namespace=f"compare-{self.run_id}")
        self.ctx = ctx
        if any(e.id == scenarios.OPERATOR.id for e in self.engines):
            self.kube = kubeside.KubeSide(ctx, given=self.kubeconfig, keep=self.keep_cluster)
            self.kube.up()
        if any(e.id == scenarios.WATCH.id for e in self.engines):
            ctx.docker_path = processes.FaultProxy(docker=True, log=ctx.log_file("docker-path"),
                                                   env=env)
            ctx.docker_host = ctx.docker_path.start()
        if any(e.id == scenarios.SWARM.id for e in self.engines):
            self.swarm = swarming.Swarm(ctx)
            self.swarm.ensure()
        return ctx

    def scenario(self, scenario: Scenario) -> report.Result:
        ctx = self.ctx
        assert ctx is not None
        if ctx.operator is not None and not ctx.operator.healthy():
            ctx.operator.kill()
            ctx.operator.start()
            ctx.operator.wait_healthy()
        runs: dict[str, driving.Driver] = {}
        results: dict[str, timeline.Timeline] = {}
        threads = []
        for engine in self.engines:
            app = scenarios.app_name(self.run_id, scenario.id, engine.id)
            if scenario.why_not(engine.id) is not None:
                results[engine.id] = timeline.Timeline(scenario.id, engine.id, app, (), ())
                continue
            driver = DRIVERS[engine.id](ctx, app, shape=scenario.shape)
            runs[engine.id] = driver

            def work(d: driving.Driver = driver) -> None:
                results[d.engine.id] = run_engine(d, scenario)
            # Daemon threads: Ctrl-C ends the run at once; the final sweep removes what they made.
            threads.append(threading.Thread(target=work, name=f"{scenario.id}-{engine.id}",
                                            daemon=True))
        docker = [e for e in runs if e != scenarios.OPERATOR.id]
        ctx.host = processes.Host(len(docker), say=self.say) \
            if docker and any(s.action == scenarios.NODE_DIES.action for s in scenario.steps) \
            else None
        self.say(f"scenario {scenario.id}: {scenario.title} — "
                 f"{', '.join(runs)} in parallel (window {scenario.window:g} s)")
        started = time.monotonic()
        for thread in threads:
            thread.start()
        budget = 60 + scenario.window + scenario.repair_window + 60  # set-up, window, repair…
        for thread in threads:
            thread.join(timeout=max(1.0, budget - (time.monotonic() - started)))
        if ctx.host is not None:  # whatever happened, the engine runs again for what follows
            ctx.host.start()
            ctx.host = None
        timelines = tuple(results.get(e.id) or timeline.Timeline(
            scenario.id, e.id, "", (), (), error="did not finish in time") for e in self.engines)
        outcomes = tuple(timeline.analyse(t, scenario) for t in timelines)
        self.say(f"  ({time.monotonic() - started:.0f} s)")
        for o in outcomes:
            self.say(f"  {scenarios.BY_ID[o.engine].title:<30} {report.cell(o, scenario)}"
                     + (f" ({o.note})" if o.note and o.applicable else ""))
        return report.Result(scenario, outcomes, timelines)

    def teardown(self) -> None:
        ctx = self.ctx
        if ctx is None:
            return
        if ctx.operator is not None:
            ctx.operator.kill()
        for path in (ctx.kube_path, ctx.docker_path):
            if path is not None:
                path.stop()
        self._sweep()
        if self.swarm is not None:
            self.swarm.leave()
        if self.kube is not None:
            self.kube.down()

    def _sweep(self) -> None:
        """Whatever carries this run's prefix goes, whichever engine made it."""
        assert self.ctx is not None
        prefix = f"c{self.run_id}-"
        docker = self.ctx.docker
        try:
            if docker.swarm_state() == "active":
                for service in docker.get("/services") or []:
                    name = str(service.get("Spec", {}).get("Name", ""))
                    if name.startswith(prefix):
                        self.ctx.execute(["docker", "service", "rm", name], log="sweep", check=False)
            names = [str(c["Names"][0]).lstrip("/") for c in docker.containers()
                     if str(c["Names"][0]).lstrip("/").startswith(prefix)]
            if names:
                self.ctx.execute(["docker", "rm", "-f", *names], log="sweep", check=False)
            for network in docker.networks():
                if str(network.get("Name", "")).startswith(prefix):
                    self.ctx.execute(["docker", "network", "rm", str(network["Name"])], log="sweep",
                             check=False)
        except probes.DockerError as e:
            self.say(f"sweep: {e}")

    def run(self) -> tuple[Path, list[report.Result]]:
        from reconcile_lab.compare import plot

        began = time.monotonic()
        stamp = time.strftime("%Y-%m-%d %H:%M %Z")
        results: list[report.Result] = []
        try:
            ctx = self.setup()
            for scenario in self.selected:
                result = self.scenario(scenario)
                name = f"{scenario.id}.png"
                plot.scenario(result, self.out / name)
                results.append(result._replace(plot=name))
        finally:
            self.teardown()
        meta = report.Meta(
            started=stamp, seconds=time.monotonic() - began, quick=self.quick,
            host=f"{platform.machine()}, {os.cpu_count()} cores, Python "
                 f"{platform.python_version()}",
            docker=ctx.docker.version(), kubernetes=versions.KUBERNETES)
        (self.out / RESULTS).write_text(json.dumps(report.to_json(results, meta), indent=1))
        path = self.out / REPORT
        path.write_text(report.markdown(results, meta))
        plot.summary(results, self.out / "summary.png")
        return path, results


def main(out: Path, *, quick: bool, only: Sequence[str] = (), engines: Sequence[str] = (),
         keep_cluster: bool = False, kubeconfig: Path | None = None) -> int:
    def say(message: str) -> None:
        print(f"compare: {message}", file=sys.stderr, flush=True)

    harness = Harness(out, quick=quick, only=only, engines=engines, keep_cluster=keep_cluster,
                      kubeconfig=kubeconfig, say=say)
    path, results = harness.run()
    say(f"wrote {path}, {out / RESULTS} and {len(results) + 1} plots in {out}")
    print(report.main_table(results))
    failed = [t for r in results for t in r.timelines if t.error]
    for t in failed:
        say(f"{t.scenario} × {t.engine}: not measured: {t.error}")
    return 1 if failed else 0
