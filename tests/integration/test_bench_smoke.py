"""The benchmark harness runs end to end at a tiny size and produces numbers (no timing is
asserted: this machine's speed is not the operator's). The full benchmark is `make bench`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def test_convergence_benchmark_produces_numbers(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "RECONCILE_LAB_STATE": str(tmp_path / "state"),  # a cluster of its own
           "PYTHONPATH": f"{REPO / 'operator'}:{REPO}"}
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "convergence.py"), "--sizes", "20", "--repeats",
         "1", "--contenders", "raw,operator,naive-kopf", "--rounds", "3", "--idle", "1",
         "--settle", "0.5", "--json", str(out)],
        env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(out.read_text())["runs"]
    assert {r["contender"] for r in runs} == {"raw", "operator", "naive-kopf"}
    for run in runs:
        assert "error" not in run, run
        assert run["children_s"] > 0 and run["deployments_ready_s"] > 0
    operator = next(r for r in runs if r["contender"] == "operator")
    assert operator["owners_ready_s"] > 0 and operator["rss_mb"] > 0
    assert all(len(v) == 3 for v in operator["latency"].values())
    assert "| 20 | operator |" in result.stdout
