"""The fault drills stop the Docker engine the kit started, never a user's own.

Stand-ins play the engines: a copy of ``sleep`` named ``dockerd`` for a user's daemon (its
/proc/PID/comm is ``dockerd``, as dockerd's own pid file check wants), and a ``dockerd`` on PATH
that `dockerd.ensure` starts for the kit's. No real engine is touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconcile_lab import pidfiles
from reconcile_lab.cluster import dockerd
from reconcile_lab.cluster.probing import ClusterError


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Pid files and PATH of a pretend host; every process started here is killed after."""
    monkeypatch.setenv("RECONCILE_LAB_STATE", str(tmp_path / "state"))
    monkeypatch.setattr(dockerd, "RECORD", tmp_path / "run" / "reconcile-lab" / "dockerd.pid")
    monkeypatch.setattr(dockerd, "DAEMON_PID_FILE", tmp_path / "run" / "docker.pid")
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "dockerd"
    fake.write_text("#!/bin/bash\nexec -a dockerd /bin/sleep 120\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    yield tmp_path
    for record in (pidfiles.read(dockerd.RECORD), pidfiles.read(dockerd.DAEMON_PID_FILE)):
        if record and not pidfiles.why_not(record, lambda argv: True):
            os.kill(record.pid, signal.SIGKILL)


def users_engine(host: Path) -> subprocess.Popen[bytes]:
    """A daemon the kit did not start, serving the socket (its pid in /var/run/docker.pid)."""
    binary = host / "users" / "dockerd"
    binary.parent.mkdir()
    shutil.copy("/bin/sleep", binary)
    proc = subprocess.Popen([str(binary), "120"])
    _started(proc.pid, str(binary))
    dockerd.DAEMON_PID_FILE.parent.mkdir(parents=True, exist_ok=True)
    dockerd.DAEMON_PID_FILE.write_text(f"{proc.pid}\n")
    return proc


def kits_engine(monkeypatch: pytest.MonkeyPatch) -> int:
    """`dockerd.ensure` starting the fake dockerd on PATH as if nothing answered before."""
    answers = iter([False, True])
    monkeypatch.setattr(dockerd, "answers", lambda timeout=2.0: next(answers))
    monkeypatch.setattr(dockerd, "_is_debian_root", lambda: True)
    dockerd.ensure(progress=lambda _: None)
    record = pidfiles.read(dockerd.RECORD)
    assert record is not None and record.start is not None, "ensure recorded no pid"
    _started(record.pid, "dockerd")  # the script's exec -a
    return record.pid


def _started(pid: int, argv0: str) -> None:
    deadline = time.monotonic() + 10
    while (pidfiles.cmdline(pid) or [""])[0] != argv0:
        assert time.monotonic() < deadline, "the stand-in dockerd did not start"
        time.sleep(0.01)


def test_a_users_engine_is_refused_with_the_reason_and_left_running(host: Path) -> None:
    engine = users_engine(host)
    with pytest.raises(ClusterError) as refused:
        dockerd.stop(progress=lambda _: None)
    message = str(refused.value)
    assert f"dockerd pid {engine.pid}" in message and "not started by reconcile-lab" in message
    assert "fix:" in message
    assert engine.poll() is None, "the drill stopped an engine the kit did not start"
    engine.kill()
    engine.wait()


def test_the_engine_ensure_started_is_recorded_and_stopped(
        host: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = kits_engine(monkeypatch)
    assert dockerd.own_daemon().pid == pid
    assert dockerd.stop(progress=lambda _: None) == pid
    assert pidfiles.cmdline(pid) in (None, [])  # gone (or a zombie of this process)
    assert not dockerd.RECORD.exists()


def test_a_users_engine_started_after_the_kits_went_away_is_refused(
        host: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = kits_engine(monkeypatch)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    engine = users_engine(host)
    with pytest.raises(ClusterError, match="stale"):
        dockerd.own_daemon()
    assert engine.poll() is None
    engine.kill()
    engine.wait()


def test_a_recorded_daemon_that_is_not_the_one_serving_is_refused(
        host: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = kits_engine(monkeypatch)
    engine = users_engine(host)  # e.g. DOCKER_HOST aside, the socket is someone else's
    with pytest.raises(ClusterError, match=f"not the recorded pid {pid}"):
        dockerd.stop(progress=lambda _: None)
    assert engine.poll() is None and pidfiles.cmdline(pid)
    engine.kill()
    engine.wait()
