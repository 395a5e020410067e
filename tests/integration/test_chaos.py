"""Fault drills against real components: the operator killed mid-work, the apiserver and etcd
restarted under it, the Docker engine restarted under the twin's watch loop.

Marked ``chaos``: they break what other tests share, so `make test-chaos` runs them on their own.
Each records its figures (``record_property``); `make reliability` runs them and writes them to
docs/data/reliability.json and the table in docs/reliability.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconcile_lab.cluster import dockerd, kwok
from tests import cases
from tests.conftest import Cluster, Operator, free_port, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


def _all_ready(cluster: Cluster, namespace: str, expected: int) -> bool:
    items = cluster.list("webapps", namespace)
    return len(items) == expected and all(
        any(c["type"] == "Ready" and c["status"] == "True"
            for c in w.get("status", {}).get("conditions", [])) for w in items)


@pytest.mark.cluster
@pytest.mark.simulated
def test_sigkill_while_converging_200_webapps_loses_and_duplicates_nothing(
        cluster: Cluster, operator: Operator, namespace: str,
        record_property: Callable[[str, object], None]) -> None:
    names = [f"w-{i:03d}" for i in range(200)]
    operator.kill(signal.SIGKILL)  # let the work pile up, so that the kill lands in its middle
    cluster.apply("---\n".join(yaml.safe_dump(cases.webapp(n, namespace)) for n in names))
    operator.start()
    wait_for(lambda: len(cluster.list("deployments", namespace)) >= 10, timeout=120,
             interval=0.02, what="the operator to be into the work")
    operator.kill(signal.SIGKILL)
    done_at_kill = len(cluster.list("deployments", namespace))
    operator.start()
    started = time.monotonic()
    wait_for(lambda: _all_ready(cluster, namespace, len(names)), timeout=300, interval=1,
             what="all 200 WebApps Ready after the restart")
    record_property("webapps", len(names))
    record_property("deployments_at_kill", done_at_kill)
    record_property("ready_after_restart_s", round(time.monotonic() - started, 2))
    deployments = cluster.list("deployments", namespace)
    services = cluster.list("services", namespace)
    assert sorted(d["metadata"]["name"] for d in deployments) == names  # none missing, none extra
    assert sorted(s["metadata"]["name"] for s in services) == names
    webapp_uids = {w["metadata"]["uid"] for w in cluster.list("webapps", namespace)}
    for child in deployments + services:  # no orphan: every child owned by a live WebApp
        refs = child["metadata"]["ownerReferences"]
        assert len(refs) == 1 and refs[0]["uid"] in webapp_uids
    assert all(d["metadata"]["generation"] == 1 for d in deployments)  # nothing applied twice


@pytest.mark.cluster
@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_the_operator_recovers_by_itself_when_the_control_plane_restarts(
        cluster: Cluster, operator: Operator, namespace: str, component: str,
        record_property: Callable[[str, object], None]) -> None:
    cluster.apply(cases.webapp("steady", namespace, replicas=1))
    wait_for(lambda: _all_ready(cluster, namespace, 1), timeout=60, what="Ready")
    down = kwok.restart(component, down_for=3.0)
    back = time.monotonic()
    wait_for(lambda: cluster.kubectl("get", "--raw", "/readyz", check=False).returncode == 0,
             timeout=120, interval=0.2, what=f"{component} to serve again")
    serving = time.monotonic() - back
    # Changes made as soon as the API answers are applied without anyone restarting anything.
    cluster.kubectl("scale", "-n", namespace, "webapp/steady", "--replicas=3")
    cluster.kubectl("delete", "-n", namespace, "service", "steady", "--wait=false")
    changed = time.monotonic()
    wait_for(lambda: (cluster.get("deployment", "steady", namespace) or {})
             .get("spec", {}).get("replicas") == 3
             and cluster.get("service", "steady", namespace) is not None,
             timeout=120, interval=0.1, what="the operator to apply changes after the restart")
    recovered = time.monotonic() - changed
    record_property("down_s", round(down, 2))
    record_property("api_ready_s", round(serving, 2))
    record_property("changes_applied_s", round(recovered, 2))
    assert operator.healthy()
    assert operator.proc is not None and operator.proc.poll() is None  # no crash, no restart


@pytest.fixture
def twin_watch(docker_engine: Any,
               tmp_path: Path) -> Iterator[tuple[str, Path, int, subprocess.Popen[bytes]]]:
    name = f"chaos-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(cases.webapp(name, replicas=2,
                                                healthCheck={"path": "/healthz",
                                                             "periodSeconds": 1})))
    log = tmp_path / "watch.log"
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "reconcile_lab", "docker", "apply", "-f",
                                 str(path), "--watch", "--interval", "1", "--metrics-port",
                                 str(port), "--log-format", "json"],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    yield name, log, port, proc
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)
    dockerd.ensure(progress=print)
    subprocess.run([sys.executable, "-m", "reconcile_lab", "docker", "delete", name],
                   capture_output=True, check=False)


def _running(name: str) -> int:
    out = subprocess.run(["docker", "ps", "-q", "--filter", f"label=reconcile-lab/app={name}",
                          "--filter", "health=healthy"], capture_output=True, text=True,
                         check=False).stdout
    return len(out.split())


@pytest.mark.docker
def test_the_watch_loop_survives_a_docker_engine_restart(
        twin_watch: tuple[str, Path, int, subprocess.Popen[bytes]],
        record_property: Callable[[str, object], None]) -> None:
    name, log, port, proc = twin_watch
    dockerd.own_daemon()  # refuses, with the reason, when the engine is not the kit's own
    wait_for(lambda: _running(name) == 2, timeout=60, what="2 healthy containers")
    # Only the engine the kit started itself: a user's engine (and their containers) is not the
    # drill's to stop. dockerd.stop refuses one with an error, so the drill fails loudly
    # instead of passing without having restarted anything.
    dockerd.stop(progress=print)  # containers without a restart policy stop with the engine
    time.sleep(4)  # a few polls against a dead engine
    assert proc.poll() is None, "the watch loop died with the engine"
    during = log.read_text(errors="replace")
    dockerd.ensure(progress=print)
    back = time.monotonic()
    wait_for(lambda: _running(name) == 2, timeout=90, interval=0.5,
             what="the watch loop to bring both containers back")
    record_property("healthy_again_s", round(time.monotonic() - back, 2))
    assert "docker" in during.lower() and ("engine" in during.lower() or "socket" in during)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert b'reconcile_lab_ready_replicas{app="' in r.read()
