"""The Docker side's hands: the twin (once and as a ``--watch`` loop) and ``docker run --restart
always`` (a Swarm service and its swarm are in ``swarming``).

The faults are the same on every Docker engine (``docker kill``, ``kill -9`` of a container's
main process from the host, ``docker stop``, ``docker rm -f``); sampling is by label from one
shared listing (``probes.Snapshot``). Every container publishes on 127.0.0.1 only.
An I/O adapter: it decides nothing about what a result means.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any, ClassVar

from reconcile_lab.compare import driving, processes, scenarios, timeline
from reconcile_lab.compare.driving import DIR, FILE, Context, Mark
from reconcile_lab.compare.processes import DriverError
from reconcile_lab.compare.scenarios import Step, Target

LABEL_APP = "reconcile-lab/app"  # the twin's label (imperative/plan.py)
LABEL_COMPARE = "reconcile-lab/compare-app"  # containers the harness makes itself
HEALTH = ["--health-cmd", "wget -q -O /dev/null http://127.0.0.1:8080/healthz",
          "--health-interval", f"{scenarios.HEALTH_PERIOD}s", "--health-timeout", "1s",
          "--health-retries", "3"]
POSTURE = ["--user", "65532:65532", "--read-only", "--cap-drop", "ALL"]


class DockerDriver(driving.Driver):
    """What the Docker engines share: faults on containers, sampling by label."""

    label: ClassVar[str] = LABEL_APP

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.ctx.execute(["docker", *args], log=self.app, check=check)

    def twin(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return self.ctx.execute([sys.executable, "-m", "reconcile_lab", "docker", *args,
                             "--log-format", "json"], log=self.app, check=check, timeout=120)

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

    def health(self) -> list[str]:
        """``docker run``'s health-check options (none when the scenario has no probe) and its
        environment: what the WebApp file says for the twin."""
        env = ["--env", f"{driving.STARTUP_ENV}={self.shape.startup}"] if self.shape.startup \
            else []
        return [*(HEALTH if self.shape.probed else ["--no-healthcheck"]), *env]

    def shared(self, step: Step, mark: Mark) -> bool:
        """The steps every Docker engine takes the same way (the faults, the policy that is not
        there); True when ``step`` was one."""
        self.ctx.snapshot.invalidate()
        match step.action:
            case "policy-on":
                # Nothing to switch on: the engine runs whatever image it is given. The image
                # gets its untrusted name here (nothing can be pulled).
                mark("note", "no admission step on Docker", [])
                self.docker("tag", scenarios.V1, scenarios.UNTRUSTED)
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
            case "node-dies":
                assert self.ctx.host is not None, "no host to stop in this scenario"
                mark("fault", step.label, ["the host goes down: dockerd and every container "
                                           "on it stop"])
                self.ctx.host.stop()
            case "hand-edit":
                names = self.running()[1:]
                mark("fault", step.label, [f"docker rm -f {' '.join(names)}"])
                self.docker("rm", "-f", *names)
            case "drift":
                victim = self.victim()
                # -t 1: the grace the Swarm tasks get too (--stop-grace-period 1s).
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

    def restarts(self) -> int | None:
        seen = [self.ctx.docker.inspect(str(c["Id"])) for c in self.containers() if c.get("Id")]
        return timeline.container_restarts([s for s in seen if s is not None])

    def host_down(self) -> bool:
        """The scenario's host is down: nothing runs on it (and its engine cannot say so)."""
        return self.ctx.host is not None and self.ctx.host.down

    def sample(self) -> driving.Values:
        if self.host_down():
            return self.want.replicas, 0, 0, 0, None
        counts = timeline.count_containers(self.containers(), self.want.image)
        children = int(self.ctx.snapshot.network_exists(self.app)) if self.child_kinds else None
        return self.want.replicas, counts.actual, counts.ready, counts.current, children

    def host_back(self, mark: Mark) -> bool:
        """A person starts the host's engine again (the machine-dies scenario's repair)."""
        if self.ctx.host is None:
            return False
        mark("repair", "repair: the host is back", ["dockerd (the machine starts again)"])
        self.ctx.host.start()
        self.ctx.snapshot.invalidate()
        return True


