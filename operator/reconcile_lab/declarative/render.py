"""WebApp spec → the Deployment and Service that make it true, and how far reality is from them.

Plain constructors, the way sample-controller's ``newDeployment`` is: the operator applies
what they return, and the tests reuse them. :func:`drift` compares only the fields we set, so
defaults the apiserver fills in never look like drift.

Purely data-manipulative: no I/O, no client libraries.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import InvalidOperation
from typing import Any, NamedTuple

from reconcile_lab import spec as specs

FIELD_MANAGER = "reconcile-lab"
MANAGED_BY = "app.kubernetes.io/managed-by"
APP_LABEL = "reconcile-lab/app"
CONTAINER = "app"
PORT_NAME = "http"
# The demo image runs as this user; any image meeting the restricted pod security standard can.
RUN_AS = 65532

Manifest = dict[str, Any]


class Owner(NamedTuple):
    """The WebApp a child belongs to."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": specs.API_VERSION, "kind": specs.KIND, "name": self.name,
            "uid": self.uid, "controller": True, "blockOwnerDeletion": True,
        }


def selector(name: str) -> dict[str, str]:
    """Pod selector: immutable for the life of a Deployment, so only stable labels."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}


def selector_string(name: str) -> str:
    return ",".join(f"{k}={v}" for k, v in selector(name).items())


def labels(name: str) -> dict[str, str]:
    return {**selector(name), MANAGED_BY: FIELD_MANAGER, "app.kubernetes.io/part-of": name,
            APP_LABEL: name}


def _metadata(owner: Owner) -> dict[str, Any]:
    return {
        "name": owner.name,
        "namespace": owner.namespace,
        "labels": labels(owner.name),
        "ownerReferences": [owner.reference()],
    }


def _resources(resources: specs.Resources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("requests", "limits"):
        amounts = getattr(resources, key)
        if amounts is not None:
            values = {k: v for k, v in (("cpu", amounts.cpu), ("memory", amounts.memory)) if v}
            if values:
                out[key] = values
    return out


def _probe(check: specs.HealthCheck, port: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": check.path, "port": port, "scheme": "HTTP"},
        "initialDelaySeconds": check.initialDelaySeconds,
        "periodSeconds": check.periodSeconds,
        "timeoutSeconds": check.timeoutSeconds,
        "failureThreshold": check.failureThreshold,
    }


def container(spec: specs.WebAppSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image,
        "ports": [{"name": PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}],
        # Always set, even empty: an env var someone adds by hand is then an extra to remove.
        "env": [{"name": e.name, "value": e.value} for e in spec.env],
        "resources": _resources(spec.resources),
        # The restricted pod security standard, container part.
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
        },
    }
    if spec.rollout.drainSeconds:
        # Endpoints and every node's proxy learn of a terminating pod a moment after it is
        # told to stop; serving meanwhile is what makes a rollout lose no request.
        out["lifecycle"] = {"preStop": {"sleep": {"seconds": spec.rollout.drainSeconds}}}
    if spec.healthCheck is not None:
        out["readinessProbe"] = _probe(spec.healthCheck, spec.port)
        # Liveness waits longer than readiness: restarting is the bigger hammer.
        out["livenessProbe"] = {**_probe(spec.healthCheck, spec.port),
                                "failureThreshold": spec.healthCheck.failureThreshold * 2}
    return out


def deployment(owner: Owner, spec: specs.WebAppSpec) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner),
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": selector(owner.name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": spec.rollout.maxSurge,
                                  "maxUnavailable": spec.rollout.maxUnavailable},
            },
            "template": {
                "metadata": {"labels": labels(owner.name)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS,
                        "runAsGroup": RUN_AS,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container(spec)],
                },
            },
        },
    }


def service(owner: Owner, spec: specs.WebAppSpec) -> Manifest:
    port: dict[str, Any] = {"name": PORT_NAME, "port": spec.port, "targetPort": spec.port,
                            "protocol": "TCP"}
    if spec.service.nodePort is not None:
        port["nodePort"] = spec.service.nodePort
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner),
        "spec": {"type": spec.service.type, "selector": selector(owner.name), "ports": [port]},
    }


def children(owner: Owner, spec: specs.WebAppSpec) -> tuple[Manifest, Manifest]:
    return deployment(owner, spec), service(owner, spec)


# --- comparing ------------------------------------------------------------------------------
#
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
    return (item.get("containerPort", item.get("port")), item.get("protocol", "TCP"))


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


def ownership_upgrade(observed: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """A JSON patch that turns our create's field ownership into an apply's, or None when
    there is nothing to turn.

    A child is created with a POST (so that it is never someone else's object taken over), and
    the apiserver records the fields it set as owned by ``reconcile-lab`` with operation
    Update. A later server-side apply by ``reconcile-lab`` is another owner: it would leave
    what the create set and the spec no longer asks for (an old port next to the new one). So
    before the first apply, the create's entry becomes an Apply entry, the way kubectl upgrades
    a client-side-applied object to server-side apply."""
    entries = (observed.get("metadata") or {}).get("managedFields") or []
    ours = [(i, e.get("operation")) for i, e in enumerate(entries)
            if e.get("manager") == FIELD_MANAGER]
    updates = [i for i, operation in ours if operation == "Update"]
    if not updates or any(operation == "Apply" for _, operation in ours):
        return None
    entry = f"/metadata/managedFields/{updates[0]}"
    return [_same_object(observed),
            {"op": "test", "path": f"{entry}/manager", "value": FIELD_MANAGER},
            {"op": "test", "path": f"{entry}/operation", "value": "Update"},
            {"op": "replace", "path": f"{entry}/operation", "value": "Apply"}]


# --- ownership: the one answer to "whose child is this?" -------------------------------------


def controlling_webapp(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The controlling owner reference of ``obj`` when a WebApp holds it, else None.

    Children are recognised by this, never by labels: a label edited away must still be seen
    (and repaired)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            if ref.get("kind") == specs.KIND \
                    and str(ref.get("apiVersion", "")).startswith(specs.GROUP + "/"):
                return ref  # type: ignore[no-any-return]
            return None
    return None


def owner_name(obj: Mapping[str, Any]) -> str | None:
    """The name of the WebApp that controls ``obj``, if one does."""
    ref = controlling_webapp(obj)
    return str(ref["name"]) if ref is not None else None


def controlled_by(obj: Mapping[str, Any], uid: str) -> bool:
    ref = controlling_webapp(obj)
    return ref is not None and ref.get("uid") == uid
