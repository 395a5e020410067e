"""``reconcile-lab traffic NAME``: steady requests to one app on both engines, counted.

Kubernetes: the Service's NodePort on 127.0.0.1, where kube-proxy balances over the ready pods.
Docker: round-robin over the twin's containers that Docker lists as ready (refreshed ten times a
second: a load balancer with health checks), on their ports published on 127.0.0.1. Requests go
one at a time per engine, ``--rate`` a second, for ``--seconds``, to 127.0.0.1 only;
``--during`` runs commands meanwhile (a release, a rollback) and the count says what they cost.

It prints a line a second and a summary, and keeps the summary in the state directory
(``traffic/NAMESPACE.NAME.json``), where ``exercise check`` reads it. An I/O adapter and its
wiring; what the requests mean is ``timeline.tally``'s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reconcile_lab import paths
from reconcile_lab.compare import probes, timeline
from reconcile_lab.imperative import containers

KUBERNETES, DOCKER = "kubernetes", "docker"
START_AFTER = 2.0  # seconds of steady traffic before the first --during command


def record_path(app: str, namespace: str) -> Path:
    return paths.state_dir() / "traffic" / f"{namespace}.{app}.json"


def read_record(app: str, namespace: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads(record_path(app, namespace).read_text())
    except (OSError, ValueError):
        return None
    return found


def kube_target(app: str, namespace: str, kubeconfig: Path) -> Callable[[], list[int]]:
    """Where requests to the app's Service go from this host: its NodePort on 127.0.0.1."""
    probes.kube_connect(kubeconfig)
    service = probes.kube_get(probes.object_path("service", namespace, app))
    if service is None:
        raise LookupError(f"no Service {app} in namespace {namespace} (fix: `kubectl apply` "
                          "the WebApp first, and keep the operator running)")
    port = timeline.node_port(service)
    if port is None:
        raise LookupError(f"Service {app} has no NodePort: requests from this host cannot reach "
                          "it (fix: spec.service.type: NodePort in the WebApp)")
    return lambda: [port]


def docker_target(app: str, namespace: str) -> Callable[[], list[int]]:
    """The ready containers of the twin's app, as Docker lists them now."""
    snapshot = probes.Snapshot(probes.Docker())

    def ports() -> list[int]:
        return [p for c in snapshot.containers(containers.LABEL_APP, app)
                if containers.owned(c.get("Labels"), app, namespace)
                and timeline.container_ready(c) and (p := timeline.loopback_port(c)) is not None]
    return ports


def _line(t: float, tallies: dict[str, timeline.Tally]) -> str:
    parts = [f"{engine} {t_.ok:>3} ok {t_.failed:>3} failed ({' '.join(t_.versions) or '-'})"
             for engine, t_ in tallies.items()]
    return f"{t:5.0f} s   " + "   ".join(parts)


def run(app: str, namespace: str, *, seconds: float, rate: float, engines: Sequence[str],
        during: Sequence[str], kubeconfig: Path | None, say: Callable[[str], None] = print,
        path: str = "/") -> int:
    targets: dict[str, Callable[[], list[int]]] = {}
    if KUBERNETES in engines:
        assert kubeconfig is not None
        targets[KUBERNETES] = kube_target(app, namespace, kubeconfig)
    if DOCKER in engines:
        targets[DOCKER] = docker_target(app, namespace)
    began = time.monotonic()

    def clock() -> float:
        return time.monotonic() - began
    senders = {e: probes.Traffic(target, clock, rate=rate, path=path)
               for e, target in targets.items()}
    say(f"traffic: {rate:g} requests/s to {app}{path if path != '/' else ''} ({namespace}) on "
        f"{', '.join(senders)} for {seconds:g} s, to 127.0.0.1 only")
    for sender in senders.values():
        sender.start()
    failed_commands: list[str] = []
    runner = threading.Thread(target=_commands, args=(during, failed_commands, say),
                              daemon=True)
    if during:
        time.sleep(START_AFTER)
        runner.start()
    shown = 0
    try:
        while clock() < seconds or runner.is_alive():
            time.sleep(0.25)
            if int(clock()) > shown:
                lo, hi = shown, int(clock())
                shown = hi
                say(_line(hi, {e: timeline.tally(s.requests, since=lo, until=hi)
                               for e, s in senders.items()}))
    except KeyboardInterrupt:
        say("traffic: interrupted")
    finally:
        for sender in senders.values():
            sender.stop()
    total = {e: timeline.tally(s.requests) for e, s in senders.items()}
    record = {"app": app, "namespace": namespace, "finished": time.time(),
              "seconds": round(clock(), 1), "rate": rate, "path": path, "during": list(during),
              "failed_commands": failed_commands,
              "engines": {e: t._asdict() for e, t in total.items()}}
    kept = record_path(app, namespace)
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps(record, indent=1) + "\n")
    for engine, t in total.items():
        say(f"traffic: {engine}: {t.failed} of {t.ok + t.failed} requests failed; versions "
            f"answering: {', '.join(f'{v} ({n})' for v, n in t.versions.items()) or 'none'}")
    say(f"traffic: kept in {kept}")
    return 1 if failed_commands else 0


def _commands(during: Sequence[str], failed: list[str], say: Callable[[str], None]) -> None:
    for command in during:
        say(f"traffic: $ {command}")
        done = subprocess.run(["bash", "-c", command], check=False, stdout=sys.stdout,
                              stderr=sys.stderr)
        if done.returncode != 0:
            failed.append(command)
            say(f"traffic: that command failed (exit {done.returncode})")


def forget(app: str, namespace: str) -> bool:
    """Remove the kept summary (an exercise's reset); False when there was none."""
    path = record_path(app, namespace)
    existed = path.is_file()
    path.unlink(missing_ok=True)
    return existed
