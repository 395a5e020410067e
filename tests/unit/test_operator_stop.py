"""`reconcile-lab operator stop` signals the kit's operator and nothing else.

Real processes stand in for the operator and for a bystander: what is checked is which of them
is still alive afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconcile_lab import cli, pidfiles
from reconcile_lab.declarative import command

# What /proc/PID/cmdline shows for the background operator (kopf_argv), minus the options.
OPERATOR_ARGV = ["-m", "kopf", "run", "-m", command.HANDLERS]
SLEEPER = "import time; time.sleep(120)"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECONCILE_LAB_STATE", str(tmp_path))
    return tmp_path


@pytest.fixture
def spawn() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait(timeout=10)


def _start(spawn: list[subprocess.Popen[bytes]], *argv: str) -> subprocess.Popen[bytes]:
    # `python -c CODE ARG…`: the extra arguments land in /proc/PID/cmdline as they are.
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER, *argv])
    spawn.append(proc)
    deadline = time.monotonic() + 10
    while SLEEPER not in (pidfiles.cmdline(proc.pid) or []):  # until the exec is visible
        assert time.monotonic() < deadline, "the stand-in process did not start"
        time.sleep(0.01)
    return proc


def _stop() -> int:
    return cli.main(["operator", "stop"])


def test_an_unrelated_process_behind_a_stale_pid_file_is_left_alone(
        state: Path, spawn: list[subprocess.Popen[bytes]],
        capsys: pytest.CaptureFixture[str]) -> None:
    bystander = _start(spawn)  # e.g. the pid was reused after a reboot
    (state / "operator.pid").write_text(str(bystander.pid))
    assert _stop() == 0
    assert bystander.poll() is None, "operator stop killed a process that is not the operator"
    assert not (state / "operator.pid").exists()
    err = capsys.readouterr().err
    assert "stale" in err and str(state / "operator.pid") in err and "signalled nothing" in err


def test_a_reused_pid_with_the_operator_command_line_but_another_start_time_is_left_alone(
        state: Path, spawn: list[subprocess.Popen[bytes]]) -> None:
    lookalike = _start(spawn, *OPERATOR_ARGV)
    start = pidfiles.start_time(lookalike.pid)
    assert start is not None
    (state / "operator.pid").write_text(pidfiles.format_record(
        pidfiles.Record(lookalike.pid, start - 1)))
    assert command.running_pid() is None
    assert _stop() == 0
    assert lookalike.poll() is None
    assert not (state / "operator.pid").exists()


def test_the_recorded_operator_is_stopped(state: Path,
                                          spawn: list[subprocess.Popen[bytes]]) -> None:
    operator = _start(spawn, *OPERATOR_ARGV)
    pidfiles.write(state / "operator.pid", operator.pid)
    assert command.running_pid() == operator.pid
    assert _stop() == 0
    assert operator.wait(timeout=20) != 0  # SIGTERM
    assert not (state / "operator.pid").exists()


def test_a_pid_file_of_the_older_format_is_still_checked_against_the_command_line(
        state: Path, spawn: list[subprocess.Popen[bytes]]) -> None:
    operator = _start(spawn, *OPERATOR_ARGV)
    bystander = _start(spawn)
    (state / "operator.pid").write_text(f"{bystander.pid}\n")
    assert command.running_pid() is None
    (state / "operator.pid").write_text(f"{operator.pid}\n")
    assert command.running_pid() == operator.pid


def test_pid_file_records_parse_and_format() -> None:
    assert pidfiles.parse("42") == pidfiles.Record(42, None)
    assert pidfiles.parse("42 1234\n") == pidfiles.Record(42, 1234)
    assert pidfiles.parse("") is None and pidfiles.parse("x y") is None
    assert pidfiles.parse(pidfiles.format_record(pidfiles.Record(7, 9))) == (7, 9)
