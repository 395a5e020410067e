"""``reconcile-lab exercise list|check|hint|solve|reset|status|readmes``: wiring only.

``catalog`` says what each exercise is, ``exercises`` decides PASS or FAIL, ``progress`` keeps
count, ``gather`` reads the engines and ``running`` runs commands.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from reconcile_lab import paths, ports
from reconcile_lab.workshop import catalog, exercises, headers, observed, progress

# What each check reads: skipping the rest keeps a check to a second or two.
NEEDS = {
    "01": ("kubernetes",), "02": ("kubernetes",), "03": ("kubernetes", "docker"),
    "04": ("kubernetes",), "05": ("kubernetes",), "06": ("kubernetes", "docker"),
    "07": ("kubernetes", "operator"), "08": ("prometheus",),
    "09": ("kubernetes", "policy", "docker"), "10": ("kubernetes", "operator"),
    "11": ("kubernetes", "operator", "faults"), "12": ("kubernetes", "traffic"),
    "13": ("kubernetes", "project"), "14": ("kubernetes", "nodes"),
    "15": ("kubernetes", "autoscaler", "docker"),
}
SETTLE = 180.0  # seconds `solve` keeps checking until the engines have caught up


def _say(message: str) -> None:
    print(f"reconcile-lab: {message}", file=sys.stderr, flush=True)


# --- progress, kept in the state directory --------------------------------------------------


def progress_file() -> Path:
    return paths.state_dir() / "exercises" / "progress.json"


def _load() -> dict[str, progress.Record]:
    path = progress_file()
    if not path.is_file():
        return {}
    try:
        return progress.from_json(json.loads(path.read_text()))
    except ValueError as e:
        _say(f"{path}: {e}; starting a new record (remove the file to silence this)")
        return {}


def _save(records: progress.Progress) -> None:
    path = progress_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(progress.to_json(records), indent=2) + "\n")
    tmp.replace(path)  # atomic: a Ctrl-C never leaves half a file


# --- the verbs --------------------------------------------------------------------------------


def _entry(number: str) -> catalog.Entry | None:
    try:
        return catalog.find(number)
    except KeyError:
        _say(f"no exercise {number!r}; `reconcile-lab exercise list` shows them (01-"
             f"{catalog.ENTRIES[-1].number})")
        return None


def _kubeconfig(args: argparse.Namespace) -> Path:
    if getattr(args, "kubeconfig", None):
        return Path(args.kubeconfig)
    from reconcile_lab.cluster import providers

    return providers.kubeconfig()


def _verdict(args: argparse.Namespace, number: str) -> observed.Verdict:
    from reconcile_lab.workshop import gather

    state = gather.state(args.app, args.namespace, kubeconfig=_kubeconfig(args),
                         prometheus=args.prometheus, need=NEEDS[number])
    return exercises.find(number).check(state)


def _list(args: argparse.Namespace) -> int:
    print(progress.format_list(_load()))
    return 0


def _check(args: argparse.Namespace) -> int:
    if (entry := _entry(args.number)) is None:
        return 2
    verdict = _verdict(args, entry.number)
    _save(progress.checked(_load(), entry.number, verdict.passed, time.time()))
    print(verdict.format(entry.number))
    return 0 if verdict.passed else 1


def _hint(args: argparse.Namespace) -> int:
    if (entry := _entry(args.number)) is None:
        return 2
    records, index = progress.next_hint(_load(), entry, time.time())
    _save(records)
    if index is None:
        print(f"no more hints for exercise {entry.number} (all {len(entry.hints)} shown):\n"
              + "\n".join(f"  {i}. {h}" for i, h in enumerate(entry.hints, 1))
              + f"\n`reconcile-lab exercise solve {entry.number}` does it for you")
        return 0
    print(f"hint {index + 1}/{len(entry.hints)} for exercise {entry.number}: "
          f"{entry.hints[index]}")
    return 0


def _preflight(entry: catalog.Entry, kubeconfig: Path, *, docker: bool) -> str:
    """What stops the commands from running at all, as a message with the fix; "" when nothing."""
    from reconcile_lab.cluster import dockerd, probing

    if not kubeconfig.is_file():
        return (f"exercise {entry.number}: no cluster (no kubeconfig at {kubeconfig}). fix: "
                "`make cluster` (or `reconcile-lab cluster up`), then run this again")
    try:
        probing.kubectl_binary()
    except probing.ClusterError as e:
        return f"exercise {entry.number}: {e}"
    if not probing.apiserver_ready_with(kubeconfig):
        return (f"exercise {entry.number}: the cluster of {kubeconfig} does not answer. fix: "
                "`make cluster` (or `reconcile-lab cluster up`), then run this again")
    if docker and not dockerd.answers():
        return (f"exercise {entry.number} uses the Docker twin and no Docker engine answers. "
                "fix: `reconcile-lab engine up` (or start Docker), then run this again")
    return ""


def _run(args: argparse.Namespace, entry: catalog.Entry, what: str) -> int:
    from reconcile_lab.workshop import running

    kubeconfig = _kubeconfig(args)
    work = paths.state_dir() / "exercises" / entry.number
    copies = str(work / "files") if args.namespace != "default" else ""
    commands = (catalog.solution if what == "solve" else catalog.reset)(
        entry, args.namespace, copies)
    twin = any("docker" in c for c in commands)
    if why := _preflight(entry, kubeconfig, docker=twin):
        _say(why)
        return 3
    if copies:
        running.copy_files(entry.solution + tuple(catalog.reset(entry)), args.namespace,
                           Path(copies))
    if what == "reset" and (stopped := running.stop_background(work)):
        _say(f"stopped what `solve {entry.number}` left running: pid "
             + ", ".join(map(str, stopped)))
    _save(progress.touched(_load(), entry.number, time.time()))
    failed = running.run(commands, kubeconfig=kubeconfig, background_dir=work)
    if failed is not None:
        _say(f"exercise {entry.number}: `{failed.command}` failed (exit {failed.returncode}); "
             f"its output is above. fix what it says, then `reconcile-lab exercise reset "
             f"{entry.number}` and try again")
        return 1
    return _settle(args, entry) if what == "solve" else _show_start(args, entry)


def _settle(args: argparse.Namespace, entry: catalog.Entry) -> int:
    """Check until PASS (the engines converge after the last command), recording the result."""
    deadline = time.monotonic() + args.timeout
    while True:
        verdict = _verdict(args, entry.number)
        if verdict.passed or time.monotonic() > deadline:
            break
        time.sleep(2)
    _save(progress.checked(_load(), entry.number, verdict.passed, time.time(), by_solve=True))
    print(verdict.format(entry.number))
    return 0 if verdict.passed else 1


def _show_start(args: argparse.Namespace, entry: catalog.Entry) -> int:
    verdict = _verdict(args, entry.number)  # not recorded: nobody attempted anything yet
    print(f"exercise {entry.number} starts from: {entry.start.describe()}\n"
          f"the check says now (to be expected): {verdict.format(entry.number)}")
    return 0


def _solve(args: argparse.Namespace) -> int:
    return 2 if (entry := _entry(args.number)) is None else _run(args, entry, "solve")


def _reset(args: argparse.Namespace) -> int:
    return 2 if (entry := _entry(args.number)) is None else _run(args, entry, "reset")


def _status(args: argparse.Namespace) -> int:
    print(progress.format_status(_load(), time.time()))
    print(f"(kept in {progress_file()})")
    return 0


def readme_path(entry: catalog.Entry) -> Path:
    return Path(__file__).resolve().parents[3] / entry.directory / "README.md"


def guide_path() -> Path:
    return Path(__file__).resolve().parents[3] / "docs" / "workshop-guide.md"


def _readmes(args: argparse.Namespace) -> int:
    from reconcile_lab.workshop import session

    stale = []
    generated = [(readme_path(e), lambda text, e=e: headers.with_header(text, e))
                 for e in catalog.ENTRIES] + [(guide_path(), session.with_plan)]
    for path, regenerate in generated:
        text = path.read_text()
        if (new := regenerate(text)) != text:
            stale.append(str(path))
            if not args.check:
                path.write_text(new)
    verb = "stale" if args.check else "rewrote"
    for name in stale:
        _say(f"{verb} {name}")
    return 1 if stale and args.check else 0


# --- the parser -------------------------------------------------------------------------------

HELP = """
    The exercises live in examples/exercises/NN-topic/README.md; each starts from a known
    state and has a check that looks at your cluster and your Docker engine.

    A round, the way a participant goes through one:
      reconcile-lab exercise list            what there is, how long, what you have done
      reconcile-lab exercise check 03        PASS or FAIL, with what to do next
      reconcile-lab exercise hint 03         one more hint each time (a nudge first)
      reconcile-lab exercise solve 03        runs the solution, printing each command
      reconcile-lab exercise reset 03        back to where 03 starts (only the app hello)
      reconcile-lab exercise status          done, attempted, hints used, time spent

    Progress is kept in the kit's state directory ({state}).
