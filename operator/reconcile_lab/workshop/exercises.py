"""The workshop's exercises and what "done" means for each, as pure functions of observed state.

Each check takes a :class:`State` (what ``gather`` read from the cluster, Docker and
Prometheus) and returns a :class:`Verdict`: PASS or FAIL, what was seen, and a hint for the
next step. A check looks for the *evidence* of the exercise (a replaced pod, a DriftRepaired
event, a ReplicaSet on v2), not only for a final state, so the state before the exercise fails
and the state after the intended action passes.

Purely data: no I/O, no clock (``now`` is in the state), no client library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from reconcile_lab import ports
from reconcile_lab.declarative import policy
from reconcile_lab.declarative import status as statuses
from reconcile_lab.workshop import catalog, controllers, delivery, observed
from reconcile_lab.workshop.observed import INSTANCE, LABEL_APP, Obj, State, Verdict

V1 = "reconcile-lab/hello:v1"
V2 = "reconcile-lab/hello:v2"
REVISION = "deployment.kubernetes.io/revision"
RESTARTED_AFTER = 3.0  # a container started this long after it was created was restarted
SCALE_TO = 5  # exercise 02
OUTAGE_REPLICAS = 4  # exercise 07
UNTRUSTED_IMAGE = "untrusted/hello:v1"  # exercise 09: outside the policy's allowed prefixes


class Exercise(NamedTuple):
    """A check, with the catalogue's number, directory and title (``catalog`` holds the rest)."""

    number: str  # two digits
    slug: str  # examples/exercises/NN-slug/
    title: str
    check: Callable[[State], Verdict]

    @property
    def directory(self) -> str:
        return f"examples/exercises/{self.number}-{self.slug}"


# --- the checks -----------------------------------------------------------------------------


def check_first_webapp(state: State) -> Verdict:
    if (failed := observed.basics(state)) is not None:
        return failed
    w = state.webapp
    assert w is not None
    return Verdict(True, f"WebApp {state.app} is Ready: {observed.ready(w)}/{observed.replicas(w)} replicas, "
                   "its Deployment and Service carry an ownerReference to it",
                   "kubectl returned at once; the operator did the work afterwards, and "
                   "keeps doing it")


def check_scale(state: State) -> Verdict:
    if (failed := observed.basics(state)) is not None:
        return failed
    w, d = state.webapp, state.deployment
    assert w is not None and d is not None
    if observed.replicas(w) != SCALE_TO:
        return Verdict(False, f"WebApp {state.app} asks for {observed.replicas(w)} replicas; "
                       f"the exercise asks for {SCALE_TO}",
                       f"kubectl scale webapp/{state.app} --replicas={SCALE_TO}")
    if int(d.get("spec", {}).get("replicas", -1)) != SCALE_TO or observed.ready(w) != SCALE_TO:
        return Verdict(False, f"asked for {SCALE_TO}, {observed.ready(w)} ready so far",
                       "wait a moment and check again")
    return Verdict(True, f"{SCALE_TO}/{SCALE_TO} ready; the Deployment followed the WebApp",
                   "one field changed; the operator made the Deployment follow")


def _pod_replaced(state: State) -> bool:
    """More pods were created for the current ReplicaSet than it has ever had to hold."""
    current = [rs for rs in state.replicasets if int(rs.get("spec", {}).get("replicas") or 0) > 0]
    for rs in current:
        name = rs.get("metadata", {}).get("name", "")
        created = sum(int(e.get("count") or 1) for e in observed.events_for(state, "ReplicaSet", name, rs)
                      if e.get("reason") == "SuccessfulCreate")
        if created > int(rs.get("spec", {}).get("replicas") or 0):
            return True
    return False


def _container(c: Obj) -> tuple[str, str, bool, bool]:
    """(name, status, ready, restarted) of a `docker inspect` entry."""
    state = c.get("State") or {}
    health = (state.get("Health") or {}).get("Status", "none")
    ready = state.get("Status") == "running" and health in ("none", "healthy")
    started, created = statuses.timestamp(state.get("StartedAt")), statuses.timestamp(c.get("Created"))
    restarted = started - created > RESTARTED_AFTER
    return str(c.get("Name", "")).lstrip("/"), str(state.get("Status", "?")), ready, restarted


