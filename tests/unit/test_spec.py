"""The spec model: defaults, refusals that name the field and say how to fix it, quantities."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reconcile_lab import parsing, spec
from tests import cases


def test_a_minimal_spec_gets_the_documented_defaults() -> None:
    s = parsing.parse_spec({"image": "reconcile-lab/hello:v1"})
    assert (s.replicas, s.port, s.env, s.healthCheck) == (1, 8080, [], None)
    assert s.rollout == spec.Rollout(maxSurge=1, maxUnavailable=0)
    assert s.resources.limits == spec.ResourceList(cpu="200m", memory="64Mi")


@pytest.mark.parametrize("case", cases.INVALID, ids=[c.id for c in cases.INVALID])
def test_every_invalid_case_is_refused_naming_its_field(case: cases.Invalid) -> None:
    with pytest.raises(parsing.InvalidWebApp) as caught:
        parsing.parse_document(cases.document(case), source="web.yaml")
    fields = [p.field for p in caught.value.problems]
    assert case.field in fields
    text = str(caught.value)
    assert text.startswith("web.yaml")  # the file
    assert case.field in text  # the field
    assert all(p.fix for p in caught.value.problems)  # and the fix


def test_every_problem_is_reported_at_once() -> None:
    doc = cases.webapp(replicas=-1, port=0)
    with pytest.raises(parsing.InvalidWebApp) as caught:
        parsing.parse_document(doc)
    assert {p.field for p in caught.value.problems} == {"spec.replicas", "spec.port"}


def test_wrong_kind_and_api_version_are_named() -> None:
    doc = {**cases.webapp(), "kind": "Deployment", "apiVersion": "apps/v1"}
    with pytest.raises(parsing.InvalidWebApp) as caught:
        parsing.parse_document(doc)
    assert {p.field for p in caught.value.problems} == {"kind", "apiVersion"}


def test_strings_are_not_silently_turned_into_numbers() -> None:
    # The apiserver refuses "8080" for an integer field; so must the Docker twin.
    with pytest.raises(parsing.InvalidWebApp):
        parsing.parse_spec({"image": "x", "port": "8080"})


@pytest.mark.parametrize(("text", "value"), [
    ("250m", Decimal("0.25")), ("1", Decimal(1)), ("0.5", Decimal("0.5")),
    ("64Mi", Decimal(64 * 2**20)), ("1Gi", Decimal(2**30)), ("1k", Decimal(1000)),
    ("1e3", Decimal(1000)), ("100n", Decimal("1e-7")),
])
def test_quantities_parse_like_kubernetes(text: str, value: Decimal) -> None:
    assert spec.parse_quantity(text) == value


def test_rules_say_the_same_thing_in_cel_and_python() -> None:
    ok = spec.Resources(requests=spec.ResourceList(cpu="100m"), limits=spec.ResourceList(cpu="1"))
    assert all(rule.check(ok) for rule in spec.Resources.RULES)
    for model in (spec.Resources, spec.Rollout, spec.Service):
        for rule in model.RULES:
            assert rule.cel and rule.message and rule.field_path.startswith(".")
