"""The Kubernetes side's hands: ``kubectl`` for changes, the host for a process that dies.

The operator's pods run on the embedded cluster's real node (kubelet, containerd, runc on this
host), so a fault is the same as on Docker: the main process of one instance's container gets
SIGKILL, and the kubelet, not the operator, restarts it in place. Requests go through the
Service's NodePort on 127.0.0.1 (kube-proxy sends them to ready pods only), as the Docker
engines' go to their published ports. Sampling reads the API; nothing here decides what a
sample means. An I/O adapter.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import yaml

from reconcile_lab.cluster import nodeconfig, nodeinfo, probing
from reconcile_lab.compare import driving, probes, processes, scenarios, timeline
from reconcile_lab.compare.driving import DIR, FILE, Mark
from reconcile_lab.compare.processes import DriverError
from reconcile_lab.compare.scenarios import Step, Target
from reconcile_lab.declarative import policy
from reconcile_lab.faults import flowcontrol

THROTTLE_FILE = "throttle.yaml"  # as typed commands show them: a FlowSchema and its level
CROWD_FILE = "more-webapps.yaml"
POLICY_FILE = "deploy/policy.yaml"
POLICY_TAKES = 60.0  # seconds the apiserver may take to enforce a new policy or label


class OperatorDriver(driving.Driver):
    engine = scenarios.OPERATOR
    child_kinds = 2  # Deployment, Service

    def __init__(self, ctx: driving.Context, app: str, *,
                 shape: scenarios.Shape = scenarios.PLAIN) -> None:
        super().__init__(ctx, app, shape=shape)
        # The folder's GitOps agent: `reconcile-lab sync DIR --watch`, as the admin.
        self.sync = processes.Background(ctx.log_file(f"{app}-sync"), ctx.env)
        self.node_port: int | None = None  # the Service's, as last sampled
        self.throttled = False  # its FlowSchema was applied: clean-up deletes it
        self.crowd: list[str] = []  # the other WebApps of "throttled"
        self.dead_node = ""  # the node whose machine "died": clean-up brings it back
        self.enforced = False  # the namespace was labelled for the policy: clean-up unlabels
        self.installed = False  # the policy objects were not there before: clean-up removes them

    def kubectl(self, *args: str, check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        assert self.ctx.kubeconfig is not None
        return self.ctx.execute([*probing.kubectl_args(self.ctx.kubeconfig), "-n", self.ctx.namespace,
                             *args], log=self.app, check=check, env=probing.kubectl_env(),
                             input=input)

    def pods(self) -> list[dict[str, Any]]:
        return probes.items(probes.kube_get(probes.pods_path(self.ctx.namespace),
                                            labelSelector=f"app.kubernetes.io/instance={self.app}"))

    def kill_container(self, step: Step, mark: Mark) -> None:
        """SIGKILL to the main process of one running pod's container, from the host."""
        found = sorted((p["metadata"]["name"], pid) for p in self.pods()
                       if not p["metadata"].get("deletionTimestamp")
                       and (pid := nodeinfo.container_pid(p)) is not None)
        if not found:
            raise DriverError(f"{self.app}: no container of a pod runs on the real node")
        pod, pid = found[0]
        mark("fault", step.label, [f"kill -9 <main process of pod {pod}'s container>"])
        os.kill(pid, signal.SIGKILL)

    def prepare(self, target: Target) -> None:
        if self.shape.simulated:  # every pod of the namespace goes to a simulated node
            self.kubectl("annotate", "--overwrite", "namespace", self.ctx.namespace, *(
                f"{k}={v}" for k, v in nodeconfig.SIMULATED_NAMESPACE_ANNOTATIONS.items()))
        super().prepare(target)

    def busiest_node(self) -> str:
        """The node that runs most of the app's live pods."""
        nodes = [str(p["spec"].get("nodeName", "")) for p in self.pods()
                 if not p["metadata"].get("deletionTimestamp")]
        if not any(nodes):
            raise DriverError(f"{self.app}: no pod of the app is on a node")
        return max(sorted(set(nodes) - {""}), key=nodes.count)

    def kill_node(self, step: Step, mark: Mark) -> None:
        """The machine under a simulated node dies: its heartbeat (the node's Lease) is taken
        from kwok, which renews it no more, and left as it was last renewed, so the node
        controller sees no renewal after it. Pods on it are left as they are (kwok acts only
        for nodes whose Lease it holds)."""
        node = self.busiest_node()
        mark("fault", step.label, [f"the machine under node {node} stops (simulated: its "
                                   "Lease is renewed no more)"])
        self.dead_node = node
        self.kubectl("patch", "lease", node, "-n", nodeconfig.NODE_LEASE_NAMESPACE,
                     "--type", "merge", "-p", json.dumps(nodeconfig.dead_lease()))

    def start_sync(self) -> None:
        assert self.ctx.kubeconfig is not None
        self.sync.start([sys.executable, "-m", "reconcile_lab", "sync", self.source,
                         "--watch", "--interval", f"{scenarios.SYNC_INTERVAL:g}",
                         "--project", self.app, "-n", self.ctx.namespace,
                         "--kubeconfig", str(self.ctx.kubeconfig)])

    def do(self, step: Step, target: Target, mark: Mark) -> None:
        match step.action:
            case "create" if self.folder is not None:
                self.write(target)
                mark("command", step.label, [f"reconcile-lab sync {DIR} --watch"])
                self.start_sync()
            case "node-dies":
                self.kill_node(step, mark)
            case "hand-edit":
                mark("fault", step.label, [f"kubectl scale webapp {self.app} --replicas=1"])
                self.kubectl("scale", "webapp", self.app, "--replicas=1")
            case "remove-file":
                self.remove_file(step, target, mark)
            case "create" | "scale" | "rollout" | "change":
                self.write(target)
                mark("command", step.label, [f"kubectl apply -f {FILE}"])
                done = self.kubectl("apply", "-f", str(self.file), check=False)
                if done.returncode != 0:
                    refusal = policy.refusal(done.stderr)
                    if refusal is None:
                        raise DriverError(f"kubectl apply -f {self.file}: {done.stderr.strip()}")
                    mark("figure", f"refused by the apiserver: {refusal}", [])
            case "policy-on":
                mark("command", step.label, [f"kubectl apply -f {POLICY_FILE}",
                                             f"kubectl label namespace {self.ctx.namespace} "
                                             f"{policy.LABEL}={policy.ENFORCE}"])
                self.enforce()
            case "kill-one" | "crash-one":
                self.kill_container(step, mark)
            case "delete-child":
                mark("fault", step.label, [f"kubectl delete deployment,service {self.app}"])
                self.kubectl("delete", "deployment,service", self.app, "--wait=false")
            case "drift":
                mark("fault", step.label, [f"kubectl scale deployment {self.app} --replicas=1"])
                self.kubectl("scale", "deployment", self.app, "--replicas=1")
            case "kill-controller":
                assert self.ctx.operator is not None
                mark("fault", step.label, ["kill -9 <operator pid>"])
                self.ctx.operator.kill()
            case "restart-controller":
                assert self.ctx.operator is not None
                mark("command", step.label, ["reconcile-lab operator run"])
                self.ctx.operator.start()
            case "cut-controller" | "heal-controller":
                driving.switch_path(self.ctx.kube_path, step, mark)
            case "throttle-controller":
                mark("fault", step.label, [f"kubectl apply -f {THROTTLE_FILE}"])
                self.throttled = True
                self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(self.throttle()))
            case "crowd":
                assert step.replicas is not None
                self.crowd = [f"{self.app}-{i:02d}" for i in range(step.replicas)]
                mark("command", step.label, [f"kubectl apply -f {CROWD_FILE}"])
                self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(
                    [driving.webapp(n, Target(0, scenarios.V1)) for n in self.crowd]))
            case "unthrottle-controller":
                mark("figure", f"{self.rejected():g} requests answered 429", [])
                mark("command", step.label, [f"kubectl delete -f {THROTTLE_FILE}"])
                self.kubectl("delete", "-f", "-", "--ignore-not-found",
                             input=yaml.safe_dump_all(self.throttle()))
            case "delete-app":
                mark("command", step.label, [f"kubectl delete webapp {self.app}"])
                self.kubectl("delete", "webapp", self.app, "--wait=false")
                self.want = target
            case other:
                raise DriverError(f"no way to {other} on {self.engine.title}")

    def enforce(self) -> None:
        """The admission policy on for the run's namespace, and in force: the apiserver learns
        of a new policy and of a new label a moment after they are written, so wait until a
        server-side dry run of an untrusted WebApp is refused."""
        names = [p["metadata"]["name"] for p in policy.policies()
                 if p["kind"] == "ValidatingAdmissionPolicy"]
        self.installed = self.kubectl("get", "validatingadmissionpolicy", *names,
                                      check=False).returncode != 0
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(policy.policies()))
        self.enforced = True
        self.kubectl("label", "namespace", self.ctx.namespace,
                     f"{policy.LABEL}={policy.ENFORCE}", "--overwrite")
        probe = yaml.safe_dump(driving.webapp(f"{self.app}-probe", Target(0, scenarios.UNTRUSTED)))
        deadline = time.monotonic() + POLICY_TAKES
        while time.monotonic() < deadline:
            tried = self.kubectl("apply", "--dry-run=server", "-f", "-", check=False, input=probe)
            if tried.returncode != 0 and policy.refusal(tried.stderr) is not None:
                return
            time.sleep(0.5)
        raise DriverError(f"the admission policy refused nothing in {POLICY_TAKES:g} s")

    def throttle(self) -> list[dict[str, Any]]:
        """A priority level without a seat of its own for the operator's ServiceAccount, and it
        alone: a request passes when none of the account's runs, the others are refused."""
        return flowcontrol.throttle(self.app, account=driving.OPERATOR_ACCOUNT,
                                    namespace=self.ctx.namespace, shares=0)

    def rejected(self) -> float:
        """Requests the apiserver refused in this app's priority level so far."""
        text = self.kubectl("get", "--raw", "/metrics").stdout
        return flowcontrol.rejected(text, self.app)

    def sample(self) -> driving.Values:
        ns = self.ctx.namespace
        app = probes.kube_get(probes.object_path("webapp", ns, self.app))
        deployment = probes.kube_get(probes.object_path("deployment", ns, self.app))
        service = probes.kube_get(probes.object_path("service", ns, self.app))
        self.node_port = timeline.node_port(service)
        counts = timeline.count_pods(self.pods(), self.want.image)
        desired = int(app["spec"].get("replicas", 1)) if app else 0
        children = (deployment is not None) + (service is not None)
        return desired, counts.actual, counts.ready, counts.current, children

    def restarts(self) -> int | None:
        return timeline.pod_restarts(self.pods())

    def ports(self) -> list[int]:
        # As fresh as the last sample (≤ 0.1 s), like the Docker engines' list of ready ones.
        return [self.node_port] if self.node_port is not None else []

    def cleanup(self) -> None:
        if self.dead_node:  # its Lease made again by kwok: the node is back
            self.kubectl("delete", "lease", self.dead_node, "-n",
                         nodeconfig.NODE_LEASE_NAMESPACE, "--ignore-not-found", check=False)
        if self.shape.simulated:
            self.kubectl("annotate", "namespace", self.ctx.namespace, *(
                f"{k}-" for k in nodeconfig.SIMULATED_NAMESPACE_ANNOTATIONS), check=False)
        self.sync.stop()
        rest = [self.rest] if self.folder is not None else []
        self.kubectl("delete", "webapp", self.app, *self.crowd, *rest, "--ignore-not-found",
                     "--wait=false", check=False)
        if self.throttled:
            self.kubectl("delete", "-f", "-", "--ignore-not-found", check=False,
                         input=yaml.safe_dump_all(self.throttle()))
        if self.enforced:
            self.kubectl("label", "namespace", self.ctx.namespace, f"{policy.LABEL}-",
                         check=False)
        if self.installed:
            self.kubectl("delete", "-f", "-", "--ignore-not-found", check=False,
                         input=yaml.safe_dump_all(policy.policies()))
