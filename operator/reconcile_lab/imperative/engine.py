"""The Docker twin's hands: the only module that talks to the Docker engine (with the Docker SDK).

It observes what an app owns (containers labelled ``reconcile-lab/app=NAME`` and
``reconcile-lab/namespace=NAMESPACE``, and the network ``containers.docker_name``), executes one
step at a time as ``applying`` asks, and waits for readiness. Engine errors become two exceptions:
:class:`EngineUnavailable` (no engine answers) and :class:`EngineError` (it answered, with an error).

It decides nothing (``plan`` does), runs no whole apply itself (``applying`` does), prints nothing,
never pulls an image, never publishes a port beyond 127.0.0.1, and never touches a container or
network that is not labelled for the app.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container as DockerContainer

from reconcile_lab.imperative import containers, reports, steps

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


# --- reading docker's JSON ------------------------------------------------------------------


def _int(text: Any) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _env_pair(item: str) -> tuple[str, str]:
    key, _, value = item.partition("=")
    return key, value


def observed(attrs: Mapping[str, Any]) -> containers.Observed:
    """A container's inspect JSON, reduced to what the plan compares."""
    config = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    state = attrs.get("State") or {}
    settings = attrs.get("NetworkSettings") or {}
    labels = config.get("Labels") or {}
    host_port = None
    for bindings in (settings.get("Ports") or {}).values():
        for binding in bindings or ():
            if binding.get("HostIp") == containers.LOOPBACK:
                host_port = _int(binding.get("HostPort"))
    return containers.Observed(
        name=str(attrs.get("Name", "")).lstrip("/"),
        replica=_int(labels.get(containers.LABEL_REPLICA)),
        image=str(config.get("Image", "")),
        config=labels.get(containers.LABEL_CONFIG),
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

    def observe(self, app: str,
                namespace: str = containers.DEFAULT_NAMESPACE) -> reports.Observation:
        name = containers.docker_name(app, namespace)
        with self._reachable():
            labelled = self._client.containers.list(
                all=True, filters={"label": f"{containers.LABEL_APP}={app}"}, ignore_removed=True)
            # names= matches substrings: keep the exact name only.
            networks = [n for n in self._client.networks.list(names=[name]) if n.name == name]
        ours = [n for n in networks if containers.owned(n.attrs.get("Labels"), app, namespace)]
        return reports.Observation(
            containers=sorted((observed(c.attrs) for c in labelled
                               if containers.owned((c.attrs.get("Config") or {}).get("Labels"), app,
                                         namespace)),
                              key=lambda o: (o.replica or 0, o.name)),
            network_exists=bool(ours),
            network_foreign=bool(networks) and not ours,
        )

    def members(self, project: str) -> set[tuple[str, str]]:
        """(app, namespace) of every app with a container or a network labelled ``project``."""
        selector: dict[str, str | list[str] | bool] = {
            "label": f"{containers.LABEL_PROJECT}={project}"}
        with self._reachable():
            labels = [(c.attrs.get("Config") or {}).get("Labels") or {} for c in
                      self._client.containers.list(all=True, filters=selector,
                                                   ignore_removed=True)]
            labels += [n.attrs.get("Labels") or {} for n in
                       self._client.networks.list(filters=selector)]
        return {(found[containers.LABEL_APP],
                 found.get(containers.LABEL_NAMESPACE, containers.DEFAULT_NAMESPACE))
                for found in labels if found.get(containers.LABEL_APP)}

    def logs_tail(self, name: str, lines: int = 3) -> str:
        with contextlib.suppress(docker.errors.DockerException, *_UNREACHABLE):
            raw = self._client.containers.get(name).logs(tail=lines)
            return " | ".join(raw.decode(errors="replace").split("\n")).strip(" |")
        return ""

    # writing

    def execute(self, step: steps.Step, *, timeout: float,
                failed: Sequence[str] = ()) -> reports.Outcome:
        """Do one step; a failure is an Outcome, not an exception (the rest still converges)."""
        started = time.monotonic()
        try:
            with self._reachable():
                failures = self._do(step, timeout=timeout, failed=failed)
        except _StepFailed as e:
            return reports.Outcome(step, ok=False, seconds=time.monotonic() - started,
                           problems=((e.name, str(e)),))
        except EngineError as e:  # e.g. a 500 while waiting: this step failed, not the run
            return reports.Outcome(step, ok=False, seconds=time.monotonic() - started,
                           problems=((step.target, str(e)),))
        if failures:
            return reports.Outcome(step, ok=False, seconds=time.monotonic() - started,
                           problems=tuple(failures.items()))
        return reports.Outcome(step, ok=True, seconds=time.monotonic() - started)

    def _do(self, step: steps.Step, *, timeout: float, failed: Sequence[str]) -> dict[str, str]:
        match step:
            case steps.CreateNetwork():
                self._guarded(step.target, lambda: self._client.networks.create(
                    step.target, driver="bridge", check_duplicate=True, labels=step.labels))
            case steps.RemoveNetwork():
                self._guarded(step.target,
                              lambda: self._client.networks.get(step.target).remove(),
                              missing_ok=True)
            case steps.Create():
                self._run(step.container)
            case steps.Replace():
                # Check first: removing the old container for an image that is not here would
                # turn a rollout into an outage.
                try:
                    self._require_image(step.container)
                except _StepFailed as e:
                    raise _StepFailed(e.name, f"kept the old container: {e}") from None
                self._remove(step.container.name)
                self._run(step.container)
            case steps.Start():
                self._guarded(step.name, lambda: self._client.containers.get(step.name).start())
            case steps.Restart():
                self._guarded(step.name,
                              lambda: self._client.containers.get(step.name).restart(timeout=1))
            case steps.Remove():
                self._remove(step.name)
            case steps.WaitReady():
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

    def _require_image(self, want: containers.Container) -> None:
        try:
            self._client.images.get(want.image)
        except docker.errors.ImageNotFound:
            raise _StepFailed(
                want.name, f"image {want.image} is not on this machine and nothing is pulled "
                "here (fix: build it, e.g. `reconcile-lab image build`, or correct spec.image)",
            ) from None

    def _run(self, want: containers.Container) -> None:
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
        ports = cast(Any, {f"{want.port}/tcp": (containers.LOOPBACK, None)})
        try:
            container = self._client.containers.create(
                want.image, detach=True, name=want.name, labels=want.labels, ports=ports,
                user=containers.USER, read_only=True, cap_drop=[containers.CAP_DROP],
                security_opt=[containers.SECURITY_OPT], nano_cpus=want.nano_cpus,
                mem_limit=want.memory, environment=dict(want.env), healthcheck=health,
                network=want.network,
                networking_config={want.network: self._client.api.create_endpoint_config(
                    aliases=[want.app])},
            )
        except docker.errors.APIError as e:
            if e.status_code == 409:
                raise _StepFailed(
                    want.name, f"the name {want.name} is taken by a container not labelled "
                    f"{containers.LABEL_APP}={want.app}, {containers.LABEL_NAMESPACE}={want.namespace} "
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


class _StepFailed(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def _explain(error: docker.errors.APIError) -> str:
    return str(error.explanation or error).strip()
