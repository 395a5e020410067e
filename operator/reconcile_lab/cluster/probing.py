"""Small questions about the local machine: is a port free, does an apiserver answer, which
kubectl to use. Shared by the cluster providers, the CLI and the tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from reconcile_lab.cluster import building, versions

Progress = Callable[[str], None]


class ClusterError(RuntimeError):
    """A cluster could not be started or reached; the message says what to do."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def require_free_port(port: int, *, what: str) -> None:
    if not port_is_free(port):
        raise ClusterError(
            f"port {port} on 127.0.0.1 is already taken, so {what} cannot listen there.\n"
            f"  fix: find the owner with `ss -ltnp 'sport = :{port}'` and stop it, or choose "
            "another port."
        )


def server_of(kubeconfig: Path) -> str | None:
    try:
        config = yaml.safe_load(kubeconfig.read_text())
        return str(config["clusters"][0]["cluster"]["server"])
    except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError):
        return None


def _kubectl_version(path: str) -> str | None:
    try:
        out = subprocess.run([path, "version", "--client", "-o", "json"], capture_output=True,
                             env=kubectl_env(), text=True, timeout=20, check=False).stdout
        return str(json.loads(out)["clientVersion"]["gitVersion"])
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return None


def kubectl_binary() -> str:
    """The kubectl that tests, the Makefile and the CLI all use.

    The one on PATH when it is within the supported skew of the pinned control plane,
    otherwise the one built with the control plane.
    """
    on_path = shutil.which("kubectl")
    if on_path:
        version = _kubectl_version(on_path)
        if version and abs(versions.minor(version)[1] - versions.minor(versions.KUBERNETES)[1]) \
                <= versions.KUBECTL_MINOR_SKEW:
            return on_path
    built = building.KUBERNETES.binary("kubectl")
    if built.is_file():
        return str(built)
    raise ClusterError(
        f"no suitable kubectl: the one on PATH ({on_path or 'none'}) is not within one minor "
        f"version of Kubernetes {versions.KUBERNETES}.\n"
        "  fix: run `reconcile-lab cluster up` (it builds a matching kubectl), or install "
        f"kubectl {versions.KUBERNETES}."
    )


def kubectl_args(kubeconfig: Path) -> list[str]:
    """kubectl pointed at one cluster, with its discovery cache kept out of ~/.kube."""
    from reconcile_lab import paths

    return [kubectl_binary(), "--kubeconfig", str(kubeconfig),
            "--cache-dir", str(paths.state_dir() / "kube-cache")]


def kubectl_env() -> dict[str, str]:
    from reconcile_lab import paths

    return {**os.environ, "KUBECACHEDIR": str(paths.state_dir() / "kube-cache")}


def kubectl(kubeconfig: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*kubectl_args(kubeconfig), *args], env=kubectl_env(),
                          capture_output=True, text=True, timeout=timeout, check=False)


def apiserver_ready_with(kubeconfig: Path) -> bool:
    try:
        result = kubectl(kubeconfig, "get", "--raw", "/readyz", "--request-timeout=3s", timeout=10)
    except (ClusterError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == "ok"


def apiserver_ready(url: str) -> bool:
    """Whether something listens where the apiserver should (cheap, no credentials)."""
    host_port = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except (OSError, ValueError):
        return False


def ready_nodes(kubeconfig: Path) -> list[str]:
    result = kubectl(kubeconfig, "get", "nodes", "-o", "json")
    if result.returncode != 0:
        return []
    ready = []
    for node in json.loads(result.stdout).get("items", []):
        for cond in node.get("status", {}).get("conditions", []):
            if cond.get("type") == "Ready" and cond.get("status") == "True":
                ready.append(node["metadata"]["name"])
    return ready
