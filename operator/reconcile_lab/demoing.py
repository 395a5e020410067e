"""``reconcile-lab demo`` (``make demo``): the whole kit in one go, narrated.

Brings up what is missing (Docker engine, demo image, cluster, CRD, operator), makes one WebApp
true with both engines, then kills one instance on each side and reports what each did.
A script of the commands a person would type: it calls the CLI and kubectl, it decides nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconcile_lab.cluster import dockerd, images, nodeinfo, probing, providers, realnode

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "01-hello" / "webapp.yaml"
APP, NAMESPACE = "hello", "default"


def _rl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconcile_lab", *args], text=True,
                          capture_output=True, check=False)


class Demo:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.kubeconfig = Path()

    def step(self, title: str) -> None:
        self.say(f"\n=== {title}")

    def kubectl(self, *args: str, show: bool = True) -> str:
        if show:
            self.say(f"$ kubectl {' '.join(args)}")
        result = probing.kubectl(self.kubeconfig, *args, timeout=120)
        if result.returncode != 0:
            raise probing.ClusterError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        if show and result.stdout.strip():
            self.say(result.stdout.rstrip())
        return result.stdout

    def rl(self, *args: str) -> str:
        self.say(f"$ reconcile-lab {' '.join(args)}")
        result = _rl(*args)
        out = (result.stdout + result.stderr).rstrip()
        if out:
            self.say(out)
        if result.returncode not in (0,):
            raise probing.ClusterError(f"reconcile-lab {' '.join(args)} exited {result.returncode}")
        return result.stdout

    def ready_pods(self, pods: list[dict[str, Any]] | None = None) -> list[str]:
        return sorted(p["metadata"]["name"] for p in (self.pods() if pods is None else pods)
                      if not p["metadata"].get("deletionTimestamp")
                      and any(c["type"] == "Ready" and c["status"] == "True"
                              for c in p.get("status", {}).get("conditions", [])))

    def pods(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(self.kubectl(
            "get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/name={APP}", "-o", "json",
            show=False))["items"]
        return items

    def kill_one_pod(self, real: bool) -> tuple[str, tuple[str, str]]:
        """The fault on Kubernetes: on a real node the same SIGKILL `docker kill` sends, to
        the main process of one pod's container; simulated pods have no process: delete one."""
        pods = self.pods()
        victim = self.ready_pods(pods)[0]
        pod = next(p for p in pods if p["metadata"]["name"] == victim)
        pid = nodeinfo.container_pid(pod) if real else None
        if pid is None:
            self.kubectl("delete", "pod", "-n", NAMESPACE, victim, "--wait=false")
            return victim, ("deleted", "replaced")
        self.say(f"$ kill -9 {pid}          # the main process of pod {victim}'s container")
        os.kill(pid, signal.SIGKILL)
        return victim, ("killed", "restarted in place")

    def back_after(self, victim: str, killed: bool) -> bool:
        """Three pods ready again: the victim itself, restarted (kill), or a new one (delete)."""
        pods = self.pods()  # one read per look
        ready = self.ready_pods(pods)
        if len(ready) < 3:
            return False
        if not killed:
            return victim not in ready
        pod = next((p for p in pods if p["metadata"]["name"] == victim), None)
        statuses = (pod or {}).get("status", {}).get("containerStatuses") or [{}]
        return victim in ready and int(statuses[0].get("restartCount", 0)) >= 1

    def running_containers(self) -> list[str]:
        out = subprocess.run(["docker", "ps", "--filter", f"label=reconcile-lab/app={APP}",
                              "--format", "{{.Names}}"], capture_output=True, text=True,
                             check=False).stdout
        return sorted(out.split())


def run(*, provider: str, say: Callable[[str], None]) -> int:
    demo = Demo(say)
    demo.step("1. A Docker engine and the demo image (built FROM scratch, offline)")
    dockerd.ensure(progress=say)
    images.build(progress=say)

    demo.step("2. A Kubernetes cluster and the WebApp CRD")
    name = providers.resolve(provider)
    module = providers.module(name)
    demo.kubeconfig = module.up(progress=say)
    providers.remember(name)
    demo.kubectl("apply", "--server-side", "--field-manager=reconcile-lab", "-f",
                 str(REPO / "crds"))
    demo.kubectl("wait", "--for", "condition=established", "--timeout=60s", "-f",
                 str(REPO / "crds"))

    demo.step("3. The operator (the declarative engine), in the background")
    demo.rl("operator", "start")

    demo.step(f"4. Declare the app: {EXAMPLE.relative_to(REPO)}")
    demo.kubectl("apply", "-n", NAMESPACE, "-f", str(EXAMPLE))
    demo.kubectl("wait", "-n", NAMESPACE, f"webapp/{APP}", "--for=condition=Ready",
                 "--timeout=120s")
    demo.kubectl("get", "-n", NAMESPACE, "webapp", APP)
    demo.kubectl("get", "-n", NAMESPACE, "deployment,service,pods", "-l",
                 f"app.kubernetes.io/instance={APP}")

    demo.step("5. The same file, made true imperatively by the Docker twin")
    demo.rl("docker", "apply", "-f", str(EXAMPLE))
    demo.rl("docker", "status", "-f", str(EXAMPLE))

    demo.step("6. One fault, both sides: an instance's process is killed")
    results: dict[str, Any] = {}
    real = realnode.is_running()
    victim, how = demo.kill_one_pod(real)
    started = time.monotonic()
    back = None
    while time.monotonic() - started < 30:
        if demo.back_after(victim, real):
            back = time.monotonic() - started
            break
        time.sleep(0.1)
    results["kubernetes"] = back
    containers = demo.running_containers()
    say(f"$ docker kill {containers[0]}          # SIGKILL to its main process")
    subprocess.run(["docker", "kill", containers[0]], capture_output=True, check=False)
    time.sleep(5)
    results["docker"] = len(demo.running_containers())

    demo.step("What happened")
    k8s = (f"{how[1]} in {results['kubernetes']:.1f}s, without anyone asking"
           if results["kubernetes"] is not None else f"not {how[1]} within 30s")
    say(f"  Kubernetes: pod {victim} {how[0]} → {k8s}.")
    say(f"  Docker:     container {containers[0]} killed → {results['docker']}/3 running 5s "
        "later, and it stays that way until someone runs `reconcile-lab docker apply` again "
        "(or `--watch`, a polling loop).")
    if name == "kwok" and not realnode.is_running():
        say("  (kwok simulates pods: the controllers are real, the containers are not.)")
    say("\nNext: kubectl get webapps (after `eval \"$(reconcile-lab cluster env)\"`), "
        "reconcile-lab docker status hello, examples/*/README.md.\n"
        "Every fault against every engine, measured: `make compare` (QUICK=1 for a short run); "
        "live: `make watch`; the workshop: `reconcile-lab exercise list`.\n"
        "Clean up: `reconcile-lab docker delete hello` and `make down`.")
    return 0 if results["kubernetes"] is not None else 1
