"""Writes as the apiserver saw them: the kit's cluster keeps an audit log of every write to
Deployments, Services, Events and WebApps (cluster/kwok.py's audit policy).

A client's own counters say what it meant to do; the audit log says what reached the
apiserver, so a test or a benchmark that must prove "no write" or "one write" counts here.
The operator's requests carry the user agent ``reconcile-lab-operator`` (declarative/kube.py);
Events posted through kopf carry kopf's.

Reads a file; no other I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

OPERATOR_AGENT = "reconcile-lab-operator"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


class Write(NamedTuple):
    verb: str
    resource: str  # deployments, services, events, webapps (subresource: webapps/status)
    namespace: str
    name: str
    agent: str
    code: int

    @property
    def succeeded(self) -> bool:
        return 200 <= self.code < 300


def _parse(line: str) -> Write | None:
    try:
        event: dict[str, Any] = json.loads(line)
    except ValueError:
        return None  # a line being written as we read
    if event.get("stage") != "ResponseComplete" or event.get("verb") not in WRITE_VERBS:
        return None
    ref = event.get("objectRef") or {}
    resource = str(ref.get("resource", ""))
    if ref.get("subresource"):
        resource += "/" + ref["subresource"]
    return Write(str(event["verb"]), resource, str(ref.get("namespace", "")),
                 str(ref.get("name", "")), str(event.get("userAgent", "")),
                 int((event.get("responseStatus") or {}).get("code", 0)))


class AuditLog:
    """One cluster's audit log; :meth:`mark` then :meth:`writes` counts what came after."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        """A position: writes after it are counted by ``writes(since=...)``."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _lines(self, since: int) -> Iterator[str]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(since)
                for raw in handle:
                    if raw.endswith(b"\n"):
                        yield raw.decode(errors="replace")
        except FileNotFoundError:
            return

    def writes(self, *, since: int = 0, agent: str | None = OPERATOR_AGENT,
               namespace: str | None = None, name: str | None = None,
               resource: str | None = None, succeeded: bool = True) -> list[Write]:
        """Writes after ``since`` by user agents starting with ``agent`` (None: anyone)."""
        found = []
        for line in self._lines(since):
            write = _parse(line)
            if write is None or (succeeded and not write.succeeded):
                continue
            if agent is not None and not write.agent.startswith(agent):
                continue
            if namespace is not None and write.namespace != namespace:
                continue
            if name is not None and write.name != name:
                continue
            if resource is not None and write.resource != resource:
                continue
            found.append(write)
        return found
