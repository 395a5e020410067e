"""The Docker twin's hands: the only module that talks to the Docker engine (with the Docker SDK).

It observes what an app owns (containers labelled ``reconcile-lab/app=NAME`` and
``reconcile-lab/namespace=NAMESPACE``, and the network ``plan.docker_name``), executes the steps
``plan`` chose, waits for readiness, and makes two runs for the same app take turns (a lock
file per app). Container names are unique in Docker, which is the second guard against
duplicates.

It decides nothing (``plan`` does), prints nothing (callers pass callbacks), never pulls an image,
never publishes a port beyond 127.0.0.1, and never touches a container or network that is not
labelled for the app.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, cast

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container as DockerContainer

from reconcile_lab import paths, spec
from reconcile_lab.imperative import plan

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
POLL = 0.25  # seconds between readiness checks: fast enough to feel live, cheap on 2 cores

# The engine's transport errors are not DockerExceptions: all mean "the engine went away".
# (An APIError is a requests HTTPError as well: the engine answered; catch it first.)
_UNREACHABLE = (requests.exceptions.RequestException,)


def socket_name() -> str:
    return os.environ.get("DOCKER_HOST", DEFAULT_SOCKET).removeprefix("unix://")


class EngineUnavailable(RuntimeError):
    """No Docker engine answers; nothing was changed."""

    def __init__(self, socket: str, detail: str = "") -> None:
        self.socket = socket
        super().__init__(
            f"no Docker engine answers on {socket}" + (f" ({detail})" if detail else "") + ".\n"
            "  fix: `reconcile-lab engine up` (installs and starts Debian's docker.io where it "
            "may), or start Docker yourself (`sudo systemctl start docker`, Docker Desktop), or "
            "point DOCKER_HOST at a running engine; then run again."
        )


class EngineError(RuntimeError):
    """The engine answered, with an error (a 409 or a 500, an object gone between two calls):
    this run stopped there. Worth retrying: the next observation starts afresh."""

    def __init__(self, socket: str, error: docker.errors.DockerException) -> None:
        self.socket = socket
        self.status = getattr(error, "status_code", None)
        super().__init__(f"the Docker engine on {socket} answered with an error: "
                         f"{describe(error)}")


def describe(error: docker.errors.DockerException) -> str:
    """One line for an engine error: its HTTP status and the engine's own explanation."""
    if isinstance(error, docker.errors.APIError):
        code = f"{error.status_code} " if error.status_code else ""
        return (code + _explain(error)).splitlines()[0][:300] if _explain(error) else code.strip()
    return (str(error) or type(error).__name__).splitlines()[0][:300]


class Observation(NamedTuple):
    """What an app owns in Docker right now."""

    containers: list[plan.Observed]
    network_exists: bool  # a network NAME labelled for the app
    network_foreign: bool  # a network NAME exists but belongs to someone else


class Outcome(NamedTuple):
    step: plan.Step
    ok: bool
    seconds: float = 0.0
    problems: tuple[tuple[str, str], ...] = ()  # (container, why) for each that did not make it
    skipped: bool = False

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.problems)

    @property
    def detail(self) -> str:
        return "; ".join(f"{name}: {why}" for name, why in self.problems)


class Report(NamedTuple):
    """What one ``apply`` or ``delete`` did, and where it left the app."""

    app: str
    steps: list[plan.Step]
    outcomes: list[Outcome]
    desired: int
    ready: int
    containers: list[plan.Observed]  # as observed after the run
    remaining: list[plan.Step]  # what a fresh plan would still do
    seconds: float
    conflict: str = ""
    dry_run: bool = False

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def problems(self) -> dict[str, str]:
        """The first reason each container did not make it (later steps often just echo it)."""
        first: dict[str, str] = {}
        for outcome in self.failures:
            for name, why in outcome.problems:
                first.setdefault(name, why)
        return first

    @property
    def failed(self) -> list[str]:
        return sorted(self.problems)

    @property
    def converged(self) -> bool:
        if self.dry_run:
            return not self.steps
        return (not self.conflict and not self.failures and not plan.changes(self.remaining)
                and self.ready == self.desired)


