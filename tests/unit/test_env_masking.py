"""Env values are often secrets: nothing the Docker twin prints shows one, and what it runs
still gets the real values."""

from __future__ import annotations

from typing import Any

from reconcile_lab import parsing, spec
from reconcile_lab.imperative import containers, plan, printing, reports, steps

SECRET, ROTATED = "hunter2-s3cr3t", "correct-horse-battery"


def webapp(value: str, **fields: Any) -> spec.WebApp:
    body: dict[str, Any] = {"image": "reconcile-lab/hello:v1", "replicas": 2,
                            "env": [{"name": "DB_PASSWORD", "value": value},
                                    {"name": "GREETING", "value": "hi"}]}
    body.update(fields)
    return parsing.parse_document({"apiVersion": spec.API_VERSION, "kind": spec.KIND,
                                "metadata": {"name": "web"}, "spec": body})


def test_the_printed_docker_run_masks_every_value() -> None:
    todo = plan.plan(webapp(SECRET), [])
    script = printing.format_steps(todo)  # --dry-run prints this
    printed = "\n".join(printing.format_step(s) for s in todo)  # apply prints these
    for text in (script, printed):
        assert SECRET not in text and "=hi" not in text
        assert "-e 'DB_PASSWORD=***'" in text and "-e 'GREETING=***'" in text


def test_a_changed_value_is_named_by_its_key_only() -> None:
    before = [containers.as_observed(c) for c in containers.desired(webapp(SECRET))]
    todo = plan.plan(webapp(ROTATED), before, network_exists=True)
    assert [s.reason for s in steps.changes(todo)] == ["env DB_PASSWORD changed"] * 2
    text = printing.format_steps(todo)
    status = printing.format_status("web", reports.Observation(before, True, False),
                                    webapp(ROTATED))
    for shown in (text, status):
        assert "DB_PASSWORD" in shown
        assert SECRET not in shown and ROTATED not in shown


def test_the_engine_is_still_given_the_real_values() -> None:
    (first, *_) = containers.desired(webapp(SECRET))
    assert dict(first.env) == {"DB_PASSWORD": SECRET, "GREETING": "hi"}
    # a changed secret still changes the config hash, so the container is replaced
    assert first.config != containers.desired(webapp(ROTATED))[0].config
