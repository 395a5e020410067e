"""Prometheus metrics, one family for both engines.

Every ``reconcile_lab_*`` series carries ``engine="kubernetes"`` or ``engine="docker"`` so that
one Grafana panel shows both side by side. The operator also exports the controller-runtime
names that kubebuilder's dashboards query (``controller_runtime_*`` and client-go's
``workqueue_*``). Metrics live in the default registry, which also
carries the process_* series (CPU, memory) for free.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping

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
api_errors = prom.Counter(
    "reconcile_lab_api_errors",
    "Requests to the Kubernetes API that failed, by HTTP status (0: no answer came back).",
    ("engine", "code"))
# Created at zero: refused (403), not found (404), conflict (409), invalid (422), server
# errors, and no answer at all (0).
API_ERROR_CODES = ("0", "403", "404", "409", "422", "429", "500", "503")

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


# client-go's workqueue metrics, as controller-runtime exports them, for the one queue this
# operator has: triggers of one WebApp waiting for its lock (one reconcile at a time per key).
# kopf queues each object's events before that, out of sight: depth and queue time are a
# lower bound. Retries are the failed reconciles put back with backoff.
_WQ = ("controller", "name")
_WQ_BUCKETS = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1000)
wq_depth = prom.Gauge("workqueue_depth", "Current depth of workqueue.", _WQ)
wq_adds = prom.Counter("workqueue_adds", "Total number of adds handled by workqueue.", _WQ)
wq_queue_duration = prom.Histogram(
    "workqueue_queue_duration_seconds",
    "How long in seconds an item stays in workqueue before being requested.", _WQ,
    buckets=_WQ_BUCKETS)
wq_work_duration = prom.Histogram(
    "workqueue_work_duration_seconds", "How long in seconds processing an item from workqueue takes.",
    _WQ, buckets=_WQ_BUCKETS)
wq_unfinished = prom.Gauge(
    "workqueue_unfinished_work_seconds",
    "How many seconds of work has been done that is in progress and hasn't been observed by "
    "work_duration. Large values indicate stuck threads.", _WQ)
wq_longest = prom.Gauge(
    "workqueue_longest_running_processor_seconds",
    "How many seconds has the longest running processor for workqueue been running.", _WQ)
wq_retries = prom.Counter("workqueue_retries", "Total number of retries handled by workqueue.", _WQ)
_working: dict[object, float] = {}  # reconciles in progress → when they started

# Every label value an engine can produce, created at zero on start-up: a series that appears
# at its first increment hides that increment from rate() and increase().
DRIFT_KINDS = {KUBERNETES: ("Deployment", "Service", "HorizontalPodAutoscaler"),
               DOCKER: ("Container", "Network")}
WRITE_KINDS = {
    KUBERNETES: (*((kind, verb) for kind in ("Deployment", "Service")
                   for verb in ("create", "apply", "patch")),
                 *(("HorizontalPodAutoscaler", verb) for verb in ("create", "apply", "delete")),
                 ("WebApp", "status")),
    DOCKER: (*(("Container", verb) for verb in ("create", "start", "restart", "delete", "replace")),
             ("Network", "create"), ("Network", "delete")),
}
# success; conflict: a child someone else owns is in the way; invalid: a spec the CRD should
# have refused; stale: a write refused because the child changed meanwhile (requeued at once);
# error: a failed write or read, retried with back-off.
RESULTS = ("success", "error", "conflict", "invalid", "stale")
# controller-runtime's result label: everything but success and an immediate requeue is an
# error, so kubebuilder's dashboards show a Degraded WebApp as errors.
_CR_RESULT = {"success": "success", "stale": "requeue"}


def init_engine(engine: str) -> None:
    """Create the engine's series at zero, so the first event of each kind shows in a rate."""
    for result in RESULTS:
        reconciliations.labels(engine, result)
    for kind in DRIFT_KINDS[engine]:
        drift_corrections.labels(engine, kind)
    for kind, verb in WRITE_KINDS[engine]:
        writes.labels(engine, kind, verb)
    reconcile_duration.labels(engine)
    time_to_converge.labels(engine)
    if engine == KUBERNETES:
        for code in API_ERROR_CODES:
            api_errors.labels(engine, code)


