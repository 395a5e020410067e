"""The fault proxy as the tests run it: ``reconcile-lab fault proxy`` in a subprocess,
switched with ``reconcile-lab fault cut|stall|heal`` as a person would; and a cluster of a
drill's own, for an apiserver configured unlike the session's."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import REPO, Cluster, Operator, wait_for


class FaultProxy:
    def __init__(self, proc: subprocess.Popen[bytes], kubeconfig: Path, log: Path) -> None:
        self.proc = proc
        self.kubeconfig = kubeconfig
        self.log = log

    def switch(self, word: str) -> str:
        result = subprocess.run([sys.executable, "-m", "reconcile_lab", "fault", word],
                                capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def status(self, word: str = "status") -> dict[str, Any]:
        """Straight to the control socket, without a CLI's start-up: for a fault that must
        land at a given moment."""
        from reconcile_lab.faults import command, proxy

        return proxy.send(command.control_path(), word)


@contextmanager
def fault_proxy(upstream_kubeconfig: Path, log: Path) -> Iterator[FaultProxy]:
    """A proxy in front of ``upstream_kubeconfig``'s apiserver (its state in the test
    session's RECONCILE_LAB_STATE); stopped with Ctrl-C when the block ends."""
    from reconcile_lab.faults import command

    written = command.kubeconfig_path()
    written.unlink(missing_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "reconcile_lab", "fault", "proxy",
                                 "--kubeconfig", str(upstream_kubeconfig)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: written.is_file() or proc.poll() is not None, timeout=30,
                 what="the fault proxy's kubeconfig")
        assert proc.poll() is None, log.read_text()
        yield FaultProxy(proc, written, log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                raise AssertionError(f"the fault proxy ignored Ctrl-C\n{log.read_text()}") \
                    from None




@contextmanager
def operator_behind_proxy(cluster: Cluster, operator: Operator, namespace: str, tmp_path: Path,
                          **env: str) -> Iterator[tuple[Operator, FaultProxy]]:
    """An operator serving ``namespace`` only, under a Role of its own, whose every request
    goes through a fault proxy; the session's operator (every namespace) is out of the way
    meanwhile and back afterwards."""
    from tests.integration.test_ordinary_use import scoped_kubeconfig

    direct = scoped_kubeconfig(cluster, namespace, "proxied-operator",
                               tmp_path / "operator.kubeconfig")
    operator.kill()
    try:
        with fault_proxy(direct, tmp_path / "proxy.log") as proxy:
            scoped = Operator(cluster, tmp_path / "scoped.log", "--namespace", namespace,
                              kubeconfig=proxy.kubeconfig, env=env)
            try:
                scoped.start()
                yield scoped, proxy
            finally:
                scoped.kill()
    finally:
        operator.start()


@contextlib.contextmanager
def _state(path: Path) -> Iterator[None]:
    before = os.environ["RECONCILE_LAB_STATE"]
    os.environ["RECONCILE_LAB_STATE"] = str(path)
    try:
        yield
    finally:
        os.environ["RECONCILE_LAB_STATE"] = before


@contextmanager
def own_cluster(state: Path, name: str, apiserver_args: dict[str, str]) -> Iterator[Cluster]:
    """A second cluster beside the session's, in a state directory of its own, its
    kube-apiserver run with ``apiserver_args``, the CRD installed."""
    from reconcile_lab.cluster import kwok, kwokconfig, probing

    say = lambda m: print(f"[{name} cluster] {m}", file=sys.stderr)  # noqa: E731
    with _state(state):
        kubeconfig = kwok.up(progress=say, nodes="kwok", apiserver_args=apiserver_args)
        audit = kwokconfig.audit_log()
    try:
        c = Cluster(kubeconfig, probing.kubectl_binary(), audit)
        c.kubectl("apply", "--server-side", "--field-manager=reconcile-lab", "-f",
                  str(REPO / "crds"))
        wait_for(lambda: c.kubectl("wait", "--for", "condition=established", "--timeout=5s",
                                   "-f", str(REPO / "crds"), check=False).returncode == 0,
                 timeout=60, what="the CRD established")
        yield c
    finally:
        with _state(state):
            kwok.down(progress=say)
