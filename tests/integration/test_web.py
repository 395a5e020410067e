"""`reconcile-lab web` in a real browser: Debian's Chromium driven by playwright-core
(``browser_steps.cjs``) against the real cluster's real node and the real Docker engine.

The live page must show exercise 03's app on both engines, run the README's commands when
its buttons are pressed, and show each fault and its recovery as they happen, pushed by
Server-Sent Events: a page that stopped updating fails here. The replay plays back a real
`reconcile-lab compare` run. Both take a screenshot; RECONCILE_LAB_SCREENSHOTS=docs/img puts
them where the docs show them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reconcile_lab.cluster import nodeinfo
from reconcile_lab.web import browser
from reconcile_lab.workshop import catalog, running
from tests.conftest import Cluster, Operator, answers, free_port, wait_for
from tests.integration.test_makefile import Foreground

pytestmark = [pytest.mark.realnode, pytest.mark.cluster, pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
RL = [sys.executable, "-m", "reconcile_lab"]
# Where the screenshots go besides the test's own directory: the docs' pictures are refreshed
# with RECONCILE_LAB_SCREENSHOTS=docs/img (a test never rewrites the checkout on its own).
SHOTS = os.environ.get("RECONCILE_LAB_SCREENSHOTS", "")


def _keep(shot: Path) -> None:
    if SHOTS:
        (ROOT / SHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, ROOT / SHOTS / shot.name)


@pytest.fixture(scope="module")
def chromium() -> browser.Browser:
    return browser.ensure(progress=lambda m: print(f"[browser] {m}", file=sys.stderr))


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "RECONCILE_LAB_STATE": str(tmp / "state"),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT)])}


def drive(chromium: browser.Browser, plan: list[dict[str, Any]], tmp: Path) -> list[Any]:
    """The plan's steps in Chromium; every step's line, or the failure with a screenshot."""
    env = {**os.environ, "PLAYWRIGHT_MODULES": str(chromium.modules),
           "CHROMIUM": str(chromium.chromium), "FAILURE_SCREENSHOT": str(tmp / "failure.png")}
    done = subprocess.run(["node", str(Path(__file__).with_name("browser_steps.cjs"))],
                          input=json.dumps(plan), capture_output=True, text=True, env=env,
                          timeout=600, check=False)
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    print("\n".join(f"[browser] {line}" for line in lines), file=sys.stderr)
    assert done.returncode == 0, f"{lines[-1:]} (screenshot: {tmp / 'failure.png'})\n" \
        f"{done.stderr[-2000:]}"
    return lines


def _app(engine: str, name: str) -> str:
    return f'[data-engine="{engine}"][data-app="{name}"]'


def _until_ready(selector: str, n: int, what: str, timeout: float = 120) -> dict[str, Any]:
    return {"do": "until", "what": what, "timeout": timeout, "arg": [selector, str(n)],
            "js": "([s, n]) => document.querySelector(s)?.dataset.ready === n"}


def _pods_js(selector: str) -> str:
    return (f"[...document.querySelectorAll('{selector} tr[data-instance]')]"
            ".map(r => r.dataset.instance)")


def test_the_live_page_runs_a_fault_and_shows_the_fault_and_the_recovery(
        cluster: Cluster, operator: Operator, docker_engine: Any, namespace: str,
        chromium: browser.Browser, tmp_path: Path) -> None:
    if not nodeinfo.node_ready(cluster.kubeconfig):
        pytest.fail("no real node in this cluster: see the fall-back message of cluster up")
    env = _env(tmp_path)
    files = tmp_path / "files"
    running.copy_files([catalog.WEBAPP], namespace, files)  # exercise 03's start, in namespace
    webapp = str(files / catalog.WEBAPP)
    cluster.kubectl("apply", "-f", webapp)
    cluster.kubectl("wait", "-n", namespace, "webapp/hello", "--for=condition=Ready",
                    "--timeout=180s", timeout=200)
    twin = subprocess.run([*RL, "docker", "apply", "-f", webapp], env=env, capture_output=True,
                          text=True, timeout=180, check=False)
    assert twin.returncode == 0, twin.stdout + twin.stderr
    port = free_port()
    server = Foreground("web", f"WEB_ARGS=--port {port} --exercise 03 --namespace {namespace} "
                        f"--kubeconfig {cluster.kubeconfig} -f {webapp} --interval 0.5",
                        log=tmp_path / "web.log", env=env)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/api/model"), timeout=30,
                 what=f"the page on port {port}: {server.output()}")
        k8s, docker = _app("kubernetes", f"{namespace}/hello"), _app("docker", "hello")
        twin_name = f"hello.{namespace}"
        started = time.monotonic()
        steps = drive(chromium, [
            {"do": "goto", "url": f"http://127.0.0.1:{port}/"},
            _until_ready(k8s, 3, "the page shows 3 pods ready", 60),
            _until_ready(docker, 3, "the page shows 3 containers ready", 60),
            {"do": "eval", "what": "pods before", "js": f"window.before = {_pods_js(k8s)}"},
            {"do": "wait", "selector": '#faults button[data-fault="0"]'},
            {"do": "eval", "what": "buttons",
             "js": "[...document.querySelectorAll('#faults code')].map(c => c.textContent)"},
            {"do": "click", "selector": '#faults button[data-fault="0"]'},  # delete a pod
            {"do": "until", "what": "the deleted pod replaced, 3 ready again", "timeout": 120,
             "arg": [k8s, "3"], "js": "([s, n]) => { const a = document.querySelector(s); "
             "const rows = [...a.querySelectorAll('tr[data-instance]')].map(r => "
             "r.dataset.instance); return a.dataset.ready === n && rows.length === 3 && "
             "rows.some(r => !window.before.includes(r)); }"},
            {"do": "until", "what": "the command's run shown as ok", "timeout": 30,
             "js": "() => [...document.querySelectorAll('#runs li')].some(r => "
             "r.dataset.state === 'ok' && r.textContent.includes('delete'))"},
            {"do": "until", "what": "the ReplicaSet's SuccessfulCreate on the time axis",
             "timeout": 30, "js": "() => [...document.querySelectorAll('#events li')].some(e "
             "=> e.textContent.includes('SuccessfulCreate: Created pod'))"},
            {"do": "eval", "what": "pods after", "js": _pods_js(k8s)},
            {"do": "click", "selector": '#faults button[data-fault="1"]'},  # docker kill
            _until_ready(docker, 2, "the killed container shown, not ready", 60),
            {"do": "until", "what": "it stays exited (137)", "timeout": 30,
             "arg": [docker, f"{twin_name}-1"], "js": "([s, n]) => document.querySelector("
             "`${s} tr[data-instance=\"${n}\"]`)?.textContent.includes('Exited (137)')"},
            {"do": "until", "what": "kill and die on the time axis", "timeout": 30,
             "js": "() => [...document.querySelectorAll('#events li')].some(e => "
             "e.textContent.includes('kill') && e.textContent.includes('docker'))"},
            {"do": "until", "what": "only the live half shown", "timeout": 5,
             "js": "() => document.getElementById('replay').offsetParent === null"},
            {"do": "screenshot", "path": str(tmp_path / "web-live.png")},
            {"do": "click", "selector": '#faults button[data-fault="4"]'},  # be the controller
            _until_ready(docker, 3, "the twin applied again: 3 ready", 120),
        ], tmp_path)
        seconds = time.monotonic() - started
    finally:
        server.ctrl_c()
        subprocess.run([*RL, "docker", "delete", "hello", "-n", namespace], env=env,
                       capture_output=True, timeout=120, check=False)
    by_what = {s["what"]: s.get("value") for s in steps if s.get("what")}
    assert by_what["buttons"][:2] == [
        f"$ kubectl -n {namespace} delete $(kubectl -n {namespace} get pods -l "
        f"{catalog.SELECTOR} -o name | head -n 1) --wait=false", f"$ docker kill {twin_name}-1"]
    assert set(by_what["pods after"]) != set(by_what["pods before"])  # a new pod, not the old
    assert "Traceback" not in server.output()
    _keep(tmp_path / "web-live.png")
    print(f"browser test of the live page: {seconds:.1f} s", file=sys.stderr)


def test_the_replay_plays_a_real_compare_run_with_its_faults_and_commands(
        cluster: Cluster, operator: Operator, docker_engine: Any, chromium: browser.Browser,
        tmp_path: Path) -> None:
    if not nodeinfo.node_ready(cluster.kubeconfig):
        pytest.fail("no real node in this cluster: see the fall-back message of cluster up")
    out = tmp_path / "compare"
    operator.kill(signal.SIGTERM)  # one operator per WebApp is measured: the run's own
    try:
        done = subprocess.run([*RL, "compare", "--kubeconfig", str(cluster.kubeconfig), "--out",
                               str(out), "--scenario", "kill-one", "--engine", "operator",
                               "--engine", "twin"], env=_env(tmp_path), capture_output=True,
                              text=True, timeout=400, check=False)
    finally:
        operator.start()
    assert done.returncode == 0 and (out / "results.json").is_file(), done.stderr[-3000:]
    port = free_port()
    server = subprocess.Popen([*RL, "web", "--replay", str(out / "results.json"), "--port",
                               str(port)], env=_env(tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/api/replay"), timeout=30,
                 what="the replay server")
        started = time.monotonic()
        steps = drive(chromium, [
            {"do": "goto", "url": f"http://127.0.0.1:{port}/?scenario=kill-one"},
            {"do": "wait", "selector": '[data-engine="twin"]'},
            {"do": "eval", "what": "ready at the start",
             "js": "[...document.querySelectorAll('[data-engine]')].map(e => e.dataset.ready)"},
            {"do": "click", "selector": "#play"},
            {"do": "until", "what": "played to the end", "timeout": 120,
             "js": "() => document.body.dataset.last === 'true'"},
            {"do": "eval", "what": "markers", "js": "[...document.querySelectorAll('#markers "
             "li')].map(m => m.dataset.kind + ' ' + m.textContent)"},
            {"do": "until", "what": "only the replay half shown", "timeout": 5,
             "js": "() => document.getElementById('live').offsetParent === null"},
            {"do": "screenshot", "path": str(tmp_path / "web-replay.png")},
        ], tmp_path)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    by_what = {s["what"]: s.get("value") for s in steps if s.get("what")}
    assert by_what["ready at the start"] == ["3", "3"]
    markers = by_what["markers"]
    assert any(m.startswith("fault ") and "operator" in m for m in markers), markers
    assert any(m.startswith("fault ") and "twin" in m for m in markers), markers
    assert any("$ reconcile-lab docker apply" in m for m in markers), markers  # typed by a person
    _keep(tmp_path / "web-replay.png")
    print(f"browser test of the replay: {time.monotonic() - started:.1f} s", file=sys.stderr)
