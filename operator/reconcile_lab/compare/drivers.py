"""The hands of the harness: one driver per engine types what a person would type there.

A driver turns a scenario step (scale, kill one instance, roll out…) into real commands —
``kubectl``, ``docker``, ``reconcile-lab docker`` — runs them, and says what it typed through
``mark`` just before running them (the harness stamps the time, and for a fault also when
it is done). It samples its engine through ``probes`` and removes everything it made.
An I/O adapter: it decides nothing about what a result means.

Every container publishes on 127.0.0.1 only; every name starts with the run's prefix so the
harness can sweep whatever a crash left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from reconcile_lab import spec
from reconcile_lab.cluster import probing
from reconcile_lab.compare import probes, scenarios, timeline
from reconcile_lab.compare.scenarios import Step, Target

Mark = Callable[[str, str, list[str]], None]  # kind, label, commands (display form)
FILE = "webapp.yaml"  # how the app's file is shown in typed commands
LABEL_APP = "reconcile-lab/app"  # the twin's label (imperative/plan.py)
LABEL_COMPARE = "reconcile-lab/compare-app"  # containers the harness makes itself
LABEL_SWARM = "com.docker.swarm.service.name"
HEALTH = ["--health-cmd", "wget -q -O /dev/null http://127.0.0.1:8080/healthz",
          "--health-interval", f"{scenarios.HEALTH_PERIOD}s", "--health-timeout", "1s",
          "--health-retries", "3"]
POSTURE = ["--user", "65532:65532", "--read-only", "--cap-drop", "ALL"]


class DriverError(RuntimeError):
    """A command of the harness itself failed (not a measured failure of an engine)."""


@dataclass
class Context:
    run: str
    work: Path  # WebApp files and logs of this run
    docker: probes.Docker
    snapshot: probes.Snapshot
    env: dict[str, str]  # for the CLI subprocesses: their own state directory
    kubeconfig: Path | None = None
    namespace: str = ""
    operator: OperatorProcess | None = None
    say: Callable[[str], None] = print

    def log_file(self, name: str) -> Path:
        return self.work / "logs" / f"{name}.log"


def run(argv: list[str], *, ctx: Context, log: str, check: bool = True, timeout: float = 90,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, its output appended to a log of the run."""
    path = ctx.log_file(log)
    path.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                            env=env or ctx.env)
    with path.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}[exit {result.returncode}]\n")
    if check and result.returncode != 0:
        raise DriverError(f"{' '.join(argv[:4])}… failed (exit {result.returncode}): "
                          f"{(result.stderr or result.stdout).strip()[-400:]}")
    return result


def webapp(name: str, target: Target) -> dict[str, Any]:
    """The one file both engines read (the same shape as examples/01-hello/webapp.yaml)."""
    return {"apiVersion": spec.API_VERSION, "kind": spec.KIND, "metadata": {"name": name},
            "spec": {"image": target.image, "replicas": target.replicas, "port": 8080,
                     "healthCheck": {"path": "/healthz",
                                     "periodSeconds": scenarios.HEALTH_PERIOD}}}


