"""Dashboards, provisioning and the metrics they read, without Prometheus or Grafana.

Whether every query returns data is tested against a real Prometheus in
tests/integration/test_observability.py; here: the files are what the code generates, valid,
self-consistent, and bound to the fixed datasource uid.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconcile_lab.declarative import reconciling, workqueue
from reconcile_lab.imperative import steps
from reconcile_lab.observe import command, dashboards, grafana, logs, metrics

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO / dashboards.OBSERVABILITY
DASHBOARD_FILES = sorted((REPO / dashboards.DASHBOARDS).glob("*.json"))
BUILT_IN = {"__rate_interval", "__range", "__interval"}


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def test_the_committed_generated_files_are_what_the_code_generates() -> None:
    assert command.stale(REPO) == [], "run `make dashboards` and commit the result"


def test_every_dashboard_is_a_file() -> None:
    assert [p.name for p in DASHBOARD_FILES] == sorted(d.file for d in dashboards.ALL)


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_is_valid_json_with_unique_panel_ids(path: Path) -> None:
    model = json.loads(path.read_text())
    ids = [p["id"] for p in model["panels"]]
    ids += [p["id"] for row in model["panels"] for p in row.get("panels", [])]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    assert model["uid"] and len(model["uid"]) <= 40  # Grafana's limit on a uid


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_every_datasource_reference_is_the_fixed_uid(path: Path) -> None:
    model = json.loads(path.read_text())
    references = [value for key, value in _walk(model) if key == "datasource"]
    assert references, "no datasource at all"
    for ref in references:
        assert ref == {"type": "prometheus", "uid": dashboards.DATASOURCE_UID}, ref


def test_no_import_time_datasource_input_anywhere() -> None:
    for path in OBSERVABILITY.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "${DS_" not in text and "__inputs" not in text, path


def test_the_provisioned_datasource_carries_the_uid_the_dashboards_name() -> None:
    provisioned = yaml.safe_load(
        (REPO / dashboards.PROVISIONING / "datasources" / "prometheus.yaml").read_text())
    (source,) = provisioned["datasources"]
    assert source["uid"] == dashboards.DATASOURCE_UID
    assert source["type"] == "prometheus"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_every_query_uses_only_variables_the_dashboard_defines(path: Path) -> None:
    model = json.loads(path.read_text())
    defined = {v["name"] for v in model["templating"]["list"]} | BUILT_IN
    panels = list(grafana.panels(model))
    assert panels
    for panel in panels:
        assert panel["title"] and panel["description"], panel["id"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        for target in panel["targets"]:
            used = {a or b for a, b in re.findall(r"\$(?:\{(\w+)\}|(\w+))", target["expr"])}
            assert used <= defined, (panel["title"], used - defined)


def test_dashboards_are_where_the_provider_and_the_stacks_mount_them() -> None:
    provider = yaml.safe_load(
        (REPO / dashboards.PROVISIONING / "dashboards" / "reconcile-lab.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((OBSERVABILITY / "docker-compose.yaml").read_text())
    assert f"./grafana/dashboards:{path}:ro" in compose["services"]["grafana"]["volumes"]
    deployment = next(d for d in yaml.safe_load_all((OBSERVABILITY / "in-cluster" / "grafana.yaml")
                                                 .read_text()) if d["kind"] == "Deployment")
    mounts = deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "dashboards", "mountPath": path, "readOnly": True} in mounts
    maps = {d["metadata"]["name"]: d for d in yaml.safe_load_all(
        (OBSERVABILITY / "in-cluster" / "configmaps.yaml").read_text())}
    assert set(maps["grafana-dashboards"]["data"]) == {d.file for d in dashboards.ALL}


def test_compose_publishes_on_loopback_only() -> None:
    compose = yaml.safe_load((OBSERVABILITY / "docker-compose.yaml").read_text())
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert "host.docker.internal:host-gateway" in compose["services"]["prometheus"]["extra_hosts"]


def test_every_scrape_config_names_the_jobs_the_dashboards_use() -> None:
    for name in ("prometheus.yml", "prometheus-compose.yml"):
        config = yaml.safe_load((OBSERVABILITY / "prometheus" / name).read_text())
        jobs = {c["job_name"] for c in config["scrape_configs"]}
        assert jobs == {dashboards.OPERATOR_JOB, dashboards.TWIN_JOB}, name
    config = yaml.safe_load((OBSERVABILITY / "prometheus" / "prometheus-in-cluster.yml").read_text())
    assert [c["job_name"] for c in config["scrape_configs"]] == [dashboards.OPERATOR_JOB]


# --- template helpers -------------------------------------------------------------------------


def test_substitute_replaces_both_forms_and_refuses_unknown_variables() -> None:
    values = {"app": "hello", "__rate_interval": "30s"}
    assert grafana.substitute('x{app=~"$app"}[${__rate_interval}]', values) == \
        'x{app=~"hello"}[30s]'
    with pytest.raises(KeyError, match="namespace"):
        grafana.substitute('x{namespace="$namespace"}', values)


def test_legend_fills_labels_and_drops_missing_ones() -> None:
    assert grafana.legend("{{engine}} {{ pod }} p50", {"engine": "docker"}) == "docker p50"


# --- the metrics the dashboards read ----------------------------------------------------------


def test_every_docker_write_and_drift_kind_is_created_at_zero() -> None:
    kinds = [cls for cls in vars(steps).values()
             if isinstance(cls, type) and hasattr(cls, "verb") and hasattr(cls, "kind")
             and cls.verb and cls.verb != "wait"]
    assert kinds
    assert {(s.kind, s.verb) for s in kinds} <= set(metrics.WRITE_KINDS[metrics.DOCKER])
    assert {s.kind for s in kinds} <= set(metrics.DRIFT_KINDS[metrics.DOCKER])
    assert set(metrics.DRIFT_KINDS[metrics.KUBERNETES]) == set(reconciling.KINDS)


def _sample(metric: str, labels: dict[str, str]) -> float:
    value = metrics.prom.REGISTRY.get_sample_value(metric, labels)
    return 0.0 if value is None else value


def test_failed_api_requests_are_counted_by_status_from_zero() -> None:
    metrics.init_engine(metrics.KUBERNETES)
    labels = {"engine": metrics.KUBERNETES, "code": "403"}
    assert metrics.prom.REGISTRY.get_sample_value("reconcile_lab_api_errors_total",
                                                  labels) is not None  # there before any
    before = _sample("reconcile_lab_api_errors_total", labels)
    metrics.count_api_error(403)
    metrics.count_api_error(0)  # no answer at all
    assert _sample("reconcile_lab_api_errors_total", labels) == before + 1
    assert _sample("reconcile_lab_api_errors_total",
                   {"engine": metrics.KUBERNETES, "code": "0"}) >= 1


def test_work_queue_metrics_count_adds_waits_and_work_like_client_go() -> None:
    metrics.init_controller(max_concurrent=4)
    wq = {"controller": metrics.CONTROLLER, "name": metrics.CONTROLLER}
    adds = _sample("workqueue_adds_total", wq)
    waits = _sample("workqueue_queue_duration_seconds_count", wq)
    works = _sample("workqueue_work_duration_seconds_count", wq)
    depths: list[float] = []

    async def scenario() -> None:
        queue = workqueue.WorkQueue[str]()
        for key in ("a", "b", "a"):  # the second "a" merges into the first
            if queue.add(key):
                metrics.enqueued(len(queue))
        depths.append(_sample("workqueue_depth", wq))
        for _ in range(2):
            key, waited = await queue.get()
            with metrics.working(waited, len(queue)):
                await asyncio.sleep(0.05)
                depths.append(_sample("workqueue_unfinished_work_seconds", wq))
            queue.done(key)
        depths.append(_sample("workqueue_depth", wq))

    asyncio.run(scenario())
    assert depths[0] == 2
    assert depths[1] >= 0.04  # the first has been working that long
    assert depths[3] == 0
    assert _sample("workqueue_adds_total", wq) == adds + 2
    assert _sample("workqueue_queue_duration_seconds_count", wq) == waits + 2
    assert _sample("workqueue_work_duration_seconds_count", wq) == works + 2
    assert _sample("workqueue_unfinished_work_seconds", wq) == 0
    retries = _sample("workqueue_retries_total", wq)
    metrics.count_retry()
    assert _sample("workqueue_retries_total", wq) == retries + 1


def test_kopfs_lines_for_a_failing_request_are_shown_once_then_every_few_minutes() -> None:
    def line(text: str) -> logging.LogRecord:
        return logging.LogRecord("kopf", logging.ERROR, __file__, 1, text, None, None)

    now = [0.0]
    muted = logs.RepeatsMuted(every=300, clock=lambda: now[0])
    watch = "GET https://127.0.0.1:1/api/v1/namespaces/n/services?watch=true&resourceVersion={}"
    refused = " -> APIForbiddenError('services is forbidden')"

    def attempt(n: str, version: int) -> logging.LogRecord:
        return line(f"Request attempt #{n} failed; will retry: {watch.format(version)}{refused}")

    assert muted(attempt("1/9", 5))
    assert not muted(attempt("2/9", 5))  # kopf's next attempt of the same request
    now[0] = 20
    assert not muted(attempt("1", 6))  # the watch opened again: the same failure
    assert muted(line(f"Request attempt #1 failed; will retry: {watch.format(6)} -> "
                      "ClientConnectorError('refused')"))  # another failure: shown
    assert muted(line("Request attempt #9/9 failed; escalating: GET https://x -> Error()"))
    assert muted(line("Watch-stream for services is inactive"))
    now[0] = 301
    again = attempt("1", 7)
    assert muted(again) and "(2 more like it left out)" in again.getMessage()
