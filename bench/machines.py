"""Where and from what a measurement came: commit (and whether the tree had uncommitted
changes), date, machine, cores, CPU model, Python, load, the command line.

Reads git and /proc; measures nothing.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# What the benchmarks and drills write themselves: a run that has already written them is
# still a run of the committed code.
OUTPUTS = ("bench/data", "bench/RESULTS.md", "bench/convergence.png", "docs/data",
           "docs/reliability.md", "docs/real-node.md")


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=False).stdout.strip()


def commit() -> tuple[str, bool]:
    """The short commit of HEAD, and whether tracked files other than the outputs differ."""
    return _git("rev-parse", "--short", "HEAD") or "unknown", bool(_git(
        "status", "--porcelain", "--untracked-files=no", "--", ".",
        *(f":(exclude){path}" for path in OUTPUTS)))


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def describe(script: str, argv: Sequence[str], *, started: float,
             versions: Mapping[str, str]) -> dict[str, Any]:
    """The ``meta`` of a data file; ``started`` is ``time.monotonic()`` at the start."""
    head, dirty = commit()
    return {"commit": head, "dirty": dirty, "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": platform.machine(), "cores": os.cpu_count(), "cpu": cpu_model(),
            "python": platform.python_version(), "load": list(os.getloadavg()),
            "versions": dict(versions), "argv": [script, *argv],
            "minutes": round((time.monotonic() - started) / 60, 2)}
