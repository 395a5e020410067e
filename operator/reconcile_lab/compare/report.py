"""The comparison as a Markdown table shaped like the article's, with measured values, and as JSON.

Rows are scenarios, columns are engines (the article's tables put Docker and Kubernetes side
by side the same way); every cell is a measurement or says why there is none. Both sides run
real processes (the operator's pods on the embedded cluster's real node); a second table gives
the details, and a section says how to read them.

Purely data: takes outcomes and timelines, returns text and dicts. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from reconcile_lab.compare import scenarios, timeline
from reconcile_lab.compare.scenarios import Scenario
from reconcile_lab.compare.timeline import Outcome

NA_SWARM_TRAFFIC = ("n/a (Swarm publishes ports on every interface; requests go to 127.0.0.1 "
                    "only)")


class Result(NamedTuple):
    """One scenario: an outcome and a timeline per engine, in the engines' order."""

    scenario: Scenario
    outcomes: tuple[Outcome, ...]
    timelines: tuple[timeline.Timeline, ...]
    plot: str = ""  # file name of its PNG, relative to the report


class Meta(NamedTuple):
    started: str  # ISO timestamp
    seconds: float  # the whole run
    quick: bool
    host: str  # e.g. "x86_64, 2 cores"
    docker: str  # the engine's version
    kubernetes: str  # the control plane's version


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < scenarios.SAMPLE_PERIOD:
        return f"< {scenarios.SAMPLE_PERIOD:g} s"
    return f"{seconds:.1f} s"


def _typed(n: int) -> str:
    return f"{n} command{'s' if n != 1 else ''}"


def _time(outcome: Outcome) -> str:
    if outcome.upper_bound and outcome.seconds is not None:
        return f"≤ {max(outcome.seconds, scenarios.SAMPLE_PERIOD):.1f} s (no gap seen)"
    return _s(outcome.seconds)


def cell(outcome: Outcome, scenario: Scenario, *, marks: tuple[str, str] = ("✅", "❌")) -> str:
    """One cell of the main table: verdict, time, what a person typed."""
    if not outcome.applicable:
        return "n/a"
    if scenario.gate:
        return gate_cell(outcome, scenario, marks=marks)
    verb = "recovered" if scenario.faulty else "converged"
    if scenario.target.gone:
        verb = "all gone"
    if scenario.load:  # what the load asks for is an instance count
        verb = f"at {scenario.target.replicas}"
    typed = _typed(outcome.commands) + " typed"
    if outcome.recovered:
        text = f"{marks[0]} {verb} in {_time(outcome)} · {typed}"
    else:
        text = f"{marks[1]} not {verb.replace('all ', '')} within {scenario.window:g} s · {typed}"
        if outcome.repair_commands:
            text += (f"; then {_typed(outcome.repair_commands)} → "
                     + (f"{verb} {_s(outcome.repair_seconds)} later"
                        if outcome.repair_seconds is not None else f"still not {verb}"))
    if outcome.failed is not None:
        text += f" · {outcome.failed}/{outcome.requests} requests failed"
    return text


def gate_cell(outcome: Outcome, scenario: Scenario, *,
              marks: tuple[str, str] = ("✅", "❌")) -> str:
    """A gate's cell: refused before anything ran, or how many ran and how soon."""
    typed = _typed(outcome.commands) + " typed"
    if outcome.recovered:
        return f"{marks[0]} refused: nothing ran · {typed}"
    image = scenario.target.image
    return (f"{marks[1]} ran {outcome.peak} of {image}, the first {_s(outcome.seconds)} after "
            f"the command · {typed}")


def traffic_cell(outcome: Outcome, scenario: Scenario) -> str:
    if not scenario.traffic or not outcome.applicable:
        return "—"
    if outcome.engine == scenarios.SWARM.id:
        return NA_SWARM_TRAFFIC
    if outcome.failed is None:
        return "not measured"
    return f"{outcome.failed} of {outcome.requests}"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main_table(results: Sequence[Result]) -> str:
    engines = scenarios.ENGINES
    head = "| Scenario | " + " | ".join(e.title for e in engines) + " |"
    lines = [head, "|---" * (len(engines) + 1) + "|"]
    for result in results:
        by_engine = {o.engine: o for o in result.outcomes}
        cells = [cell(by_engine[e.id], result.scenario) if e.id in by_engine else "n/a"
                 for e in engines]
        lines.append(f"| {result.scenario.title} | " + " | ".join(map(_escape, cells)) + " |")
    return "\n".join(lines)


