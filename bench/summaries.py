"""Figures computed from raw benchmark data: quantiles that say how many samples they rest on,
medians per contender and size, ratios within one repeat.

Pure: data in, numbers out; no I/O, no clock.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

# A tail quantile from fewer samples than 1 / (1 - q) is the maximum under another name:
# p95 needs 20 events, p99 needs 100.


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def enough_for(q: float, n: int) -> bool:
    return q <= 0.5 or n >= math.ceil(round(1 / (1 - q), 6))


def quantile_ms(values: Sequence[float], q: float) -> str:
    """The quantile in ms, or what is missing for one: ``n < 100``."""
    if not enough_for(q, len(values)):
        return f"n < {math.ceil(round(1 / (1 - q), 6))}"
    return f"{quantile(values, q) * 1000:.0f}"


def latency_rows(times: Mapping[str, Sequence[float]]) -> list[str]:
    """``| event | n | p50 | p95 | p99 | max |`` rows, in ms."""
    return [f"| {event} | {len(v)} | {quantile_ms(v, .5)} | {quantile_ms(v, .95)} | "
            f"{quantile_ms(v, .99)} | {max(v) * 1000:.0f} |" for event, v in times.items() if v]


LATENCY_HEAD = ["| event | n | p50 ms | p95 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
LATENCY_NOTE = ("A tail quantile is shown only from enough events to hold it (p95 from 20, p99 "
                "from 100); below that, *max* is the figure.")


# Resources a controller of this kind writes for its apps; the rest (pods, replicasets, leases,
# endpointslices, deployments/status …) are the control plane's and kwok's work, equal for all.
MINE = ("deployments", "services", "webapps", "webapps/status", "foos", "foos/status", "events")


def attributed(writes: Mapping[str, float], contender: str, n: int) -> float:
    """The controller's writes on its own resources, minus the N owners the harness created."""
    total = sum(v for k, v in writes.items() if k in MINE)
    return total - (0 if contender == "raw" else n)


def ok_runs(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [r for r in data["runs"] if "error" not in r]


def _median(runs: Sequence[Mapping[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def summary(data: Mapping[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """Medians per (contender, N), with rates and the ratio to the raw rate."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    runs = ok_runs(data)
    for key in sorted({(r["contender"], r["n"]) for r in runs}, key=lambda k: (k[1], k[0])):
        mine = [r for r in runs if (r["contender"], r["n"]) == key]
        n = key[1]
        row: dict[str, Any] = {"repeats": len(mine)}
        for k in ("children_s", "deployments_ready_s", "owners_ready_s", "load_s", "cpu_s",
                  "rss_mb"):
            row[k] = _median(mine, k)
        row["rate"] = n / row["children_s"]
        row["writes_per_app"] = statistics.median(
            attributed(r["writes"], r["contender"], n) / n for r in mine)
        out[key] = row
    for (_, n), row in out.items():
        raw = out.get(("raw", n))
        row["ratio"] = row["rate"] / raw["rate"] if raw else None
    return out


def paired_ratios(data: Mapping[str, Any], contender: str, n: int) -> list[float]:
    """The contender's rate over raw's in each repeat where both ran at N (fresh clusters
    minutes apart), in repeat order: the fair comparison on a noisy machine."""
    by_repeat: dict[Any, dict[str, float]] = {}
    for r in ok_runs(data):
        if r["n"] == n and r["contender"] in (contender, "raw"):
            by_repeat.setdefault(r.get("repeat"), {})[r["contender"]] = r["children_s"]
    return [pair["raw"] / pair[contender] for _, pair in sorted(
        by_repeat.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
        if "raw" in pair and contender in pair]


def sizes(data: Mapping[str, Any]) -> list[int]:
    return sorted({r["n"] for r in data["runs"]})


def extras_run(data: Mapping[str, Any], n: int) -> dict[str, Any] | None:
    """The operator's run at N that went on with idle writes and latencies."""
    return next((r for r in ok_runs(data) if r["contender"] == "operator" and r["n"] == n
                 and "idle" in r), None)
