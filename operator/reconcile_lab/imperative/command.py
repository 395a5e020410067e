"""``reconcile-lab docker apply|status|delete``: the Docker twin on the command line.

Thin wiring: read and validate WebApp files with the same model as the operator, hand each app to
the engine, print what happens (``format_*`` returns text, ``print_*`` writes it), record the
shared ``reconcile_lab_*`` metrics with ``engine="docker"`` and log with structlog.

Must not decide what to change (``plan`` does) nor talk to Docker itself (``engine`` does).
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import yaml
from rich.console import Console
from rich.table import Table

from reconcile_lab import spec
from reconcile_lab.cluster import dockerd
from reconcile_lab.imperative import engine, plan
from reconcile_lab.observe import logs, metrics

# Exit statuses, also listed in the --help epilog.
OK = 0
NOT_CONVERGED = 1
INVALID = 2
ENGINE_DOWN = 3

DEFAULT_INTERVAL = 2.0
MAX_BACKOFF = 30.0  # --watch: the longest wait after engine errors (or --interval if longer)
DEFAULT_METRICS_PORT = 8001
DEFAULT_NAMESPACE = plan.DEFAULT_NAMESPACE

DESCRIPTION = """\
The imperative twin of the operator: read the same WebApp file and make it true once with the
Docker engine, step by step, printing every step as the `docker` command a person would type.

  WebApp field   Docker
  image          docker run IMAGE
  replicas       containers NAME-1 … NAME-N, labelled reconcile-lab/app=NAME and
                 reconcile-lab/namespace=NAMESPACE
  namespace      part of every Docker name outside "default": NAME.NAMESPACE-1 …,
                 the network NAME.NAMESPACE (status and delete: -n NAMESPACE)
  port           published on 127.0.0.1 with an ephemeral host port (see `status`)
  (Service)      the network NAME, on which every container answers to the alias NAME
  env            -e NAME=value (printed as NAME=***: values are often secrets)
  resources      --cpus and --memory from resources.limits (Docker has no requests)
  healthCheck    HEALTHCHECK options (wget inside the container); none: running is ready
  rollout        replace one container at a time, each ready before the next (no surge:
                 a Docker name is unique, so NAME-i goes before its successor starts)
  security       --user 65532:65532 --read-only --cap-drop ALL
                 --security-opt no-new-privileges
"""

EPILOG = """\
examples:
  reconcile-lab docker apply -f webapp.yaml             make it true once; print each step
  reconcile-lab docker apply -f webapp.yaml --dry-run   only print what it would do
  reconcile-lab docker apply -f webapp.yaml --watch     re-apply every 2 s until Ctrl-C
  reconcile-lab docker status hello                     what runs for the app "hello"
  reconcile-lab docker status -f webapp.yaml            desired vs actual
  reconcile-lab docker delete hello                     remove its containers and network
  reconcile-lab docker status hello -n shop             the app "hello" of namespace "shop"

exit status: 0 converged · 1 something did not converge (the rest did) · 2 invalid file or
usage, nothing changed · 3 no Docker engine answers, nothing changed
"""

WATCH_LIMITS = """\
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


class InputError(Exception):
    """A file could not be used; nothing was changed. The message names file, field and fix."""


# --- reading files --------------------------------------------------------------------------


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as e:
        raise InputError(f"{path}: cannot read it: {e.strerror or e} "
                         "(fix: check the path given with -f)") from None


def _documents(path: str, text: str) -> list[tuple[int, Any]]:
    """Every YAML document with the line it starts on."""
    loader = yaml.SafeLoader(text)
    try:
        found: list[tuple[int, Any]] = []
        while loader.check_node():
            node = loader.get_node()
            assert node is not None  # check_node said there is one
            found.append((node.start_mark.line + 1, loader.construct_document(node)))
        return found
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        problem = " ".join(x for x in (e.context, e.problem) if x)
        raise InputError(f"{where}: malformed YAML: {problem} "
                         "(fix: check indentation and quoting on that line)") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: malformed YAML: {e}") from None
    finally:
        loader.dispose()


