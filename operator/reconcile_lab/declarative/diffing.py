"""How far a child is from what render makes, and the writes that close the gap.

The rule for a child someone edited by hand: every field the operator sets is put back (a
server-side apply), and every list entry someone else added to a list the operator sets (an
env var, a container, a port) is removed (a JSON patch). Server-side apply alone cannot do the
second: an entry another field manager owns survives our apply. Anything else someone adds
(labels, annotations, fields the operator does not set) is theirs and stays.

And for a spec that asks for less than before (no health check any more, another port): what
the operator set and no longer wants must go. An apply takes away what its own field manager
entry holds; :func:`released` tells when our entries hold something the spec dropped, and
:func:`ownership_upgrade` first moves our create's ownership into the apply's.

Purely data-manipulative: no I/O, no client libraries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import InvalidOperation
from typing import Any, NamedTuple

from reconcile_lab import spec as specs
from reconcile_lab.declarative.render import FIELD_MANAGER

# The rule for a child someone edited by hand: every field the operator sets is put back (a
# server-side apply), and every list entry someone else added to a list the operator sets (an
# env var, a container, a port) is removed (a JSON patch). Server-side apply alone cannot do the
# second: an entry another field manager owns survives our apply. Anything else someone adds
# (labels, annotations, fields the operator does not set) is theirs and stays.


def _same_leaf(path: str, want: Any, have: Any) -> bool:
    if want == have:
        return True
    # Go's omitempty: the apiserver leaves out zero values (initialDelaySeconds: 0).
    if have is None and want in (0, "", False) and not isinstance(want, float):
        return True
    # The apiserver canonicalises quantities ("0.5" is stored as "500m").
    if ".resources." in path and isinstance(want, str) and isinstance(have, str | int):
        try:
            return specs.parse_quantity(want) == specs.parse_quantity(str(have))
        except (ValueError, InvalidOperation):
            return False
    return False


def _item_key(item: Any) -> Any:
    """How the apiserver tells entries of a keyed list apart (its merge key)."""
    if not isinstance(item, Mapping):
        return None
    if "name" in item:
        return item["name"]
    port = item.get("containerPort", item.get("port"))
    # Entries with neither (tolerations) make an atomic list: compared item by item.
    return None if port is None else (port, item.get("protocol", "TCP"))


def _keyed(items: list[Any]) -> bool:
    return all(isinstance(i, Mapping) and _item_key(i) is not None for i in items)


def drift(desired: Any, observed: Any, path: str = "") -> list[str]:
    """Paths where ``observed`` differs from ``desired``, looking only at what desired sets.

    Maps: every key of desired must match; extra keys in observed (defaults, other managers'
    labels) are not drift. Keyed lists (env, containers, ports): every entry of desired must be
    there and match, in any order; entries someone else added are :func:`extras`, not drift.
    Other lists: equal item by item.
    """
    if isinstance(desired, Mapping):
        if not isinstance(observed, Mapping):
            return [path or "."]
        out: list[str] = []
        for key, value in desired.items():
            out += drift(value, observed.get(key), f"{path}.{key}")
        return out
    if isinstance(desired, list):
        if not desired and observed is None:
            return []
        if not isinstance(observed, list):
            return [path]
        if _keyed(desired) and _keyed(observed):
            have = {_item_key(i): i for i in observed if isinstance(i, Mapping)}
            out = []
            for i, want in enumerate(desired):
                key = _item_key(want)
                out += drift(want, have[key], f"{path}[{i}]") if key in have else [f"{path}[{i}]"]
            return out
        if len(observed) != len(desired):
            return [path]
        out = []
        for i, (want, have_) in enumerate(zip(desired, observed, strict=True)):
            out += drift(want, have_, f"{path}[{i}]")
        return out
    return [] if _same_leaf(path, desired, observed) else [path]


class Extra(NamedTuple):
    """An entry of a keyed list that the operator sets, added by someone else."""

    pointer: str  # JSON pointer to the entry, e.g. /spec/template/spec/containers/0/env/1
    key: Any  # its merge key, e.g. the env var's name
    where: str  # the list, readable: .spec.template.spec.containers[0].env
    item: Any  # the entry as observed

    def describe(self) -> str:
        return f"{self.where}[{self.key}]"


def extras(desired: Any, observed: Any, pointer: str = "", path: str = "") -> list[Extra]:
    """Entries in ``observed``'s keyed lists that ``desired`` does not have (see drift)."""
    out: list[Extra] = []
    if isinstance(desired, Mapping) and isinstance(observed, Mapping):
        for key, value in desired.items():
            segment = str(key).replace("~", "~0").replace("/", "~1")
            out += extras(value, observed.get(key), f"{pointer}/{segment}", f"{path}.{key}")
    elif isinstance(desired, list) and isinstance(observed, list) and _keyed(observed):
        wanted = {_item_key(i): i for i in desired if isinstance(i, Mapping)}
        for i, have in enumerate(observed):
            key = _item_key(have)
            if key in wanted:
                out += extras(wanted[key], have, f"{pointer}/{i}", f"{path}[{i}]")
            else:
                out.append(Extra(f"{pointer}/{i}", key, path, have))
    return out