def details_table(results: Sequence[Result]) -> str:
    lines = ["| Scenario | Engine | Recovered / converged | Time | Commands typed | "
             "Lowest ready | Restarted in place | Requests failed | Notes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        s = result.scenario
        for o in result.outcomes:
            engine = scenarios.BY_ID[o.engine]
            if not o.applicable:
                lines.append(f"| {s.title} | {engine.title} | n/a | — | — | — | — | — | "
                             f"{_escape(o.note)} |")
                continue
            verdict = "yes" if o.recovered else "no"
            if s.gate:
                verdict = "refused: nothing ran" if o.recovered else f"no: {o.peak} ran"
            if not o.recovered and o.repair_commands:
                verdict += (f"; after {_typed(o.repair_commands)}: "
                            + (f"yes, {_s(o.repair_seconds)} later"
                               if o.repair_seconds is not None else "still no"))
            typed = "; ".join(f"`{c}`" for c in (*o.typed, *_repair(result, o.engine))) or "none"
            notes = "; ".join(n for n in (o.note, _engine_note(s, o.engine)) if n)
            lines.append(
                f"| {s.title} | {engine.title} | {verdict} | {_time(o)} | "
                f"{o.commands}{f' + {o.repair_commands}' if o.repair_commands else ''}: "
                f"{_escape(typed)} | {o.min_ready if o.min_ready is not None else '—'} | "
                f"{o.restarts if o.restarts is not None else '—'} | "
                f"{_escape(traffic_cell(o, s))} | {_escape(notes)} |")
    return "\n".join(lines)


def _repair(result: Result, engine: str) -> tuple[str, ...]:
    for t in result.timelines:
        if t.engine == engine:
            return tuple(c for m in t.markers if m.kind == "repair" for c in m.commands)
    return ()


def _engine_note(scenario: Scenario, engine: str) -> str:
    """What a reader needs to know to read one measurement right."""
    if engine == scenarios.SWARM.id and scenario.faulty and not scenario.controller_fault:
        return "Swarm waits its default --restart-delay (5 s) before replacing a task"
    if engine == scenarios.RESTART.id and scenario.id in ("kill-one", "drift"):
        return ("dockerd counts `docker kill` / `docker stop` as a manual stop: the restart "
                "policy does not apply")
    if engine == scenarios.RESTART.id and scenario.id == "delete-child":
        return "the restart policy went with the removed containers"
    if engine == scenarios.WATCH.id and scenario.id == "delete-app":
        return "the loop still has the file: it re-creates what `delete` removed until stopped"
    if engine == scenarios.OPERATOR.id and scenario.id in ("kill-one", "crash-one"):
        return ("the kubelet restarts the container in place (restartPolicy Always), not the "
                "operator; the pod serves again after its first passing readiness probe")
    if engine == scenarios.OPERATOR.id and scenario.id == "drift":
        return ("the operator puts the Deployment's replicas back; the new pods serve after "
                "their first passing readiness probe")
    if engine == scenarios.OPERATOR.id and scenario.id == "kill-controller":
        return "time from the restart; the running pods kept serving meanwhile"
    if engine == scenarios.WATCH.id and scenario.id == "kill-controller":
        return "time from the restart of the loop"
    if engine == scenarios.OPERATOR.id and scenario.id == "cut-off":
        return "time from the heal: each watch is opened again after its back-off"
    if engine == scenarios.OPERATOR.id and scenario.id == "throttled":
        return ("time from the change; each request refused is retried no sooner than its "
                "Retry-After asks")
    if scenario.id == "machine-dies":
        return {
            scenarios.OPERATOR.id: "simulated nodes (kwok): the node's lost heartbeat, the node "
            "controller's grace period, the eviction after rescheduleAfterSeconds and the new "
            "pods' placement are real; the containers are not",
            scenarios.RESTART.id: "dockerd starts what has a restart policy once it runs again",
            scenarios.SWARM.id: "a single-node swarm has no other node to place its tasks on",
        }.get(engine, "one host: nothing is left to act until its engine runs again")
    if engine == scenarios.WATCH.id and scenario.id == "cut-off":
        return "time from the heal: the loop tries the engine again on every poll"
    return ""


FOOTNOTES = f"""\
**Both sides run real processes.** The operator's pods are containers on the embedded cluster's
real node (kubelet, containerd and runc on this host; kwok's simulated nodes take no part), the
Docker engines' are containers of the Docker engine. A fault is the same on both: SIGKILL to the
main process of one instance's container. Every instance is probed every {scenarios.HEALTH_PERIOD} s
(the WebApp's readiness probe, Docker's health check), so a restarted or replaced instance
counts as ready at its first passing probe on either side; the node's kubelet caps its restart
back-off (`crashLoopBackOff` in docs/real-node.md), so repeated crashes are not slowed down more
than dockerd slows them. Requests on the Kubernetes side go to the Service's NodePort on
127.0.0.1: kube-proxy sends them to ready pods only.

How to read the rest:

- *recovered / converged in X s*: from the fault (or the command) until desired = actual = ready
  on the right image, every child object back, held for at least {scenarios.HOLD:g} s; sampled
  every {scenarios.SAMPLE_PERIOD:g} s, so ±{scenarios.SAMPLE_PERIOD:g} s. A fault's clock starts
  at the first sample that shows it (the same lag for every engine); *≤ X s (no gap seen)*: no
  sample ever showed it, the engine repaired it between two samples. *not within N s*: the
  observation window ended first.
- *commands typed*: commands a person typed for the change itself (a fault is not counted:
  nobody meant it); *then N commands*: what a person had to type afterwards to repair by hand.
- *requests failed*: real HTTP requests to 127.0.0.1, one at a time, at most
  {scenarios.RELEASE_RATE:g} a second during the releases and {scenarios.RATE:g} a second
  otherwise (the controller cut off): each waits for the answer to the one before, so a slow
  answer lowers the rate. In the releases the app takes {scenarios.STARTUP} s to listen after
  it starts (`STARTUP_SECONDS`), as an app that loads before it serves. Docker engines:
  round-robin over the containers Docker listed as ready at most 0.1 s earlier (a load
  balancer with health checks, refreshed ten times a second); a
  container removed between that listing and the request fails it: nothing drains connections
  in plain Docker. Kubernetes: the Service's NodePort as last sampled, kube-proxy balancing over
  the ready endpoints. No port (no Service, no ready container): the request counts as failed.
- *refused: nothing ran* (the policy row): no sample after the command showed an instance of
  the untrusted image; *ran N*: the most instances that ran at once, and when the first one
  ran. On Kubernetes the apiserver's answer is in the details' notes.
- *restarted in place*: restarts counted by the kubelet (`restartCount`) or dockerd
  (`RestartCount`) over the instances that exist at the end, minus those at the start.
- The engines run side by side on the same machine, so each time includes the others' load
  (the numbers of one run are comparable with each other; absolute values vary from run to
  run). A command is timed from when it is typed: its CLI's start-up counts.
- The twin's `--watch` polls every {scenarios.WATCH_INTERVAL:g} s (its default); the Swarm
  service rolls out with `--update-order start-first` (the WebApp's maxSurge 1 /
  maxUnavailable 0) and stops tasks with a 1 s grace period.
"""


def markdown(results: Sequence[Result], meta: Meta) -> str:
    mode = "quick subset" if meta.quick else "full matrix"
    parts = [
        "# Docker vs Kubernetes, measured",
        "",
        f"{meta.started} · {mode} · {meta.host} · Docker {meta.docker} · "
        f"Kubernetes {meta.kubernetes}, pods on the embedded cluster's real node · run took "
        f"{meta.seconds:.0f} s. "
        "Produced by `reconcile-lab compare`; every value below was measured in this run.",
        "",
        "Engines: " + "; ".join(f"**{e.title}**: {e.how}" for e in scenarios.ENGINES) + ".",
        "",
        main_table(results),
        "",
        FOOTNOTES,
        "## What was done",
        "",
        "| Scenario | Docker side | Kubernetes side |",
        "|---|---|---|",
        *(f"| {r.scenario.title} | {_escape(r.scenario.fault_docker)} | "
          f"{_escape(r.scenario.fault_kubernetes)} |" for r in results),
        "",
        "## Details",
        "",
        details_table(results),
        "",
        "## Timelines",
        "",
        *(f"![{r.scenario.title}]({r.plot})" for r in results if r.plot),
        "",
        "Raw samples, markers and requests: `results.json`.",
        "",
    ]
    return "\n".join(parts)


def to_json(results: Sequence[Result], meta: Meta) -> dict[str, Any]:
    return {
        "meta": meta._asdict(),
        "engines": [e._asdict() for e in scenarios.ENGINES],
        "scenarios": [{
            "id": r.scenario.id, "title": r.scenario.title, "plot": r.plot,
            "target": r.scenario.target._asdict(), "window": r.scenario.window,
            "steps": [s._asdict() for s in r.scenario.steps],
            "outcomes": [o._asdict() for o in r.outcomes],
            "timelines": [timeline.to_json(t) for t in r.timelines],
        } for r in results],
    }


def outcomes_from_json(data: Mapping[str, Any]) -> dict[tuple[str, str], Outcome]:
    """(scenario, engine) → outcome, read back from :func:`to_json`'s output."""
    found: dict[tuple[str, str], Outcome] = {}
    for s in data["scenarios"]:
        for o in s["outcomes"]:
            o = dict(o)
            o["typed"] = tuple(o["typed"])
            found[(s["id"], o["engine"])] = Outcome(**o)
    return found
