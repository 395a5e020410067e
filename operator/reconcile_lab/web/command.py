"""``reconcile-lab web``: wiring only. ``serving`` serves, ``model`` and ``replay`` decide what
the page shows, ``browser`` installs what the browser test drives."""

from __future__ import annotations

import argparse
import functools
import ipaddress
import json
import signal
import socket
import sys
import textwrap
from pathlib import Path
from typing import Any

from reconcile_lab import paths
from reconcile_lab.workshop import buttons, catalog

PORT = 8090  # beside the kit's other ports (8000/8001 metrics, 8080 health, 9090 Prometheus)
REPO = Path(__file__).resolve().parents[3]


def _say(message: str) -> None:
    print(f"reconcile-lab: {message}", file=sys.stderr, flush=True)


def loopback_only(value: str) -> str:
    """127.0.0.1 and nothing else: the page runs commands on your cluster and has no login."""
    if value in ("127.0.0.1", "localhost"):
        return "127.0.0.1"
    try:
        what = "another loopback address" if ipaddress.ip_address(value).is_loopback \
            else "an address other machines can reach"
    except ValueError:
        what = "not an IP address"
    raise argparse.ArgumentTypeError(
        f"{value!r} is {what}: `reconcile-lab web` serves on 127.0.0.1 only, because its "
        "buttons run commands on your cluster and Docker engine and it has no login. To see it "
        "from another machine, forward the port there: ssh -L 8090:127.0.0.1:8090 THIS-HOST")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _current(args: argparse.Namespace) -> str:
    if args.exercise:
        try:
            return catalog.find(args.exercise).number
        except KeyError:
            raise SystemExit(f"reconcile-lab: no exercise {args.exercise!r}; "
                             "`reconcile-lab exercise list` shows them") from None
    from reconcile_lab.web import model
    from reconcile_lab.workshop import command as workshop
    from reconcile_lab.workshop import progress

    path = workshop.progress_file()  # the participant's progress: started last, not done
    try:
        records = progress.from_json(json.loads(path.read_text())) if path.is_file() else {}
    except ValueError:
        records = {}  # `exercise status` says what is wrong with the file
    return model.current_exercise({n: (r.started, r.done) for n, r in records.items()})


def _serve(app: Any, port: int, what: str) -> int:
    from aiohttp import web

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    _say(f"{what} on http://127.0.0.1:{sock.getsockname()[1]}/ (Ctrl-C to stop)")
    # Started as a background job (`make web &`) SIGINT arrives ignored; a Ctrl-C sent to the
    # job must still stop it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Open tabs hold an event stream each: Ctrl-C closes them instead of waiting for them.
    web.run_app(app, sock=sock, print=None, handle_signals=True, shutdown_timeout=1.0)
    _say("web: stopped")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from reconcile_lab.web import replay, serving

    path = Path(args.replay)
    try:
        data = replay.check(json.loads(path.read_text()), str(path))
    except OSError as e:
        _say(f"cannot read {path}: {e.strerror}. fix: `make compare QUICK=1` writes "
             "out/compare/results.json")
        return 1
    except (ValueError, replay.ReplayError) as e:
        _say(f"{path}: {e}" if not isinstance(e, replay.ReplayError) else str(e))
        return 1
    return _serve(serving.replay_app(dict(data)), args.port, f"replay of {path}")


def _web(args: argparse.Namespace) -> int:
    if args.port and not _port_free(args.port):
        _say(f"port {args.port} on 127.0.0.1 is taken (another `reconcile-lab web`?). fix: "
             f"--port N with a free one, or --port 0 for any free port")
        return 1
    if args.replay:
        return _replay(args)
    from reconcile_lab.compare import live
    from reconcile_lab.web import serving
    from reconcile_lab.workshop import running

    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else None
    files = args.filename or [str(REPO / catalog.WEBAPP)]
    reader = live.Reader(files, kubeconfig, args.namespace, instances=True)
    if reader.kube_error:
        _say(reader.kube_error + " — the page shows the Docker side meanwhile")
    if kubeconfig is None:
        from reconcile_lab.cluster import providers

        kubeconfig = providers.kubeconfig()
    try:
        env = running.environment(kubeconfig)
    except Exception as e:  # no kubectl yet: the buttons say so when pressed
        _say(f"the fault buttons cannot run kubectl yet: {e}")
        env = {}
    runner = functools.partial(serving.shell, env=env, cwd=REPO) if env else _no_shell
    namespace = args.namespace or "default"
    copies = ""
    if namespace != "default":  # the buttons' example files, with metadata.namespace set
        copies = str(paths.state_dir() / "web" / namespace)
        running.copy_files([f.command for e in buttons.FAULTS.values() for f in e], namespace,
                           Path(copies))
    state = serving.Live(reader, number=_current(args), namespace=namespace, runner=runner,
                         interval=args.interval, copies=copies)
    return _serve(serving.live_app(state), args.port,
                  f"live view (exercise {state.number}, namespace {state.namespace})")


