"""What the Docker twin would do: compare a WebApp with the containers that exist, list the steps.

``plan(app, observed)`` is the imperative counterpart of ``render`` on the declarative side: it
decides, ``engine`` executes. Every step can write itself as the exact ``docker …`` command a
person would have typed, so the kit can print what it does and a participant can replay it by hand.

The diff, in the order the steps run:

1. the app's network (named after the app; its DNS alias ``NAME`` plays the Service);
2. strays and surplus containers go, the highest replica first (``NAME-N`` is the newest);
3. missing containers are created, stopped ones started, unhealthy ones restarted: capacity first;
4. containers whose image, env, port, resources or config hash differ are replaced one at a time,
   each waiting to be ready before the next, so a rollout never drops below N-1 serving.

Docker keeps no desired state, so the desired configuration travels with each container as a
label: a hash of everything ``docker run`` was given. Comparing one label is cheap and exact;
the fields are compared too, to name the reason and to catch ``docker update`` behind our back.

Docker has no namespaces, so a WebApp's namespace is part of every Docker name: ``NAME`` in the
default namespace and ``NAME.NAMESPACE`` elsewhere (``docker_name``), the way its Service is
``NAME.NAMESPACE`` in cluster DNS. Neither part can hold a dot (both are DNS labels), so two
apps never share a name. Containers and networks carry both labels, app and namespace.

Purely data: no docker SDK, no subprocess, no logging, no metrics, no clock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
from collections.abc import Sequence
from decimal import Decimal
from typing import ClassVar, NamedTuple, TypeAlias

from reconcile_lab import spec

LABEL_APP = "reconcile-lab/app"
LABEL_NAMESPACE = "reconcile-lab/namespace"
DEFAULT_NAMESPACE = "default"  # what a WebApp without metadata.namespace lands in, as in kubectl
LABEL_REPLICA = "reconcile-lab/replica"
LABEL_CONFIG = "reconcile-lab/config"

# The same posture as the operator's pods (restricted pod security standard).
USER = "65532:65532"
CAP_DROP = "ALL"
SECURITY_OPT = "no-new-privileges"
LOOPBACK = "127.0.0.1"

# Part of the config hash: change it when the way containers are run changes, so that containers
# made by an older kit are replaced instead of silently kept.
RUN_FORMAT = 2  # 2: containers and networks carry the namespace label

# What an env value is printed as: values are often secrets, and what the twin prints ends up in
# terminals, CI logs and screen shares. The engine is given the real values.
MASK = "***"

# Docker's health statuses that mean "serving"; "none": no HEALTHCHECK, so running is ready.
READY_STATES = ("none", "healthy")


# --- desired containers ---------------------------------------------------------------------


class Health(NamedTuple):
    """A Docker HEALTHCHECK, the nearest Docker has to a readiness and liveness probe.

    Unlike the kubelet, Docker probes from *inside* the container, so the image must carry the
    probe tool (the demo image has busybox ``wget``).
    """

    command: str  # run by /bin/sh -c, exactly as ``--health-cmd`` does
    interval: int  # seconds
    timeout: int
    retries: int
    start_period: int

    def flags(self) -> list[str]:
        flags = ["--health-cmd", self.command, "--health-interval", f"{self.interval}s",
                 "--health-timeout", f"{self.timeout}s", "--health-retries", str(self.retries)]
        if self.start_period:
            flags += ["--health-start-period", f"{self.start_period}s"]
        return flags


class Container(NamedTuple):
    """One desired container ``APP-INDEX``: everything ``docker run`` is given."""

    app: str  # the WebApp's metadata.name: the DNS alias, as the Service name is
    replica: int  # 1…replicas: NAME-1 is the oldest, NAME-N the newest
    image: str
    port: int
    env: tuple[tuple[str, str], ...] = ()
    nano_cpus: int | None = None  # --cpus, in 1e-9 CPUs as the engine API counts them
    memory: int | None = None  # --memory, bytes
    health: Health | None = None
    namespace: str = DEFAULT_NAMESPACE

    @property
    def name(self) -> str:
        return container_name(docker_name(self.app, self.namespace), self.replica)

    @property
    def network(self) -> str:
        return docker_name(self.app, self.namespace)

    @property
    def config(self) -> str:
        """A hash of all that makes two containers interchangeable (not name, not replica)."""
        payload = {
            "format": RUN_FORMAT, "image": self.image, "port": self.port,
            "env": sorted(self.env), "nano_cpus": self.nano_cpus, "memory": self.memory,
            "health": list(self.health) if self.health else None,
            "posture": [USER, CAP_DROP, SECURITY_OPT, "read-only", LOOPBACK],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def labels(self) -> dict[str, str]:
        return {**owner_labels(self.app, self.namespace), LABEL_REPLICA: str(self.replica),
                LABEL_CONFIG: self.config}

    def run_args(self) -> list[str]:
        """``docker run`` as a person would type it, env values masked; the engine gives the SDK
        the same arguments with the real values."""
        args = ["docker", "run", "-d", "--name", self.name,
                "--network", self.network, "--network-alias", self.app]
        for key, value in self.labels.items():
            args += ["--label", f"{key}={value}"]
        args += ["-p", f"{LOOPBACK}::{self.port}",
                 "--user", USER, "--read-only", "--cap-drop", CAP_DROP,
                 "--security-opt", SECURITY_OPT]
        if self.nano_cpus is not None:
            args += ["--cpus", format_cpus(self.nano_cpus)]
        if self.memory is not None:
            args += ["--memory", format_memory(self.memory)]
        for key, _ in self.env:
            args += ["-e", f"{key}={MASK}"]
        # Without a healthCheck the pod is ready once started; the image's own HEALTHCHECK would
        # make Docker disagree, so it is switched off rather than inherited.
        args += self.health.flags() if self.health else ["--no-healthcheck"]
        args.append(self.image)
        return args


def docker_name(app: str, namespace: str | None = None) -> str:
    """What an app is called in Docker: its network, and its containers' prefix."""
    namespace = namespace or DEFAULT_NAMESPACE
    return app if namespace == DEFAULT_NAMESPACE else f"{app}.{namespace}"


