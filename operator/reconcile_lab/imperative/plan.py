"""What the Docker twin would do: compare a WebApp with the containers that exist, list the steps.

``plan(app, observed)`` is the imperative counterpart of ``render`` on the declarative side: it
decides, ``engine`` executes. The desired containers come from ``containers``, the steps it
lists are ``steps``, each of which prints as the ``docker`` command a person would type.

The diff, in the order the steps run:

1. the app's network (named after the app; its DNS alias ``NAME`` plays the Service);
2. strays and surplus containers go, the highest replica first (``NAME-N`` is the newest);
3. missing containers are created, stopped ones started, unhealthy ones restarted: capacity first;
4. containers whose image, env, port, resources or config hash differ are replaced one at a time,
   each waiting to be ready before the next, so a rollout never drops below N-1 serving.

Purely data: no docker SDK, no subprocess, no logging, no metrics, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconcile_lab import spec
from reconcile_lab.imperative import containers, steps

# The exit code Docker gives a container its runtime could not start (runc failed, e.g. "id
# already in use"), as opposed to the app's own exit.
START_FAILED = 128


def differences(want: containers.Container, seen: containers.Observed) -> list[str]:
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
        found.append(f"cpus {containers.format_cpus(seen.nano_cpus)} → "
                     f"{containers.format_cpus(want.nano_cpus)}")
    if seen.memory != want.memory:
        found.append(f"memory {containers.format_memory(seen.memory)} → "
                     f"{containers.format_memory(want.memory)}")
    if want.network not in seen.networks:
        found.append(f"not on network {want.network}")
    if not found and seen.config != want.config:
        # e.g. an env variable removed, or a health check changed: the hash sees it all.
        found.append(f"configuration {seen.config or 'unlabelled'} → {want.config}")
    return found


def plan(app: spec.WebApp, observed: Sequence[containers.Observed], *,
         network_exists: bool = False, project: str | None = None) -> list[steps.Step]:
    """The steps that make the containers labelled for ``app`` equal to it (and to ``project``,
    when given); empty when they are."""
    wanted = containers.desired(app, project=project)
    healthcheck = app.spec.healthCheck is not None
    prefix = containers.docker_name(app.name, app.namespace)
    todo: list[steps.Step] = []
    if not network_exists:
        todo.append(steps.CreateNetwork(app.name, namespace=containers.namespace_of(app),
                                        project=project))

    mine: dict[int, containers.Observed] = {}
    strays: list[containers.Observed] = []
    for seen in sorted(observed, key=lambda o: (o.replica is None, o.replica or 0, o.name)):
        if (seen.replica is not None and seen.replica not in mine
                and seen.name == containers.container_name(prefix, seen.replica)):
            mine[seen.replica] = seen
        else:
            strays.append(seen)
    for seen in strays:
        todo.append(steps.Remove(seen.name, reason=f"labelled for {prefix} but not one of its "
                                 "replicas", drift=True))
    for replica in sorted((r for r in mine if r > len(wanted)), reverse=True):
        todo.append(steps.Remove(mine[replica].name, reason=f"surplus: replicas is {len(wanted)}"))

    pending: list[str] = []  # started or starting, not yet waited for
    rolling: list[steps.Replace] = []
    for want in wanted:
        current = mine.get(want.replica)
        if current is None:
            todo.append(steps.Create(want))
            pending.append(want.name)
            continue
        found = differences(want, current)
        if found:
            replace = steps.Replace(want, reason="; ".join(found),
                                    drift=current.config == want.config, rolling=current.ready)
            if replace.rolling:
                rolling.append(replace)
            else:  # not serving anyway: replacing it now costs no capacity
                todo.append(replace)
                pending.append(want.name)
        elif current.status == "exited" and current.exit_code == START_FAILED:
            # A start the engine could not carry out (after an engine restart the runtime may
            # still hold the container's id): starting it again fails the same way.
            todo.append(steps.Replace(want, reason=f"exited with code {START_FAILED}: the engine "
                                      "could not start it", drift=True))
            pending.append(want.name)
        elif current.status in ("created", "exited"):
            reason = "created, never started" if current.status == "created" else (
                f"exited with code {current.exit_code}")
            todo.append(steps.Start(want.name, reason=reason))
            pending.append(want.name)
        elif not current.running:
            todo.append(steps.Replace(want, reason=f"status {current.status}", drift=True))
            pending.append(want.name)
        elif current.health == "unhealthy":
            todo.append(steps.Restart(want.name))
            pending.append(want.name)
        elif not current.ready:
            pending.append(want.name)

    if rolling:
        if pending:
            # Capacity first: replacing a serving container now could leave fewer than N-1.
            todo.append(steps.WaitReady(tuple(pending), healthcheck,
                                        reason="ready before the rollout"))
            pending = []
        for replace in rolling:
            todo.append(replace)
            todo.append(steps.WaitReady((replace.container.name,), healthcheck,
                                        reason="ready before replacing the next"))
    if pending:
        todo.append(steps.WaitReady(tuple(pending), healthcheck))
    return todo


def plan_delete(app: str, observed: Sequence[containers.Observed], *, network_exists: bool,
                namespace: str = containers.DEFAULT_NAMESPACE) -> list[steps.Step]:
    """Everything ``app`` owns goes: its containers (highest replica first), then its network."""
    todo: list[steps.Step] = [
        steps.Remove(seen.name, reason="deleted")
        for seen in sorted(observed, key=lambda o: (o.replica or 0, o.name), reverse=True)
    ]
    if network_exists:
        todo.append(steps.RemoveNetwork(app, namespace=namespace))
    return todo
