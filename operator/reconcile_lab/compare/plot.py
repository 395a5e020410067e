"""Timelines as pictures a participant reads without explanation (matplotlib → PNG files).

One figure per scenario: a panel per engine on a shared time axis, desired vs actual vs ready,
every fault and typed command as a labelled vertical line, the recovery shaded, failed requests
as red crosses. A summary figure puts the times to recover side by side.

An output adapter: it writes files and decides nothing (verdicts come from ``timeline``).
Uses matplotlib's object API (no pyplot): no global state, safe next to the harness's threads.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from reconcile_lab.compare import report, scenarios, timeline

COLOURS = {"desired": "#555555", "actual": "#1f77b4", "ready": "#2ca02c",
           "current": "#9467bd", "fault": "#d62728", "command": "#1f5fbf", "edit": "#7f7f7f",
           "repair": "#ff7f0e", "note": "#7f7f7f", "failed": "#d62728"}
MARKER_PREFIX = {"fault": "fault: ", "command": "typed: ", "edit": "file edited: ",
                 "repair": "", "note": ""}


def _steps(ax: Axes, times: list[float], values: list[float], **kwargs: object) -> None:
    ax.step(times, values, where="post", **kwargs)  # type: ignore[arg-type]


def _panel(ax: Axes, tl: timeline.Timeline, outcome: timeline.Outcome,
           scenario: scenarios.Scenario, xmax: float, ymax: int) -> None:
    engine = scenarios.BY_ID[tl.engine]
    ax.set_ylim(-0.9, ymax + 1.6)
    ax.set_yticks(range(0, ymax + 1))
    ax.grid(axis="y", alpha=0.25)
    ax.set_ylabel("instances")
    if not outcome.applicable:
        ax.set_yticks([])
        ax.set_ylabel("")
        ax.grid(False)
        ax.set_title(f"{engine.title}: not measured", loc="left", fontsize=10,
                     fontweight="bold", color="#555555")
        ax.text(xmax / 2, ymax / 2, "\n".join(textwrap.wrap(outcome.note, 110)),
                ha="center", va="center", fontsize=9, color="#555555")
        return
    samples = tl.samples
    t = [s.t for s in samples]
    if samples:
        desired = [s.desired if s.desired is not None else float("nan") for s in samples]
        _steps(ax, t, desired, color=COLOURS["desired"], linestyle="--", linewidth=2.2)
        _steps(ax, t, [s.actual for s in samples], color=COLOURS["actual"], linewidth=1.6)
        _steps(ax, t, [s.ready for s in samples], color=COLOURS["ready"], linewidth=2.6,
               alpha=0.85)
        if any(step.action == "rollout" for step in scenario.steps):
            _steps(ax, t, [s.current for s in samples], color=COLOURS["current"],
                   linestyle=":", linewidth=2.2)
    for m, row in _label_rows(tl.markers, xmax):
        colour = COLOURS.get(m.kind, "#7f7f7f")
        ax.axvline(m.t, color=colour, linestyle="-" if m.kind == "fault" else "--",
                   linewidth=1.6 if m.kind in ("fault", "repair") else 1.1)
        if m.kind == "fault" and m.end is not None and m.end > m.t:
            ax.axvspan(m.t, m.end, color=colour, alpha=0.25)  # the fault's command running
        if row is not None:
            ax.text(m.t + xmax * 0.004, ymax + 1.35 - 0.42 * row,
                    MARKER_PREFIX.get(m.kind, "") + m.label, color=colour, fontsize=8,
                    va="center", ha="left")
    down = [m.t for m in tl.markers if m.label in (scenarios.KILL_CONTROLLER.label,
                                                    scenarios.RESTART_CONTROLLER.label)]
    if len(down) == 2:
        ax.axvspan(down[0], down[1], color="#7f7f7f", alpha=0.15)
        ax.text((down[0] + down[1]) / 2, 0.35, "controller down:\nthe change waits",
                ha="center", va="center", fontsize=8, color="#444444")
    start = outcome.clock_from
    failed = [r.t for r in tl.requests if not r.ok and r.t >= 0]
    if failed:
        ax.plot(failed, [-0.5] * len(failed), "x", color=COLOURS["failed"], markersize=5)
    if outcome.recovered and outcome.seconds is not None:
        ax.axvspan(start, start + outcome.seconds, color=COLOURS["ready"], alpha=0.10)
    elif scenario.faulty or not outcome.recovered:
        ax.axvspan(start, tl.end, color=COLOURS["fault"], alpha=0.06)
    ax.set_title(f"{engine.title}:  {report.cell(outcome, scenario, marks=('✔', '✘'))}",
                 loc="left", fontsize=10,
                 fontweight="bold",
                 color="#1a7f1a" if outcome.recovered else "#b22222")


def _label_rows(markers: Sequence[timeline.Marker],
                xmax: float) -> list[tuple[timeline.Marker, int | None]]:
    """A text row for each marker's label (three rows; None: a repeat, drawn without text), so
    that labels of markers close in time never overlap."""
    placed: list[tuple[timeline.Marker, int | None]] = []
    ends = [float("-inf")] * 3  # where the last label of each row ends, in seconds
    previous = ""
    for m in markers:
        text = MARKER_PREFIX.get(m.kind, "") + m.label
        if text == previous:
            placed.append((m, None))
            continue
        previous = text
        width = len(text) * xmax * 0.0062  # ~ the width of an 8-point label on this axis
        row = next((r for r in range(3) if ends[r] < m.t), None)
        if row is None:
            row = min(range(3), key=lambda r: ends[r])
        ends[row] = m.t + width
        placed.append((m, row))
    return placed


def scenario(result: report.Result, path: Path) -> Path:
    """One PNG: every engine's timeline for one scenario, one above the other."""
    s = result.scenario
    pairs = list(zip(result.timelines, result.outcomes, strict=True))
    ends = [t.end for t in result.timelines if t.samples] or [s.window]
    xmax = max(max(ends), s.window) + 0.5
    ymax = max([s.target.replicas, scenarios.REPLICAS, 5 if s.id in ("scale", "kill-controller")
                else 0] + [max((x.actual for x in t.samples), default=0)
                           for t in result.timelines])
    # A panel with nothing measured needs only room for its reason.
    heights = [1.0 if o.applicable else 0.4 for _, o in pairs]
    fig = Figure(figsize=(13, 2.3 * sum(heights) + 1.9), dpi=100, layout="constrained")
    axes = fig.subplots(len(pairs), 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, (tl, outcome) in zip(axes, pairs, strict=True):
        _panel(ax, tl, outcome, s, xmax, ymax)
        ax.set_xlim(-scenarios.SAMPLE_PERIOD - 1.0, xmax)
    axes[-1].set_xlabel("seconds since the first fault or command (sampled every 0.1 s)")
    fig.suptitle("\n".join([
        f"{s.title.upper()}: desired vs actual vs ready, per engine",
        *textwrap.wrap(f"Docker: {s.fault_docker.replace('`', '')}", 140),
        *textwrap.wrap(f"Kubernetes: {s.fault_kubernetes.replace('`', '')}", 140)]),
        fontsize=11)
    handles = [
        Line2D([], [], color=COLOURS["desired"], linestyle="--", linewidth=2.2,
               label="desired (what was asked for)"),
        Line2D([], [], color=COLOURS["actual"], linewidth=1.6, label="actual (instances running)"),
        Line2D([], [], color=COLOURS["ready"], linewidth=2.6, label="ready (serving)"),
        Patch(color=COLOURS["fault"], alpha=0.5, label="fault (its command running)"),
        Line2D([], [], color=COLOURS["command"], linestyle="--", label="command a person typed"),
        Line2D([], [], color=COLOURS["repair"], linestyle="--", label="repair typed by hand"),
        Patch(color=COLOURS["ready"], alpha=0.2, label="time to recover / converge"),
    ]
    if any(step.action == "rollout" for step in s.steps):
        handles.insert(3, Line2D([], [], color=COLOURS["current"], linestyle=":", linewidth=2.2,
                                 label="ready on the target version"))
    if any(t.requests for t in result.timelines):
        handles.append(Line2D([], [], color=COLOURS["failed"], marker="x", linestyle="",
                              label="failed request (HTTP to 127.0.0.1)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=9, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def summary(results: Sequence[report.Result], path: Path) -> Path:
    """Time to recover (or converge), scenario by scenario, engine by engine."""
    engines = scenarios.ENGINES
    fig = Figure(figsize=(13, 1.1 * len(results) + 2.4), dpi=100, layout="constrained")
    ax = fig.subplots()
    height = 0.8 / len(engines)
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#8c564b", "#9467bd"]
    limit = max([r.scenario.window for r in results] or [10.0])
    for row, result in enumerate(results):
        by_engine = {o.engine: o for o in result.outcomes}
        for k, engine in enumerate(engines):
            y = row + (k - (len(engines) - 1) / 2) * height
            o = by_engine.get(engine.id)
            if o is None or not o.applicable:
                ax.text(0.1, y, "n/a", va="center", fontsize=7, color="#777777")
                continue
            typed = f"{o.commands} typed"
            if result.scenario.gate:  # no time to recover: refused, or ran
                text = report.gate_cell(o, result.scenario, marks=("", "")).strip()
                ax.text(0.1, y, text, va="center", fontsize=7,
                        color="#2ca02c" if o.recovered else "#b22222")
            elif o.recovered and o.seconds is not None:
                ax.barh(y, max(o.seconds, 0.05), height=height * 0.9, color=colours[k])
                bound = "≤ " if o.upper_bound else ""
                ax.text(max(o.seconds, 0.05) + 0.15, y, f"{bound}{o.seconds:.1f} s · {typed}",
                        va="center", fontsize=7)
            else:
                ax.barh(y, result.scenario.window, height=height * 0.9, color="none",
                        edgecolor=colours[k], hatch="///")
                by_hand = (f"; {o.repair_commands} more typed by hand"
                           if o.repair_commands else "")
                ax.text(result.scenario.window + 0.15, y,
                        f"not within {result.scenario.window:g} s · {typed}{by_hand}",
                        va="center", fontsize=7, color="#b22222")
    ax.set_yticks(range(len(results)))
    ax.set_yticklabels([r.scenario.title for r in results], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, limit + 12)
    ax.set_xlabel("seconds to recover or converge (hatched: not recovered within the window)")
    ax.grid(axis="x", alpha=0.25)
    ax.legend(handles=[Patch(color=c, label=e.title) for c, e in zip(colours, engines,
                                                                       strict=True)],
              loc="lower right", fontsize=8)
    ax.set_title("Docker vs Kubernetes: time to recover, measured (shorter is better)",
                 fontsize=12, fontweight="bold")
    fig.text(0.005, 0.003, "Real processes on both sides (the operator's pods on the cluster's "
             "real node). n/a: not measurable for that engine (comparison.md says why).",
             fontsize=8, color="#555555")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
