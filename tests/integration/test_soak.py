"""Ten minutes of churn: 200 WebApps created, scaled and deleted in a loop.

What a long-running controller must not do is keep something of every object it ever saw. The
operator's resident memory is sampled at the same point of every round (all WebApps gone), its
slope over the rounds stated, and what it keeps per WebApp (``reconcile_lab_state_entries``)
must be back at 0 once the last round's WebApps are gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests import cases
from tests.conftest import Cluster, Operator, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.chaos, pytest.mark.slow]

APPS = 200
SOAK_SECONDS = 600.0
GROWTH_BELOW_MB = 20.0  # from the first round's end to the last's: flat, with room for noise


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB), in MB per minute."""
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(m for _, m in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return 60 * sum((t - mx) * (m - my) for t, m in points) / var if var else 0.0


@pytest.mark.timeout(SOAK_SECONDS + 900)  # the churn itself, then its last round and clean-up
def test_ten_minutes_of_churn_leave_memory_flat_and_nothing_kept(
        cluster: Cluster, operator: Operator, namespace: str,
        record_property: Callable[[str, object], None]) -> None:
    cluster.simulate_pods_in(namespace)
    assert operator.proc is not None
    pid = operator.proc.pid
    names = [f"churn-{i:03d}" for i in range(APPS)]
    manifest = "---\n".join(yaml.safe_dump(cases.webapp(n, namespace, replicas=0)) for n in names)
    started = time.monotonic()
    ends: list[tuple[float, float]] = []
    while time.monotonic() - started < SOAK_SECONDS:
        cluster.apply(manifest)
        wait_for(lambda: len(cluster.list("deployments", namespace)) == APPS, timeout=300,
                 interval=1, what=f"{APPS} Deployments")
        cluster.kubectl("scale", "webapp", "--all", "-n", namespace, "--replicas=1")
        wait_for(lambda: all(d["spec"]["replicas"] == 1
                             for d in cluster.list("deployments", namespace)),
                 timeout=300, interval=1, what="every Deployment scaled to 1")
        cluster.kubectl("delete", "webapps", "--all", "-n", namespace, "--wait=false")
        wait_for(lambda: not cluster.list("deployments", namespace)
                 and not cluster.list("webapps", namespace), timeout=300, interval=1,
                 what="every WebApp and its Deployment gone")
        ends.append((time.monotonic() - started, _rss_mb(pid)))
    wait_for(lambda: operator.metric("reconcile_lab_state_entries") == 0, timeout=60,
             what="the operator to keep nothing per WebApp")
    slope = _slope(ends[1:]) if len(ends) > 2 else 0.0
    record_property("rounds", len(ends))
    record_property("minutes", round((time.monotonic() - started) / 60, 1))
    record_property("rss_first_round_mb", round(ends[0][1], 1))
    record_property("rss_last_round_mb", round(ends[-1][1], 1))
    record_property("rss_slope_mb_per_min", round(slope, 2))
    assert len(ends) >= 3, f"only {len(ends)} rounds in {SOAK_SECONDS:.0f} s"
    assert ends[-1][1] - ends[0][1] < GROWTH_BELOW_MB, ends
    assert operator.proc.poll() is None
