"""Invalid WebApps, shared by every test that checks refusal: the apiserver (through the CRD),
the spec model and the Docker twin must all refuse each one, naming the same field."""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

IMAGE = "reconcile-lab/hello:v1"


def webapp(name: str = "web", namespace: str | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "reconcile-lab.dev/v1alpha1", "kind": "WebApp", "metadata": meta,
            "spec": {"image": IMAGE, **spec}}


class Invalid(NamedTuple):
    id: str
    field: str  # the field every engine must name
    spec: dict[str, Any]  # merged over a valid spec; None values delete the key
    name: str = "web"


_RES = {"requests": {"cpu": "500m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "128Mi"}}

INVALID: list[Invalid] = [
    Invalid("missing-image", "spec.image", {"image": None}),
    Invalid("empty-image", "spec.image", {"image": ""}),
    Invalid("image-with-space", "spec.image", {"image": "hello world"}),
    Invalid("negative-replicas", "spec.replicas", {"replicas": -1}),
    Invalid("too-many-replicas", "spec.replicas", {"replicas": 100000}),
    Invalid("replicas-as-string", "spec.replicas", {"replicas": "three"}),
    Invalid("port-zero", "spec.port", {"port": 0}),
    Invalid("port-too-high", "spec.port", {"port": 70000}),
    Invalid("port-as-string", "spec.port", {"port": "http"}),
    Invalid("env-bad-name", "spec.env[0].name", {"env": [{"name": "1ABC", "value": "x"}]}),
    Invalid("env-name-with-dash", "spec.env[0].name", {"env": [{"name": "MY-VAR", "value": "x"}]}),
    Invalid("env-duplicate", "spec.env", {"env": [{"name": "A", "value": "1"},
                                                  {"name": "A", "value": "2"}]}),
    Invalid("env-missing-name", "spec.env[0].name", {"env": [{"value": "x"}]}),
    Invalid("env-value-control-char", "spec.env[0].value",
            {"env": [{"name": "A", "value": "bell\x07"}]}),
    Invalid("image-not-a-reference", "spec.image", {"image": "-leading-dash"}),
    Invalid("cpu-not-a-quantity", "spec.resources.limits.cpu",
            {"resources": {"limits": {"cpu": "lots"}}}),
    Invalid("memory-not-a-quantity", "spec.resources.requests.memory",
            {"resources": {"requests": {"memory": "64 MB"}}}),
    Invalid("cpu-request-above-limit", "spec.resources.requests.cpu",
            {"resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "250m"}}}),
    Invalid("memory-request-above-limit", "spec.resources.requests.memory",
            {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}}),
    Invalid("health-path-relative", "spec.healthCheck.path", {"healthCheck": {"path": "healthz"}}),
    Invalid("health-period-zero", "spec.healthCheck.periodSeconds",
            {"healthCheck": {"periodSeconds": 0}}),
    Invalid("health-negative-delay", "spec.healthCheck.initialDelaySeconds",
            {"healthCheck": {"initialDelaySeconds": -5}}),
    Invalid("rollout-both-zero", "spec.rollout.maxSurge",
            {"rollout": {"maxSurge": 0, "maxUnavailable": 0}}),
    Invalid("rollout-negative-surge", "spec.rollout.maxSurge", {"rollout": {"maxSurge": -1}}),
    Invalid("unknown-field", "spec.replica", {"replica": 3}),
    Invalid("service-type-unknown", "spec.service.type", {"service": {"type": "LoadBalancer"}}),
    Invalid("nodeport-out-of-range", "spec.service.nodePort",
            {"service": {"type": "NodePort", "nodePort": 80}}),
    Invalid("nodeport-without-type", "spec.service.nodePort", {"service": {"nodePort": 30080}}),
    Invalid("autoscale-min-above-max", "spec.autoscale.minReplicas",
            {"autoscale": {"minReplicas": 5, "maxReplicas": 2}}),
    Invalid("autoscale-without-max", "spec.autoscale.maxReplicas", {"autoscale": {}}),
    Invalid("autoscale-without-cpu-request", "spec.autoscale",
            {"resources": {"requests": {"memory": "32Mi"}}, "autoscale": {"maxReplicas": 3}}),
    Invalid("name-not-dns1035", "metadata.name", {}, name="9lives"),
    Invalid("name-too-long", "metadata.name", {}, name="a" * 64),
]


def document(case: Invalid, namespace: str | None = None) -> dict[str, Any]:
    doc = webapp(case.name, namespace)
    spec = copy.deepcopy(doc["spec"])
    for key, value in case.spec.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    doc["spec"] = spec
    return doc
