"""The WebApp CustomResourceDefinition, generated from the spec model.

``make manifests`` writes :func:`crd` to ``crds/``; a unit test fails when the committed file is
stale. Pydantic's JSON schema is turned into a *structural* OpenAPI schema: references inlined,
``Optional`` unwrapped, titles dropped, Kubernetes extensions kept.

Purely data: no I/O.
"""

from __future__ import annotations

from typing import Any

import yaml

from reconcile_lab import spec

CRD_NAME = f"{spec.PLURAL}.{spec.GROUP}"
CRD_FILE = f"crds/{CRD_NAME}.yaml"

_KEEP = {
    "type", "description", "default", "minimum", "maximum", "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "enum", "properties", "items", "required",
    "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
}


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = dict(defs[node["$ref"].rsplit("/", 1)[-1]])
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:  # Optional[X]: X, and the field is simply not required
        (real,) = [n for n in node["anyOf"] if n.get("type") != "null"]
        outer = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
        if node.get("default") is not None:
            outer["default"] = node["default"]
        return _structural({**_structural(real, defs), **outer}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _KEEP:
            continue
        if key == "properties":
            out[key] = {k: _structural(v, defs) for k, v in value.items()}
        elif key == "items":
            out[key] = _structural(value, defs)
        else:
            out[key] = value
    if "enum" in out:
        out["type"] = "string"
    return out


def spec_schema() -> dict[str, Any]:
    raw = spec.WebAppSpec.model_json_schema(mode="validation")
    return _structural(raw, raw.get("$defs", {}))


CONDITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A metav1.Condition: one aspect of the app's state.",
    "required": ["type", "status", "reason", "lastTransitionTime"],
    "properties": {
        "type": {"type": "string", "description": "Ready, Progressing or Degraded."},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"],
                   "description": "Whether the condition holds."},
        "reason": {"type": "string", "description": "One CamelCase word saying why."},
        "message": {"type": "string", "description": "A sentence for people."},
        "observedGeneration": {"type": "integer", "format": "int64",
                               "description": "The spec generation this condition is about."},
        "lastTransitionTime": {"type": "string", "format": "date-time",
                               "description": "When status last changed."},
    },
}

STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "What the operator last observed; written by the operator only.",
    "properties": {
        "observedGeneration": {"type": "integer", "format": "int64",
                               "description": "The spec generation the operator last acted on."},
        "replicas": {"type": "integer", "description": "Instances that exist now."},
        "readyReplicas": {"type": "integer", "description": "Instances ready to serve."},
        "updatedReplicas": {"type": "integer",
                            "description": "Instances already running the current spec."},
        "selector": {"type": "string",
                     "description": "Label selector of the app's pods (used by kubectl scale and HPA)."},
        "conditions": {
            "type": "array",
            "description": "Ready, Progressing and Degraded, in metav1.Condition shape.",
            "items": CONDITION_SCHEMA,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    },
}


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition, as a plain dict."""
    root: dict[str, Any] = {
        "type": "object",
        "description": "A WebApp declares the desired state of a stateless HTTP app. The "
        "reconcile-lab operator keeps a Deployment and a Service equal to it.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": STATUS_SCHEMA,
        },
        "x-kubernetes-validations": [{"rule": r.cel, "message": r.message} for r in spec.NAME_RULES],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/part-of": "reconcile-lab"},
        },
        "spec": {
            "group": spec.GROUP,
            "names": {
                "kind": spec.KIND,
                "listKind": f"{spec.KIND}List",
                "plural": spec.PLURAL,
                "singular": spec.SINGULAR,
                "shortNames": list(spec.SHORT_NAMES),
                "categories": ["all", "reconcile-lab"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": spec.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
                        {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
                        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
                        {"name": "Status", "type": "string",
                         "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }


def _header(source: str) -> str:
    return f"# Generated from operator/reconcile_lab/{source} by `make manifests`. Do not edit.\n"


def crd_yaml() -> str:
    return _header("spec.py") + yaml.safe_dump(crd(), sort_keys=False, width=100)


def documents_yaml(docs: list[dict[str, Any]], source: str) -> str:
    return _header(source) + yaml.safe_dump_all(docs, sort_keys=False, width=100)