def load(paths: Sequence[str]) -> list[spec.WebApp]:
    """All WebApps in all files, every one validated before any is used."""
    apps: list[spec.WebApp] = []
    sources: dict[str, str] = {}
    errors: list[str] = []
    for path in paths:
        documents = [(line, doc) for line, doc in _documents(path, _read(path)) if doc is not None]
        for line, doc in documents:
            source = path if len(documents) == 1 else f"{path}:{line}"
            try:
                app = spec.parse_document(doc, source=source)
            except spec.InvalidWebApp as e:
                errors.append(str(e))
                continue
            key = plan.docker_name(app.name, app.namespace)
            if key in sources:
                # One app twice (same name, same namespace) would fight over NAME-1…
                errors.append(f'{source} WebApp "{app.name}": invalid\n  metadata.name: '
                              f"Duplicate value: {app.name!r} in namespace "
                              f"{namespace_of(app)!r} is also defined at {sources[key]} "
                              "(fix: give every WebApp of a namespace its own name)")
                continue
            sources[key] = source
            apps.append(app)
    if errors:
        raise InputError("\n".join(errors))
    if not apps:
        raise InputError(f"{', '.join(paths)}: no WebApp in it (fix: write a document with "
                         f"apiVersion: {spec.API_VERSION} and kind: {spec.KIND})")
    return apps


# --- formatting -----------------------------------------------------------------------------


def format_step(step: plan.Step) -> str:
    return f"# {step.target}: {step.reason}\n{step.format()}"


def format_outcome(outcome: engine.Outcome) -> str:
    if outcome.skipped:
        return f"  skipped: {outcome.detail}"
    if not outcome.ok:
        return f"  FAILED: {outcome.detail}"
    if isinstance(outcome.step, plan.WaitReady):
        return f"  ready after {outcome.seconds:.1f}s"
    return ""


def format_summary(report: engine.Report) -> str:
    head = f"{report.app}: {report.ready}/{report.desired} ready"
    if report.conflict:
        return f"{head}; changed nothing: {report.conflict}"
    changed = plan.changes(report.steps)
    if report.dry_run:
        return (f"{head}; would run {len(changed)} docker command(s) (dry run, nothing changed)"
                if report.steps else f"{head}; nothing to do")
    if not report.steps:
        return f"{head}; nothing to do"
    took = f"{len(changed)} change(s) in {report.seconds:.1f}s"
    if report.converged:
        return f"{head}; {took}; converged"
    lines = [f"{head}; {took}; NOT converged"]
    lines += [f"  {name}: {why}" for name, why in report.problems.items()]
    return "\n".join(lines)


def format_deleted(report: engine.Report) -> str:
    if not report.steps:
        return f"{report.app}: nothing to delete"
    removed = sum(1 for o in report.outcomes if o.ok and isinstance(o.step, plan.Remove))
    network = any(o.ok and isinstance(o.step, plan.RemoveNetwork) for o in report.outcomes)
    text = f"{report.app}: removed {removed} container(s)" + (
        f" and the network {report.app}" if network else "")
    if plan.changes(report.remaining):
        text += "; still left: " + ", ".join(s.target for s in report.remaining)
    return text


def _render(renderable: Any) -> str:
    buffer = io.StringIO()
    width = max(100, shutil.get_terminal_size((120, 24)).columns)
    Console(file=buffer, width=width, color_system=None, highlight=False).print(renderable)
    return buffer.getvalue()


