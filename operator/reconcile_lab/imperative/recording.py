"""What the Docker twin counts and logs: the shared ``reconcile_lab_*`` metrics with
``engine="docker"``, and one structlog event per run, bound to namespace and name.

So one Grafana panel shows both engines side by side (the operator records the same names).

Must not talk to Docker, print, or decide what to change.
"""

from __future__ import annotations

from reconcile_lab import spec
from reconcile_lab.imperative import containers, engine, reports, steps
from reconcile_lab.observe import logs, metrics


def record(app: spec.WebApp, report: reports.Report, *, drift: bool = False) -> None:
    """The shared reconcile_lab_* family, engine="docker". drift: the spec did not change, so
    every change was a correction of the world."""
    metrics.set_replicas(metrics.DOCKER, containers.namespace_of(app), app.name,
                         desired=report.desired, ready=report.ready)
    result = "success" if report.converged else "conflict" if report.conflict else "error"
    metrics.count_reconcile(metrics.DOCKER, result)
    metrics.reconcile_duration.labels(metrics.DOCKER).observe(report.seconds)
    for outcome in report.outcomes:
        step = outcome.step
        if not outcome.ok or isinstance(step, steps.WaitReady):
            continue
        metrics.writes.labels(metrics.DOCKER, step.kind, step.verb).inc()
        if drift or step.drift:
            metrics.drift_corrections.labels(metrics.DOCKER, step.kind).inc()


def record_converged(seconds: float) -> None:
    """How long the app took from the first difference seen to converged."""
    metrics.time_to_converge.labels(metrics.DOCKER).observe(seconds)


def log_report(app: spec.WebApp, report: reports.Report) -> None:
    log = logs.get(engine=metrics.DOCKER, namespace=containers.namespace_of(app), name=app.name)
    fields = {"desired": report.desired, "ready": report.ready,
              "changes": len(steps.changes(report.steps)), "seconds": round(report.seconds, 3)}
    if report.converged:
        log.info("converged", **fields)
    else:
        log.warning("not converged", failed=report.failed, conflict=report.conflict or None,
                    **fields)


def record_deleted(name: str, namespace: str, report: reports.Report) -> None:
    """An app gone: its series go too, and every removal counts as a write."""
    metrics.forget_app(metrics.DOCKER, namespace, name)
    for outcome in report.outcomes:
        if outcome.ok:
            metrics.writes.labels(metrics.DOCKER, outcome.step.kind, "delete").inc()
    logs.get(engine=metrics.DOCKER, namespace=namespace, name=name).info(
        "deleted", removed=sum(1 for o in report.outcomes if o.ok))


def record_engine_error(app: spec.WebApp, error: engine.EngineError, *, retry_in: float) -> None:
    metrics.count_reconcile(metrics.DOCKER, "error")
    logs.get(engine=metrics.DOCKER, namespace=containers.namespace_of(app), name=app.name).error(
        "engine error", error=str(error), status=error.status, retry_in=retry_in)
