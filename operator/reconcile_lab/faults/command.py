"""``reconcile-lab fault``: run the fault proxy, and cut, stall or heal it.

Wiring only: the files it uses live in the state directory (``faults/``), the proxy's I/O is
``proxy``'s and every decision the switchboard's.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from reconcile_lab import paths
from reconcile_lab.cluster import providers
from reconcile_lab.faults import kubeconfigs, proxy, switchboard


def fault_dir() -> Path:
    return paths.state_dir() / "faults"


def control_path() -> Path:
    return fault_dir() / "control.sock"


def kubeconfig_path() -> Path:
    return fault_dir() / "kubeconfig"


def _say(message: str) -> None:
    print(f"reconcile-lab: {message}", file=sys.stderr, flush=True)


def cmd_proxy(args: argparse.Namespace) -> int:
    source = Path(args.kubeconfig) if args.kubeconfig else providers.kubeconfig()
    if not source.is_file():
        _say(f"error: no kubeconfig at {source}; fix: `reconcile-lab cluster up`, or pass "
             "--kubeconfig FILE")
        return 1
    try:
        config = yaml.safe_load(source.read_text())
        upstream = kubeconfigs.upstream(config, where=str(source))
    except kubeconfigs.KubeconfigError as e:
        _say(f"error: {e}")
        return 1
    out = kubeconfig_path()

    def ready(port: int) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(kubeconfigs.through(config, port=port, base=source.parent,
                                                  where=str(source)))
        partial = out.with_suffix(".partial")
        partial.write_text(text)
        partial.chmod(0o600)
        partial.replace(out)  # whoever waits for the file finds it whole
        _say(f"fault proxy on 127.0.0.1:{port} -> {upstream.host}:{upstream.port} (mode pass)")
        _say(f"kubeconfig through it: {out}")
        _say("switch it from another shell: reconcile-lab fault cut|stall|heal|status; "
             "Ctrl-C stops it")

    try:
        proxy.run(upstream, control=control_path(), port=args.port, ready=ready)
    finally:
        out.unlink(missing_ok=True)
    return 0


def cmd_switch(args: argparse.Namespace) -> int:
    try:
        status = proxy.send(control_path(), args.action)
    except proxy.ProxyError as e:
        _say(f"error: {e}")
        return 1
    print(switchboard.format_status(status))
    return 0


def register(sub: Any) -> None:
    fault = sub.add_parser(
        "fault", help="break the operator's own path to the apiserver: a proxy that cuts or stalls",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent(f"""
            A TCP proxy on 127.0.0.1 between a client (the operator) and the apiserver. It
            forwards the bytes untouched (TLS stays end to end) until you break it:

              cut     reset every open connection and every new one: the apiserver looks gone
                      (a partition). Clients see "connection reset" and retry.
              stall   the connections open now go silent, both ways, and stay open: a peer that
                      vanished without a word (a dropped NAT entry, a half-dead host). New
                      connections pass. A watch on a silent connection sees no event and no
                      error: only a client-side timeout notices. The operator's are in
                      docs/reliability.md.
              heal    back to forwarding; stalled connections forward what they held.
              status  the mode and how many connections are open, stalled, reset.

            The other clients of the cluster (your kubectl) are not behind it: the apiserver
            works on, only the operator's view of it breaks.

            example (three shells):
              reconcile-lab fault proxy          # prints the kubeconfig that goes through it
              reconcile-lab operator run --kubeconfig {kubeconfig_path()}
              reconcile-lab fault stall; kubectl delete deployment hello; kubectl scale \\
                  webapp/hello --replicas=3      # how long until the operator notices?
              reconcile-lab fault heal
        """).strip())
    fsub = fault.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = fsub.add_parser("proxy", help="run the proxy in the foreground (Ctrl-C stops it)",
                        description="Run the fault proxy, forwarding to the apiserver of "
                        "--kubeconfig, and write a copy of that kubeconfig pointing at the proxy "
                        f"to {kubeconfig_path()} (removed when it stops). Control socket: "
                        f"{control_path()}.")
    p.add_argument("--kubeconfig", help="the apiserver to stand in front of, and the "
                   "credentials the written kubeconfig keeps (default: the kit's cluster)")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: a free one)")
    p.set_defaults(func=cmd_proxy)
    for word, text in (("cut", "reset every connection, refuse new ones"),
                       ("stall", "open connections go silent (new ones pass)"),
                       ("heal", "forward again"), ("status", "print the mode and connections")):
        fsub.add_parser(word, help=text).set_defaults(func=cmd_switch)
