"""Prometheus metrics, one family for both engines.

Every ``reconcile_lab_*`` series carries ``engine="kubernetes"`` or ``engine="docker"`` so that
one Grafana panel shows both side by side. The operator also exports the controller-runtime
names that kubebuilder's dashboards query. Metrics live in the default registry, which also
carries the process_* series (CPU, memory) for free.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import prometheus_client as prom

# The *_created series double every counter and no dashboard here reads them.
prom.disable_created_metrics()  # type: ignore[no-untyped-call]

KUBERNETES = "kubernetes"
DOCKER = "docker"
CONTROLLER = "webapp"

_APP = ("engine", "namespace", "app")
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

desired_replicas = prom.Gauge(
    "reconcile_lab_desired_replicas", "Replicas the WebApp asks for.", _APP)
ready_replicas = prom.Gauge(
    "reconcile_lab_ready_replicas", "Replicas ready to serve, as last observed.", _APP)
reconciliations = prom.Counter(
    "reconcile_lab_reconciliations", "Reconciliations by result (success, error, conflict).",
    ("engine", "result"))
reconcile_duration = prom.Histogram(
    "reconcile_lab_reconcile_duration_seconds", "Time one reconciliation took.", ("engine",),
    buckets=_BUCKETS)
drift_corrections = prom.Counter(
    "reconcile_lab_drift_corrections",
    "Children found different from the spec (or missing) and put back, by kind.",
    ("engine", "kind"))
time_to_converge = prom.Histogram(
    "reconcile_lab_time_to_converge_seconds",
    "From a change of the desired state being seen to every replica ready.", ("engine",),
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300))
writes = prom.Counter(
    "reconcile_lab_writes", "Writes the engine made to reach the desired state, by kind and verb.",
    ("engine", "kind", "verb"))

# controller-runtime compatible names, so kubebuilder-generated dashboards work as they are.
cr_reconcile_total = prom.Counter(
    "controller_runtime_reconcile", "Total number of reconciliations per controller.",
    ("controller", "result"))
cr_reconcile_errors = prom.Counter(
    "controller_runtime_reconcile_errors", "Total number of reconciliation errors per controller.",
    ("controller",))
cr_reconcile_time = prom.Histogram(
    "controller_runtime_reconcile_time_seconds", "Length of time per reconciliation per controller.",
    ("controller",), buckets=_BUCKETS)
cr_active_workers = prom.Gauge(
    "controller_runtime_active_workers", "Number of currently used workers per controller.",
    ("controller",))
cr_max_concurrent = prom.Gauge(
    "controller_runtime_max_concurrent_reconciles",
    "Maximum number of concurrent reconciles per controller.", ("controller",))


def forget_app(engine: str, namespace: str, app: str) -> None:
    for gauge in (desired_replicas, ready_replicas):
        with contextlib.suppress(KeyError):
            gauge.remove(engine, namespace, app)


def set_replicas(engine: str, namespace: str, app: str, *, desired: int, ready: int) -> None:
    desired_replicas.labels(engine, namespace, app).set(desired)
    ready_replicas.labels(engine, namespace, app).set(ready)


@contextlib.contextmanager
def timed_reconcile(engine: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        reconcile_duration.labels(engine).observe(elapsed)
        if engine == KUBERNETES:
            cr_reconcile_time.labels(CONTROLLER).observe(elapsed)


def count_reconcile(engine: str, result: str) -> None:
    """result: success | error | conflict (a child we do not own)."""
    reconciliations.labels(engine, result).inc()
    if engine == KUBERNETES:
        cr_reconcile_total.labels(CONTROLLER, "error" if result == "error" else "success").inc()
        if result == "error":
            cr_reconcile_errors.labels(CONTROLLER).inc()


def serve(port: int, addr: str = "127.0.0.1") -> None:
    """Expose /metrics on addr:port in a background thread."""
    prom.start_http_server(port, addr=addr)


def render_text() -> str:
    return prom.generate_latest().decode()


def write_textfile(path: str) -> None:
    """Record a one-shot run: node-exporter's textfile format, written atomically."""
    prom.write_to_textfile(path, prom.REGISTRY)
