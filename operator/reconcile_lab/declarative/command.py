"""``reconcile-lab operator run``: start the kopf operator against the kit's cluster.

Wiring only: it chooses the kubeconfig (the kit's cluster unless told otherwise, never the
user's current context) and runs ``kopf run -m reconcile_lab.declarative.handlers``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconcile_lab import pidfiles, ports
from reconcile_lab.cluster import probing, providers

HANDLERS = "reconcile_lab.declarative.handlers"
EDGE_TRIGGERED = "reconcile_lab.declarative.naive"  # exercise 10's foil: acts on create only


def kopf_argv(args: argparse.Namespace) -> list[str]:
    module = EDGE_TRIGGERED if args.edge_triggered else HANDLERS
    argv = [sys.executable, "-m", "kopf", "run", "-m", module,
            f"--liveness=http://{args.bind}:{args.health_port}/healthz"]
    argv += ["--namespace", args.namespace] if args.namespace else ["--all-namespaces"]
    if args.peering:
        # Peers with the same priority would all pause: each replica draws its own.
        priority = args.priority if args.priority is not None else secrets.randbelow(10**6) + 1
        argv += ["--peering", args.peering, "--priority", str(priority)]
    else:
        argv.append("--standalone")
    # kopf's own lines: warnings and errors only (one INFO line per handled event would drown
    # the operator's own log), in JSON when the operator logs JSON.
    argv.append("--verbose" if args.verbose else "--quiet")
    json_logs = args.log_format == "json" or (args.log_format == "auto" and not sys.stderr.isatty())
    if json_logs:
        argv += ["--log-format", "json"]
    return argv


def kopf_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    in_cluster = "KUBERNETES_SERVICE_HOST" in env and not args.kubeconfig
    if not in_cluster:
        kubeconfig = Path(args.kubeconfig) if args.kubeconfig else providers.kubeconfig()
        if not kubeconfig.is_file():
            raise probing.ClusterError(
                f"no kubeconfig at {kubeconfig}.\n  fix: run `reconcile-lab cluster up` "
                "first, or pass --kubeconfig PATH")
        env["KUBECONFIG"] = str(kubeconfig)  # read by kopf and by the kubernetes client
        env["RECONCILE_LAB_KUBECONFIG"] = str(kubeconfig)
    if args.namespace:  # the resync lists only there; kopf scans nothing cluster-wide
        env["RECONCILE_LAB_NAMESPACE"] = args.namespace
    else:
        env.pop("RECONCILE_LAB_NAMESPACE", None)
    env[ports.OPERATOR_METRICS.variable] = str(args.metrics_port)
    env["RECONCILE_LAB_METRICS_ADDR"] = args.bind
    if args.log_format != "auto":
        env["RECONCILE_LAB_LOG_FORMAT"] = args.log_format
    # glibc gives threads that allocate at once arenas of their own (up to eight per core);
    # what the reconcile threads free is then spread over many of them and the RSS stays high.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    return env


def run(args: argparse.Namespace) -> int:
    for port, what in ((args.metrics_port, "the metrics endpoint"),
                       (args.health_port, "the liveness endpoint")):
        if port and args.bind == "127.0.0.1":
            probing.require_free_port(port, what=what)
    if args.through_fault_proxy:
        _through_fault_proxy(args)
    env = kopf_env(args)
    argv = kopf_argv(args)
    print(f"reconcile-lab: running the operator against {env.get('KUBECONFIG', 'in-cluster')}: "
          f"metrics http://{args.bind}:{args.metrics_port}/metrics, "
          f"liveness http://{args.bind}:{args.health_port}/healthz", file=sys.stderr, flush=True)
    os.execve(argv[0], argv, env)  # the operator replaces this process: signals reach kopf


def register(sub: Any) -> None:
    op = sub.add_parser(
        "operator", help="run the WebApp operator (the declarative engine)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""
            The kopf operator: it watches WebApps and keeps a Deployment and a Service equal to
            each, repairs drift, reports status conditions and exports Prometheus metrics.

            examples:
              reconcile-lab operator run                 # against `reconcile-lab cluster up`
              reconcile-lab operator run --log-format json --metrics-port 9000
              kubectl apply -f examples/01-hello/webapp.yaml
              kubectl get webapps                        # Image, Desired, Ready, Status, Age
        """).strip())
    osub = op.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = osub.add_parser("run", help="run in the foreground until interrupted")
    bg = osub.add_parser("start", help="run in the background (log and pid in the state dir)")
    osub.add_parser("stop", help="stop the background operator").set_defaults(func=stop)
    rb = osub.add_parser(
        "rbac", help="print the RBAC for serving one namespace only (for `run --namespace`)",
        description="Print a ServiceAccount, a Role and a RoleBinding that let the operator "
        "serve NAMESPACE and nothing else; apply them with `kubectl apply -f -`, then run "
        "the operator with `--namespace NAMESPACE` under that ServiceAccount.")
    rb.add_argument("--namespace", required=True, help="the namespace the operator serves")
    rb.set_defaults(func=print_rbac)
    for p in (r, bg):
        _run_options(p)
    r.set_defaults(func=run)
    bg.set_defaults(func=start)


