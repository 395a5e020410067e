"""Kubeconfigs made from another: one that reaches the same apiserver through the fault proxy,
and one that speaks as a ServiceAccount (its token) instead of the admin.

Pure: dictionaries in, dictionaries out. Through the proxy only the server's port changes: the
proxy listens on 127.0.0.1 too and forwards the bytes untouched, so TLS stays end to end and
the apiserver's certificate (issued for 127.0.0.1) still matches. Relative file paths (the CA,
a client certificate) are made absolute, because the new file lives elsewhere.
"""

from __future__ import annotations

import copy
import urllib.parse
from pathlib import PurePath
from typing import Any, NamedTuple

LOOPBACK = ("127.0.0.1", "localhost", "::1")
_FILE_KEYS = {"cluster": ("certificate-authority",),
              "user": ("client-certificate", "client-key", "tokenFile")}


class KubeconfigError(ValueError):
    pass


class Upstream(NamedTuple):
    host: str
    port: int


def _current(config: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The current context's cluster and user entries (the dictionaries themselves)."""
    contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
    name = config.get("current-context") or next(iter(contexts), None)
    if name not in contexts:
        raise KubeconfigError(f"{where}: no current context; fix: set current-context")
    context = contexts[name]
    clusters = {c["name"]: c["cluster"] for c in config.get("clusters") or []}
    users = {u["name"]: u.setdefault("user", {}) for u in config.get("users") or []}
    if context.get("cluster") not in clusters:
        raise KubeconfigError(f"{where}: context {name!r} names no known cluster")
    return clusters[context["cluster"]], users.get(context.get("user"), {})


def upstream(config: dict[str, Any], *, where: str = "kubeconfig") -> Upstream:
    """The apiserver the current context talks to; only loopback (traffic stays here)."""
    cluster, _ = _current(copy.deepcopy(config), where)
    url = urllib.parse.urlsplit(str(cluster.get("server", "")))
    if url.scheme != "https" or url.hostname not in LOOPBACK:
        raise KubeconfigError(
            f"{where}: server {cluster.get('server')!r}: the fault proxy only stands between "
            "this host and an apiserver on https://127.0.0.1; fix: use the kit's cluster "
            "(`reconcile-lab cluster up`)")
    return Upstream(url.hostname, url.port or 443)


def through(config: dict[str, Any], *, port: int, base: PurePath,
            where: str = "kubeconfig") -> dict[str, Any]:
    """``config`` with its current cluster's server on ``port`` of the same loopback host;
    relative paths resolved against ``base`` (the original file's directory)."""
    target = upstream(config, where=where)
    out = copy.deepcopy(config)
    cluster, user = _current(out, where)
    host = f"[{target.host}]" if ":" in target.host else target.host
    cluster["server"] = f"https://{host}:{port}"
    _absolute(cluster, user, base)
    return out


def with_token(config: dict[str, Any], *, token: str, base: PurePath, user: str,
               where: str = "kubeconfig") -> dict[str, Any]:
    """One context: ``config``'s current cluster, and ``user`` authenticated by ``token`` (a
    ServiceAccount's, from `kubectl create token`) instead of the admin's credentials."""
    cluster, _ = _current(copy.deepcopy(config), where)
    _absolute(cluster, {}, base)
    return {"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "cluster", "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": "cluster", "user": user}}],
            "current-context": user}


def _absolute(cluster: dict[str, Any], user: dict[str, Any], base: PurePath) -> None:
    for entry, keys in ((cluster, _FILE_KEYS["cluster"]), (user, _FILE_KEYS["user"])):
        for key in keys:
            if key in entry and not PurePath(entry[key]).is_absolute():
                entry[key] = str(base / entry[key])
