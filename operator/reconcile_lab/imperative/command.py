"""``reconcile-lab docker apply|status|delete``: the Docker twin on the command line.

Thin wiring: the arguments, the help texts and the exit statuses. Each verb reads the files
(``loading``), hands each app to a run (``applying``, or ``watching`` for ``--watch``), prints what
happens (``printing``) and counts it (``recording``).

Must not decide what to change (``plan`` does) nor talk to Docker itself (``engine`` does).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable

from reconcile_lab import arguments, ports, spec
from reconcile_lab.cluster import dockerd
from reconcile_lab.imperative import (
    applying,
    containers,
    engine,
    loading,
    plan,
    printing,
    recording,
    reports,
    steps,
    watching,
)
from reconcile_lab.observe import logs, metrics

# Exit statuses, also listed in the --help epilog.
OK = 0
NOT_CONVERGED = 1
INVALID = 2
ENGINE_DOWN = 3

DEFAULT_INTERVAL = 2.0
DEFAULT_NAMESPACE = containers.DEFAULT_NAMESPACE

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
  autoscale      nothing: Docker has no autoscaler; the twin runs `replicas` containers,
                 and more under load take a person who edits the file and applies it again
  security       --user 65532:65532 --read-only --cap-drop ALL
                 --security-opt no-new-privileges
"""

EPILOG = """\
examples:
  reconcile-lab docker apply -f webapp.yaml             make it true once; print each step
  reconcile-lab docker apply -f webapp.yaml --dry-run   only print what it would do
  reconcile-lab docker apply -f webapp.yaml --watch     re-apply every 2 s until Ctrl-C
  reconcile-lab docker apply -f apps/ --prune           the folder is the project: an app whose
                                                        file was removed is removed
  reconcile-lab docker status hello                     what runs for the app "hello"
  reconcile-lab docker status -f webapp.yaml            desired vs actual
  reconcile-lab docker delete hello                     remove its containers and network
  reconcile-lab docker status hello -n shop             the app "hello" of namespace "shop"

exit status: 0 converged · 1 something did not converge (the rest did) · 2 invalid file or
usage, nothing changed · 3 no Docker engine answers, nothing changed
"""


# --- the verbs ------------------------------------------------------------------------------


def _configure_logs(args: argparse.Namespace) -> None:
    json = {"auto": None, "json": True, "console": False}[args.log_format]
    logs.configure(json=json, level=args.log_level)


def connect() -> engine.Engine:
    if not dockerd.answers():
        raise engine.EngineUnavailable(str(dockerd.SOCKET))
    return engine.Engine.connect()


def apply_once(eng: engine.Engine, app: spec.WebApp, *, dry_run: bool = False,
               timeout: float | None = None, project: str | None = None) -> reports.Report:
    if dry_run:
        report = applying.apply(eng, app, dry_run=True, timeout=timeout,
                                on_wait=printing.print_waiting, project=project)
        printing.print_text(printing.format_steps(report.steps))
    else:
        report = applying.apply(eng, app, timeout=timeout, on_step=printing.print_step,
                                on_outcome=printing.print_outcome, on_wait=printing.print_waiting,
                                project=project)
    printing.print_text(printing.format_summary(report))
    return report


def run_apply(args: argparse.Namespace) -> int:
    _configure_logs(args)
    try:
        apps = loading.load(loading.expand(args.filename))
        project = loading.project(args.filename, args.project) \
            if args.prune or args.project else None
    except loading.InputError as e:
        printing.print_text(str(e), file=sys.stderr)
        return INVALID
    if args.watch:
        if args.prune:
            printing.print_text("--prune with --watch: the loop owns nothing it did not make in "
                                "this run (see below); run `apply -f DIR --prune` once instead",
                                file=sys.stderr)
            return INVALID
        return _watch(args, apps)
    try:
        eng = connect()
    except engine.EngineUnavailable as e:
        printing.print_text(str(e), file=sys.stderr)
        return ENGINE_DOWN
    status = OK
    try:
        for app in apps:
            report = apply_once(eng, app, dry_run=args.dry_run, timeout=args.timeout,
                                project=project)
            if not args.dry_run:
                recording.record(app, report)
                if report.converged and steps.changes(report.steps):
                    recording.record_converged(report.seconds)
                recording.log_report(app, report)
            if not report.converged:  # a dry run that would change something, too (like diff)
                status = NOT_CONVERGED
        if args.prune and project:
            status = max(status, _prune(eng, apps, project, dry_run=args.dry_run))
    except engine.EngineError as e:
        printing.print_text(str(e), file=sys.stderr)
        status = NOT_CONVERGED
    except engine.EngineUnavailable as e:
        printing.print_text(str(e), file=sys.stderr)
        status = ENGINE_DOWN
    finally:
        eng.close()
        if args.metrics_file:
            metrics.write_textfile(args.metrics_file)
    return status


def _prune(eng: engine.Engine, apps: list[spec.WebApp], project: str, *, dry_run: bool) -> int:
    """Remove the project's apps that no file declares any more; the exit status it earns."""
    status = OK
    for name, namespace in applying.strays(eng, apps, project):
        if dry_run:
            printing.print_text(f"# would prune {containers.docker_name(name, namespace)}: "
                                f"labelled {containers.LABEL_PROJECT}={project}, in no file")
            status = NOT_CONVERGED
            continue
        printing.print_text(f"# pruning {containers.docker_name(name, namespace)}: labelled "
                            f"{containers.LABEL_PROJECT}={project}, in no file any more")
        status = max(status, _delete_one(eng, name, namespace))
    return status