def check_self_healing(state: State) -> Verdict:
    if (failed := observed.basics(state)) is not None:
        return failed
    w = state.webapp
    assert w is not None
    if not _pod_replaced(state):
        return Verdict(False, "no pod of the app has been replaced yet",
                       f"kubectl get pods -l {INSTANCE}={state.app}, then kubectl delete pod "
                       "ONE-OF-THEM --wait=false and watch: kubectl get pods -w")
    if observed.ready(w) != observed.replicas(w):
        return Verdict(False, f"a pod was replaced; {observed.ready(w)}/{observed.replicas(w)} ready so far",
                       "wait a moment and check again")
    if state.docker_error:
        return Verdict(False, f"Kubernetes part done; Docker does not answer: {state.docker_error}",
                       "reconcile-lab engine up")
    seen = [_container(c) for c in state.containers]
    if not seen:
        return Verdict(False, f"Kubernetes replaced a pod by itself; no Docker twin of "
                       f"{state.app} runs yet",
                       "reconcile-lab docker apply -f examples/exercises/01-first-webapp/"
                       "webapp.yaml")
    down = [name for name, _, ready, _ in seen if not ready]
    if down:
        return Verdict(False, f"{', '.join(down)} not running and nothing brought "
                       f"{'it' if len(down) == 1 else 'them'} back: Docker keeps no desired state",
                       "now be the controller yourself: reconcile-lab docker apply -f "
                       "examples/exercises/01-first-webapp/webapp.yaml")
    if not any(restarted for *_, restarted in seen):
        return Verdict(False, "Kubernetes replaced a pod by itself; no container of the twin "
                       "has been killed yet",
                       f"docker kill {seen[0][0]}, wait, look (reconcile-lab docker status "
                       f"{state.app}), then apply the file again")
    return Verdict(True, "a pod was replaced by the cluster without anyone asking; the killed "
                   "container came back only when you ran apply",
                   "self-healing is a loop that never stops comparing, not a restart command")


def check_drift_repair(state: State) -> Verdict:
    if (failed := observed.basics(state)) is not None:
        return failed
    repaired = [e for e in observed.events_for(state, "WebApp", state.app, state.webapp)
                if e.get("reason") == "DriftRepaired"]
    if not repaired:
        return Verdict(False, "no drift repaired yet",
                       f"kubectl delete service {state.app} (or kubectl scale deployment "
                       f"{state.app} --replicas=1) and watch it come back")
    messages = sorted({str(e.get("message", "")) for e in repaired})
    return Verdict(True, f"the operator repaired drift: {'; '.join(messages)}",
                   f"kubectl get events --field-selector involvedObject.name={state.app}")


def _images(rs: Obj) -> set[str]:
    return {str(c.get("image")) for c in rs.get("spec", {}).get("template", {}).get("spec", {})
            .get("containers", [])}


def check_rollout(state: State) -> Verdict:
    if (failed := observed.basics(state)) is not None:
        return failed
    w, d = state.webapp, state.deployment
    assert w is not None and d is not None
    revision = int(d.get("metadata", {}).get("annotations", {}).get(REVISION, "0") or 0)
    had_v2 = any(V2 in _images(rs) for rs in state.replicasets)
    if not had_v2:
        return Verdict(False, f"no rollout to v2 yet (revision {revision})",
                       "kubectl apply -f examples/exercises/05-rolling-update/webapp-v2.yaml"
                       f" and watch: kubectl get webapp {state.app} -w")
    if observed.image(w) != V1:
        return Verdict(False, f"v2 is rolled out (revision {revision}); now roll back to v1",
                       "kubectl apply -f examples/exercises/01-first-webapp/webapp.yaml")
    status = d.get("status") or {}
    if revision < 3 or int(status.get("updatedReplicas") or 0) != observed.replicas(w) \
            or observed.ready(w) != observed.replicas(w):
        return Verdict(False, f"rolling back to v1: {observed.ready(w)}/{observed.replicas(w)} ready, "
                       f"revision {revision}", "wait a moment and check again")
    return Verdict(True, f"rolled out v2 and back to v1 (revision {revision}), "
                   f"{observed.ready(w)}/{observed.replicas(w)} ready",
                   f"kubectl rollout history deployment/{state.app}: the old ReplicaSet was "
                   "kept, so going back was a scale, not a rebuild")


