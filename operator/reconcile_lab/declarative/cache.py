"""What the operator knows of its objects between its own writes and the watch catching up.

The watch is the operator's eyes, and it lags: an event already in flight when we wrote carries
the older object, and comparing against it would write the same fix again. So the answer of
every write stands in for the object until the watch delivers that version or a newer one
(client-go's informer has the same gap; controller-runtime closes it by requeueing). Two more
things the watch can get wrong are remembered here: a deletion reported *before* the answer to
our write arrived (the older write must not bring the child back), and children a broken watch
lost without reporting (found by the periodic resync).

Everything is kept per WebApp key and dropped by :meth:`ReadYourWrites.forget` when the WebApp
goes, so the state is bounded by the number of live WebApps.

Purely data-manipulative: no I/O, no client libraries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from reconcile_lab import spec as specs
from reconcile_lab.declarative import render

Key = tuple[str, str]  # namespace, name of the WebApp (and of its children)
Slot = tuple[str, str, str]  # kind, namespace, name
KINDS = (specs.KIND, *render.KINDS)


def version(obj: Mapping[str, Any] | None) -> int:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:  # opaque in principle; etcd revisions in practice
        return 0


class Packed(NamedTuple):
    """What the caches keep of an object: its name, resourceVersion, whether a WebApp owns it,
    and compact JSON without the fields of managedFields' status entries (of someone else's
    object, only name and owners).
    Decoded, a Deployment takes about ten times the memory of its JSON; a reconcile decodes
    only the three objects it compares."""

    name: str
    version: int
    data: bytes
    owned: bool = True

    def unpack(self) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.data)
        return obj


def pack(body: Mapping[str, Any], owned: bool = True) -> Packed:
    # Of managedFields what is set on the object itself, which diffing.released reads; of the
    # controllers' status entries only who, how and where (an upgrade patch counts entries).
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    managers = [e if not e.get("subresource") else
                {k: e.get(k) for k in ("manager", "operation", "subresource")}
                for e in (body.get("metadata") or {}).get("managedFields") or []]
    if owned and managers:
        meta["managedFields"] = managers
    obj = {**body, "metadata": meta} if owned else {"metadata": {
        k: meta[k] for k in ("name", "namespace", "ownerReferences") if k in meta}}
    data = json.dumps(obj, separators=(",", ":")).encode()
    return Packed(str(meta.get("name", "")), version(body), data, owned)


class Store:
    """The watch's view: every WebApp, Deployment and Service the operator sees, packed, under
    its own namespace and name. One per operator.

    The watch's events fill it, and before any reconcile runs one LIST of each kind does (the
    informer's cache sync): a reconcile must never take a child not listed yet for a missing
    one. An event older than what is held (the start-up LIST racing the watch) changes nothing.

    Each change is numbered, so a periodic LIST can tell what it may judge: an object put after
    the LIST began may be missing from its answer only because it is newer than the answer.
    """

    def __init__(self) -> None:
        self._objects: dict[str, dict[Key, Packed]] = {kind: {} for kind in KINDS}
        self._changed_at: dict[Slot, int] = {}
        self._changes = 0

    def put(self, kind: str, key: Key, packed: Packed) -> None:
        held = self._objects[kind].get(key)
        if held is None or packed.version >= held.version:
            self._objects[kind][key] = packed
            self._changes += 1
            self._changed_at[(kind, *key)] = self._changes

    def drop(self, kind: str, key: Key) -> None:
        self._objects[kind].pop(key, None)
        self._changed_at.pop((kind, *key), None)

    def mark(self) -> int:
        """A point in the store's history, taken before a LIST."""
        return self._changes

    def unchanged_since(self, kind: str, key: Key, mark: int) -> bool:
        """Was what is held under the key already held, as it is, at ``mark``?"""
        return self._changed_at.get((kind, *key), mark + 1) <= mark

    def get(self, kind: str, key: Key) -> Packed | None:
        return self._objects[kind].get(key)

    def webapp_keys(self) -> list[Key]:
        return list(self._objects[specs.KIND])

    def __len__(self) -> int:
        return sum(map(len, self._objects.values()))


class ReadYourWrites:
    """Our own writes until the watch shows them, and what the watch missed. One per operator."""

    def __init__(self) -> None:
        self._written: dict[Slot, Packed] = {}  # the answer to our last write, until seen
        self._echo: dict[Slot, int] = {}  # the version our last write produced
        self._deleted: dict[Slot, int] = {}  # the version of a reported deletion
        self._vanished: dict[Slot, int] = {}  # cached, but a fresh LIST no longer shows it

    # --- what happened ---

    def wrote(self, kind: str, key: Key, answer: Mapping[str, Any]) -> None:
        packed = pack(answer)
        self._written[(kind, *key)] = packed
        self._echo[(kind, *key)] = packed.version

    def seen(self, kind: str, key: Key, packed: Packed) -> Packed:
        """The watch delivered ``packed``: our write is no longer needed once the cache holds
        it or something newer."""
        slot = (kind, *key)
        self._deleted.pop(slot, None)
        mine = self._written.get(slot)
        if mine is not None and packed.version >= mine.version:
            del self._written[slot]
        return packed

    def deleted(self, kind: str, key: Key, at_version: int) -> None:
        self._written.pop((kind, *key), None)
        self._deleted[(kind, *key)] = at_version

    def vanished(self, kind: str, key: Key, cached_version: int) -> None:
        self._vanished[(kind, *key)] = cached_version

    def forget(self, key: Key) -> None:
        """The WebApp is gone: nothing of it is kept."""
        tables: tuple[dict[Slot, Any], ...] = (self._written, self._echo, self._deleted,
                                               self._vanished)
        for table in tables:
            for kind in KINDS:
                table.pop((kind, *key), None)

    # --- questions ---

    def is_echo(self, kind: str, key: Key, at_version: int) -> bool:
        """Is this event the watch showing our own last write? The reconcile that wrote it
        already compared everything against it: it needs no reconcile of its own."""
        return at_version != 0 and self._echo.get((kind, *key)) == at_version

    def is_vanished(self, kind: str, key: Key) -> bool:
        return (kind, *key) in self._vanished

    def freshest(self, kind: str, key: Key,
                 cached: dict[str, Any] | None) -> dict[str, Any] | None:
        """The object as the operator should see it: the cache, or our newer write, or None
        when the cache is known to be stale (a reconcile then reads the child by name)."""
        slot = (kind, *key)
        gone = self._vanished.get(slot)
        if gone is not None:
            if cached is not None and version(cached) > gone:
                del self._vanished[slot]  # a newer object arrived: the cache is right again
            else:
                cached = None
        mine = self._written.get(slot)
        if mine is not None and mine.version <= self._deleted.get(slot, 0):
            del self._written[slot]  # written before the deletion the watch already reported
            mine = None
        if mine is None:
            return cached
        if cached is not None and version(cached) >= mine.version:
            del self._written[slot]  # the cache has caught up
            return cached
        return mine.unpack()  # created or changed by us, not yet seen by the watch

    def __len__(self) -> int:
        """Entries held, all tables together: back to its baseline once the WebApps are gone."""
        return len(self._written) + len(self._echo) + len(self._deleted) + len(self._vanished)
