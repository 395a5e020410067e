"""Bad input and redundancy against the real apiserver: every valid spec renders children the
apiserver accepts, every invalid one is refused naming its field, and of two operator replicas
only one acts until it dies."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile_lab import parsing, spec
from reconcile_lab.declarative import permissions, render
from tests import cases
from tests.conftest import Cluster, Operator, wait_for

pytestmark = [pytest.mark.cluster]
REPO = Path(__file__).resolve().parents[2]

# --- strategies -------------------------------------------------------------------------------

env_names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,20}\Z")
cpu = st.sampled_from(["10m", "100m", "250m", "0.5", "1", "2", "1500m"])
memory = st.sampled_from(["16Mi", "64Mi", "128Mi", "1Gi", "500M", "2Gi"])


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["limits"] = {"cpu": draw(cpu), "memory": draw(memory)}
    if draw(st.booleans()):
        req = {"cpu": draw(cpu), "memory": draw(memory)}
        if "limits" in out:  # requests ≤ limits, or the spec is (rightly) invalid
            for k in req:
                if spec.parse_quantity(req[k]) > spec.parse_quantity(out["limits"][k]):
                    req[k] = out["limits"][k]
        out["requests"] = req
    return out


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    s: dict[str, Any] = {
        "image": draw(st.sampled_from(["reconcile-lab/hello:v1", "reconcile-lab/hello:v2",
                                       "registry.example:5000/team/app@sha256:" + "a" * 64])),
        "replicas": draw(st.integers(0, 1000)),
        "port": draw(st.integers(1, 65535)),
        "env": [{"name": n, "value": draw(st.text(
                    st.characters(blacklist_categories=("Cc", "Cs")), max_size=40))}
                for n in draw(st.lists(env_names, max_size=5, unique=True))],
        "resources": draw(resources()),
    }
    if draw(st.booleans()):
        s["healthCheck"] = {"path": "/" + draw(st.from_regex(r"\A[a-z0-9/._-]{0,30}\Z")),
                            "initialDelaySeconds": draw(st.integers(0, 3600)),
                            "periodSeconds": draw(st.integers(1, 3600))}
    surge, unavailable = draw(st.integers(0, 100)), draw(st.integers(0, 100))
    s["rollout"] = {"maxSurge": surge or 1, "maxUnavailable": unavailable}
    if draw(st.booleans()):
        s["service"] = {"type": "NodePort", "nodePort": draw(st.integers(30000, 32767))}
    return s


def _dry_run(cluster: Cluster, obj: dict[str, Any],
             server_side: bool = True) -> subprocess.CompletedProcess[str]:
    """Server-side apply sends YAML, whose parser refuses a control character before any field
    is validated; a create sends JSON, which reaches validation."""
    verb = ["apply", "--server-side", "--field-manager=reconcile-lab"] if server_side \
        else ["create"]
    return cluster.kubectl(*verb, "--dry-run=server", "-f", "-", input=json.dumps(obj),
                           check=False)


_SETTINGS = settings(max_examples=15, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])


@_SETTINGS
@given(raw=valid_specs())
def test_every_valid_spec_is_accepted_and_renders_children_the_apiserver_accepts(
        cluster: Cluster, raw: dict[str, Any]) -> None:
    doc = cases.webapp("prop", "default", **raw)
    parsed = parsing.parse_document(doc)
    accepted = _dry_run(cluster, doc)
    assert accepted.returncode == 0, accepted.stderr
    owner = render.Owner("prop", "default", "00000000-0000-0000-0000-000000000000")
    for child in render.children(owner, parsed.spec):
        child["metadata"]["ownerReferences"] = []  # the owner does not exist in a dry run
        result = _dry_run(cluster, child)
        assert result.returncode == 0, f"{child['kind']}: {result.stderr}"


BREAKERS: dict[str, st.SearchStrategy[Any]] = {
    "replicas": st.one_of(st.integers(max_value=-1), st.integers(min_value=1001)),
    "port": st.one_of(st.integers(max_value=0), st.integers(min_value=65536)),
    "image": st.sampled_from(["", "has space", "tab\there", "del\x7fchar", "-leading-dash"]),
    "env": env_names.map(lambda n: [{"name": f"{n}-x", "value": "1"}]),
    "healthCheck": st.integers(max_value=0).map(lambda p: {"periodSeconds": p}),
}


@_SETTINGS
@given(raw=valid_specs(), field=st.sampled_from(sorted(BREAKERS)), data=st.data())
def test_every_invalid_spec_is_refused_by_both_engines_naming_the_field(
        cluster: Cluster, raw: dict[str, Any], field: str, data: st.DataObject) -> None:
    raw[field] = data.draw(BREAKERS[field])
    doc = cases.webapp("prop", "default", **raw)
    with pytest.raises(parsing.InvalidWebApp) as ours:
        parsing.parse_document(doc)
    assert any(p.field.startswith(f"spec.{field}") for p in ours.value.problems)
    theirs = _dry_run(cluster, doc, server_side=False)
    assert theirs.returncode != 0
    assert f"spec.{field}" in theirs.stderr


def test_a_spec_at_the_size_bounds_is_accepted_and_one_beyond_is_refused(
        cluster: Cluster) -> None:
    big = [{"name": f"VAR_{i:03d}", "value": "x" * 4096} for i in range(64)]
    doc = cases.webapp("huge", "default", env=big)
    parsed = parsing.parse_document(doc)
    assert _dry_run(cluster, doc).returncode == 0
    owner = render.Owner("huge", "default", "00000000-0000-0000-0000-000000000000")
    deployment = render.deployment(owner, parsed.spec)
    deployment["metadata"]["ownerReferences"] = []
    assert _dry_run(cluster, deployment).returncode == 0
    too_big = cases.webapp("huge", "default", env=[*big, {"name": "ONE_MORE", "value": "x"}])
    with pytest.raises(parsing.InvalidWebApp, match=r"spec\.env"):
        parsing.parse_document(too_big)
    refused = _dry_run(cluster, too_big)
    assert refused.returncode != 0 and "spec.env" in refused.stderr


def test_no_shell_string_is_composed_anywhere() -> None:
    """User input reaches processes only as argument lists, never through a shell."""
    offenders = []
    for path in (REPO / "operator").rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"shell\s*=\s*True|os\.system\(|os\.popen\(|subprocess\.getoutput",
                         line):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert offenders == []


# --- two replicas -------------------------------------------------------------------------


def _acted(op: Operator) -> int:
    return sum(op.logged(e) for e in ("deployment created", "deployment updated",
                                       "service created", "drift repaired"))


@pytest.fixture
def peered(cluster: Cluster, operator: Operator) -> Iterator[None]:
    """kopf's peering object in place, and the session's standalone operator (which would act
    regardless of peering) out of the way meanwhile."""
    peering = permissions.peering()
    cluster.apply(peering[0])
    cluster.kubectl("wait", "--for=condition=established", "crd/clusterkopfpeerings.kopf.dev")
    cluster.apply(peering[1])
    operator.kill()
    yield
    cluster.kubectl("delete", "-f", "-", input=yaml.safe_dump_all(peering[1:]), check=False)
    operator.start()


def test_of_two_replicas_only_one_acts_and_the_other_takes_over(
        cluster: Cluster, peered: None, namespace: str, tmp_path: Path,
        record_property: Callable[[str, object], None]) -> None:
    active = Operator(cluster, tmp_path / "a.log", "--peering", permissions.PEERING,
                      "--priority", "200")
    standby = Operator(cluster, tmp_path / "b.log", "--peering", permissions.PEERING,
                       "--priority", "100")
    try:
        active.start()
        standby.start()
        time.sleep(2)  # let them see each other
        cluster.apply(cases.webapp("ha", namespace, replicas=2))
        wait_for(lambda: cluster.get("deployment", "ha", namespace), timeout=20,
                 what="the active replica to act")
        time.sleep(1)
        assert _acted(active) >= 1
        record_property("standby_acted_while_active", _acted(standby))
        assert _acted(standby) == 0, "the standby acted while the active one ran"

        active.kill()  # SIGKILL: no goodbye, the standby must notice by itself
        killed = time.monotonic()
        cluster.kubectl("scale", "-n", namespace, "webapp/ha", "--replicas=4")
        wait_for(lambda: (cluster.get("deployment", "ha", namespace) or {})
                 .get("spec", {}).get("replicas") == 4, timeout=60, interval=0.1,
                 what="the standby to take over")
        failover = time.monotonic() - killed
        record_property("failover_s", round(failover, 2))
        # Its log line follows the write the harness already saw: give it a moment.
        wait_for(lambda: _acted(standby) >= 1, timeout=10, what="the standby's own log")
        assert failover < 30
    finally:
        active.kill()
        standby.kill()


def test_a_replica_of_the_same_priority_as_a_live_one_refuses_to_start(
        cluster: Cluster, peered: None, namespace: str, tmp_path: Path,
        record_property: Callable[[str, object], None]) -> None:
    # kopf pauses both of two live peers of equal priority: nothing would act, both healthy.
    first = Operator(cluster, tmp_path / "a.log", "--peering", permissions.PEERING,
                     "--priority", "150")
    second = Operator(cluster, tmp_path / "b.log", "--peering", permissions.PEERING,
                      "--priority", "150")
    try:
        first.start()
        wait_for(lambda: (cluster.get("clusterkopfpeering", permissions.PEERING) or {})
                 .get("status"), timeout=30, what="the first replica's peering record")
        started = time.monotonic()
        second.start(wait=False)
        assert second.proc is not None
        code = second.proc.wait(timeout=90)
        record_property("refused_after_s", round(time.monotonic() - started, 2))
        log = second.log.read_text(errors="replace")
        assert code != 0 and "another replica with priority 150 is alive" in log, log
        assert log.count("another replica with priority 150") <= 3, "a flood, not one line"
        cluster.apply(cases.webapp("still-served", namespace))  # the first one goes on acting
        wait_for(lambda: cluster.get("deployment", "still-served", namespace), timeout=30,
                 what="the first replica to act")
    finally:
        first.kill()
        second.kill()


def _level(line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        return ""
    return str(record.get("level", "")).lower() if isinstance(record, dict) else ""


def test_what_was_deleted_while_the_operator_was_down_leaves_nothing_behind(
        cluster: Cluster, operator: Operator, tmp_path: Path,
        record_property: Callable[[str, object], None]) -> None:
    # A WebApp, and a whole namespace of them, deleted while no operator runs: the operator
    # puts no finalizer on anything, so nothing waits for it, and its start-up finds nothing
    # to complain about.
    doomed, kept = f"t-gone-{uuid.uuid4().hex[:6]}", f"t-kept-{uuid.uuid4().hex[:6]}"
    for ns in (doomed, kept):
        cluster.kubectl("create", "namespace", ns)
        cluster.simulate_pods_in(ns)
    for i in range(5):
        cluster.apply(cases.webapp(f"app-{i}", doomed))
    cluster.apply(cases.webapp("gone", kept))
    cluster.apply(cases.webapp("stays", kept))
    for ns, name in ((doomed, "app-4"), (kept, "gone"), (kept, "stays")):
        cluster.kubectl("wait", "-n", ns, f"webapp/{name}", "--for=condition=Ready",
                        "--timeout=60s", timeout=70)
    operator.kill()
    restarted = Operator(cluster, tmp_path / "after.log")
    try:
        deleted = time.monotonic()
        cluster.kubectl("delete", "-n", kept, "webapp", "gone", "--wait=false")
        cluster.kubectl("delete", "namespace", doomed, "--wait=false")
        wait_for(lambda: cluster.get("namespace", doomed) is None and
                 cluster.get("webapp", "gone", kept) is None, timeout=90, interval=0.5,
                 what="the deletions to finish with no operator running")
        record_property("namespace_gone_s", round(time.monotonic() - deleted, 2))
        assert cluster.get("deployment", "gone", kept) is None or wait_for(
            lambda: cluster.get("deployment", "gone", kept) is None, timeout=30,
            what="garbage collection of the deleted WebApp's children")
        restarted.start()
        cluster.kubectl("scale", "-n", kept, "webapp/stays", "--replicas=2")
        wait_for(lambda: (cluster.get("deployment", "stays", kept) or {}).get("spec", {})
                 .get("replicas") == 2, timeout=30, what="the restarted operator to act")
        time.sleep(5)  # a storm would show by now: retries of what is gone
        complaints = [line for line in restarted.log.read_text(errors="replace").splitlines()
                      if "Traceback" in line or _level(line) in ("warning", "error", "critical")]
        assert complaints == [], "\n".join(complaints[:10])
    finally:
        restarted.kill()
        cluster.kubectl("delete", "namespace", kept, "--wait=false", check=False)
        operator.start()


def test_the_cli_names_file_and_field_for_a_wrong_kind(tmp_path: Path) -> None:
    bad = tmp_path / "app.yaml"
    bad.write_text(yaml.safe_dump({**cases.webapp("x"), "kind": "Deployment"}))
    result = subprocess.run([sys.executable, "-m", "reconcile_lab", "docker", "apply", "--dry-run",
                             "-f", str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert str(bad) in result.stderr and "kind" in result.stderr
    assert json.dumps("Deployment") in result.stderr or "Deployment" in result.stderr