def _delete_one(eng: engine.Engine, name: str, namespace: str) -> int:
    """Remove what one app owns, say so, count it; the exit status it earns."""
    report = applying.delete(eng, name, namespace, on_step=printing.print_step,
                             on_outcome=printing.print_outcome, on_wait=printing.print_waiting)
    printing.print_text(printing.format_deleted(report))
    recording.record_deleted(name, namespace, report)
    return NOT_CONVERGED if steps.changes(report.remaining) or report.failures else OK


def _watch(args: argparse.Namespace, apps: list[spec.WebApp]) -> int:
    metrics.init_engine(metrics.DOCKER)
    if args.metrics_port:
        try:
            metrics.serve(args.metrics_port)
        except OSError as e:
            printing.print_text(
                f"cannot serve metrics on {containers.LOOPBACK}:{args.metrics_port}: {e.strerror} "
                "(fix: --metrics-port with a free port, or --metrics-port 0 for none)",
                file=sys.stderr)
            return INVALID
    watching.watch(args.filename, apps, connect=connect, interval=args.interval,
                   timeout=args.timeout, metrics_port=args.metrics_port,
                   metrics_file=args.metrics_file)
    return OK


def run_status(args: argparse.Namespace) -> int:
    _configure_logs(args)
    try:
        apps = loading.load(loading.expand(args.filename)) if args.filename else []
    except loading.InputError as e:
        printing.print_text(str(e), file=sys.stderr)
        return INVALID
    targets: list[tuple[str, str, spec.WebApp | None]] = (
        [(a.name, containers.namespace_of(a), a) for a in apps] if apps
        else [(n, args.namespace, None) for n in args.names])
    if not targets or (args.filename and args.names):
        printing.print_text("status needs app NAMEs or -f FILE, not both (see --help)",
                            file=sys.stderr)
        return INVALID
    try:
        eng = connect()
    except engine.EngineUnavailable as e:
        printing.print_text(str(e), file=sys.stderr)
        return ENGINE_DOWN
    status = OK
    try:
        for name, namespace, app in targets:
            seen = eng.observe(name, namespace)
            printing.print_status(containers.docker_name(name, namespace), seen, app)
            if app and (steps.changes(plan.plan(app, seen.containers,
                                                network_exists=seen.network_exists))
                        or sum(1 for c in seen.containers if c.ready) != app.spec.replicas):
                status = NOT_CONVERGED
    except engine.EngineError as e:
        printing.print_text(str(e), file=sys.stderr)
        return NOT_CONVERGED
    except engine.EngineUnavailable as e:
        printing.print_text(str(e), file=sys.stderr)
        return ENGINE_DOWN
    finally:
        eng.close()
    return status


def run_delete(args: argparse.Namespace) -> int:
    _configure_logs(args)
    try:
        apps = loading.load(loading.expand(args.filename)) if args.filename else []
    except loading.InputError as e:
        printing.print_text(str(e), file=sys.stderr)
        return INVALID
    targets = [(a.name, containers.namespace_of(a)) for a in apps] or [(n, args.namespace)
                                                             for n in args.names]
    names = [name for name, _ in targets]
    if not names or (args.filename and args.names):
        printing.print_text("delete needs app NAMEs or -f FILE, not both (see --help)",
                            file=sys.stderr)
        return INVALID
    bad = [n for n in names if not spec.NAME_RULES[0].check(n)]
    if bad:
        printing.print_text(f"{', '.join(bad)}: not an app name ({spec.NAME_RULES[0].message})",
                            file=sys.stderr)
        return INVALID
    try:
        eng = connect()
    except engine.EngineUnavailable as e:
        printing.print_text(str(e), file=sys.stderr)
        return ENGINE_DOWN
    status = OK
    try:
        for name, namespace in targets:
            status = max(status, _delete_one(eng, name, namespace))
    except engine.EngineError as e:
        printing.print_text(str(e), file=sys.stderr)
        return NOT_CONVERGED
    except engine.EngineUnavailable as e:
        printing.print_text(str(e), file=sys.stderr)
        return ENGINE_DOWN
    finally:
        eng.close()
        if args.metrics_file:
            metrics.write_textfile(args.metrics_file)
    return status


# --- argparse -------------------------------------------------------------------------------


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
        epilog=EPILOG + "\n" + watching.LIMITS,
        formatter_class=raw)
    _common(apply, required=True, files_help="a WebApp YAML file, possibly several documents, "
                                             "or a folder of them; - for stdin; repeatable")
    apply.add_argument("--prune", action="store_true",
                       help="the files are the whole project: label what is made with "
                            "reconcile-lab/project=PROJECT and remove the project's apps that "
                            "no file declares any more (compose's --remove-orphans)")
    apply.add_argument("--project", metavar="NAME",
                       help="the project's name (default with --prune: the folder's name)")
    apply.add_argument("--dry-run", action="store_true",
                       help="print the plan as a shell script, change nothing")
    apply.add_argument("--timeout", type=arguments.seconds, metavar="S",
                       help="seconds to wait for each container to be ready (default: from "
                            "spec.healthCheck, at least 20)")
    apply.add_argument("--watch", action="store_true",
                       help="re-read FILE and re-apply every --interval until Ctrl-C "
                            "(a naive loop: see below what it cannot do)")
    apply.add_argument("--interval", type=arguments.seconds, default=DEFAULT_INTERVAL, metavar="S",
                       help=f"seconds between polls with --watch (default: {DEFAULT_INTERVAL:g})")
    apply.add_argument("--metrics-port", type=_port, default=ports.TWIN_METRICS.get(), metavar="PORT",
                       help="with --watch, serve /metrics on 127.0.0.1:PORT "
                            f"({ports.TWIN_METRICS.help()}; 0: none)")
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
