"""``docker apply --watch``: the Docker twin's naive polling loop, and what it cannot do.

Every ``interval`` it re-reads the files and applies each app once more; an engine error is
reported and the next poll waits longer (``backoff``). ``LIMITS`` says, in the command's own help,
how far this is from a controller.

Must not decide what to change (``plan`` does) nor talk to Docker itself (``engine`` does); the
way to connect is given to it, so a test can hand it an engine over a stand-in client.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType

from reconcile_lab import spec
from reconcile_lab.cluster import dockerd
from reconcile_lab.imperative import applying, containers, engine, loading, printing, recording, steps
from reconcile_lab.observe import logs, metrics

MAX_BACKOFF = 30.0  # the longest wait after engine errors (or the interval if longer)

LIMITS = """\
--watch is a naive polling loop, not a controller. Compared with the operator it:
  - gets no events: a killed or removed container is only noticed on the next poll (--interval);
  - dies with the terminal: close it, and nothing keeps the app converged any more;
  - writes no status anywhere: nobody else can see what it saw (no conditions,
    no observedGeneration, no readyReplicas);
  - owns nothing: an app dropped from the file keeps running (no ownerReferences, no garbage
    collection), and nothing refuses a `docker rm` or `docker update` made behind its back;
  - re-reads the file on every poll: a bad edit is reported here and the last good version
    stays applied, instead of being refused at the door by the apiserver.
An error from the engine (a 409 or a 500, a container removed mid-way) is reported and the
next poll tries again, waiting twice as long after each poll that met one (at most 30 s).
"""


def watch(files: Sequence[str], apps: list[spec.WebApp], *,
          connect: Callable[[], engine.Engine], interval: float, timeout: float | None,
          metrics_port: int = 0, metrics_file: str | None = None) -> None:
    """Apply ``apps`` every ``interval`` seconds, re-reading ``files`` first, until Ctrl-C or
    SIGTERM. ``metrics_port`` only names where the caller serves the metrics."""
    log = logs.get(engine=metrics.DOCKER)
    names = ", ".join(containers.docker_name(a.name, a.namespace) for a in apps)
    printing.print_text(f"# watching {names} every {interval:g}s; Ctrl-C stops it"
                        + (f"; metrics on http://{containers.LOOPBACK}:{metrics_port}/metrics"
                           if metrics_port else ""))
    previous: dict[str, spec.WebApp] = {}
    diverged: dict[str, float] = {}  # app → when a difference was first seen
    eng: engine.Engine | None = None
    errors = 0  # polls in a row on which the engine answered with an error
    # `kill PID` (what a process manager or a closing terminal sends) stops it like Ctrl-C does.
    before = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            try:
                apps = loading.load(files)  # an edit is seen on the next poll, not before
            except loading.InputError as e:
                printing.print_text(f"{e}\n# keeping the last good version", file=sys.stderr)
            failed = False
            try:
                eng = eng or connect()
                for app in apps:
                    try:
                        _watch_one(eng, app, previous, diverged, timeout=timeout)
                    except engine.EngineError as e:  # this app, this poll; the others go on
                        failed = True
                        _engine_error(app, e, retry_in=backoff(interval, errors + 1))
            except engine.EngineUnavailable as e:
                log.error("engine unavailable", error=str(e).splitlines()[0])
                eng = None
            errors = errors + 1 if failed else 0
            if metrics_file:
                metrics.write_textfile(metrics_file)
            time.sleep(backoff(interval, errors))
    except KeyboardInterrupt:
        printing.print_text(f"# stopped watching: nothing keeps {names} converged any more")
    finally:
        signal.signal(signal.SIGTERM, before)
        if eng is not None:
            eng.close()


def backoff(interval: float, errors: int) -> float:
    """The wait before the next poll: the interval, doubled per poll in a row that met engine
    errors, never more than MAX_BACKOFF (or the interval, when that is longer)."""
    if errors <= 0:
        return interval
    return min(interval * 2.0 ** min(errors - 1, 32), max(interval, MAX_BACKOFF))


def _engine_error(app: spec.WebApp, error: engine.EngineError, *, retry_in: float) -> None:
    """Say it and count it; the watch goes on (the engine may answer on the next poll)."""
    recording.record_engine_error(app, error, retry_in=retry_in)
    printing.print_text(
        f"[{time.strftime('%H:%M:%S')}] {containers.docker_name(app.name, app.namespace)}: "
        f"{error}; retrying in {retry_in:g}s (fix, if it persists: the engine's log, e.g. "
        f"{dockerd.log_file()} or `journalctl -u docker`)", file=sys.stderr)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _watch_one(eng: engine.Engine, app: spec.WebApp, previous: dict[str, spec.WebApp],
               diverged: dict[str, float], *, timeout: float | None) -> None:
    started = time.monotonic()
    report = applying.apply(eng, app, timeout=timeout, on_step=printing.print_step,
                            on_outcome=printing.print_outcome, on_wait=printing.print_waiting)
    key = containers.docker_name(app.name, app.namespace)
    unchanged = previous.get(key) == app
    previous[key] = app
    recording.record(app, report, drift=unchanged)
    if steps.changes(report.steps) or report.conflict:
        diverged.setdefault(key, started)
    if report.converged and key in diverged:
        recording.record_converged(time.monotonic() - diverged.pop(key))
    if report.steps or not report.converged:
        stamp = time.strftime("%H:%M:%S")
        printing.print_text(f"[{stamp}] {printing.format_summary(report)}")
        recording.log_report(app, report)