class OperatorProcess:
    """The operator, as ``reconcile-lab operator run`` in a process of its own."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.health_port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.ctx.kubeconfig is not None
        log = self.ctx.log_file("operator")
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reconcile_lab", "operator", "run",
                 "--kubeconfig", str(self.ctx.kubeconfig), "--namespace", self.ctx.namespace,
                 "--log-format", "json", "--metrics-port", "0",
                 "--health-port", str(self.health_port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.ctx.env, start_new_session=True)

    def healthy(self) -> bool:
        return self.proc is not None and self.proc.poll() is None \
            and probes.healthz(self.health_port)

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                raise DriverError(f"the operator did not start; see {self.ctx.log_file('operator')}")
            time.sleep(0.2)

    def kill(self, sig: int = signal.SIGKILL) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None
        pid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        self.proc.wait(timeout=30)
        self.proc = None
        return pid


def _free_port() -> int:
    import socket

    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the drivers ----------------------------------------------------------------------------


class Driver:
    engine: ClassVar[scenarios.Engine]
    child_kinds: ClassVar[int] = 0
    has_traffic: ClassVar[bool] = True  # its instances answer on 127.0.0.1

    def __init__(self, ctx: Context, app: str) -> None:
        self.ctx = ctx
        self.app = app
        self.file = ctx.work / f"{app}.yaml"
        self.want = Target(0, scenarios.V1, gone=True)

    # what every driver shares

    def write(self, target: Target) -> None:
        self.want = target
        self.file.write_text(yaml.safe_dump(webapp(self.app, target), sort_keys=False))

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["docker", *args], ctx=self.ctx, log=self.app, check=check)

    def twin(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return run([sys.executable, "-m", "reconcile_lab", "docker", *args, "--log-format",
                    "json"], ctx=self.ctx, log=self.app, check=check, timeout=120)

    def wait(self, target: Target, timeout: float = 45) -> None:
        """Until the engine shows ``target`` (set-up only: not measured)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ctx.snapshot.invalidate()
            if timeline.matches(timeline.Sample(0, *self.sample()), target, self.child_kinds):
                return
            time.sleep(0.2)
        raise DriverError(f"{self.engine.title}: {self.app} did not reach {target} in "
                          f"{timeout:.0f}s; see {self.ctx.log_file(self.app)}")

    def prepare(self, target: Target) -> None:
        self.do(scenarios.create(target.replicas, target.image), target,
                lambda kind, label, commands: None)
        self.wait(target)

    # per engine

    def do(self, step: Step, target: Target, mark: Mark) -> None:
        raise NotImplementedError

    def repair(self, scenario: scenarios.Scenario, mark: Mark) -> bool:
        """Type what a person would type to put things right by hand; False: nothing to do."""
        return False

    def sample(self) -> tuple[int | None, int, int, int, int | None]:
        raise NotImplementedError

    def ports(self) -> list[int]:
        return []

    def cleanup(self) -> None:
        raise NotImplementedError


class OperatorDriver(Driver):
    engine = scenarios.OPERATOR
    child_kinds = 2  # Deployment, Service
    has_traffic = False  # kwok's pods are simulated

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self.ctx.kubeconfig is not None
        return run([*probing.kubectl_args(self.ctx.kubeconfig), "-n", self.ctx.namespace, *args],
                   ctx=self.ctx, log=self.app, check=check, env=probing.kubectl_env())

    def do(self, step: Step, target: Target, mark: Mark) -> None:
        ns = self.ctx.namespace
        match step.action:
            case "create" | "scale" | "rollout" | "change":
                self.write(target)
                mark("command", step.label, [f"kubectl apply -f {FILE}"])
                self.kubectl("apply", "-f", str(self.file))
            case "kill-one":
                pods = probes.items(probes.kube_get(
                    probes.pods_path(ns), labelSelector=f"app.kubernetes.io/instance={self.app}"))
                victim = sorted(p["metadata"]["name"] for p in pods
                                if not p["metadata"].get("deletionTimestamp"))[0]
                mark("fault", step.label, [f"kubectl delete pod {victim}"])
                self.kubectl("delete", "pod", victim, "--wait=false")
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
            case "delete-app":
                mark("command", step.label, [f"kubectl delete webapp {self.app}"])
                self.kubectl("delete", "webapp", self.app, "--wait=false")
                self.want = target
            case other:
                raise DriverError(f"no way to {other} on {self.engine.title}")

    def sample(self) -> tuple[int | None, int, int, int, int | None]:
        ns = self.ctx.namespace
        app = probes.kube_get(probes.object_path("webapp", ns, self.app))
        deployment = probes.kube_get(probes.object_path("deployment", ns, self.app))
        service = probes.kube_get(probes.object_path("service", ns, self.app))
        pods = probes.items(probes.kube_get(
            probes.pods_path(ns), labelSelector=f"app.kubernetes.io/instance={self.app}"))
        counts = timeline.count_pods(pods, self.want.image)
        desired = int(app["spec"].get("replicas", 1)) if app else 0
        children = (deployment is not None) + (service is not None)
        return desired, counts.actual, counts.ready, counts.current, children

    def cleanup(self) -> None:
        self.kubectl("delete", "webapp", self.app, "--ignore-not-found", "--wait=false",
                     check=False)