def namespace_of(app: spec.WebApp) -> str:
    return app.namespace or DEFAULT_NAMESPACE


def owner_labels(app: str, namespace: str) -> dict[str, str]:
    """What marks a container or a network as the app's (Docker's ownerReferences)."""
    return {LABEL_APP: app, LABEL_NAMESPACE: namespace}


def container_name(docker_app: str, replica: int) -> str:
    """``docker_app`` is :func:`docker_name`: ``NAME`` or ``NAME.NAMESPACE``."""
    return f"{docker_app}-{replica}"


def health_of(webapp: spec.WebAppSpec) -> Health | None:
    check = webapp.healthCheck
    if check is None:
        return None
    url = f"http://127.0.0.1:{webapp.port}{check.path}"
    return Health(command=shlex.join(["wget", "-q", "-O", "/dev/null", url]),
                  interval=check.periodSeconds, timeout=check.timeoutSeconds,
                  retries=check.failureThreshold, start_period=check.initialDelaySeconds)


def container(app: spec.WebApp, replica: int) -> Container:
    """The desired container ``NAME-replica`` (a plain constructor the tests reuse)."""
    s = app.spec
    limits = s.resources.limits
    cpu = limits.cpu if limits else None
    memory = limits.memory if limits else None
    return Container(
        app=app.name, replica=replica, image=s.image, port=s.port,
        env=tuple((var.name, var.value) for var in s.env),
        nano_cpus=round(Decimal(str(spec.cpu_cores(cpu))) * 10**9) if cpu else None,
        memory=spec.memory_bytes(memory) if memory else None,
        health=health_of(s), namespace=namespace_of(app),
    )


