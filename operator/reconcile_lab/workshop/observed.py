"""What the exercise checks look at: the observed state of both engines, the verdict, and the
readers every check shares.

``gather`` fills a :class:`State` from the cluster, Docker and Prometheus; a check (in
``exercises`` or ``controllers``) turns it into a :class:`Verdict`.

Purely data: no I/O, no clock (``now`` is in the state), no client library.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from reconcile_lab.declarative import status as statuses

LABEL_APP = "reconcile-lab/app"
INSTANCE = "app.kubernetes.io/instance"

Obj = Mapping[str, Any]


class State(NamedTuple):
    """Everything a check may look at; None/empty where nothing was found."""

    app: str
    namespace: str
    webapp: Obj | None = None
    deployment: Obj | None = None
    service: Obj | None = None
    replicasets: tuple[Obj, ...] = ()
    pods: tuple[Obj, ...] = ()
    events: tuple[Obj, ...] = ()  # the namespace's events
    containers: tuple[Obj, ...] = ()  # `docker inspect` of the containers labelled for the app
    network: bool = False  # the network NAME labelled for the app exists
    operator_running: bool | None = None  # None: cannot tell
    operator_kind: str | None = None  # the background one: "level", "proxied", "edge", None
    fault_proxy: Obj | None = None  # `reconcile-lab fault status`; None: no proxy answers
    prometheus: tuple[tuple[Mapping[str, str], float], ...] | None = None  # None: unreachable
    # the namespace's labels, the policy bindings, the answer to a dry run of an untrusted image
    admission: Obj | None = None
    traffic: Obj | None = None  # the last count kept by `reconcile-lab traffic` for the app
    project: tuple[Obj, ...] = ()  # the namespace's WebApps of the exercise folder's project
    project_docker: tuple[str, ...] = ()  # the apps Docker has of that project (namespace's)
    leases: tuple[Obj, ...] = ()  # the nodes' heartbeats (kube-node-lease)
    autoscaler: Obj | None = None  # the HorizontalPodAutoscaler of the app's name
    kube_error: str = ""
    docker_error: str = ""
    prometheus_url: str = "http://127.0.0.1:9090"


class Verdict(NamedTuple):
    passed: bool
    summary: str  # what was seen
    hint: str = ""  # what to do next (on PASS: what to notice)

    def format(self, number: str) -> str:
        word = "PASS" if self.passed else "FAIL"
        text = f"{word}  exercise {number}: {self.summary}"
        if self.hint:
            text += f"\n      {'notice' if self.passed else 'hint'}: {self.hint}"
        return text


# --- reading the objects --------------------------------------------------------------------


def owned_by(child: Obj | None, owner: Obj | None) -> bool:
    uid = (owner or {}).get("metadata", {}).get("uid")
    return bool(uid) and any(ref.get("uid") == uid and ref.get("controller")
                             for ref in (child or {}).get("metadata", {}).get("ownerReferences")
                             or [])


def replicas(webapp: Obj) -> int:
    return int(webapp.get("spec", {}).get("replicas", 1))


def ready(webapp: Obj) -> int:
    return int((webapp.get("status") or {}).get("readyReplicas") or 0)


def image(webapp: Obj) -> str:
    return str(webapp.get("spec", {}).get("image", ""))


def events_for(state: State, kind: str, name: str, obj: Obj | None = None) -> list[Obj]:
    """Events about ``kind``/``name``; given the object, only those about this very object (its
    uid): a WebApp or ReplicaSet made again under the same name starts without evidence."""
    uid = (obj or {}).get("metadata", {}).get("uid")
    return [e for e in state.events if e.get("involvedObject", {}).get("kind") == kind
            and e.get("involvedObject", {}).get("name") == name
            and (not uid or e["involvedObject"].get("uid", uid) == uid)]


def where(state: State) -> str:
    return f"in namespace {state.namespace}"


def basics(state: State) -> Verdict | None:
    """The failures every Kubernetes exercise shares; None when the WebApp is there and Ready."""
    if state.kube_error:
        return Verdict(False, f"the cluster does not answer: {state.kube_error}",
                       "reconcile-lab cluster up, then eval \"$(reconcile-lab cluster env)\"")
    w = state.webapp
    if w is None:
        return Verdict(False, f"no WebApp {state.app} {where(state)}",
                       "kubectl apply -f examples/exercises/01-first-webapp/webapp.yaml"
                       + (f" -n {state.namespace}" if state.namespace != "default" else ""))
    condition = statuses.condition((w or {}).get("status"), "Ready")
    if not (w.get("status") or {}).get("observedGeneration"):
        return Verdict(False, f"WebApp {state.app} has no status yet: nothing has reconciled it",
                       "is the operator running? reconcile-lab operator start")
    if state.deployment is None or state.service is None:
        missing = " and ".join(k for k, v in (("Deployment", state.deployment),
                                              ("Service", state.service)) if v is None)
        return Verdict(False, f"WebApp {state.app} has no {missing}",
                       "is the operator running? reconcile-lab operator start")
    if not (owned_by(state.deployment, w) and owned_by(state.service, w)):
        return Verdict(False, f"the Deployment or Service {state.app} is not owned by the WebApp",
                       "kubectl describe webapp " + state.app + " (look for ChildConflict)")
    if condition is None or condition.get("status") != "True":
        reason = (condition or {}).get("reason", "no Ready condition")
        return Verdict(False, f"WebApp {state.app} is not Ready yet ({reason}): "
                       f"{ready(w)}/{replicas(w)} ready",
                       f"kubectl wait --for=condition=Ready webapp/{state.app}, then check again")
    return None
