"""The dashboards as Grafana reads them: the JSON model, read back, and the generated files.

:mod:`dashboards` says what is shown; this module says how Grafana wants it written down
(panels, grid positions, template variables), through grafana-foundation-sdk's typed builders,
and writes the files ``make dashboards`` commits: the dashboards' JSON and the in-cluster
monitoring ConfigMaps. A unit test fails when a committed file differs from :func:`generated`.
Nothing here talks to Prometheus or Grafana.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import bargauge, gauge, prometheus, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

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


# --- Grafana's JSON, through Grafana's own typed builders (grafana-foundation-sdk) -----------


def _datasource() -> dm.DataSourceRef:
    return dm.DataSourceRef(type_val=DATASOURCE["type"], uid=DATASOURCE["uid"])


def _target(query: Query, ref: str) -> prometheus.Dataquery:
    target = (prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref)
              .editor_mode(pm.QueryEditorMode.CODE).datasource(_datasource()))
    return target.instant() if query.instant else target.range()


def _timeseries(panel: Panel) -> timeseries.Panel:
    builder = (timeseries.Panel()
               .draw_style(cm.GraphDrawStyle.LINE).line_width(2).fill_opacity(panel.fill)
               .show_points(cm.VisibilityMode.NEVER).axis_label(panel.axis).span_nulls(False)
               .line_interpolation(cm.LineInterpolation.STEP_AFTER if panel.stepped
                                   else cm.LineInterpolation.LINEAR)
               .scale_distribution(cb.ScaleDistributionConfig().type(cm.ScaleDistribution.LOG)
                                   .log(10) if panel.log else
                                   cb.ScaleDistributionConfig().type(cm.ScaleDistribution.LINEAR))
               .legend(cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE)
                       .placement(cm.LegendPlacement.BOTTOM).show_legend(True)
                       .calcs(["lastNotNull", "max"]))
               .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI)
                        .sort(cm.SortOrder.DESCENDING)))
    if not panel.log:
        builder = builder.axis_soft_min(0)
    if panel.dashed:  # the desired state: dashed, on top, unfilled
        builder = builder.override_by_regexp(panel.dashed, [
            dm.DynamicConfigValue(id_val="custom.lineStyle",
                                  value={"fill": "dash", "dash": [10, 10]}),
            dm.DynamicConfigValue(id_val="custom.lineWidth", value=3),
            dm.DynamicConfigValue(id_val="custom.fillOpacity", value=0)])
    return builder


def _reduced(panel: Panel) -> bargauge.Panel | gauge.Panel:
    reduce = cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)
    thresholds = (db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE)
                  .steps([dm.Threshold(color="green", value=None)]))
    if panel.kind == "bargauge":
        return (bargauge.Panel().reduce_options(reduce).orientation(cm.VizOrientation.HORIZONTAL)
                .display_mode(cm.BarGaugeDisplayMode.GRADIENT).show_unfilled(True)
                .thresholds(thresholds))
    return (gauge.Panel().reduce_options(reduce).orientation(cm.VizOrientation.AUTO)
            .thresholds(thresholds))


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> Any:
    builder = _timeseries(panel) if panel.kind == "timeseries" else _reduced(panel)
    builder = (builder.id(panel_id).title(panel.title).description(panel.description)
               .datasource(_datasource()).unit(panel.unit)
               .grid_pos(dm.GridPos(h=panel.height, w=panel.width, x=x, y=y))
               .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.PALETTE_CLASSIC))
               .targets([_target(q, "ABCDEFGH"[i]) for i, q in enumerate(panel.queries)]))
    if not panel.log:
        builder = builder.min(0)
    if panel.maximum is not None:
        builder = builder.max(panel.maximum)
    if panel.unit == "none":
        builder = builder.decimals(0)
    return builder


def _variable(v: Variable) -> db.QueryVariable:
    builder = (db.QueryVariable(v.name).label(v.label).datasource(_datasource())
               .query(v.query).refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
               .sort(dm.VariableSort.ALPHABETICAL_ASC).regex("")
               .hide(dm.VariableHide.HIDE_VARIABLE if v.hidden else dm.VariableHide.DONT_HIDE)
               .include_all(v.all_value is not None).multi(v.all_value is not None))
    if v.all_value is not None:
        # ".*" also matches a series without the label: an operator run outside a cluster
        # has no namespace or pod label, and its panels must not go empty.
        builder = builder.all_value(v.all_value).current(
            dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    return builder


def build(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model: rows and panels laid out on the 24-column grid."""
    builder = (db.Dashboard(dashboard.title).uid(dashboard.uid)
               .description(dashboard.description).tags(list(dashboard.tags)).editable()
               .tooltip(dm.DashboardCursorSync.CROSSHAIR).refresh("5s").timezone("browser")
               .time("now-15m", "now")
               .link(db.DashboardLink("reconcile-lab").type(dm.DashboardLinkType.DASHBOARDS)
                     .tags(["reconcile-lab"]).as_dropdown(False).include_vars(False)
                     .keep_time(True)))
    for v in dashboard.variables:
        builder = builder.with_variable(_variable(v))
    next_id, y = 1, 0
    for row in dashboard.rows:
        builder = builder.with_row(db.Row(row.title).id(next_id).collapsed(False)
                                   .grid_pos(dm.GridPos(h=1, w=24, x=0, y=y)))
        next_id, y = next_id + 1, y + 1
        x, height = 0, 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, height = 0, y + height, 0
            builder = builder.with_panel(_panel(panel, next_id, x, y))
            next_id, x, height = next_id + 1, x + panel.width, max(height, panel.height)
        y += height
    model: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return model


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