def format_status(name: str, seen: engine.Observation, app: spec.WebApp | None = None) -> str:
    """Desired vs actual, one row per container; without a file the desired state is unknown."""
    wanted = {c.name: c for c in plan.desired(app)} if app else {}
    ready = sum(1 for c in seen.containers if c.ready and (not app or c.name in wanted))
    network = ("yes" if seen.network_exists else
               "NOT OURS (no label)" if seen.network_foreign else "missing")
    desired = str(app.spec.replicas) if app else "unknown"
    head = (f"{name}: desired {desired} · running {sum(1 for c in seen.containers if c.running)}"
            f" · ready {ready} · network {name}: {network}\n")
    if not app:
        head += "  (Docker keeps no record of the desired state: pass -f FILE to compare)\n"
    table = Table()
    for column in ("CONTAINER", "STATE", "HEALTH", "IMAGE", "MATCHES SPEC", "URL"):
        table.add_column(column, overflow="fold")
    for c in seen.containers:
        if not app:
            matches = "?"
        elif c.name not in wanted:
            matches = "no: surplus"
        else:
            found = plan.differences(wanted[c.name], c)
            matches = "yes" if not found else "no: " + "; ".join(found)
        url = f"http://{plan.LOOPBACK}:{c.host_port}/" if c.host_port else "-"
        state = c.status if c.status != "exited" else f"exited ({c.exit_code})"
        table.add_row(c.name, state, c.health, c.image, matches, url)
    for missing in sorted(set(wanted) - {c.name for c in seen.containers}):
        table.add_row(missing, "missing", "-", wanted[missing].image, "no: missing", "-")
    text = head + _render(table)
    if app:
        steps = plan.plan(app, seen.containers, network_exists=seen.network_exists)
        if steps:
            text += "apply would:\n" + "\n".join(f"  {s.verb} {s.target}: {s.reason}"
                                                  for s in steps) + "\n"
        else:
            text += "in sync: apply would change nothing\n"
    return text


def print_text(text: str, *, file: TextIO | None = None) -> None:
    if text:
        print(text, file=file or sys.stdout, flush=True)


def print_step(step: plan.Step) -> None:
    print_text(format_step(step))


def print_outcome(outcome: engine.Outcome) -> None:
    print_text(format_outcome(outcome))


def print_status(name: str, seen: engine.Observation, app: spec.WebApp | None = None) -> None:
    sys.stdout.write(format_status(name, seen, app))
    sys.stdout.flush()


# --- metrics and logs -----------------------------------------------------------------------


namespace_of = plan.namespace_of


def record(app: spec.WebApp, report: engine.Report, *, drift: bool = False) -> None:
    """The shared reconcile_lab_* family, engine="docker". drift: the spec did not change, so
    every change was a correction of the world."""
    metrics.set_replicas(metrics.DOCKER, namespace_of(app), app.name,
                         desired=report.desired, ready=report.ready)
    result = "success" if report.converged else "conflict" if report.conflict else "error"
    metrics.count_reconcile(metrics.DOCKER, result)
    metrics.reconcile_duration.labels(metrics.DOCKER).observe(report.seconds)
    for outcome in report.outcomes:
        step = outcome.step
        if not outcome.ok or isinstance(step, plan.WaitReady):
            continue
        metrics.writes.labels(metrics.DOCKER, step.kind, step.verb).inc()
        if drift or step.drift:
            metrics.drift_corrections.labels(metrics.DOCKER, step.kind).inc()


def _log_report(app: spec.WebApp, report: engine.Report) -> None:
    log = logs.get(engine=metrics.DOCKER, namespace=namespace_of(app), name=app.name)
    fields = {"desired": report.desired, "ready": report.ready,
              "changes": len(plan.changes(report.steps)), "seconds": round(report.seconds, 3)}
    if report.converged:
        log.info("converged", **fields)
    else:
        log.warning("not converged", failed=report.failed, conflict=report.conflict or None,
                    **fields)


# --- the verbs ------------------------------------------------------------------------------


def _configure_logs(args: argparse.Namespace) -> None:
    json = {"auto": None, "json": True, "console": False}[args.log_format]
    logs.configure(json=json, level=args.log_level)


def connect() -> engine.Engine:
    if not dockerd.answers():
        raise engine.EngineUnavailable(str(dockerd.SOCKET))
    return engine.Engine.connect()


def _waiting(path: Path) -> None:
    print_text(f"# waiting: another run holds {path}", file=sys.stderr)


def apply_once(eng: engine.Engine, app: spec.WebApp, *, dry_run: bool = False,
               timeout: float | None = None) -> engine.Report:
    if dry_run:
        report = eng.apply(app, dry_run=True, timeout=timeout, on_wait=_waiting)
        print_text(plan.format_steps(report.steps))
    else:
        report = eng.apply(app, timeout=timeout, on_step=print_step, on_outcome=print_outcome,
                           on_wait=_waiting)
    print_text(format_summary(report))
    return report


