"""What the browser test drives: Debian's Chromium and playwright-core, installed once.

- ``chromium`` and ``chromium-driver`` come from Debian with apt-get (no browser download: only
  the package registries answer here), through :mod:`reconcile_lab.debian`, which writes down
  what it added so that ``make down REMOVE_PACKAGES=1`` takes away that and nothing else.
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

from reconcile_lab import debian, paths
from reconcile_lab.cluster.probing import ClusterError

Progress = Callable[[str], None]
PACKAGES = ("chromium", "chromium-driver")
LOCK = Path(__file__).resolve().parent.parent / "assets" / "web-browser"


class Browser(NamedTuple):
    chromium: Path
    modules: Path  # node_modules holding playwright-core


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
    debian.ensure(PACKAGES, needed_by="the browser test", progress=progress)
    chromium = shutil.which("chromium")
    if chromium is None:
        raise ClusterError("chromium is installed but not on PATH.\n"
                           "  fix: check `dpkg -L chromium`, then run again.")
    return Browser(Path(chromium), _playwright(progress))
