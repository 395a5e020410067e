"""The benchmark targets, judged from raw data: each says what was measured and whether it is
met, or that the data does not hold it ("not measured"), never a typed figure.

Pure: data in, rows out.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any, NamedTuple

from bench import summaries

TARGET_N = 1000
MIN_RATIO = 0.6
REPEATS = 3
PEERS = ("naive-kopf", "sample-controller")
MAX_RSS_MB = 150
MAX_EXTRA_WRITES = 2.0
MAX_LATENCY_S = 1.0
MIN_TWIN_RATIO = 0.8

MET, NOT_MET, NOT_MEASURED = "yes", "no", "not measured"


class Target(NamedTuple):
    target: str
    measured: str
    met: str


def _judge(ok: bool) -> str:
    return MET if ok else NOT_MET


def _ratios(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}×" for v in values)


def _what_there_is(conv: Mapping[str, Any] | None) -> str:
    if conv is None:
        return "no convergence data"
    shown = ", ".join(f"N={n}" for n in summaries.sizes(conv))
    return f"the data has {shown}"


def throughput(conv: Mapping[str, Any] | None) -> list[Target]:
    name = (f"operator ≥ {MIN_RATIO}× raw's rate at N={TARGET_N}, median of {REPEATS} "
            "repeats within one invocation")
    peers_name = f"… and ahead of {' and '.join(PEERS)} at N={TARGET_N}, same invocation"
    ratios = summaries.paired_ratios(conv, "operator", TARGET_N) if conv else []
    if len(ratios) < REPEATS:
        have = f"{len(ratios)} paired repeats at N={TARGET_N}" if ratios else _what_there_is(conv)
        return [Target(name, f"not measured: {have}", NOT_MEASURED),
                Target(peers_name, f"not measured: {have}", NOT_MEASURED)]
    median = statistics.median(ratios)
    out = [Target(name, f"{_ratios(ratios)} → median **{median:.2f}×**",
                  _judge(median >= MIN_RATIO))]
    assert conv is not None
    peer_medians = {p: summaries.paired_ratios(conv, p, TARGET_N) for p in PEERS}
    missing = [p for p, v in peer_medians.items() if not v]
    if missing:
        out.append(Target(peers_name, f"not measured: no {', '.join(missing)} run at "
                          f"N={TARGET_N}", NOT_MEASURED))
    else:
        shown = "; ".join(f"{p} {_ratios(v)} → median {statistics.median(v):.2f}×"
                          for p, v in peer_medians.items())
        out.append(Target(peers_name, f"operator median {median:.2f}×; {shown}", _judge(all(
            median > statistics.median(v) for v in peer_medians.values()))))
    return out


def operator_extras(conv: Mapping[str, Any] | None) -> list[Target]:
    op = summaries.extras_run(conv, TARGET_N) if conv else None
    names = (f"RSS < {MAX_RSS_MB} MB with {TARGET_N} WebApps",
             f"0 writes while idle with {TARGET_N} WebApps",
             f"≤ {MAX_EXTRA_WRITES:.0f} writes per converged WebApp beyond the children "
             f"(N={TARGET_N})",
             f"spec-change and drift-repair latency < {MAX_LATENCY_S:.0f} s with "
             f"{TARGET_N} WebApps")
    if op is None:
        why = f"not measured: no operator run with extras at N={TARGET_N} ({_what_there_is(conv)})"
        return [Target(name, why, NOT_MEASURED) for name in names]
    after = op.get("after_latency") or {}
    peak = max(op["rss_mb"], after.get("rss_mb", 0), after.get("peak_rss_mb", 0))
    rss = Target(names[0], f"{op['rss_mb']:.0f} MB after converging, peak {peak:.0f} MB",
                 _judge(peak < MAX_RSS_MB))
    idle = op["idle"]
    own = sum(idle["own_writes"].values())
    seen = sum(v for k, v in idle["writes"].items() if k in summaries.MINE)
    quiet = Target(names[1], f"{own:.0f} operator writes, {seen:.0f} writes on "
                   f"{'/'.join(summaries.MINE)} at the apiserver in {idle['seconds']:.0f} s",
                   _judge(own == 0 and seen == 0))
    children = sum(v for k, v in op["own_writes"].items()
                   if k.split("/")[0] in ("Deployment", "Service"))
    extra = sum(op["own_writes"].values()) - children
    writes = Target(names[2], f"{children:.0f} child writes, {extra:.0f} other writes: "
                    f"{extra / TARGET_N:.2f} per WebApp beyond the children (Events not counted)",
                    _judge(extra / TARGET_N <= MAX_EXTRA_WRITES))
    worst = {event: max(v) for event, v in op["latency"].items() if v}
    n = min(len(v) for v in op["latency"].values())
    latency = Target(names[3], "; ".join(f"{e}: max {s * 1000:.0f} ms" for e, s in worst.items())
                     + f" (n = {n} each)", _judge(all(s < MAX_LATENCY_S for s in worst.values())))
    return [rss, quiet, writes, latency]


def futile(drift: Mapping[str, Any] | None) -> Target:
    name = "0 futile writes after a hand edit"
    writes = (drift or {}).get("writes")
    if not writes:
        return Target(name, "not measured: no drift-repair data with write counts", NOT_MEASURED)
    extra = writes["operator_child_writes"] - writes["needed"]
    return Target(name, f"{writes['operator_child_writes']} operator writes on children for "
                  f"{writes['needed']} hand edits ({writes['needed'] // writes['rounds']} per "
                  f"round, {writes['rounds']} rounds): {max(extra, 0)} futile",
                  _judge(extra <= 0))


def twin(data: Mapping[str, Any] | None) -> Target:
    name = f"Docker twin ≥ {MIN_TWIN_RATIO}× the raw docker-py loop"
    if not data:
        return Target(name, "not measured: no Docker twin data", NOT_MEASURED)
    raw = statistics.median(r["wall_s"] for r in data["runs"]["raw"])
    engine = statistics.median(r["engine_s"] for r in data["runs"]["twin"])
    wall = statistics.median(r["wall_s"] for r in data["runs"]["twin"])
    return Target(name, f"{raw / engine:.2f}× (engine time), {raw / wall:.2f}× (wall time of "
                  f"the command); {data['replicas']} replicas, {len(data['runs']['twin'])} "
                  "repeats", _judge(raw / engine >= MIN_TWIN_RATIO))


def evaluate(data: Mapping[str, Mapping[str, Any] | None]) -> list[Target]:
    conv = data.get("convergence")
    return [*throughput(conv), *operator_extras(conv), futile(data.get("drift_repair")),
            twin(data.get("docker_twin"))]
