"""The Kubernetes side of a comparison run: the cluster and its real node, the operator.

``KubeSide.up`` makes what the operator's engine needs: the cluster to measure on (the one
``--kubeconfig`` names, or one of its own with a real node), the CRD, the run's namespace, a
ServiceAccount serving that namespace only (as in production), a fault proxy on its path to
the apiserver (the scenario *cut-off* cuts it), and the operator, checked end to end with a
first, unmeasured app whose pods must run on the real node. ``down`` removes the namespace, or
the whole cluster when it was its own. An I/O adapter.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from reconcile_lab import schema
from reconcile_lab.cluster import kwok, nodeconfig, nodeinfo, probing, realnode
from reconcile_lab.compare import driving, kubedriver, probes, processes, scenarios
from reconcile_lab.compare.scenarios import Target
from reconcile_lab.declarative import permissions
from reconcile_lab.faults import kubeconfigs


class KubeSide:
    def __init__(self, ctx: driving.Context, *, given: Path | None, keep: bool) -> None:
        self.ctx = ctx
        self.given = given  # a cluster of the user's: only our namespace is ours
        self.keep = keep
        self.was_running = False

    def up(self) -> None:
        ctx = self.ctx
        ctx.kubeconfig = self._cluster()
        probes.kube_connect(ctx.kubeconfig)
        self._kubectl("apply", "--server-side", "--field-manager=reconcile-lab", "-f", "-",
                      input=schema.crd_yaml())
        self._kubectl("wait", "--for", "condition=established", "--timeout=60s",
                      f"crd/{schema.CRD_NAME}")
        self._kubectl("create", "namespace", ctx.namespace)
        ctx.kube_path = processes.FaultProxy(docker=False, kubeconfig=self._account(),
                                             log=ctx.log_file("kube-path"), env=ctx.env)
        ctx.operator = processes.OperatorProcess(
            kubeconfig=Path(ctx.kube_path.start()), namespace=ctx.namespace,
            log=ctx.log_file("operator"), env=ctx.env)
        ctx.operator.start()
        ctx.operator.wait_healthy()
        # A first app end to end, unmeasured: a fresh apiserver answers "storage is
        # initializing" for a while, and kopf backs off; no scenario should measure that.
        warm_up = kubedriver.OperatorDriver(ctx, f"c{ctx.run}-warm-up")
        warm_up.prepare(Target(1, scenarios.V1))
        nodes = {str((p.get("spec") or {}).get("nodeName")) for p in warm_up.pods()}
        warm_up.cleanup()
        if nodes != {nodeconfig.NODE_NAME}:
            raise probing.ClusterError(
                f"the operator's pods ran on {', '.join(sorted(nodes))}, not on the real node "
                f"{nodeconfig.NODE_NAME!r}: the comparison measures real containers.\n"
                f"  fix: a namespace without the simulated opt-in, on a cluster whose real "
                f"node is Ready (reconcile-lab cluster status)")
        ctx.say(f"operator running against namespace {ctx.namespace}, its pods on the real "
                f"node {nodeconfig.NODE_NAME!r} (log: {ctx.log_file('operator')})")

    def down(self) -> None:
        """After the operator and its proxy have stopped."""
        ctx = self.ctx
        if ctx.kubeconfig is None:
            return
        if self.keep or self.was_running:
            subprocess.run([*probing.kubectl_args(ctx.kubeconfig), "delete", "namespace",
                            ctx.namespace, "--wait=false"], capture_output=True,
                           env=probing.kubectl_env(), timeout=60, check=False)
        else:
            kwok.down(progress=ctx.say)

    def _cluster(self) -> Path:
        """The cluster to measure on, with its real node: the one given, or one of its own."""
        if self.given is not None:
            self.was_running = True  # the user's: it stays, only our namespace goes
            kubeconfig = self.given
        else:
            if others := realnode.other_nodes():
                raise probing.ClusterError(
                    f"a real node of another cluster runs on this host (PIDs "
                    f"{', '.join(map(str, sorted(others)[:5]))}), and a host has room for one.\n"
                    "  fix: reconcile-lab compare --kubeconfig <that cluster's kubeconfig>, or "
                    "reconcile-lab cluster down there first")
            self.was_running = kwok.is_running()
            # Simulated nodes beside the real one: where a machine can die (machine-dies).
            kubeconfig = kwok.up(progress=self.ctx.say, nodes="both")
        if not nodeinfo.node_ready(kubeconfig):
            raise probing.ClusterError(
                f"the cluster of {kubeconfig} has no Ready real node {nodeconfig.NODE_NAME!r}: "
                "the comparison measures real containers on both sides.\n"
                "  fix: reconcile-lab cluster up (it says what a real node lacks on this host)")
        return kubeconfig

    def _kubectl(self, *args: str, input: str | None = None) -> str:
        assert self.ctx.kubeconfig is not None
        result = subprocess.run([*probing.kubectl_args(self.ctx.kubeconfig), *args], input=input,
                                capture_output=True, text=True, timeout=120, check=False,
                                env=probing.kubectl_env())
        if result.returncode != 0:
            raise probing.ClusterError(f"kubectl {' '.join(args[:3])} failed: {result.stderr}")
        return result.stdout

    def _account(self) -> Path:
        """A ServiceAccount serving the run's namespace only, and a kubeconfig with its token."""
        ctx = self.ctx
        assert ctx.kubeconfig is not None
        account = driving.OPERATOR_ACCOUNT
        self._kubectl("apply", "-f", "-", input=yaml.safe_dump_all(permissions.namespaced_rbac(
            ctx.namespace, account=account, account_namespace=ctx.namespace)))
        token = self._kubectl("create", "token", account, "-n", ctx.namespace,
                              "--duration=12h").strip()
        path = ctx.work / "operator.kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfigs.with_token(
            yaml.safe_load(ctx.kubeconfig.read_text()), token=token,
            base=ctx.kubeconfig.parent, user=account, where=str(ctx.kubeconfig))))
        path.chmod(0o600)
        return path
