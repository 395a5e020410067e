"""The controllers the convergence harness compares, each as a process it starts and stops.

``raw`` has no process (the load generator writes the children itself); ``operator`` is
reconcile-lab's; ``naive-kopf`` is ``reconcile_lab.declarative.naive``; ``sample-controller`` is
``k8s.io/sample-controller`` built from the Go module proxy into the cache.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.probing import free_port, http_ok, http_text, samples, say, until

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO / "bench" / "peers"
CONTENDERS = ("raw", "operator", "naive-kopf", "sample-controller")
SAMPLE_VERSION = "v0.36.3"


def sample_controller_binary() -> Path:
    """k8s.io/sample-controller built from the Go module proxy, cached by version."""
    from reconcile_lab import paths

    out = paths.bin_dir("sample-controller", SAMPLE_VERSION) / "sample-controller"
    if out.is_file():
        return out
    say(f"building k8s.io/sample-controller {SAMPLE_VERSION} into {out.parent}")
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
    work = Path(tempfile.mkdtemp(prefix="sample-controller-"))
    try:
        for name in ("go.mod", "go.sum", "tools.go"):
            shutil.copy(PEERS / "sample-controller" / name, work / name)
        subprocess.run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out),
                        "k8s.io/sample-controller"], cwd=work, env=env, check=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def sample_controller_crd() -> Path:
    """The Foo CRD from the module's artifacts/examples (in the Go module cache).

    The variant with the status subresource: sample-controller writes its status with
    UpdateStatus, which plain ``crd.yaml`` answers with 404, so every sync fails and is retried
    forever and no Foo ever reports status.
    """
    modcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True,
                              check=True).stdout.strip()
    crd = Path(modcache) / f"k8s.io/sample-controller@{SAMPLE_VERSION}" / "artifacts" / \
        "examples" / "crd-status-subresource.yaml"
    if not crd.is_file():
        subprocess.run(["go", "mod", "download", f"k8s.io/sample-controller@{SAMPLE_VERSION}"],
                       check=True, env={**os.environ, "GOFLAGS": "-mod=mod"})
    return crd


class Contender:
    """One controller process (none for ``raw``)."""

    def __init__(self, name: str, kubeconfig: Path, logdir: Path) -> None:
        self.name, self.kubeconfig = name, kubeconfig
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.log = logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": f"{REPO / 'operator'}:{REPO}",
               "KUBECONFIG": str(self.kubeconfig)}
        health = f"http://127.0.0.1:{self.health_port}/healthz"
        if self.name == "operator":
            argv = [sys.executable, "-m", "reconcile_lab", "operator", "run", "--kubeconfig",
                    str(self.kubeconfig), "--metrics-port", str(self.metrics_port),
                    "--health-port", str(self.health_port), "--log-format", "json"]
        elif self.name == "naive-kopf":
            argv = [sys.executable, "-m", "kopf", "run", "--standalone", "--all-namespaces",
                    f"--liveness={health}", "-m", "reconcile_lab.declarative.naive"]
        elif self.name == "sample-controller":
            argv = [str(sample_controller_binary()), f"-kubeconfig={self.kubeconfig}"]
        else:
            return
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        if self.name == "sample-controller":
            until(lambda: "Started workers" in self.log.read_text(errors="replace"), 60,
                  "sample-controller start")
        else:
            until(lambda: http_ok(health), 60, f"{self.name} liveness")
        time.sleep(1)  # let the first (empty) lists settle

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def writes(self) -> dict[str, float]:
        """The operator's own ``reconcile_lab_writes_total``, by kind/verb."""
        if self.name != "operator":
            return {}
        text = http_text(f"http://127.0.0.1:{self.metrics_port}/metrics")
        return {f"{labels['kind']}/{labels['verb']}": v
                for labels, v in samples(text, "reconcile_lab_writes_total")}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