"""


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _dns_label(value: str) -> str:
    """A namespace or app name as Kubernetes allows it: it also goes into the shell commands
    that `solve` and `reset` run, so nothing else may."""
    if not _DNS_LABEL.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a Kubernetes name: lowercase letters, digits and '-', at most "
            "63, starting and ending with a letter or digit")
    return value


def _where(p: argparse.ArgumentParser, *, app: bool) -> None:
    p.add_argument("--namespace", default="default", type=_dns_label,
                   help="where your WebApp lives (default: default)")
    if app:
        p.add_argument("--app", default=catalog.APP, type=_dns_label,
                       help=f"the app's name (default: {catalog.APP})")
    p.add_argument("--kubeconfig", help="cluster to use (default: the kit's own cluster)")
    p.add_argument("--prometheus", default=ports.url(ports.PROMETHEUS),
                   help="Prometheus to ask in exercise 08 (default: http://127.0.0.1:PORT, "
                   f"PORT {ports.PROMETHEUS.help()})")


def register(sub: Any) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    top = sub.add_parser("exercise", help="the workshop: list, check, hint, solve, reset, status",
                         formatter_class=raw, description=textwrap.dedent(HELP).strip()
                         .format(state=paths.state_dir() / "exercises"))
    verbs = top.add_subparsers(dest="action", metavar="ACTION", required=True)
    verbs.add_parser("list", help="a table: number, title, difficulty, minutes, your status"
                     ).set_defaults(func=_list)
    check = verbs.add_parser("check", help="PASS or FAIL for one exercise, with a hint "
                             "(exit 0 on PASS, 1 on FAIL); the result is recorded")
    hint = verbs.add_parser(
        "hint", help="show the next hint of an exercise", formatter_class=raw,
        description="Each call shows one more hint, from a nudge to nearly the answer; after "
        "the last it says so and lists them all. `exercise status` counts the hints used.")
    solve = verbs.add_parser(
        "solve", help="do the exercise: run its solution, printing each command as `$ …`",
        formatter_class=raw, description=textwrap.dedent("""
            Runs the exercise's solution the way you would type it, with the kit's kubectl on
            the kit's cluster and `reconcile-lab docker …` for the twin, then checks until the
            check passes. Start from a known state with `reset NN` first.

            examples:
              reconcile-lab exercise reset 03 && reconcile-lab exercise solve 03
              reconcile-lab exercise solve 05 --namespace team-a
        """).strip())
    reset = verbs.add_parser(
        "reset", help="put both engines back to where the exercise starts",
        formatter_class=raw, description=textwrap.dedent("""
            Removes the exercise's app (the WebApp hello and what it owns, the twin's
            containers of hello) in one namespace and makes it again as the exercise expects
            it, so nothing from an earlier attempt counts. Touches no other app or namespace.
            Starts the operator when the exercise needs it running.
        """).strip())
    for p in (check, hint, solve, reset):
        p.add_argument("number", metavar="NN", help="the exercise's number, e.g. 03")
    _where(check, app=True)
    for p in (solve, reset):
        _where(p, app=False)
        p.set_defaults(app=catalog.APP)
    solve.add_argument("--timeout", type=float, default=SETTLE, metavar="S",
                       help=f"how long to keep checking after the last command (default {SETTLE:g})")
    check.set_defaults(func=_check)
    hint.set_defaults(func=_hint)
    solve.set_defaults(func=_solve)
    reset.set_defaults(func=_reset)
    verbs.add_parser("status", help="your progress: done, attempted, hints used, time spent"
                     ).set_defaults(func=_status)
    readmes = verbs.add_parser(
        "readmes", help="write each README's header block from the catalogue",
        description="Each examples/exercises/NN-*/README.md has a block generated from "
        "operator/reconcile_lab/workshop/catalog.py; this rewrites the blocks (--check: only "
        "say which are stale, exit 1 if any).")
    readmes.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    readmes.set_defaults(func=_readmes)
