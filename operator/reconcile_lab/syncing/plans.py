"""What makes a cluster equal to a folder: the WebApps to apply and the ones to prune.

Every WebApp that ``reconcile-lab sync DIR`` applies carries the label
``reconcile-lab.dev/project=PROJECT`` (the folder's name unless told otherwise), the way
``docker compose`` labels what belongs to a project: the label is the record of which WebApps
the folder owns, kept in the cluster, so a second run of the same folder (from another shell,
another laptop, a CI job) knows what to prune. A WebApp without the label, or with another
project's, is never touched, and neither is one outside the namespaces the folder's files name
(or the one given for files that name none): two teams may both call a folder ``apps``.

The applied manifest holds the whole spec, defaults filled in: the
folder owns every field, so a hand edit of a synced WebApp (`kubectl scale webapp`) is drift
that the next sync puts back. All but one: with ``autoscale`` the count is the autoscaler's
(it writes ``replicas`` through the scale subresource), so the manifest leaves ``replicas``
out, or every pass would undo the autoscaler's choice.

Purely data: no I/O, no client library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from reconcile_lab import spec

LABEL_PROJECT = "reconcile-lab.dev/project"
FIELD_MANAGER = "reconcile-lab-sync"  # not the operator's: a sync and a reconcile are two actors
DEFAULT_NAMESPACE = "default"

Key = tuple[str, str]  # (namespace, name)


class Plan(NamedTuple):
    apply: tuple[dict[str, Any], ...]  # manifests, in the folder's order
    prune: tuple[Key, ...]  # WebApps of the project that no file declares any more


def manifest(app: spec.WebApp, *, project: str, namespace: str) -> dict[str, Any]:
    """The WebApp as sync applies it: every spec field (defaults filled in; no replicas when
    an autoscaler chooses them) and the label."""
    body = spec.spec_to_dict(app.spec)
    if app.spec.autoscale is not None:
        del body["replicas"]
    return {"apiVersion": spec.API_VERSION, "kind": spec.KIND,
            "metadata": {"name": app.name, "namespace": app.namespace or namespace,
                         "labels": {LABEL_PROJECT: project}},
            "spec": body}


def key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def plan(apps: Sequence[spec.WebApp], live: Iterable[Mapping[str, Any]], *, project: str,
         namespace: str = DEFAULT_NAMESPACE) -> Plan:
    """``live``: the WebApps labelled with ``project`` now, in :func:`namespaces`."""
    wanted = tuple(manifest(a, project=project, namespace=namespace) for a in apps)
    keep = {key(m) for m in wanted}
    scope = set(namespaces(apps, namespace))
    prune = tuple(sorted(k for obj in live if (k := key(obj)) not in keep and k[0] in scope
                         and (obj.get("metadata") or {}).get("labels", {}).get(LABEL_PROJECT)
                         == project))
    return Plan(wanted, prune)


def namespaces(apps: Sequence[spec.WebApp], namespace: str = DEFAULT_NAMESPACE) -> tuple[str, ...]:
    """Where a folder's project lives: the namespaces its files name, and ``namespace`` for
    those that name none."""
    return tuple(sorted({a.namespace or namespace for a in apps}))


def selector(project: str) -> str:
    return f"{LABEL_PROJECT}={project}"
