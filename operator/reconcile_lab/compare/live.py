"""``reconcile-lab watch``: read both engines every second and redraw the view (rich Live).

An I/O adapter: it reads WebApps and Events (``declarative.kube``), Docker's containers and
events (``probes.Docker``), the twin's metrics on 127.0.0.1:8001 when a --watch loop serves
them, and the WebApp files given with -f. What is shown is ``view``'s business. It writes
nothing anywhere; Ctrl-C (or SIGTERM) ends it cleanly.
"""

from __future__ import annotations

import signal
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType

import yaml
from rich.console import Console
from rich.live import Live

from reconcile_lab import parsing, ports
from reconcile_lab.compare import probes, view

HISTORY = 600.0  # seconds of Docker events shown


def _files_desired(files: list[str]) -> dict[str, int]:
    desired: dict[str, int] = {}
    for path in files:
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if doc:
                app = parsing.parse_document(doc, source=path)
                desired[app.name] = app.spec.replicas
    return desired


def _twin_metrics() -> str | None:
    try:
        # ports.url is always http://127.0.0.1:PORT…, never file: or a custom scheme.
        url = ports.url(ports.TWIN_METRICS, "/metrics")
        with urllib.request.urlopen(url, timeout=0.5) as r:  # noqa: S310
            return str(r.read().decode())
    except OSError:
        return None


class Reader:
    """One reading of both engines a call. ``instances``: every pod and container too, with
    its restarts (one more list call, and one ``docker inspect`` per container)."""

    def __init__(self, files: list[str], kubeconfig: Path | None, namespace: str | None, *,
                 instances: bool = False) -> None:
        self.files = files
        self.namespace = namespace
        self.instances = instances
        self.docker = probes.Docker(timeout=3)
        self.kube_error = ""
        try:
            if kubeconfig is None:
                from reconcile_lab.cluster import providers

                kubeconfig = providers.kubeconfig()
            if not kubeconfig.is_file():
                self.kube_error = (f"no cluster: no kubeconfig at {kubeconfig} "
                                   "(fix: reconcile-lab cluster up)")
            else:
                probes.kube_connect(kubeconfig)
        except Exception as e:
            self.kube_error = f"cannot use the cluster: {e}"

    def kubernetes(self) -> dict[str, object]:
        if self.kube_error:
            return {"kubernetes_error": self.kube_error}
        from reconcile_lab import spec as specs

        ns = f"/namespaces/{self.namespace}" if self.namespace else ""
        try:
            webapps = probes.items(probes.kube_get(
                f"/apis/{specs.GROUP}/{specs.VERSION}{ns}/{specs.PLURAL}"))
            # With the instances, their events too: the ReplicaSet creating a pod, the kubelet
            # killing and starting one (what the operator's own events do not show).
            events = probes.items(probes.kube_get(f"/api/v1{ns}/events", **(
                {} if self.instances else {"fieldSelector": f"involvedObject.kind={specs.KIND}"})))
            pods = probes.items(probes.kube_get(
                f"/api/v1{ns}/pods", labelSelector=view.LABEL_APP)) if self.instances else []
        except Exception as e:
            return {"kubernetes_error": f"the cluster does not answer: {e}"[:300]
                    + "\n(fix: reconcile-lab cluster up)"}
        apps = view.from_webapps(webapps)
        actions, repairs = view.from_events(view.of_apps(events, apps))
        return {"kubernetes": apps, "kubernetes_actions": actions,
                "kubernetes_repairs": repairs, "kubernetes_instances": view.from_pods(pods)}

    def docker_side(self, now: float) -> dict[str, object]:
        try:
            # One namespace: only its twin's containers (a same-named app elsewhere is another).
            labels = [view.LABEL_APP] + ([f"{view.LABEL_NAMESPACE}={self.namespace}"]
                                         if self.namespace else [])
            containers = self.docker.containers(label=labels)
            events = self.docker.events(now - HISTORY, now, type=["container"], label=labels)
            restarts = {str(c.get("Id")): int(((self.docker.inspect(str(c.get("Id"))) or {})
                                               .get("RestartCount")) or 0)
                        for c in containers} if self.instances else {}
        except probes.DockerError as e:
            return {"docker_error": f"no Docker engine answers: {e}\n(fix: reconcile-lab engine up)"}
        desired: dict[str, int] = {}
        sources = []
        repairs = None
        metrics = _twin_metrics()
        if metrics is not None:
            desired, repairs = view.from_twin_metrics(metrics)
            sources.append("the --watch loop's metrics (127.0.0.1:8001)")
        if self.files:
            try:
                desired.update(_files_desired(self.files))
                sources.append(", ".join(self.files))
            except (OSError, yaml.YAMLError, parsing.InvalidWebApp) as e:
                sources.append(f"(cannot read the files: {str(e).splitlines()[0]})")
        return {"docker": view.from_containers(containers, desired),
                "docker_actions": view.from_docker_events(events), "docker_repairs": repairs,
                "docker_desired_from": " and ".join(sources),
                "docker_instances": view.from_container_list(containers, restarts)
                if self.instances else ()}

    def frame(self) -> view.Frame:
        now = time.time()
        parts: dict[str, object] = {}
        parts.update(self.kubernetes())
        parts.update(self.docker_side(now))
        return view.Frame(now=now, **parts)  # type: ignore[arg-type]


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(*, once: bool, interval: float, files: list[str], kubeconfig: Path | None,
         namespace: str | None) -> int:
    reader = Reader(files, kubeconfig, namespace)
    # Not a terminal (a pipe, a test): wide enough for both panels side by side.
    console = Console(width=None if sys.stdout.isatty() else 170)
    if once:
        console.print(view.render(reader.frame()))
        return 0
    before = signal.signal(signal.SIGTERM, _stop)
    try:
        with Live(view.render(reader.frame()), console=console, refresh_per_second=4,
                  screen=False) as live:
            while True:
                time.sleep(max(0.2, interval))
                live.update(view.render(reader.frame()))
    except KeyboardInterrupt:
        print("watch: stopped", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGTERM, before)
