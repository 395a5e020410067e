"""One run of the Docker twin for one app: take its lock, observe, plan, execute, report.

``apply`` executes the steps ``plan`` chose one by one through ``engine``: a failed container does
not stop the others, but a failed replacement halts the rest of a rollout, so that it never eats
capacity. ``delete`` removes exactly what an app owns. Two runs for the same app take turns (a
lock file per app, released when its process dies); Docker's unique container names are the
second guard against duplicates.

Decides nothing itself (``plan`` does), talks to Docker only through ``engine``, and prints
nothing (callers pass callbacks).
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from reconcile_lab import paths, spec
from reconcile_lab.imperative import containers, engine, plan, reports, steps


def ready_timeout(app: spec.WebApp) -> float:
    """Long enough for a healthy container to say so, short enough for a broken one to fail."""
    health = containers.health_of(app.spec)
    if health is None:
        return 20.0
    verdict = health.start_period + health.interval * (health.retries + 1) + health.timeout
    return float(max(20, verdict + 10))


def lock_path(docker_app: str) -> Path:
    return paths.state_dir() / "docker" / f"{docker_app}.lock"


@contextlib.contextmanager
def lock(docker_app: str, *, on_wait: Callable[[Path], None] | None = None) -> Iterator[None]:
    """One run per app at a time, across processes: flock is released when the process dies."""
    path = lock_path(docker_app)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def apply(eng: engine.Engine, app: spec.WebApp, *, timeout: float | None = None,
          dry_run: bool = False, on_step: Callable[[steps.Step], None] | None = None,
          on_outcome: Callable[[reports.Outcome], None] | None = None,
          on_wait: Callable[[Path], None] | None = None,
          project: str | None = None) -> reports.Report:
    """Observe, plan, execute step by step; a failed container does not stop the others,
    but a failed replacement halts the rest of the rollout (so it never eats capacity)."""
    started = time.monotonic()
    wait_for = timeout if timeout is not None else ready_timeout(app)
    name, namespace = containers.docker_name(app.name, app.namespace), containers.namespace_of(app)
    with lock(name, on_wait=on_wait):
        before = eng.observe(app.name, namespace)
        if before.network_foreign:
            return _report(app, [], [], before, started, conflict=(
                f"a network named {name} exists but is not labelled "
                f"{containers.LABEL_APP}={app.name}, {containers.LABEL_NAMESPACE}={namespace} "
                f"(fix: `docker network rm {name}` if it is unused, or rename the app)"))
        todo = plan.plan(app, before.containers, network_exists=before.network_exists,
                         project=project)
        if dry_run:
            return _report(app, todo, [], before, started, dry_run=True, project=project)
        outcomes: list[reports.Outcome] = []
        failed: list[str] = []  # failed earlier: not to be waited for
        left: list[str] = []  # old containers a halted rollout leaves alone
        halted = ""
        for step in todo:
            if halted and isinstance(step, steps.Replace) and step.rolling:
                left.append(step.target)
                outcomes.append(reports.Outcome(step, ok=False, skipped=True, problems=((
                    step.target, f"not replaced: rollout halted because {halted}"),)))
                continue
            if isinstance(step, steps.WaitReady) and set(step.names) <= set(left):
                continue  # the wait that followed a replacement that was skipped
            if on_step is not None:
                on_step(step)
            outcome = eng.execute(step, timeout=wait_for, failed=failed)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
            if not outcome.ok:
                failed.extend(n for n in outcome.failed if n not in failed)
                gates = isinstance(step, steps.WaitReady) or (
                    isinstance(step, steps.Replace) and step.rolling)
                if gates and not halted:
                    halted = f"{', '.join(outcome.failed)} did not become ready"
        after = eng.observe(app.name, namespace)
    return _report(app, todo, outcomes, after, started, project=project)


def _report(app: spec.WebApp, todo: list[steps.Step], outcomes: list[reports.Outcome],
            seen: reports.Observation, started: float, *, conflict: str = "",
            dry_run: bool = False, project: str | None = None) -> reports.Report:
    mine = {c.name for c in containers.desired(app)}
    return reports.Report(
        app=containers.docker_name(app.name, app.namespace), steps=todo, outcomes=outcomes,
        desired=app.spec.replicas,
        ready=sum(1 for c in seen.containers if c.name in mine and c.ready),
        containers=seen.containers,
        remaining=plan.plan(app, seen.containers, network_exists=seen.network_exists,
                            project=project),
        seconds=time.monotonic() - started, conflict=conflict, dry_run=dry_run,
    )


def strays(eng: engine.Engine, apps: Sequence[spec.WebApp],
           project: str) -> list[tuple[str, str]]:
    """(app, namespace) of the project's apps in the engine that ``apps`` no longer declare,
    in the namespaces ``apps`` are in (another namespace's project of the same name is not
    this one): what ``docker apply --prune`` removes (compose's ``--remove-orphans``)."""
    keep = {(a.name, containers.namespace_of(a)) for a in apps}
    scope = {namespace for _, namespace in keep}
    return sorted(m for m in eng.members(project) - keep if m[1] in scope)


def delete(eng: engine.Engine, app: str, namespace: str = containers.DEFAULT_NAMESPACE, *,
           on_step: Callable[[steps.Step], None] | None = None,
           on_outcome: Callable[[reports.Outcome], None] | None = None,
           on_wait: Callable[[Path], None] | None = None) -> reports.Report:
    """Remove exactly what ``app`` owns: its labelled containers and its labelled network."""
    started = time.monotonic()
    name = containers.docker_name(app, namespace)
    with lock(name, on_wait=on_wait):
        before = eng.observe(app, namespace)
        todo = plan.plan_delete(app, before.containers, network_exists=before.network_exists,
                                namespace=namespace)
        outcomes = []
        for step in todo:
            if on_step is not None:
                on_step(step)
            outcome = eng.execute(step, timeout=0)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
        after = eng.observe(app, namespace)
    left = plan.plan_delete(app, after.containers, network_exists=after.network_exists,
                            namespace=namespace)
    return reports.Report(app=name, steps=todo, outcomes=outcomes, desired=0, ready=0,
                          containers=after.containers, remaining=left,
                          seconds=time.monotonic() - started)
