"""The harness's own processes: commands run to completion, and programs left running.

``run`` runs a command to its end with its output appended to a log of the run;
``Background`` keeps one program running in a session of its own (the operator, the twin's
``--watch`` loop) and stops it by its process group; ``OperatorProcess`` is the operator that
way, with its liveness endpoint; ``FaultProxy`` a fault proxy in front of a controller's
API. An I/O adapter: it decides nothing about what a result means, and it never signals a
process it did not start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from reconcile_lab.cluster import dockerd, probing
from reconcile_lab.compare import probes


class DriverError(RuntimeError):
    """A command of the harness itself failed (not a measured failure of an engine)."""


def run(argv: list[str], *, log: Path, env: dict[str, str], check: bool = True,
        timeout: float = 90, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                            env=env, input=input)
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}[exit {result.returncode}]\n")
    if check and result.returncode != 0:
        raise DriverError(f"{' '.join(argv[:4])}… failed (exit {result.returncode}): "
                          f"{(result.stderr or result.stdout).strip()[-400:]}")
    return result


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Background:
    """One program in a session of its own, its output appended to ``log``."""

    def __init__(self, log: Path, env: dict[str, str]) -> None:
        self.log = log
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, argv: list[str]) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env,
                                         start_new_session=True)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15) -> int | None:
        """Signal its process group, SIGKILL it after ``timeout``; its PID, None if not running."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return None
        pid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            self.proc.wait(timeout=timeout)
        self.proc = None
        return pid


class Host:
    """The Docker host every Docker engine of a scenario shares, as a machine that can die:
    ``stop`` once every engine is ready for it stops the kit's own dockerd, and with it every
    container on the host; ``start`` starts it again. Each happens once, whichever engine's
    driver asks first; another engine's (not the kit's own) is never stopped."""

    def __init__(self, engines: int, *, say: Callable[[str], None]) -> None:
        self._ready = threading.Barrier(engines)
        self._lock = threading.Lock()
        self.say = say
        self.down = False
        self._refused = ""

    def stop(self) -> None:
        try:
            self._ready.wait(timeout=120)  # no engine is still setting up when the host goes
        except threading.BrokenBarrierError:
            raise DriverError("the other Docker engines never got ready for the host to "
                              "stop") from None
        with self._lock:
            if self._refused:
                raise DriverError(self._refused)
            if self.down:
                return
            try:
                dockerd.stop(progress=self.say)
            except probing.ClusterError as e:
                self._refused = f"the host's engine was not stopped: {e}"
                raise DriverError(self._refused) from None
            self.down = True

    def start(self) -> None:
        with self._lock:
            if self.down:
                dockerd.ensure(progress=self.say)
                self.down = False


class FaultProxy:
    """``reconcile-lab fault proxy`` (``--docker``: in front of the engine) in the run's state
    directory; ``start`` returns what it writes once it listens (a kubeconfig's path, a
    DOCKER_HOST)."""

    def __init__(self, *, docker: bool, log: Path, env: dict[str, str],
                 kubeconfig: Path | None = None) -> None:
        from reconcile_lab.faults import command

        self.docker = docker
        self.kubeconfig = kubeconfig
        self.written = command.docker_host_path() if docker else command.kubeconfig_path()
        self.control = command.control_path(docker=docker)
        self.process = Background(log, env)

    def start(self, timeout: float = 30) -> str:
        """Start it; the kubeconfig's path or the DOCKER_HOST that goes through it."""
        self.written.unlink(missing_ok=True)
        self.process.start([sys.executable, "-m", "reconcile_lab", "fault", "proxy",
                            *(["--docker"] if self.docker else []),
                            *(["--kubeconfig", str(self.kubeconfig)] if self.kubeconfig else [])])
        deadline = time.monotonic() + timeout
        while not self.written.is_file():
            if not self.process.running() or time.monotonic() > deadline:
                raise DriverError(f"the fault proxy did not start; see {self.process.log}")
            time.sleep(0.1)
        return self.written.read_text().strip() if self.docker else str(self.written)

    def switch(self, word: str) -> None:
        from reconcile_lab.faults import proxy

        try:
            proxy.send(self.control, word)
        except (proxy.ProxyError, OSError) as e:
            raise DriverError(f"fault proxy: {word}: {e}; see {self.process.log}") from None

    def stop(self) -> None:
        self.process.stop()


class OperatorProcess:
    """The operator, as ``reconcile-lab operator run`` in a process of its own."""

    def __init__(self, *, kubeconfig: Path, namespace: str, log: Path,
                 env: dict[str, str]) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.health_port = free_port()
        self.process = Background(log, env)

    def start(self) -> None:
        self.process.start(
            [sys.executable, "-m", "reconcile_lab", "operator", "run",
             "--kubeconfig", str(self.kubeconfig), "--namespace", self.namespace,
             "--log-format", "json", "--metrics-port", "0",
             "--health-port", str(self.health_port)])

    def healthy(self) -> bool:
        return self.process.running() and probes.healthz(self.health_port)

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if not self.process.running() or time.monotonic() > deadline:
                raise DriverError(f"the operator did not start; see {self.process.log}")
            time.sleep(0.2)

    def kill(self, sig: int = signal.SIGKILL) -> int | None:
        return self.process.stop(sig, timeout=30)