def ready_timeout(app: spec.WebApp) -> float:
    """Long enough for a healthy container to say so, short enough for a broken one to fail."""
    health = plan.health_of(app.spec)
    if health is None:
        return 20.0
    verdict = health.start_period + health.interval * (health.retries + 1) + health.timeout
    return float(max(20, verdict + 10))


def lock_path(docker_app: str) -> Path:
    return paths.state_dir() / "docker" / f"{docker_app}.lock"


@contextlib.contextmanager
def lock(docker_app: str, *, on_wait: Callable[[Path], None] | None = None) -> Iterator[None]:
    """One run per app at a time, across processes: flock is released when the process dies."""
    path = lock_path(docker_app)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- reading docker's JSON ------------------------------------------------------------------


def _int(text: Any) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _env_pair(item: str) -> tuple[str, str]:
    key, _, value = item.partition("=")
    return key, value


def observed(attrs: Mapping[str, Any]) -> plan.Observed:
    """A container's inspect JSON, reduced to what the plan compares."""
    config = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    state = attrs.get("State") or {}
    settings = attrs.get("NetworkSettings") or {}
    labels = config.get("Labels") or {}
    host_port = None
    for bindings in (settings.get("Ports") or {}).values():
        for binding in bindings or ():
            if binding.get("HostIp") == plan.LOOPBACK:
                host_port = _int(binding.get("HostPort"))
    return plan.Observed(
        name=str(attrs.get("Name", "")).lstrip("/"),
        replica=_int(labels.get(plan.LABEL_REPLICA)),
        image=str(config.get("Image", "")),
        config=labels.get(plan.LABEL_CONFIG),
        env=tuple(_env_pair(item) for item in config.get("Env") or ()),
        port=next((_int(key.split("/")[0]) for key in host.get("PortBindings") or {}), None),
        nano_cpus=host.get("NanoCpus") or None,
        memory=host.get("Memory") or None,
        networks=tuple(settings.get("Networks") or {}),
        status=str(state.get("Status", "unknown")),
        health=str((state.get("Health") or {}).get("Status", "none")),
        id=str(attrs.get("Id", "")),
        host_port=host_port,
        exit_code=int(state.get("ExitCode") or 0),
    )


# --- the adapter ----------------------------------------------------------------------------


