"""Reading both engines many times a second, cheaply: an I/O adapter, read-only.

- Docker: the engine's HTTP API on its unix socket with the standard library (one list call
  answers for every app; the SDK would inspect each container once more). Nothing is written.
- Kubernetes: ``declarative.kube.get_json`` (the one module that holds the official client).
- Traffic: plain HTTP GETs to 127.0.0.1 only, one at a time, with a short timeout.

It decides nothing: what a sample means is ``timeline``'s business.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reconcile_lab.cluster import dockerd
from reconcile_lab.compare import timeline


class DockerError(RuntimeError):
    pass


class Docker:
    """GETs on the Docker engine API. Thread-safe: one connection per call."""

    def __init__(self, socket_path: Path | None = None, timeout: float = 5.0) -> None:
        self.socket = socket_path or dockerd.SOCKET
        self.timeout = timeout

    def get(self, path: str, **query: Any) -> Any:
        params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in query.items()}
        url = path + ("?" + urllib.parse.urlencode(params) if params else "")
        conn = dockerd.UnixConnection(self.socket, self.timeout)
        try:
            conn.request("GET", url)
            response = conn.getresponse()
            body = response.read()
        except OSError as e:
            raise DockerError(f"Docker engine on {self.socket}: {e}") from None
        finally:
            conn.close()
        if response.status == 404:
            return None
        if response.status >= 400:
            raise DockerError(f"GET {path}: HTTP {response.status}: {body[:200]!r}")
        return json.loads(body) if body else None

    def containers(self, **filters: list[str]) -> list[dict[str, Any]]:
        found = self.get("/containers/json", all="1", **({"filters": filters} if filters else {}))
        return list(found or [])

    def networks(self) -> list[dict[str, Any]]:
        return list(self.get("/networks") or [])

    def service(self, name: str) -> dict[str, Any] | None:
        found = self.get(f"/services/{urllib.parse.quote(name)}")
        return dict(found) if found else None

    def inspect(self, name: str) -> dict[str, Any] | None:
        found = self.get(f"/containers/{urllib.parse.quote(name)}/json")
        return dict(found) if found else None

    def swarm_state(self) -> str:
        info = self.get("/info") or {}
        return str((info.get("Swarm") or {}).get("LocalNodeState", "inactive"))

    def version(self) -> str:
        return str((self.get("/version") or {}).get("Version", "unknown"))

    def events(self, since: float, until: float, **filters: list[str]) -> list[dict[str, Any]]:
        """Events between two Unix times (a bounded read: the call returns at ``until``)."""
        query: dict[str, Any] = {"since": f"{since:.3f}", "until": f"{until:.3f}"}
        if filters:
            query["filters"] = filters
        params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in query.items()}
        conn = dockerd.UnixConnection(self.socket, self.timeout)
        try:
            conn.request("GET", "/events?" + urllib.parse.urlencode(params))
            body = conn.getresponse().read().decode(errors="replace")
        except OSError as e:
            raise DockerError(f"Docker engine on {self.socket}: {e}") from None
        finally:
            conn.close()
        return [json.loads(line) for line in body.splitlines() if line.strip()]


class Snapshot:
    """Every container and network, refreshed at most every ``ttl`` seconds, shared by the
    samplers of all Docker engines (one API call answers for every app)."""

    def __init__(self, docker: Docker, ttl: float = 0.09) -> None:
        self.docker = docker
        self.ttl = ttl
        self._lock = threading.Lock()
        self._at = 0.0
        self._containers: list[dict[str, Any]] = []
        self._networks: set[str] = set()

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._at < self.ttl:
                return
            self._containers = self.docker.containers()
            self._networks = {str(n.get("Name")) for n in self.docker.networks()}
            self._at = time.monotonic()

    def containers(self, label: str, value: str) -> list[dict[str, Any]]:
        self._refresh()
        return [c for c in self._containers if (c.get("Labels") or {}).get(label) == value]

    def network_exists(self, name: str) -> bool:
        self._refresh()
        return name in self._networks

    def invalidate(self) -> None:
        with self._lock:
            self._at = 0.0


def kube_get(path: str, **query: str) -> dict[str, Any] | None:
    from reconcile_lab.declarative import kube

    return kube.get_json(path, **query)


def kube_connect(kubeconfig: Path) -> None:
    from reconcile_lab.declarative import kube

    kube.connect(str(kubeconfig), pool_size=8)


def http_get(port: int, *, path: str = "/", timeout: float = 1.0) -> tuple[bool, str]:
    """One request to 127.0.0.1:port; (answered 200, the version it says it runs)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            body = r.read()
            ok = r.status == 200
    except (OSError, http.client.HTTPException):
        return False, ""
    try:
        version = str(json.loads(body).get("version", ""))
    except ValueError:
        version = ""
    return ok, version


class Traffic:
    """Real requests to 127.0.0.1, about ``rate`` a second (each one forks a CGI script in a
    container: more would load the 2 cores the engines share), round-robin over the instances
    Docker listed as ready at most 0.1 s earlier (``targets()``): a load balancer with health
    checks, refreshed ten times a second. With no ready instance, a request counts as failed.
    ``paused``: nothing is sent until :meth:`resume` (a load that a scenario's step starts)."""

    def __init__(self, targets: Callable[[], list[int]], clock: Callable[[], float],
                 rate: float = 10.0, *, path: str = "/", paused: bool = False) -> None:
        self.targets = targets
        self.clock = clock
        self.period = 1.0 / rate
        self.path = path
        self.requests: list[timeline.Request] = []
        self._sending = threading.Event()
        if not paused:
            self._sending.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._next = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._sending.set()
        self._thread.join(timeout=5)

    def resume(self) -> None:
        self._sending.set()

    def pause(self) -> None:
        self._sending.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sending.wait()
            if self._stop.is_set():
                return
            began = time.monotonic()
            t = self.clock()
            try:
                ports = self.targets()
            except Exception:  # the engine did not answer: the client has nowhere to go
                ports = []
            if ports:
                self._next = (self._next + 1) % len(ports)
                ok, version = http_get(ports[self._next], path=self.path)
            else:
                ok, version = False, ""
            self.requests.append(timeline.Request(t, ok, version))
            self._stop.wait(max(0.0, self.period - (time.monotonic() - began)))


def pods_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


def object_path(kind: str, namespace: str, name: str) -> str:
    from reconcile_lab import spec

    base = {"webapp": f"/apis/{spec.GROUP}/{spec.VERSION}/namespaces/{namespace}/{spec.PLURAL}",
            "deployment": f"/apis/apps/v1/namespaces/{namespace}/deployments",
            "service": f"/api/v1/namespaces/{namespace}/services"}[kind]
    return f"{base}/{name}"


def healthz(port: int) -> bool:
    with contextlib.suppress(OSError), \
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
        return bool(r.status == 200)
    return False


def items(listing: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return list((listing or {}).get("items") or [])
