"""kind clusters, for participants' laptops: real nodes in Docker containers, real traffic.

Needs the ``kind`` binary and a Docker engine (and, the first time, a registry to pull the node
image from). The cluster uses the committed ``deploy/kind-config.yaml``; its kubeconfig is
written to the state directory, never merged into ~/.kube/config.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from reconcile_lab import paths
from reconcile_lab.cluster import dockerd, images, versions
from reconcile_lab.cluster.probing import ClusterError, Progress

NAME = "reconcile-lab"
CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "kind-config.yaml"


def kubeconfig() -> Path:
    return paths.state_dir() / "kind" / "kubeconfig.yaml"


def binary() -> str | None:
    return shutil.which("kind")


def available() -> bool:
    return binary() is not None and dockerd.answers()


def _kind(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    kind = binary()
    if kind is None:
        raise ClusterError("kind is not on PATH.\n  fix: install kind "
                           "(https://kind.sigs.k8s.io/docs/user/quick-start/#installation) or use "
                           "--provider kwok.")
    result = subprocess.run([kind, *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise ClusterError(f"kind {' '.join(args[:2])} failed:\n{result.stderr.strip()[-2000:]}")
    return result


def exists() -> bool:
    return binary() is not None and NAME in _kind("get", "clusters", check=False).stdout.split()


def up(*, progress: Progress, node_image: str = versions.KIND_NODE_IMAGE) -> Path:
    dockerd.ensure(progress=progress)
    kubeconfig().parent.mkdir(parents=True, exist_ok=True)
    if exists():
        progress(f"kind cluster {NAME!r} already exists")
        _kind("export", "kubeconfig", "--name", NAME, "--kubeconfig", str(kubeconfig()))
    else:
        progress(f"creating kind cluster {NAME!r} ({node_image}); the first time pulls the image")
        _kind("create", "cluster", "--name", NAME, "--config", str(CONFIG), "--image", node_image,
              "--kubeconfig", str(kubeconfig()), "--wait", "120s")
    images.build(progress=progress)
    load_images([images.image(tag) for tag in images.TAGS], progress=progress)
    return kubeconfig()


def load_images(names: list[str], *, progress: Progress) -> None:
    progress(f"loading {', '.join(names)} into the kind nodes")
    _kind("load", "docker-image", "--name", NAME, *names)


def down(*, progress: Progress) -> None:
    if not exists():
        progress(f"kind cluster {NAME!r} is not there: nothing to do")
        return
    _kind("delete", "cluster", "--name", NAME, "--kubeconfig", str(kubeconfig()))
    kubeconfig().unlink(missing_ok=True)
    progress(f"kind cluster {NAME!r} removed")


def status() -> dict[str, object]:
    return {"provider": "kind", "name": NAME, "exists": exists(), "running": exists(),
            "kubeconfig": str(kubeconfig()), "kind": binary()}
