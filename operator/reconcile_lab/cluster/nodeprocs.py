"""The real node's processes: detached from the caller, found by their command lines.

Used by realnode.py only. Knows nothing about what the processes are for; never signals a
process it was not handed.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from reconcile_lab.cluster import building
from reconcile_lab.cluster.probing import ClusterError


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def spawn(name: str, argv: list[str], *, node: Path) -> subprocess.Popen[bytes]:
    """Start one of the node's processes detached from us, its output in logs/NAME.log."""
    log = node / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_file = node / "pids" / f"{name}.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    # containerd finds its shim on PATH; kubelet and kube-proxy find iptables there.
    env = {**os.environ, "PATH": f"{building.CONTAINERD.directory}:{os.environ.get('PATH', '')}"
           ":/usr/sbin:/sbin"}
    env.pop("KUBECONFIG", None)  # never the user's cluster
    with log.open("ab") as out:
        # argv[0] names the node's directory: every process is then found by its command line.
        proc = subprocess.Popen([f"{node}/{name}", *argv[1:]], executable=argv[0], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc


def wait(what: str, proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float,
         *, node: Path) -> None:
    """Until ``ready()``; fails with the log's tail when the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    log = node / "logs" / f"{what}.log"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ClusterError(f"{what} exited with status {proc.returncode}. Last lines of "
                               f"{log}:\n{tail(log)}")
        if ready():
            return
        time.sleep(0.1)
    raise ClusterError(f"{what} was not ready within {timeout:.0f}s. Last lines of {log}:\n"
                       f"{tail(log)}")


def tail(log: Path, lines: int = 12) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def http_ok(url: str, *, ca: Path | None = None) -> bool:
    """A 200 from ``url``; for https, a certificate that ``ca`` signed for the URL's host."""
    context = ssl.create_default_context(cafile=str(ca)) if ca is not None else None
    try:
        with urllib.request.urlopen(url, timeout=1, context=context) as response:  # noqa: S310 (loopback)
            return bool(response.status == 200)
    except OSError:
        return False


def signal_all(pids: list[int] | set[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def gone(pids: list[int] | set[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
