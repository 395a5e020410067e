"""``reconcile-lab fault``: run the fault proxy, and cut, stall or heal it; in front of the
apiserver (for the operator) or, with ``--docker``, of the Docker engine (for the twin's loop).

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
from reconcile_lab.cluster import dockerd, providers
from reconcile_lab.faults import kubeconfigs, proxy, switchboard


def fault_dir() -> Path:
    return paths.state_dir() / "faults"


def control_path(*, docker: bool = False) -> Path:
    return fault_dir() / ("docker-control.sock" if docker else "control.sock")


def kubeconfig_path() -> Path:
    return fault_dir() / "kubeconfig"


def docker_socket_path() -> Path:
    """Where the Docker proxy listens: a unix socket, as the engine does (mode 0600)."""
    return fault_dir() / "docker.sock"


def docker_host_path() -> Path:
    """Where the Docker proxy writes its DOCKER_HOST (``unix://…``) once it listens."""
    return fault_dir() / "docker-host"


def _write_whole(out: Path, text: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    partial.write_text(text)
    partial.chmod(0o600)
    partial.replace(out)  # whoever waits for the file finds it whole


def _say(message: str) -> None:
    print(f"reconcile-lab: {message}", file=sys.stderr, flush=True)


def cmd_proxy(args: argparse.Namespace) -> int:
    return _docker_proxy(args) if args.docker else _kube_proxy(args)


def _kube_proxy(args: argparse.Namespace) -> int:
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

    def ready(port: proxy.Listen) -> None:
        assert isinstance(port, int)
        _write_whole(out, yaml.safe_dump(kubeconfigs.through(config, port=port, base=source.parent,
                                                             where=str(source))))
        _say(f"fault proxy on 127.0.0.1:{port} -> {upstream.host}:{upstream.port} (mode pass)")
        _say(f"kubeconfig through it: {out}")
        _say("switch it from another shell: reconcile-lab fault cut|stall|heal|status; "
             "Ctrl-C stops it")

    try:
        proxy.run(upstream, control=control_path(), listen=args.port, ready=ready)
    finally:
        out.unlink(missing_ok=True)
    return 0


def _docker_proxy(args: argparse.Namespace) -> int:
    engine = dockerd.SOCKET
    if not engine.is_socket():
        _say(f"error: no Docker engine socket at {engine}; fix: `reconcile-lab engine up`, or "
             "point DOCKER_HOST at the engine's unix socket")
        return 1
    out = docker_host_path()

    def ready(where: proxy.Listen) -> None:
        _write_whole(out, f"unix://{where}\n")
        _say(f"fault proxy on {where} -> {engine} (mode pass)")
        _say(f"point a client at it: export DOCKER_HOST=unix://{where}")
        _say("switch it from another shell: reconcile-lab fault cut|stall|heal|status --docker; "
             "Ctrl-C stops it")

    try:
        proxy.run(engine, control=control_path(docker=True), listen=docker_socket_path(),
                  ready=ready)
    finally:
        out.unlink(missing_ok=True)
    return 0


def cmd_switch(args: argparse.Namespace) -> int:
    try:
        status = proxy.send(control_path(docker=args.docker), args.action)
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

            With --docker the same proxy stands in front of the Docker engine's unix socket
            instead, for the twin's `docker apply --watch` loop (DOCKER_HOST=unix://… it prints):
            the engine runs on, only the loop's view of it breaks. Give --docker to the switch
            too: `reconcile-lab fault cut --docker`.

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
    _docker_flag(p, f"stand in front of the Docker engine ({dockerd.SOCKET}) instead, listening "
                    f"on {docker_socket_path()} (mode 0600), and write the DOCKER_HOST that goes "
                    f"through it to {docker_host_path()}")
    p.set_defaults(func=cmd_proxy)
    for word, text in (("cut", "reset every connection, refuse new ones"),
                       ("stall", "open connections go silent (new ones pass)"),
                       ("heal", "forward again"), ("status", "print the mode and connections")):
        switch = fsub.add_parser(word, help=text)
        _docker_flag(switch, "switch the proxy in front of the Docker engine")
        switch.set_defaults(func=cmd_switch)


def _docker_flag(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--docker", action="store_true", help=text)
