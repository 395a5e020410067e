"""A Docker engine on demand.

When none answers on the socket and this is Debian with root, install Debian's ``docker.io``
(once) and start ``dockerd`` with its log in the state directory; otherwise say exactly how to
get one. Talks to the engine with a raw HTTP ping on its unix socket: no client library here.

A dockerd this module starts is recorded (pid and start time) in :data:`RECORD`, so that the
fault drills can tell the kit's own engine from a user's: :func:`stop` signals only the former.
The record lives in /run, beside dockerd's own pid file, not in the state directory: there is
one engine per host whatever RECONCILE_LAB_STATE says, and a reboot clears both.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from reconcile_lab import paths, pidfiles
from reconcile_lab.cluster.probing import ClusterError, Progress

SOCKET = Path(os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://"))
DAEMON_PID_FILE = Path("/var/run/docker.pid")  # written by every dockerd, ours or not
RECORD = Path("/run/reconcile-lab/dockerd.pid")  # written only for the dockerd started here


class UnixConnection(http.client.HTTPConnection):
    """HTTP over the engine's unix socket (the stdlib speaks TCP only)."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self._path))


def answers(timeout: float = 2.0) -> bool:
    """Whether a Docker engine answers /_ping on the socket."""
    try:
        conn = UnixConnection(SOCKET, timeout)
        conn.request("GET", "/_ping")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def log_file() -> Path:
    return paths.state_dir() / "dockerd.log"


def _live_daemon() -> int | None:
    """The pid of a running dockerd according to its pid file, if any."""
    try:
        pid = int(DAEMON_PID_FILE.read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return pid if comm == "dockerd" else None


def _is_debian_root() -> bool:
    return Path("/etc/debian_version").exists() and os.geteuid() == 0


def ensure(*, progress: Progress, wait: float = 60.0) -> None:
    """Make sure a Docker engine answers; install and start one when we may."""
    if answers():
        return
    if not _is_debian_root():
        raise ClusterError(
            f"no Docker engine answers on {SOCKET}.\n"
            "  fix: start Docker Desktop or `sudo systemctl start docker`; on Debian/Ubuntu "
            "install it with `sudo apt-get install docker.io`, then run again."
        )
    if shutil.which("dockerd") is None:
        progress("installing Debian's docker.io (once)…")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        result = subprocess.run(["apt-get", "install", "-y", "-q", "docker.io"], env=env,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            result = subprocess.run(["apt-get", "install", "-y", "-q", "docker.io"], env=env,
                                    capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ClusterError(f"apt-get install docker.io failed:\n{result.stderr[-1500:]}\n"
                               "  fix: check the Debian package mirror, then run again.")
    if (pid := _live_daemon()) is not None:
        # A dockerd that is still starting or shutting down: a second one would refuse to start
        # ("pid file found"), so wait for this one to answer or to go.
        progress(f"waiting for dockerd (pid {pid}) to finish starting or stopping")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _live_daemon() == pid and not answers():
            time.sleep(0.3)
        if answers():
            progress("Docker engine answers")
            return
        if _live_daemon() is not None:
            raise ClusterError(f"dockerd (pid {pid}) neither answers nor exits.\n"
                               f"  fix: look at {log_file()}, stop it (kill {pid}), run again.")
    log = log_file()
    log.parent.mkdir(parents=True, exist_ok=True)
    progress(f"starting dockerd (log: {log})")
    with log.open("a") as out:
        proc = subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    pidfiles.write(RECORD, proc.pid)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if answers():
            progress("Docker engine answers")
            return
        time.sleep(0.3)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
    raise ClusterError(f"dockerd did not answer within {wait:.0f}s. Last lines of {log}:\n{tail}")


# --- the kit's own engine, for the fault drills -----------------------------------------------


def is_dockerd(argv: Sequence[str]) -> bool:
    return bool(argv) and Path(argv[0]).name == "dockerd"


def own_daemon() -> pidfiles.Record:
    """The record of the dockerd serving :data:`SOCKET`, when this kit started it; else refuse.

    Raises ClusterError naming the engine that runs instead: a user's engine is not the kit's to
    stop, whatever a drill wants.
    """
    serving = _live_daemon()
    record = pidfiles.read(RECORD)
    why = ""
    if record is None:
        why = f"no dockerd started by reconcile-lab is recorded ({RECORD} is missing)"
    elif why := pidfiles.why_not(record, is_dockerd):
        why = f"{RECORD} is stale: {why}"
    elif serving is not None and serving != record.pid:
        why = f"the engine on {SOCKET} is dockerd pid {serving}, not the recorded pid {record.pid}"
    if why or record is None:
        running = f"dockerd pid {serving}" if serving is not None else "no dockerd seen"
        raise ClusterError(
            f"the Docker engine here ({running}) was not started by reconcile-lab: {why}. "
            "Refusing to stop it: it may be yours, with your containers.\n"
            "  fix: to run this drill, stop your own engine and let the kit start one "
            "(`reconcile-lab engine up`); otherwise leave the drill out (pytest -m 'not chaos').")
    return record


def stop(*, progress: Progress, wait: float = 60.0) -> int:
    """Stop the kit's own dockerd (SIGTERM, as `systemctl stop` does); refuse any other engine.

    Returns the pid it stopped. Containers without a restart policy stop with it.
    """
    record = own_daemon()
    pid = record.pid
    progress(f"stopping the kit's dockerd (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    # A zombie counts as gone: when this process started dockerd, it is its child.
    while not pidfiles.why_not(record, is_dockerd) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    if not pidfiles.why_not(record, is_dockerd):
        raise ClusterError(f"dockerd (pid {pid}) did not stop within {wait:.0f}s.\n"
                           f"  fix: look at {log_file()}; `kill -9 {pid}` if it hangs.")
    RECORD.unlink(missing_ok=True)
    return pid
