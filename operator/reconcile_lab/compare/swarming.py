"""The Docker side's orchestrator: a Docker Swarm service on a single-node swarm on 127.0.0.1,
and that swarm (made at the start of a run when none is active, left at the end).

An I/O adapter, like ``dockerdrivers``: it decides nothing about what a result means.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from reconcile_lab.compare import dockerdrivers, driving, scenarios, timeline
from reconcile_lab.compare.driving import Context, Mark
from reconcile_lab.compare.processes import DriverError
from reconcile_lab.compare.scenarios import Step, Target

LABEL_SWARM = "com.docker.swarm.service.name"


class SwarmDriver(dockerdrivers.DockerDriver):
    """A Docker Swarm service on the single-node swarm the harness made (or found)."""

    engine = scenarios.SWARM
    label = LABEL_SWARM
    has_traffic = False  # swarm mode publishes on every interface: no requests from here

    def do(self, step: Step, target: Target, mark: Mark) -> None:
        if self.shared(step, mark):
            return
        match step.action:
            case "create":
                self.want = target
                mark("command", step.label,
                     [f"docker service create --name {self.app} --replicas {target.replicas} "
                      f"… {target.image}"])
                self.docker("service", "create", "-d", "--name", self.app,
                            "--replicas", str(target.replicas), "--no-resolve-image",
                            "--container-label", f"{dockerdrivers.LABEL_COMPARE}={self.app}",
                            "--stop-grace-period", "1s", "--update-order", "start-first",
                            "--update-parallelism", "1", *self.health(), *dockerdrivers.POSTURE,
                            target.image)
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

    def repair(self, scenario: scenarios.Scenario, mark: Mark) -> bool:
        return self.host_back(mark)  # the swarm puts its tasks back once its manager runs

    def sample(self) -> driving.Values:
        if self.host_down():
            return self.want.replicas, 0, 0, 0, None
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
        self.ctx.execute(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1",
                      "--listen-addr", "127.0.0.1:2377"], log="swarm")
        self.created = True
        self.ctx.say("swarm: initialised a single-node swarm on 127.0.0.1 (left at the end)")

    def leave(self) -> None:
        if not self.created:
            return
        self.ctx.execute(["docker", "swarm", "leave", "--force"], log="swarm", check=False)
        if not self.gwbridge_existed:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                done = self.ctx.execute(["docker", "network", "rm", "docker_gwbridge"], log="swarm",
                                    check=False)
                if done.returncode == 0 or "No such network" in done.stderr:
                    break
                time.sleep(0.5)
        self.created = False
        self.ctx.say("swarm: left")
