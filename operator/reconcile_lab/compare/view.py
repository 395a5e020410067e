"""The live view's frame: both engines side by side, computed from what was read.

``from_*`` functions turn raw API answers (WebApps, Events, Docker's container list and
events, the twin's metrics text) into a :class:`Frame`; :func:`render` turns a frame into a
rich renderable. Purely data: no I/O, no clock (``now`` is passed in), no client library.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from reconcile_lab.compare import timeline
from reconcile_lab.declarative import status as statuses
from reconcile_lab.imperative import containers as twins

LABEL_APP = "reconcile-lab/app"
LABEL_NAMESPACE = twins.LABEL_NAMESPACE  # the twin's containers: the WebApp's namespace
DRIFT_REASON = "DriftRepaired"
ACTIONS = 8  # lines of "last actions" per side
CHILD_KINDS = ("Deployment", "ReplicaSet", "Pod", "Service")  # whose events show who acted
# Docker events worth showing: what an engine (or a person) did to a container.
DOCKER_ACTIONS = ("create", "start", "die", "kill", "stop", "destroy", "restart")


class App(NamedTuple):
    name: str  # namespace/name on Kubernetes, name on Docker
    image: str
    desired: int | None  # None: nobody recorded it (plain Docker)
    actual: int
    ready: int
    status: str = ""


class Action(NamedTuple):
    when: float  # Unix time
    text: str
    warning: bool = False


class Instance(NamedTuple):
    """One pod or one container of an app."""

    app: str  # as in App.name
    name: str
    state: str  # Running, Pending, Terminating, CrashLoopBackOff…; Docker: its Status text
    ready: bool
    restarts: int
    created: float  # Unix time; 0: unknown


class Frame(NamedTuple):
    now: float
    kubernetes: tuple[App, ...] = ()
    docker: tuple[App, ...] = ()
    kubernetes_actions: tuple[Action, ...] = ()
    docker_actions: tuple[Action, ...] = ()
    kubernetes_repairs: tuple[Action, ...] = ()
    docker_repairs: float | None = None  # the --watch loop's drift corrections; None: no loop
    kubernetes_error: str = ""
    docker_error: str = ""
    docker_desired_from: str = ""  # where the Docker side's desired state came from
    kubernetes_instances: tuple[Instance, ...] = ()  # read only when asked (the web page)
    docker_instances: tuple[Instance, ...] = ()


# --- reading --------------------------------------------------------------------------------


def from_webapps(items: Iterable[Mapping[str, Any]]) -> tuple[App, ...]:
    """WebApps as their status reports them (what ``kubectl get webapps`` shows)."""
    apps = []
    for w in items:
        meta, spec, status = w.get("metadata", {}), w.get("spec", {}), w.get("status") or {}
        ready_cond = next((c for c in status.get("conditions") or []
                           if c.get("type") == "Ready"), None)
        apps.append(App(
            name=f"{meta.get('namespace', '')}/{meta.get('name', '')}",
            image=str(spec.get("image", "")), desired=int(spec.get("replicas", 1)),
            actual=int(status.get("replicas") or 0), ready=int(status.get("readyReplicas") or 0),
            status=str(ready_cond.get("reason", "")) if ready_cond else "no status yet"))
    return tuple(sorted(apps))


def from_events(items: Iterable[Mapping[str, Any]]) -> tuple[tuple[Action, ...], tuple[Action, ...]]:
    """(the last actions, the drift repairs) among Kubernetes events, newest first."""
    actions = []
    for e in items:
        obj = e.get("involvedObject", {})
        when = statuses.timestamp(e.get("lastTimestamp") or e.get("eventTime")
                     or e.get("metadata", {}).get("creationTimestamp"))
        text = f"{obj.get('namespace', '')}/{obj.get('name', '')} {e.get('reason', '')}: " \
               f"{e.get('message', '')}"
        actions.append(Action(when, text, warning=e.get("type") == "Warning"))
    actions.sort(key=lambda a: a.when, reverse=True)
    repairs = tuple(a for a in actions if f" {DRIFT_REASON}:" in a.text)
    return tuple(actions), repairs


def of_apps(items: Iterable[Mapping[str, Any]],
            apps: Iterable[App]) -> list[Mapping[str, Any]]:
    """The events of WebApps and of their children (named after them: ``NAME`` or
    ``NAME-…``), of the kinds that show an engine acting."""
    names = [a.name for a in apps]
    found = []
    for e in items:
        obj = e.get("involvedObject", {})
        kind, key = obj.get("kind"), f"{obj.get('namespace', '')}/{obj.get('name', '')}"
        if kind == "WebApp" or (kind in CHILD_KINDS and any(
                key == n or key.startswith(f"{n}-") for n in names)):
            found.append(e)
    return found


def _pod_state(pod: Mapping[str, Any]) -> str:
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status", {})
    for c in status.get("containerStatuses") or []:
        waiting = (c.get("state") or {}).get("waiting")
        if waiting:
            return str(waiting.get("reason") or "Waiting")
        terminated = (c.get("state") or {}).get("terminated")
        if terminated:
            return f"{terminated.get('reason') or 'Terminated'} ({terminated.get('exitCode')})"
    return str(status.get("phase") or "Pending")


def from_pods(items: Iterable[Mapping[str, Any]]) -> tuple[Instance, ...]:
    """Each pod of a WebApp (label ``reconcile-lab/app``), as ``kubectl get pods`` shows it."""
    found = []
    for pod in items:
        meta = pod.get("metadata", {})
        app = (meta.get("labels") or {}).get(LABEL_APP)
        if not app:
            continue
        found.append(Instance(
            app=f"{meta.get('namespace', '')}/{app}", name=str(meta.get("name", "")),
            state=_pod_state(pod), ready=timeline.pod_ready(pod),
            restarts=timeline.pod_restarts([pod]),
            created=statuses.timestamp(meta.get("creationTimestamp"))))
    return tuple(sorted(found))


def from_container_list(containers: Iterable[Mapping[str, Any]],
                        restarts: Mapping[str, int]) -> tuple[Instance, ...]:
    """Each labelled container; ``restarts`` by container id (from ``docker inspect``)."""
    found = []
    for c in containers:
        app = (c.get("Labels") or {}).get(LABEL_APP)
        if not app:
            continue
        names = c.get("Names") or ["?"]
        found.append(Instance(
            app=app, name=str(names[0]).lstrip("/"), state=str(c.get("Status") or c.get("State")),
            ready=timeline.container_ready(c), restarts=restarts.get(str(c.get("Id")), 0),
            created=float(c.get("Created") or 0)))
    return tuple(sorted(found))


def from_containers(containers: Iterable[Mapping[str, Any]],
                    desired: Mapping[str, int]) -> tuple[App, ...]:
    """The twin's apps, grouped by their label; ``desired`` from files or the loop's metrics."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for c in containers:
        app = (c.get("Labels") or {}).get(LABEL_APP)
        if app:
            groups.setdefault(app, []).append(c)
    for name in desired:
        groups.setdefault(name, [])
    apps = []
    for name, members in groups.items():
        counts = timeline.count_containers(members, "")
        images = sorted({str(c.get("Image", "")) for c in members if c.get("State") == "running"})
        apps.append(App(name=name, image=", ".join(images) or "-", desired=desired.get(name),
                        actual=counts.actual, ready=counts.ready,
                        status=f"{len(members) - counts.actual} stopped"
                        if len(members) > counts.actual else ""))
    return tuple(sorted(apps))


