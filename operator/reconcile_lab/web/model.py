"""The live page's model: what both engines show now, turned into the JSON the page draws.

:func:`page` takes one reading of the engines (``compare.view.Frame``, read by
``compare.live.Reader``), the exercise whose faults are buttons, and the commands pressed so
far (:class:`Run`), and returns a plain JSON-able dict. The page's script only draws it.

Purely data: no I/O, no clock (``now`` is in the frame), no client library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from reconcile_lab.compare import view
from reconcile_lab.workshop import buttons, catalog

WINDOW = 180.0  # seconds of the time axis: the last three minutes
EVENTS = 40  # at most this many events on the axis and in the list
OUTPUT = 2000  # characters of a command's output kept for the page


class Run(NamedTuple):
    """A button pressed: the command it ran, and how it ended (``exit`` None: still running)."""

    id: int
    t: float  # Unix time it started
    exercise: str
    label: str
    engine: str
    command: str  # as it ran (namespace and the twin's name filled in)
    exit: int | None = None
    output: str = ""
    ended: float | None = None


def age(seconds: float) -> str:
    """An age as ``kubectl get`` prints it: 45s, 3m12s, 2h5m, 3d."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s" if s < 600 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60}m"
    return f"{s // 86400}d"


def _health(app: view.App) -> str:
    """ok: what is wanted runs and serves; short: fewer ready; unknown: nobody recorded a wish."""
    if app.desired is None:
        return "unknown"
    return "ok" if app.ready == app.desired == app.actual else "short"


def _apps(apps: Sequence[view.App], instances: Sequence[view.Instance],
          now: float) -> list[dict[str, Any]]:
    found = []
    for app in apps:
        members = [i for i in instances if i.app == app.name]
        found.append({
            "name": app.name, "image": app.image, "desired": app.desired, "actual": app.actual,
            "ready": app.ready, "status": app.status, "health": _health(app),
            "instances": [{"name": i.name, "state": i.state, "ready": i.ready,
                           "restarts": i.restarts,
                           "age": age(now - i.created) if i.created else "?"}
                          for i in members],
        })
    return found


def _events(frame: view.Frame, runs: Sequence[Run]) -> list[dict[str, Any]]:
    since = frame.now - WINDOW
    events: list[dict[str, Any]] = [{"t": a.when, "engine": engine, "text": a.text, "warning": a.warning}
              for engine, actions in (("kubernetes", frame.kubernetes_actions),
                                      ("docker", frame.docker_actions))
              for a in actions if a.when >= since]
    events += [{"t": r.t, "engine": "you", "text": f"$ {r.command}", "warning": False}
               for r in runs if r.t >= since]
    events.sort(key=lambda e: e["t"], reverse=True)
    return events[:EVENTS]


def _run(run: Run) -> dict[str, Any]:
    state = "running" if run.exit is None else "ok" if run.exit == 0 else "failed"
    return {"id": run.id, "t": run.t, "exercise": run.exercise, "label": run.label,
            "engine": run.engine, "command": run.command, "state": state, "exit": run.exit,
            "output": run.output[-OUTPUT:]}


def fault_commands(number: str, namespace: str, copies: str = "") -> list[str]:
    """The commands an exercise's buttons run in ``namespace``, in the buttons' order (example
    files replaced by their copies for that namespace under ``copies``)."""
    return [catalog.in_namespace(f.command, namespace, copies) for f in buttons.faults(number)]


def exercise(number: str, namespace: str, copies: str = "") -> dict[str, Any]:
    """The exercise part of the page: its title and its buttons with their commands."""
    entry = catalog.find(number)
    return {
        "number": entry.number, "title": entry.title, "goal": entry.goal,
        "readme": f"{entry.directory}/README.md", "namespace": namespace,
        "faults": [{"index": i, "label": f.label, "engine": f.engine, "command": command}
                   for i, (f, command) in enumerate(zip(buttons.faults(number),
                                                        fault_commands(number, namespace,
                                                                       copies),
                                                        strict=True))],
    }


def current_exercise(started: dict[str, tuple[float | None, bool]]) -> str:
    """The exercise to show: the one started last and not done; else the first not done (with
    buttons); else the first. ``started``: number → (when it was started, whether it is done)."""
    with_faults = [e.number for e in catalog.ENTRIES if buttons.faults(e.number)]
    open_ = [(t, n) for n, (t, done) in started.items() if t is not None and not done
             and n in with_faults]
    if open_:
        return max(open_)[1]
    return next((n for n in with_faults if not started.get(n, (None, False))[1]), with_faults[0])


def page(frame: view.Frame, *, number: str, namespace: str, runs: Sequence[Run],
         desired_hint: str = "", copies: str = "") -> dict[str, Any]:
    """Everything the live page shows, as JSON."""
    docker_from = frame.docker_desired_from or desired_hint or (
        "Docker keeps no desired state: pass -f FILE, or run the twin with --watch")
    return {
        "now": frame.now,
        "window": WINDOW,
        "engines": [
            {"id": "kubernetes", "title": "Kubernetes: the operator keeps WebApps true",
             "error": frame.kubernetes_error,
             "apps": _apps(frame.kubernetes, frame.kubernetes_instances, frame.now),
             "note": f"{len(frame.kubernetes_repairs)} DriftRepaired event(s) in the last hour"},
            {"id": "docker", "title": "Docker: the twin's labelled containers",
             "error": frame.docker_error,
             "apps": _apps(frame.docker, frame.docker_instances, frame.now),
             "note": f"desired: {docker_from}"
             + ("" if frame.docker_repairs is None
                else f" · {frame.docker_repairs:g} correction(s) by the --watch loop")},
        ],
        "events": _events(frame, runs),
        "exercise": exercise(number, namespace, copies),
        "exercises": [{"number": e.number, "title": e.title} for e in catalog.ENTRIES
                      if buttons.faults(e.number)],
        "runs": [_run(r) for r in sorted(runs, key=lambda r: r.id, reverse=True)[:10]],
    }
