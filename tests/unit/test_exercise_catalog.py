"""The exercise catalogue: complete for every exercise, the READMEs generated from it, its
commands made for another namespace without touching anyone else's app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconcile_lab import cli
from reconcile_lab.workshop import buttons, catalog, exercises, headers

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("entry", catalog.ENTRIES, ids=lambda e: e.number)
def test_every_exercise_has_its_metadata_hints_solution_and_reset(entry: catalog.Entry) -> None:
    assert re.fullmatch(r"\d\d", entry.number) and entry.title and entry.goal
    assert isinstance(entry.difficulty, catalog.Difficulty) and 0 < entry.minutes <= 60
    assert all(p in catalog.BY_NUMBER and p < entry.number for p in entry.prerequisites)
    assert len(entry.hints) >= 2 and all(h.strip() for h in entry.hints)
    assert len(set(entry.hints)) == len(entry.hints)
    assert entry.solution and all(c.strip() for c in entry.solution)
    assert catalog.reset(entry)
    assert entry.number in exercises.CHECKS, "every exercise has a check"
    assert (REPO / entry.directory / "README.md").is_file()


def test_the_hints_go_from_a_nudge_to_nearly_the_answer() -> None:
    # The last hint names a command to type; the first names none.
    for entry in catalog.ENTRIES:
        assert "`" not in entry.hints[0] or entry.number == "04", entry.number
        assert "`" in entry.hints[-1], entry.number


def test_every_file_a_solution_or_a_reset_names_exists() -> None:
    for entry in catalog.ENTRIES:
        for name in catalog.files_in((*entry.solution, *catalog.reset(entry))):
            assert (REPO / name).is_file(), f"{entry.number}: {name}"


@pytest.mark.parametrize("entry", catalog.ENTRIES, ids=lambda e: e.number)
def test_each_readme_header_is_the_one_generated_from_the_catalogue(entry: catalog.Entry) -> None:
    text = (REPO / entry.directory / "README.md").read_text()
    assert headers.header_of(text) == headers.header(entry), (
        f"{entry.directory}/README.md: its header block differs from catalog.py. fix: "
        "`reconcile-lab exercise readmes` (edit the data in catalog.py, not the block)")
    assert text.startswith(headers.BEGIN + f"\n# {entry.number} · {entry.title}\n")
    assert headers.with_header(text, entry) == text  # regenerating changes nothing
    outside = text.replace(headers.header(entry), "")
    assert "**Time.**" not in outside and "**Goal.**" not in outside, "typed by hand again"


def test_a_changed_catalogue_makes_the_readme_stale() -> None:
    entry = catalog.find("03")
    text = (REPO / entry.directory / "README.md").read_text()
    longer = entry._replace(minutes=entry.minutes + 1)
    assert headers.header_of(text) != headers.header(longer)
    rewritten = headers.with_header(text, longer)
    assert headers.header_of(rewritten) == headers.header(longer)
    assert rewritten.split(headers.END, 1)[1] == text.split(headers.END, 1)[1]  # prose kept


def test_readmes_check_says_which_readme_is_stale(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from reconcile_lab.workshop import command

    assert cli.main(["exercise", "readmes", "--check"]) == 0
    readme = tmp_path / "README.md"
    readme.write_text("# 01 · old title\n\nprose\n")
    monkeypatch.setattr(command, "readme_path", lambda e: readme if e.number == "01"
                        else REPO / e.directory / "README.md")
    assert cli.main(["exercise", "readmes", "--check"]) == 1
    assert f"stale {readme}" in capsys.readouterr().err
    assert cli.main(["exercise", "readmes"]) == 0
    assert readme.read_text() == headers.header(catalog.find("01")) + "\n\nprose\n"


def test_commands_in_the_default_namespace_are_as_a_participant_types_them() -> None:
    assert catalog.solution(catalog.find("02"))[0] == "kubectl scale webapp/hello --replicas=5"
    assert catalog.solution(catalog.find("03"))[1] == "docker kill hello-1"


def test_commands_for_another_namespace_touch_only_that_namespace() -> None:
    entry = catalog.find("03")
    commands = [*catalog.solution(entry, "team-a", "/copies"), *catalog.reset(entry, "team-a",
                                                                              "/copies")]
    for command in commands:
        for kubectl in re.finditer(r"\bkubectl\b", command):
            assert command[kubectl.end():].startswith(" -n team-a "), command
        assert "examples/exercises" not in command or "/copies/examples/exercises" in command
    assert "docker kill hello.team-a-1" in commands
    assert "reconcile-lab docker delete hello -n team-a" in commands


@pytest.mark.parametrize("namespace", ["x;rm -rf /", "Team A", "$(id)", "-n"])
def test_a_namespace_that_is_not_a_kubernetes_name_never_reaches_a_shell(
        namespace: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["exercise", "solve", "03", f"--namespace={namespace}"])
    assert exited.value.code == 2
    assert "is not a Kubernetes name" in capsys.readouterr().err


def test_the_copies_of_the_files_are_quoted_for_the_shell() -> None:
    command = catalog.in_namespace(f"kubectl apply -f {catalog.WEBAPP}", "team-a",
                                   "/home/a user/state/files")
    assert f"'/home/a user/state/files/{catalog.WEBAPP}'" in command


def test_reset_removes_only_this_app_and_makes_the_starting_state() -> None:
    for entry in catalog.ENTRIES:
        commands = catalog.reset(entry)
        deletes = [c for c in commands if " delete " in c and "lease" not in c]
        apps = ("hello", *entry.start.others)  # the apps the exercise itself makes
        assert deletes == [f"kubectl delete webapp {' '.join(apps)} --ignore-not-found",
                           *(f"reconcile-lab docker delete {a}" for a in apps)], entry.number
        start = entry.start
        assert (f"kubectl apply -f {start.webapp}" in commands) == bool(start.webapp)
        assert any(c.startswith("reconcile-lab docker apply") for c in commands) == \
            bool(start.webapp and start.twin)
        operator = (["reconcile-lab operator stop", "reconcile-lab fault proxy &",
                     "reconcile-lab operator start --through-fault-proxy"] if start.proxied
                    else ["reconcile-lab operator start" if start.operator
                          else "reconcile-lab operator stop"])
        assert commands[:len(operator)] == operator, entry.number
    assert catalog.find("01").start.webapp is None
    assert "the operator running" in catalog.find("07").start.describe()
    assert "none killed" in catalog.find("03").start.describe()


@pytest.mark.parametrize("module", ["catalog", "progress", "exercises", "observed",
                                    "controllers"])
def test_the_pure_parts_import_no_io(module: str) -> None:
    # pyproject's import-linter contract lists the pure modules; this keeps these two with them.
    import ast

    tree = ast.parse((REPO / "operator/reconcile_lab/workshop" / f"{module}.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom)}
    assert not imported & {"os", "subprocess", "socket", "time", "pathlib", "kubernetes",
                           "docker", "kopf", "urllib", "yaml"}, imported


def test_the_guides_session_plan_is_the_one_generated_from_the_plan_and_the_catalogue() -> None:
    from reconcile_lab.workshop import session

    guide = (REPO / "docs" / "workshop-guide.md").read_text()
    assert session.with_plan(guide) == guide, "run `reconcile-lab exercise readmes`"
    assert sum(b.minutes for b in session.PLAN) == 90
    for block in session.PLAN:
        if block.exercise is not None:  # every exercise in the plan has buttons to press
            assert buttons.faults(block.exercise), block.exercise
