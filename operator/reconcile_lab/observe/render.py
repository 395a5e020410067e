"""A dashboard as a PNG, for people without Grafana: query Prometheus, plot with matplotlib.

Every panel of the generated dashboard (:mod:`.dashboards`) is queried over HTTP exactly as
Grafana would (template variables substituted) and drawn two a row in the dashboard's order,
with the panel's title, unit, axis label and legend (last value included). Time series become lines
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

from reconcile_lab.observe import dashboards, grafana

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
    if abs(v) < 1e-3:
        return f"{v * 1e6:.3g} µs"
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
            return grafana.build(d)
    raise RenderError(f"no dashboard {uid!r}")


_FAMILIES = {"kubernetes": "Blues", "docker": "Oranges"}  # one hue per engine, everywhere
_JOB_ENGINE = {dashboards.OPERATOR_JOB: "kubernetes", dashboards.TWIN_JOB: "docker"}


def _engine(labels: dict[str, str]) -> str | None:
    return labels.get("engine") or _JOB_ENGINE.get(labels.get("job", ""))


class _Colors:
    """Each engine in shades of its own hue; series of one key (an app's desired and ready
    lines) share a colour."""

    def __init__(self, keys: list[tuple[str | None, str]]) -> None:
        import matplotlib

        self.colors: dict[tuple[str | None, str], Any] = {}
        for engine in {e for e, _ in keys}:
            mine = sorted({k for e, k in keys if e == engine})
            for i, key in enumerate(mine):
                if engine in _FAMILIES:
                    shade = 0.85 - 0.45 * i / max(len(mine) - 1, 1)
                    self.colors[(engine, key)] = matplotlib.colormaps[_FAMILIES[engine]](shade)
                else:
                    self.colors[(engine, key)] = f"C{(i + 2) % 10}"

    def __call__(self, engine: str | None, key: str) -> Any:
        return self.colors[(engine, key)]


def _time_axis(ax: Any, start: float, end: float) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.set_xlim(_day(start), _day(end))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda v, _: datetime.datetime.fromtimestamp(v * 86400).strftime("%H:%M:%S")))


def _timeseries(ax: Any, panel: dict[str, Any], found: list[tuple[str, Series]],
                start: float, end: float) -> int:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    defaults = panel["fieldConfig"]["defaults"]
    unit = defaults.get("unit", "short")
    dashed = [re.compile(o["matcher"]["options"]) for o in panel["fieldConfig"]["overrides"]
              if o["matcher"]["id"] == "byRegexp"]
    stepped = defaults["custom"]["lineInterpolation"] == "stepAfter"
    fill = defaults["custom"].get("fillOpacity", 0) / 100
    scale, unit_shown = (2**20, "MiB") if unit == "bytes" else (1, unit)

    def key(name: str) -> str:  # "desired ns/app" and "ready ns/app" share a colour
        return name.split(" ", 1)[-1] if dashed else name

    lines = [(grafana.legend(legend, labels) or legend, labels, points)
             for legend, series in found for labels, points in series]
    colors = _Colors([(_engine(labels), key(name)) for name, labels, _ in lines])
    for name, labels, points in lines:
        xs = [_day(t) for t, _ in points]
        ys = [v / scale for _, v in points]
        last = next((v for _, v in reversed(points) if math.isfinite(v)), math.nan)
        label = f"{name}  (now {unit_label(unit, last)})" if math.isfinite(last) else name
        color = colors(_engine(labels), key(name))
        is_dashed = any(d.search(name) for d in dashed)
        style = {"color": color, "label": label, "linewidth": 2.5 if is_dashed else 2,
                 "linestyle": "--" if is_dashed else "-", "zorder": 3 if is_dashed else 2}
        if stepped:
            ax.step(xs, ys, where="post", **style)
        else:
            ax.plot(xs, ys, **style)
        if fill and not is_dashed:
            ax.fill_between(xs, ys, step="post" if stepped else None, color=color, alpha=fill,
                            linewidth=0)
    _time_axis(ax, start, end)
    if defaults["custom"].get("scaleDistribution", {}).get("type") == "log":
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0, top=defaults.get("max"))
    ax.yaxis.set_major_formatter(FuncFormatter(
        lambda v, _: f"{v:.0f} MiB" if unit_shown == "MiB" else unit_label(unit_shown, v)))
    if unit == "none":
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(defaults["custom"].get("axisLabel") or unit)
    ax.grid(alpha=0.3)
    if lines:
        ax.legend(fontsize=8, loc="upper left", ncols=2 if len(lines) > 4 else 1,
                  framealpha=0.85)
    return len(lines)


def _bars(ax: Any, panel: dict[str, Any], found: list[tuple[str, Series]]) -> int:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    unit = panel["fieldConfig"]["defaults"].get("unit", "short")
    bars = sorted((grafana.legend(legend, labels) or legend, labels, points[-1][1])
                  for legend, series in found for labels, points in series)
    colors = _Colors([(_engine(labels), name) for name, labels, _ in bars])
    widths = [0.0 if math.isnan(v) else v for _, _, v in bars]
    ax.barh([name for name, _, _ in bars], widths,
            color=[colors(_engine(labels), name) for name, labels, _ in bars])
    for i, (_, _, value) in enumerate(bars):
        text = "no data" if math.isnan(value) else unit_label(unit, value)
        ax.annotate(f" {text}", (widths[i], i), va="center", fontsize=10)
    ax.invert_yaxis()
    ax.set_xlim(left=0, right=(max(widths, default=0) * 1.25) or 1)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: unit_label(unit, v)))
    if unit == "none":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="x", alpha=0.3)
    return len(bars)


def render(base: str, out: Path, *, dashboard: str = dashboards.RECONCILIATION.uid,
           since: str = "15m", namespace: str = ".*", app: str = ".*",
           rate_interval: str = "30s", now: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpec

    model = _model(dashboard)
    values = _values(since=since, namespace=namespace, app=app, rate_interval=rate_interval)
    end = now if now is not None else datetime.datetime.now(datetime.UTC).timestamp()
    start = end - seconds(since)
    step = max(1.0, seconds(since) / 240)
    # Two panels a row, in the dashboard's order: the Reconciliation dashboard's own layout,
    # and one where Grafana's narrow gauges would be too small to read on paper.
    shown = list(grafana.panels(model))
    rows = (len(shown) + 1) // 2
    fig = plt.figure(figsize=(16, 3.8 * rows + 1), layout="constrained")
    grid = GridSpec(rows, 2, figure=fig)
    when = (f"{datetime.datetime.fromtimestamp(start).strftime('%Y-%m-%d %H:%M:%S')} – "
            f"{datetime.datetime.fromtimestamp(end).strftime('%H:%M:%S')}")
    fig.suptitle(f"{model['title']}\n{when} · namespace={namespace} app={app} · "
                 f"rate window {rate_interval} · from {base}", fontsize=14)
    for index, panel in enumerate(shown):
        ax = fig.add_subplot(grid[index // 2, index % 2])
        ax.set_title(panel["title"], fontsize=11, loc="left", fontweight="bold")
        found = [(t["legendFormat"],
                  query(base, grafana.substitute(t["expr"], values), end=end,
                        start=None if t.get("instant") else start, step=step))
                 for t in panel["targets"]]
        drawn = (_timeseries(ax, panel, found, start, end) if panel["type"] == "timeseries"
                 else _bars(ax, panel, found))
        if not drawn:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center",
                    fontsize=14, color="grey")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
