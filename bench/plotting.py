"""The convergence plot: rates per contender and size, and the latency CDF at the largest N.

Writes one PNG from data; measures nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench import summaries
from bench.contenders import CONTENDERS


def plot(data: Mapping[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summaries.summary(data)
    sizes = sorted({n for _, n in rows})
    contenders = [c for c in CONTENDERS if any(k[0] == c for k in rows)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / max(1, len(contenders))
    for i, c in enumerate(contenders):
        xs = [j + i * width for j, n in enumerate(sizes) if (c, n) in rows]
        left.bar(xs, [rows[(c, n)]["rate"] for n in sizes if (c, n) in rows], width, label=c)
    left.set_xticks([j + width * (len(contenders) - 1) / 2 for j in range(len(sizes))],
                    [f"N={n}" for n in sizes])
    left.set_ylabel("apps with every child created / s")
    left.set_title("Convergence throughput (median)")
    left.legend(fontsize=8)
    op = next((r for r in data["runs"] if "latency" in r), None)
    if op is not None:
        for event, values in op["latency"].items():
            ordered = sorted(v * 1000 for v in values)
            right.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))],
                       label=event)
        right.axvline(1000, color="grey", linestyle=":", linewidth=1)
        right.set_xscale("log")
        right.set_xlabel("ms")
        right.set_ylabel("fraction of events")
        right.set_title(f"Latency with N={op['n']} WebApps (CDF)")
        right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=90, metadata={"Software": None})
    plt.close(fig)
