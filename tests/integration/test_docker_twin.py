"""The Docker twin against a real Docker engine: apply, rollout, drift, delete, bad input.

Only the demo images reconcile-lab/hello:v1 and :v2 are used (nothing can be pulled), every port
is published on 127.0.0.1, and every test works on its own app name and removes what it made.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, cast

import docker
import docker.errors
import pytest
import yaml
from docker.models.containers import Container

from reconcile_lab import spec
from tests import cases
from tests.conftest import free_port, interrupt

ROOT = Path(__file__).resolve().parents[2]
LABEL = "reconcile-lab/app"
# The CLI in its own process, as a person runs it from a terminal.
TWIN = [sys.executable, "-m", "reconcile_lab", "docker"]


class Result(NamedTuple):
    code: int
    out: str
    err: str


Run = Callable[..., Result]


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def client(docker_engine: Any) -> docker.DockerClient:
    """The session's Docker engine (tests/conftest.py), with the demo images built."""
    return cast(docker.DockerClient, docker_engine)


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Lock files go to a directory of the test's own."""
    monkeypatch.setenv("RECONCILE_LAB_STATE", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def name(client: docker.DockerClient) -> Iterator[str]:
    """A fresh app name; whatever carries it is removed afterwards, whatever the test did."""
    app = f"t{uuid.uuid4().hex[:8]}"
    yield app
    for c in client.containers.list(all=True, filters={"label": f"{LABEL}={app}"},
                                    ignore_removed=True):
        c.remove(force=True)
    for n in client.networks.list(names=[app]):
        if n.name == app or n.name.startswith(f"{app}."):  # NAME, NAME.NAMESPACE
            n.remove()


@pytest.fixture
def run(state_dir: Path) -> Run:
    """``reconcile-lab docker ARGS``; extra environment variables as keywords."""
    def invoke(*args: str, **env: str) -> Result:
        done = subprocess.run([*TWIN, *args], capture_output=True, text=True, timeout=180,
                              env={**twin_env(state_dir), **env}, check=False)
        return Result(done.returncode, done.stdout, done.stderr)
    return invoke


def write(path: Path, name: str, **fields: Any) -> Path:
    body: dict[str, Any] = {"image": "reconcile-lab/hello:v1", "replicas": 2,
                            "healthCheck": {"path": "/healthz", "periodSeconds": 1}}
    body.update(fields)
    body = {key: value for key, value in body.items() if value is not None}  # None: leave it out
    path.write_text(yaml.safe_dump({"apiVersion": spec.API_VERSION, "kind": spec.KIND,
                                    "metadata": {"name": name}, "spec": body}))
    return path


def containers(client: docker.DockerClient, name: str) -> dict[str, Container]:
    # ignore_removed: a watch loop may remove a container between the list and its inspect.
    found = client.containers.list(all=True, filters={"label": f"{LABEL}={name}"},
                                   ignore_removed=True)
    return {str(c.name): c for c in found}


def host_port(c: Container) -> int:
    c.reload()
    (binding,) = c.attrs["NetworkSettings"]["Ports"]["8080/tcp"]
    assert binding["HostIp"] == "127.0.0.1"
    return int(binding["HostPort"])


def get(port: int, timeout: float = 2.0) -> dict[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as response:
        answer: dict[str, str] = json.loads(response.read())
        return answer


def twin_env(state: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "operator"), "RECONCILE_LAB_STATE": str(state)}


# --- apply, idempotency, scale ----------------------------------------------------------------


@pytest.mark.docker
def test_apply_from_nothing_serves_n_healthy_replicas_and_again_changes_nothing(
        client: docker.DockerClient, name: str, run: Run, tmp_path: Path) -> None:
    webapp = write(tmp_path / "app.yaml", name, env=[{"name": "GREETING", "value": "hi"}])
    prom = tmp_path / "docker.prom"

    first = run("apply", "-f", str(webapp), "--metrics-file", str(prom))

    assert first.code == 0, first.out + first.err
    assert (f"docker network create --label {LABEL}={name}"
            f" --label reconcile-lab/namespace=default {name}") in first.out
    assert f"docker run -d --name {name}-1 " in first.out
    assert "converged" in first.out
    made = containers(client, name)
    assert sorted(made) == [f"{name}-1", f"{name}-2"]
    for c in made.values():
        assert c.attrs["State"]["Health"]["Status"] == "healthy"
        answer = get(host_port(c))
        assert answer["app"] == "hello" and answer["version"] == "v1"
        assert answer["greeting"] == "hi" and answer["hostname"] == str(c.id)[:12]
        # the same posture as the operator's pods
        host = c.attrs["HostConfig"]
        assert c.attrs["Config"]["User"] == "65532:65532"
        assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["NanoCpus"] == 200_000_000 and host["Memory"] == 64 * 2**20
        assert name in c.attrs["NetworkSettings"]["Networks"][name]["Aliases"]
    # service discovery: the app's name resolves on its network, as a Service name does
    code, body = made[f"{name}-1"].exec_run(["/bin/wget", "-q", "-O", "-", f"http://{name}:8080/"])
    assert code == 0 and json.loads(cast(bytes, body))["app"] == "hello"
    assert (client.networks.get(name).attrs["Labels"] or {}).get(LABEL) == name
    assert (f'reconcile_lab_ready_replicas{{app="{name}",engine="docker",namespace="default"}} 2.0'
            in prom.read_text())

    again = run("apply", "-f", str(webapp))

    assert again.code == 0
    assert "nothing to do" in again.out and "docker run" not in again.out
    assert {n: c.id for n, c in containers(client, name).items()} == {
        n: c.id for n, c in made.items()}


@pytest.mark.docker
def test_scale_up_then_down_keeps_the_first_replica(
        client: docker.DockerClient, name: str, run: Run, tmp_path: Path) -> None:
    one = write(tmp_path / "one.yaml", name, replicas=1, healthCheck=None)
    assert run("apply", "-f", str(one)).code == 0
    first = containers(client, name)[f"{name}-1"].id

    up = run("apply", "-f", str(write(tmp_path / "three.yaml", name, replicas=3,
                                      healthCheck=None)))
    assert up.code == 0, up.out
    assert sorted(containers(client, name)) == [f"{name}-1", f"{name}-2", f"{name}-3"]

    down = run("apply", "-f", str(one))
    assert down.code == 0, down.out
    assert down.out.index(f"docker rm -f {name}-3") < down.out.index(f"docker rm -f {name}-2")
    assert {n: c.id for n, c in containers(client, name).items()} == {f"{name}-1": first}


# --- rollout, env ---------------------------------------------------------------------------


@pytest.mark.docker
def test_an_image_change_rolls_out_one_by_one_and_never_drops_below_n_minus_1(
        client: docker.DockerClient, name: str, run: Run, tmp_path: Path, state_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    replicas = 3
    assert run("apply", "-f", str(write(tmp_path / "v1.yaml", name, replicas=replicas))).code == 0
    v2 = write(tmp_path / "v2.yaml", name, replicas=replicas, image="reconcile-lab/hello:v2")

    rollout = subprocess.Popen([*TWIN, "apply", "-f", str(v2)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=twin_env(state_dir))
    serving: list[int] = []
    versions: set[str] = set()
    deadline = time.monotonic() + 120
    while rollout.poll() is None and time.monotonic() < deadline:
        count = 0
        for c in containers(client, name).values():
            with contextlib.suppress(OSError, KeyError, ValueError, TypeError,
                                     docker.errors.NotFound):
                versions.add(get(host_port(c), timeout=1.0)["version"])
                count += 1
        serving.append(count)
        time.sleep(0.05)
    output = rollout.communicate(timeout=30)[0]

    assert rollout.returncode == 0, output
    with capsys.disabled():
        print(f"\nrollout v1→v2 of {replicas}: {len(serving)} sweeps, serving min {min(serving)}"
              f" max {max(serving)}")
    assert min(serving) >= replicas - 1 and min(serving) > 0
    assert versions == {"v1", "v2"}
    after = containers(client, name)
    assert sorted(after) == [f"{name}-{i}" for i in range(1, replicas + 1)]
    assert {get(host_port(c))["version"] for c in after.values()} == {"v2"}


@pytest.mark.docker
def test_an_env_change_replaces_the_container_and_the_greeting_shows(
        client: docker.DockerClient, name: str, run: Run, tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    write(path, name, replicas=1, env=[{"name": "GREETING", "value": "hi"}])
    assert run("apply", "-f", str(path)).code == 0
    before = containers(client, name)[f"{name}-1"]
    assert get(host_port(before))["greeting"] == "hi"

    write(path, name, replicas=1, env=[{"name": "GREETING", "value": "bonjour"}])
    changed = run("apply", "-f", str(path))

    assert changed.code == 0
    assert "env GREETING changed" in changed.out
    after = containers(client, name)[f"{name}-1"]
    assert after.id != before.id
    assert get(host_port(after))["greeting"] == "bonjour"


@pytest.mark.docker
def test_env_values_are_applied_but_never_printed(
        client: docker.DockerClient, name: str, run: Run, tmp_path: Path) -> None:
    secret, rotated = "s3cr3t-one-9f2c", "s3cr3t-two-41ab"
    path = tmp_path / "app.yaml"
    write(path, name, replicas=1, env=[{"name": "GREETING", "value": secret}])
    printed = [run("apply", "-f", str(path), "--dry-run"), run("apply", "-f", str(path))]
    assert printed[1].code == 0, printed[1].out + printed[1].err
    assert get(host_port(containers(client, name)[f"{name}-1"]))["greeting"] == secret

    write(path, name, replicas=1, env=[{"name": "GREETING", "value": rotated}])
    printed += [run("status", "-f", str(path)), run("apply", "-f", str(path)),
                run("status", name)]

    assert printed[3].code == 0 and "env GREETING changed" in printed[3].out
    assert get(host_port(containers(client, name)[f"{name}-1"]))["greeting"] == rotated
    for result in printed:
        assert secret not in result.out + result.err and rotated not in result.out + result.err
    assert "-e 'GREETING=***'" in printed[0].out and "-e 'GREETING=***'" in printed[1].out


# --- namespaces -------------------------------------------------------------------------------


@pytest.mark.docker
def test_one_name_in_two_namespaces_gives_two_apps_that_coexist(
        client: docker.DockerClient, name: str, run: Run, tmp_path: Path) -> None:
    both = tmp_path / "both.yaml"
    docs = [{"apiVersion": spec.API_VERSION, "kind": spec.KIND,
             "metadata": {"name": name, **({"namespace": ns} if ns else {})},
             "spec": {"image": "reconcile-lab/hello:v1", "replicas": 1,
                      "env": [{"name": "GREETING", "value": greeting}]}}
            for ns, greeting in ((None, "from-default"), ("shop", "from-shop"))]
    both.write_text(yaml.safe_dump_all(docs))

    applied = run("apply", "-f", str(both))
    again = run("apply", "-f", str(both))

    assert applied.code == 0, applied.out + applied.err
    assert again.code == 0 and "docker run" not in again.out  # they do not fight
    made = containers(client, name)
    assert sorted(made) == [f"{name}-1", f"{name}.shop-1"]
    assert made[f"{name}.shop-1"].labels["reconcile-lab/namespace"] == "shop"
    assert get(host_port(made[f"{name}-1"]))["greeting"] == "from-default"
    assert get(host_port(made[f"{name}.shop-1"]))["greeting"] == "from-shop"
    assert {n.name for n in client.networks.list(names=[name])} == {name, f"{name}.shop"}

    shop = run("status", name, "-n", "shop")
    assert f"{name}.shop-1" in shop.out and f"{name}-1 " not in shop.out
    deleted = run("delete", name, "--namespace", "shop")
    assert deleted.code == 0, deleted.out + deleted.err
    assert sorted(containers(client, name)) == [f"{name}-1"]  # the default one is untouched
    assert {n.name for n in client.networks.list(names=[name])} == {name}


# --- delete -----------------------------------------------------------------------------------


@pytest.mark.docker
def test_delete_removes_exactly_what_the_app_owns(
        client: docker.DockerClient, name: str, run: Run, tmp_path: Path) -> None:
    assert run("apply", "-f", str(write(tmp_path / "app.yaml", name, healthCheck=None))).code == 0
    neighbour = client.containers.create("reconcile-lab/hello:v1", name=f"{name}-9",
                                         network_mode="none")
    try:
        deleted = run("delete", name)

        assert deleted.code == 0, deleted.out + deleted.err
        assert f"docker network rm {name}" in deleted.out
        assert containers(client, name) == {}
        assert [n for n in client.networks.list(names=[name]) if n.name == name] == []
        neighbour.reload()  # not labelled for the app: untouched
        assert run("delete", name).out.strip() == f"{name}: nothing to delete"
    finally:
        neighbour.remove(force=True)


# --- drift: a container killed by hand ---------------------------------------------------------


@pytest.mark.docker
def test_a_killed_container_stays_dead_until_apply_runs_again(
        client: docker.DockerClient, name: str, run: Run, tmp_path: Path) -> None:
    webapp = write(tmp_path / "app.yaml", name)
    assert run("apply", "-f", str(webapp)).code == 0
    victim = containers(client, name)[f"{name}-1"]

    victim.kill()
    time.sleep(3)
    victim.reload()
    assert victim.status == "exited"  # nothing in Docker brings it back

    again = run("apply", "-f", str(webapp))

    assert again.code == 0
    assert f"docker start {name}-1" in again.out
    victim.reload()
    assert victim.status == "running" and victim.attrs["State"]["Health"]["Status"] == "healthy"
    assert get(host_port(victim))["app"] == "hello"


@pytest.mark.docker
def test_under_watch_a_killed_container_comes_back_on_the_next_poll(
        client: docker.DockerClient, name: str, tmp_path: Path, state_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    webapp = write(tmp_path / "app.yaml", name)
    port = free_port()
    log = (tmp_path / "watch.out").open("w+")
    watch = subprocess.Popen(
        [*TWIN, "apply", "-f", str(webapp), "--watch", "--interval", "1",
         "--metrics-port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=twin_env(state_dir))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            made = containers(client, name)
            if len(made) == 2 and all(
                    (c.attrs["State"].get("Health") or {}).get("Status") == "healthy"
                    for c in made.values()):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"--watch did not converge: {Path(log.name).read_text()}")
        victim = made[f"{name}-1"]

        killed = time.monotonic()
        victim.kill()
        while time.monotonic() < killed + 30:
            with contextlib.suppress(OSError, KeyError, TypeError, ValueError):
                if get(host_port(victim), timeout=0.5)["app"] == "hello":
                    break
            time.sleep(0.05)
        else:
            pytest.fail(f"not back within 30s: {Path(log.name).read_text()}")
        recovery = time.monotonic() - killed

        with capsys.disabled():
            print(f"\nrecovery of a killed container under --watch --interval 1: "
                  f"{recovery:.2f}s (answering HTTP again)")
        assert recovery < 15
        drift = 'reconcile_lab_drift_corrections_total{engine="docker",kind="Container"}'
        for _ in range(40):  # the metric is recorded once the poll's apply returns
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                text = r.read().decode()
            if f'{drift} 1.0' in text:  # the series exists from the start, at 0
                break
            time.sleep(0.25)
        assert f'{drift} 1.0' in text
    finally:
        code = interrupt(watch)
        log.seek(0)
        output = log.read()
        log.close()
    assert code == 0, output
    assert f"docker start {name}-1" in output
    assert "stopped watching" in output


# --- bad input changes nothing ----------------------------------------------------------------


def invalid_document(case: cases.Invalid, name: str) -> dict[str, Any]:
    """The shared invalid case, under the test's own app name unless the name is the point."""
    doc = cases.document(case)
    if case.name == "web":
        doc["metadata"]["name"] = name
    return doc


# One invocation each for the cases a participant meets first; all the others in one file below.
FIRST_CASES = ["negative-replicas", "port-too-high", "env-bad-name", "env-duplicate",
               "cpu-request-above-limit", "unknown-field", "missing-image", "rollout-both-zero"]


@pytest.mark.docker
@pytest.mark.parametrize("case", [c for c in cases.INVALID if c.id in FIRST_CASES],
                         ids=lambda c: str(c.id))
def test_an_invalid_file_exits_2_names_the_field_and_changes_nothing(
        client: docker.DockerClient, name: str, run: Run, tmp_path: Path,
        case: cases.Invalid) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(invalid_document(case, name)))

    result = run("apply", "-f", str(path))

    assert result.code == 2
    assert str(path) in result.err and f"{case.field}:" in result.err and "fix:" in result.err
    assert result.out == ""
    assert containers(client, name) == {}
    assert [n for n in client.networks.list(names=[name]) if n.name == name] == []


@pytest.mark.docker
def test_every_shared_invalid_case_is_refused_in_one_file_naming_its_field(
        client: docker.DockerClient, name: str, run: Run, tmp_path: Path) -> None:
    path = tmp_path / "all-bad.yaml"
    path.write_text(yaml.safe_dump_all([invalid_document(c, name) for c in cases.INVALID]))

    result = run("apply", "-f", str(path))

    assert result.code == 2 and result.out == ""
    # one block per document, in file order, each starting with "FILE:LINE WebApp …: invalid"
    blocks = [b for b in result.err.split(f"{path}:")[1:] if "invalid" in b.splitlines()[0]]
    assert len(blocks) == len(cases.INVALID)
    for case, block in zip(cases.INVALID, blocks, strict=True):
        assert f"{case.field}:" in block, (case.id, block)
    assert containers(client, name) == {}


@pytest.mark.docker
def test_one_bad_document_among_several_changes_nothing(
        client: docker.DockerClient, name: str, run: Run, tmp_path: Path) -> None:
    good = yaml.safe_load(write(tmp_path / "good.yaml", name).read_text())
    bad = yaml.safe_load(write(tmp_path / "bad.yaml", f"{name}b", replicas=-1).read_text())
    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump_all([good, bad]))

    result = run("apply", "-f", str(both))

    assert result.code == 2 and "spec.replicas" in result.err
    assert containers(client, name) == {}


def test_malformed_yaml_exits_2_with_the_file_and_line(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: reconcile-lab.dev/v1alpha1\nkind: WebApp\nspec:\n"
                    "  image: [unclosed\n  replicas: 2\n")

    result = run("apply", "-f", str(path))

    assert result.code == 2
    assert f"{path}:5:" in result.err and "malformed YAML" in result.err


def test_no_docker_engine_is_a_clear_error(run: Run, tmp_path: Path) -> None:
    socket_path = tmp_path / "no-docker.sock"

    result = run("apply", "-f", str(write(tmp_path / "app.yaml", "nodocker")),
                 DOCKER_HOST=f"unix://{socket_path}")

    assert result.code == 3
    assert str(socket_path) in result.err and "fix:" in result.err


# --- concurrency and partial failure ----------------------------------------------------------


@pytest.mark.docker
def test_two_applies_at_once_never_create_duplicates(
        client: docker.DockerClient, name: str, tmp_path: Path, state_dir: Path) -> None:
    webapp = write(tmp_path / "app.yaml", name, healthCheck=None)
    twins = [subprocess.Popen([*TWIN, "apply", "-f", str(webapp)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=twin_env(state_dir))
             for _ in range(2)]
    outputs = [t.communicate(timeout=60)[0] for t in twins]

    assert [t.returncode for t in twins] == [0, 0], outputs
    assert sorted(containers(client, name)) == [f"{name}-1", f"{name}-2"]
    assert sum(o.count("docker run") for o in outputs) == 2  # one did it, the other had nothing
    assert len([n for n in client.networks.list(names=[name]) if n.name == name]) == 1


@pytest.mark.docker
def test_a_container_that_cannot_start_is_reported_while_the_rest_converge(
        client: docker.DockerClient, name: str, run: Run, tmp_path: Path) -> None:
    squatter = client.containers.create("reconcile-lab/hello:v1", name=f"{name}-2",
                                        network_mode="none")
    try:
        result = run("apply", "-f", str(write(tmp_path / "app.yaml", name, replicas=3)))

        assert result.code == 1
        assert f"{name}-2: the name {name}-2 is taken" in result.out
        assert "NOT converged" in result.out
        ours = containers(client, name)
        assert sorted(ours) == [f"{name}-1", f"{name}-3"]
        assert all(c.attrs["State"]["Health"]["Status"] == "healthy" for c in ours.values())
        squatter.reload()
        assert LABEL not in squatter.labels  # not ours: neither adopted nor removed
    finally:
        squatter.remove(force=True)
