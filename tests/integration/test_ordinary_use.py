"""The operator under what people ordinarily do to a cluster: edit a child by hand, race it with
an object of the same name, run it in one namespace under its own ServiceAccount.

Writes are counted where they land, in the apiserver's audit log, not by the operator."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconcile_lab.declarative import permissions
from reconcile_lab.faults import kubeconfigs
from tests import cases
from tests.conftest import Cluster, Operator, denials, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def _ready(cluster: Cluster, name: str, namespace: str, timeout: float = 30) -> None:
    cluster.kubectl("wait", "-n", namespace, f"webapp/{name}", "--for=condition=Ready",
                    f"--timeout={int(timeout)}s", timeout=timeout + 10)


def webapps_ready(cluster: Cluster, namespace: str, count: int, prefix: str = "app-") -> None:
    """``count`` WebApps of the default spec, applied, then each waited for until Ready."""
    for i in range(count):
        cluster.apply(cases.webapp(f"{prefix}{i}", namespace))
    for i in range(count):
        _ready(cluster, f"{prefix}{i}", namespace, timeout=60)


def _events(cluster: Cluster, namespace: str, reason: str) -> list[dict[str, Any]]:
    items = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
    return [e for e in items["items"] if e.get("reason") == reason]


def _env(cluster: Cluster, name: str, namespace: str) -> list[dict[str, Any]]:
    d = cluster.get("deployment", name, namespace) or {}
    env: list[dict[str, Any]] = d["spec"]["template"]["spec"]["containers"][0].get("env") or []
    return env


def test_a_hand_added_env_var_is_removed_with_one_write_then_none_for_a_minute(
        cluster: Cluster, operator: Operator, namespace: str) -> None:
    cluster.apply(cases.webapp("edited", namespace, env=[{"name": "GREETING", "value": "hi"}]))
    _ready(cluster, "edited", namespace)
    time.sleep(1)
    audit = cluster.audit()
    mark = audit.mark()
    cluster.kubectl("set", "env", "-n", namespace, "deployment/edited", "EXTRA=1")
    wait_for(lambda: [e["name"] for e in _env(cluster, "edited", namespace)] == ["GREETING"],
             timeout=10, what="the hand-added env var to be removed")
    # Then a minute of unrelated edits: each an event, a reconcile, and no write.
    for i in range(12):
        cluster.kubectl("annotate", "--overwrite", "-n", namespace, "deployment/edited",
                        f"touched={i}")
        time.sleep(5)
    writes = audit.writes(since=mark, namespace=namespace, name="edited",
                          resource="deployments")
    assert [w.verb for w in writes] == ["patch"], writes
    assert len(_events(cluster, namespace, "DriftRepaired")) == 1
    assert [e["name"] for e in _env(cluster, "edited", namespace)] == ["GREETING"]


def test_a_child_made_again_then_edited_by_hand_is_put_back_with_one_write(
        cluster: Cluster, operator: Operator, namespace: str) -> None:
    # A child the operator made again is its POST's: the first hand edit after that must still
    # cost one write, not a rewrite of its field ownership first.
    cluster.apply(cases.webapp("remade", namespace))
    _ready(cluster, "remade", namespace)
    first = (cluster.get("deployment", "remade", namespace) or {})["metadata"]["uid"]
    cluster.kubectl("delete", "deployment", "-n", namespace, "remade")
    wait_for(lambda: (cluster.get("deployment", "remade", namespace) or {"metadata": {
        "uid": first}})["metadata"]["uid"] != first, timeout=10, what="the Deployment remade")
    _ready(cluster, "remade", namespace)
    time.sleep(1)
    audit = cluster.audit()
    mark = audit.mark()
    cluster.kubectl("scale", "-n", namespace, "deployment/remade", "--replicas=4")
    wait_for(lambda: (cluster.get("deployment", "remade", namespace) or {})["spec"]["replicas"]
             == 1, timeout=10, what="the hand-scaled Deployment put back")
    time.sleep(3)
    writes = audit.writes(since=mark, namespace=namespace, name="remade",
                          resource="deployments")
    assert [w.verb for w in writes] == ["patch"], writes

    # Now our create and our apply each hold fields: a new port must still replace the old.
    cluster.apply(cases.webapp("remade", namespace, port=9090))
    _ready(cluster, "remade", namespace)
    d = cluster.get("deployment", "remade", namespace) or {}
    ports = d["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert [p["containerPort"] for p in ports] == [9090]
    shown = json.loads(cluster.kubectl("get", "deployment", "remade", "-n", namespace,
                                       "-o", "json", "--show-managed-fields").stdout)
    managers = [(e["manager"], e["operation"]) for e in shown["metadata"]["managedFields"]
                if e["manager"] == "reconcile-lab"]
    assert managers == [("reconcile-lab", "Apply")]


def test_a_stranger_racing_a_new_webapp_for_its_name_is_never_adopted(
        cluster: Cluster, operator: Operator, namespace: str) -> None:
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    api = client.ApiClient(config.new_client_from_config(str(cluster.kubeconfig)).configuration)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    names = [f"race-{i:02d}" for i in range(50)]
    for i, name in enumerate(names):
        custom.create_namespaced_custom_object("reconcile-lab.dev", "v1alpha1", namespace,
                                               "webapps", cases.webapp(name, namespace))
        # The stranger follows 0-45 ms later: before, during and after the operator's look at
        # its cache and its write.
        time.sleep((i % 10) * 0.005)
        try:
            core.create_namespaced_service(namespace, {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "labels": {"made-by": "stranger"}},
                "spec": {"ports": [{"name": "stranger", "port": 80}], "selector": {"x": "y"}}})
        except ApiException as e:
            assert e.status == 409, e  # the WebApp's own Service got there first
    api.close()

    def settled() -> list[dict[str, Any]] | None:
        items = cluster.list("webapps", namespace)
        done = [w for w in items if any(
            c["type"] in ("Ready", "Degraded") and c["status"] == "True"
            and (c["type"] == "Ready" or c["reason"] == "ChildConflict")
            for c in w.get("status", {}).get("conditions", []))]
        return items if len(done) == len(names) else None

    webapp_list = wait_for(settled, timeout=120, interval=1, what="every WebApp to settle")
    uids = {w["metadata"]["name"]: w["metadata"]["uid"] for w in webapp_list}
    theirs = adopted = 0
    for service in cluster.list("services", namespace):
        name = service["metadata"]["name"]
        if service["metadata"].get("labels", {}).get("made-by") == "stranger":
            theirs += 1
            refs = service["metadata"].get("ownerReferences") or []
            ports = [p["port"] for p in service["spec"]["ports"]]
            if refs or ports != [80]:
                adopted += 1
            webapp = next(w for w in webapp_list if w["metadata"]["name"] == name)
            conditions = {c["type"]: c for c in webapp["status"]["conditions"]}
            assert conditions["Degraded"]["reason"] == "ChildConflict", name
        else:
            assert service["metadata"]["ownerReferences"][0]["uid"] == uids[name]
    print(f"races: {theirs} won by the stranger, {len(names) - theirs} by the WebApp; "
          f"{adopted} adopted")
    assert adopted == 0
    assert theirs > 0  # the race was real: some strangers got there first


def test_a_child_in_the_way_is_counted_as_an_error_on_both_dashboards(
        cluster: Cluster, operator: Operator, namespace: str) -> None:
    cluster.kubectl("create", "service", "clusterip", "blocked", "--tcp=80:80", "-n", namespace)
    errors = operator.metric("controller_runtime_reconcile_total", result="error")
    conflicts = operator.metric("reconcile_lab_reconciliations_total", result="conflict")
    cluster.apply(cases.webapp("blocked", namespace))
    wait_for(lambda: operator.metric("reconcile_lab_reconciliations_total", result="conflict")
             > conflicts, timeout=20, what="the conflict to be counted")
    assert operator.metric("controller_runtime_reconcile_total", result="error") > errors
    assert operator.metric("controller_runtime_reconcile_errors_total") >= 1


def _token_kubeconfig(cluster: Cluster, token: str, path: Path) -> Path:
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    path.write_text(yaml.safe_dump(kubeconfigs.with_token(
        admin, token=token, base=cluster.kubeconfig.parent, user="operator")))
    return path


def scoped_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    """A ServiceAccount of its own serving ``namespace`` only (a Role), and a kubeconfig with
    its token."""
    cluster.apply("---\n".join(yaml.safe_dump(d) for d in permissions.namespaced_rbac(
        namespace, account=account, account_namespace=namespace)))
    token = cluster.kubectl("create", "token", account, "-n", namespace,
                            "--duration=1h").stdout.strip()
    return _token_kubeconfig(cluster, token, path)


def test_in_one_namespace_under_its_own_role_it_converges_with_no_403(
        cluster: Cluster, operator: Operator, namespace: str, tmp_path: Path) -> None:
    # An account of its own, in the served namespace: other tests bind the shipped operator
    # account cluster-wide.
    kubeconfig = scoped_kubeconfig(cluster, namespace, "scoped-operator",
                                   tmp_path / "operator.kubeconfig")
    # Proof that the identity is the ServiceAccount's, not the admin's:
    denied = subprocess.run([cluster.kubectl_bin, "--kubeconfig", str(kubeconfig), "get",
                             "deployments", "-A"], capture_output=True, text=True, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    operator.kill()  # the session's operator serves every namespace: out of the way
    scoped = Operator(cluster, tmp_path / "scoped.log", "--namespace", namespace,
                      kubeconfig=kubeconfig, env={"RECONCILE_LAB_RESYNC_SECONDS": "2"})
    try:
        started = time.monotonic()
        scoped.start()
        names = [f"scoped-{i:02d}" for i in range(20)]
        cluster.apply("---\n".join(yaml.safe_dump(cases.webapp(n, namespace)) for n in names))
        for name in names:
            _ready(cluster, name, namespace, timeout=60)
        converged = time.monotonic() - started
        time.sleep(5)  # two more resyncs
        log = scoped.log.read_text(errors="replace")
        assert not denials(log), "\n".join(denials(log)[:3])
        print(f"20 WebApps converged {converged:.1f}s after the scoped operator's start")
    finally:
        scoped.kill()
        operator.start()
