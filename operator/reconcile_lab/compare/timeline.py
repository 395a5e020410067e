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
    # "fault", "command" (typed by a person), "edit" (a file), "repair", "note", "figure"
    # (something the engine counted, e.g. requests refused: it goes into the outcome's note)
    kind: str
    commands: tuple[str, ...] = ()
    step: int = -1  # index of the scenario step it marks; -1: a repair or a note
    end: float | None = None  # a fault: when its command returned, i.e. it had happened

    @property
    def effective(self) -> float:
        """When the clock for "time to recover" starts: a fault once it has happened (how
        long ``kubectl`` takes to start is not the engine's reaction); a command when typed
        (its CLI's start-up is part of the wait)."""
        return self.end if self.kind == "fault" and self.end is not None else self.t


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
    restarts: int | None = None  # restarts in place during the scenario; None: not known


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
    # No sample ever showed the fault: recovery was faster than the sampling, and ``seconds``
    # (the time to the first sample) is an upper bound.
    upper_bound: bool = False
    clock_from: float = 0.0  # when the clock for ``seconds`` started (timeline time)
    restarts: int | None = None  # instances restarted in place (same pod, same container name)
    peak: int | None = None  # a gate: the most instances that ran at once (0: it held)


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
    if scenario.gate:
        return _gate(timeline, scenario)
    target = scenario.target
    steps = _step_marks(timeline)
    repairs = [m for m in timeline.markers if m.kind == "repair"]
    kinds = timeline.child_kinds
    mark = next((m for m in steps if m.step == scenario.measure_from), None)
    start = mark.effective if mark else (steps[-1].effective if steps else 0.0)
    seen: float | None = None
    if mark is not None and mark.kind == "fault":
        # The clock starts when a sample first shows the fault: the same ≤ 0.1 s lag for every
        # engine, whatever the time its command takes to start and return. A silent fault's
        # clock starts at the fault itself: noticing it is part of the time.
        seen = next((s.t for s in timeline.samples
                     if s.t >= mark.t and not matches(s, target, kinds)), None)
        start = seen if seen is not None and not scenario.silent else start
    first = steps[0].t if steps else 0.0
    # Recovery by itself: judged before any repair command was typed.
    until = repairs[0].t if repairs else timeline.end
    at = settled_between(timeline.samples, target, since=start if seen is None else seen,
                         until=until, child_kinds=kinds)
    if scenario.silent and seen is None:
        at = None  # never noticed: the engine still takes the dead instances for serving
    typed = tuple(c for m in steps if m.kind == "command" for c in m.commands)
    repair_typed = tuple(c for m in repairs for c in m.commands)
    repair_seconds = None
    if repairs:
        after = settled_at(timeline.samples, target, since=repairs[0].t, end=timeline.end,
                           child_kinds=kinds)
        repair_seconds = None if after is None else round(max(0.0, after - repairs[0].t), 2)
    # No sample after the fault ever showed it: the recovery was quicker than the sampling,
    # and all that is known is that it was done by the first sample after the fault.
    after_start = [s.t for s in timeline.samples if s.t > start]
    upper_bound = at is not None and seen is None and bool(after_start) \
        and at <= after_start[0]
    if upper_bound:
        at = after_start[0]
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
        upper_bound=upper_bound, clock_from=round(start, 3), restarts=timeline.restarts,
        note="; ".join(m.label for m in timeline.markers if m.kind == "figure"),
    )


def _gate(timeline: Timeline, scenario: scenarios.Scenario) -> Outcome:
    """A gate held when no instance ever ran after the step it guards; ``seconds`` is how long
    it took the first one to run when one did."""
    steps = _step_marks(timeline)
    mark = next((m for m in steps if m.step == scenario.measure_from), None)
    start = mark.t if mark is not None else 0.0
    after = [s for s in timeline.samples if s.t >= start]
    first = next((s.t for s in after if s.actual > 0), None)
    typed = tuple(c for m in steps if m.kind == "command" for c in m.commands)
    return Outcome(
        timeline.scenario, timeline.engine, applicable=True, recovered=first is None,
        seconds=None if first is None else round(max(0.0, first - start), 2),
        commands=len(typed), typed=typed, repair_commands=0, repair_seconds=None,
        min_ready=None, requests=None, failed=None, clock_from=round(start, 3),
        note="; ".join(m.label for m in timeline.markers if m.kind == "figure"),
        peak=max((s.actual for s in after), default=0))