def _same_object(observed: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON patch precondition: the object compared (its uid), not another of that name.
    Not its resourceVersion: the controllers' status updates change that many times a second,
    and each would make the patch fail for nothing."""
    return {"op": "test", "path": "/metadata/uid", "value": observed["metadata"]["uid"]}


def removal(observed: Mapping[str, Any], found: list[Extra]) -> list[dict[str, Any]]:
    """A JSON patch that removes ``found`` from ``observed`` and nothing else: each entry is
    tested to be where it was seen before it is removed, entries from the end of each list
    first so that the indexes stay right."""
    ops: list[dict[str, Any]] = [_same_object(observed)]

    def index(extra: Extra) -> tuple[str, int]:
        head, _, tail = extra.pointer.rpartition("/")
        return head, int(tail)

    for extra in sorted(found, key=index, reverse=True):
        ops += [{"op": "test", "path": extra.pointer, "value": extra.item},
                {"op": "remove", "path": extra.pointer}]
    return ops


# --- what our field manager holds ---------------------------------------------------------
#
# A child is created with a POST (so that it is never someone else's object taken over), and
# the apiserver records what the POST set, defaults included, under ``reconcile-lab`` with
# operation Update. Our server-side applies are another entry, operation Apply. An apply that
# no longer sets a field takes it away only from the Apply entry; the Update entry keeps it.
# Nothing needs doing about that while the spec asks for what the POST set, which is every hand
# edit: the apply puts the edited fields back and costs one write. Only when the spec drops
# something our entries hold does the Update entry first become part of the Apply entry, the
# way kubectl upgrades a client-side-applied object, so that the apply can take it away.

# The container fields the operator sets for some specs only: a health check, a drain, a
# resource amount. Any other field our entries hold and the spec does not set is a default the
# apiserver filled in (imagePullPolicy, a probe's successThreshold): leaving it is harmless.
OPTIONAL = (("lifecycle",), ("readinessProbe",), ("livenessProbe",),
            ("resources", "requests", "cpu"), ("resources", "requests", "memory"),
            ("resources", "limits", "cpu"), ("resources", "limits", "memory"))


def _merge(into: dict[str, Any], tree: Mapping[str, Any]) -> dict[str, Any]:
    for key, sub in tree.items():
        _merge(into.setdefault(key, {}), sub or {})
    return into


def _ours(observed: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    """Our manager's entries of ``observed``'s managedFields, with their index."""
    return [(i, e) for i, e in enumerate((observed.get("metadata") or {}).get("managedFields")
                                         or [])
            if e.get("manager") == FIELD_MANAGER and not e.get("subresource")]


def released(desired: Mapping[str, Any], observed: Mapping[str, Any]) -> list[str]:
    """What our entries hold on ``observed`` that ``desired`` no longer sets: list entries (an
    old port, a removed env var) and :data:`OPTIONAL` fields, as readable paths."""
    out: list[str] = []

    def walk(tree: Mapping[str, Any], want: Any, path: str, within: tuple[str, ...]) -> None:
        for key, sub in tree.items():
            if key.startswith("f:") and isinstance(want, Mapping):
                name = key[2:]
                inner = (*within, name)
                if name in want:
                    walk(sub or {}, want[name], f"{path}.{name}", inner)
                elif any(o[:len(inner)] == inner for o in OPTIONAL):
                    out.append(f"{path}.{name}")
            elif key.startswith("k:") and isinstance(want, list):
                fields = json.loads(key[2:])
                found = [i for i, item in enumerate(want) if isinstance(item, Mapping)
                         and all(item.get(k) == v for k, v in fields.items())]
                if found:
                    walk(sub or {}, want[found[0]], f"{path}[{found[0]}]", ())
                else:
                    out.append(f"{path}[{','.join(f'{k}={v}' for k, v in fields.items())}]")

    held: dict[str, Any] = {}
    for _, entry in _ours(observed):
        _merge(held, entry.get("fieldsV1") or {})
    walk(held, desired, "", ())
    return out


def ownership_upgrade(observed: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """A JSON patch that makes our create's Update entry part of our Apply entry (or the Apply
    entry itself, when there is none yet), or None when there is no Update entry of ours."""
    ours = _ours(observed)
    update = next((i for i, e in ours if e.get("operation") == "Update"), None)
    if update is None:
        return None
    applied = next(((i, e) for i, e in ours if e.get("operation") == "Apply"), None)
    entry = f"/metadata/managedFields/{update}"
    ops = [_same_object(observed),
           {"op": "test", "path": f"{entry}/manager", "value": FIELD_MANAGER},
           {"op": "test", "path": f"{entry}/operation", "value": "Update"}]
    if applied is None:
        return [*ops, {"op": "replace", "path": f"{entry}/operation", "value": "Apply"}]
    i, apply_entry = applied
    entries = (observed.get("metadata") or {}).get("managedFields") or []
    merged = _merge(_merge({}, apply_entry.get("fieldsV1") or {}),
                    entries[update].get("fieldsV1") or {})
    there = f"/metadata/managedFields/{i}"
    return [*ops, {"op": "test", "path": f"{there}/manager", "value": FIELD_MANAGER},
            {"op": "test", "path": f"{there}/operation", "value": "Apply"},
            {"op": "replace", "path": f"{there}/fieldsV1", "value": merged},
            {"op": "remove", "path": entry}]
