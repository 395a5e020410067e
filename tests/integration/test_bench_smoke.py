"""`make bench` and `make bench-drift` end to end at a tiny size, into a directory of the test's
own: they save raw data and regenerate RESULTS.md from it, and the committed bench/ stays as it
was (no timing is asserted: this machine's speed is not the operator's). The full run is
`make bench`.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.test_makefile import make

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.slow]
SECTIONS = ("## Convergence throughput, peers and efficiency",
            "## Docker twin: containers converged per second",
            "## Drift repair and spec-change latency")


def test_bench_and_bench_drift_write_their_sections_where_they_are_told(tmp_path: Path) -> None:
    committed = _files(REPO / "bench")
    out, raw = tmp_path / "bench", tmp_path / "bench.json"
    env = {**os.environ, "RECONCILE_LAB_STATE": str(tmp_path / "state")}  # clusters of its own
    args = ["--sizes", "20", "--repeats", "1", "--contenders", "raw,operator,naive-kopf",
            "--rounds", "3", "--idle", "1", "--settle", "0.5", "--json", str(raw)]
    done = make("bench", f"BENCH_DIR={out}", f"BENCH_ARGS={shlex.join(args)}",
                "TWIN_ARGS=--replicas 3 --repeats 1", "DRIFT_ARGS=--rounds 2 --apps 2", env=env,
                timeout=900)
    make("bench-drift", f"BENCH_DIR={out}", "DRIFT_ARGS=--rounds 3 --apps 3", env=env,
         timeout=600)

    runs = json.loads(raw.read_text())["runs"]
    assert {r["contender"] for r in runs} == {"raw", "operator", "naive-kopf"}
    for run in runs:
        assert "error" not in run, run
        assert run["children_s"] > 0 and run["deployments_ready_s"] > 0
    operator = next(r for r in runs if r["contender"] == "operator")
    assert operator["owners_ready_s"] > 0 and operator["rss_mb"] > 0
    assert all(len(v) == 3 for v in operator["latency"].values())
    assert "| 20 | operator |" in done.stdout

    results = (out / "RESULTS.md").read_text()
    assert [s for s in SECTIONS if s not in results] == []
    assert "--replicas 3 --repeats 1" in results and "--rounds 3 --apps 3" in results
    assert (out / "convergence.png").stat().st_size > 0
    assert json.loads((out / "data" / "convergence.json").read_text())["runs"] == runs
    assert json.loads((out / "data" / "drift_repair.json").read_text())["writes"]["rounds"] == 3
    assert _files(REPO / "bench") == committed


def _files(where: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in where.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}