class Engine:
    """The Docker engine, as the twin uses it."""

    def __init__(self, client: docker.DockerClient, *, socket: str) -> None:
        self._client = client
        self.socket = socket

    @classmethod
    def connect(cls, *, timeout: int = 60) -> Engine:
        socket = socket_name()
        try:
            client = docker.from_env(timeout=timeout)
            client.ping()
        except (docker.errors.DockerException, *_UNREACHABLE) as e:
            raise EngineUnavailable(socket, str(e).splitlines()[0][:200]) from None
        return cls(client, socket=socket)

    def close(self) -> None:
        self._client.close()

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        """Transport errors become EngineUnavailable, the engine's own errors EngineError."""
        try:
            yield
        except docker.errors.DockerException as e:  # first: an APIError is an HTTPError too
            raise EngineError(self.socket, e) from None
        except _UNREACHABLE as e:
            raise EngineUnavailable(self.socket, type(e).__name__) from None

    # reading

    def observe(self, app: str, namespace: str = plan.DEFAULT_NAMESPACE) -> Observation:
        name = plan.docker_name(app, namespace)
        with self._reachable():
            containers = self._client.containers.list(
                all=True, filters={"label": f"{plan.LABEL_APP}={app}"}, ignore_removed=True)
            # names= matches substrings: keep the exact name only.
            networks = [n for n in self._client.networks.list(names=[name]) if n.name == name]
        ours = [n for n in networks if _owned(n.attrs.get("Labels"), app, namespace)]
        return Observation(
            containers=sorted((observed(c.attrs) for c in containers
                               if _owned((c.attrs.get("Config") or {}).get("Labels"), app,
                                         namespace)),
                              key=lambda o: (o.replica or 0, o.name)),
            network_exists=bool(ours),
            network_foreign=bool(networks) and not ours,
        )

    def logs_tail(self, name: str, lines: int = 3) -> str:
        with contextlib.suppress(docker.errors.DockerException, *_UNREACHABLE):
            raw = self._client.containers.get(name).logs(tail=lines)
            return " | ".join(raw.decode(errors="replace").split("\n")).strip(" |")
        return ""

    # writing

    def execute(self, step: plan.Step, *, timeout: float,
                failed: Sequence[str] = ()) -> Outcome:
        """Do one step; a failure is an Outcome, not an exception (the rest still converges)."""
        started = time.monotonic()
        try:
            with self._reachable():
                failures = self._do(step, timeout=timeout, failed=failed)
        except _StepFailed as e:
            return Outcome(step, ok=False, seconds=time.monotonic() - started,
                           problems=((e.name, str(e)),))
        except EngineError as e:  # e.g. a 500 while waiting: this step failed, not the run
            return Outcome(step, ok=False, seconds=time.monotonic() - started,
                           problems=((step.target, str(e)),))
        if failures:
            return Outcome(step, ok=False, seconds=time.monotonic() - started,
                           problems=tuple(failures.items()))
        return Outcome(step, ok=True, seconds=time.monotonic() - started)

    def _do(self, step: plan.Step, *, timeout: float, failed: Sequence[str]) -> dict[str, str]:
        match step:
            case plan.CreateNetwork():
                self._guarded(step.target, lambda: self._client.networks.create(
                    step.target, driver="bridge", check_duplicate=True, labels=step.labels))
            case plan.RemoveNetwork():
                self._guarded(step.target,
                              lambda: self._client.networks.get(step.target).remove(),
                              missing_ok=True)
            case plan.Create():
                self._run(step.container)
            case plan.Replace():
                # Check first: removing the old container for an image that is not here would
                # turn a rollout into an outage.
                try:
                    self._require_image(step.container)
                except _StepFailed as e:
                    raise _StepFailed(e.name, f"kept the old container: {e}") from None
                self._remove(step.container.name)
                self._run(step.container)
            case plan.Start():
                self._guarded(step.name, lambda: self._client.containers.get(step.name).start())
            case plan.Restart():
                self._guarded(step.name,
                              lambda: self._client.containers.get(step.name).restart(timeout=1))
            case plan.Remove():
                self._remove(step.name)
            case plan.WaitReady():
                # Containers that failed earlier count against this wait too: a rollout must
                # not start while capacity is missing.
                earlier = {n: "did not start (see above)" for n in step.names if n in failed}
                return earlier | self._wait([n for n in step.names if n not in failed],
                                            timeout=timeout)
        return {}

    def _guarded(self, name: str, action: Callable[[], object], *,
                 missing_ok: bool = False) -> None:
        try:
            action()
        except docker.errors.NotFound:
            if not missing_ok:
                raise _StepFailed(name, f"{name} is gone") from None
        except docker.errors.APIError as e:
            raise _StepFailed(name, _explain(e)) from None

    def _remove(self, name: str) -> None:
        self._guarded(name, lambda: self._client.containers.get(name).remove(force=True),
                      missing_ok=True)

    def _require_image(self, want: plan.Container) -> None:
        try:
            self._client.images.get(want.image)
        except docker.errors.ImageNotFound:
            raise _StepFailed(
                want.name, f"image {want.image} is not on this machine and nothing is pulled "
                "here (fix: build it, e.g. `reconcile-lab image build`, or correct spec.image)",
            ) from None

    def _run(self, want: plan.Container) -> None:
        """``want.run_args()``, said to the SDK: create, then start (the SDK's run would pull)."""
        self._require_image(want)
        health: dict[str, Any] = {"test": ["NONE"]}
        if want.health is not None:
            health = {"test": ["CMD-SHELL", want.health.command],
                      "interval": want.health.interval * 10**9,
                      "timeout": want.health.timeout * 10**9,
                      "retries": want.health.retries,
                      "start_period": want.health.start_period * 10**9}
        # An empty host port asks Docker for an ephemeral one, like `-p 127.0.0.1::PORT`.
        ports = cast(Any, {f"{want.port}/tcp": (plan.LOOPBACK, None)})
        try:
            container = self._client.containers.create(
                want.image, detach=True, name=want.name, labels=want.labels, ports=ports,
                user=plan.USER, read_only=True, cap_drop=[plan.CAP_DROP],
                security_opt=[plan.SECURITY_OPT], nano_cpus=want.nano_cpus,
                mem_limit=want.memory, environment=dict(want.env), healthcheck=health,
                network=want.network,
                networking_config={want.network: self._client.api.create_endpoint_config(
                    aliases=[want.app])},
            )
        except docker.errors.APIError as e:
            if e.status_code == 409:
                raise _StepFailed(
                    want.name, f"the name {want.name} is taken by a container not labelled "
                    f"{plan.LABEL_APP}={want.app}, {plan.LABEL_NAMESPACE}={want.namespace} "
                    f"(fix: `docker rename {want.name} OTHER` or `docker rm -f {want.name}` if "
                    "it is not needed)") from None
            raise _StepFailed(want.name, _explain(e)) from None
        try:
            container.start()
        except docker.errors.APIError as e:
            # Kept, not removed: `docker ps -a` and `status` show it, as a failed pod stays visible.
            raise _StepFailed(want.name, f"created but did not start: {_explain(e)}") from None

    def _wait(self, names: Sequence[str], *, timeout: float) -> dict[str, str]:
        """Poll until every container is ready; say why for each one that is not."""
        deadline = time.monotonic() + timeout
        waiting = list(names)
        failures: dict[str, str] = {}
        while waiting:
            for name in list(waiting):
                why = self._not_ready(name)
                if why is None:
                    waiting.remove(name)
                elif why:
                    failures[name] = why
                    waiting.remove(name)
            if not waiting:
                break
            if time.monotonic() >= deadline:
                for name in waiting:
                    failures[name] = f"not ready after {timeout:.0f}s"
                break
            time.sleep(POLL)
        return failures

    def _not_ready(self, name: str) -> str | None:
        """None: ready. "": not yet. Anything else: why it never will be."""
        try:
            container: DockerContainer = self._client.containers.get(name)
        except docker.errors.NotFound:
            return "gone"
        seen = observed(container.attrs)
        if seen.ready:
            return None
        if seen.status in ("exited", "dead"):
            tail = self.logs_tail(name)
            return f"exited with code {seen.exit_code}" + (f": {tail}" if tail else "")
        if seen.health == "unhealthy":
            log = (container.attrs["State"].get("Health") or {}).get("Log") or [{}]
            output = str(log[-1].get("Output", "")).strip()
            return "unhealthy" + (f": {output}" if output else " (its health check fails)")
        return ""

    # the whole run

    def apply(self, app: spec.WebApp, *, timeout: float | None = None, dry_run: bool = False,
              on_step: Callable[[plan.Step], None] | None = None,
              on_outcome: Callable[[Outcome], None] | None = None,
              on_wait: Callable[[Path], None] | None = None) -> Report:
        """Observe, plan, execute step by step; a failed container does not stop the others,
        but a failed replacement halts the rest of the rollout (so it never eats capacity)."""
        started = time.monotonic()
        wait_for = timeout if timeout is not None else ready_timeout(app)
        name, namespace = plan.docker_name(app.name, app.namespace), plan.namespace_of(app)
        with lock(name, on_wait=on_wait):
            before = self.observe(app.name, namespace)
            if before.network_foreign:
                return self._report(app, [], [], before, started, conflict=(
                    f"a network named {name} exists but is not labelled "
                    f"{plan.LABEL_APP}={app.name}, {plan.LABEL_NAMESPACE}={namespace} (fix: "
                    f"`docker network rm {name}` if it is unused, or rename the app)"))
            steps = plan.plan(app, before.containers, network_exists=before.network_exists)
            if dry_run:
                return self._report(app, steps, [], before, started, dry_run=True)
            outcomes: list[Outcome] = []
            failed: list[str] = []  # failed earlier: not to be waited for
            left: list[str] = []  # old containers a halted rollout leaves alone
            halted = ""
            for step in steps:
                if halted and isinstance(step, plan.Replace) and step.rolling:
                    left.append(step.target)
                    outcomes.append(Outcome(step, ok=False, skipped=True, problems=((
                        step.target, f"not replaced: rollout halted because {halted}"),)))
                    continue
                if isinstance(step, plan.WaitReady) and set(step.names) <= set(left):
                    continue  # the wait that followed a replacement that was skipped
                if on_step is not None:
                    on_step(step)
                outcome = self.execute(step, timeout=wait_for, failed=failed)
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
                if not outcome.ok:
                    failed.extend(n for n in outcome.failed if n not in failed)
                    gates = isinstance(step, plan.WaitReady) or (
                        isinstance(step, plan.Replace) and step.rolling)
                    if gates and not halted:
                        halted = f"{', '.join(outcome.failed)} did not become ready"
            after = self.observe(app.name, namespace)
        return self._report(app, steps, outcomes, after, started)

    def _report(self, app: spec.WebApp, steps: list[plan.Step], outcomes: list[Outcome],
                seen: Observation, started: float, *, conflict: str = "",
                dry_run: bool = False) -> Report:
        mine = {c.name for c in plan.desired(app)}
        return Report(
            app=plan.docker_name(app.name, app.namespace), steps=steps, outcomes=outcomes,
            desired=app.spec.replicas,
            ready=sum(1 for c in seen.containers if c.name in mine and c.ready),
            containers=seen.containers,
            remaining=plan.plan(app, seen.containers, network_exists=seen.network_exists),
            seconds=time.monotonic() - started, conflict=conflict, dry_run=dry_run,
        )

    def delete(self, app: str, namespace: str = plan.DEFAULT_NAMESPACE, *,
               on_step: Callable[[plan.Step], None] | None = None,
               on_outcome: Callable[[Outcome], None] | None = None,
               on_wait: Callable[[Path], None] | None = None) -> Report:
        """Remove exactly what ``app`` owns: its labelled containers and its labelled network."""
        started = time.monotonic()
        name = plan.docker_name(app, namespace)
        with lock(name, on_wait=on_wait):
            before = self.observe(app, namespace)
            steps = plan.plan_delete(app, before.containers, network_exists=before.network_exists,
                                     namespace=namespace)
            outcomes = []
            for step in steps:
                if on_step is not None:
                    on_step(step)
                outcome = self.execute(step, timeout=0)
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
            after = self.observe(app, namespace)
        left = plan.plan_delete(app, after.containers, network_exists=after.network_exists,
                                namespace=namespace)
        return Report(app=name, steps=steps, outcomes=outcomes, desired=0, ready=0,
                      containers=after.containers, remaining=left,
                      seconds=time.monotonic() - started)


def _owned(labels: Mapping[str, str] | None, app: str, namespace: str) -> bool:
    """Labelled for this app in this namespace. An older kit put no namespace label: what it
    made can only be the default namespace's (RUN_FORMAT makes apply replace it)."""
    labels = labels or {}
    if labels.get(plan.LABEL_APP) != app:
        return False
    return labels.get(plan.LABEL_NAMESPACE, plan.DEFAULT_NAMESPACE) == namespace


class _StepFailed(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def _explain(error: docker.errors.APIError) -> str:
    return str(error.explanation or error).strip()
