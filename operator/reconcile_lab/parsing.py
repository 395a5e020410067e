"""Reading a WebApp document: validated with the model in ``spec``, refused the apiserver's way.

``parse_document`` and ``parse_spec`` turn untrusted YAML data into a :class:`spec.WebApp`, or
raise :class:`InvalidWebApp` naming every bad field, what is wrong and how to fix it, in the words
``kubectl apply`` would get back for the generated CRD, so a bad file reads the same on both sides.

Purely data: no I/O, no kopf, no kubernetes, no docker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import pydantic

from reconcile_lab import spec


class Problem(NamedTuple):
    """One reason a WebApp is refused: which field, what is wrong, how to fix it."""

    field: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} (fix: {self.fix})"


class InvalidWebApp(ValueError):
    """The WebApp is refused; nothing was changed anywhere."""

    def __init__(self, problems: Sequence[Problem], *, source: str = "", name: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        self.name = name
        where = " ".join(x for x in (source, f'WebApp "{name}"' if name else "") if x)
        lines = [f"{where}: invalid" if where else "invalid WebApp"]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))



def _field_of(loc: Sequence[str | int], root: str) -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe(error: Mapping[str, Any], root: str) -> Problem:
    """Say a pydantic error the way the apiserver says it, with a fix."""
    field = _field_of(error["loc"], root)
    ctx = error.get("ctx") or {}
    kind = error["type"]
    value = error.get("input")
    if kind == "missing":
        return Problem(field, "Required value", f"add {field}")
    if kind == "extra_forbidden":
        return Problem(field, f'unknown field "{field}"', "remove it or check its spelling")
    if kind in ("greater_than_equal", "less_than_equal"):
        word = "greater" if kind == "greater_than_equal" else "less"
        bound = ctx.get("ge", ctx.get("le"))
        return Problem(field, f"Invalid value: {value!r}: should be {word} than or equal to {bound}",
                       f"use a value {'≥' if word == 'greater' else '≤'} {bound}")
    if kind == "string_pattern_mismatch":
        return Problem(field, f"Invalid value: {value!r}: should match '{ctx.get('pattern')}'",
                       _PATTERN_FIXES.get(ctx.get("pattern", ""), "see kubectl explain webapp.spec"))
    if kind in ("string_too_long", "too_long", "string_too_short", "too_short"):
        return Problem(field, f"Invalid value: {error['msg']}", "shorten or fill it in")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return Problem(field, f"Invalid value: {value!r}: must be of type integer",
                       "write a whole number without quotes")
    if kind in ("string_type", "model_type", "model_attributes_type", "list_type", "dict_type",
                "bool_type"):
        expected = {"string_type": "string", "list_type": "array", "bool_type": "boolean"}.get(
            kind, "object")
        return Problem(field, f"Invalid value: {value!r}: must be of type {expected}",
                       f"write {field} as {'an' if expected[0] in 'ao' else 'a'} {expected}")
    if kind == "literal_error":
        return Problem(field, f"Unsupported value: {value!r}: supported values: {ctx.get('expected')}",
                       f"use one of {ctx.get('expected')}")
    message = str(ctx.get("error", error["msg"]))
    if message.startswith("Duplicate value"):
        return Problem(field, message, "give every variable its own name")
    rule = _RULES_BY_MESSAGE.get(message)
    if rule is None:
        return Problem(field, f"Invalid value: {message}", "see kubectl explain webapp.spec")
    return Problem(field + rule.field_path, f"Invalid value: {message}", _RULE_FIXES[message])


_PATTERN_FIXES = {
    spec.ENV_NAME: "use letters, digits and '_' only, not starting with a digit",
    spec.QUANTITY: "write a quantity such as 250m, 0.5, 64Mi or 1Gi",
    spec.HTTP_PATH: "start the path with '/' and use printable characters without spaces",
    spec.IMAGE: "write an image reference such as reconcile-lab/hello:v1",
    spec.TEXT: "remove control characters from the value",
}
_RULES_BY_MESSAGE = {r.message: r for m in (spec.Resources, spec.Rollout, spec.Service,
                                                         spec.Autoscale, spec.WebAppSpec)
                     for r in m.RULES}
_RULE_FIXES = {
    spec.Resources.RULES[0].message: "lower requests.cpu or raise limits.cpu",
    spec.Resources.RULES[1].message: "lower requests.memory or raise limits.memory",
    spec.Rollout.RULES[0].message: "set maxSurge ≥ 1 (add instances first) or maxUnavailable ≥ 1",
    spec.Service.RULES[0].message: "set service.type: NodePort or remove service.nodePort",
    spec.Autoscale.RULES[0].message: "lower autoscale.minReplicas or raise autoscale.maxReplicas",
    spec.WebAppSpec.RULES[0].message: "add resources.requests.cpu (e.g. 50m), or remove autoscale",
}


def parse_spec(raw: Any, *, name: str = "", source: str = "") -> spec.WebAppSpec:
    """Validate a WebApp's ``spec``; raise :class:`InvalidWebApp` naming every bad field."""
    if not isinstance(raw, Mapping):
        raise InvalidWebApp(
            [Problem("spec", "Required value: spec must be a mapping", "add a spec with an image")],
            source=source, name=name)
    try:
        return spec.WebAppSpec.model_validate(dict(raw))
    except pydantic.ValidationError as e:
        problems = [_describe(err, "spec") for err in e.errors()]
        raise InvalidWebApp(problems, source=source, name=name) from None


def parse_document(doc: Any, *, source: str = "") -> spec.WebApp:
    """Validate a whole WebApp document (apiVersion, kind, metadata, spec)."""
    if not isinstance(doc, Mapping):
        raise InvalidWebApp([Problem("<document>", "not a mapping", "write a WebApp as YAML")],
                            source=source)
    problems: list[Problem] = []
    if doc.get("apiVersion") != spec.API_VERSION:
        problems.append(Problem("apiVersion", f"Unsupported value: {doc.get('apiVersion')!r}",
                                f"set apiVersion: {spec.API_VERSION}"))
    if doc.get("kind") != spec.KIND:
        problems.append(Problem("kind", f"Unsupported value: {doc.get('kind')!r}",
                                f"set kind: {spec.KIND}"))
    raw_meta = doc.get("metadata")
    metadata: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    raw_name = metadata.get("name")
    name = raw_name if isinstance(raw_name, str) else ""
    namespace = metadata.get("namespace")
    if not name:
        problems.append(Problem("metadata.name", "Required value", "add metadata.name"))
    elif not spec.NAME_RULES[0].check(name):
        problems.append(Problem("metadata.name",
                                f"Invalid value: {name!r}: {spec.NAME_RULES[0].message}",
                                "rename it, e.g. my-app"))
    try:
        wanted = parse_spec(doc.get("spec"), name=name, source=source)
    except InvalidWebApp as e:
        problems.extend(e.problems)
    if problems:
        raise InvalidWebApp(problems, source=source, name=name)
    return spec.WebApp(name=name, namespace=namespace if isinstance(namespace, str) else None,
                       spec=wanted)
