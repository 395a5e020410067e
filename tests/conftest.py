"""Fixtures every test builds on: a real cluster, a real operator, a real Docker engine.

The session's cluster lives in its own state directory, so a participant's demo cluster is
never touched by the tests. ``--cluster-provider kind`` runs the same tests on a kind cluster
made by pytest-kind-ng (``--kind-bin`` points at a local kind binary).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
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

REPO = Path(__file__).resolve().parents[1]

# Tests press Ctrl-C on the kit's commands (SIGINT). A shell that starts a job in the background
# without job control has it ignore SIGINT, and every child would inherit that: `bash -c
# 'make test' &` would then see loops that never stop. Restored here, children get the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cluster-provider", choices=("kwok", "kind"), default="kwok",
                     help="which real cluster the integration tests use (default: kwok)")
    parser.addoption("--cluster-nodes", choices=("auto", "kwok", "both"), default="auto",
                     help="the kwok cluster's nodes: both = a real node on this host plus "
                     "simulated ones; auto (default) = both when a selected test is marked "
                     "realnode, simulated only otherwise")


def pytest_configure(config: pytest.Config) -> None:
    # Here rather than in pyproject.toml, whose hash names the shared Python environment.
    config.addinivalue_line("markers", "realnode: runs a real kubelet, containerd and CNI on "
                            "this host (Linux, root) and undoes its host changes")
    config.addinivalue_line("markers", "simulated: the test's namespace puts its pods on kwok's "
                            "simulated nodes (scale work: many pods, no containers needed)")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """With RECONCILE_LAB_DRILL_RECORD naming a file, each test's outcome, duration and the
    figures it recorded (``record_property``) are appended to it as one JSON line:
    ``make reliability`` turns them into docs/data/reliability.json."""
    path = os.environ.get("RECONCILE_LAB_DRILL_RECORD")
    if not path or not (report.when == "call" or (report.when == "setup" and not report.passed)):
        return
    record = {"test": report.nodeid, "outcome": report.outcome, "seconds": round(report.duration, 2),
              "figures": {k: v for k, v in report.user_properties if isinstance(v, int | float)}}
    with Path(path).open("a") as out:
        out.write(json.dumps(record) + "\n")


def cluster_nodes(request: pytest.FixtureRequest) -> str:
    choice: str = request.config.getoption("cluster_nodes")
    if choice != "auto":
        return choice
    wanted = any(item.get_closest_marker("realnode") for item in request.session.items)
    return "both" if wanted else "kwok"


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def interrupt(proc: subprocess.Popen[Any], timeout: float = 20, *, group: bool = False,
              output: Callable[[], str] = str) -> int:
    """Ctrl-C for a child (``group``: for its whole process group, as a terminal sends it):
    SIGINT, then its exit code. One that does not stop is killed (it would otherwise outlive
    the test and go on making things) and the test fails, showing ``output()``."""
    send = (lambda sig: os.killpg(proc.pid, sig)) if group else proc.send_signal
    send(signal.SIGINT)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(timeout=10)
        raise AssertionError(f"still running {timeout}s after SIGINT: {proc.args}\n"
                             f"{output()}") from None


def answers(url: str, timeout: float = 2) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30, interval: float = 0.1,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


_DENIED = re.compile(r"(?<![\d.])403(?![\d.])|forbidden", re.IGNORECASE)
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ][\d:.,]+Z?")


def denials(log: str) -> list[str]:
    """The lines of a log that report a refused request (HTTP 403, Forbidden). Timestamps are
    left out of the search: their digits hold "403" now and then."""
    return [line for line in log.splitlines() if _DENIED.search(_TIMESTAMP.sub("", line))]


QUIET_FOR = 30.0  # a drill's "consistently": converged, then this long without a write


def quiet_after_ready(cluster: Cluster, namespace: str, *, timeout: float = 120) -> list[Any]:
    """Every WebApp of ``namespace`` Ready at its generation, then QUIET_FOR seconds: the
    operator's writes in that time, as the apiserver recorded them (a drill passes with none)."""
    def settled() -> bool:
        for w in cluster.list("webapps", namespace):
            status = w.get("status") or {}
            if status.get("observedGeneration") != w["metadata"].get("generation") or not any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in status.get("conditions", [])):
                return False
        return True

    wait_for(settled, timeout=timeout, interval=0.5, what="every WebApp Ready at its generation")
    audit = cluster.audit()
    mark = audit.mark()
    time.sleep(QUIET_FOR)
    return list(audit.writes(since=mark, namespace=namespace))


