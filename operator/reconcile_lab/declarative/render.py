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
    if spec.healthCheck is not None:
        out["readinessProbe"] = _probe(spec.healthCheck, spec.port)
        # Liveness waits longer than readiness: restarting is the bigger hammer.
        out["livenessProbe"] = {**_probe(spec.healthCheck, spec.port),
                                "failureThreshold": spec.healthCheck.failureThreshold * 2}
    if not out["env"]:
        del out["env"]
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


def drift(desired: Any, observed: Any, path: str = "") -> list[str]:
    """Paths where ``observed`` differs from ``desired``, looking only at what desired sets.

    Maps: every key of desired must match; extra keys in observed (defaults, other managers'
    labels) are not drift. Lists: same length, item by item (an extra env var is drift).
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
        if not isinstance(observed, list) or len(observed) != len(desired):
            return [path]
        out = []
        for i, (want, have) in enumerate(zip(desired, observed, strict=True)):
            out += drift(want, have, f"{path}[{i}]")
        return out
    return [] if _same_leaf(path, desired, observed) else [path]


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controlling owner, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None
