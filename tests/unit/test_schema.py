"""The CRD is generated from the spec model, is structural, and teaches `kubectl explain`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from reconcile_lab import schema

REPO = Path(__file__).resolve().parents[2]


def test_the_committed_crd_is_what_the_model_generates() -> None:
    committed = (REPO / schema.CRD_FILE).read_text()
    assert committed == schema.crd_yaml(), "crds/ is stale: run `make manifests` and commit"


def _walk(node: dict[str, Any], path: str = "spec") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for name, child in (node.get("properties") or {}).items():
        out += _walk(child, f"{path}.{name}")
    if "items" in node:
        out += _walk(node["items"], f"{path}[]")
    return out


def test_every_spec_field_has_a_description_and_a_type() -> None:
    for path, node in _walk(schema.spec_schema()):
        assert node.get("description"), f"{path} has no description"
        assert node.get("type"), f"{path} has no type (not structural)"


def test_the_schema_is_structural() -> None:
    text = yaml.safe_dump(schema.crd())
    for forbidden in ("$ref", "anyOf", "title:", "$defs", "additionalProperties"):
        assert forbidden not in text


def test_scale_status_and_printer_columns() -> None:
    version = schema.crd()["spec"]["versions"][0]
    assert version["subresources"]["scale"]["labelSelectorPath"] == ".status.selector"
    assert "status" in version["subresources"]
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names == ["Image", "Desired", "Ready", "Status", "Age"]


def test_defaults_and_bounds_reach_the_schema() -> None:
    props = schema.spec_schema()["properties"]
    assert props["replicas"]["default"] == 1 and props["replicas"]["minimum"] == 0
    assert props["port"]["maximum"] == 65535
    assert props["env"]["x-kubernetes-list-map-keys"] == ["name"]
    assert props["rollout"]["default"] == {"maxSurge": 1, "maxUnavailable": 0, "drainSeconds": 3}
    assert props["resources"]["x-kubernetes-validations"]