def run_apply(args: argparse.Namespace) -> int:
    _configure_logs(args)
    try:
        apps = load(args.filename)
    except InputError as e:
        print_text(str(e), file=sys.stderr)
        return INVALID
    if args.watch:
        return _watch(args, apps)
    try:
        eng = connect()
    except engine.EngineUnavailable as e:
        print_text(str(e), file=sys.stderr)
        return ENGINE_DOWN
    status = OK
    try:
        for app in apps:
            report = apply_once(eng, app, dry_run=args.dry_run, timeout=args.timeout)
            if not args.dry_run:
                record(app, report)
                if report.converged and plan.changes(report.steps):
                    metrics.time_to_converge.labels(metrics.DOCKER).observe(report.seconds)
                _log_report(app, report)
            if not report.converged:  # a dry run that would change something, too (like diff)
                status = NOT_CONVERGED
    except engine.EngineError as e:
        print_text(str(e), file=sys.stderr)
        status = NOT_CONVERGED
    except engine.EngineUnavailable as e:
        print_text(str(e), file=sys.stderr)
        status = ENGINE_DOWN
    finally:
        eng.close()
        if args.metrics_file:
            metrics.write_textfile(args.metrics_file)
    return status


def _watch(args: argparse.Namespace, apps: list[spec.WebApp]) -> int:
    log = logs.get(engine=metrics.DOCKER)
    metrics.init_engine(metrics.DOCKER)
    if args.metrics_port:
        try:
            metrics.serve(args.metrics_port)
        except OSError as e:
            print_text(f"cannot serve metrics on {plan.LOOPBACK}:{args.metrics_port}: {e.strerror} "
                       "(fix: --metrics-port with a free port, or --metrics-port 0 for none)",
                       file=sys.stderr)
            return INVALID
    names = ", ".join(plan.docker_name(a.name, a.namespace) for a in apps)
    print_text(f"# watching {names} every {args.interval:g}s; Ctrl-C stops it"
               + (f"; metrics on http://{plan.LOOPBACK}:{args.metrics_port}/metrics"
                  if args.metrics_port else ""))
    previous: dict[str, spec.WebApp] = {}
    diverged: dict[str, float] = {}  # app → when a difference was first seen
    eng: engine.Engine | None = None
    errors = 0  # polls in a row on which the engine answered with an error
    # `kill PID` (what a process manager or a closing terminal sends) stops it like Ctrl-C does.
    before = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            try:
                apps = load(args.filename)  # an edit is seen on the next poll, not before
            except InputError as e:
                print_text(f"{e}\n# keeping the last good version", file=sys.stderr)
            failed = False
            try:
                eng = eng or connect()
                for app in apps:
                    try:
                        _watch_one(eng, app, previous, diverged, timeout=args.timeout)
                    except engine.EngineError as e:  # this app, this poll; the others go on
                        failed = True
                        _engine_error(app, e, retry_in=backoff(args.interval, errors + 1))
            except engine.EngineUnavailable as e:
                log.error("engine unavailable", error=str(e).splitlines()[0])
                eng = None
            errors = errors + 1 if failed else 0
            if args.metrics_file:
                metrics.write_textfile(args.metrics_file)
            time.sleep(backoff(args.interval, errors))
    except KeyboardInterrupt:
        print_text(f"# stopped watching: nothing keeps {names} converged any more")
        return OK
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
    metrics.count_reconcile(metrics.DOCKER, "error")
    logs.get(engine=metrics.DOCKER, namespace=namespace_of(app), name=app.name).error(
        "engine error", error=str(error), status=error.status, retry_in=retry_in)
    print_text(f"[{time.strftime('%H:%M:%S')}] {plan.docker_name(app.name, app.namespace)}: "
               f"{error}; "
               f"retrying in {retry_in:g}s (fix, if it persists: the engine's log, e.g. "
               f"{dockerd.log_file()} or `journalctl -u docker`)", file=sys.stderr)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _watch_one(eng: engine.Engine, app: spec.WebApp, previous: dict[str, spec.WebApp],
               diverged: dict[str, float], *, timeout: float | None) -> None:
    started = time.monotonic()
    report = eng.apply(app, timeout=timeout, on_step=print_step, on_outcome=print_outcome,
                       on_wait=_waiting)
    key = plan.docker_name(app.name, app.namespace)
    unchanged = previous.get(key) == app
    previous[key] = app
    record(app, report, drift=unchanged)
    if plan.changes(report.steps) or report.conflict:
        diverged.setdefault(key, started)
    if report.converged and key in diverged:
        took = time.monotonic() - diverged.pop(key)
        metrics.time_to_converge.labels(metrics.DOCKER).observe(took)
    if report.steps or not report.converged:
        stamp = time.strftime("%H:%M:%S")
        print_text(f"[{stamp}] {format_summary(report)}")
        _log_report(app, report)


