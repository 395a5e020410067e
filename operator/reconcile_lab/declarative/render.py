"""WebApp spec → the Deployment and Service that make it true, and how far reality is from them.

Plain constructors, the way sample-controller's ``newDeployment`` is: the operator applies
what they return, and the tests reuse them. How far a child is from them is ``diffing``'s.

Purely data-manipulative: no I/O, no client libraries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from reconcile_lab import spec as specs

FIELD_MANAGER = "reconcile-lab"
EDGE_TRIGGERED_MANAGER = "edge-triggered"  # naive.py's, the foil of exercise 10
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


# The taints the node controller puts on a node that stopped answering; a pod that tolerates
# them for N seconds is evicted N seconds after (the apiserver gives pods 300 s by default).
NODE_GONE_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def tolerations(spec: specs.WebAppSpec) -> list[dict[str, Any]]:
    return [{"key": key, "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": spec.rescheduleAfterSeconds} for key in NODE_GONE_TAINTS]


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
                    "tolerations": tolerations(spec),
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


AUTOSCALER = "HorizontalPodAutoscaler"
KINDS = ("Deployment", "Service", AUTOSCALER)  # every kind of child, in the order made


def autoscaler(owner: Owner, autoscale: specs.Autoscale) -> Manifest:
    """A HorizontalPodAutoscaler on the WebApp's scale subresource: it sets the WebApp's
    ``spec.replicas``, and the operator carries that to the Deployment as any other change."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": AUTOSCALER,
        "metadata": _metadata(owner),
        "spec": {
            "scaleTargetRef": {"apiVersion": specs.API_VERSION, "kind": specs.KIND,
                               "name": owner.name},
            "minReplicas": autoscale.minReplicas,
            "maxReplicas": autoscale.maxReplicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization",
                "averageUtilization": autoscale.targetCPUUtilizationPercentage}}}],
            "behavior": {"scaleDown": {
                "stabilizationWindowSeconds": autoscale.scaleInAfterSeconds}},
        },
    }


def children(owner: Owner, spec: specs.WebAppSpec) -> tuple[Manifest, ...]:
    """What the spec asks for; a kind of :data:`KINDS` left out must not exist."""
    made = (deployment(owner, spec), service(owner, spec))
    return made if spec.autoscale is None else (*made, autoscaler(owner, spec.autoscale))


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
