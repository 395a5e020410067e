"""The operator's permissions taken away while changes wait (30 s, and longer than kopf's own
retries last), then given back.

The operator runs under a ServiceAccount of its own, bound by a RoleBinding in the one
namespace it serves. The binding is deleted, changes are made meanwhile, and it comes back:
the operator must keep running (no restart), say what is wrong without a flood, and converge
once it may again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconcile_lab.declarative import cache, controlling, handlers, permissions
from tests import cases
from tests.conftest import Cluster, Operator, denials, quiet_after_ready, wait_for
from tests.integration.test_ordinary_use import (
    _events,
    _ready,
    _token_kubeconfig,
    scoped_kubeconfig,
    webapps_ready,
)

pytestmark = [pytest.mark.cluster, pytest.mark.chaos, pytest.mark.slow]
REVOKED_FOR = 30.0


def test_permissions_revoked_for_30s_then_restored_it_resumes_without_a_restart(
        cluster: Cluster, operator: Operator, namespace: str, tmp_path: Path,
        record_property: Callable[[str, object], None]) -> None:
    _revoke_then_restore(cluster, operator, namespace, tmp_path, record_property, REVOKED_FOR)


@pytest.mark.timeout(600)
def test_permissions_revoked_for_longer_than_kopf_retries_it_keeps_trying_and_says_it_once(
        cluster: Cluster, operator: Operator, namespace: str, tmp_path: Path,
        record_property: Callable[[str, object], None]) -> None:
    """Longer than kopf's own retries of a refused request last (54 s: 1+1+2+3+5+8+13+21,
    then it gives up), and long enough for each watch to be opened again a few times (every
    WATCH_INACTIVITY_TIMEOUT): still running, and still one line per refused watch."""
    _revoke_then_restore(cluster, operator, namespace, tmp_path, record_property,
                         sum(handlers.KOPF_RETRIES) + 36)


def _revoke_then_restore(cluster: Cluster, operator: Operator, namespace: str, tmp_path: Path,
                         record_property: Callable[[str, object], None],
                         revoked_for: float) -> None:
    cluster.simulate_pods_in(namespace)
    account = "revoked-operator"
    rbac = permissions.namespaced_rbac(namespace, account=account, account_namespace=namespace)
    binding = next(d for d in rbac if d["kind"] == "RoleBinding")
    cluster.apply("---\n".join(yaml.safe_dump(d) for d in rbac))
    token = cluster.kubectl("create", "token", account, "-n", namespace,
                            "--duration=1h").stdout.strip()
    kubeconfig = _token_kubeconfig(cluster, token, tmp_path / "operator.kubeconfig")
    operator.kill()  # the session's operator serves every namespace: out of the way
    scoped = Operator(cluster, tmp_path / "scoped.log", "--namespace", namespace,
                      kubeconfig=kubeconfig, env={"RECONCILE_LAB_RESYNC_SECONDS": "5"})
    try:
        scoped.start()
        webapps_ready(cluster, namespace, 3)
        before = len(scoped.log.read_text(errors="replace").splitlines())

        cluster.kubectl("delete", "rolebinding", "-n", namespace, binding["metadata"]["name"])
        revoked = time.monotonic()
        time.sleep(2)
        cluster.apply(cases.webapp("late", namespace))
        cluster.kubectl("scale", "-n", namespace, "webapp/app-0", "--replicas=2")
        cluster.kubectl("delete", "deployment", "-n", namespace, "app-1")
        time.sleep(max(0.0, revoked_for - (time.monotonic() - revoked)))
        assert scoped.proc is not None and scoped.proc.poll() is None, "the operator exited"
        cluster.apply(binding)
        restored = time.monotonic()

        _ready(cluster, "late", namespace, timeout=120)
        wait_for(lambda: (cluster.get("deployment", "app-0", namespace) or {}).get(
            "spec", {}).get("replicas") == 2, timeout=60, what="the scale to be applied")
        wait_for(lambda: cluster.get("deployment", "app-1", namespace), timeout=60,
                 what="the deleted Deployment to be made again")
        converged = time.monotonic() - restored
        assert scoped.proc.poll() is None, "the operator exited"
        # Not a word on the WebApps (the status is refused too), but counted.
        assert scoped.metric("reconcile_lab_api_errors_total", code="403") > 0
        lines = scoped.log.read_text(errors="replace").splitlines()[before:]
        denied = [line for line in denials("\n".join(lines)) if '"level": "debug"' not in line]
        record_property("converged_after_restore_s", round(converged, 2))
        record_property("denied_log_lines", len(denied))
        # Bounded by the longest retry back-off (30 s ± 20 %): a key waits for its next retry.
        assert converged < controlling.RETRY_DELAYS[-1] * 1.2 + 10, converged
        # One line per failing WebApp, one for the resync and one per watched kind (kopf opens
        # each watch again after WATCH_INACTIVITY_TIMEOUT, and is refused), not one per retry.
        assert len(denied) <= 3 + 1 + len(cache.KINDS), "\n".join(denied)
        assert sum('"reconcile succeeded again"' in line for line in lines) == 3
        writes = quiet_after_ready(cluster, namespace)
        record_property("writes_in_30s_after", len(writes))
        assert writes == [], writes[:5]
    finally:
        scoped.kill()
        operator.start()


def _condition(cluster: Cluster, name: str, namespace: str, kind: str) -> dict[str, Any]:
    webapp = cluster.get("webapp", name, namespace) or {}
    return next((c for c in (webapp.get("status") or {}).get("conditions", [])
                 if c["type"] == kind), {})


def test_a_child_it_may_not_write_makes_the_webapp_degraded_forbidden_and_is_counted(
        cluster: Cluster, operator: Operator, namespace: str, tmp_path: Path) -> None:
    """Its Role lost the writing of Deployments alone: the operator still writes the status
    and posts Events, so the WebApp says what is wrong and what fixes it."""
    cluster.simulate_pods_in(namespace)
    account = "half-operator"
    kubeconfig = scoped_kubeconfig(cluster, namespace, account, tmp_path / "operator.kubeconfig")
    role = next(d for d in permissions.namespaced_rbac(
        namespace, account=account, account_namespace=namespace) if d["kind"] == "Role")
    # Reading stays allowed: kopf stops the operator when a watch's LIST is refused for long.
    without = {**role, "rules": [
        {**r, "verbs": ["get", "list", "watch"]} if "deployments" in r.get("resources", [])
        else r for r in role["rules"]]}
    assert without != role
    cluster.kubectl("replace", "-f", "-", input=yaml.safe_dump(without))
    operator.kill()
    scoped = Operator(cluster, tmp_path / "scoped.log", "--namespace", namespace,
                      kubeconfig=kubeconfig)
    try:
        scoped.start()
        cluster.apply(cases.webapp("refused", namespace))
        degraded = wait_for(lambda: (c := _condition(cluster, "refused", namespace,
                                                     "Degraded")).get("reason") == "Forbidden"
                            and c, timeout=60, what="Degraded=True/Forbidden")
        assert degraded["status"] == "True"
        assert "may not write Deployment refused" in degraded["message"]
        assert f"reconcile-lab operator rbac --namespace {namespace}" in degraded["message"]
        assert _events(cluster, namespace, "Forbidden"), "no Warning Event"
        assert scoped.metric("reconcile_lab_api_errors_total", code="403") > 0

        cluster.kubectl("replace", "-f", "-", input=yaml.safe_dump(role))
        _ready(cluster, "refused", namespace, timeout=120)
        assert _condition(cluster, "refused", namespace, "Degraded").get("status") == "False"
    finally:
        scoped.kill()
        operator.start()
