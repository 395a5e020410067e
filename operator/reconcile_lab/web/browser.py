"""What the browser test drives: Debian's Chromium and playwright-core, installed once.

- ``chromium`` and ``chromium-driver`` come from Debian with apt-get (no browser download: only
  the package registries answer here). The packages this module installed, and only those,
  are written down in :data:`RECORD` (host-wide, like the packages), so that :func:`remove`
  takes away what the kit added and leaves a Chromium the user had alone.
- playwright-core comes from npm at the version of the committed lockfile
  (``assets/web-browser/package-lock.json``), with ``npm ci`` into the cache, never into the
  repository; its own browser download is switched off.

Each step is skipped when its result is already there. An I/O adapter: it decides nothing
about the page.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from reconcile_lab import paths
from reconcile_lab.cluster.probing import ClusterError

Progress = Callable[[str], None]
PACKAGES = ("chromium", "chromium-driver")
RECORD = Path("/var/lib/reconcile-lab/installed-packages.json")
LOCK = Path(__file__).resolve().parent.parent / "assets" / "web-browser"


class Browser(NamedTuple):
    chromium: Path
    modules: Path  # node_modules holding playwright-core


def _all_installed() -> set[str]:
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n"],
                          capture_output=True, text=True, check=False)
    return {line.split()[0] for line in done.stdout.splitlines()
            if line.endswith("install ok installed")}


def _installed(package: str) -> bool:
    return package in _all_installed()


def _recorded() -> list[str]:
    try:
        return list(json.loads(RECORD.read_text()))
    except (OSError, ValueError):
        return []


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", "-y", "-q", *args], env=env, capture_output=True, text=True,
                          check=False, timeout=1800)


def _debian_packages(progress: Progress) -> None:
    missing = [p for p in PACKAGES if not _installed(p)]
    if not missing:
        return
    if not Path("/etc/debian_version").exists() or os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ClusterError(f"the browser test needs {' and '.join(missing)}.\n"
                           f"  fix: sudo apt-get install {' '.join(missing)} (Debian/Ubuntu), "
                           "then run again.")
    progress(f"installing Debian's {', '.join(missing)} (once; `reconcile-lab web browser "
             "remove` takes them away)…")
    before = _all_installed()
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
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(sorted({*_recorded(), *(_all_installed() - before)})) + "\n")


def _wanted_version() -> str:
    lock = json.loads((LOCK / "package-lock.json").read_text())
    return str(lock["packages"]["node_modules/playwright-core"]["version"])


def _playwright(progress: Progress) -> Path:
    home = paths.cache_dir() / "web"
    modules = home / "node_modules"
    installed = modules / "playwright-core" / "package.json"
    wanted = _wanted_version()
    try:
        if json.loads(installed.read_text())["version"] == wanted:
            return modules
    except (OSError, ValueError, KeyError):
        pass
    npm = shutil.which("npm")
    if npm is None:
        raise ClusterError("the browser test needs node and npm (Node.js 18 or newer).\n"
                           "  fix: apt-get install nodejs npm, then run again.")
    progress(f"installing playwright-core {wanted} from npm into {home} (once)…")
    home.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(LOCK / name, home / name)
    env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                            cwd=home, env=env, capture_output=True, text=True, check=False,
                            timeout=900)
    if result.returncode != 0:
        raise ClusterError(f"npm ci in {home} failed:\n{result.stderr[-1500:]}\n"
                           "  fix: check that the npm registry answers, then run again.")
    return modules


def ensure(*, progress: Progress) -> Browser:
    """Chromium and playwright-core, installed when missing; where they are."""
    _debian_packages(progress)
    chromium = shutil.which("chromium")
    if chromium is None:
        raise ClusterError("chromium is installed but not on PATH.\n"
                           "  fix: check `dpkg -L chromium`, then run again.")
    return Browser(Path(chromium), _playwright(progress))


def remove(*, progress: Progress) -> list[str]:
    """Purge the Debian packages :func:`ensure` installed, the dependencies it brought in
    included, and nothing else."""
    present = _all_installed()
    ours = [p for p in _recorded() if p in present]
    if ours:
        progress(f"removing {len(ours)} package(s) the kit installed: {', '.join(ours[:8])}"
                 + ("…" if len(ours) > 8 else ""))
        result = _apt("purge", *ours)
        if result.returncode != 0:
            raise ClusterError(f"apt-get purge failed:\n{result.stderr[-1500:]}\n  fix: "
                               f"what it says, then run again (the list is in {RECORD})")
    RECORD.unlink(missing_ok=True)
    return ours
