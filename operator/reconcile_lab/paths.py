"""Where reconcile-lab keeps things on this machine, all outside the repository.

- cache: built binaries keyed by version, the Python environment; safe to delete, slow to rebuild.
- state: running clusters (kubeconfig, component data and logs); ``cluster down`` removes them.

Overridable with RECONCILE_LAB_CACHE and RECONCILE_LAB_STATE. No I/O at import time.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    if env := os.environ.get("RECONCILE_LAB_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reconcile-lab"


def state_dir() -> Path:
    if env := os.environ.get("RECONCILE_LAB_STATE"):
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "reconcile-lab"


def bin_dir(component: str, version: str) -> Path:
    return cache_dir() / "bin" / f"{component}-{version}"
