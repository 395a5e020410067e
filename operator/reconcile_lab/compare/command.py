"""``reconcile-lab compare`` and ``reconcile-lab watch``: wiring only.

The harness measures, the live view shows; this module parses arguments and calls them.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from reconcile_lab import arguments
from reconcile_lab.compare import scenarios

DEFAULT_OUT = Path("out") / "compare"


def _compare(args: argparse.Namespace) -> int:
    from reconcile_lab.compare import harness

    return harness.main(Path(args.out), quick=args.quick, only=args.scenario or (),
                        engines=args.engine or (), keep_cluster=args.keep_cluster,
                        kubeconfig=Path(args.kubeconfig) if args.kubeconfig else None)


def _traffic(args: argparse.Namespace) -> int:
    from reconcile_lab.cluster import providers
    from reconcile_lab.compare import traffic

    if args.forget:
        traffic.forget(args.name, args.namespace)
        return 0
    from reconcile_lab.declarative import kube

    engines = [traffic.KUBERNETES, traffic.DOCKER] if args.engine == "both" else [args.engine]
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else providers.kubeconfig()
    if traffic.KUBERNETES in engines and not kubeconfig.is_file():
        print(f"traffic: no kubeconfig at {kubeconfig}.\n  fix: run `reconcile-lab cluster up` "
              "first, pass --kubeconfig PATH, or --engine docker", file=sys.stderr)
        return 2
    try:
        return traffic.run(args.name, args.namespace, seconds=args.seconds, rate=args.rate,
                           engines=engines, during=args.during or (), kubeconfig=kubeconfig,
                           path=args.path)
    except LookupError as e:
        print(f"traffic: {e}", file=sys.stderr)
        return 2
    except kube.KubeError as e:
        print(f"traffic: {e}", file=sys.stderr)
        return 1


def _watch(args: argparse.Namespace) -> int:
    from reconcile_lab.compare.live import main

    return main(once=args.once, interval=args.interval, files=args.filename,
                     kubeconfig=Path(args.kubeconfig) if args.kubeconfig else None,
                     namespace=args.namespace)


def register(sub: Any) -> None:
    table = "\n".join(f"  {s.id:<16} {s.title}{'  (quick)' if s.quick else ''}"
                      for s in scenarios.SCENARIOS)
    engines = "\n".join(f"  {e.id:<16} {e.how}" for e in scenarios.ENGINES)
    compare = sub.add_parser(
        "compare", help="measure both engines side by side: table, plots, JSON",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""
            Run every scenario against every engine, sample desired vs actual vs ready every
            100 ms, and write what was measured: a Markdown table shaped like the article's
            (comparison.md), a PNG timeline per scenario, and the raw JSON (results.json).

            Both sides run real processes: the operator's pods are containers on the embedded
            cluster's real node (kubelet, containerd, runc on this host), so the same fault hits
            both (SIGKILL of a container's main process), and requests reach the Service's
            NodePort on 127.0.0.1 as they reach Docker's published ports.

            It brings up a cluster with a real node of its own (in the state directory's
            compare/, removed at the end; --kubeconfig measures on a running one instead), its
            own operator, and a single-node swarm on 127.0.0.1 when none is active (left at the
            end). Containers publish on 127.0.0.1 only; requests go there only.
        """).strip() + f"\n\nscenarios:\n{table}\n\nengines:\n{engines}")
    compare.add_argument("--quick", action="store_true",
                         help="only " + ", ".join(scenarios.QUICK))
    compare.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                         help=f"where to write (default: {DEFAULT_OUT})")
    compare.add_argument("--scenario", action="append", metavar="ID",
                         choices=[s.id for s in scenarios.SCENARIOS],
                         help="run only this scenario (repeatable)")
    compare.add_argument("--engine", action="append", metavar="ID",
                         choices=[e.id for e in scenarios.ENGINES],
                         help="run only this engine (repeatable)")
    compare.add_argument("--keep-cluster", action="store_true",
                         help="keep the comparison's cluster for the next run")
    compare.add_argument("--kubeconfig", metavar="FILE",
                         help="measure on this running cluster (it needs a Ready real node); "
                              "only the comparison's namespace is made and removed")
    compare.set_defaults(func=_compare)

    traffic = sub.add_parser(
        "traffic", help="steady requests to one app on both engines, counted (during a release)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""
            Send steady requests to one app, on Kubernetes through its Service's NodePort on
            127.0.0.1 (kube-proxy balances over the ready pods), on Docker round-robin over the
            twin's containers Docker lists as ready; one at a time per engine, to 127.0.0.1
            only. --during runs commands meanwhile, so the count says what a release cost.
            A line a second, a summary at the end; the summary is kept for `exercise check`.
        """).strip(),
        epilog=textwrap.dedent("""
            examples:
              reconcile-lab traffic hello --seconds 20
              reconcile-lab traffic hello --during "kubectl apply -f webapp-v2.yaml"
              reconcile-lab traffic hello -n shop --engine kubernetes
              reconcile-lab traffic hello --path /cgi-bin/work --rate 4 --seconds 90
        """).strip())
    traffic.add_argument("name", metavar="NAME", help="the app (the WebApp's name)")
    traffic.add_argument("-n", "--namespace", default="default",
                         help="the WebApp's namespace (default: default)")
    traffic.add_argument("--seconds", type=float, default=20.0, metavar="S",
                         help="how long, at least (default: 20; longer while --during runs)")
    traffic.add_argument("--rate", type=arguments.rate, default=scenarios.RELEASE_RATE, metavar="N",
                         help=f"requests a second per engine (default: "
                              f"{scenarios.RELEASE_RATE:g})")
    traffic.add_argument("--path", default="/", metavar="PATH",
                         help="what each request asks for (default: /; the demo image's "
                              "/cgi-bin/work costs about 40 ms of CPU: load for an autoscaler)")
    traffic.add_argument("--engine", choices=("kubernetes", "docker", "both"), default="both")
    traffic.add_argument("--during", action="append", metavar="CMD",
                         help="a shell command to run meanwhile, 2 s in (repeatable: one after "
                              "the other)")
    traffic.add_argument("--forget", action="store_true",
                         help="only remove the kept summary of NAME")
    traffic.add_argument("--kubeconfig", help="cluster to use (default: the kit's own cluster)")
    traffic.set_defaults(func=_traffic)

    watch = sub.add_parser(
        "watch", help="live view of both engines side by side (Ctrl-C to quit)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""
            Every WebApp (desired, actual and ready from its status) next to every app of the
            Docker twin (from the containers labelled reconcile-lab/app), with the last
            actions on each side: Kubernetes events from the operator, container events from
            the Docker engine, and the recent drift repairs.

            Docker keeps no desired state: pass the WebApp files with -f to show it, or run
            the twin with --watch (its metrics on 127.0.0.1:8001 say what it wants).
        """).strip())
    watch.add_argument("--once", action="store_true", help="print one frame and exit")
    watch.add_argument("--interval", type=float, default=1.0, metavar="S",
                       help="seconds between refreshes (default: 1)")
    watch.add_argument("-f", "--filename", action="append", default=[], metavar="FILE",
                       help="WebApp file(s): the Docker side's desired state")
    watch.add_argument("--kubeconfig", help="cluster to show (default: the kit's own cluster)")
    watch.add_argument("--namespace", help="only this namespace (default: all)")
    watch.set_defaults(func=_watch)
