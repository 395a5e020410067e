"""Replicas of the operator that would freeze each other, read from kopf's peering record.

With several replicas (``--peering``), kopf lets the one with the highest priority act and
pauses the others. Two live replicas of *equal* priority pause each other, and then nothing
acts at all while both look healthy. The operator asks this question once at start-up and
refuses to start rather than join such a pair.

Purely data: the record is kopf's peering object's ``status`` ({identity: {priority, lifetime,
lastseen}}), read by the caller.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any


def same_priority(status: Mapping[str, Any] | None, priority: int, *,
                  now: datetime.datetime, me: str | None = None) -> list[str]:
    """Identities of the live peers with ``priority`` (a record not renewed within its
    lifetime is a dead peer's, and kopf ignores it too); ``me`` is never counted."""
    found = []
    for identity, info in (status or {}).items():
        if identity == me or not isinstance(info, Mapping):
            continue
        try:
            seen = datetime.datetime.fromisoformat(str(info["lastseen"]))
            lifetime = datetime.timedelta(seconds=int(info.get("lifetime", 60)))
            their = int(info.get("priority", 0))
        except (KeyError, TypeError, ValueError):
            continue
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=datetime.UTC)
        if their == priority and seen + lifetime > now:
            found.append(identity)
    return sorted(found)
