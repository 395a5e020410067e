"""The operator's connections to the apiserver go silent (the fault proxy's stall): no event,
no error, the apiserver and everyone else working on. A child deleted and a WebApp scaled
meanwhile must be seen within the bound its timeouts make: kopf's watch inactivity timeout
for the watch to be opened again, the client's read timeout for a request on a silent
kept-alive connection, and the first retry."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconcile_lab.declarative import controlling, handlers, kube
from tests import cases
from tests.conftest import Cluster, Operator, quiet_after_ready, wait_for
from tests.integration.proxying import operator_behind_proxy
from tests.integration.test_ordinary_use import _ready

pytestmark = [pytest.mark.cluster, pytest.mark.chaos, pytest.mark.slow, pytest.mark.simulated]
# The slowest path: every watch silent for up to the inactivity timeout, then the first write
# on a silent kept-alive connection waits out the read timeout, then a retry (0.5 s ± 20 %)
# on a fresh one; and 10 s for the work itself on 2 shared cores.
BOUND = (handlers.WATCH_INACTIVITY_TIMEOUT + kube.REQUEST_TIMEOUT[1]
         + controlling.RETRY_DELAYS[0] * 1.2 + 10)


def test_a_silent_connection_blinds_the_operator_for_a_bounded_time(
        cluster: Cluster, operator: Operator, namespace: str, tmp_path: Path,
        record_property: Callable[[str, object], None]) -> None:
    cluster.simulate_pods_in(namespace)
    with operator_behind_proxy(cluster, operator, namespace, tmp_path) as (scoped, proxy):
        for name in ("app-0", "app-1"):
            cluster.apply(cases.webapp(name, namespace))
        for name in ("app-0", "app-1"):
            _ready(cluster, name, namespace, timeout=60)

        stalled = proxy.status("stall")
        started = time.monotonic()
        cluster.kubectl("delete", "deployment", "-n", namespace, "app-0", "--wait=false")
        cluster.kubectl("scale", "-n", namespace, "webapp/app-1", "--replicas=3")
        seen: dict[str, float] = {}

        def caught_up() -> bool:
            if "repaired" not in seen and cluster.get("deployment", "app-0", namespace):
                seen["repaired"] = time.monotonic() - started
            d = cluster.get("deployment", "app-1", namespace) or {}
            if "scaled" not in seen and d.get("spec", {}).get("replicas") == 3:
                seen["scaled"] = time.monotonic() - started
            return len(seen) == 2

        wait_for(caught_up, timeout=BOUND + 90, interval=0.5,
                 what="the operator to see past its silent connections")
        record_property("connections_stalled", stalled["stalled"])
        record_property("child_repaired_s", round(seen["repaired"], 2))
        record_property("scale_applied_s", round(seen["scaled"], 2))
        record_property("bound_s", round(BOUND, 1))
        assert stalled["stalled"] >= 3, stalled  # the three watches at least
        assert scoped.proc is not None and scoped.proc.poll() is None, "the operator exited"
        assert max(seen.values()) < BOUND, (seen, BOUND)
        proxy.switch("heal")
        writes = quiet_after_ready(cluster, namespace)
        record_property("writes_in_30s_after", len(writes))
        assert writes == [], writes[:5]