def from_docker_events(events: Iterable[Mapping[str, Any]]) -> tuple[Action, ...]:
    actions = []
    for e in events:
        verb = str(e.get("Action", e.get("status", ""))).split(":")[0]
        if verb not in DOCKER_ACTIONS:
            continue
        attrs = (e.get("Actor") or {}).get("Attributes") or {}
        name = attrs.get("name", "?")
        extra = f" (exit {attrs['exitCode']})" if verb == "die" and "exitCode" in attrs else ""
        when = float(e.get("timeNano", 0)) / 1e9 or float(e.get("time", 0))
        actions.append(Action(when, f"{name} {verb}{extra}", warning=verb in ("die", "kill")))
    actions.sort(key=lambda a: a.when, reverse=True)
    return tuple(actions)


_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)')


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Samples of one metric from the Prometheus text format."""
    found = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or m.group("name") != name:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group("labels") or ""))
        try:
            found.append((labels, float(m.group("value"))))
        except ValueError:
            continue
    return found


def from_twin_metrics(text: str) -> tuple[dict[str, int], float]:
    """(desired replicas per app, drift corrections so far) from the --watch loop's /metrics."""
    desired = {labels.get("app", ""): int(v) for labels, v in
               metric_samples(text, "reconcile_lab_desired_replicas")
               if labels.get("engine") == "docker"}
    repairs = sum(v for labels, v in metric_samples(text, "reconcile_lab_drift_corrections_total")
                  if labels.get("engine") == "docker")
    return desired, repairs


