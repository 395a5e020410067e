"""Choosing a cluster provider: kind when it can run here, the embedded kwok otherwise.

The provider that ``up`` last started is remembered in the state directory so that ``env``,
``status`` and the operator find the same cluster later.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import ModuleType

from reconcile_lab import paths
from reconcile_lab.cluster import kind, kwok
from reconcile_lab.cluster.probing import ClusterError, Progress

CHOICES = ("auto", "kwok", "kind")
_MODULES = {"kwok": kwok, "kind": kind}


def _marker() -> Path:
    return paths.state_dir() / "provider"


def resolve(choice: str) -> str:
    if choice not in CHOICES:
        raise ClusterError(f"unknown provider {choice!r}; choose one of {', '.join(CHOICES)}")
    if choice != "auto":
        return choice
    return "kind" if kind.available() else "kwok"


def current() -> str:
    """The provider last brought up, else what auto would pick."""
    try:
        name = _marker().read_text().strip()
    except OSError:
        return resolve("auto")
    return name if name in _MODULES else resolve("auto")


def remember(name: str) -> None:
    _marker().parent.mkdir(parents=True, exist_ok=True)
    _marker().write_text(name + "\n")


def module(name: str) -> ModuleType:
    return _MODULES[name]


def kubeconfig(name: str | None = None) -> Path:
    path: Path = module(name or current()).kubeconfig()
    return path


def load_images(names: list[str], *, progress: Progress) -> None:
    """Copy images from the Docker engine into the current cluster's nodes (no registry)."""
    missing = [n for n in names if subprocess.run(["docker", "image", "inspect", n],
                                                  capture_output=True, check=False).returncode]
    if missing:
        raise ClusterError(f"not in the Docker engine: {', '.join(missing)}.\n  fix: build it "
                           "first (`make docker-build IMG=...` for the operator), then run again.")
    module(current()).load_images(names, progress=progress)
