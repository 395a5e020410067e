"""A dashboard as a PNG, for people without Grafana: query Prometheus, plot with matplotlib.

Every panel of the generated dashboard (:mod:`.dashboards`) is queried over HTTP exactly as
Grafana would (template variables substituted) and drawn where Grafana puts it on its
24-column grid, with the panel's title, unit, axis label and legend. Time series become lines
(the desired state dashed), bar gauges horizontal bars.

It reads from Prometheus and writes one file; it must not decide what a panel shows.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconcile_lab.observe import dashboards

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class RenderError(Exception):
    """Prometheus could not be asked, or refused a query; the message says which."""


def seconds(duration: str) -> int:
    match = _DURATION.match(duration)
    if not match:
        raise RenderError(f"{duration!r} is not a duration like 30s, 15m, 1h")
    return int(match.group(1)) * _SECONDS[match.group(2)]


Series = list[tuple[dict[str, str], list[tuple[float, float]]]]


def query(base: str, expr: str, *, start: float | None = None, end: float,
          step: float = 15) -> Series:
    """A range query (start given) or an instant one, as (labels, [(time, value)]) pairs."""
    if start is None:
        endpoint, params = "query", {"query": expr, "time": f"{end:.3f}"}
    else:
        endpoint, params = "query_range", {"query": expr, "start": f"{start:.3f}",
                                           "end": f"{end:.3f}", "step": f"{step:g}"}
    url = f"{base.rstrip('/')}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (http only)
            body = json.loads(response.read())
    except urllib.error.HTTPError as e:
        detail = json.loads(e.read() or b"{}").get("error", e.reason)
        raise RenderError(f"Prometheus refused {expr!r}: {detail}") from None
    except OSError as e:
        raise RenderError(f"cannot reach Prometheus at {base}: {e} "
                          "(fix: start it, e.g. `make prometheus`, or pass --prometheus)") from None
    result = body["data"]["result"]
    if body["data"]["resultType"] == "vector":
        return [(r["metric"], [(float(r["value"][0]), float(r["value"][1]))]) for r in result]
    return [(r["metric"], [(float(t), float(v)) for t, v in r["values"]]) for r in result]


# --- units ----------------------------------------------------------------------------------


def _seconds_label(v: float) -> str:
    if v == 0:
        return "0"
    return f"{v * 1000:.3g} ms" if abs(v) < 1 else f"{v:.3g} s"


def _bytes_label(v: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(v) >= size:
            return f"{v / size:.3g} {unit}"
    return f"{v:.0f} B"


UNITS: dict[str, Callable[[float], str]] = {
    "s": _seconds_label,
    "bytes": _bytes_label,
    "percentunit": lambda v: f"{v * 100:.3g} %",
    "percent": lambda v: f"{v:.3g} %",
    "ops": lambda v: f"{v:.3g}/s",
    "none": lambda v: f"{v:.0f}",
    "short": lambda v: f"{v:.3g}",
}


def unit_label(unit: str, value: float) -> str:
    return UNITS.get(unit, UNITS["short"])(value)


# --- drawing --------------------------------------------------------------------------------


def _day(timestamp: float) -> float:
    """matplotlib's date number: days since the epoch."""
    return timestamp / 86400.0


def _values(*, since: str, namespace: str, app: str, rate_interval: str) -> dict[str, str]:
    return {"namespace": namespace, "app": app, "__rate_interval": rate_interval,
            "__range": since, "job": dashboards.OPERATOR_JOB, "pod": ".*"}


def _model(uid: str) -> dict[str, Any]:
    for d in dashboards.ALL:
        if d.uid == uid:
            return dashboards.build(d)
    raise RenderError(f"no dashboard {uid!r}")


