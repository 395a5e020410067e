"""docs/mapping.md against the code: every spec field has a row, and every path and flag the table
names is one that render.py and the twin's steps.py really produce."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from reconcile_lab import parsing, spec
from reconcile_lab.declarative import render
from reconcile_lab.imperative import containers, plan

DOC = Path(__file__).resolve().parents[2] / "docs" / "mapping.md"
# Placeholders the table uses in Docker commands, and what they stand for.
PLACEHOLDERS = {"NAME": r"[A-Za-z0-9_-]+", "NAMESPACE": r"[a-z0-9-]+", "PORT": r"\d+",
                "HASH": r"[0-9a-f]+", "i": r"\d+", "value": r".*"}


def rows() -> list[tuple[str, str, str]]:
    found = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and line.startswith("| ") and not line.startswith("| WebApp field") \
                and not set(cells[0]) <= set("-"):
            found.append((cells[0], cells[1], cells[2]))
    return found


def ticks(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def sample(**extra: Any) -> spec.WebApp:
    body: dict[str, Any] = {
        "image": "reconcile-lab/hello:v1", "replicas": 2, "port": 8080,
        "env": [{"name": "GREETING", "value": "hi"}],
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                      "limits": {"cpu": "500m", "memory": "64Mi"}},
        "healthCheck": {"path": "/healthz", "initialDelaySeconds": 2, "periodSeconds": 5},
        "rollout": {"maxSurge": 1, "maxUnavailable": 0},
        "service": {"type": "NodePort", "nodePort": 30080},
    }
    body.update(extra)
    body = {k: v for k, v in body.items() if v is not None}
    return parsing.parse_document({"apiVersion": spec.API_VERSION, "kind": spec.KIND,
                                "metadata": {"name": "web"}, "spec": body})


def rendered() -> dict[str, Any]:
    app = sample(autoscale={"maxReplicas": 5})
    deployment, service, autoscaler = render.children(render.Owner("web", "default", "uid-1"),
                                                      app.spec)
    return {"Deployment": deployment, "Service": service, "HorizontalPodAutoscaler": autoscaler,
            "pod": deployment["spec"]["template"]["spec"],
            "container": deployment["spec"]["template"]["spec"]["containers"][0]}


def resolve(root: Any, path: str) -> Any:
    node = root
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            node = node[int(part[1:-1])]
        else:
            if not isinstance(node, dict) or part not in node:
                raise KeyError(part)
            node = node[part]
    return node


def docker_commands() -> list[list[str]]:
    """Every docker command the twin can type for a full WebApp and for a minimal one."""
    commands: list[list[str]] = []
    for app in (sample(), sample(healthCheck=None, env=None)):
        running = [containers.as_observed(c) for c in containers.desired(app)]
        for steps in (plan.plan(app, []),
                      plan.plan(sample(image="reconcile-lab/hello:v2"), running,
                                network_exists=True),
                      plan.plan_delete(app.name, running, network_exists=True)):
            for step in steps:
                commands += step.commands()
    return commands


def test_every_spec_field_has_a_row() -> None:
    first = " ".join(r[0] for r in rows())
    for field in spec.WebAppSpec.model_fields:
        assert f"`{field}`" in first, f"docs/mapping.md has no row for spec.{field}"


def test_every_kubernetes_path_in_the_table_exists_in_what_render_produces() -> None:
    roots = rendered()
    checked = 0
    for field, kubernetes, _ in rows():
        for token in ticks(kubernetes):
            head, _, path = token.partition(" ") if token.split(" ")[0] in roots \
                else token.partition(".")
            if head not in roots or not path or " " in path:
                continue
            try:
                resolve(roots[head], path)
            except (KeyError, IndexError, TypeError):
                pytest.fail(f"{field}: `{token}` is not in the rendered {head}")
            checked += 1
    assert checked >= 20


def test_every_docker_flag_and_command_in_the_table_is_one_the_twin_types() -> None:
    commands = docker_commands()
    checked = 0
    for field, _, docker in rows():
        for token in ticks(docker):
            words = shlex.split(token)
            if words[0].startswith("-"):
                flag, value = words[0], words[1] if len(words) > 1 else None
                pattern = re.compile(_pattern(value)) if value else None
                assert any(argv[i] == flag and (pattern is None or (
                    i + 1 < len(argv) and pattern.fullmatch(argv[i + 1])))
                    for argv in commands for i in range(len(argv))), \
                    f"{field}: `{token}` is not on any docker command line of the twin"
                checked += 1
            elif words[0] == "docker":
                wanted = [re.compile(_pattern(w)) for w in words]
                assert any(_subsequence(wanted, argv) for argv in commands), \
                    f"{field}: `{token}` is not a command the twin types"
                checked += 1
    assert checked >= 20


def _pattern(text: str) -> str:
    out = re.escape(text)
    for word, regex in PLACEHOLDERS.items():
        out = re.sub(rf"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])", regex.replace("\\", "\\\\"),
                     out)
    return out


def _subsequence(patterns: list[re.Pattern[str]], argv: list[str]) -> bool:
    i = 0
    for word in argv:
        if i < len(patterns) and patterns[i].fullmatch(word):
            i += 1
    return i == len(patterns)


def test_the_readme_table_names_the_same_docker_posture() -> None:
    text = DOC.read_text()
    for flag in (f"--user {containers.USER}", f"--cap-drop {containers.CAP_DROP}",
                 f"--security-opt {containers.SECURITY_OPT}", "--read-only"):
        assert flag in text
