"""The one module that talks to the Kubernetes API with the official client.

A create for a missing child (never an apply: an object someone made meanwhile must not be
adopted), a server-side apply for a child that differs (field manager ``reconcile-lab``, only
onto the object that was compared), a JSON patch that removes what someone else added, a
merge patch for the WebApp's status subresource, and a read by name. Requests go through the
client's ApiClient (its credentials and connection pool) by path; responses are returned as
plain dicts: the operator compares JSON, it has no use for model objects. The client is
synchronous; callers run these functions in threads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client import rest
from kubernetes.client.exceptions import ApiException

from reconcile_lab import spec
from reconcile_lab.declarative import render

_APPLY = "application/apply-patch+yaml"
_MERGE = "application/merge-patch+json"
_JSON_PATCH = "application/json-patch+json"
# Every request says who made it: the apiserver's audit log counts the operator's writes by it.
USER_AGENT = "reconcile-lab-operator"
# (connect, read) seconds for every request without a timeout of its own. A connection can go
# silent without being closed (a dropped NAT entry, a half-dead peer: `reconcile-lab fault
# stall`); without a read timeout the request, and the worker that made it, would wait forever.
REQUEST_TIMEOUT = (5.0, 10.0)


class KubeError(RuntimeError):
    """An API call failed; ``status`` is the HTTP status (0 when none came back);
    ``retry_after`` the seconds the apiserver asked to wait (429, or 503 while it starts)."""

    def __init__(self, message: str, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def conflict(self) -> bool:
        """409: the object exists already (create) or changed since it was read (precondition)."""
        return self.status == 409

    @property
    def stale(self) -> bool:
        """The object changed between the read and the write: read it again, nothing failed."""
        return self.status == 409 and "already exists" not in str(self)

    @property
    def permanent(self) -> bool:
        """Retrying cannot help: the namespace is gone or being deleted, and the WebApp with it."""
        text = str(self)
        return (self.status == 404 and "namespaces" in text) or \
            (self.status == 403 and "being terminated" in text)


def connect(kubeconfig: str | None = None, *, pool_size: int = 32) -> None:
    """Use the given kubeconfig, else the in-cluster service account, else $KUBECONFIG."""
    try:
        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        else:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except config.ConfigException:
                config.load_kube_config()  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError) as e:
        raise KubeError(f"cannot load Kubernetes credentials: {e}\n"
                        "  fix: run `reconcile-lab cluster up`, or pass --kubeconfig") from e
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = pool_size
    client.Configuration.set_default(configuration)
    global _api
    # Built now, from this configuration: kopf's login reloads the kubeconfig later and resets
    # the client's default configuration (pool size 10 < our workers: discarded connections).
    _api = client.ApiClient(configuration)
    _api.user_agent = USER_AGENT
    _bound(_api)


class _BoundedRest(rest.RESTClientObject):
    """Every request times out (REQUEST_TIMEOUT unless it says otherwise), and a timeout
    drops every kept-alive connection: they share the path that went silent, and a retry on
    each in turn would wait a read timeout per connection in the pool."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("_request_timeout") is None:
            kwargs["_request_timeout"] = REQUEST_TIMEOUT
        try:
            return super().request(*args, **kwargs)  # type: ignore[no-untyped-call]
        except urllib3.exceptions.TimeoutError:
            self.pool_manager.clear()
            raise


def _bound(api: client.ApiClient) -> None:
    api.rest_client = _BoundedRest(api.configuration)


# One ApiClient, so one connection pool, for every call. ``client.AppsV1Api()`` without one
# builds a fresh ApiClient and pool each time: a new TCP+TLS connection per request, which a
# profile of a large convergence shows as TLS handshakes. urllib3's pool is thread-safe; it
# keeps up to pool_size connections.
_api: client.ApiClient | None = None


def _client() -> client.ApiClient:
    global _api
    if _api is None:
        _api = client.ApiClient()
        _api.user_agent = USER_AGENT
        _bound(_api)
    return _api


