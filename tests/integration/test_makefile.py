"""Every Makefile target README and `make help` name, run for real, each checked for its effect.

A target that exits 0 and does nothing is the failure looked for here (the Makefile's KUBECTL
once handed kubectl a `--`, and install, uninstall, deploy and undeploy printed kubectl's help).
They run on the tests' own cluster, in the tests' own state dir, with this Python environment
(`-o deps`: never (re)build an environment from a test). `RUN_BY` says where each target runs:
here, in another test file, or in .ci/run (the targets that run the suite itself).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import drills
from reconcile_lab import cli, debian
from reconcile_lab.cluster import building, dockerd, images, providers
from reconcile_lab.declarative import permissions
from reconcile_lab.observe import command as observe
from tests import cases
from tests.conftest import Cluster, Operator, answers, free_port, interrupt, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
CRD = "webapps.reconcile-lab.dev"

# target → where a test runs it (this file unless named). A new target fails the first test
# below until it is run somewhere and listed here.
RUN_BY: dict[str, str] = {
    **dict.fromkeys(("help", "manifests", "dashboards", "fmt", "deps", "control-plane",
                     "engine", "image", "cluster", "status", "down", "install", "uninstall",
                     "deploy", "undeploy", "run", "prometheus", "render", "grafana",
                     "grafana-down"), "tests/integration/test_makefile.py"),
    **dict.fromkeys(("demo", "test", "test-unit", "test-integration"),
                    "tests/integration/test_user_shell.py"),
    **dict.fromkeys(("compare", "watch", "article"), "tests/integration/test_compare.py"),
    "web": "tests/integration/test_web.py",
    **dict.fromkeys(("bench", "bench-drift"), "tests/integration/test_bench_smoke.py"),
    **dict.fromkeys(("bench-report", "reliability-report", "article-report"),
                    "tests/unit/test_published_figures.py"),
    "reliability": "tests/integration/test_makefile.py",
    "docker-build": "tests/integration/test_incluster.py",
    **dict.fromkeys(("lint", "test-chaos"), ".ci/run"),
}


def make(*targets: str, timeout: float = 300, env: dict[str, str] | None = None,
         cwd: Path = REPO, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(make_argv(*targets), cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env=env or dict(os.environ), check=False)
    if ok:
        assert result.returncode == 0, \
            f"make {' '.join(targets)}:\n{result.stdout}{result.stderr}"
    assert "Usage:\n  kubectl" not in result.stdout + result.stderr, "kubectl printed its help"
    return result


def make_argv(*targets: str) -> list[str]:
    venv = Path(sys.executable).parent.parent
    return ["make", "--no-print-directory", "-f", str(REPO / "Makefile"), "-o", "deps",
            f"VENV={venv}", *targets]


def help_targets() -> set[str]:
    shown = re.sub(r"\x1b\[[0-9;]*m", "", make("help").stdout)  # without its colours
    listing = shown.partition("<target>")[2]
    return set(re.findall(r"^  ([a-z][a-z-]*) +\S", listing, re.MULTILINE))


def test_every_target_help_and_the_docs_name_is_run_by_a_test() -> None:
    shown = help_targets()
    assert shown == set(RUN_BY), f"listed in make help but run by no test: " \
        f"{sorted(shown - set(RUN_BY))}; run by a test but gone: {sorted(set(RUN_BY) - shown)}"
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    named = {(p.name, t) for p in docs for t in re.findall(r"`make ([a-z][a-z-]*)", p.read_text())}
    assert not {(doc, t) for doc, t in named if t not in shown}, "docs name unknown targets"
    for target, where in RUN_BY.items():
        text = (REPO / where).read_text()
        assert re.search(rf'(make|make_argv|Foreground)\((.|\n)*?"{re.escape(target)}"', text) or (
            where == ".ci/run" and f"make {target}\n" in text), f"{where} does not run {target}"


def test_reliability_runs_the_drills_and_writes_what_they_recorded_where_it_is_told(
        tmp_path: Path) -> None:
    # One quick test that needs no cluster stands in for the drills: the plumbing is the same.
    drill = ("tests/integration/test_reliability.py::"
             "test_the_cli_names_file_and_field_for_a_wrong_kind")
    doc, data = tmp_path / "reliability.md", tmp_path / "reliability.json"
    doc.write_text((REPO / "docs" / "reliability.md").read_text())
    make("reliability", f"DRILLS={drill}", f"RELIABILITY_DATA={data}", f"RELIABILITY_DOC={doc}",
         f"DRILL_RECORD={tmp_path / 'drills.jsonl'}",
         f"PYTEST_ARGS=-p no:cacheprovider --basetemp={tmp_path / 'pytest'}", timeout=300)
    recorded = json.loads(data.read_text())
    assert [(r["test"], r["outcome"]) for r in recorded["records"]] == [(drill, "passed")]
    assert recorded["meta"]["commit"] != "unknown" and drill in recorded["meta"]["argv"]
    table = doc.read_text().split(drills.BEGIN)[1].split(drills.END)[0]
    assert recorded["meta"]["date"] in table
    assert table.count(f"| {drills.NOT_MEASURED} |") == len(drills.DRILLS)  # none of its rows


def test_manifests_and_dashboards_regenerate_exactly_what_is_committed() -> None:
    before = {path: (REPO / path).read_text() for path in cli.generated()}
    make("manifests", "dashboards")
    assert {path: (REPO / path).read_text() for path in cli.generated()} == before
    changed = subprocess.run(["git", "status", "--porcelain", "--", "crds", "deploy",
                              "examples/observability"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout
    assert changed == "", f"make manifests/dashboards changed committed files:\n{changed}"


def test_fmt_fixes_what_ruff_can_and_leaves_clean_code_alone(tmp_path: Path) -> None:
    # On a copy: the checkout under test is never rewritten by its own tests.
    for part in ("operator", "tests", "bench"):
        shutil.copytree(REPO / part, tmp_path / part, ignore=shutil.ignore_patterns(
            "__pycache__", "*.egg-info"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    snapshot = {p: p.read_bytes() for p in tmp_path.rglob("*.py")}
    make("fmt", cwd=tmp_path)
    assert [p for p in snapshot if p.read_bytes() != snapshot[p]] == []
    messy = tmp_path / "bench" / "messy.py"
    messy.write_text("import sys\nimport os\n\nprint(os.sep, sys.argv)\n")
    make("fmt", cwd=tmp_path)
    assert messy.read_text() == "import os\nimport sys\n\nprint(os.sep, sys.argv)\n"


def test_deps_control_plane_engine_and_image_are_idempotent_and_leave_what_they_say() -> None:
    result = make("deps", "control-plane", "engine", "image")
    assert "creating the Python environment" not in result.stdout  # the cached one is reused
    done = subprocess.run([sys.executable, "-c", "import reconcile_lab; print(reconcile_lab"
                           ".__file__)"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith(str(REPO / "operator"))
    assert [c.name for c in building.ALL if not c.is_built()] == []
    assert dockerd.answers()
    assert [tag for tag in images.TAGS if not images.exists(tag)] == []


def test_cluster_status_and_down_bring_a_cluster_up_and_leave_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "RECONCILE_LAB_STATE": str(tmp_path / "state")}
    make("cluster", "PROVIDER=kwok", "NODES=kwok", env=env, timeout=400)
    status = _status(make("status", env=env).stdout)
    assert status["running"] == "True" and status["real node"] == "not running", status
    assert Path(status["kubeconfig"]).is_file()
    crd = subprocess.run([status["kubectl"], "--kubeconfig", status["kubeconfig"], "get", "crd",
                          CRD], capture_output=True, text=True, check=False)
    assert crd.returncode == 0, crd.stderr  # `make cluster` installs the CRD too
    make("down", "PROVIDER=kwok", env=env, timeout=200)
    after = make("status", env=env, ok=False)
    assert after.returncode != 0 and _status(after.stdout)["exists"] == "False"
    assert not Path(status["data"]).exists()


def test_down_with_remove_packages_purges_what_the_kit_installed_and_nothing_else(
        tmp_path: Path) -> None:
    # A small package the kit installs as it would Prometheus or Chromium, with a record of its
    # own so that the packages the rest of the session installed stay.
    if "hello" in debian.all_installed():
        pytest.fail("Debian's `hello` is installed here already: this test installs and "
                    "removes it (fix: `apt-get purge hello`)")
    env = {**os.environ, "RECONCILE_LAB_STATE": str(tmp_path / "state"),
           "RECONCILE_LAB_PACKAGE_RECORD": str(tmp_path / "record" / "installed.json")}
    install = subprocess.run([sys.executable, "-c", "from reconcile_lab import debian; "
                              "debian.ensure(['hello', 'bash'], needed_by='a test', "
                              "progress=print)"], env=env, capture_output=True, text=True,
                             timeout=900, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    recorded = json.loads((tmp_path / "record" / "installed.json").read_text())
    assert "hello" in recorded and "bash" not in recorded, recorded  # bash was there before
    assert shutil.which("hello")

    kept = make("down", "PROVIDER=kwok", env=env, timeout=200)
    assert "hello" in debian.all_installed(), kept.stdout + kept.stderr  # not asked to
    down = make("down", "PROVIDER=kwok", "REMOVE_PACKAGES=1", env=env, timeout=600)
    assert "hello" in down.stdout + down.stderr
    assert "hello" not in debian.all_installed() and "bash" in debian.all_installed()
    assert not (tmp_path / "record").exists()  # nothing of the kit's is left


def _status(text: str) -> dict[str, str]:
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in text.splitlines()
                if re.search(r"\S\s{2,}\S", line))


@pytest.fixture
def kwok_cluster(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[Cluster]:
    if request.config.getoption("cluster_provider") != "kwok":
        pytest.fail("the Makefile targets run on the kit's own kwok cluster")
    providers.remember("kwok")  # what `cluster up` records; make's commands find it so
    assert providers.kubeconfig() == cluster.kubeconfig
    yield cluster
    make("install")  # the rest of the session needs the CRD back


def exists(cluster: Cluster, kind: str, name: str, namespace: str | None = None) -> bool:
    return cluster.get(kind, name, namespace) is not None


def deployed_objects(cluster: Cluster) -> dict[str, bool]:
    ns = permissions.NAMESPACE
    return {
        "namespace": exists(cluster, "namespace", ns),
        "serviceaccount": exists(cluster, "serviceaccount", permissions.NAME, ns),
        "clusterrole": exists(cluster, "clusterrole", permissions.NAME),
        "clusterrolebinding": exists(cluster, "clusterrolebinding", permissions.NAME),
        "deployment": exists(cluster, "deployment", permissions.NAME, ns),
        "service": exists(cluster, "service", f"{permissions.NAME}-metrics", ns),
    }


def test_install_deploy_undeploy_uninstall_do_their_jobs(kwok_cluster: Cluster) -> None:
    cluster = kwok_cluster
    status = make("status").stdout
    assert "running" in status

    make("install")
    crd = cluster.get("crd", CRD)
    assert crd is not None and any(c["type"] == "Established" and c["status"] == "True"
                                   for c in crd["status"]["conditions"])

    # deploy loads IMG from the Docker engine into the nodes: any local image will do here
    # (test_incluster.py runs the real one).
    images.build(progress=print)
    subprocess.run(["docker", "tag", images.image("v1"), "reconcile-lab/operator:make-test"],
                   check=True)
    make("deploy", "IMG=reconcile-lab/operator:make-test")
    assert all(deployed_objects(cluster).values()), deployed_objects(cluster)
    deployment = cluster.get("deployment", permissions.NAME, permissions.NAMESPACE)
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "reconcile-lab/operator:make-test"  # IMG reached it

    make("undeploy")
    assert not any(deployed_objects(cluster).values()), deployed_objects(cluster)
    subprocess.run(["docker", "image", "rm", "reconcile-lab/operator:make-test"], check=False,
                   capture_output=True)

    make("uninstall")
    assert cluster.get("crd", CRD) is None


class Foreground:
    """A target that runs until Ctrl-C (`make run`, `make prometheus`), in a group of its own."""

    def __init__(self, *targets: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(make_argv(*targets), cwd=REPO, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         env=env or dict(os.environ))

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def ctrl_c(self, timeout: float = 20) -> int:
        return interrupt(self.proc, timeout, group=True, output=self.output)


def test_run_reconciles_in_the_foreground_until_ctrl_c(kwok_cluster: Cluster,
                                                       operator: Operator, tmp_path: Path) -> None:
    cluster = kwok_cluster
    namespace = f"t-run-{os.getpid()}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.simulate_pods_in(namespace)
    operator.kill(signal.SIGTERM)  # only `make run`'s operator works meanwhile
    try:
        run = Foreground("run", f"OPERATOR_ARGS=--metrics-port {free_port()} --health-port "
                         f"{free_port()} --namespace {namespace}", log=tmp_path / "run.log")
        cluster.apply(cases.webapp("by-make-run", namespace))
        cluster.kubectl("wait", "-n", namespace, "webapp/by-make-run", "--for=condition=Ready",
                        "--timeout=90s", timeout=100)
        assert run.ctrl_c() in (0, -signal.SIGINT, 130), run.output()
        assert "Traceback" not in run.output()
    finally:
        operator.start()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_prometheus_serves_and_render_draws_from_it(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    server = Foreground("prometheus", f"PROMETHEUS_ADDR={address}",
                        log=tmp_path / "prometheus.log",
                        env={**os.environ, "RECONCILE_LAB_STATE": str(tmp_path / "state")})
    try:
        wait_for(lambda: answers(f"http://{address}/-/ready"), timeout=60,
                 what=f"Prometheus on {address}")
        png = tmp_path / "out" / "reconciliation.png"
        make("render", f"PROMETHEUS_ADDR={address}", f"PNG={png}", timeout=120)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert (tmp_path / "state" / "prometheus").is_dir()  # its data: in the state dir
    finally:
        server.ctrl_c()


def test_grafana_says_what_is_missing_and_grafana_down_is_safe() -> None:
    missing = observe.missing_images(observe.compose_images())
    if not missing:  # a machine that has the images: the stack comes up
        make("grafana", timeout=300)
        wait_for(lambda: answers(f"{observe.GRAFANA_URL}/api/health"), timeout=120,
                 what="Grafana")
    else:  # no registry here: nothing is pulled, and the refusal says what to do
        refused = make("grafana", ok=False)
        assert refused.returncode != 0
        for image in missing:
            assert f"docker pull {image}" in refused.stderr
        assert "make prometheus" in refused.stderr
    make("grafana-down")
