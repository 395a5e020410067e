"""``reconcile-lab``: the command line. It wires; the modules it calls decide."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reconcile_lab import __version__, paths, ports, schema
from reconcile_lab.cluster import building, dockerd, images, operatorimage, probing, providers

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
REPO = Path(__file__).resolve().parents[2]


def _say(message: str) -> None:
    print(f"reconcile-lab: {message}", file=sys.stderr, flush=True)


def _help(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


# --- cluster ------------------------------------------------------------------------------


def cmd_cluster_up(args: argparse.Namespace) -> int:
    name = providers.resolve(args.provider)
    _say(f"provider: {name}" + (" (auto)" if args.provider == "auto" else ""))
    module = providers.module(name)
    if name == "kwok":
        kubeconfig = module.up(progress=_say, apiserver_port=args.apiserver_port,
                               nodes=args.nodes)
    else:
        kubeconfig = module.up(progress=_say)
    providers.remember(name)
    _say(f'ready. Point kubectl at it with:  eval "$(reconcile-lab cluster env)"  '
         f"(kubeconfig: {kubeconfig})")
    return EXIT_OK


def cmd_cluster_down(args: argparse.Namespace) -> int:
    names = [providers.resolve(args.provider)] if args.provider != "auto" else ["kwok", "kind"]
    for name in names:
        module = providers.module(name)
        if name == "kind" and module.binary() is None:
            continue
        module.down(progress=_say)
    if args.remove_packages:
        from reconcile_lab import debian

        removed = debian.remove(progress=_say)
        _say("removed " + (", ".join(removed) if removed else
                           "no package (the kit installed none on this machine)"))
    return EXIT_OK


def format_status(status: dict[str, object]) -> str:
    width = max(len(k) for k in status)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in status.items())


def cmd_cluster_status(args: argparse.Namespace) -> int:
    name = providers.current() if args.provider == "auto" else args.provider
    status = providers.module(name).status()
    status["docker engine"] = "answers" if dockerd.answers() else "not running"
    try:
        status["kubectl"] = probing.kubectl_binary()
    except probing.ClusterError:
        status["kubectl"] = "not available yet (cluster up builds one)"
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return EXIT_OK if status.get("running") else EXIT_FAIL


def format_env(kubeconfig: Path, kubectl: str | None) -> str:
    """Shell for `eval`: every path quoted, so spaces or a `$` in the state dir stay literal."""
    lines = [f"export KUBECONFIG={shlex.quote(str(kubeconfig))}"]
    if kubectl:
        lines.append(f'export PATH={shlex.quote(str(Path(kubectl).parent))}:"$PATH"')
    return "\n".join(lines)


def cmd_cluster_env(args: argparse.Namespace) -> int:
    name = providers.current() if args.provider == "auto" else args.provider
    try:
        kubectl: str | None = probing.kubectl_binary()
    except probing.ClusterError:
        kubectl = None
    print(format_env(providers.kubeconfig(name), kubectl))
    return EXIT_OK


def kubectl_arguments(given: Sequence[str]) -> list[str]:
    """What kubectl gets: the ``--`` that ends this command's options is ours, not kubectl's
    (passed on, kubectl prints its help and exits 0, and `make install` did nothing)."""
    return list(given[1:] if given[:1] == ["--"] else given)


def cmd_cluster_kubectl(args: argparse.Namespace) -> int:
    """Run the kit's kubectl against the kit's cluster (never the user's current context)."""
    argv = [*probing.kubectl_args(providers.kubeconfig()), *kubectl_arguments(args.kubectl_args)]
    # Replaces this process: exit status and output are kubectl's own.
    os.execve(argv[0], argv, probing.kubectl_env())


def cmd_build(args: argparse.Namespace) -> int:
    building.build_all(progress=_say)
    return EXIT_OK


# --- images and engine ----------------------------------------------------------------------


def cmd_engine_up(args: argparse.Namespace) -> int:
    dockerd.ensure(progress=_say)
    _say(f"Docker engine answers on {dockerd.SOCKET}")
    return EXIT_OK


def cmd_image_build(args: argparse.Namespace) -> int:
    dockerd.ensure(progress=_say)
    if args.operator:
        from reconcile_lab.declarative import permissions

        operatorimage.build(args.tag or permissions.IMAGE, progress=_say, force=args.force)
    else:
        images.build(progress=_say, force=args.force)
    return EXIT_OK


def cmd_image_load(args: argparse.Namespace) -> int:
    dockerd.ensure(progress=_say)
    providers.load_images(args.images, progress=_say)
    return EXIT_OK


# --- demo -----------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from reconcile_lab import demoing

    return demoing.run(provider=args.provider, say=lambda m: print(m, flush=True))


# --- manifests ------------------------------------------------------------------------------


def generated() -> dict[str, str]:
    """Every generated file: relative path → content."""
    from reconcile_lab.declarative import permissions, policy

    source = "declarative/permissions.py"
    return {
        schema.CRD_FILE: schema.crd_yaml(),
        "deploy/rbac.yaml": schema.documents_yaml(permissions.rbac(), source),
        "deploy/rbac-namespaced.yaml": schema.documents_yaml(permissions.namespaced_rbac(),
                                                             source),
        "deploy/operator.yaml": schema.documents_yaml(permissions.operator(), source),
        "deploy/peering.yaml": schema.documents_yaml(permissions.peering(), source),
        "deploy/policy.yaml": schema.documents_yaml(policy.policies(), "declarative/policy.py"),
    }


def cmd_manifests(args: argparse.Namespace) -> int:
    stale = []
    for relative, text in generated().items():
        target = REPO / relative
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(relative)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        _say(f"wrote {relative}")
    if stale:
        _say(f"stale: {', '.join(stale)}: run `make manifests` and commit the result")
        return EXIT_FAIL
    if args.check:
        _say("generated manifests are up to date")
    return EXIT_OK


# --- the parser -----------------------------------------------------------------------------



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconcile-lab",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_help("""
            One WebApp file, two engines that make it true:
              - a kopf operator keeps a Deployment and a Service equal to it, forever;
              - a Docker twin makes it true once, step by step, the way a person would.
            Run the same faults against both and watch what each does.
        """),
        epilog=_help(f"""
            first steps:
              reconcile-lab cluster up            # a local control plane (kwok) or kind
              eval "$(reconcile-lab cluster env)" # kubectl now talks to it
              reconcile-lab cluster status

            files live outside the repository:
              cache  {paths.cache_dir()}   (RECONCILE_LAB_CACHE)
              state  {paths.state_dir()}   (RECONCILE_LAB_STATE)
        """),
    )
    parser.add_argument("--version", action="version", version=f"reconcile-lab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    cluster = sub.add_parser(
        "cluster", help="start, stop and describe the local Kubernetes cluster",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_help("""
            The local cluster the kit runs on.

            kwok (the embedded default): a real etcd, kube-apiserver, kube-controller-manager and
            kube-scheduler, built from source on first use (the longest step; then cached),
            and one real node (kubelet, kube-proxy, containerd, runc, CNI) where pods really run,
            answer on 127.0.0.1 through NodePorts, crash and restart. Beside it kwok simulates
            nodes for scale work (tainted: pods opt in); there Deployments, ReplicaSets, garbage
            collection and RBAC are real and containers are not. --nodes kwok: simulated only.

            kind (participants' laptops): real nodes in Docker containers, real traffic.
            auto picks kind when kind and a Docker engine are there, kwok otherwise.

            Your ~/.kube/config is never touched: use `eval "$(reconcile-lab cluster env)"`.
        """))
    csub = cluster.add_subparsers(dest="action", metavar="ACTION", required=True)

    def provider_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--provider", choices=providers.CHOICES, default="auto",
                       help="which cluster (default: auto)")

    up = csub.add_parser("up", help="build what is missing and start the cluster (idempotent)")
    provider_arg(up)
    up.add_argument("--apiserver-port", type=int, default=None,
                    help="fixed kube-apiserver port on 127.0.0.1 (kwok; default: a free one)")
    up.add_argument("--nodes", choices=("real", "kwok", "both"), default="both",
                    help="kwok: real (one kubelet on this host), kwok (simulated only) or both "
                    "(default: the real node takes ordinary pods, simulated ones take pods "
                    "that opt in)")
    up.set_defaults(func=cmd_cluster_up)
    down = csub.add_parser("down", help="stop the cluster and remove its processes and data")
    provider_arg(down)
    down.add_argument("--remove-packages", action="store_true",
                      help="also purge the Debian packages the kit installed (Prometheus, "
                      "Chromium: only those it added, as recorded in "
                      "/var/lib/reconcile-lab/installed-packages.json)")
    down.set_defaults(func=cmd_cluster_down)
    st = csub.add_parser("status", help="what runs where (exit 1 when the cluster is not running)")
    provider_arg(st)
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=cmd_cluster_status)
    env = csub.add_parser("env", help='print exports for: eval "$(reconcile-lab cluster env)"')
    provider_arg(env)
    env.set_defaults(func=cmd_cluster_env)
    kc = csub.add_parser("kubectl", help="run the kit's kubectl against the kit's cluster",
                         description="Example: reconcile-lab cluster kubectl -- get webapps -A")
    kc.add_argument("kubectl_args", nargs=argparse.REMAINDER, help="arguments for kubectl")
    kc.set_defaults(func=cmd_cluster_kubectl)
    build = csub.add_parser("build", help="only build the control-plane binaries into the cache")
    build.set_defaults(func=cmd_build)

    demo = sub.add_parser("demo", help="bring everything up and show both engines side by side",
                          description="Docker engine, demo image, cluster, CRD, operator; then "
                          "one WebApp made true by both engines, and one fault on each side.")
    provider_arg(demo)
    demo.set_defaults(func=cmd_demo)

    engine = sub.add_parser("engine", help="make sure a Docker engine answers (install/start it)")
    engine.add_argument("action", choices=["up"])
    engine.set_defaults(func=cmd_engine_up)

    image = sub.add_parser(
        "image", help="build the demo and operator images offline; load them into the nodes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_help(f"""
            Images without a registry: nothing is ever pulled.

            build             the demo image {images.image("v1")} and :v2, FROM scratch with
                              Debian's static busybox
            build --operator  the operator's image (make docker-build): a minimal Debian of this
                              host's release with python3, made by mmdebstrap from the host's apt
                              sources (mmdebstrap is apt-get installed once) and `docker import`ed;
                              the operator's dependencies downloaded by pip on the host and
                              installed with --no-index; then `docker build --network none -f
                              deploy/Dockerfile`. Each step is skipped when its inputs did not
                              change (a label on the image, a key in the cache).
            load IMAGE...     copy images from the Docker engine into the cluster's nodes: the
                              real node's containerd (kwok), or `kind load docker-image`

            examples:
              reconcile-lab image build --operator --tag reconcile-lab/operator:dev
              reconcile-lab image load reconcile-lab/operator:dev   # make deploy does this
        """))
    isub = image.add_subparsers(dest="action", metavar="ACTION", required=True)
    ib = isub.add_parser("build", help="build the demo image (or, with --operator, the operator's)")
    ib.add_argument("--operator", action="store_true",
                    help="the operator's image instead of the demo image")
    ib.add_argument("--tag", default=None, help="the operator image's name (default: "
                    "deploy/operator.yaml's, reconcile-lab/operator:dev)")
    ib.add_argument("--force", action="store_true", help="rebuild even when present")
    ib.set_defaults(func=cmd_image_build)
    il = isub.add_parser("load", help="copy images from the Docker engine into the cluster's nodes")
    il.add_argument("images", nargs="+", metavar="IMAGE")
    il.set_defaults(func=cmd_image_load)

    manifests = sub.add_parser("manifests",
                               help="generate crds/ and deploy/ (RBAC, operator) from the code")
    manifests.add_argument("--check", action="store_true",
                           help="exit 1 when a committed file differs from what the code says")
    manifests.set_defaults(func=cmd_manifests)

    for register in _registrars():
        register(sub)
    return parser


def _registrars() -> list[Callable[[Any], None]]:
    """Subcommands that live next to the code they wire."""
    from reconcile_lab.compare import command as compare_command
    from reconcile_lab.declarative import command as operator_command
    from reconcile_lab.faults import command as fault_command
    from reconcile_lab.imperative import command as docker_command
    from reconcile_lab.observe import command as observe_command
    from reconcile_lab.syncing import command as sync_command
    from reconcile_lab.web import command as web_command
    from reconcile_lab.workshop import command as workshop_command

    return [operator_command.register, docker_command.register, observe_command.register,
            compare_command.register, workshop_command.register, web_command.register,
            fault_command.register, sync_command.register]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()  # the defaults of some flags come from the environment
    except ports.BadPort as e:
        _say(f"error: {e}")
        return EXIT_USAGE
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except (probing.ClusterError, building.BuildError, ports.BadPort) as e:
        _say(f"error: {e}")
        return EXIT_FAIL
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
