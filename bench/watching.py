"""One watch per resource, timestamps on receipt: what the convergence harness measures with.

Only watches (no polling, no writes), so it adds no load of its own to what it measures.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from bench.probing import say


class Watch(threading.Thread):
    """One watch on one resource in the namespace: when each name first appeared and first
    became ready (by ``ready``), plus waiters for the latency rounds."""

    def __init__(self, open_stream: Callable[..., Any],
                 ready: Callable[[dict[str, Any]], bool]) -> None:
        super().__init__(daemon=True)
        self.open_stream = open_stream
        self.response = open_stream()  # returns once the watch is established
        self.version = ""
        self.stopped = False
        self.ready = ready
        self.added: dict[str, float] = {}
        self.readied: dict[str, float] = {}
        self.events = 0
        self._waiters: list[tuple[Callable[[str, dict[str, Any]], bool], threading.Event]] = []
        self._lock = threading.Lock()
        self.start()

    def run(self) -> None:
        while not self.stopped:
            buf = b""
            try:
                for chunk in self.response.stream(1 << 16):
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        self._handle(json.loads(line))
            except Exception as e:  # closed by stop(), or the connection broke
                if not self.stopped:
                    say(f"watch broke ({type(e).__name__}: {e}); resuming")
            if not self.stopped:  # the apiserver ended the watch: resume where it was
                with contextlib.suppress(Exception):
                    self.response = self.open_stream(resource_version=self.version)
                    continue
                time.sleep(0.2)

    def _handle(self, event: dict[str, Any]) -> None:
        now = time.monotonic()
        kind, obj = event.get("type", ""), event.get("object") or {}
        name = obj.get("metadata", {}).get("name", "")
        if kind == "ERROR":  # e.g. 410 Gone: list again from now
            self.version = ""
            return
        self.version = obj.get("metadata", {}).get("resourceVersion", self.version)
        self.events += 1
        if kind in ("ADDED", "MODIFIED"):
            self.added.setdefault(name, now)
            if name not in self.readied and self.ready(obj):
                self.readied[name] = now
        with self._lock:
            for predicate, flag in list(self._waiters):
                if predicate(kind, obj):
                    flag.set()
                    self._waiters.remove((predicate, flag))

    @contextlib.contextmanager
    def expect(self, predicate: Callable[[str, dict[str, Any]], bool]) -> Iterator[
            threading.Event]:
        """Register before acting, so that a fast reaction cannot be missed."""
        flag = threading.Event()
        with self._lock:
            self._waiters.append((predicate, flag))
        yield flag

    def stop(self) -> None:
        self.stopped = True
        with contextlib.suppress(Exception):
            self.response.shutdown()  # close() would wait for the reading thread


def deployment_ready(d: dict[str, Any]) -> bool:
    want = (d.get("spec") or {}).get("replicas", 1)
    return int((d.get("status") or {}).get("readyReplicas") or 0) >= int(want)


def webapp_ready(w: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (w.get("status") or {}).get("conditions") or [])


def foo_ready(f: dict[str, Any]) -> bool:
    want = (f.get("spec") or {}).get("replicas", 1)
    return int((f.get("status") or {}).get("availableReplicas") or 0) >= int(want)
