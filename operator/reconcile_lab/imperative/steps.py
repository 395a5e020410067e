"""The steps of a Docker twin's run: what each one changes, and the ``docker`` command it is.

Every step can write itself as the exact ``docker …`` command a person would have typed, so the
kit can print what it does and a participant can replay it by hand. ``plan`` chooses the steps,
``engine`` executes them.

Purely data: no docker SDK, no subprocess, no logging, no metrics, no clock.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence
from typing import ClassVar, TypeAlias

from reconcile_lab.imperative import containers


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
    namespace: str = containers.DEFAULT_NAMESPACE
    project: str | None = None

    @property
    def target(self) -> str:
        return containers.docker_name(self.app, self.namespace)

    @property
    def labels(self) -> dict[str, str]:
        return {**containers.owner_labels(self.app, self.namespace),
                **containers.project_labels(self.project)}

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
    namespace: str = containers.DEFAULT_NAMESPACE

    @property
    def target(self) -> str:
        return containers.docker_name(self.app, self.namespace)

    def commands(self) -> list[list[str]]:
        return [["docker", "network", "rm", self.target]]


@dataclasses.dataclass(frozen=True)
class Create(_Step):
    verb: ClassVar[str] = "create"
    container: containers.Container
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
    container: containers.Container
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


def changes(steps: Sequence[Step]) -> list[Step]:
    """The steps that change something (waiting changes nothing)."""
    return [step for step in steps if not isinstance(step, WaitReady)]
