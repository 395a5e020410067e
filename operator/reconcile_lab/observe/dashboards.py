"""The Grafana dashboards and the in-cluster monitoring ConfigMaps, generated from code.

``make dashboards`` (``reconcile-lab observe dashboards``) writes them through :mod:`grafana`;
a unit test fails when a committed file differs. Two dashboards:

- **Reconciliation**: both engines side by side, from the shared ``reconcile_lab_*`` family
  (``engine`` label) and each process' ``process_*`` series (told apart by scrape job);
- **Controller-Runtime**: the panels kubebuilder's Grafana plugin scaffolds, on the operator's
  controller-runtime compatible ``controller_runtime_*`` and ``workqueue_*`` series.

Every datasource reference is the fixed uid :data:`DATASOURCE_UID` that the provisioned
datasource carries, never an import-time input such as ``${DS_PROMETHEUS}``: provisioned files
are not imported, so such an input would stay unresolved.

This module decides what is shown; it must not talk to Prometheus or Grafana.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DATASOURCE_UID = "reconcile-lab-prometheus"
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
OPERATOR_JOB = "reconcile-lab-operator"
TWIN_JOB = "reconcile-lab-docker-twin"
ENGINES = ("kubernetes", "docker")

OBSERVABILITY = "examples/observability"
DASHBOARDS = f"{OBSERVABILITY}/grafana/dashboards"
PROVISIONING = f"{OBSERVABILITY}/grafana/provisioning"
IN_CLUSTER = f"{OBSERVABILITY}/in-cluster"
MONITORING_NAMESPACE = "reconcile-lab-monitoring"

_JOBS = f'job=~"{OPERATOR_JOB}|{TWIN_JOB}"'


def local_scrape_config(operator_port: int, twin_port: int) -> dict[str, object]:
    """Prometheus on this machine scraping both engines on 127.0.0.1 (``observe prometheus``;
    with the default ports, what ``prometheus/prometheus.yml`` holds)."""
    return {"global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                for job, port in ((OPERATOR_JOB, operator_port), (TWIN_JOB, twin_port))]}


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str
    instant: bool = False  # one value per series (bar gauges), not a line


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"  # timeseries | bargauge | gauge
    width: int = 12
    height: int = 8
    axis: str = ""  # y-axis label
    stepped: bool = False  # values that jump (replica counts), not ones that glide
    maximum: float | None = None
    dashed: str = ""  # regex of legends drawn dashed, on top and unfilled (the desired state)
    fill: int = 10  # opacity (%) of the area under each line
    log: bool = False  # a logarithmic y axis: milliseconds and seconds on one panel


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: str  # label_values(...)
    all_value: str | None = ".*"  # None: one value must be chosen
    hidden: bool = False


@dataclass(frozen=True)
class Dashboard:
    uid: str
    file: str
    title: str
    description: str
    variables: tuple[Variable, ...]
    rows: tuple[Row, ...]
    tags: tuple[str, ...] = field(default=("reconcile-lab",))


# --- Reconciliation: both engines side by side ---------------------------------------------


def _replicas(engine: str, who: str) -> Panel:
    sel = f'engine="{engine}", namespace=~"$namespace", app=~"$app"'
    return Panel(
        f"{who}: desired vs ready replicas",
        f"Dashed: replicas the WebApp asks for. Solid: replicas ready to serve, as the {who} "
        "last saw them. A gap between the two is the work still to do; how fast it closes after "
        "a fault is what reconciliation buys.",
        "none",
        # ready first: Grafana draws in order, and the desired line must stay visible on top.
        (Query(f"reconcile_lab_ready_replicas{{{sel}}}", "ready {{namespace}}/{{app}}"),
         Query(f"reconcile_lab_desired_replicas{{{sel}}}", "desired {{namespace}}/{{app}}")),
        axis="replicas", stepped=True, dashed="^desired", fill=25)


def _quantiles(metric: str, by: str, quantiles: tuple[str, ...], legend: str) -> tuple[Query, ...]:
    return tuple(Query(f"histogram_quantile({q}, sum by ({by}, le) "
                       f"(rate({metric}_bucket[$__rate_interval])))",
                       f"{legend} p{round(float(q) * 100)}")
                 for q in quantiles)


_RECONCILES = "sum by (engine) (rate(reconcile_lab_reconciliations_total[$__rate_interval]))"

RECONCILIATION = Dashboard(
    uid="reconcile-lab-reconciliation",
    file="reconciliation.json",
    title="Reconciliation: Kubernetes operator vs Docker twin",
    description="One WebApp file, two engines: the kopf operator (engine=kubernetes) and the "
                "Docker twin under --watch (engine=docker), side by side.",
    variables=(
        Variable("namespace", "Namespace", "label_values(reconcile_lab_desired_replicas, namespace)"),
        Variable("app", "App",
                 'label_values(reconcile_lab_desired_replicas{namespace=~"$namespace"}, app)'),
    ),
    rows=(
        Row("Is it true? Desired vs ready", (
            _replicas("kubernetes", "Kubernetes operator"),
            _replicas("docker", "Docker twin"),
        )),
        Row("How often, and how well", (
            Panel("Reconciliations per second, by result",
                  "How often each engine compares the desired state with the world. The "
                  "operator reconciles on events (a change, a deleted child); the twin on "
                  "every poll. conflict: a same-named object it does not own; invalid: a spec the "
                  "CRD should have refused; stale: a write refused because the child changed "
                  "meanwhile, tried again at once.",
                  "ops",
                  (Query("sum by (engine, result) "
                         "(rate(reconcile_lab_reconciliations_total[$__rate_interval]))",
                         "{{engine}} {{result}}"),),
                  axis="reconciliations/s"),
            Panel("Error rate: share of reconciliations not successful",
                  "Failed, conflicting or refused reconciliations divided by all of them "
                  "(a stale write tried again at once is not a failure). 0 % while every "
                  "reconciliation succeeds; no line while an engine does not reconcile.",
                  "percentunit",
                  (Query('(sum by (engine) (rate(reconcile_lab_reconciliations_total'
                         '{result!~"success|stale"}[$__rate_interval])) '
                         f"or {_RECONCILES} * 0) / {_RECONCILES}", "{{engine}}"),),
                  axis="not successful", maximum=1),
        )),
        Row("How long", (
            Panel("Reconcile duration p50 / p95 / p99",
                  "Time one reconciliation takes: for the operator one compare-and-apply, for the "
                  "twin one poll including the docker commands it runs and the wait until ready.",
                  "s",
                  _quantiles("reconcile_lab_reconcile_duration_seconds", "engine",
                             ("0.5", "0.95", "0.99"), "{{engine}}"),
                  axis="seconds (log scale)", log=True, fill=0),
            Panel("Time to converge (over the selected time range)",
                  "From a change of the desired state (or of the world) being seen to every "
                  "replica ready, over the convergences in the dashboard's time range. The mean "
                  "is exact; p50 and p95 are estimated within histogram buckets "
                  "(… 1, 2, 5, 10 s …): read them to the bucket.",
                  "s",
                  (Query("sum by (engine) (increase("
                         "reconcile_lab_time_to_converge_seconds_sum[$__range])) / "
                         "sum by (engine) (increase("
                         "reconcile_lab_time_to_converge_seconds_count[$__range]))",
                         "{{engine}} mean", instant=True),
                   *(Query(f"histogram_quantile({q}, sum by (engine, le) (increase("
                           "reconcile_lab_time_to_converge_seconds_bucket[$__range])))",
                           f"{{{{engine}}}} p{round(float(q) * 100)}", instant=True)
                     for q in ("0.5", "0.95"))),
                  kind="bargauge", axis="seconds"),
        )),
        Row("What it had to do", (
            Panel("Drift corrections per minute, by kind",
                  "Children found different from the spec, or missing, and put back: a deleted "
                  "Deployment, a scaled ReplicaSet, a killed container.",
                  "short",
                  (Query("sum by (engine, kind) "
                         "(increase(reconcile_lab_drift_corrections_total[1m]))",
                         "{{engine}} {{kind}}"),),
                  axis="corrections/min"),
            Panel("Writes per minute, by kind",
                  "Every write an engine makes to reach the desired state (server-side apply, "
                  "status updates, docker run/start/rm …). Converged and unchanged: zero.",
                  "short",
                  (Query("sum by (engine, kind) (increase(reconcile_lab_writes_total[1m]))",
                         "{{engine}} {{kind}}"),),
                  axis="writes/min"),
        )),
        Row("What it costs", (
            Panel("CPU, by process",
                  "CPU time the operator and the twin use, as a share of one core "
                  "(scrape job reconcile-lab-operator vs reconcile-lab-docker-twin).",
                  "percentunit",
                  (Query(f"rate(process_cpu_seconds_total{{{_JOBS}}}[$__rate_interval])",
                         "{{job}}"),),
                  axis="share of one core"),
            Panel("Resident memory, by process",
                  "Memory each process holds (RSS).",
                  "bytes",
                  (Query(f"process_resident_memory_bytes{{{_JOBS}}}", "{{job}}"),),
                  axis="bytes"),
        )),
    ),
)


# --- Controller-Runtime: what kubebuilder's Grafana plugin scaffolds -----------------------

_CR = 'job=~"$job", namespace=~"$namespace"'
_WQ_QUANTILES = ("0.50", "0.90", "0.99")


def _wq(metric: str) -> tuple[Query, ...]:
    return tuple(Query(f"histogram_quantile({q}, sum(rate({metric}_bucket{{{_CR}}}"
                       "[$__rate_interval])) by (instance, name, le))",
                       f"P{round(float(q) * 100)} {{{{name}}}} {{{{instance}}}}")
                 for q in _WQ_QUANTILES)


CONTROLLER_RUNTIME = Dashboard(
    uid="reconcile-lab-controller-runtime",
    file="controller-runtime.json",
    title="Controller-Runtime-Metrics",
    description="The panels kubebuilder's Grafana plugin (grafana/v1-alpha) scaffolds for a "
                "controller-runtime operator, on the operator's compatible series.",
    variables=(
        Variable("job", "job", "label_values(controller_runtime_reconcile_total, job)",
                 all_value=None),
        Variable("namespace", "namespace",
                 'label_values(controller_runtime_reconcile_total{job=~"$job"}, namespace)'),
        Variable("pod", "pod", 'label_values(controller_runtime_reconcile_total{job=~"$job"}, pod)',
                 hidden=True),
    ),
    rows=(
        Row("Reconciliation Metrics", (
            Panel("Number of workers in use",
                  "Reconciles running now, and how many may run at once.",
                  "none",
                  (Query(f"controller_runtime_active_workers{{{_CR}}}", "in use {{controller}}"),
                   Query(f"controller_runtime_max_concurrent_reconciles{{{_CR}}}",
                         "max {{controller}}")),
                  kind="gauge", width=4),
            Panel("Total Reconciliation Count Per Controller",
                  "Total number of reconciliations per controller, per second.",
                  "ops",
                  (Query(f"sum(rate(controller_runtime_reconcile_total{{{_CR}}}"
                         "[$__rate_interval])) by (instance, pod)", "{{instance}} {{pod}}"),),
                  width=10),
            Panel("Reconciliation Error Count Per Controller",
                  "Total number of reconciliation errors per controller, per second.",
                  "ops",
                  (Query(f"sum(rate(controller_runtime_reconcile_errors_total{{{_CR}}}"
                         "[$__rate_interval])) by (instance, pod)", "{{instance}} {{pod}}"),),
                  width=10),
            Panel("Seconds Per Reconciliation (P50, P90, P99)",
                  "Length of time per reconciliation per controller.",
                  "s",
                  tuple(Query(f"histogram_quantile({q}, sum(rate("
                              f"controller_runtime_reconcile_time_seconds_bucket{{{_CR}}}"
                              "[$__rate_interval])) by (instance, controller, le))",
                              f"P{round(float(q) * 100)} {{{{controller}}}} {{{{instance}}}}")
                        for q in _WQ_QUANTILES),
                  width=24),
        )),
        Row("Work Queue Metrics", (
            Panel("WorkQueue Depth",
                  "Reconciles of a WebApp waiting for the one already running on it.",
                  "none", (Query(f"workqueue_depth{{{_CR}}}", "{{name}}"),),
                  kind="gauge", width=4),
            Panel("Seconds For Items Stay In Queue (before being requested) (P50, P90, P99)",
                  "How long in seconds an item stays in workqueue before being requested.",
                  "s", _wq("workqueue_queue_duration_seconds"), width=10),
            Panel("Work Queue Add Rate",
                  "Reconciles asked for, per second (every event on a WebApp or a child, "
                  "every retry).",
                  "ops",
                  (Query(f"sum(rate(workqueue_adds_total{{{_CR}}}[$__rate_interval])) "
                         "by (instance, name)", "{{name}} {{instance}}"),),
                  width=10),
            Panel("Unfinished Seconds",
                  "How many seconds of work is in progress and not yet observed by "
                  "work_duration, per second. Large values indicate stuck reconciles.",
                  "s",
                  (Query(f"rate(workqueue_unfinished_work_seconds{{{_CR}}}[$__rate_interval])",
                         "{{name}}"),),
                  kind="gauge", width=4),
            Panel("Seconds Processing Items From WorkQueue (P50, P90, P99)",
                  "How long in seconds processing an item from workqueue takes.",
                  "s", _wq("workqueue_work_duration_seconds"), width=10),
            Panel("Work Queue Retries Rate",
                  "Failed reconciles put back with backoff, per second.",
                  "ops",
                  (Query(f"sum(rate(workqueue_retries_total{{{_CR}}}[$__rate_interval])) "
                         "by (instance, name)", "{{name}} {{instance}}"),),
                  width=10),
        )),
        Row("Controller Resources", (
            Panel("Controller CPU Usage", "CPU time the operator uses, in % of one core.",
                  "percent",
                  (Query(f'rate(process_cpu_seconds_total{{{_CR}, pod=~"$pod"}}'
                         "[$__rate_interval]) * 100", "{{job}} {{pod}}"),)),
            Panel("Controller Memory Usage", "Resident memory of the operator.", "bytes",
                  (Query(f'process_resident_memory_bytes{{{_CR}, pod=~"$pod"}}',
                         "{{job}} {{pod}}"),)),
        )),
    ),
)

ALL = (RECONCILIATION, CONTROLLER_RUNTIME)