class _DockerDriver(Driver):
    """What the Docker engines share: faults on containers, sampling by label."""

    label: ClassVar[str] = LABEL_APP

    def containers(self) -> list[dict[str, Any]]:
        return self.ctx.snapshot.containers(self.label, self.app)

    def running(self) -> list[str]:
        return sorted(str(c["Names"][0]).lstrip("/") for c in self.containers()
                      if c.get("State") == "running")

    def victim(self) -> str:
        names = self.running()
        if not names:
            raise DriverError(f"{self.app}: no running container to break")
        return names[0]

    def fault(self, step: Step, mark: Mark) -> bool:
        """The faults are the same on every Docker engine; True when ``step`` was one."""
        self.ctx.snapshot.invalidate()
        match step.action:
            case "kill-one":
                victim = self.victim()
                mark("fault", step.label, [f"docker kill {victim}"])
                self.docker("kill", victim)
            case "crash-one":
                victim = self.victim()
                pid = int((self.ctx.docker.inspect(victim) or {})["State"]["Pid"])
                mark("fault", step.label,
                     [f"kill -9 $(docker inspect -f '{{{{.State.Pid}}}}' {victim})"])
                os.kill(pid, signal.SIGKILL)
            case "drift":
                victim = self.victim()
                # -t 1: the demo image's PID 1 ignores SIGTERM; without it stop takes 10 s.
                mark("fault", step.label, [f"docker stop -t 1 {victim}"])
                self.docker("stop", "-t", "1", victim)
            case "delete-child":
                names = sorted(str(c["Names"][0]).lstrip("/") for c in self.containers())
                extra = [f"docker network rm {self.app}"] if self.child_kinds else []
                mark("fault", step.label, [f"docker rm -f {' '.join(names)}", *extra])
                self.docker("rm", "-f", *names)
                if extra:
                    self.docker("network", "rm", self.app, check=False)
            case _:
                return False
        return True

    def ports(self) -> list[int]:
        return [p for c in self.containers() if timeline.container_ready(c)
                and (p := timeline.loopback_port(c)) is not None]

    def sample(self) -> tuple[int | None, int, int, int, int | None]:
        counts = timeline.count_containers(self.containers(), self.want.image)
        children = int(self.ctx.snapshot.network_exists(self.app)) if self.child_kinds else None
        return self.want.replicas, counts.actual, counts.ready, counts.current, children


class TwinDriver(_DockerDriver):
    engine = scenarios.TWIN
    child_kinds = 1  # the network NAME

    def apply(self) -> None:
        self.twin("apply", "-f", str(self.file))

    def do(self, step: Step, target: Target, mark: Mark) -> None:
        if self.fault(step, mark):
            return
        match step.action:
            case "create" | "scale" | "rollout" | "change":
                self.write(target)
                mark("command", step.label, [f"reconcile-lab docker apply -f {FILE}"])
                self.apply()
            case "delete-app":
                mark("command", step.label, [f"reconcile-lab docker delete {self.app}"])
                self.want = target
                self.twin("delete", self.app)
            case other:
                raise DriverError(f"no way to {other} on {self.engine.title}")

    def repair(self, scenario: scenarios.Scenario, mark: Mark) -> bool:
        mark("repair", "repair: apply", [f"reconcile-lab docker apply -f {FILE}"])
        self.apply()
        return True

    def cleanup(self) -> None:
        self.twin("delete", self.app)


