"""Building the control plane from the Go module proxy, into a cache keyed by version.

No container registry is needed: etcd, the Kubernetes components, kubectl, kwok and kwokctl are
compiled from pinned wrapper modules (``assets/go/*``: go.mod + go.sum, so every byte is
verified). A component whose binaries are already in the cache costs nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from reconcile_lab import paths
from reconcile_lab.cluster import versions

Progress = Callable[[str], None]


class BuildError(RuntimeError):
    """A build could not run or failed; the message says what to do."""


class Component(NamedTuple):
    name: str
    version: str
    packages: tuple[tuple[str, str], ...]  # (Go package, binary name)
    ldflags: str = "-s -w"
    note: str = ""
    tags: str = ""

    @property
    def directory(self) -> Path:
        return paths.bin_dir(self.name, self.version)

    def binary(self, name: str) -> Path:
        return self.directory / name

    def is_built(self) -> bool:
        return all(self.binary(b).is_file() for _, b in self.packages)


def _k8s_ldflags(version: str) -> str:
    major, minor = versions.minor(version)
    base = "k8s.io/component-base/version"
    return " ".join([
        "-s -w",
        f"-X {base}.gitVersion={version}",
        f"-X {base}.gitMajor={major}",
        f"-X {base}.gitMinor={minor}",
        f"-X {base}.gitTreeState=clean",
        f"-X {base}.buildDate=1970-01-01T00:00:00Z",
    ])


KUBERNETES = Component(
    "kubernetes", versions.KUBERNETES,
    tuple((f"k8s.io/kubernetes/cmd/{b}", b)
          for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl",
                    "kubelet", "kube-proxy")),
    _k8s_ldflags(versions.KUBERNETES),
    "the cold build takes 15-30 min on 2 cores",
)
ETCD = Component("etcd", versions.ETCD, (("go.etcd.io/etcd/server/v3", "etcd"),),
                 note="about 2 min cold")
KWOK = Component("kwok", versions.KWOK,
                 (("sigs.k8s.io/kwok/cmd/kwok", "kwok"), ("sigs.k8s.io/kwok/cmd/kwokctl", "kwokctl")),
                 note="about 3 min cold")
CONTAINERD = Component(
    "containerd", versions.CONTAINERD,
    tuple((f"github.com/containerd/containerd/v2/cmd/{b}", b)
          for b in ("containerd", "containerd-shim-runc-v2", "ctr")),
    note="about 2 min cold", tags="no_btrfs no_devmapper no_zfs",
)
COREDNS = Component("coredns", versions.COREDNS, (("github.com/coredns/coredns", "coredns"),),
                    note="about 3 min cold")
# Its version is stamped where its own release build puts it (`metrics-server --version`).
METRICS_SERVER = Component(
    "metrics-server", versions.METRICS_SERVER,
    (("sigs.k8s.io/metrics-server/cmd/metrics-server", "metrics-server"),),
    f"-s -w -X k8s.io/client-go/pkg/version.gitVersion={versions.METRICS_SERVER}",
    note="about 3 min cold",
)
CONTROL_PLANE = (ETCD, KWOK, KUBERNETES)
NODE = (CONTAINERD, COREDNS, METRICS_SERVER)
ALL = CONTROL_PLANE + NODE


def go_binary() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "the Go toolchain is not on PATH, and the control plane is built from source.\n"
            "  fix: install Go 1.26 or newer (Debian: apt-get install golang-go, or unpack the\n"
            "  official tarball into /usr/local/go) and put its bin/ on PATH, then run again."
        )
    return go


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _heartbeat(progress: Progress, what: str, every: float = 60.0) -> Iterator[None]:
    """A line now and then so that a long, silent compile is visibly alive."""
    done = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not done.wait(every):
            progress(f"      … still {what} ({(time.monotonic() - started) / 60:.0f} min so far)")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _run(args: list[str], *, cwd: Path, log: Path, what: str) -> None:
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(args)}\n")
        out.flush()
        result = subprocess.run(args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise BuildError(
            f"{what} failed (exit {result.returncode}). Last lines of {log}:\n{tail}\n"
            "  fix: check that the Go module proxy is reachable (go env GOPROXY) and that the disk\n"
            "  has a few GB free, then run again; finished components stay cached."
        )


def build(component: Component, *, progress: Progress, step: str = "") -> Component:
    """Build one component into the cache unless it is already there."""
    label = f"{step}{component.name} {component.version}"
    if component.is_built():
        progress(f"{label}: cached in {component.directory}")
        return component
    go = go_binary()
    cache = paths.cache_dir()
    with _lock(cache / "locks" / f"{component.name}-{component.version}.lock"):
        if component.is_built():  # someone else finished it while we waited
            progress(f"{label}: cached in {component.directory}")
            return component
        work = Path(tempfile.mkdtemp(prefix=f"{component.name}-", dir=_mkdir(cache / "build")))
        log = cache / "build" / f"{component.name}-{component.version}.log"
        log.write_text("")
        try:
            source = resources.files("reconcile_lab") / "assets" / "go" / component.name
            for name in ("go.mod", "go.sum", "tools.go"):
                (work / name).write_text(source.joinpath(name).read_text())
            started = time.monotonic()
            progress(f"{label}: downloading modules (log: {log})")
            _run([go, "mod", "download"], cwd=work, log=log, what=f"downloading {component.name}")
            out = work / "out"
            out.mkdir()
            progress(f"{label}: compiling {', '.join(b for _, b in component.packages)}"
                     + (f" ({component.note})" if component.note else ""))
            with _heartbeat(progress, f"compiling {component.name}"):
                args = [go, "build", "-trimpath", "-ldflags", component.ldflags,
                        *(["-tags", component.tags] if component.tags else [])]
                if len(component.packages) == 1:
                    (pkg, binary), = component.packages
                    args += ["-o", str(out / binary), pkg]
                else:
                    args += ["-o", f"{out}/", *(p for p, _ in component.packages)]
                _run(args, cwd=work, log=log, what=f"compiling {component.name}")
            staged = component.directory.with_name(component.directory.name + ".partial")
            shutil.rmtree(staged, ignore_errors=True)
            shutil.move(str(out), staged)
            shutil.rmtree(component.directory, ignore_errors=True)
            staged.rename(component.directory)  # atomic: a half build is never "cached"
            progress(f"{label}: built in {time.monotonic() - started:.0f}s → {component.directory}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return component


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_all(*, progress: Progress) -> None:
    for i, component in enumerate(ALL, 1):
        build(component, progress=progress, step=f"[{i}/{len(ALL)}] ")
