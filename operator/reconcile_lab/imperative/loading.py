"""Reading WebApp files (for the Docker twin and ``reconcile-lab sync``): YAML documents,
validated with the operator's model. A folder stands for its *.yaml and *.yml files.

Every WebApp in every file is validated before any is used, so one bad document changes nothing;
errors name the file and line, the field and the fix, as the apiserver would for ``kubectl apply``.

Reads files and stdin; must not talk to Docker, print, or decide what to change.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from reconcile_lab import parsing, spec
from reconcile_lab.imperative import containers


class InputError(Exception):
    """A file could not be used; nothing was changed. The message names file, field and fix."""


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as e:
        raise InputError(f"{path}: cannot read it: {e.strerror or e} "
                         "(fix: check the path)") from None


def _documents(path: str, text: str) -> list[tuple[int, Any]]:
    """Every YAML document with the line it starts on."""
    loader = yaml.SafeLoader(text)
    try:
        found: list[tuple[int, Any]] = []
        while loader.check_node():
            node = loader.get_node()
            assert node is not None  # check_node said there is one
            found.append((node.start_mark.line + 1, loader.construct_document(node)))
        return found
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        problem = " ".join(x for x in (e.context, e.problem) if x)
        raise InputError(f"{where}: malformed YAML: {problem} "
                         "(fix: check indentation and quoting on that line)") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: malformed YAML: {e}") from None
    finally:
        loader.dispose()


_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


def project(paths: Sequence[str], given: str | None = None) -> str:
    """The project a set of files makes (a label value): ``given``, else the name of the folder
    named first, or of the folder the first file is in (``my apps`` → ``my-apps``)."""
    if given is None:
        first = Path(paths[0]).resolve()
        text = (first if first.is_dir() else first.parent).name
        given = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")[:63].strip("-_.")
    if not _LABEL_VALUE.fullmatch(given):
        raise InputError(f"{given!r} is not a project name (fix: --project NAME: letters, "
                         "digits, '-', '_' or '.', at most 63, a letter or digit at each end)")
    return given


def expand(paths: Sequence[str]) -> list[str]:
    """Each path as given, a folder as its ``*.yaml`` and ``*.yml`` files (sorted, not
    recursive: a folder is one project)."""
    files: list[str] = []
    for path in paths:
        folder = Path(path)
        if path == "-" or not folder.is_dir():
            files.append(path)
            continue
        found = sorted(str(f) for f in folder.iterdir()
                       if f.suffix in (".yaml", ".yml") and f.is_file())
        if not found:
            raise InputError(f"{path}: a folder with no *.yaml or *.yml file in it (fix: put "
                             "the WebApp files there, or name a file)")
        files += found
    return files


def load(paths: Sequence[str]) -> list[spec.WebApp]:
    """All WebApps in all files, every one validated before any is used."""
    apps: list[spec.WebApp] = []
    sources: dict[str, str] = {}
    errors: list[str] = []
    for path in paths:
        documents = [(line, doc) for line, doc in _documents(path, _read(path)) if doc is not None]
        for line, doc in documents:
            source = path if len(documents) == 1 else f"{path}:{line}"
            try:
                app = parsing.parse_document(doc, source=source)
            except parsing.InvalidWebApp as e:
                errors.append(str(e))
                continue
            key = containers.docker_name(app.name, app.namespace)
            if key in sources:
                # One app twice (same name, same namespace) would fight over NAME-1…
                errors.append(f'{source} WebApp "{app.name}": invalid\n  metadata.name: '
                              f"Duplicate value: {app.name!r} in namespace "
                              f"{containers.namespace_of(app)!r} is also defined at {sources[key]} "
                              "(fix: give every WebApp of a namespace its own name)")
                continue
            sources[key] = source
            apps.append(app)
    if errors:
        raise InputError("\n".join(errors))
    if not apps:
        raise InputError(f"{', '.join(paths)}: no WebApp in it (fix: write a document with "
                         f"apiVersion: {spec.API_VERSION} and kind: {spec.KIND})")
    return apps