class Tally(NamedTuple):
    """Requests counted: answered 200, failed, and the answers by the version they named."""

    ok: int
    failed: int
    versions: dict[str, int]


def tally(requests: Sequence[Request], *, since: float | None = None,
          until: float | None = None) -> Tally:
    """The requests sent in [since, until)."""
    chosen = [r for r in requests if (since is None or r.t >= since)
              and (until is None or r.t < until)]
    versions: dict[str, int] = {}
    for r in chosen:
        if r.ok and r.version:
            versions[r.version] = versions.get(r.version, 0) + 1
    ok = sum(1 for r in chosen if r.ok)
    return Tally(ok, len(chosen) - ok, dict(sorted(versions.items())))


# --- reading what the engines report --------------------------------------------------------


class Counts(NamedTuple):
    actual: int
    ready: int
    current: int  # ready and on the wanted image


def pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def count_pods(pods: Sequence[Mapping[str, Any]], image: str) -> Counts:
    """Pods from the API: terminating pods no longer count (their replacement does)."""
    live = [p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")
            and p.get("status", {}).get("phase") in ("Pending", "Running", None)]
    ready = [p for p in live if pod_ready(p)]
    current = [p for p in ready
               if any(c.get("image") == image for c in p.get("spec", {}).get("containers", []))]
    return Counts(len(live), len(ready), len(current))


def pod_restarts(pods: Sequence[Mapping[str, Any]]) -> int:
    """Restarts in place the kubelet counted, over the pods that exist (``restartCount``)."""
    return sum(int(c.get("restartCount") or 0) for p in pods
               for c in p.get("status", {}).get("containerStatuses") or [])


def node_port(service: Mapping[str, Any] | None) -> int | None:
    """The NodePort of a Service's first port (where it answers on 127.0.0.1), if any."""
    ports = ((service or {}).get("spec") or {}).get("ports") or [{}]
    port = ports[0].get("nodePort")
    return int(port) if port else None


def container_restarts(inspected: Sequence[Mapping[str, Any]]) -> int:
    """Restarts in place dockerd counted (``RestartCount`` of ``docker inspect``)."""
    return sum(int(c.get("RestartCount") or 0) for c in inspected)


def container_ready(container: Mapping[str, Any]) -> bool:
    """A container from Docker's list: running, and healthy when it has a health check."""
    status = str(container.get("Status", ""))
    return container.get("State") == "running" and "(health: starting)" not in status \
        and "(unhealthy)" not in status


def count_containers(containers: Sequence[Mapping[str, Any]], image: str) -> Counts:
    running = [c for c in containers if c.get("State") in ("running", "restarting")]
    ready = [c for c in running if container_ready(c)]
    current = [c for c in ready if c.get("Image") == image]
    return Counts(len(running), len(ready), len(current))


def loopback_port(container: Mapping[str, Any]) -> int | None:
    """The host port a container publishes on 127.0.0.1, if any."""
    for port in container.get("Ports") or []:
        if port.get("IP") == "127.0.0.1" and port.get("PublicPort"):
            return int(port["PublicPort"])
    return None


# --- JSON -----------------------------------------------------------------------------------


def to_json(timeline: Timeline) -> dict[str, Any]:
    return {
        "scenario": timeline.scenario, "engine": timeline.engine, "app": timeline.app,
        "end": round(timeline.end, 3), "error": timeline.error,
        "child_kinds": timeline.child_kinds, "restarts": timeline.restarts,
        "samples": [[round(s.t, 3), s.desired, s.actual, s.ready, s.current, s.children]
                    for s in timeline.samples],
        "sample_fields": list(Sample._fields),
        "markers": [m._asdict() | {"t": round(m.t, 3), "commands": list(m.commands),
                                   "end": None if m.end is None else round(m.end, 3)}
                    for m in timeline.markers],
        "requests": [[round(r.t, 3), r.ok, r.version] for r in timeline.requests],
        "request_fields": list(Request._fields),
    }


def from_json(data: Mapping[str, Any]) -> Timeline:
    return Timeline(
        scenario=data["scenario"], engine=data["engine"], app=data["app"],
        samples=tuple(Sample(*row) for row in data["samples"]),
        markers=tuple(Marker(m["t"], m["label"], m["kind"], tuple(m.get("commands", ())),
                             m.get("step", -1), m.get("end")) for m in data["markers"]),
        requests=tuple(Request(*row) for row in data.get("requests", ())),
        end=data.get("end", 0.0), error=data.get("error", ""),
        child_kinds=data.get("child_kinds", 0), restarts=data.get("restarts"),
    )
