"""The operator cut off from the apiserver for 30 s while a change is in flight, then healed.

Only the operator's path is cut (the fault proxy): the apiserver, the controllers and kubectl
work on, so the world moves while the operator cannot see it or write to it. Once healed it
must converge by itself, then stay still: no write, nothing lost, duplicated or adopted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconcile_lab.declarative import controlling
from tests import cases
from tests.conftest import Cluster, Operator, quiet_after_ready, wait_for
from tests.integration.proxying import operator_behind_proxy

pytestmark = [pytest.mark.cluster, pytest.mark.chaos, pytest.mark.slow, pytest.mark.simulated]
CUT_FOR = 30.0
# After the heal: the longest retry back-off a key can be waiting in (30 s ± 20 %), and a
# margin for the watches to list again and 22 WebApps to be reconciled on 2 shared cores.
BOUND = controlling.RETRY_DELAYS[-1] * 1.2 + 15


def _converged(cluster: Cluster, namespace: str, want: dict[str, int]) -> bool:
    webapps = {w["metadata"]["name"]: w for w in cluster.list("webapps", namespace)}
    deployments = {d["metadata"]["name"]: d for d in cluster.list("deployments", namespace)}
    services = {s["metadata"]["name"] for s in cluster.list("services", namespace)}
    if set(webapps) != set(want) or set(deployments) != set(want) or services != set(want):
        return False
    for name, replicas in want.items():
        status = webapps[name].get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True"
                    for c in status.get("conditions", []))
        if not ready or status.get("observedGeneration") != webapps[name]["metadata"][
                "generation"] or deployments[name]["spec"]["replicas"] != replicas:
            return False
    return True


def _owners(items: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {i["metadata"]["name"]: [r["uid"] for r in i["metadata"].get("ownerReferences", [])
                                    if r.get("controller")] for i in items}


def test_cut_off_for_30s_mid_change_it_converges_after_the_heal_and_then_writes_nothing(
        cluster: Cluster, operator: Operator, namespace: str, tmp_path: Path,
        record_property: Callable[[str, object], None]) -> None:
    cluster.simulate_pods_in(namespace)
    first = [f"app-{i:02d}" for i in range(20)]
    with operator_behind_proxy(cluster, operator, namespace, tmp_path,
                               RECONCILE_LAB_RESYNC_SECONDS="5") as (scoped, proxy):
        cluster.apply("---\n".join(yaml.safe_dump(cases.webapp(n, namespace)) for n in first))
        wait_for(lambda: _converged(cluster, namespace, dict.fromkeys(first, 1)), timeout=120,
                 interval=1, what="20 WebApps Ready")

        # The change: 20 scaled and 5 created, the cut landing while the operator is at it;
        # then, while it is cut off, 3 deleted and a child gone: the world moves on.
        new, gone = [f"new-{i}" for i in range(5)], first[:3]
        cluster.apply("---\n".join(yaml.safe_dump(cases.webapp(n, namespace, replicas=2))
                                   for n in first + new))
        proxy.status("cut")
        cut = time.monotonic()
        deployments = {d["metadata"]["name"]: d for d in cluster.list("deployments", namespace)}
        in_flight = sum(deployments.get(n, {}).get("spec", {}).get("replicas") != 2
                        for n in first + new)
        cluster.kubectl("delete", "webapps", "-n", namespace, *gone, "--wait=false")
        cluster.kubectl("delete", "service", "-n", namespace, "app-10", "--wait=false")
        time.sleep(max(0.0, CUT_FOR - (time.monotonic() - cut)))
        assert scoped.proc is not None and scoped.proc.poll() is None, "the operator exited"
        reset = proxy.status()
        audit = cluster.audit()
        at_heal = audit.mark()
        proxy.switch("heal")
        healed = time.monotonic()

        want = dict.fromkeys([n for n in first if n not in gone] + new, 2)
        wait_for(lambda: _converged(cluster, namespace, want), timeout=BOUND + 60, interval=0.5,
                 what="every WebApp converged after the heal")
        converged = time.monotonic() - healed
        writes = quiet_after_ready(cluster, namespace)
        assert _converged(cluster, namespace, want), "it drifted away after converging"
        assert scoped.proc.poll() is None and scoped.healthy(), "the operator exited"

        record_property("in_flight_at_cut", in_flight)
        record_property("connections_reset", reset["reset_total"] + reset["refused_total"])
        record_property("converged_after_heal_s", round(converged, 2))
        record_property("writes_while_steady", len(writes))
        assert converged < BOUND, converged
        assert writes == [], writes
        # A WebApp deleted while the operator was cut off gets no child made again from the
        # stale cache (the garbage collector would only take it away again).
        resurrected = [w for w in audit.writes(since=at_heal, namespace=namespace)
                       if w.name in gone and w.resource in ("deployments", "services")]
        assert resurrected == [], resurrected
        # Nothing lost (the 22 are there), nothing duplicated, nothing adopted: every child is
        # controlled by its own WebApp, and each Deployment was changed only by the scale.
        uids = {w["metadata"]["name"]: w["metadata"]["uid"]
                for w in cluster.list("webapps", namespace)}
        for items in (cluster.list("deployments", namespace), cluster.list("services", namespace)):
            assert _owners(items) == {n: [uids[n]] for n in want}
        generations = {d["metadata"]["name"]: d["metadata"]["generation"]
                       for d in cluster.list("deployments", namespace)}
        assert generations == {n: 1 if n in new else 2 for n in want}
        replica_sets = [r["metadata"]["ownerReferences"][0]["name"]
                        for r in cluster.list("replicasets", namespace)]
        assert sorted(replica_sets) == sorted(want), "a spurious rollout"