class WatchDriver(TwinDriver):
    engine = scenarios.WATCH

    def __init__(self, ctx: Context, app: str) -> None:
        super().__init__(ctx, app)
        self.loop: subprocess.Popen[bytes] | None = None

    def start_loop(self) -> None:
        log = self.ctx.log_file(self.app)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.loop = subprocess.Popen(
                [sys.executable, "-m", "reconcile_lab", "docker", "apply", "-f", str(self.file),
                 "--watch", "--interval", f"{scenarios.WATCH_INTERVAL:g}", "--metrics-port", "0",
                 "--log-format", "json"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.ctx.env,
                start_new_session=True)

    def stop_loop(self, sig: int = signal.SIGINT) -> None:
        if self.loop is not None and self.loop.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.loop.pid, sig)
            try:
                self.loop.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.loop.pid, signal.SIGKILL)
                self.loop.wait(timeout=15)
        self.loop = None

    def do(self, step: Step, target: Target, mark: Mark) -> None:
        if self.fault(step, mark):
            return
        loop = f"reconcile-lab docker apply -f {FILE} --watch"
        match step.action:
            case "create":
                self.write(target)
                mark("command", step.label, [loop])
                self.start_loop()
            case "scale" | "rollout" | "change":
                mark("edit", step.label, [])  # the loop re-reads the file: nothing to type
                self.write(target)
            case "kill-controller":
                mark("fault", step.label, ["kill -9 <loop pid>"])
                self.stop_loop(signal.SIGKILL)
            case "restart-controller":
                mark("command", step.label, [loop])
                self.start_loop()
            case "delete-app":
                mark("command", step.label, [f"reconcile-lab docker delete {self.app}"])
                self.twin("delete", self.app)
                # The loop still has the file (so its desired state is unchanged): give it two
                # polls to put everything back.
                time.sleep(2 * scenarios.WATCH_INTERVAL + 1.5)
                self.ctx.snapshot.invalidate()
                if self.containers():
                    mark("command", "Ctrl-C, delete again",
                         ["Ctrl-C (stop the loop)", f"reconcile-lab docker delete {self.app}"])
                    self.stop_loop()
                    self.want = target
                    self.twin("delete", self.app)
                self.want = target
            case other:
                raise DriverError(f"no way to {other} on {self.engine.title}")

    def repair(self, scenario: scenarios.Scenario, mark: Mark) -> bool:
        return False  # it is a loop: it repairs or it does not

    def cleanup(self) -> None:
        self.stop_loop()
        self.twin("delete", self.app)


