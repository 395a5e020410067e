"""``reconcile-lab exercise list|check``: wiring only (``exercises`` decides, ``gather`` reads)."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from reconcile_lab.workshop import exercises

# What each check reads: skipping the rest keeps a check to a second or two.
NEEDS = {
    "01": ("kubernetes",), "02": ("kubernetes",), "03": ("kubernetes", "docker"),
    "04": ("kubernetes",), "05": ("kubernetes",), "06": ("kubernetes", "docker"),
    "07": ("kubernetes", "operator"), "08": ("prometheus",),
}


def _list(args: argparse.Namespace) -> int:
    print("\n".join(exercises.list_lines()))
    return 0


def _check(args: argparse.Namespace) -> int:
    from reconcile_lab.workshop import gather

    try:
        exercise = exercises.find(args.number)
    except KeyError:
        print(f"no exercise {args.number!r}; `reconcile-lab exercise list` shows them",
              file=sys.stderr)
        return 2
    state = gather.state(args.app, args.namespace,
                         kubeconfig=Path(args.kubeconfig) if args.kubeconfig else None,
                         prometheus=args.prometheus,
                         need=NEEDS.get(exercise.number, ("kubernetes", "docker")))
    verdict = exercise.check(state)
    print(verdict.format(exercise.number))
    return 0 if verdict.passed else 1


def register(sub: Any) -> None:
    top = sub.add_parser(
        "exercise", help="the workshop: list the exercises, check yours",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent("""
            The exercises live in examples/exercises/NN-topic/README.md. `check NN` looks at
            your cluster and your Docker engine and says PASS or FAIL, with a hint.

            examples:
              reconcile-lab exercise list
              reconcile-lab exercise check 01
              reconcile-lab exercise check 03 --namespace team-a
        """).strip())
    verbs = top.add_subparsers(dest="action", metavar="ACTION", required=True)
    verbs.add_parser("list", help="one line per exercise").set_defaults(func=_list)
    check = verbs.add_parser("check", help="PASS or FAIL for one exercise, with a hint "
                                           "(exit 0 on PASS, 1 on FAIL)")
    check.add_argument("number", metavar="NN", help="the exercise's number, e.g. 01")
    check.add_argument("--namespace", default="default", help="where your WebApp lives "
                       "(default: default)")
    check.add_argument("--app", default="hello", help="the app's name (default: hello)")
    check.add_argument("--kubeconfig", help="cluster to check (default: the kit's own cluster)")
    check.add_argument("--prometheus", default="http://127.0.0.1:9090",
                       help="Prometheus to ask in exercise 08 (default: http://127.0.0.1:9090)")
    check.set_defaults(func=_check)