def run_status(args: argparse.Namespace) -> int:
    _configure_logs(args)
    try:
        apps = load(args.filename) if args.filename else []
    except InputError as e:
        print_text(str(e), file=sys.stderr)
        return INVALID
    targets: list[tuple[str, str, spec.WebApp | None]] = (
        [(a.name, namespace_of(a), a) for a in apps] if apps
        else [(n, args.namespace, None) for n in args.names])
    if not targets or (args.filename and args.names):
        print_text("status needs app NAMEs or -f FILE, not both (see --help)", file=sys.stderr)
        return INVALID
    try:
        eng = connect()
    except engine.EngineUnavailable as e:
        print_text(str(e), file=sys.stderr)
        return ENGINE_DOWN
    status = OK
    try:
        for name, namespace, app in targets:
            seen = eng.observe(name, namespace)
            print_status(plan.docker_name(name, namespace), seen, app)
            if app and (plan.changes(plan.plan(app, seen.containers,
                                               network_exists=seen.network_exists))
                        or sum(1 for c in seen.containers if c.ready) != app.spec.replicas):
                status = NOT_CONVERGED
    except engine.EngineError as e:
        print_text(str(e), file=sys.stderr)
        return NOT_CONVERGED
    except engine.EngineUnavailable as e:
        print_text(str(e), file=sys.stderr)
        return ENGINE_DOWN
    finally:
        eng.close()
    return status


def run_delete(args: argparse.Namespace) -> int:
    _configure_logs(args)
    try:
        apps = load(args.filename) if args.filename else []
    except InputError as e:
        print_text(str(e), file=sys.stderr)
        return INVALID
    targets = [(a.name, namespace_of(a)) for a in apps] or [(n, args.namespace)
                                                             for n in args.names]
    names = [name for name, _ in targets]
    if not names or (args.filename and args.names):
        print_text("delete needs app NAMEs or -f FILE, not both (see --help)", file=sys.stderr)
        return INVALID
    bad = [n for n in names if not spec.NAME_RULES[0].check(n)]
    if bad:
        print_text(f"{', '.join(bad)}: not an app name ({spec.NAME_RULES[0].message})",
                   file=sys.stderr)
        return INVALID
    try:
        eng = connect()
    except engine.EngineUnavailable as e:
        print_text(str(e), file=sys.stderr)
        return ENGINE_DOWN
    status = OK
    try:
        for name, namespace in targets:
            report = eng.delete(name, namespace, on_step=print_step, on_outcome=print_outcome,
                                on_wait=_waiting)
            print_text(format_deleted(report))
            metrics.forget_app(metrics.DOCKER, namespace, name)
            for outcome in report.outcomes:
                if outcome.ok:
                    metrics.writes.labels(metrics.DOCKER, outcome.step.kind, "delete").inc()
            logs.get(engine=metrics.DOCKER, namespace=namespace, name=name).info(
                "deleted", removed=sum(1 for o in report.outcomes if o.ok))
            if plan.changes(report.remaining) or report.failures:
                status = NOT_CONVERGED
    except engine.EngineError as e:
        print_text(str(e), file=sys.stderr)
        return NOT_CONVERGED
    except engine.EngineUnavailable as e:
        print_text(str(e), file=sys.stderr)
        return ENGINE_DOWN
    finally:
        eng.close()
        if args.metrics_file:
            metrics.write_textfile(args.metrics_file)
    return status


# --- argparse -------------------------------------------------------------------------------


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535; 0: none)")
    return value


