"""Every figure bench/RESULTS.md and docs/reliability.md publish is what their generators make
of the raw data committed beside them: a figure edited by hand, or data changed without
regenerating, fails here. The targets and quantiles say what the data does not hold."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench import article, cluster_times, drills, results, sections, summaries, targets
from tests.conftest import REPO
from tests.integration.test_makefile import make

BENCH = REPO / "bench"
RELIABILITY = REPO / "docs" / "reliability.md"
RELIABILITY_DATA = REPO / "docs" / "data" / "reliability.json"


def test_results_md_is_exactly_what_the_committed_data_generates() -> None:
    assert (BENCH / "RESULTS.md").read_text() == sections.document(results.load_all(BENCH))


def test_the_reliability_table_is_exactly_what_the_committed_data_generates() -> None:
    committed = RELIABILITY.read_text()
    data = json.loads(RELIABILITY_DATA.read_text())
    assert drills.replace(committed, data) == committed


def test_the_cluster_times_are_exactly_what_the_committed_data_generates() -> None:
    committed = cluster_times.DOC.read_text()
    assert cluster_times.replace(committed, json.loads(cluster_times.DATA.read_text())) == \
        committed


@pytest.mark.parametrize("doc", article.DOCS, ids=lambda p: p.name)
def test_the_articles_claims_are_exactly_what_the_committed_compare_run_generates(
        doc: Path) -> None:
    committed = doc.read_text()
    data = json.loads(article.DATA.read_text())
    assert article.replace(committed, data, where=str(doc)) == committed
    # Every claim's scenario was measured, on every engine it applies to.
    measured = {s["id"]: s for s in data["results"]["scenarios"]}
    for claim in article.CLAIMS:
        assert claim.scenario in measured, claim
        assert not [t["engine"] for t in measured[claim.scenario]["timelines"] if t["error"]]


def test_make_article_report_rewrites_the_same_text(tmp_path: Path) -> None:
    docs = []
    for doc in article.DOCS:
        copy = tmp_path / doc.name
        copy.write_text(doc.read_text().replace("✅", "typed"))
        docs += ["--doc", str(copy)]
    make("article-report", f"ARTICLE_ARGS={' '.join(docs)}")
    for doc in article.DOCS:
        assert (tmp_path / doc.name).read_text() == doc.read_text()


def test_a_claims_table_says_so_when_a_scenario_was_not_measured() -> None:
    data = json.loads(article.DATA.read_text())
    data["results"]["scenarios"] = data["results"]["scenarios"][1:]
    assert "| not measured |" in article.table(data)


@pytest.mark.parametrize("path", [*(results.data_file(BENCH, n) for n in results.NAMES),
                                  RELIABILITY_DATA, cluster_times.DATA, article.DATA],
                         ids=lambda p: p.name)
def test_every_committed_data_file_names_its_commit_date_machine_and_command(path: Path) -> None:
    meta = json.loads(path.read_text())["meta"]
    assert {"commit", "dirty", "date", "machine", "cores", "cpu", "python", "argv"} <= set(meta)
    assert meta["commit"] != "unknown" and meta["argv"]


def test_make_bench_report_and_reliability_report_rewrite_the_same_text(tmp_path: Path) -> None:
    shutil.copytree(BENCH / "data", tmp_path / "data")
    doc = tmp_path / "reliability.md"
    doc.write_text(RELIABILITY.read_text().replace("| not measured |", "| typed |"))
    make("bench-report", f"BENCH_DIR={tmp_path}")
    make("reliability-report", f"RELIABILITY_DOC={doc}")
    assert (tmp_path / "RESULTS.md").read_text() == (BENCH / "RESULTS.md").read_text()
    assert (tmp_path / "convergence.png").stat().st_size > 0
    assert doc.read_text() == RELIABILITY.read_text()


# --- the figures say how much data they rest on ----------------------------------------------


def test_a_tail_quantile_from_too_few_samples_is_not_shown_as_one() -> None:
    fifty, hundred = [i / 1000 for i in range(50)], [i / 1000 for i in range(100)]
    assert summaries.quantile_ms(fifty, 0.99) == "n < 100"
    assert summaries.quantile_ms(fifty, 0.95) == "47"
    assert summaries.quantile_ms(hundred, 0.99) == "98"
    assert summaries.quantile_ms(fifty[:19], 0.95) == "n < 20"
    (row,) = summaries.latency_rows({"e": fifty})
    assert row == "| e | 50 | 24 | 47 | n < 100 | 49 |"


def _run(contender: str, n: int, repeat: int, children_s: float) -> dict[str, Any]:
    return {"contender": contender, "n": n, "repeat": repeat, "children_s": children_s,
            "deployments_ready_s": children_s, "writes": {"deployments": n, "services": n}}


def _convergence(n: int, seconds: dict[str, list[float]]) -> dict[str, Any]:
    runs = [_run(c, n, r, s) for c, values in seconds.items() for r, s in enumerate(values)]
    op = next(r for r in runs if r["contender"] == "operator")
    op.update(rss_mb=120.0, cpu_s=30.0, own_writes={"Deployment/apply": n, "Service/apply": n,
                                                     "WebApp/status": 2 * n},
              idle={"seconds": 60, "writes": {}, "own_writes": {}, "cpu_s": 0.3},
              after_latency={"rss_mb": 130.0, "peak_rss_mb": 140.0, "cpu_s": 40.0},
              latency={"spec.image changed → Deployment updated": [0.05] * 200})
    return {"meta": {}, "concurrency": 32, "runs": runs}


def test_targets_are_judged_from_three_paired_repeats_at_1000() -> None:
    conv = _convergence(1000, {"raw": [40, 35, 30], "operator": [60, 70, 50],
                               "naive-kopf": [80, 75, 70], "sample-controller": [200] * 3})
    rows = targets.evaluate({"convergence": conv, "drift_repair": None, "docker_twin": None})
    assert rows[0].met == targets.MET  # 0.67, 0.50, 0.60 → median 0.60
    assert "median **0.60×**" in rows[0].measured
    assert rows[1].met == targets.MET
    assert [t.met for t in rows[2:6]] == [targets.MET] * 4
    assert [t.met for t in rows[6:]] == [targets.NOT_MEASURED] * 2

    slower = copy.deepcopy(conv)
    next(r for r in slower["runs"] if r["contender"] == "operator")["idle"]["own_writes"] = \
        {"Deployment/apply": 1}
    for r in slower["runs"]:
        if r["contender"] == "operator":
            r["children_s"] = 80.0
    rows = targets.evaluate({"convergence": slower})
    assert rows[0].met == targets.NOT_MET and rows[1].met == targets.NOT_MET
    assert rows[3].met == targets.NOT_MET  # one write while idle


def test_a_target_the_data_does_not_hold_is_not_measured_never_guessed() -> None:
    small = _convergence(100, {"raw": [3.0], "operator": [6.0]})
    rows = targets.evaluate({"convergence": small, "drift_repair": None, "docker_twin": None})
    assert {t.met for t in rows} == {targets.NOT_MEASURED}
    assert "N=100" in rows[0].measured
    two = _convergence(1000, {"raw": [40, 35], "operator": [60, 70]})
    assert targets.evaluate({"convergence": two})[0].met == targets.NOT_MEASURED


def test_futile_writes_are_the_writes_beyond_one_per_hand_edit() -> None:
    writes = {"rounds": 2, "needed": 8, "operator_child_writes": 10}
    assert targets.futile({"writes": writes}).met == targets.NOT_MET
    assert "2 futile" in targets.futile({"writes": writes}).measured
    assert targets.futile({"writes": {**writes, "operator_child_writes": 8}}).met == targets.MET


# --- the reliability table --------------------------------------------------------------------


def _records(*records: tuple[str, str, dict[str, float]]) -> dict[str, Any]:
    meta = {"commit": "abc1234", "dirty": False, "date": "2026-01-01 10:00", "machine": "x86_64",
            "cpu": "cpu", "cores": 2, "python": "3.11", "argv": ["pytest"], "minutes": 1.0}
    return {"meta": meta, "records": [{"test": t, "outcome": o, "figures": f}
                                      for t, o, f in records]}


def test_the_measured_column_comes_from_records_and_says_when_there_are_none() -> None:
    failover = next(d for d in drills.DRILLS if "two operator replicas" in d.fault)
    data = _records((failover.test, "passed", {"standby_acted_while_active": 0,
                                               "failover_s": 9.43}),
                    (failover.test, "passed", {"standby_acted_while_active": 0,
                                               "failover_s": 10.04}))
    table = drills.table(data)
    assert "failover 9.4–10.0 s" in table and "standby acted 0 times" in table
    others = [line for line in table.splitlines() if line.startswith("| ") and "replicas" not in
              line and "---" not in line and "fault" not in line]
    assert others and all(f"| {drills.NOT_MEASURED} |" in line for line in others)
    assert "commit `abc1234`" in table

    failed = drills.table(_records((failover.test, "failed", {})))
    assert "**failed** in 1 of 1 runs" in failed


def test_only_the_block_between_the_markers_is_regenerated() -> None:
    doc = f"# Title\n\nprose 1.5 s\n{drills.BEGIN}\nstale-table-xyz\n{drills.END}\n\nmore prose\n"
    out = drills.replace(doc, _records())
    assert out.startswith("# Title\n\nprose 1.5 s\n") and out.endswith("\n\nmore prose\n")
    assert "stale-table-xyz" not in out
    with pytest.raises(ValueError, match="no generated block"):
        drills.replace("# no markers\n", _records())


def test_every_drill_with_records_of_several_runs_is_described() -> None:
    # Figures come as one list per name, a value per run: every description takes them.
    values = {"newcomer_s": [12.5, 14.0], "peak_rss_mb": [184.0, 190.0], "rounds": [9, 9],
              "minutes": [10.1, 10.3], "rss_first_round_mb": [120.0, 121.0],
              "rss_last_round_mb": [125.0, 126.0], "rss_slope_mb_per_min": [0.4, 0.6]}
    for name in ("backlog", "soak"):
        drill = next(d for d in drills.DRILLS if f"test_{name}.py" in d.test)
        text = drill.measured(values)
        assert "–" in text, text  # a range over the two runs