async def _no_shell(command: str) -> tuple[int, str]:
    return 127, ("no kubectl: the kit builds one with `reconcile-lab cluster up`; "
                 "restart `reconcile-lab web` after that")


def _browser(args: argparse.Namespace) -> int:
    from reconcile_lab.web import browser

    found = browser.ensure(progress=_say)
    print(json.dumps({"chromium": str(found.chromium), "node_modules": str(found.modules)}))
    return 0


HELP = """
    A live page in your browser: both engines side by side, per WebApp, with every pod and
    container (state, restarts, age), the recent events of both on one time axis, and the
    current exercise's faults as buttons. Each button shows the command it runs, the one the
    exercise's README gives, and runs it as your shell would (the kit's kubectl, the kit's
    cluster); its output appears under the buttons. Updates arrive by Server-Sent Events from
    the readers `reconcile-lab watch` uses, about every --interval seconds.

    The page serves on 127.0.0.1 only, without a login: anyone who can reach it can press the
    buttons. The exercise shown is --exercise, else the one you started last (`exercise
    status`); the page can switch to another.

    With --replay FILE it plays back a `reconcile-lab compare` run instead (its results.json):
    each scenario's desired, actual and ready per engine, frame by frame, with the faults and
    the commands typed marked on the time axis.

    examples:
      reconcile-lab web                                   # http://127.0.0.1:{port}/
      reconcile-lab web --exercise 03 --namespace team-a
      reconcile-lab web --replay out/compare/results.json --port 8091
      reconcile-lab web browser install   # Chromium (Debian) and playwright-core, for the test
"""


def register(sub: Any) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("web", help="a live page of both engines in a browser; replays a compare run",
                       formatter_class=raw,
                       description=textwrap.dedent(HELP).strip().format(port=PORT))
    p.add_argument("--port", type=int, default=PORT,
                   help=f"port on 127.0.0.1 (default {PORT}; 0: any free one, printed)")
    p.add_argument("--address", type=loopback_only, default="127.0.0.1",
                   help="only 127.0.0.1 is accepted (the page has no login)")
    p.add_argument("--replay", metavar="RESULTS_JSON",
                   help="play back a compare run (out/compare/results.json) instead")
    p.add_argument("--exercise", metavar="NN", help="whose faults are the buttons (default: "
                   "the exercise you started last)")
    p.add_argument("--namespace", default=None, help="only this namespace; the buttons act "
                   "there (default: every namespace shown, buttons in default)")
    p.add_argument("-f", "--filename", action="append", default=[], metavar="FILE",
                   help="WebApp file(s) that say what the Docker twin wants (default: "
                   f"{catalog.WEBAPP})")
    p.add_argument("--kubeconfig", help="cluster to show (default: the kit's own cluster)")
    p.add_argument("--interval", type=float, default=1.0, metavar="S",
                   help="seconds between readings (default 1)")
    p.set_defaults(func=_web)
    actions = p.add_subparsers(dest="verb", metavar="ACTION")
    b = actions.add_parser(
        "browser", help="install what the browser test uses",
        description=f"install: Debian's chromium and chromium-driver (apt-get, once; recorded "
        f"so that `make down REMOVE_PACKAGES=1` takes away only what the kit installed) and "
        f"playwright-core from npm, pinned by a lockfile, into {paths.cache_dir() / 'web'}.")
    b.add_argument("what", choices=("install",))
    b.set_defaults(func=_browser)
