"""What one engine did during one scenario, and what that means.

A timeline is samples (desired vs actual vs ready, every ~100 ms), markers (a fault, a command
a person typed) and, where traffic is real, requests. :func:`analyse` turns it into an
:class:`Outcome`: recovered or not, how long it took, how many commands a person typed, how
many requests failed.

Purely data: times are seconds relative to the first step, passed in by the harness. No I/O,
no clock, no client library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from reconcile_lab.compare import scenarios
from reconcile_lab.compare.scenarios import Target


class Sample(NamedTuple):
    t: float
    desired: int | None  # what the engine believes is wanted; None: it keeps no record
    actual: int  # instances that exist and run (or are starting)
    ready: int  # instances ready to serve
    current: int  # ready instances on the target image
    children: int | None = None  # child objects that exist (Deployment, Service; network)


class Marker(NamedTuple):
    t: float
    label: str
    kind: str  # "fault", "command" (typed by a person), "edit" (a file), "repair", "note"
    commands: tuple[str, ...] = ()
    step: int = -1  # index of the scenario step it marks; -1: a repair or a note


class Request(NamedTuple):
    t: float
    ok: bool
    version: str = ""


class Timeline(NamedTuple):
    scenario: str
    engine: str
    app: str
    samples: tuple[Sample, ...]
    markers: tuple[Marker, ...]
    requests: tuple[Request, ...] = ()
    end: float = 0.0  # when observation stopped
    error: str = ""  # the run could not be carried out (the engine failed to set up…)
    child_kinds: int = 0  # how many child objects the engine keeps (2 on Kubernetes)


class Outcome(NamedTuple):
    scenario: str
    engine: str
    applicable: bool
    recovered: bool  # reached the target by itself (or after the commands of the scenario)
    seconds: float | None  # time to recover from the measured step; None when not recovered
    commands: int  # commands a person typed for the scenario itself
    typed: tuple[str, ...]  # what they were
    repair_commands: int  # commands a person had to type afterwards to get there
    repair_seconds: float | None  # time from that command to recovered
    min_ready: int | None  # lowest ready count between the first step and recovery
    requests: int | None  # requests sent (None: no real traffic here)
    failed: int | None
    note: str = ""


def matches(sample: Sample, target: Target, child_kinds: int = 0) -> bool:
    """Whether ``sample`` shows the target state reached (every child object back, too)."""
    if target.gone:
        return sample.actual == 0 and sample.ready == 0 and not sample.children
    return (sample.ready == target.replicas and sample.actual == target.replicas
            and sample.current == target.replicas
            and (sample.desired is None or sample.desired == target.replicas)
            and (sample.children is None or sample.children >= child_kinds))


def settled_at(samples: Sequence[Sample], target: Target, *, since: float,
               hold: float = scenarios.HOLD, end: float | None = None,
               child_kinds: int = 0) -> float | None:
    """The first time ≥ ``since`` from which every sample matches ``target`` up to the end,
    provided that stretch lasts at least ``hold`` seconds (or reaches ``end``)."""
    relevant = [s for s in samples if s.t >= since]
    if not relevant or not matches(relevant[-1], target, child_kinds):
        return None
    start = relevant[-1].t
    for sample in reversed(relevant):
        if not matches(sample, target, child_kinds):
            break
        start = sample.t
    last = end if end is not None else relevant[-1].t
    if last - start < hold and start > since:
        return None
    return start


def settled_between(samples: Sequence[Sample], target: Target, *, since: float, until: float,
                    hold: float = scenarios.HOLD, child_kinds: int = 0) -> float | None:
    """Like :func:`settled_at`, looking only at samples before ``until``."""
    return settled_at([s for s in samples if s.t < until], target, since=since, hold=hold,
                      end=until, child_kinds=child_kinds)


def _step_marks(timeline: Timeline) -> list[Marker]:
    return [m for m in timeline.markers if m.step >= 0]


def analyse(timeline: Timeline, scenario: scenarios.Scenario) -> Outcome:
    """The verdict for one engine in one scenario."""
    why = scenario.why_not(timeline.engine)
    if why is not None or timeline.error:
        return Outcome(timeline.scenario, timeline.engine, applicable=False, recovered=False,
                       seconds=None, commands=0, typed=(), repair_commands=0,
                       repair_seconds=None, min_ready=None, requests=None, failed=None,
                       note=why or f"not measured: {timeline.error}")
    target = scenario.target
    steps = _step_marks(timeline)
    repairs = [m for m in timeline.markers if m.kind == "repair"]
    starts = [m.t for m in steps if m.step == scenario.measure_from]
    start = starts[0] if starts else (steps[-1].t if steps else 0.0)
    first = steps[0].t if steps else 0.0
    # Recovery by itself: judged before any repair command was typed.
    until = repairs[0].t if repairs else timeline.end
    kinds = timeline.child_kinds
    at = settled_between(timeline.samples, target, since=start, until=until, child_kinds=kinds)
    typed = tuple(c for m in steps for c in m.commands if m.kind != "fault")
    repair_typed = tuple(c for m in repairs for c in m.commands)
    repair_seconds = None
    if repairs:
        after = settled_at(timeline.samples, target, since=repairs[0].t, end=timeline.end,
                           child_kinds=kinds)
        repair_seconds = None if after is None else round(max(0.0, after - repairs[0].t), 2)
    stop = at if at is not None else timeline.end
    during = [s.ready for s in timeline.samples if first <= s.t <= stop]
    real = [r for r in timeline.requests if r.t >= first]
    traffic = scenario.traffic and bool(timeline.requests)
    return Outcome(
        timeline.scenario, timeline.engine, applicable=True, recovered=at is not None,
        seconds=None if at is None else round(max(0.0, at - start), 2),
        commands=len(typed), typed=typed,
        repair_commands=len(repair_typed), repair_seconds=repair_seconds,
        min_ready=min(during) if during else None,
        requests=len(real) if traffic else None,
        failed=sum(1 for r in real if not r.ok) if traffic else None,
    )


# --- JSON -----------------------------------------------------------------------------------


def to_json(timeline: Timeline) -> dict[str, Any]:
    return {
        "scenario": timeline.scenario, "engine": timeline.engine, "app": timeline.app,
        "end": round(timeline.end, 3), "error": timeline.error,
        "child_kinds": timeline.child_kinds,
        "samples": [[round(s.t, 3), s.desired, s.actual, s.ready, s.current, s.children]
                    for s in timeline.samples],
        "sample_fields": list(Sample._fields),
        "markers": [m._asdict() | {"t": round(m.t, 3), "commands": list(m.commands)}
                    for m in timeline.markers],
        "requests": [[round(r.t, 3), r.ok, r.version] for r in timeline.requests],
        "request_fields": list(Request._fields),
    }


def from_json(data: Mapping[str, Any]) -> Timeline:
    return Timeline(
        scenario=data["scenario"], engine=data["engine"], app=data["app"],
        samples=tuple(Sample(*row) for row in data["samples"]),
        markers=tuple(Marker(m["t"], m["label"], m["kind"], tuple(m.get("commands", ())),
                             m.get("step", -1)) for m in data["markers"]),
        requests=tuple(Request(*row) for row in data.get("requests", ())),
        end=data.get("end", 0.0), error=data.get("error", ""),
        child_kinds=data.get("child_kinds", 0),
    )
