"""A compare run played back: ``results.json`` (``compare.report.to_json``) as the page's frames.

:func:`scenarios` lists what the run measured; :func:`scenario` turns one scenario into the
replay's model: every engine's markers (faults, commands typed, repairs) on one time axis, the
outcome the report gave, and :func:`frames`, one every ``step`` seconds, each saying what every
engine showed then (:func:`at`: the last sample at or before that time, and the requests so
far). The page only draws frame after frame.

Purely data: no I/O, no clock, no client library.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from reconcile_lab.compare import timeline

STEP = 0.1  # seconds between frames: the harness samples about as often
MAX_FRAMES = 3000  # a long scenario gets a coarser step instead of a huge page


class ReplayError(ValueError):
    """The file is not what ``reconcile-lab compare`` writes."""


def check(data: Any, source: str) -> Mapping[str, Any]:
    """``data`` when it looks like a compare run's results.json, else a ReplayError saying why."""
    if not isinstance(data, Mapping) or not isinstance(data.get("scenarios"), list):
        raise ReplayError(f"{source}: not a results.json of `reconcile-lab compare` (no "
                          "'scenarios' list). fix: pass the results.json of a compare run, "
                          "e.g. out/compare/results.json after `make compare QUICK=1`")
    if not data["scenarios"]:
        raise ReplayError(f"{source}: the run measured no scenario; run `make compare QUICK=1`")
    return data


def scenarios(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the run measured: id, title, engines, in the run's order."""
    return [{"id": s["id"], "title": s.get("title", s["id"]),
             "engines": [t["engine"] for t in s.get("timelines", [])]}
            for s in data["scenarios"]]


def _find(data: Mapping[str, Any], scenario_id: str) -> Mapping[str, Any]:
    for s in data["scenarios"]:
        if s["id"] == scenario_id:
            return dict(s)
    raise KeyError(scenario_id)


def at(line: timeline.Timeline, t: float) -> dict[str, Any]:
    """What one engine showed at time ``t``: its last sample then (before its first, the first:
    engines start being sampled a few ms apart), and the requests so far."""
    times = [s.t for s in line.samples]
    i = max(0, bisect.bisect_right(times, t) - 1)
    sample = line.samples[i] if line.samples else None
    sent = [r for r in line.requests if r.t <= t]
    return {
        "desired": sample.desired if sample else None,
        "actual": sample.actual if sample else 0,
        "ready": sample.ready if sample else 0,
        "current": sample.current if sample else 0,
        "children": sample.children if sample else None,
        "requests": len(sent), "failed": sum(1 for r in sent if not r.ok),
        "version": next((r.version for r in reversed(sent) if r.ok and r.version), ""),
    }


def span(lines: Sequence[timeline.Timeline]) -> tuple[float, float]:
    """From the first sample of any engine to the end of the last one's observation."""
    starts = [ln.samples[0].t for ln in lines if ln.samples]
    ends = [max(ln.end, ln.samples[-1].t if ln.samples else 0.0) for ln in lines]
    return (min(starts, default=0.0), max(ends, default=0.0))


def frames(lines: Sequence[timeline.Timeline], step: float = STEP) -> list[dict[str, Any]]:
    """One frame every ``step`` seconds over :func:`span` (coarser past MAX_FRAMES)."""
    start, end = span(lines)
    step = max(step, (end - start) / MAX_FRAMES)
    count = round((end - start) / step) + 1 if end > start else 1
    return [{"t": round(start + k * step, 3),
             "engines": [at(ln, start + k * step) for ln in lines]} for k in range(count)]


def _markers(lines: Sequence[timeline.Timeline]) -> list[dict[str, Any]]:
    found = [{"t": m.t, "engine": ln.engine, "label": m.label, "kind": m.kind,
              "commands": list(m.commands)} for ln in lines for m in ln.markers]
    return sorted(found, key=lambda m: (m["t"], m["engine"]))


def _outcome(o: Mapping[str, Any] | None) -> str:
    if o is None:
        return ""
    if not o.get("applicable"):
        return f"n/a {o.get('note', '')}".strip()
    typed = f"{o.get('commands', 0)} command(s) typed"
    if o.get("recovered"):
        return f"recovered in {o.get('seconds')} s · {typed}"
    repair = f"; then {o['repair_commands']} more" if o.get("repair_commands") else ""
    return f"not recovered by itself · {typed}{repair}"


def scenario(data: Mapping[str, Any], scenario_id: str, step: float = STEP) -> dict[str, Any]:
    """The replay of one scenario (KeyError when the run has no such scenario)."""
    s = _find(data, scenario_id)
    lines = [timeline.from_json(t) for t in s.get("timelines", [])]
    titles = {e["id"]: e.get("title", e["id"]) for e in data.get("engines", [])}
    outcomes = {o["engine"]: o for o in s.get("outcomes", [])}
    start, end = span(lines)
    return {
        "id": s["id"], "title": s.get("title", s["id"]), "window": s.get("window"),
        "target": s.get("target", {}), "start": start, "end": end,
        "meta": dict(data.get("meta") or {}),
        "engines": [{"id": ln.engine, "title": titles.get(ln.engine, ln.engine),
                     "app": ln.app, "error": ln.error,
                     "outcome": _outcome(outcomes.get(ln.engine))} for ln in lines],
        "markers": _markers(lines),
        "frames": frames(lines, step),
    }