def _common(parser: argparse.ArgumentParser, *, files_help: str, required: bool = False) -> None:
    parser.add_argument("-f", "--filename", action="append", default=[], metavar="FILE",
                        required=required, help=files_help)
    parser.add_argument("--log-format", choices=("auto", "json", "console"), default="auto",
                        help="logs on stderr; auto: console on a terminal, JSON otherwise")
    parser.add_argument("--log-level", default="INFO", metavar="LEVEL",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        type=str.upper, help="DEBUG, INFO, WARNING or ERROR (default: INFO)")


def _namespace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", default=DEFAULT_NAMESPACE, type=_namespace_name,
                        help="the namespace of the NAMEs, as in the WebApp's metadata.namespace "
                             f"(default: {DEFAULT_NAMESPACE}); with -f the file says")


def _namespace_name(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a namespace name (a DNS-1123 label: lowercase letters, digits "
            "and '-', at most 63)")
    return text


def _usage(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return INVALID
    return show


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``docker apply|status|delete`` to the main CLI."""
    raw = argparse.RawDescriptionHelpFormatter
    top = subparsers.add_parser(
        "docker", help="the imperative Docker twin: apply, status, delete",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=raw)
    top.set_defaults(func=_usage(top))
    verbs = top.add_subparsers(title="commands", metavar="{apply,status,delete}")

    apply = verbs.add_parser(
        "apply", help="make the WebApps in FILE true once (or keep polling with --watch)",
        description="Validate every WebApp in every FILE (nothing changes if one is invalid),\n"
        "then for each: compare with the containers labelled for it, print each step as the\n"
        "docker command a person would type and run it, wait until ready, print a summary.",
        epilog=EPILOG + "\n" + WATCH_LIMITS,
        formatter_class=raw)
    _common(apply, required=True, files_help="a WebApp YAML file, possibly several documents; "
                                             "- for stdin; repeatable")
    apply.add_argument("--dry-run", action="store_true",
                       help="print the plan as a shell script, change nothing")
    apply.add_argument("--timeout", type=_positive, metavar="S",
                       help="seconds to wait for each container to be ready (default: from "
                            "spec.healthCheck, at least 20)")
    apply.add_argument("--watch", action="store_true",
                       help="re-read FILE and re-apply every --interval until Ctrl-C "
                            "(a naive loop: see below what it cannot do)")
    apply.add_argument("--interval", type=_positive, default=DEFAULT_INTERVAL, metavar="S",
                       help=f"seconds between polls with --watch (default: {DEFAULT_INTERVAL:g})")
    apply.add_argument("--metrics-port", type=_port, default=DEFAULT_METRICS_PORT, metavar="PORT",
                       help="with --watch, serve /metrics on 127.0.0.1:PORT "
                            f"(default: {DEFAULT_METRICS_PORT}; 0: none)")
    apply.add_argument("--metrics-file", metavar="PATH",
                       help="write the metrics in the textfile format (node-exporter) when done "
                            "(with --watch: after every poll)")
    apply.set_defaults(func=run_apply)

    status = verbs.add_parser(
        "status", help="desired vs actual, one row per container",
        description="Show the containers and the network an app owns. With -f FILE, compare\n"
        "them with the WebApp and say what apply would do; exit 1 when they differ.",
        epilog=EPILOG, formatter_class=raw)
    status.add_argument("names", nargs="*", metavar="NAME", help="app name(s)")
    _namespace(status)
    _common(status, files_help="WebApp YAML file(s) to compare with")
    status.set_defaults(func=run_status)

    delete = verbs.add_parser(
        "delete", help="remove exactly what an app owns: its containers and its network",
        description="Remove the containers labelled reconcile-lab/app=NAME (in NAMESPACE), and "
        "the network\n"
        "NAME if it carries that label. Nothing else is touched.",
        epilog=EPILOG, formatter_class=raw)
    delete.add_argument("names", nargs="*", metavar="NAME", help="app name(s)")
    _namespace(delete)
    _common(delete, files_help="WebApp YAML file(s) whose apps to delete")
    delete.add_argument("--metrics-file", metavar="PATH",
                        help="write the metrics in the textfile format when done")
    delete.set_defaults(func=run_delete)
