"""What runs for a WebApp in Docker: the desired containers, and the ones observed.

A WebApp becomes N containers ``NAME-1`` … ``NAME-N`` on the network ``NAME``; this module names
them, labels them and says everything ``docker run`` is given (:class:`Container`), and what a
container the engine found looks like (:class:`Observed`).

Docker keeps no desired state, so the desired configuration travels with each container as a
label: a hash of everything ``docker run`` was given. Comparing one label is cheap and exact;
``plan`` compares the fields too, to name the reason and to catch ``docker update`` behind our back.

Docker has no namespaces, so a WebApp's namespace is part of every Docker name: ``NAME`` in the
default namespace and ``NAME.NAMESPACE`` elsewhere (``docker_name``), the way its Service is
``NAME.NAMESPACE`` in cluster DNS. Neither part can hold a dot (both are DNS labels), so two
apps never share a name. Containers and networks carry both labels, app and namespace.

Purely data: no docker SDK, no subprocess, no logging, no metrics, no clock.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from decimal import Decimal
from typing import NamedTuple

from reconcile_lab import spec

LABEL_APP = "reconcile-lab/app"
LABEL_NAMESPACE = "reconcile-lab/namespace"
DEFAULT_NAMESPACE = "default"  # what a WebApp without metadata.namespace lands in, as in kubectl
LABEL_REPLICA = "reconcile-lab/replica"
LABEL_CONFIG = "reconcile-lab/config"
# What a folder applied with `docker apply -f DIR --prune` owns (compose's project label): the
# record, kept in the engine, of which apps the next run of that folder may prune.
LABEL_PROJECT = "reconcile-lab/project"

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
    project: str | None = None  # LABEL_PROJECT, when applied as part of a project

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
        if self.project:  # only then: containers of an app outside a project keep their hash
            payload["project"] = self.project
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def labels(self) -> dict[str, str]:
        return {**owner_labels(self.app, self.namespace), **project_labels(self.project),
                LABEL_REPLICA: str(self.replica), LABEL_CONFIG: self.config}

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


def project_labels(project: str | None) -> dict[str, str]:
    return {LABEL_PROJECT: project} if project else {}


def owned(labels: Mapping[str, str] | None, app: str, namespace: str) -> bool:
    """Labelled for this app in this namespace. An older kit put no namespace label: what it
    made can only be the default namespace's (RUN_FORMAT makes apply replace it)."""
    labels = labels or {}
    if labels.get(LABEL_APP) != app:
        return False
    return labels.get(LABEL_NAMESPACE, DEFAULT_NAMESPACE) == namespace


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


def container(app: spec.WebApp, replica: int, *, project: str | None = None) -> Container:
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
        health=health_of(s), namespace=namespace_of(app), project=project,
    )


def desired(app: spec.WebApp, *, project: str | None = None) -> list[Container]:
    return [container(app, i, project=project) for i in range(1, app.spec.replicas + 1)]


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
