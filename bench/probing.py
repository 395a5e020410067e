"""Small probes the convergence harness uses: free ports, waiting, /proc, Prometheus text.

Reads processes and endpoints; starts nothing and decides nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

WRITE_VERBS = ("POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION")


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f}s")
        time.sleep(every)
    return value


def until_all(count: Callable[[], int], n: int, what: str, stall: float = 60) -> None:
    """Wait until ``count()`` reaches n; give up when it stops moving for ``stall`` seconds."""
    last, moved = -1, time.monotonic()
    while (now := count()) < n:
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved > stall:
            raise TimeoutError(f"{what}: stuck at {now}/{n} for {stall:.0f}s")
        time.sleep(0.05)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - a fixed http URL
            return bool(r.status == 200)
    except OSError:
        return False


def http_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - a fixed http URL
        return str(r.read().decode())


def proc_stats(pid: int) -> dict[str, float]:
    """RSS (MB), peak RSS (MB) and CPU seconds (user + system) of one process."""
    status = Path(f"/proc/{pid}/status").read_text()
    kb = {k: int(v.split()[0]) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(.*)$", status, re.M)}
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"rss_mb": kb.get("VmRSS", 0) / 1024, "peak_rss_mb": kb.get("VmHWM", 0) / 1024,
            "cpu_s": (int(fields[11]) + int(fields[12])) / ticks}


_SAMPLE = re.compile(r'^(\w+)\{(.*)\}\s+([0-9.e+-]+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if line.startswith(name + "{") and (m := _SAMPLE.match(line)):
            out.append((dict(_LABEL.findall(m.group(2))), float(m.group(3))))
    return out


def apiserver_writes(kubeconfig: Path) -> dict[str, float]:
    """Write requests so far, by ``resource[/subresource]`` (``apiserver_request_total``)."""
    from reconcile_lab.cluster import probing

    text = probing.kubectl(kubeconfig, "get", "--raw", "/metrics", timeout=60).stdout
    out: dict[str, float] = {}
    for labels, value in samples(text, "apiserver_request_total"):
        if labels.get("verb") in WRITE_VERBS:
            key = labels.get("resource", "") + (f"/{labels['subresource']}"
                                                if labels.get("subresource") else "")
            out[key] = out.get(key, 0) + value
    return out


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
