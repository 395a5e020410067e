"""What every driver shares: the run's context, the WebApp file, waiting for a target.

A driver is the harness's hands on one engine: it turns a scenario step (scale, kill one
instance, roll out…) into the real commands a person would type there, runs them, and says
what it typed through ``mark`` just before running them (the harness stamps the time, and for a
fault also when it is done). It samples its engine through ``probes`` and removes everything it
made. The Kubernetes driver is ``kubedriver``, the Docker ones are ``dockerdrivers``.
An I/O adapter: it decides nothing about what a result means.

Every name starts with the run's prefix so the harness can sweep whatever a crash left behind.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from reconcile_lab import spec
from reconcile_lab.compare import probes, processes, scenarios, timeline
from reconcile_lab.compare.scenarios import Step, Target

Mark = Callable[[str, str, list[str]], None]  # kind, label, commands (display form)
FILE = "webapp.yaml"  # how the app's file is shown in typed commands
DIR = "DIR"  # and the folder, when the app is one file of a folder
OPERATOR_ACCOUNT = "compare-operator"  # the operator's ServiceAccount, in the run's namespace
Values = tuple[int | None, int, int, int, int | None]  # a Sample without its time


@dataclass
class Context:
    run: str
    work: Path  # WebApp files and logs of this run
    docker: probes.Docker
    snapshot: probes.Snapshot
    env: dict[str, str]  # for the CLI subprocesses: their own state directory
    kubeconfig: Path | None = None
    namespace: str = ""
    operator: processes.OperatorProcess | None = None
    # The controllers' own paths to their API, each through a fault proxy: the operator's to
    # the apiserver, the --watch loop's to dockerd (``docker_host``).
    kube_path: processes.FaultProxy | None = None
    docker_path: processes.FaultProxy | None = None
    docker_host: str = ""
    # The one Docker engine every Docker engine's driver shares, in a scenario that stops it.
    host: processes.Host | None = None
    say: Callable[[str], None] = print

    def log_file(self, name: str) -> Path:
        return self.work / "logs" / f"{name}.log"

    def execute(self, argv: list[str], *, log: str, check: bool = True, timeout: float = 90,
            env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        return processes.run(argv, log=self.log_file(log), env=env or self.env, check=check,
                             timeout=timeout, input=input)


STARTUP_ENV = "STARTUP_SECONDS"  # the demo image's: seconds before it listens


def webapp(name: str, target: Target, shape: scenarios.Shape = scenarios.PLAIN
           ) -> dict[str, Any]:
    """The one file both engines read (the shape of examples/01-hello/webapp.yaml). A NodePort
    Service: the cluster picks the port, and requests reach it on 127.0.0.1 as they reach a
    container's published port."""
    extra: dict[str, Any] = {}
    if shape.probed:
        extra["healthCheck"] = {"path": "/healthz", "periodSeconds": scenarios.HEALTH_PERIOD}
    if shape.startup:
        extra["env"] = [{"name": STARTUP_ENV, "value": str(shape.startup)}]
    if shape.reschedule_after is not None:
        extra["rescheduleAfterSeconds"] = shape.reschedule_after
    if shape.autoscaled:
        extra["autoscale"] = {"minReplicas": scenarios.AUTOSCALE_MIN,
                              "maxReplicas": scenarios.AUTOSCALE_MAX,
                              "targetCPUUtilizationPercentage": scenarios.AUTOSCALE_TARGET,
                              "scaleInAfterSeconds": scenarios.SCALE_IN_AFTER}
    return {"apiVersion": spec.API_VERSION, "kind": spec.KIND, "metadata": {"name": name},
            "spec": {"image": target.image, "replicas": target.replicas, "port": 8080,
                     **extra, "service": {"type": "NodePort"}}}


def switch_path(path: processes.FaultProxy | None, step: Step, mark: Mark) -> None:
    """Cut or heal a controller's path to its API, as `reconcile-lab fault cut|heal` would."""
    assert path is not None, "no fault proxy on this controller's path"
    word = "cut" if step.action == "cut-controller" else "heal"
    mark("fault" if step.fault else "command", step.label,
         [f"reconcile-lab fault {word}" + (" --docker" if path.docker else "")])
    path.switch(word)


class Driver:
    engine: ClassVar[scenarios.Engine]
    child_kinds: ClassVar[int] = 0
    has_traffic: ClassVar[bool] = True  # its instances answer on 127.0.0.1

    def __init__(self, ctx: Context, app: str, *,
                 shape: scenarios.Shape = scenarios.PLAIN) -> None:
        self.ctx = ctx
        self.app = app
        self.shape = shape
        # With ``shape.folder`` the app is one file of a folder that holds the rest of its
        # project too (an app of no replicas), the folder's name being the project's.
        self.folder = ctx.work / app if shape.folder else None
        self.file = (self.folder / f"{app}.yaml") if self.folder else ctx.work / f"{app}.yaml"
        self.want = Target(0, scenarios.V1, gone=True)

    @property
    def rest(self) -> str:
        """The other app of the folder's project."""
        return f"{self.app}-rest"

    @property
    def source(self) -> str:
        """What the engines are given: the folder, or the one file."""
        return str(self.folder or self.file)

    def write(self, target: Target) -> None:
        self.want = target
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / f"{self.rest}.yaml").write_text(yaml.safe_dump(
                webapp(self.rest, Target(0, scenarios.V1)), sort_keys=False))
        self.file.write_text(yaml.safe_dump(webapp(self.app, target, self.shape),
                                            sort_keys=False))

    def remove_file(self, step: Step, target: Target, mark: Mark) -> None:
        """`rm DIR/NAME.yaml`: the app is no longer declared."""
        mark("command", step.label, [f"rm {DIR}/{self.app}.yaml"])
        self.want = target
        self.file.unlink()

    def wait(self, target: Target, timeout: float = 45) -> None:
        """Until the engine shows ``target`` (set-up only: not measured)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ctx.snapshot.invalidate()
            if timeline.matches(timeline.Sample(0, *self.sample()), target, self.child_kinds):
                return
            time.sleep(0.2)
        raise processes.DriverError(f"{self.engine.title}: {self.app} did not reach {target} "
                                    f"in {timeout:.0f}s; see {self.ctx.log_file(self.app)}")

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

    def scale_by_hand(self, target: Target, mark: Mark) -> bool:
        """The repair of a load nothing answered: a person scales to what the load needs."""
        step = scenarios.scale(target.replicas)
        # A loop reads the file: the person's one act is the edit, and it counts as one.
        edit = [f"edit {DIR if self.folder else FILE}: replicas {target.replicas}"]
        self.do(step, target, lambda kind, label, commands: mark(
            "repair", f"repair: {label} by hand", commands or edit))
        return True

    def sample(self) -> Values:
        raise NotImplementedError

    def restarts(self) -> int | None:
        """Restarts in place of the instances that exist now; None: not known."""
        return None

    def ports(self) -> list[int]:
        """Where requests go on 127.0.0.1, as a client with health checks would send them."""
        return []

    def cleanup(self) -> None:
        raise NotImplementedError
