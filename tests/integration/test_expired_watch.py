"""The operator frozen (SIGSTOP) for longer than the apiserver keeps its watch history, while
changes happen, then thawed: its watches come back to a resourceVersion that is gone (410),
list everything again, and must miss none of the changes.

A cluster of its own: its apiserver serves watches from etcd (no watch cache) and compacts
etcd's history every few seconds, where the kit's cluster keeps minutes of it. The fault proxy
resets the frozen operator's connections, as a long pause does (an apiserver that times the
watch out, a load balancer that drops it), so that each watch must be opened again from its
old resourceVersion.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import cases
from tests.conftest import Cluster, Operator, quiet_after_ready, wait_for
from tests.integration.proxying import fault_proxy, own_cluster
from tests.integration.test_ordinary_use import _ready, webapps_ready

pytestmark = [pytest.mark.chaos, pytest.mark.slow]
COMPACTION = "5s"  # kube-apiserver --etcd-compaction-interval
STOPPED_FOR = 30.0
RESYNC = 5.0
# After the thaw: the watches list again at once; a deletion no list reports waits for the
# resync; and a margin for the work on 2 shared cores.
BOUND = RESYNC + 15


@pytest.fixture
def compacting(test_state: Path) -> Iterator[Cluster]:
    with own_cluster(test_state / "compacting", "compacting", {
            "etcd-compaction-interval": COMPACTION, "watch-cache": "false"}) as c:
        yield c


def test_frozen_past_the_watch_history_it_lists_again_and_misses_nothing(
        compacting: Cluster, tmp_path: Path,
        record_property: Callable[[str, object], None]) -> None:
    cluster, ns = compacting, "expiry"
    cluster.kubectl("create", "namespace", ns)
    cluster.simulate_pods_in(ns)
    with fault_proxy(cluster.kubeconfig, tmp_path / "proxy.log") as proxy:
        op = Operator(cluster, tmp_path / "operator.log", "--namespace", ns, "--verbose",
                      kubeconfig=proxy.kubeconfig,
                      env={"RECONCILE_LAB_RESYNC_SECONDS": str(RESYNC)})
        try:
            op.start()
            webapps_ready(cluster, ns, 3)
            assert op.proc is not None
            os.killpg(op.proc.pid, signal.SIGSTOP)
            stopped = time.monotonic()
            try:
                proxy.status("cut")  # its connections go while it sleeps
                proxy.status("heal")
                cluster.kubectl("scale", "-n", ns, "webapp/app-0", "--replicas=3")
                cluster.kubectl("delete", "deployment", "-n", ns, "app-1", "--wait=false")
                cluster.kubectl("delete", "webapp", "-n", ns, "app-2", "--wait=false")
                cluster.apply(cases.webapp("late", ns))
                for i in range(20):  # history for the compaction to take away
                    cluster.apply(cases.webapp("churn", ns, replicas=i % 3 + 1))
                cluster.kubectl("delete", "webapp", "-n", ns, "churn", "--wait=false")
                time.sleep(max(0.0, STOPPED_FOR - (time.monotonic() - stopped)))
            finally:
                os.killpg(op.proc.pid, signal.SIGCONT)
            audit = cluster.audit()
            thawed, mark = time.monotonic(), audit.mark()

            def caught_up() -> bool:
                d0 = cluster.get("deployment", "app-0", ns) or {}
                names = {d["metadata"]["name"] for d in cluster.list("deployments", ns)}
                return (d0.get("spec", {}).get("replicas") == 3 and "app-1" in names
                        and "late" in names and "app-2" not in names and "churn" not in names)

            wait_for(caught_up, timeout=BOUND + 60, interval=0.5,
                     what="every change made while it was frozen")
            caught = time.monotonic() - thawed
            # The relisted watch says nothing of app-2: the resync's LIST finds it gone, and
            # the operator forgets it (its store held app-0..2 before; now app-0, app-1, late).
            wait_for(lambda: op.metric("reconcile_lab_state_entries", table="webapps") == 3,
                     timeout=RESYNC * 2 + 10, what="the WebApp deleted unseen to be forgotten")
            _ready(cluster, "late", ns, timeout=30)
            quiet = quiet_after_ready(cluster, ns)
            log = op.log.read_text(errors="replace")
            relisted = log.count("Restarting the watch-stream")
            gone = [w for w in audit.writes(since=mark, namespace=ns)
                    if w.name in ("app-2", "churn") and w.resource in ("deployments", "services")]
            record_property("frozen_s", round(thawed - stopped, 1))
            record_property("watches_relisted_after_410", relisted)
            record_property("caught_up_after_thaw_s", round(caught, 2))
            assert relisted >= 1, "no watch came back to a 410: the drill tested nothing"
            assert caught < BOUND, caught
            assert gone == [], gone
            record_property("writes_in_30s_after", len(quiet))
            assert quiet == [], quiet[:5]
            assert op.proc.poll() is None and op.healthy()
        finally:
            op.kill()
