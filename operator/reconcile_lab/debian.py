"""Debian packages the kit installs when a command needs them, and takes away again.

The packages this module installed, their dependencies included, and only those, are written
down in :func:`record` (host-wide, like the packages; ``RECONCILE_LAB_PACKAGE_RECORD`` moves
it), so that :func:`remove` purges what the kit
added and leaves alone what the user had. While it installs, no package may start a service
(``policy-rc.d``): the kit runs the binaries itself, on 127.0.0.1, when it needs them.

An I/O adapter: it knows nothing of what the packages are for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from reconcile_lab.cluster.probing import ClusterError

Progress = Callable[[str], None]
RECORD = Path("/var/lib/reconcile-lab/installed-packages.json")


def record() -> Path:
    return Path(os.environ.get("RECONCILE_LAB_PACKAGE_RECORD") or RECORD)
POLICY = Path("/usr/sbin/policy-rc.d")


def all_installed() -> set[str]:
    if shutil.which("dpkg-query") is None:
        return set()
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n"],
                          capture_output=True, text=True, check=False)
    return {line.split()[0] for line in done.stdout.splitlines()
            if line.endswith("install ok installed")}


def recorded() -> list[str]:
    try:
        return list(json.loads(record().read_text()))
    except (OSError, ValueError):
        return []


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", "-y", "-q", *args], env=env, capture_output=True, text=True,
                          check=False, timeout=1800)


@contextmanager
def _no_services() -> Iterator[None]:
    """No service starts while we install (exit 101: "action forbidden by policy")."""
    ours = not POLICY.exists()
    if ours:
        POLICY.write_text("#!/bin/sh\nexit 101\n")
        POLICY.chmod(0o755)
    try:
        yield
    finally:
        if ours:
            POLICY.unlink(missing_ok=True)


def ensure(packages: Sequence[str], *, needed_by: str, progress: Progress) -> None:
    """Install those of ``packages`` that are missing (a no-op when none is)."""
    before = all_installed()
    missing = [p for p in packages if p not in before]
    if not missing:
        return
    if not Path("/etc/debian_version").exists() or os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ClusterError(f"{needed_by} needs {' and '.join(missing)}.\n"
                           f"  fix: sudo apt-get install {' '.join(missing)} (Debian/Ubuntu), "
                           "then run again.")
    progress(f"installing Debian's {', '.join(missing)} for {needed_by} (once; `make down "
             "REMOVE_PACKAGES=1` takes them away)…")
    with _no_services():
        result = _apt("install", "--no-install-recommends", *missing)
        if result.returncode != 0:
            _apt("update")
            result = _apt("install", "--no-install-recommends", *missing)
    if result.returncode != 0:
        raise ClusterError(f"apt-get install {' '.join(missing)} failed:\n"
                           f"{result.stderr[-1500:]}\n  fix: check the Debian package mirror "
                           "(`apt-get update`), then run again.")
    # Exactly what this install added, their dependencies included: `remove` purges these and
    # nothing else (apt's autoremove would also take what other installs left orphaned).
    added = sorted({*recorded(), *(all_installed() - before)})
    record().parent.mkdir(parents=True, exist_ok=True)
    record().write_text(json.dumps(added) + "\n")


def remove(*, progress: Progress) -> list[str]:
    """Purge the packages :func:`ensure` installed, the dependencies it brought in included,
    and nothing else."""
    present = all_installed()
    ours = [p for p in recorded() if p in present]
    if ours:
        progress(f"removing {len(ours)} package(s) the kit installed: {', '.join(ours[:8])}"
                 + ("…" if len(ours) > 8 else ""))
        with _no_services():
            result = _apt("purge", *ours)
        if result.returncode != 0:
            raise ClusterError(f"apt-get purge failed:\n{result.stderr[-1500:]}\n  fix: "
                               f"what it says, then run again (the list is in {record()})")
    record().unlink(missing_ok=True)
    if record().parent.is_dir() and not any(record().parent.iterdir()):
        record().parent.rmdir()
    return ours