def check_garbage_collection(state: State) -> Verdict:
    if state.kube_error:
        return Verdict(False, f"the cluster does not answer: {state.kube_error}",
                       "reconcile-lab cluster up")
    if not observed.events_for(state, "WebApp", state.app):
        return Verdict(False, f"there is no trace of a WebApp {state.app} {observed.where(state)} "
                       "(no events in the last hour)", "do exercise 01 first")
    if state.webapp is not None:
        return Verdict(False, f"WebApp {state.app} still exists",
                       f"kubectl delete webapp {state.app}, then kubectl get "
                       f"deployment,service,pods -l {INSTANCE}={state.app}")
    left = [f"{kind} {o['metadata']['name']}" for kind, objs in (
        ("Deployment", [state.deployment] if state.deployment else []),
        ("Service", [state.service] if state.service else []),
        ("ReplicaSet", list(state.replicasets)), ("Pod", list(state.pods))) for o in objs]
    if left:
        return Verdict(False, f"the WebApp is gone; its children are going: "
                       f"{', '.join(left[:4])}", "garbage collection is asynchronous: check again")
    if state.docker_error:
        return Verdict(False, f"Kubernetes part done; Docker does not answer: {state.docker_error}",
                       "reconcile-lab engine up")
    if state.containers or state.network:
        what = [str(c.get("Name", "")).lstrip("/") for c in state.containers]
        scoped = state.app if state.namespace == "default" else f"{state.app}.{state.namespace}"
        what += [f"network {scoped}"] if state.network else []
        namespace = f" -n {state.namespace}" if state.namespace != "default" else ""
        return Verdict(False, f"Kubernetes collected everything; Docker still has "
                       f"{', '.join(what)}",
                       f"Docker does no garbage collection: reconcile-lab docker delete "
                       f"{state.app}{namespace} (it removes what carries the label "
                       f"{LABEL_APP}={state.app})")
    return Verdict(True, "the WebApp went and took its Deployment, ReplicaSets, pods and "
                   "Service with it; on Docker, delete removed what carried the label",
                   "ownerReferences did on Kubernetes what a label and a command did on Docker")


def check_operator_down(state: State) -> Verdict:
    if state.kube_error:
        return Verdict(False, f"the cluster does not answer: {state.kube_error}",
                       "reconcile-lab cluster up")
    w, d = state.webapp, state.deployment
    if w is None or d is None:
        return observed.basics(state) or Verdict(False, "no WebApp", "do exercise 01 first")
    generation = int(w.get("metadata", {}).get("generation") or 0)
    seen_generation = int((w.get("status") or {}).get("observedGeneration") or 0)
    wanted = observed.replicas(w)
    serving = int((d.get("status") or {}).get("readyReplicas") or 0)
    if wanted != OUTAGE_REPLICAS:
        first = ("stop the operator (reconcile-lab operator stop), then"
                 if state.operator_running is not False else "the operator is stopped: now")
        return Verdict(False, f"WebApp {state.app} asks for {wanted} replicas",
                       f"{first} kubectl scale webapp/{state.app} --replicas={OUTAGE_REPLICAS}")
    if seen_generation < generation:
        return Verdict(False, f"your change waits: generation {generation} is not observed "
                       f"(observedGeneration {seen_generation}); meanwhile the app still serves "
                       f"({serving} ready)",
                       "start the operator again: reconcile-lab operator start")
    if (observed.ready(w) != OUTAGE_REPLICAS
            or int(d.get("spec", {}).get("replicas", 0)) != wanted):
        return Verdict(False, f"the change is being made: {observed.ready(w)}/{wanted} ready",
                       "wait a moment and check again")
    return Verdict(True, f"{OUTAGE_REPLICAS}/{OUTAGE_REPLICAS} ready, observedGeneration "
                   f"{seen_generation} = generation: the change waited for the operator, the app "
                   "kept serving", "the desired state was safe in the apiserver all along")