def _run_options(r: argparse.ArgumentParser) -> None:
    r.add_argument("--kubeconfig", help="cluster to use (default: the kit's own cluster)")
    r.add_argument("--namespace", help="watch one namespace only (default: all)")
    # The environment may move the defaults: a machine whose 8000/8080 are taken sets them once,
    # and what starts the operator for it (`exercise reset`, `solve`) needs no flags.
    r.add_argument("--metrics-port", type=int, default=ports.OPERATOR_METRICS.get(),
                   help=f"Prometheus /metrics port ({ports.OPERATOR_METRICS.help()}; 0 disables)")
    r.add_argument("--health-port", type=int, default=ports.OPERATOR_HEALTH.get(),
                   help=f"liveness /healthz port ({ports.OPERATOR_HEALTH.help()})")
    r.add_argument("--bind", default="127.0.0.1",
                   help="address for metrics and health (in a pod: 0.0.0.0)")
    r.add_argument("--log-format", choices=("auto", "json", "console"), default="auto",
                   help="auto: console on a terminal, JSON otherwise")
    r.add_argument("--peering", default="",
                   help="kopf peering name (a ClusterKopfPeering, see deploy/peering.yaml): with "
                   "several replicas only the one with the highest priority acts")
    r.add_argument("--priority", type=int, default=None,
                   help="peering priority (default: random, so that replicas differ)")
    r.add_argument("--verbose", action="store_true", help="kopf's own debug logs too")
    r.add_argument("--through-fault-proxy", action="store_true",
                   help="reach the apiserver through `reconcile-lab fault proxy` (started "
                   "first), so that `reconcile-lab fault cut|stall|heal` break the operator's "
                   "path alone (exercise 11)")
    r.add_argument("--edge-triggered", action="store_true",
                   help="run instead the operator kopf's tutorial teaches: it makes the children "
                   "when a WebApp is created, and never looks again (exercise 10; "
                   "operator/reconcile_lab/declarative/naive.py)")


def print_rbac(args: argparse.Namespace) -> int:
    from reconcile_lab import schema
    from reconcile_lab.declarative import permissions

    print(schema.documents_yaml(permissions.namespaced_rbac(args.namespace),
                                "declarative/permissions.py"), end="")
    return 0


# --- in the background, for the demo and the exercises ------------------------------------


def _pid_file() -> Path:
    from reconcile_lab import paths

    return paths.state_dir() / "operator.pid"


def log_file() -> Path:
    from reconcile_lab import paths

    return paths.state_dir() / "operator.log"


def is_operator(argv: Sequence[str]) -> bool:
    """Whether a command line is the operator as ``kopf_argv`` starts it (either kind)."""
    return "kopf" in argv and (HANDLERS in argv or EDGE_TRIGGERED in argv)


_NAMES = {"level": "operator", "edge": "edge-triggered operator (--edge-triggered)",
          "proxied": "operator behind the fault proxy (--through-fault-proxy)"}


