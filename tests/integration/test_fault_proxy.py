"""The fault proxy against the real apiserver: TLS end to end through it, and each mode
doing to real connections what it says (a watch silenced, a request reset)."""

from __future__ import annotations

import queue
import subprocess
import threading
from pathlib import Path

import pytest

from tests.conftest import Cluster, wait_for
from tests.integration.proxying import fault_proxy

pytestmark = [pytest.mark.cluster]


def _through(cluster: Cluster, kubeconfig: Path, *args: str,
             timeout: str = "5s") -> subprocess.CompletedProcess[str]:
    return subprocess.run([cluster.kubectl_bin, "--kubeconfig", str(kubeconfig),
                           f"--request-timeout={timeout}", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in stdout],
                     daemon=True).start()
    return lines


def _next(lines: queue.Queue[str], timeout: float) -> str | None:
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


def test_the_proxy_forwards_stalls_and_cuts_real_connections(
        cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    with fault_proxy(cluster.kubeconfig, tmp_path / "proxy.log") as proxy:
        # TLS end to end: the apiserver's own CA verifies it through the proxy.
        ok = _through(cluster, proxy.kubeconfig, "get", "namespace", namespace, "-o", "name")
        assert ok.returncode == 0 and ok.stdout.strip() == f"namespace/{namespace}", ok.stderr
        watch = subprocess.Popen(
            [cluster.kubectl_bin, "--kubeconfig", str(proxy.kubeconfig), "get", "configmaps",
             "-n", namespace, "--watch", "-o", "name", "--field-selector",
             "metadata.name!=kube-root-ca.crt"], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        try:
            lines = _lines(watch)
            cluster.kubectl("create", "configmap", "-n", namespace, "before")
            assert _next(lines, 10) == "configmap/before"

            stalled = proxy.switch("stall")
            assert stalled.startswith("stall:") and " 0 stalled" not in stalled, stalled
            cluster.kubectl("create", "configmap", "-n", namespace, "during")
            assert _next(lines, 4) is None, "the stalled watch still delivered an event"
            # New connections pass during a stall: only the old ones are silent.
            fresh = _through(cluster, proxy.kubeconfig, "get", "configmap", "-n", namespace,
                             "during", "-o", "name")
            assert fresh.returncode == 0, fresh.stderr
            proxy.switch("heal")
            assert _next(lines, 10) == "configmap/during", "the held event was lost on heal"

            cut = proxy.switch("cut")
            assert proxy.status()["reset_total"] >= 1, cut  # the watch's connection at least
            wait_for(lambda: watch.poll() is not None, timeout=10,
                     what="the watch to end when its connection is reset")
            refused = _through(cluster, proxy.kubeconfig, "get", "namespace", namespace)
            assert refused.returncode != 0
            # Reset at once, not left to time out (kubectl retries a reset GET a few times).
            assert "connection reset" in refused.stderr, refused.stderr
            assert "Timeout" not in refused.stderr, refused.stderr
            assert proxy.status()["refused_total"] >= 1
        finally:
            watch.kill()
            watch.wait(timeout=10)
        proxy.switch("heal")
        again = _through(cluster, proxy.kubeconfig, "get", "namespace", namespace, "-o", "name")
        assert again.returncode == 0, again.stderr
    assert not proxy.kubeconfig.exists(), "the proxy's kubeconfig outlived it"