def check_metrics(state: State) -> Verdict:
    if state.prometheus is None:
        return Verdict(False, f"no Prometheus answers at {state.prometheus_url}",
                       "reconcile-lab observe prometheus & (or `make prometheus`; see "
                       "docs/observability.md)")
    engines = {labels.get("engine", ""): value for labels, value in state.prometheus
               if labels.get("app") == state.app}
    if not engines:
        return Verdict(False, f"Prometheus has no reconcile_lab_ready_replicas for {state.app}",
                       "is the operator running, with metrics on its port "
                       f"({ports.OPERATOR_METRICS.help()})? is Prometheus scraping it? "
                       "(Status → Targets in its web UI)")
    missing = [e for e in ("kubernetes", "docker") if e not in engines]
    if missing == ["docker"]:
        return Verdict(False, "Prometheus has the operator's numbers, not the twin's",
                       "run the twin as a loop: reconcile-lab docker apply -f "
                       "examples/exercises/01-first-webapp/webapp.yaml --watch (its metrics port: "
                       f"{ports.TWIN_METRICS.help()})")
    if missing:
        return Verdict(False, f"Prometheus has no numbers from the {missing[0]} engine",
                       "reconcile-lab operator start (its metrics port: "
                       f"{ports.OPERATOR_METRICS.help()})")
    seen = ", ".join(f"{k}: {v:g} ready" for k, v in sorted(engines.items()))
    return Verdict(True, f"Prometheus has both engines side by side ({seen})",
                   "open the Reconciliation dashboard in Grafana: one panel, two engines")


def check_policy(state: State) -> Verdict:
    if state.kube_error or state.admission is None:
        return Verdict(False, f"the cluster does not answer: {state.kube_error or 'no reply'}",
                       "reconcile-lab cluster up, then eval \"$(reconcile-lab cluster env)\"")
    seen = state.admission
    missing = [b for b in (policy.WEBAPPS, policy.PODS) if b not in seen["bindings"]]
    if missing:
        return Verdict(False, f"the policy is not installed (no binding {', '.join(missing)})",
                       "`kubectl apply -f deploy/policy.yaml`")
    if seen["labels"].get(policy.LABEL) != policy.ENFORCE:
        return Verdict(False, f"namespace {state.namespace} is not under the policy: the "
                       f"bindings select namespaces labelled {policy.LABEL}={policy.ENFORCE}",
                       f"`kubectl label namespace {state.namespace} "
                       f"{policy.LABEL}={policy.ENFORCE}`")
    if seen["accepted"]:
        return Verdict(False, f"a WebApp from {UNTRUSTED_IMAGE} would still be accepted in "
                       f"{state.namespace}", "read `kubectl get validatingadmissionpolicy "
                       "-o yaml`: is the policy's expression what deploy/policy.yaml says?")
    ran = [c for c in state.containers
           if (c.get("Config") or {}).get("Image") == UNTRUSTED_IMAGE]
    notice = (f"Docker ran {len(ran)} container(s) of the same image without a question"
              if ran else "now run the same image with the twin: Docker has no such gate")
    return Verdict(True, f"the apiserver refuses {UNTRUSTED_IMAGE} in {state.namespace} before "
                   "anything is stored: " + seen["answer"].split("denied request: ")[-1][:160],
                   notice)


CHECKS: Mapping[str, Callable[[State], Verdict]] = {
    "01": check_first_webapp, "02": check_scale, "03": check_self_healing,
    "04": check_drift_repair, "05": check_rollout, "06": check_garbage_collection,
    "07": check_operator_down, "08": check_metrics, "09": check_policy,
    "10": controllers.check_edge_vs_level, "11": controllers.check_zombie,
    "12": delivery.check_zero_downtime, "13": delivery.check_git_as_truth,
    "14": controllers.check_machine_dies, "15": controllers.check_autoscale,
}
EXERCISES: tuple[Exercise, ...] = tuple(Exercise(e.number, e.slug, e.title, CHECKS[e.number])
                                        for e in catalog.ENTRIES)
BY_NUMBER = {e.number: e for e in EXERCISES}


def find(number: str) -> Exercise:
    """An exercise by its number ("3" and "03" both work); KeyError when there is none."""
    return BY_NUMBER[number.zfill(2)]