def _kind_file() -> Path:
    return _pid_file().with_name("operator.kind")


def _kind(args: argparse.Namespace) -> str:
    return ("edge" if args.edge_triggered else
            "proxied" if args.through_fault_proxy else "level")


def running_kind() -> str | None:
    """Which background operator runs: "level" (the kit's), "proxied" (the kit's, through
    the fault proxy), "edge" (``--edge-triggered``), or None."""
    if pidfiles.alive(_pid_file(), is_operator) is None:
        return None
    try:
        kind = _kind_file().read_text().strip()
    except OSError:
        kind = ""
    return kind if kind in _NAMES else "level"


def _through_fault_proxy(args: argparse.Namespace) -> None:
    """Point ``args.kubeconfig`` at the fault proxy's, waiting a moment for a proxy that is
    starting (``reconcile-lab fault proxy &`` just before)."""
    import time

    from reconcile_lab.faults import command as faults

    path = faults.kubeconfig_path()
    deadline = time.monotonic() + 15
    while not path.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    if not path.is_file():
        raise probing.ClusterError(f"no fault proxy runs (no kubeconfig at {path}).\n  fix: "
                                   "start one first: reconcile-lab fault proxy &")
    args.kubeconfig = str(path)


def running_pid() -> int | None:
    """The background operator's pid, only when the pid file names a live operator."""
    record = pidfiles.alive(_pid_file(), is_operator)
    return record.pid if record else None


def start(args: argparse.Namespace) -> int:
    """Start the operator in the background (log in the state directory); idempotent."""
    import subprocess

    wanted = _kind(args)
    if (pid := running_pid()) is not None:
        kind = running_kind()
        if kind == wanted:
            print(f"reconcile-lab: the {_NAMES[wanted]} already runs (pid {pid}); log: "
                  f"{log_file()}", file=sys.stderr)
            return 0
        # Two operators on one cluster would both act: the one asked for replaces the other.
        print(f"reconcile-lab: the {_NAMES[kind or 'level']} runs (pid {pid}): stopping it "
              "first", file=sys.stderr)
        stop(args)
    for port, what in ((args.metrics_port, "the metrics endpoint"),
                       (args.health_port, "the liveness endpoint")):
        if port and args.bind == "127.0.0.1":
            probing.require_free_port(port, what=what)
    if args.log_format == "auto":  # it writes to a file, not to this terminal
        args.log_format = "json"
    if args.through_fault_proxy:
        _through_fault_proxy(args)
    env = kopf_env(args)
    log_file().parent.mkdir(parents=True, exist_ok=True)
    with log_file().open("a") as out:
        proc = subprocess.Popen(kopf_argv(args), env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    pidfiles.write(_pid_file(), proc.pid)
    _kind_file().write_text(wanted + "\n")
    if args.edge_triggered:
        print(f"reconcile-lab: {_NAMES['edge']} started (pid {proc.pid}); log: {log_file()}; "
              "it acts when a WebApp is created, and never again", file=sys.stderr)
        return 0
    print(f"reconcile-lab: operator started (pid {proc.pid}); log: {log_file()}; "
          f"metrics: http://{args.bind}:{args.metrics_port}/metrics", file=sys.stderr)
    return 0


def stop(args: argparse.Namespace) -> int:
    """Stop the background operator, and only it: the pid file is checked against /proc first."""
    import signal
    import time

    path = _pid_file()
    record = pidfiles.read(path)
    if record is None:
        print("reconcile-lab: the operator is not running", file=sys.stderr)
        return 0
    if why := pidfiles.why_not(record, is_operator):
        path.unlink(missing_ok=True)
        print(f"reconcile-lab: the operator is not running: {path} was stale ({why}); "
              "removed it, signalled nothing", file=sys.stderr)
        return 0
    os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not pidfiles.why_not(record, is_operator):
        time.sleep(0.2)
    if not pidfiles.why_not(record, is_operator):
        os.kill(record.pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    _kind_file().unlink(missing_ok=True)
    print(f"reconcile-lab: operator stopped (pid {record.pid})", file=sys.stderr)
    return 0
