"""The dashboards as Grafana reads them: the JSON model, read back, and the generated files.

:mod:`dashboards` says what is shown; this module says how Grafana wants it written down
(panel JSON, grid positions, template variables) and writes the files ``make dashboards``
commits: the dashboards' JSON and the in-cluster monitoring ConfigMaps. A unit test fails when a
committed file differs from :func:`generated`. Nothing here talks to Prometheus or Grafana.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from reconcile_lab.observe.dashboards import (
    ALL,
    DASHBOARDS,
    DATASOURCE,
    IN_CLUSTER,
    MONITORING_NAMESPACE,
    OBSERVABILITY,
    PROVISIONING,
    Dashboard,
    Panel,
    Query,
    Variable,
)

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


# --- Grafana's JSON -------------------------------------------------------------------------


def _target(query: Query, ref: str) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "editorMode": "code", "expr": query.expr,
            "instant": query.instant, "range": not query.instant,
            "legendFormat": query.legend, "refId": ref}


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit} if panel.log else {"unit": panel.unit,
                                                                        "min": 0}
    if panel.maximum is not None:
        defaults["max"] = panel.maximum
    if panel.unit == "none":
        defaults["decimals"] = 0
    overrides: list[dict[str, Any]] = []
    options: dict[str, Any]
    if panel.kind == "timeseries":
        defaults["color"] = {"mode": "palette-classic"}
        defaults["custom"] = {
            "drawStyle": "line", "lineWidth": 2, "fillOpacity": panel.fill, "showPoints": "never",
            "lineInterpolation": "stepAfter" if panel.stepped else "linear",
            "axisLabel": panel.axis, "spanNulls": False,
            "scaleDistribution": {"type": "log", "log": 10} if panel.log else {"type": "linear"}}
        if not panel.log:
            defaults["custom"]["axisSoftMin"] = 0
        options = {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                              "calcs": ["lastNotNull", "max"]},
                   "tooltip": {"mode": "multi", "sort": "desc"}}
        if panel.dashed:
            overrides.append({
                "matcher": {"id": "byRegexp", "options": panel.dashed},
                "properties": [{"id": "custom.lineStyle",
                                "value": {"fill": "dash", "dash": [10, 10]}},
                               {"id": "custom.lineWidth", "value": 3},
                               {"id": "custom.fillOpacity", "value": 0}]})
    else:
        defaults["thresholds"] = {"mode": "absolute",
                                  "steps": [{"color": "green", "value": None}]}
        defaults["color"] = {"mode": "palette-classic"}
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "orientation": "horizontal" if panel.kind == "bargauge" else "auto"}
        if panel.kind == "bargauge":
            options |= {"displayMode": "gradient", "showUnfilled": True}
    refs = "ABCDEFGH"
    return {
        "id": panel_id, "type": panel.kind, "title": panel.title,
        "description": panel.description, "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": options,
        "targets": [_target(q, refs[i]) for i, q in enumerate(panel.queries)],
    }


def _variable(v: Variable) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": v.name, "label": v.label, "type": "query", "datasource": DATASOURCE,
        "definition": v.query,
        "query": {"query": v.query, "refId": "StandardVariableQuery"},
        "refresh": 2, "sort": 1, "regex": "", "hide": 2 if v.hidden else 0,
        "includeAll": v.all_value is not None, "multi": v.all_value is not None,
        "options": [], "skipUrlSync": False,
    }
    if v.all_value is not None:
        # ".*" also matches a series without the label: an operator run outside a cluster
        # has no namespace or pod label, and its panels must not go empty.
        out["allValue"] = v.all_value
        out["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return out


def build(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model: rows and panels laid out on the 24-column grid."""
    panels: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for row in dashboard.rows:
        panels.append({"id": next_id, "type": "row", "title": row.title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        next_id, y = next_id + 1, y + 1
        x, height = 0, 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, height = 0, y + height, 0
            panels.append(_panel(panel, next_id, x, y))
            next_id, x, height = next_id + 1, x + panel.width, max(height, panel.height)
        y += height
    return {
        "uid": dashboard.uid, "title": dashboard.title, "description": dashboard.description,
        "tags": list(dashboard.tags), "editable": True, "graphTooltip": 1,
        "schemaVersion": 39, "version": 1, "refresh": "5s", "timezone": "browser",
        "time": {"from": "now-15m", "to": "now"}, "timepicker": {},
        "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
        "links": [{"title": "reconcile-lab", "type": "dashboards", "tags": ["reconcile-lab"],
                   "asDropdown": False, "includeVars": False, "keepTime": True}],
        "templating": {"list": [_variable(v) for v in dashboard.variables]},
        "annotations": {"list": []},
        "panels": panels,
    }


def dashboard_json(dashboard: Dashboard) -> str:
    return json.dumps(build(dashboard), indent=2, ensure_ascii=False) + "\n"


# --- reading dashboards back: for tests and the renderer ------------------------------------


def panels(model: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel with queries, rows flattened (collapsed rows keep theirs inside)."""
    for panel in model.get("panels", []):
        if panel.get("type") == "row":
            yield from (p for p in panel.get("panels", []) if p.get("targets"))
        elif panel.get("targets"):
            yield panel


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana's $var and ${var} with values; an unknown variable is an error."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return values[name]
    return _VARIABLE.sub(one, expr)


def legend(template: str, labels: Mapping[str, str]) -> str:
    """Grafana's legendFormat: {{label}} replaced by the series' value of it."""
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    return " ".join(text.split())


# --- files ----------------------------------------------------------------------------------


def _configmap(name: str, files: Mapping[str, str], comment: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": MONITORING_NAMESPACE,
                         "labels": {"app.kubernetes.io/part-of": "reconcile-lab",
                                    "app.kubernetes.io/component": comment}},
            "data": dict(files)}


class _Literal(str):
    """A multi-line string dumped as a YAML block, so the ConfigMaps stay readable."""


def _literal(dumper: yaml.SafeDumper, text: _Literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(text), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, _literal)


def _configmaps(root: Path) -> str:
    def read(relative: str) -> _Literal:
        return _Literal((root / relative).read_text())

    maps = [
        _configmap("prometheus-config", {
            "prometheus.yml": read(f"{OBSERVABILITY}/prometheus/prometheus-in-cluster.yml")},
            "prometheus"),
        _configmap("grafana-provisioning-datasources", {
            "prometheus.yaml": read(f"{PROVISIONING}/datasources/prometheus.yaml")}, "grafana"),
        _configmap("grafana-provisioning-dashboards", {
            "reconcile-lab.yaml": read(f"{PROVISIONING}/dashboards/reconcile-lab.yaml")},
            "grafana"),
        _configmap("grafana-dashboards",
                   {d.file: _Literal(dashboard_json(d)) for d in ALL}, "grafana"),
    ]
    header = ("# Generated by `make dashboards` (operator/reconcile_lab/observe/grafana.py) "
              f"from the files under {OBSERVABILITY}/. Do not edit.\n")
    return header + yaml.dump_all(maps, Dumper=_Dumper, sort_keys=False, width=1000)


def generated(root: Path) -> dict[str, str]:
    """Every generated file: path relative to the repository → content."""
    files = {f"{DASHBOARDS}/{d.file}": dashboard_json(d) for d in ALL}
    files[f"{IN_CLUSTER}/configmaps.yaml"] = _configmaps(root)
    return files