class RestartDriver(_DockerDriver):
    """Plain ``docker run --restart always`` containers: what dockerd alone offers."""

    engine = scenarios.RESTART
    label = LABEL_COMPARE

    def run_args(self, replica: int, image: str) -> list[str]:
        return ["run", "-d", "--name", f"{self.app}-{replica}", "--restart", "always",
                "--label", f"{LABEL_COMPARE}={self.app}", "-p", "127.0.0.1::8080",
                *POSTURE, "--security-opt", "no-new-privileges", *HEALTH, image]

    def start(self, replica: int, image: str, mark: Mark | None, label: str,
              kind: str = "command") -> None:
        if mark is not None:
            mark(kind, label, [f"docker run -d --name {self.app}-{replica} --restart always "
                               f"-p 127.0.0.1::8080 … {image}"])
        self.docker(*self.run_args(replica, image))

    def healthy(self, name: str, timeout: float = 30) -> None:
        """What a careful person does between two replacements: wait for healthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.ctx.docker.inspect(name) or {}
            if ((seen.get("State") or {}).get("Health") or {}).get("Status") == "healthy":
                return
            time.sleep(0.2)

    def do(self, step: Step, target: Target, mark: Mark) -> None:
        if self.fault(step, mark):
            return
        match step.action:
            case "create" | "scale":
                have = self.want.replicas if not self.want.gone else 0
                self.want = target
                for replica in range(have + 1, target.replicas + 1):
                    self.start(replica, target.image, mark, step.label)
            case "rollout":
                self.want = target
                for replica in range(1, target.replicas + 1):
                    name = f"{self.app}-{replica}"
                    mark("command", step.label, [f"docker rm -f {name}"])
                    self.docker("rm", "-f", name)
                    self.start(replica, target.image, mark, step.label)
                    self.healthy(name)
            case "delete-app":
                names = [f"{self.app}-{i}" for i in range(1, self.want.replicas + 1)]
                mark("command", step.label, [f"docker rm -f {' '.join(names)}"])
                self.want = target
                self.docker("rm", "-f", *names, check=False)
            case other:
                raise DriverError(f"no way to {other} on {self.engine.title}")

    def repair(self, scenario: scenarios.Scenario, mark: Mark) -> bool:
        self.ctx.snapshot.invalidate()
        present = {str(c["Names"][0]).lstrip("/"): c for c in self.containers()}
        typed = False
        for replica in range(1, self.want.replicas + 1):
            name = f"{self.app}-{replica}"
            if name not in present:
                self.start(replica, self.want.image, mark, f"repair: run {name}", kind="repair")
                typed = True
            elif present[name].get("State") != "running":
                mark("repair", f"repair: start {name}", [f"docker start {name}"])
                self.docker("start", name)
                typed = True
        return typed

    def cleanup(self) -> None:
        names = [str(c["Names"][0]).lstrip("/") for c in self.ctx.docker.containers(
            label=[f"{LABEL_COMPARE}={self.app}"])]
        if names:
            self.docker("rm", "-f", *names, check=False)


class SwarmDriver(_DockerDriver):
    """A Docker Swarm service on the single-node swarm the harness made (or found)."""

    engine = scenarios.SWARM
    label = LABEL_SWARM
    has_traffic = False  # swarm mode publishes on every interface: no requests from here

    def do(self, step: Step, target: Target, mark: Mark) -> None:
        if self.fault(step, mark):
            return
        match step.action:
            case "create":
                self.want = target
                mark("command", step.label,
                     [f"docker service create --name {self.app} --replicas {target.replicas} "
                      f"… {target.image}"])
                self.docker("service", "create", "-d", "--name", self.app,
                            "--replicas", str(target.replicas), "--no-resolve-image",
                            "--container-label", f"{LABEL_COMPARE}={self.app}",
                            "--stop-grace-period", "1s", "--update-order", "start-first",
                            "--update-parallelism", "1", *HEALTH, *POSTURE, target.image)
            case "scale" | "change":
                self.want = target
                mark("command", step.label,
                     [f"docker service scale {self.app}={target.replicas}"])
                self.docker("service", "scale", "-d", f"{self.app}={target.replicas}")
            case "rollout":
                self.want = target
                mark("command", step.label,
                     [f"docker service update --image {target.image} {self.app}"])
                self.docker("service", "update", "-d", "--no-resolve-image", "--image",
                            target.image, self.app)
            case "delete-app":
                self.want = target
                mark("command", step.label, [f"docker service rm {self.app}"])
                self.docker("service", "rm", self.app)
            case other:
                raise DriverError(f"no way to {other} on {self.engine.title}")

    def sample(self) -> tuple[int | None, int, int, int, int | None]:
        service = self.ctx.docker.service(self.app)
        desired = 0
        if service is not None:
            mode = service.get("Spec", {}).get("Mode", {})
            desired = int((mode.get("Replicated") or {}).get("Replicas", 0))
        counts = timeline.count_containers(self.containers(), self.want.image)
        return desired, counts.actual, counts.ready, counts.current, None

    def cleanup(self) -> None:
        self.docker("service", "rm", self.app, check=False)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.ctx.docker.containers(
                label=[f"{LABEL_SWARM}={self.app}"]):
            time.sleep(0.3)


DRIVERS: dict[str, type[Driver]] = {
    d.engine.id: d for d in (OperatorDriver, TwinDriver, WatchDriver, RestartDriver, SwarmDriver)
}


@dataclass
class Swarm:
    """A single-node swarm on 127.0.0.1; left again at the end only if we made it."""

    ctx: Context
    created: bool = False
    gwbridge_existed: bool = True
    notes: list[str] = field(default_factory=list)

    def ensure(self) -> None:
        state = self.ctx.docker.swarm_state()
        if state == "active":
            self.ctx.say("swarm: already active on this engine; using it, leaving it as it is")
            return
        self.gwbridge_existed = "docker_gwbridge" in {
            str(n.get("Name")) for n in self.ctx.docker.networks()}
        # Both addresses on loopback: the manager's port 2377 is never on another interface.
        run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1",
             "--listen-addr", "127.0.0.1:2377"], ctx=self.ctx, log="swarm")
        self.created = True
        self.ctx.say("swarm: initialised a single-node swarm on 127.0.0.1 (left at the end)")

    def leave(self) -> None:
        if not self.created:
            return
        run(["docker", "swarm", "leave", "--force"], ctx=self.ctx, log="swarm", check=False)
        if not self.gwbridge_existed:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                done = run(["docker", "network", "rm", "docker_gwbridge"], ctx=self.ctx,
                           log="swarm", check=False)
                if done.returncode == 0 or "No such network" in done.stderr:
                    break
                time.sleep(0.5)
        self.created = False
        self.ctx.say("swarm: left")