def render(base: str, out: Path, *, dashboard: str = dashboards.RECONCILIATION.uid,
           since: str = "15m", namespace: str = ".*", app: str = ".*",
           rate_interval: str = "30s", now: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpec
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    model = _model(dashboard)
    values = _values(since=since, namespace=namespace, app=app, rate_interval=rate_interval)
    end = now if now is not None else datetime.datetime.now(datetime.UTC).timestamp()
    start = end - seconds(since)
    step = max(1.0, seconds(since) / 240)
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in model["panels"])
    fig = plt.figure(figsize=(16, height * 0.42), layout="constrained")
    grid = GridSpec(height, 24, figure=fig)
    when = (f"{datetime.datetime.fromtimestamp(start).strftime('%Y-%m-%d %H:%M:%S')} – "
            f"{datetime.datetime.fromtimestamp(end).strftime('%H:%M:%S')}")
    fig.suptitle(f"{model['title']}\n{when} · namespace={namespace} app={app} · from {base}",
                 fontsize=14)
    for panel in model["panels"]:
        pos = panel["gridPos"]
        if panel["type"] == "row":
            continue  # the layout keeps the rows apart; their titles would crowd the plots
        ax = fig.add_subplot(grid[pos["y"]:pos["y"] + pos["h"], pos["x"]:pos["x"] + pos["w"]])
        defaults = panel["fieldConfig"]["defaults"]
        unit = defaults.get("unit", "short")
        dashed = [re.compile(o["matcher"]["options"]) for o in panel["fieldConfig"]["overrides"]
                  if o["matcher"]["id"] == "byRegexp"]
        ax.set_title(panel["title"], fontsize=11, loc="left", fontweight="bold")
        drawn = 0
        if panel["type"] == "timeseries":
            for target in panel["targets"]:
                expr = dashboards.substitute(target["expr"], values)
                for labels, points in query(base, expr, start=start, end=end, step=step):
                    name = dashboards.legend(target["legendFormat"], labels) or expr
                    xs = [_day(t) for t, _ in points]
                    ys = [v for _, v in points]
                    style = "--" if any(d.search(name) for d in dashed) else "-"
                    if defaults["custom"]["lineInterpolation"] == "stepAfter":
                        ax.step(xs, ys, style, where="post", label=name, linewidth=2)
                    else:
                        ax.plot(xs, ys, style, label=name, linewidth=2)
                    drawn += 1
            ax.set_xlim(_day(start), _day(end))
            ax.xaxis.set_major_formatter(FuncFormatter(
                lambda v, _: datetime.datetime.fromtimestamp(v * 86400).strftime("%H:%M:%S")))
            ax.set_ylim(bottom=0, top=defaults.get("max"))
            ax.grid(alpha=0.3)
        else:
            bars: list[tuple[str, float]] = []
            for target in panel["targets"]:
                expr = dashboards.substitute(target["expr"], values)
                for labels, points in query(base, expr, end=end):
                    bars.append((dashboards.legend(target["legendFormat"], labels) or expr,
                                 points[-1][1]))
            bars.sort()
            names = [b[0] for b in bars]
            widths = [0.0 if math.isnan(b[1]) else b[1] for b in bars]
            ax.barh(names, widths, color=[f"C{i % 10}" for i in range(len(bars))])
            for i, (_, value) in enumerate(bars):
                text = "no data" if math.isnan(value) else unit_label(unit, value)
                ax.annotate(f" {text}", (widths[i], i), va="center", fontsize=10)
            ax.invert_yaxis()
            ax.set_xlim(left=0, right=max(widths, default=1) * 1.25 or 1)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _, u=unit: unit_label(u, v)))
            ax.grid(axis="x", alpha=0.3)
            drawn = len(bars)
        axis = defaults.get("custom", {}).get("axisLabel", "")
        if panel["type"] == "timeseries":
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _, u=unit: unit_label(u, v)))
            if unit == "none":
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(axis or unit)
            if drawn:
                ax.legend(fontsize=8, loc="upper left", ncols=2 if drawn > 4 else 1,
                          framealpha=0.8)
        if not drawn:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center",
                    fontsize=14, color="grey")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)

