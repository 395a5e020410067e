"""Runs an exercise's commands the way a participant's shell would, after
``eval "$(reconcile-lab cluster env)"``: kubectl is the kit's, pointed at the kit's cluster, and
``reconcile-lab`` is this installation.

A thin edge: it prints each command as ``$ …`` and its output, and stops at the first that
fails. What to run comes from ``catalog``; this module decides nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import yaml

from reconcile_lab import paths, pidfiles
from reconcile_lab.cluster import probing
from reconcile_lab.workshop import catalog

REPO = Path(__file__).resolve().parents[3]
TIMEOUT = 600.0  # no command of a solution or a reset waits longer than its own --timeout


class Failed(NamedTuple):
    command: str
    returncode: int


def environment(kubeconfig: Path) -> dict[str, str]:
    """The participant's shell: the kit's kubectl and reconcile-lab first on PATH."""
    kubectl = Path(probing.kubectl_binary()).parent
    here = Path(sys.executable).parent  # the environment's bin/, where reconcile-lab is
    path = os.pathsep.join([str(here), str(kubectl), os.environ.get("PATH", "")])
    return {**probing.kubectl_env(), "KUBECONFIG": str(kubeconfig), "PATH": path,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "operator"),
                                                        os.environ.get("PYTHONPATH")]))}


def copy_files(commands: Sequence[str], namespace: str, into: Path) -> None:
    """The example files the commands name, with ``metadata.namespace`` set, under ``into``."""
    for name in catalog.files_in(tuple(commands)):
        doc = yaml.safe_load((REPO / name).read_text())
        doc.setdefault("metadata", {})["namespace"] = namespace
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(doc, sort_keys=False))


def _background(command: str, *, env: dict[str, str], log: Path, pids: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    with pids.open("a") as f:
        f.write(pidfiles.format_record(pidfiles.record_of(proc.pid)))
    print(f"  (runs in the background: pid {proc.pid}, log {log})", flush=True)


def run(commands: Sequence[str], *, kubeconfig: Path, background_dir: Path,
        say: Callable[[str], None] = print) -> Failed | None:
    """Each command in turn, printed first; the first that fails, or None."""
    env = environment(kubeconfig)
    for i, command in enumerate(commands, 1):
        say(f"$ {command}")
        sys.stdout.flush()
        if command.endswith(catalog.BACKGROUND):
            _background(command.removesuffix(catalog.BACKGROUND), env=env,
                        log=background_dir / f"command-{i}.log",
                        pids=background_dir / "pids")
            continue
        try:
            done = subprocess.run(["bash", "-c", command], cwd=REPO, env=env, check=False,
                                  timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            return Failed(command, -1)
        if done.returncode != 0:
            return Failed(command, done.returncode)
    return None


def _ours(argv: Sequence[str]) -> bool:
    """The kit's commands, and what they exec (``observe prometheus`` becomes Prometheus, its
    data in the kit's state directory)."""
    state = str(paths.state_dir())
    return any("reconcile-lab" in a or "reconcile_lab" in a or state in a for a in argv)


def stop_background(background_dir: Path, *, wait: float = 15.0) -> list[int]:
    """Stop what ``run`` started in the background there (only if it is still that process),
    and wait for it to be gone: what it cleans up on its way out (the fault proxy's
    kubeconfig) must not be cleaned up after its successor wrote it."""
    import signal
    import time

    pids = background_dir / "pids"
    stopped = []
    for line in pids.read_text().splitlines() if pids.is_file() else []:
        record = pidfiles.parse(line)
        if record is not None and not pidfiles.why_not(record, _ours):
            try:
                os.killpg(record.pid, signal.SIGTERM)
                stopped.append(record)
            except OSError:
                pass
    deadline = time.monotonic() + wait
    while any(not pidfiles.why_not(r, _ours) for r in stopped) and time.monotonic() < deadline:
        time.sleep(0.1)
    pids.unlink(missing_ok=True)
    return [r.pid for r in stopped]
