"""What the Docker twin prints: ``format_*`` returns the text, ``print_*`` writes it.

Steps as the ``docker`` commands a person would type, each step's outcome, a run's summary, and
``status``: desired vs actual, one row per container. Env values never appear (see ``MASK``).

Must not talk to Docker, decide what to change, or count metrics.
"""

from __future__ import annotations

import io
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from reconcile_lab import spec
from reconcile_lab.imperative import containers, plan, reports, steps


def format_step(step: steps.Step) -> str:
    return f"# {step.target}: {step.reason}\n{step.format()}"


def format_steps(todo: Sequence[steps.Step]) -> str:
    """The whole plan as a shell script a person could run (what --dry-run prints)."""
    return "\n".join(format_step(step) for step in todo)


def format_outcome(outcome: reports.Outcome) -> str:
    if outcome.skipped:
        return f"  skipped: {outcome.detail}"
    if not outcome.ok:
        return f"  FAILED: {outcome.detail}"
    if isinstance(outcome.step, steps.WaitReady):
        return f"  ready after {outcome.seconds:.1f}s"
    return ""


def format_summary(report: reports.Report) -> str:
    head = f"{report.app}: {report.ready}/{report.desired} ready"
    if report.conflict:
        return f"{head}; changed nothing: {report.conflict}"
    changed = steps.changes(report.steps)
    if report.dry_run:
        return (f"{head}; would run {len(changed)} docker command(s) (dry run, nothing changed)"
                if report.steps else f"{head}; nothing to do")
    if not report.steps:
        return f"{head}; nothing to do"
    took = f"{len(changed)} change(s) in {report.seconds:.1f}s"
    if report.converged:
        return f"{head}; {took}; converged"
    lines = [f"{head}; {took}; NOT converged"]
    lines += [f"  {name}: {why}" for name, why in report.problems.items()]
    return "\n".join(lines)


def format_deleted(report: reports.Report) -> str:
    if not report.steps:
        return f"{report.app}: nothing to delete"
    removed = sum(1 for o in report.outcomes if o.ok and isinstance(o.step, steps.Remove))
    network = any(o.ok and isinstance(o.step, steps.RemoveNetwork) for o in report.outcomes)
    text = f"{report.app}: removed {removed} container(s)" + (
        f" and the network {report.app}" if network else "")
    if steps.changes(report.remaining):
        text += "; still left: " + ", ".join(s.target for s in report.remaining)
    return text


def _render(renderable: Any) -> str:
    buffer = io.StringIO()
    width = max(100, shutil.get_terminal_size((120, 24)).columns)
    Console(file=buffer, width=width, color_system=None, highlight=False).print(renderable)
    return buffer.getvalue()


def format_status(name: str, seen: reports.Observation, app: spec.WebApp | None = None) -> str:
    """Desired vs actual, one row per container; without a file the desired state is unknown."""
    wanted = {c.name: c for c in containers.desired(app)} if app else {}
    ready = sum(1 for c in seen.containers if c.ready and (not app or c.name in wanted))
    network = ("yes" if seen.network_exists else
               "NOT OURS (no label)" if seen.network_foreign else "missing")
    desired = str(app.spec.replicas) if app else "unknown"
    head = (f"{name}: desired {desired} · running {sum(1 for c in seen.containers if c.running)}"
            f" · ready {ready} · network {name}: {network}\n")
    if not app:
        head += "  (Docker keeps no record of the desired state: pass -f FILE to compare)\n"
    table = Table()
    for column in ("CONTAINER", "STATE", "HEALTH", "IMAGE", "MATCHES SPEC", "URL"):
        table.add_column(column, overflow="fold")
    for c in seen.containers:
        if not app:
            matches = "?"
        elif c.name not in wanted:
            matches = "no: surplus"
        else:
            found = plan.differences(wanted[c.name], c)
            matches = "yes" if not found else "no: " + "; ".join(found)
        url = f"http://{containers.LOOPBACK}:{c.host_port}/" if c.host_port else "-"
        state = c.status if c.status != "exited" else f"exited ({c.exit_code})"
        table.add_row(c.name, state, c.health, c.image, matches, url)
    for missing in sorted(set(wanted) - {c.name for c in seen.containers}):
        table.add_row(missing, "missing", "-", wanted[missing].image, "no: missing", "-")
    text = head + _render(table)
    if app:
        todo = plan.plan(app, seen.containers, network_exists=seen.network_exists)
        if todo:
            text += "apply would:\n" + "\n".join(f"  {s.verb} {s.target}: {s.reason}"
                                                  for s in todo) + "\n"
        else:
            text += "in sync: apply would change nothing\n"
    return text


def print_text(text: str, *, file: TextIO | None = None) -> None:
    if text:
        print(text, file=file or sys.stdout, flush=True)


def print_step(step: steps.Step) -> None:
    print_text(format_step(step))


def print_outcome(outcome: reports.Outcome) -> None:
    print_text(format_outcome(outcome))


def print_status(name: str, seen: reports.Observation, app: spec.WebApp | None = None) -> None:
    sys.stdout.write(format_status(name, seen, app))
    sys.stdout.flush()


def print_waiting(path: Path) -> None:
    print_text(f"# waiting: another run holds {path}", file=sys.stderr)