# --- rendering ------------------------------------------------------------------------------


def _clock(when: float) -> str:
    return datetime.datetime.fromtimestamp(when).strftime("%H:%M:%S") if when else "--:--:--"


def _apps_table(apps: Sequence[App], *, docker: bool) -> Table:
    table = Table(expand=True, box=None, header_style="bold")
    table.add_column("APP", no_wrap=True, overflow="ellipsis")
    table.add_column("IMAGE", no_wrap=True, overflow="ellipsis", min_width=12)
    for column in ("DESIRED", "ACTUAL", "READY"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("STATUS" if not docker else "NOTE", overflow="fold", min_width=16)
    for app in apps:
        desired = "?" if app.desired is None else str(app.desired)
        ok = app.desired is not None and app.ready == app.desired == app.actual
        style = "green" if ok else "yellow" if app.desired is None else "red"
        table.add_row(app.name, app.image, desired, str(app.actual),
                      Text(str(app.ready), style=style), app.status)
    if not apps:
        table.add_row("(none)", "", "", "", "", "")
    return table


def _actions(actions: Sequence[Action], empty: str) -> RenderableType:
    if not actions:
        return Text(empty, style="dim")
    lines = Text()
    for a in actions[:ACTIONS]:
        lines.append(f"{_clock(a.when)} ", style="dim")
        lines.append(a.text + "\n", style="red" if a.warning else "")
    return lines


def render(frame: Frame) -> RenderableType:
    """Both engines side by side, then the drift repairs."""
    if frame.kubernetes_error:
        left: RenderableType = Text(frame.kubernetes_error, style="red")
    else:
        left = Group(_apps_table(frame.kubernetes, docker=False),
                     Text("\nlast actions (events from the operator)", style="bold"),
                     _actions(frame.kubernetes_actions, "no events yet"))
    if frame.docker_error:
        right: RenderableType = Text(frame.docker_error, style="red")
    else:
        source = frame.docker_desired_from or ("Docker keeps no desired state: pass -f FILE, "
                                               "or run the twin with --watch")
        right = Group(_apps_table(frame.docker, docker=True),
                      Text(f"desired: {source}", style="dim"),
                      Text("\nlast actions (container events from the engine)", style="bold"),
                      _actions(frame.docker_actions, "no container events in the last 10 min"))
    grid = Table.grid(expand=True, padding=(0, 1))
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    grid.add_row(Panel(left, title="Kubernetes: the operator keeps WebApps true",
                       border_style="blue"),
                 Panel(right, title="Docker: the twin's labelled containers",
                       border_style="cyan"))
    k8s = (f"{len(frame.kubernetes_repairs)} DriftRepaired event(s), last at "
           f"{_clock(frame.kubernetes_repairs[0].when)}: {frame.kubernetes_repairs[0].text}"
           if frame.kubernetes_repairs else "none recorded (the events of the last hour)")
    docker = (f"{frame.docker_repairs:g} correction(s) by the --watch loop so far"
              if frame.docker_repairs is not None
              else "no --watch loop answers on 127.0.0.1:8001: nothing repairs drift")
    footer = Text()
    footer.append("drift repairs  ", style="bold")
    footer.append(f"Kubernetes: {k8s}\n               Docker: {docker}")
    return Group(grid, Panel(footer, border_style="dim",
                             subtitle=f"{_clock(frame.now)} · Ctrl-C to quit"))
