"""The apiserver throttles the operator (API Priority and Fairness) while 200 WebApps arrive.

A cluster of its own, whose apiserver serves 75 requests at once (``--max-requests-inflight``
50 + 25 mutating, API Priority and Fairness on as on every cluster of the kit), and on it a
PriorityLevelConfiguration with the smallest share there is (one nominal concurrency share of
about 250: a single seat, nothing lent, excess requests rejected rather than queued) and a
FlowSchema that puts the operator's ServiceAccount, and it alone, there: the apiserver answers
its excess requests with 429 and a Retry-After. The operator must wait at least that long
before it tries a key again (no hot loop), converge, and then stay quiet.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconcile_lab.faults import flowcontrol
from tests import cases
from tests.conftest import Cluster, Operator, quiet_after_ready, wait_for
from tests.integration.proxying import own_cluster
from tests.integration.test_ordinary_use import scoped_kubeconfig

pytestmark = [pytest.mark.cluster, pytest.mark.chaos, pytest.mark.slow, pytest.mark.simulated]
APPS = 200
ACCOUNT = "throttled-operator"
LEVEL = "reconcile-lab-throttled"
BOUND = 450.0  # seconds for 200 WebApps through one seat, nothing borrowed
WRITES_PER_APP = 15  # Deployment, Service, status and their 429s; a hot loop makes hundreds


@pytest.fixture
def small(test_state: Path) -> Iterator[Cluster]:
    with own_cluster(test_state / "throttling", "throttling", {
            "max-requests-inflight": "50", "max-mutating-requests-inflight": "25"}) as c:
        yield c


def _first_failures(log: str) -> list[dict[str, Any]]:
    """The first "reconcile failed; retrying" line of each key whose error is a 429."""
    found = []
    for line in log.splitlines():
        if '"reconcile failed; retrying"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if re.search(r"\b429\b|too many requests", str(entry.get("error", "")), re.IGNORECASE):
            found.append(entry)
    return found


def test_throttled_by_the_apiserver_it_waits_as_asked_converges_and_stays_quiet(
        small: Cluster, tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    cluster, namespace = small, "burst"
    cluster.kubectl("create", "namespace", namespace)
    cluster.simulate_pods_in(namespace)
    kubeconfig = scoped_kubeconfig(cluster, namespace, ACCOUNT, tmp_path / "operator.kubeconfig")
    control = flowcontrol.throttle(LEVEL, account=ACCOUNT, namespace=namespace, shares=1)
    cluster.apply("---\n".join(yaml.safe_dump(d) for d in control))
    scoped = Operator(cluster, tmp_path / "throttled.log", "--namespace", namespace,
                      kubeconfig=kubeconfig)
    audit = cluster.audit()
    try:
        scoped.start()
        mark = audit.mark()
        started = time.monotonic()
        names = [f"burst-{i:03d}" for i in range(APPS)]
        cluster.apply("---\n".join(yaml.safe_dump(cases.webapp(n, namespace, replicas=1))
                                   for n in names))

        def converged() -> bool:
            made = {(d["kind"], d["metadata"]["name"]) for kind in ("deployments", "services")
                    for d in cluster.list(kind, namespace)}
            ready = [w for w in cluster.list("webapps", namespace)
                     if any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in (w.get("status") or {}).get("conditions", []))]
            return len(made) == 2 * APPS and len(ready) == APPS

        wait_for(converged, timeout=BOUND + 120, interval=2,
                 what=f"{APPS} WebApps made and Ready under the throttle")
        took = time.monotonic() - started
        throttled = scoped.metric("reconcile_lab_api_errors_total", code="429")
        attempts = audit.writes(since=mark, namespace=namespace, succeeded=False)
        refused = [w for w in attempts if w.code == 429]
        after = quiet_after_ready(cluster, namespace)
        first = _first_failures(scoped.log.read_text(errors="replace"))

        record_property("webapps", APPS)
        record_property("converged_s", round(took, 1))
        record_property("answered_429", int(throttled))
        record_property("write_attempts", len(attempts))
        record_property("writes_refused_429", len(refused))
        record_property("writes_in_30s_after", len(after))
        assert throttled > 0, "no 429 reached the operator: the drill throttled nothing"
        # Refused by its priority level, not by a limit every client shares.
        refused_by_level = flowcontrol.rejected(cluster.kubectl("get", "--raw", "/metrics").stdout,
                                                LEVEL)
        assert refused_by_level > 0, "the apiserver's priority level refused nothing"
        assert took < BOUND, took
        # Retry-After honoured: the first retry of a key is its 0.5 s back-off unless the
        # apiserver asked for more (API Priority and Fairness asks for whole seconds).
        assert first and all(e["retry_in"] >= 1.0 for e in first), first[:3]
        assert len(attempts) <= WRITES_PER_APP * APPS, len(attempts)  # no hot loop
        assert after == [], after[:5]  # converged, then nothing to do
        assert scoped.proc is not None and scoped.proc.poll() is None, "the operator exited"
    finally:
        scoped.kill()
