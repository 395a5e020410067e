"""A participant's progress: hints one at a time, checks recorded, time from the first touch to
the first pass; and the commands that show it, on a state directory of the test's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconcile_lab import cli
from reconcile_lab.workshop import catalog, progress

E03 = catalog.find("03")


def test_hints_come_one_at_a_time_then_there_are_no_more() -> None:
    records: progress.Progress = {}
    shown = []
    for now in range(len(E03.hints) + 2):
        records, index = progress.next_hint(records, E03, float(now))
        shown.append(index)
    assert shown == [*range(len(E03.hints)), None, None]
    assert records["03"].hints == len(E03.hints)
    assert records["03"].started == 0.0


def test_time_runs_from_the_first_touch_to_the_first_pass() -> None:
    records = progress.touched({}, "03", 100.0)
    records = progress.checked(records, "03", False, 160.0)
    assert records["03"].attempted and records["03"].word() == "attempted"
    assert records["03"].seconds(400.0) == 300.0  # not done: still running
    records = progress.checked(records, "03", True, 700.0)
    records = progress.checked(records, "03", True, 800.0)  # a later PASS moves nothing
    records = progress.checked(records, "03", False, 900.0)  # a later FAIL undoes nothing
    record = records["03"]
    assert record.done and record.word() == "done" and record.checks == 4
    assert record.seconds(10_000.0) == 600.0
    assert progress.touched(records, "03", 5000.0)["03"].started == 100.0


def test_a_pass_that_solve_produced_says_so() -> None:
    records = progress.checked({}, "05", True, 1.0, by_solve=True)
    assert records["05"].word() == "done (solved)"
    assert progress.checked({}, "05", True, 1.0)["05"].word() == "done"


def test_progress_survives_json_and_ignores_unknown_fields() -> None:
    records = progress.checked(progress.next_hint({}, E03, 5.0)[0], "03", True, 65.0)
    data = json.loads(json.dumps(progress.to_json(records)))
    assert progress.from_json(data) == records
    data["exercises"]["03"]["later"] = 1
    assert progress.from_json(data) == records
    with pytest.raises(ValueError, match="not a progress file"):
        progress.from_json([])


def test_status_and_list_show_each_exercise() -> None:
    records = progress.checked(progress.touched({}, "01", 0.0), "01", True, 125.0)
    records = progress.checked(records, "02", False, 200.0)
    status = progress.format_status(records, 260.0).splitlines()
    assert status[0].split() == ["NN", "title", "status", "hints", "time", "spent"]
    row01 = next(line for line in status if line.startswith("01  "))
    row02 = next(line for line in status if line.startswith("02  "))
    assert "done" in row01 and "2 min" in row01 and "0/3" in row01
    assert "attempted" in row02 and "1 min so far" in row02
    assert status[-1] == f"1 of {len(catalog.ENTRIES)} done"
    listing = progress.format_list(records).splitlines()
    assert [line[:2] for line in listing[1:]] == [e.number for e in catalog.ENTRIES]
    assert "easy" in listing[1] and listing[1].split()[-1] == "done"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECONCILE_LAB_STATE", str(tmp_path))
    return tmp_path


def test_exercise_hint_reveals_one_more_each_time_and_counts_them(
        state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i, hint in enumerate(E03.hints, 1):
        assert cli.main(["exercise", "hint", "3"]) == 0
        assert capsys.readouterr().out.strip() == \
            f"hint {i}/{len(E03.hints)} for exercise 03: {hint}"
    assert cli.main(["exercise", "hint", "03"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no more hints for exercise 03") and "exercise solve 03" in out
    assert cli.main(["exercise", "status"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("03  "))
    assert f"{len(E03.hints)}/{len(E03.hints)}" in row and "started" in row
    assert (state / "exercises" / "progress.json").is_file()


def test_an_unknown_exercise_is_named_with_the_fix(state: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for verb in ("hint", "solve", "reset", "check"):
        assert cli.main(["exercise", verb, "42"]) == 2
        assert "no exercise '42'; `reconcile-lab exercise list`" in capsys.readouterr().err


def test_solve_without_a_cluster_says_make_cluster(state: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["exercise", "solve", "02", "--kubeconfig", str(state / "none")]) == 3
    err = capsys.readouterr().err
    assert "exercise 02: no cluster" in err and "`make cluster`" in err