def _json(response: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(response.data)
    return data


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """The Retry-After header in seconds (the apiserver sends whole seconds, never a date)."""
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _fail(what: str, e: ApiException) -> KubeError:
    try:
        message = json.loads(e.body or "").get("message", e.reason)
    except (TypeError, ValueError):
        message = e.reason
    return KubeError(f"{what}: {message}", e.status or 0, retry_after(e.headers))


_PATHS = {spec.KIND: f"/apis/{spec.GROUP}/{spec.VERSION}{{scope}}/{spec.PLURAL}",
          "Deployment": "/apis/apps/v1{scope}/deployments", "Service": "/api/v1{scope}/services",
          render.AUTOSCALER: "/apis/autoscaling/v2{scope}/horizontalpodautoscalers"}


def _path(kind: str, namespace: str, name: str = "", sub: str = "") -> str:
    path = _PATHS[kind].format(scope=f"/namespaces/{namespace}")
    return "/".join(p for p in (path, name, sub) if p)


def _call(method: str, path: str, *, body: Any = None, content_type: str | None = None,
          query: Mapping[str, str] | None = None, accept: str = "application/json",
          timeout: Any = None) -> Any:
    """One request through the shared client (its credentials, its pool); the response, read.
    A status outside 2xx raises ApiException, as the generated API methods do. Those methods
    are not used: each call through them validates its arguments with pydantic and, the first
    time, imports the whole API group's models, work a profile of a large convergence shows
    and the operator has no use for (it sends and compares JSON)."""
    api = _client()
    headers = {"Accept": accept, **({"Content-Type": content_type} if content_type else {})}
    request = api.param_serialize(method, path, query_params=list((query or {}).items()),
                                  header_params=headers, body=body,
                                  auth_settings=["BearerToken"])
    response = api.call_api(*request, _request_timeout=timeout)
    response.read()  # type: ignore[no-untyped-call]
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(http_resp=response, body=None, data=None)
    return response


_OURS = {"fieldManager": render.FIELD_MANAGER}


def create(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Create a Deployment or a Service; 409 (a KubeError with ``conflict``) when one of that
    name exists, whoever made it."""
    meta = manifest["metadata"]
    try:
        return _json(_call("POST", _path(manifest["kind"], meta["namespace"]),
                           body=dict(manifest), query=_OURS))
    except ApiException as e:
        raise _fail(f"creating {manifest['kind']} {meta['namespace']}/{meta['name']}", e) from None


def apply(manifest: Mapping[str, Any], *, uid: str) -> dict[str, Any]:
    """Server-side apply onto the object that was compared (its uid), and no other: a child
    replaced meanwhile (by someone else's object of the same name) or gone fails with 409
    instead of being taken over or made again. Returns the object as stored."""
    meta = manifest["metadata"]
    body = {**manifest, "metadata": {**meta, "uid": uid}}
    try:
        return _json(_call("PATCH", _path(manifest["kind"], meta["namespace"], meta["name"]),
                           body=body, content_type=_APPLY, query={**_OURS, "force": "true"}))
    except ApiException as e:
        if e.status == 422 and "metadata.uid" in (e.body or ""):  # another object now
            raise KubeError(f"applying {manifest['kind']} {meta['namespace']}/{meta['name']}: "
                            "it was replaced since it was compared", 409) from None
        raise _fail(f"applying {manifest['kind']} {meta['namespace']}/{meta['name']}", e) from None


def patch(kind: str, namespace: str, name: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
    """A JSON patch (its ``test`` operations are its preconditions)."""
    try:
        return _json(_call("PATCH", _path(kind, namespace, name), body=ops,
                           content_type=_JSON_PATCH, query=_OURS))
    except ApiException as e:
        if e.status == 422:  # a failed ``test``: the apiserver says only "Invalid"
            raise KubeError(f"patching {kind} {namespace}/{name}: it changed since it was "
                            "compared", 409) from None
        raise _fail(f"patching {kind} {namespace}/{name}", e) from None


def delete(kind: str, namespace: str, name: str, *, uid: str) -> bool:
    """Delete the object of that uid, and no other; False when it is gone already (or another
    object of that name stands there now: a KubeError with ``conflict``)."""
    try:
        _call("DELETE", _path(kind, namespace, name), body={
            "apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}})
    except ApiException as e:
        if e.status == 404:
            return False
        raise _fail(f"deleting {kind} {namespace}/{name}", e) from None
    return True


def read(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """A Deployment, Service, HorizontalPodAutoscaler or WebApp by name, or None when there
    is none."""
    try:
        return _json(_call("GET", _path(kind, namespace, name)))
    except ApiException as e:
        if e.status == 404:
            return None
        raise _fail(f"reading {kind} {namespace}/{name}", e) from None


def get_json(path: str, **query: str) -> dict[str, Any] | None:
    """GET any API path (a list, events, a custom resource) as JSON; None when it is not there.

    For read-only tools that sample many times a second (the compare harness, the live view):
    one kept-alive client, no model objects, a short timeout.
    """
    return _get(path, query, "application/json")


def _get(path: str, query: Mapping[str, str], accept: str) -> dict[str, Any] | None:
    try:
        response = _call("GET", path, query=query, accept=accept, timeout=5)
    except ApiException as e:
        if e.status == 404:
            return None
        if e.status:
            raise KubeError(f"reading {path}: HTTP {e.status}", e.status) from None
        raise _fail(f"reading {path}", e) from None
    except Exception as e:  # urllib3's connection errors: the apiserver is not there
        raise KubeError(f"reading {path}: {type(e).__name__}: {e}") from None
    return _json(response)


# Metadata only, in pages: a full list of 1000 Deployments is 4.5 MB of JSON, all of it decoded
# at once; their metadata, a page at a time, stays under a megabyte.
_METADATA = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
PAGE = 250  # objects per page of a LIST


def typed(page: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """A LIST's items with the apiVersion and kind that a watch event's object carries and a
    list leaves out: compared with a rendered child, their absence would look like drift."""
    version, kind = page.get("apiVersion"), str(page.get("kind") or "").removesuffix("List")
    for item in page.get("items") or []:
        yield {"apiVersion": version, "kind": kind, **item} if version and kind else item


def list_all(kind: str, namespace: str | None = None, *,
             selector: str = "") -> Iterator[dict[str, Any]]:
    """Every WebApp, Deployment or Service (with the labels ``selector`` asks for), in one
    namespace or in all, a page at a time."""
    path = _PATHS[kind].format(scope=f"/namespaces/{namespace}" if namespace else "")
    query = {"limit": str(PAGE), **({"labelSelector": selector} if selector else {})}
    while True:
        page = _get(path, query, "application/json") or {}
        yield from typed(page)
        query["continue"] = (page.get("metadata") or {}).get("continue") or ""
        if not query["continue"]:
            return


def owned_children(namespace: str | None = None) -> set[tuple[str, str, str]]:
    """(kind, namespace, owner name) of every Deployment and Service a WebApp controls, listed
    now from the apiserver (by the managed-by label, then the controlling owner reference), in
    one namespace or in all."""
    selector = f"{render.MANAGED_BY}={render.FIELD_MANAGER}"
    scope = f"/namespaces/{namespace}" if namespace else ""
    found: set[tuple[str, str, str]] = set()
    for kind in render.KINDS:
        path = _PATHS[kind].format(scope=scope)
        query = {"labelSelector": selector, "limit": str(PAGE)}
        while True:
            page = _get(path, query, _METADATA) or {}
            for item in page.get("items") or []:
                if (owner := render.owner_name(item)) is not None:
                    found.add((kind, item["metadata"]["namespace"], owner))
            query["continue"] = (page.get("metadata") or {}).get("continue") or ""
            if not query["continue"]:
                break
    return found


def live_webapps(namespace: str | None = None) -> set[tuple[str, str, str]]:
    """(WebApp, namespace, name) of every WebApp listed now, metadata only, in pages."""
    scope = f"/namespaces/{namespace}" if namespace else ""
    path = f"/apis/{spec.GROUP}/{spec.VERSION}{scope}/{spec.PLURAL}"
    found: set[tuple[str, str, str]] = set()
    query = {"limit": str(PAGE)}
    while True:
        page = _get(path, query, _METADATA) or {}
        found |= {(spec.KIND, i["metadata"]["namespace"], i["metadata"]["name"])
                  for i in page.get("items") or []}
        query["continue"] = (page.get("metadata") or {}).get("continue") or ""
        if not query["continue"]:
            return found


def patch_status(namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return _json(_call("PATCH", _path(spec.KIND, namespace, name, "status"),
                           body={"status": dict(status)}, content_type=_MERGE))
    except ApiException as e:
        raise _fail(f"writing the status of WebApp {namespace}/{name}", e) from None


def apply_webapp(manifest: Mapping[str, Any], *, field_manager: str) -> dict[str, Any]:
    """Server-side apply of a whole WebApp (``reconcile-lab sync``): it takes over the fields
    it sets from whoever changed them by hand (force), as a GitOps agent does."""
    meta = manifest["metadata"]
    try:
        return _json(_call("PATCH", _path(spec.KIND, meta["namespace"], meta["name"]),
                           body=dict(manifest), content_type=_APPLY,
                           query={"fieldManager": field_manager, "force": "true"}))
    except ApiException as e:
        raise _fail(f"applying WebApp {meta['namespace']}/{meta['name']}", e) from None


def delete_webapp(namespace: str, name: str) -> bool:
    """Delete a WebApp (its children follow by garbage collection); False: it was not there."""
    try:
        _call("DELETE", _path(spec.KIND, namespace, name))
    except ApiException as e:
        if e.status == 404:
            return False
        raise _fail(f"deleting WebApp {namespace}/{name}", e) from None
    return True
