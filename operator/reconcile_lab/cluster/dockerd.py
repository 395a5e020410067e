"""A Docker engine on demand.

When none answers on the socket and this is Debian with root, install Debian's ``docker.io``
(once) and start ``dockerd`` with its log in the state directory; otherwise say exactly how to
get one. Talks to the engine with a raw HTTP ping on its unix socket: no client library here.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from reconcile_lab import paths
from reconcile_lab.cluster.probing import ClusterError, Progress

SOCKET = Path(os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://"))


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
        pid = int(Path("/var/run/docker.pid").read_text().strip())
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
        subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if answers():
            progress("Docker engine answers")
            return
        time.sleep(0.3)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
    raise ClusterError(f"dockerd did not answer within {wait:.0f}s. Last lines of {log}:\n{tail}")