def desired(app: spec.WebApp) -> list[Container]:
    return [container(app, i) for i in range(1, app.spec.replicas + 1)]


def format_cpus(nano_cpus: int | None) -> str:
    if nano_cpus is None:
        return "unlimited"
    text = format(Decimal(nano_cpus) / 10**9, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_memory(memory: int | None) -> str:
    """Bytes in docker's own units (k, m, g are powers of 1024, as in Kubernetes' Ki, Mi, Gi)."""
    if memory is None:
        return "unlimited"
    for unit, size in (("g", 2**30), ("m", 2**20), ("k", 2**10)):
        if memory % size == 0:
            return f"{memory // size}{unit}"
    return str(memory)


# --- what exists ----------------------------------------------------------------------------


class Observed(NamedTuple):
    """A container labelled ``reconcile-lab/app=NAME``, as the engine saw it."""

    name: str
    replica: int | None  # from the replica label; None when someone else made it
    image: str
    config: str | None = None  # the config-hash label
    env: tuple[tuple[str, str], ...] = ()
    port: int | None = None  # the container port published
    nano_cpus: int | None = None
    memory: int | None = None
    networks: tuple[str, ...] = ()
    status: str = "running"  # docker's State.Status: created, running, exited, paused, dead…
    health: str = "none"  # docker's State.Health.Status, "none" without a HEALTHCHECK
    id: str = ""
    host_port: int | None = None  # where it answers on 127.0.0.1
    exit_code: int = 0

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def ready(self) -> bool:
        return self.running and self.health in READY_STATES


def as_observed(want: Container, *, container_id: str = "", status: str = "running",
                health: str | None = None, host_port: int | None = None) -> Observed:
    """What a container made from ``want`` looks like once it runs (for fakes and tests)."""
    return Observed(
        name=want.name, replica=want.replica, image=want.image, config=want.config, env=want.env,
        port=want.port, nano_cpus=want.nano_cpus, memory=want.memory, networks=(want.network,),
        status=status, health=health if health is not None else (
            "healthy" if want.health else "none"),
        id=container_id, host_port=host_port,
    )


# --- steps ----------------------------------------------------------------------------------


class _Step:
    """What every step can say about itself: its docker command(s), its target and why."""

    kind: ClassVar[str] = "Container"  # for the metrics: what it writes, and how
    verb: ClassVar[str] = ""
    reason: str
    drift: bool  # a correction of the world, not of a changed spec

    @property
    def target(self) -> str:
        raise NotImplementedError

    def commands(self) -> list[list[str]]:
        raise NotImplementedError

    def format(self) -> str:
        return "\n".join(shlex.join(argv) for argv in self.commands())


@dataclasses.dataclass(frozen=True)
class CreateNetwork(_Step):
    """The app's user-defined network: containers on it find each other by the app's name."""

    kind: ClassVar[str] = "Network"
    verb: ClassVar[str] = "create"
    app: str
    reason: str = "missing"
    drift: bool = False
    namespace: str = DEFAULT_NAMESPACE

    @property
    def target(self) -> str:
        return docker_name(self.app, self.namespace)

    @property
    def labels(self) -> dict[str, str]:
        return owner_labels(self.app, self.namespace)

    def commands(self) -> list[list[str]]:
        args = ["docker", "network", "create"]
        for key, value in self.labels.items():
            args += ["--label", f"{key}={value}"]
        return [[*args, self.target]]


@dataclasses.dataclass(frozen=True)
class RemoveNetwork(_Step):
    kind: ClassVar[str] = "Network"
    verb: ClassVar[str] = "delete"
    app: str
    reason: str = "deleted"
    drift: bool = False
    namespace: str = DEFAULT_NAMESPACE

    @property
    def target(self) -> str:
        return docker_name(self.app, self.namespace)

    def commands(self) -> list[list[str]]:
        return [["docker", "network", "rm", self.target]]


@dataclasses.dataclass(frozen=True)
class Create(_Step):
    verb: ClassVar[str] = "create"
    container: Container
    reason: str = "missing"
    drift: bool = False

    @property
    def target(self) -> str:
        return self.container.name

    def commands(self) -> list[list[str]]:
        return [self.container.run_args()]


@dataclasses.dataclass(frozen=True)
class _ContainerCommand(_Step):
    """A step that is one docker command on one container, named."""

    docker: ClassVar[tuple[str, ...]] = ()
    name: str

    @property
    def target(self) -> str:
        return self.name

    def commands(self) -> list[list[str]]:
        return [["docker", *self.docker, self.name]]


@dataclasses.dataclass(frozen=True)
class Start(_ContainerCommand):
    """Start a stopped container again: same id, same configuration."""

    verb: ClassVar[str] = "start"
    docker: ClassVar[tuple[str, ...]] = ("start",)
    reason: str = "stopped"
    drift: bool = True


@dataclasses.dataclass(frozen=True)
class Restart(_ContainerCommand):
    """What a failing liveness probe does to a pod; Docker itself never acts on 'unhealthy'."""

    verb: ClassVar[str] = "restart"
    docker: ClassVar[tuple[str, ...]] = ("restart",)
    reason: str = "unhealthy"
    drift: bool = True


@dataclasses.dataclass(frozen=True)
class Remove(_ContainerCommand):
    verb: ClassVar[str] = "delete"
    docker: ClassVar[tuple[str, ...]] = ("rm", "-f")
    reason: str = "surplus"
    drift: bool = False


@dataclasses.dataclass(frozen=True)
class Replace(_Step):
    """Remove a container and run its successor under the same name.

    A Docker name is unique, so the old one goes first: one instance is missing meanwhile
    (Docker has no maxSurge). ``rolling`` marks a replacement of a serving container: the engine
    halts the remaining ones when it does not become ready.
    """

    verb: ClassVar[str] = "replace"
    container: Container
    reason: str
    drift: bool = False
    rolling: bool = False

    @property
    def target(self) -> str:
        return self.container.name

    def commands(self) -> list[list[str]]:
        return [["docker", "rm", "-f", self.container.name], self.container.run_args()]


@dataclasses.dataclass(frozen=True)
class WaitReady(_Step):
    """Wait until containers are healthy (with a HEALTHCHECK) or running (without)."""

    verb: ClassVar[str] = "wait"
    names: tuple[str, ...]
    healthcheck: bool
    reason: str = "let them start"
    drift: bool = False

    @property
    def target(self) -> str:
        return ", ".join(self.names)

    def commands(self) -> list[list[str]]:
        return []  # only reads

    def format(self) -> str:
        # The shell loop a person would type: docker has no "wait until healthy" command.
        field, value = (".State.Health.Status", "healthy") if self.healthcheck else (
            ".State.Running", "true")
        return "\n".join(
            f'until [ "$(docker inspect -f {shlex.quote("{{" + field + "}}")} '
            f'{shlex.quote(name)})" = {value} ]; do sleep 1; done'
            for name in self.names)


Step: TypeAlias = (CreateNetwork | RemoveNetwork | Create | Start | Restart | Remove | Replace
                   | WaitReady)


def format_steps(steps: Sequence[Step]) -> str:
    """The whole plan as a shell script a person could run."""
    return "\n".join(f"# {step.target}: {step.reason}\n{step.format()}" for step in steps)


def changes(steps: Sequence[Step]) -> list[Step]:
    """The steps that change something (waiting changes nothing)."""
    return [step for step in steps if not isinstance(step, WaitReady)]


# --- the diff -------------------------------------------------------------------------------


def differences(want: Container, seen: Observed) -> list[str]:
    """Why ``seen`` cannot stand for ``want``; empty when it can."""
    found: list[str] = []
    if seen.image != want.image:
        found.append(f"image {seen.image} → {want.image}")
    if seen.port != want.port:
        found.append(f"port {seen.port} → {want.port}")
    env = dict(seen.env)
    for key, value in want.env:
        if key not in env:
            found.append(f"env {key} added")
        elif env[key] != value:
            found.append(f"env {key} changed")  # which key, never the values
    if seen.nano_cpus != want.nano_cpus:
        found.append(f"cpus {format_cpus(seen.nano_cpus)} → {format_cpus(want.nano_cpus)}")
    if seen.memory != want.memory:
        found.append(f"memory {format_memory(seen.memory)} → {format_memory(want.memory)}")
    if want.network not in seen.networks:
        found.append(f"not on network {want.network}")
    if not found and seen.config != want.config:
        # e.g. an env variable removed, or a health check changed: the hash sees it all.
        found.append(f"configuration {seen.config or 'unlabelled'} → {want.config}")
    return found


def plan(app: spec.WebApp, observed: Sequence[Observed], *,
         network_exists: bool = False) -> list[Step]:
    """The steps that make the containers labelled for ``app`` equal to it; empty when they are."""
    wanted = desired(app)
    healthcheck = app.spec.healthCheck is not None
    prefix = docker_name(app.name, app.namespace)
    steps: list[Step] = []
    if not network_exists:
        steps.append(CreateNetwork(app.name, namespace=namespace_of(app)))

    mine: dict[int, Observed] = {}
    strays: list[Observed] = []
    for seen in sorted(observed, key=lambda o: (o.replica is None, o.replica or 0, o.name)):
        if (seen.replica is not None and seen.replica not in mine
                and seen.name == container_name(prefix, seen.replica)):
            mine[seen.replica] = seen
        else:
            strays.append(seen)
    for seen in strays:
        steps.append(Remove(seen.name, reason=f"labelled for {prefix} but not one of its "
                            "replicas", drift=True))
    for replica in sorted((r for r in mine if r > len(wanted)), reverse=True):
        steps.append(Remove(mine[replica].name, reason=f"surplus: replicas is {len(wanted)}"))

    pending: list[str] = []  # started or starting, not yet waited for
    rolling: list[Replace] = []
    for want in wanted:
        current = mine.get(want.replica)
        if current is None:
            steps.append(Create(want))
            pending.append(want.name)
            continue
        found = differences(want, current)
        if found:
            replace = Replace(want, reason="; ".join(found), drift=current.config == want.config,
                              rolling=current.ready)
            if replace.rolling:
                rolling.append(replace)
            else:  # not serving anyway: replacing it now costs no capacity
                steps.append(replace)
                pending.append(want.name)
        elif current.status in ("created", "exited"):
            reason = "created, never started" if current.status == "created" else (
                f"exited with code {current.exit_code}")
            steps.append(Start(want.name, reason=reason))
            pending.append(want.name)
        elif not current.running:
            steps.append(Replace(want, reason=f"status {current.status}", drift=True))
            pending.append(want.name)
        elif current.health == "unhealthy":
            steps.append(Restart(want.name))
            pending.append(want.name)
        elif not current.ready:
            pending.append(want.name)

    if rolling:
        if pending:
            # Capacity first: replacing a serving container now could leave fewer than N-1.
            steps.append(WaitReady(tuple(pending), healthcheck, reason="ready before the rollout"))
            pending = []
        for replace in rolling:
            steps.append(replace)
            steps.append(WaitReady((replace.container.name,), healthcheck,
                                   reason="ready before replacing the next"))
    if pending:
        steps.append(WaitReady(tuple(pending), healthcheck))
    return steps


def plan_delete(app: str, observed: Sequence[Observed], *, network_exists: bool,
                namespace: str = DEFAULT_NAMESPACE) -> list[Step]:
    """Everything ``app`` owns goes: its containers (highest replica first), then its network."""
    steps: list[Step] = [
        Remove(seen.name, reason="deleted")
        for seen in sorted(observed, key=lambda o: (o.replica or 0, o.name), reverse=True)
    ]
    if network_exists:
        steps.append(RemoveNetwork(app, namespace=namespace))
    return steps
