"""The checks of the exercises about delivering a change: a release that loses no request (12)
and a folder that defines what runs (13), as pure functions of observed state.

Each looks for the evidence of the exercise: a kept count of requests during a release (by
``reconcile-lab traffic``), the WebApps a folder's project owns (by ``reconcile-lab sync``).

Purely data: no I/O, no clock, no client library.
"""

from __future__ import annotations

from reconcile_lab.workshop import observed
from reconcile_lab.workshop.observed import State, Verdict

RELEASE_FILE = "examples/exercises/12-zero-downtime/webapp-v2.yaml"
PROJECT = "apps"  # exercise 13's folder, and so its project
PROJECT_LABEL = "reconcile-lab.dev/project"
GOODBYE = "goodbye"  # the folder's other app, the one whose file goes
FOLDER_REPLICAS = 3  # what the folder's hello.yaml says


FOLDER = f"out/{PROJECT}"  # exercise 13's working copy of the folder


def check_zero_downtime(state: State) -> Verdict:
    if (failed := observed.basics(state)) is not None:
        return failed
    w = state.webapp
    assert w is not None
    traffic = f"reconcile-lab traffic {state.app}" + (
        f" -n {state.namespace}" if state.namespace != "default" else "")
    release = f'{traffic} --during "kubectl apply -f {RELEASE_FILE}"'
    record = state.traffic
    if record is None:
        return Verdict(False, f"no requests counted for {state.app} yet",
                       f"release under steady requests: {release}")
    kube = (record.get("engines") or {}).get("kubernetes")
    if kube is None:
        return Verdict(False, "the last count sent nothing to the Kubernetes side",
                       f"run it on both engines: {release}")
    versions = kube.get("versions") or {}
    if len(versions) < 2:
        return Verdict(False, f"the requests saw one version only ({', '.join(versions) or 'none'})"
                       ": no release happened while they were counted", release)
    sent = int(kube.get("ok", 0)) + int(kube.get("failed", 0))
    lost = int(kube.get("failed", 0))
    probed = bool((w.get("spec") or {}).get("healthCheck"))
    if lost:
        cause = ("the pods have no readiness probe: a new one gets requests as soon as its "
                 "process starts, before it listens" if not probed else
                 "look at `kubectl get events` for the release: a pod that was not ready, or "
                 "one that stopped serving before the Service let it go")
        return Verdict(False, f"{lost} of {sent} requests failed during the release "
                       f"({', '.join(versions)})", f"{cause}; add spec.healthCheck and release "
                       "again")
    if not probed:
        return Verdict(False, f"0 of {sent} failed, but WebApp {state.app} has no healthCheck: "
                       "nothing tells the Service when a pod can serve", "add spec.healthCheck "
                       "and release again under traffic")
    docker = (record.get("engines") or {}).get("docker")
    notice = ("the Service sent requests only to ready pods, and an old pod served until the "
              "Service had let it go")
    if docker is not None:
        notice += (f"; on Docker {docker.get('failed', 0)} of "
                   f"{int(docker.get('ok', 0)) + int(docker.get('failed', 0))} failed")
    return Verdict(True, f"a release ({' → '.join(versions)}) under {sent} requests, none "
                   "failed on Kubernetes", notice)


def check_git_as_truth(state: State) -> Verdict:
    where = FOLDER
    if state.kube_error:
        return Verdict(False, f"the cluster does not answer: {state.kube_error}",
                       "reconcile-lab cluster up")
    synced = {str(w.get("metadata", {}).get("name")): w for w in state.project}
    if not synced:
        return Verdict(False, f"no WebApp in {state.namespace} carries {PROJECT_LABEL}="
                       f"{PROJECT}: nothing was synced from a folder named {PROJECT}",
                       f"copy the exercise's two files into {where}/, then "
                       f"`reconcile-lab sync {where}`")
    if GOODBYE in synced:
        return Verdict(False, f"{GOODBYE} is still in the cluster: the folder declares it, or "
                       "no sync ran since its file went",
                       f"rm {where}/{GOODBYE}.yaml, then reconcile-lab sync {where}")
    hello = synced.get(state.app)
    if hello is None:
        return Verdict(False, f"{state.app} is not one of the folder's WebApps",
                       f"is {where}/{state.app}.yaml there? reconcile-lab sync {where}")
    if observed.replicas(hello) != FOLDER_REPLICAS:
        return Verdict(False, f"{state.app} asks for {observed.replicas(hello)} replicas; the "
                       f"folder says {FOLDER_REPLICAS}: a hand edit nobody put back",
                       f"reconcile-lab sync {where}: the folder wins")
    if observed.ready(hello) != FOLDER_REPLICAS:
        return Verdict(False, f"{observed.ready(hello)}/{FOLDER_REPLICAS} of {state.app} ready",
                       "wait a moment and check again")
    if state.docker_error:
        return Verdict(False, f"Kubernetes part done; Docker does not answer: "
                       f"{state.docker_error}", "reconcile-lab engine up")
    if GOODBYE in state.project_docker:
        return Verdict(False, f"the cluster equals the folder; on Docker {GOODBYE} still runs",
                       f"reconcile-lab docker apply -f {where} --prune")
    if state.app not in state.project_docker:
        return Verdict(False, "the cluster equals the folder; nothing on Docker was applied "
                       "from it", f"reconcile-lab docker apply -f {where} --prune")
    return Verdict(True, f"the cluster and the Docker engine equal the folder: {state.app} "
                   f"{FOLDER_REPLICAS}/{FOLDER_REPLICAS}, {GOODBYE} gone from both",
                   f"the record of what the folder owns is a label on each side "
                   f"({PROJECT_LABEL} in the cluster, reconcile-lab/project on the containers); "
                   f"`reconcile-lab sync {where} --watch` would also have put the hand edit back "
                   "without being asked")