class Cluster:
    """A real cluster reached with the kit's own kubectl."""

    def __init__(self, kubeconfig: Path, kubectl: str, audit_log: Path | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.kubectl_bin = kubectl
        self.audit_log = audit_log

    def simulate_pods_in(self, namespace: str) -> None:
        """Pods of ``namespace`` go to the simulated nodes (for images that cannot be built
        here): admission, scheduling and the Deployment controller stay real."""
        from reconcile_lab.cluster import nodeconfig

        if self.get("namespace", namespace) is None:
            self.kubectl("create", "namespace", namespace)
        self.kubectl("annotate", "--overwrite", "namespace", namespace, *(
            f"{k}={v}" for k, v in nodeconfig.SIMULATED_NAMESPACE_ANNOTATIONS.items()))

    def audit(self) -> Any:
        """The apiserver's record of writes (observe/audit.py); the kit's own cluster only."""
        from reconcile_lab.observe import audit

        if self.audit_log is None:
            pytest.fail("this cluster keeps no audit log: run on the kit's embedded cluster")
        return audit.AuditLog(self.audit_log)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.kubectl_bin, "--kubeconfig", str(self.kubeconfig), *args],
                                input=input, capture_output=True, text=True, timeout=timeout,
                                check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def apply(self, obj: dict[str, Any] | str, *, check: bool = True,
              server_side: bool = False) -> subprocess.CompletedProcess[str]:
        text = obj if isinstance(obj, str) else yaml.safe_dump(obj)
        extra = ["--server-side", "--field-manager=tests"] if server_side else []
        return self.kubectl("apply", *extra, "-f", "-", input=text, check=check)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        ns = ["-n", namespace] if namespace else []
        result = self.kubectl("get", kind, name, *ns, "-o", "json", check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr or "not found" in result.stderr:
                return None
            raise AssertionError(result.stderr)
        obj: dict[str, Any] = json.loads(result.stdout)
        return obj

    def list(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        args = ["get", kind, "-n", namespace, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items: list[dict[str, Any]] = json.loads(self.kubectl(*args).stdout)["items"]
        return items


@pytest.fixture(scope="session")
def test_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state directory of the tests' own: clusters they start never collide with the user's."""
    state = tmp_path_factory.mktemp("state")
    os.environ["RECONCILE_LAB_STATE"] = str(state)
    return state


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, test_state: Path) -> Iterator[Cluster]:
    from reconcile_lab.cluster import kwok, kwokconfig, probing

    say = lambda m: print(f"[cluster] {m}", file=sys.stderr)  # noqa: E731
    on_kind = request.config.getoption("cluster_provider") == "kind"
    if on_kind:
        from reconcile_lab.cluster import images

        kind_cluster = request.getfixturevalue("kind_cluster")  # pytest-kind-ng
        images.build(progress=say)
        for tag in images.TAGS:
            kind_cluster.load_docker_image(images.image(tag))
        c = Cluster(Path(kind_cluster.kubeconfig_path), probing.kubectl_binary())
    else:
        c = Cluster(kwok.up(progress=say, nodes=cluster_nodes(request)), probing.kubectl_binary(),
                    kwokconfig.audit_log())
    c.kubectl("apply", "--server-side", "--field-manager=reconcile-lab", "-f",
              str(REPO / "crds"))
    c.kubectl("wait", "--for", "condition=established", "--timeout=60s", "-f", str(REPO / "crds"))
    yield c
    if not on_kind and not os.environ.get("RECONCILE_LAB_KEEP_CLUSTER"):  # for post-mortems
        kwok.down(progress=say)  # pytest-kind-ng deletes its own cluster


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    from reconcile_lab.cluster import nodeconfig

    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    if request.node.get_closest_marker("simulated"):  # beside a real node, opt in to kwok's
        cluster.kubectl("annotate", "namespace", name, *(
            f"{k}={v}" for k, v in nodeconfig.SIMULATED_NAMESPACE_ANNOTATIONS.items()))
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


class Operator:
    """The real operator, as a subprocess: `reconcile-lab operator run`."""

    def __init__(self, cluster: Cluster, log: Path, *extra: str, kubeconfig: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.cluster = cluster
        self.log = log
        self.extra = list(extra)
        self.kubeconfig = kubeconfig or cluster.kubeconfig
        self.env = env or {}
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reconcile_lab", "operator", "run",
                 "--kubeconfig", str(self.kubeconfig), "--log-format", "json",
                 "--metrics-port", str(self.metrics_port), "--health-port", str(self.health_port),
                 *self.extra],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        if wait:
            wait_for(self.healthy, timeout=60, what="the operator's liveness endpoint")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz",
                                        timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as r:
            return str(r.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, value = line.rsplit(" ", 1)
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def logged(self, event: str) -> int:
        """How many JSON log lines of this operator have this event."""
        count = 0
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                if json.loads(line).get("event") == event:
                    count += 1
        return count

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture(scope="session")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    op = Operator(cluster, tmp_path_factory.mktemp("operator") / "operator.log")
    op.start()
    yield op
    op.kill(signal.SIGTERM)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """The real Docker engine (started if needed) with the demo images built."""
    import docker

    from reconcile_lab.cluster import dockerd, images

    dockerd.ensure(progress=lambda m: print(f"[docker] {m}", file=sys.stderr))
    images.build(progress=lambda m: print(f"[docker] {m}", file=sys.stderr))
    client = docker.from_env()
    yield client
    client.close()


def prometheus_binaries() -> tuple[Path, Path]:
    """Debian's prometheus and promtool, installed by the kit (no service started) if missing."""
    from reconcile_lab.cluster.probing import ClusterError
    from reconcile_lab.observe import command

    try:
        binary = Path(command.prometheus_binary(progress=lambda m: print(m, file=sys.stderr)))
    except ClusterError as e:
        pytest.fail(str(e))
    return binary, binary.with_name("promtool")