class TwinDriver(DockerDriver):
    engine = scenarios.TWIN
    child_kinds = 1  # the network NAME

    @property
    def typed_apply(self) -> str:
        return (f"reconcile-lab docker apply -f {DIR} --prune" if self.folder is not None
                else f"reconcile-lab docker apply -f {FILE}")

    def apply(self) -> None:
        prune = ["--prune", "--project", self.app] if self.folder is not None else []
        self.twin("apply", "-f", self.source, *prune)

    def do(self, step: Step, target: Target, mark: Mark) -> None:
        if self.shared(step, mark):
            return
        match step.action:
            case "create" | "scale" | "rollout" | "change":
                self.write(target)
                mark("command", step.label, [self.typed_apply])
                self.apply()
            case "remove-file":
                self.remove_file(step, target, mark)
                mark("command", step.label, [self.typed_apply])
                self.apply()
            case "delete-app":
                mark("command", step.label, [f"reconcile-lab docker delete {self.app}"])
                self.want = target
                self.twin("delete", self.app)
            case other:
                raise DriverError(f"no way to {other} on {self.engine.title}")

    def repair(self, scenario: scenarios.Scenario, mark: Mark) -> bool:
        if scenario.load:
            return self.scale_by_hand(scenario.target, mark)
        self.host_back(mark)  # nothing to apply on while the host is down
        mark("repair", "repair: apply", [self.typed_apply])
        self.apply()
        return True

    def cleanup(self) -> None:
        self.twin("delete", self.app, *([self.rest] if self.folder is not None else []))


class WatchDriver(TwinDriver):
    engine = scenarios.WATCH

    def __init__(self, ctx: Context, app: str, *,
                 shape: scenarios.Shape = scenarios.PLAIN) -> None:
        super().__init__(ctx, app, shape=shape)
        # The loop reaches dockerd through the run's fault proxy, where there is one.
        env = {**ctx.env, "DOCKER_HOST": ctx.docker_host} if ctx.docker_host else ctx.env
        self.loop = processes.Background(ctx.log_file(app), env)

    def start_loop(self) -> None:
        self.loop.start([sys.executable, "-m", "reconcile_lab", "docker", "apply", "-f",
                         self.source, "--watch", "--interval", f"{scenarios.WATCH_INTERVAL:g}",
                         "--metrics-port", "0", "--log-format", "json"])

    def stop_loop(self, sig: int = signal.SIGINT) -> None:
        self.loop.stop(sig)

    def do(self, step: Step, target: Target, mark: Mark) -> None:
        if self.shared(step, mark):
            return
        loop = f"reconcile-lab docker apply -f {DIR if self.folder else FILE} --watch"
        match step.action:
            case "remove-file":  # the loop re-reads the folder: nothing else to type
                self.remove_file(step, target, mark)
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
            case "cut-controller" | "heal-controller":
                driving.switch_path(self.ctx.docker_path, step, mark)
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
        if scenario.load:  # a loop keeps the file true, and the file says nothing of load
            return self.scale_by_hand(scenario.target, mark)
        return self.host_back(mark)  # else it is a loop: it repairs or it does not

    def cleanup(self) -> None:
        self.stop_loop()
        self.twin("delete", self.app, *([self.rest] if self.folder is not None else []))


class RestartDriver(DockerDriver):
    """Plain ``docker run --restart always`` containers: what dockerd alone offers."""

    engine = scenarios.RESTART
    label = LABEL_COMPARE

    def run_args(self, replica: int, image: str) -> list[str]:
        return ["run", "-d", "--name", f"{self.app}-{replica}", "--restart", "always",
                "--label", f"{LABEL_COMPARE}={self.app}", "-p", "127.0.0.1::8080",
                *POSTURE, "--security-opt", "no-new-privileges", *self.health(), image]

    def start(self, replica: int, image: str, mark: Mark | None, label: str,
              kind: str = "command") -> None:
        if mark is not None:
            mark(kind, label, [f"docker run -d --name {self.app}-{replica} --restart always "
                               f"-p 127.0.0.1::8080 … {image}"])
        self.docker(*self.run_args(replica, image))

    def healthy(self, name: str, timeout: float = 30) -> None:
        """What a careful person does between two replacements: wait for healthy (with no
        health check, for running: all there is to see)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = (self.ctx.docker.inspect(name) or {}).get("State") or {}
            if (state.get("Health") or {}).get("Status") == "healthy" or \
                    (not self.shape.probed and state.get("Status") == "running"):
                return
            time.sleep(0.2)

    def do(self, step: Step, target: Target, mark: Mark) -> None:
        if self.shared(step, mark):
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
        if scenario.load:
            return self.scale_by_hand(scenario.target, mark)
        if self.host_back(mark):  # dockerd starts what it has a restart policy for
            return True
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


DRIVERS: tuple[type[driving.Driver], ...] = (TwinDriver, WatchDriver, RestartDriver)