state_entries = prom.Gauge(
    "reconcile_lab_state_entries",
    "What the operator keeps per WebApp, by table (the controller's per-key state, the writes "
    "it remembers until the watch shows them, the WebApps in its store): back to 0 when no "
    "WebApp is left.", ["table"])


def track_state(read: Callable[[], Mapping[str, int]]) -> None:
    """Read at every scrape: ``read()`` maps each table to how many entries it holds."""
    def reader(table: str) -> Callable[[], float]:
        return lambda: read()[table]

    for table in read():
        state_entries.labels(table).set_function(reader(table))


def init_controller(max_concurrent: int) -> None:
    """The operator's series at zero, as controller-runtime creates them with the controller."""
    init_engine(KUBERNETES)
    cr_max_concurrent.labels(CONTROLLER).set(max_concurrent)
    cr_active_workers.labels(CONTROLLER).set(0)
    for result in ("success", "error", "requeue"):
        cr_reconcile_total.labels(CONTROLLER, result)
    cr_reconcile_errors.labels(CONTROLLER)
    cr_reconcile_time.labels(CONTROLLER)
    for family in (wq_depth, wq_adds, wq_queue_duration, wq_work_duration, wq_retries):
        family.labels(CONTROLLER, CONTROLLER)
    now = time.perf_counter
    wq_unfinished.labels(CONTROLLER, CONTROLLER).set_function(
        lambda: sum(now() - t for t in list(_working.values())))
    wq_longest.labels(CONTROLLER, CONTROLLER).set_function(
        lambda: max((now() - t for t in list(_working.values())), default=0.0))


def count_api_error(status: int) -> None:
    """One failed request of the operator's; ``status`` 0 when no answer came back."""
    api_errors.labels(KUBERNETES, str(status)).inc()


def enqueued(depth: int) -> None:
    """A key joined the work queue, which now holds ``depth`` keys."""
    wq_adds.labels(CONTROLLER, CONTROLLER).inc()
    wq_depth.labels(CONTROLLER, CONTROLLER).set(depth)


@contextlib.contextmanager
def working(waited: float, depth: int) -> Iterator[None]:
    """One key taken from the work queue after ``waited`` seconds, for one reconcile."""
    wq_depth.labels(CONTROLLER, CONTROLLER).set(depth)
    wq_queue_duration.labels(CONTROLLER, CONTROLLER).observe(waited)
    started = time.perf_counter()
    token = object()
    _working[token] = started
    try:
        yield
    finally:
        del _working[token]
        wq_work_duration.labels(CONTROLLER, CONTROLLER).observe(time.perf_counter() - started)


def count_retry() -> None:
    wq_retries.labels(CONTROLLER, CONTROLLER).inc()



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
    """result: one of RESULTS."""
    reconciliations.labels(engine, result).inc()
    if engine == KUBERNETES:
        cr_result = _CR_RESULT.get(result, "error")
        cr_reconcile_total.labels(CONTROLLER, cr_result).inc()
        if cr_result == "error":
            cr_reconcile_errors.labels(CONTROLLER).inc()


def serve(port: int, addr: str | None = None) -> None:
    """Expose /metrics on addr:port in a background thread. addr defaults to
    $RECONCILE_LAB_METRICS_ADDR, else 127.0.0.1: on Linux a Prometheus in a container reaches
    the host only on the Docker bridge's address, never on its loopback."""
    prom.start_http_server(port, addr=addr or os.environ.get("RECONCILE_LAB_METRICS_ADDR",
                                                             "127.0.0.1"))


def render_text() -> str:
    return prom.generate_latest().decode()


def write_textfile(path: str) -> None:
    """Record a one-shot run: node-exporter's textfile format, written atomically."""
    prom.write_to_textfile(path, prom.REGISTRY)
