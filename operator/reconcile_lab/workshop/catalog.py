"""The workshop's exercises as data: what each is, how hard, how long, what it needs, its hints,
its solution and the state it starts from.

The one place for these facts: ``exercise list`` prints them, ``exercise hint|solve|reset``
use them, every README's header block is generated from them (``headers``, by ``exercise
readmes``) and a unit test fails when a README's block differs. The checks that say PASS or
FAIL are in ``exercises`` and ``controllers``.

Commands are written as a participant types them in the default namespace, for the app
``hello`` of ``01-first-webapp/webapp.yaml``; :func:`in_namespace` turns them into the same
commands for another namespace.

Purely data: no I/O, no clock, no client library.
"""

from __future__ import annotations

import enum
import json
import re
import shlex
from typing import NamedTuple

from reconcile_lab.cluster import nodeconfig
from reconcile_lab.imperative import containers
from reconcile_lab.workshop import delivery

APP = "hello"  # the app every exercise's files declare
WEBAPP = "examples/exercises/01-first-webapp/webapp.yaml"
WEBAPP_V2 = "examples/exercises/05-rolling-update/webapp-v2.yaml"
UNTRUSTED = "examples/exercises/09-policy/webapp-untrusted.yaml"
POLICY = "deploy/policy.yaml"
RELEASE = "examples/exercises/12-zero-downtime"
GIT = "examples/exercises/13-git-as-truth"
MACHINES = "examples/exercises/14-machine-dies"
AUTOSCALE = "examples/exercises/15-autoscale/webapp.yaml"
# CPU work for the app (the demo image's /cgi-bin/work, ~40 ms of a core per request), bounded.
LOAD = "reconcile-lab traffic hello --path /cgi-bin/work --rate 4"
LEASES = "kubectl get leases -n kube-node-lease"
DEAD_HOLDER = nodeconfig.DEAD_HOLDER
DEAD_PATCH = json.dumps(nodeconfig.dead_lease(), separators=(",", ":"))
# Every Lease whose machine "died" deleted: kwok makes a new one, and the node is back.
REVIVE = (f"{LEASES} -o jsonpath='{nodeconfig.DEAD_LEASES}' | xargs -r kubectl delete lease "
          "-n kube-node-lease")
WORK = delivery.FOLDER  # exercise 13's working copy of its folder (out/: the kit's scratch)
SELECTOR = f"app.kubernetes.io/instance={APP}"
TWIN = "{twin}"  # in a command: the twin's Docker name for APP (``hello`` in default)
NAMESPACE = "{namespace}"  # in a command: the namespace the exercise is done in
FILE = re.compile(r"examples/exercises/[\w./-]+\.yaml")
BACKGROUND = " &"  # a solution command ending so keeps running after solve (a loop, a server)


class Difficulty(enum.Enum):
    EASY = "easy"
    MEDIUM = "medium"
    HARD = "hard"


class Start(NamedTuple):
    """Where an exercise starts: what ``reset`` makes, fresh (no evidence of earlier attempts)."""

    webapp: str | None = WEBAPP  # the WebApp made from this file, Ready; None: no WebApp
    twin: bool = True  # the twin's containers from the same file, all running
    operator: bool = True  # the operator runs (in the background: `operator start`)
    enforced: bool | None = None  # the namespace under the admission policy; None: as it is
    proxied: bool = False  # the operator reaches the apiserver through the fault proxy
    others: tuple[str, ...] = ()  # more apps the exercise makes: none of them, on both engines
    workdir: str | None = None  # a working copy the exercise makes: not there
    counted: bool = False  # no count of requests kept by `reconcile-lab traffic` for the app
    simulated: bool = False  # the namespace's pods go to kwok's simulated nodes

    def describe(self) -> str:
        parts = [f"the WebApp {APP} from `{self.webapp}`, Ready" if self.webapp
                 else f"no WebApp {APP}"]
        if self.webapp:
            parts.append("its Docker twin running, none killed" if self.twin else "no Docker twin")
        else:
            parts.append("no Docker twin")
        parts.append(("the operator running behind the fault proxy" if self.proxied
                      else "the operator running") if self.operator else "the operator stopped")
        if self.enforced is not None:
            parts.append("the namespace " + ("under" if self.enforced else "not under")
                         + " the admission policy")
        parts += [f"no app {name}" for name in self.others]
        if self.workdir:
            parts.append(f"no `{self.workdir.replace(NAMESPACE, 'NAMESPACE')}`")
        if self.counted:
            parts.append("no requests counted yet")
        if self.simulated:
            parts.append("the namespace's pods on simulated nodes, every machine up")
        return "; ".join(parts)


class Entry(NamedTuple):
    number: str  # two digits
    slug: str  # examples/exercises/NN-slug/
    title: str
    difficulty: Difficulty
    minutes: int
    prerequisites: tuple[str, ...]  # numbers of exercises to do first
    goal: str
    hints: tuple[str, ...]  # ordered: from a nudge to nearly the answer
    solution: tuple[str, ...]  # shell commands, in order
    start: Start

    @property
    def directory(self) -> str:
        return f"examples/exercises/{self.number}-{self.slug}"


_WAIT_READY = f"kubectl wait --for=condition=Ready webapp/{APP} --timeout=180s"

ENTRIES: tuple[Entry, ...] = (
    Entry("01", "first-webapp", "Your first WebApp: one file, two engines", Difficulty.EASY, 10,
          (), "Declare an app once and have it made true twice: by the operator (Kubernetes) "
          "and by the Docker twin. Notice *when* each command returns and *who* does the work.",
          ("One file describes the app; both engines read the same file.",
           f"Give the file to the cluster with kubectl, then to the twin; `{WEBAPP}` is the file.",
           f"`kubectl apply -f {WEBAPP}`, wait until `kubectl get webapp {APP}` says Available, "
           f"then `reconcile-lab docker apply -f {WEBAPP}`."),
          (f"kubectl apply -f {WEBAPP}", _WAIT_READY, f"reconcile-lab docker apply -f {WEBAPP}"),
          Start(webapp=None)),
    Entry("02", "scale", "Scale: change one field, watch the cluster follow", Difficulty.EASY, 5,
          ("01",), "Go from 3 to 5 instances on both engines and count what you had to type.",
          ("The number of instances is one field of the WebApp: change the desired state, "
           "not the Deployment.",
           "The WebApp has a scale subresource, so `kubectl scale` works on it.",
           f"`kubectl scale webapp/{APP} --replicas=5`, then watch `kubectl get webapp {APP} -w`."),
          (f"kubectl scale webapp/{APP} --replicas=5",
           f"kubectl wait --for=jsonpath={{.status.readyReplicas}}=5 webapp/{APP} --timeout=180s"),
          Start()),
    Entry("03", "self-healing", "Self-healing vs the imperative twin", Difficulty.MEDIUM, 10,
          ("01",), "Kill an instance on each side and see who notices.",
          ("Remove one instance on each side, then only look: who brings it back?",
           f"On Kubernetes delete one pod (`kubectl get pods -l {SELECTOR}`); on Docker "
           f"`docker kill {APP}-1`.",
           f"`kubectl delete pod POD --wait=false`; `docker kill {APP}-1`, wait, look with "
           f"`reconcile-lab docker status -f {WEBAPP}`, then be the controller yourself: "
           f"`reconcile-lab docker apply -f {WEBAPP}`."),
          (f"kubectl delete $(kubectl get pods -l {SELECTOR} -o name | head -n 1) --wait=false",
           f"docker kill {TWIN}-1",
           "sleep 5",
           f"reconcile-lab docker apply -f {WEBAPP}"),
          Start()),
    Entry("04", "drift-repair", "Drift repair: delete a child, watch it come back",
          Difficulty.EASY, 10, ("01",),
          "Change what the operator made, by hand, and see it put back.",
          ("The operator made a Deployment and a Service: change one of them behind its back.",
           f"Delete the Service `{APP}`, or scale the Deployment `{APP}` by hand.",
           f"`kubectl delete service {APP}`, then `kubectl get events --field-selector "
           f"involvedObject.name={APP}`: look for DriftRepaired."),
          (f"kubectl delete service {APP}",
           f"kubectl wait --for=create service/{APP} --timeout=60s",
           f"kubectl get events --field-selector involvedObject.name={APP}"),
          Start()),
    Entry("05", "rolling-update", "Rolling update and rollback", Difficulty.MEDIUM, 15, ("01",),
          "Roll out v2 without dropping below the desired count, then go back to v1.",
          ("A new version is a change of the desired state: the image field.",
           f"`{WEBAPP_V2}` differs only in the image; roll it out, then declare v1 again.",
           f"`kubectl apply -f {WEBAPP_V2}`, `kubectl rollout status deployment/{APP}`, then "
           f"`kubectl apply -f {WEBAPP}` and `kubectl rollout history deployment/{APP}`."),
          (f"kubectl apply -f {WEBAPP_V2}",
           "kubectl wait --for=jsonpath={.spec.template.spec.containers[0].image}"
           f"=reconcile-lab/hello:v2 deployment/{APP} --timeout=60s",
           f"kubectl rollout status deployment/{APP} --timeout=180s",
           f"kubectl apply -f {WEBAPP}",
           "kubectl wait --for=jsonpath={.spec.template.spec.containers[0].image}"
           f"=reconcile-lab/hello:v1 deployment/{APP} --timeout=60s",
           f"kubectl rollout status deployment/{APP} --timeout=180s",
           f"kubectl rollout history deployment/{APP}"),
          Start(twin=False)),
    Entry("06", "garbage-collection", "Garbage collection on delete", Difficulty.EASY, 5,
          ("01",), "Delete the app on both engines and see what goes with it.",
          ("Delete only the top of each app, and list what is left on each side.",
           "On Kubernetes delete the WebApp alone; on Docker the twin has its own delete.",
           f"`kubectl delete webapp {APP}`, then `reconcile-lab docker delete {APP}`."),
          (f"kubectl delete webapp {APP}",
           f"kubectl wait --for=delete pod -l {SELECTOR} --timeout=180s",
           f"reconcile-lab docker delete {APP}"),
          Start()),
    Entry("07", "operator-down", "Operator down: the app keeps serving, changes wait",
          Difficulty.MEDIUM, 10, ("01",),
          "Stop the controller, change the desired state, and see what still works.",
          ("Stop the operator first, then change the WebApp while nobody reconciles.",
           "`reconcile-lab operator stop`, then scale the WebApp to 4 and compare its "
           "generation with its observedGeneration.",
           f"`kubectl scale webapp/{APP} --replicas=4` while stopped, then "
           "`reconcile-lab operator start` and watch it converge."),
          ("reconcile-lab operator stop",
           f"kubectl scale webapp/{APP} --replicas=4",
           f"kubectl get webapp {APP} -o jsonpath="
           "'{.metadata.generation} {.status.observedGeneration}{\"\\n\"}'",
           "reconcile-lab operator start",
           f"kubectl wait --for=jsonpath={{.status.readyReplicas}}=4 webapp/{APP} --timeout=180s"),
          Start(twin=False)),
    Entry("08", "metrics", "Both engines in Prometheus and Grafana", Difficulty.HARD, 15,
          ("01",), "See both engines on one dashboard, and break something while you watch.",
          ("Both engines export the same metric names; Prometheus must scrape both.",
           "The operator serves metrics on :8000; the twin only as a loop (`--watch`, :8001).",
           f"`reconcile-lab docker apply -f {WEBAPP} --watch` in one terminal, `reconcile-lab "
           "observe prometheus` in another, then open http://127.0.0.1:9090/targets."),
          (f"reconcile-lab docker apply -f {WEBAPP} --watch{BACKGROUND}",
           f"reconcile-lab observe prometheus{BACKGROUND}"),
          Start()),
    Entry("09", "policy", "Policy before anything runs", Difficulty.MEDIUM, 15, ("01",),
          "Have the cluster refuse an app from an image it does not trust, before anything is "
          "stored or scheduled, and see Docker run the very same image.",
          ("The rule lives in the apiserver, as a ValidatingAdmissionPolicy: install it first.",
           "It binds only to namespaces labelled `reconcile-lab.dev/policy=enforce`: label "
           "yours, after installing the policy.",
           f"`kubectl apply -f {POLICY}`, then `kubectl label namespace <yours> "
           f"reconcile-lab.dev/policy=enforce`, then `kubectl apply -f {UNTRUSTED}`: refused. "
           f"`docker tag reconcile-lab/hello:v1 untrusted/hello:v1` and `reconcile-lab docker "
           f"apply -f {UNTRUSTED}`: it runs."),
          (f"kubectl apply -f {POLICY}",
           f"kubectl label namespace {NAMESPACE} reconcile-lab.dev/policy=enforce --overwrite",
           # The apiserver sees a new policy and a new label a moment later: until then a
           # WebApp from any image is still let in.
           f"timeout 60 bash -c \"until ! kubectl apply --dry-run=server -f {UNTRUSTED} "
           f">/dev/null 2>&1; do sleep 1; done\"",
           f"! kubectl apply -f {UNTRUSTED}",
           "docker tag reconcile-lab/hello:v1 untrusted/hello:v1",
           f"reconcile-lab docker apply -f {UNTRUSTED}"),
          Start(webapp=None, operator=True, enforced=False)),
    Entry("10", "edge-vs-level", "Edge or level: who notices what nobody announced?",
          Difficulty.MEDIUM, 10, ("04",),
          "Run the operator kopf's tutorial teaches, which acts when a WebApp is created, and "
          "delete a child: nothing brings it back. Then start the kit's operator, which "
          "compares, and see it made again.",
          ("An edge-triggered controller acts on an event; a level-triggered one on the "
           "difference between what should be and what is, whatever happened.",
           "`reconcile-lab operator start --edge-triggered` runs the tutorial's operator; apply "
           "the WebApp, delete its Service, wait, and look again.",
           f"`kubectl delete service {APP}`: a minute later it is still gone, and restarting the "
           "edge-triggered operator changes nothing. `reconcile-lab operator stop`, then "
           "`reconcile-lab operator start`: the Service is back."),
          ("reconcile-lab operator start --edge-triggered",
           f"kubectl apply -f {WEBAPP}",
           f"kubectl wait --for=create service/{APP} --timeout=60s",
           f"kubectl delete service {APP}",
           "sleep 10",
           f"! kubectl get service {APP}",
           "reconcile-lab operator stop",
           "reconcile-lab operator start",
           f"kubectl wait --for=create service/{APP} --timeout=60s"),
          Start(webapp=None, operator=False)),
    Entry("11", "zombie-operator", "The zombie operator: alive, and blind", Difficulty.HARD, 15,
          ("04",), "Silence the operator's connections without closing them, delete a child, "
          "and see nothing happen while the operator looks healthy, until a timeout of its own "
          "makes it look again.",
          ("The operator reaches the apiserver through a proxy that can keep its connections "
           "open and make them carry nothing: a peer that vanished without a word.",
           f"`reconcile-lab fault stall`, then `kubectl delete service {APP}`, and count the "
           "seconds until it is back; `reconcile-lab fault status` shows the silent connections.",
           f"`reconcile-lab fault stall`; `kubectl delete service {APP}`; `kubectl get service "
           f"{APP} -w`: back after about half a minute (the watch's inactivity timeout, then a "
           "request's read timeout). `reconcile-lab fault heal` afterwards."),
          ("reconcile-lab fault stall",
           f"kubectl delete service {APP}",
           "sleep 5",
           f"! kubectl get service {APP}",
           f"kubectl wait --for=create service/{APP} --timeout=120s",
           "reconcile-lab fault heal"),
          Start(proxied=True)),
    Entry("12", "zero-downtime", "A release that loses no request", Difficulty.MEDIUM, 15,
          ("05",), "Release v2 while requests flow, count what fails on each engine, and make "
          "the Kubernetes side lose none.",
          ("Count the requests that fail while a release runs: the kit can send steady "
           "requests to both engines and run your release meanwhile.",
           "`reconcile-lab traffic hello --during \"COMMAND\"` counts while COMMAND runs. The "
           "app starts without a healthCheck: nothing tells the Service when a new pod can "
           f"serve. `{RELEASE}/webapp-probed.yaml` adds one (same v1).",
           f"`kubectl apply -f {RELEASE}/webapp-probed.yaml`, wait for the rollout, then "
           f"`reconcile-lab traffic hello --during \"kubectl apply -f {RELEASE}/webapp-v2.yaml\" "
           f"--during \"reconcile-lab docker apply -f {RELEASE}/webapp-v2.yaml\"`."),
          (f"kubectl apply -f {RELEASE}/webapp-probed.yaml",
           f"kubectl rollout status deployment/{APP} --timeout=180s",
           f"reconcile-lab docker apply -f {RELEASE}/webapp-probed.yaml",
           f"reconcile-lab traffic {APP} --seconds 15 "
           f"--during \"kubectl apply -f {RELEASE}/webapp-v2.yaml\" "
           f"--during \"reconcile-lab docker apply -f {RELEASE}/webapp-v2.yaml\" "
           f"--during \"kubectl rollout status deployment/{APP} --timeout=180s\""),
          Start(webapp=f"{RELEASE}/webapp.yaml", counted=True)),
    Entry("13", "git-as-truth", "A folder defines what runs", Difficulty.MEDIUM, 15, ("01",),
          "Make a folder of WebApp files the definition of what runs: sync it, change the app "
          "by hand and see the folder win, remove a file and see its app go, on both engines.",
          ("The folder is the desired state of both engines: one command makes the cluster "
           "equal to it, another makes Docker equal to it. Work on a copy of the exercise's "
           "files.",
           f"`reconcile-lab sync DIR` and `reconcile-lab docker apply -f DIR --prune`. `mkdir -p "
           f"{WORK}` and copy `{GIT}/hello.yaml` and `{GIT}/goodbye.yaml` into it; sync it to "
           "both engines, then `kubectl scale webapp/hello --replicas=1` and sync again.",
           f"`rm {WORK}/goodbye.yaml`, then `reconcile-lab sync {WORK}` and `reconcile-lab "
           f"docker apply -f {WORK} --prune`: goodbye goes from both."),
          (f"mkdir -p {WORK}",
           f"cp {GIT}/hello.yaml {GIT}/goodbye.yaml {WORK}/",
           f"reconcile-lab sync {WORK}",
           f"reconcile-lab docker apply -f {WORK} --prune",
           f"kubectl scale webapp/{APP} --replicas=1",
           f"reconcile-lab sync {WORK}",
           f"rm {WORK}/goodbye.yaml",
           f"reconcile-lab sync {WORK}",
           f"reconcile-lab docker apply -f {WORK} --prune",
           f"kubectl wait --for=jsonpath={{.status.readyReplicas}}=3 webapp/{APP} --timeout=180s"),
          Start(webapp=None, others=("goodbye",), workdir=WORK)),
    Entry("14", "machine-dies", "A machine dies", Difficulty.HARD, 15, ("03",),
          "Stop the heartbeat of the machine under one of the app's pods and watch the cluster "
          "notice, give up on it and run the pods elsewhere, without anyone typing a command.",
          ("A node proves it is alive by renewing a Lease in kube-node-lease every 10 s: a "
           "machine that dies renews it no more.",
           f"Find the node of one of the app's pods (`kubectl get pods -l {SELECTOR} -o wide`), "
           "then take its Lease from kwok, which keeps it alive: set its holderIdentity to "
           f"{DEAD_HOLDER} (and leaseDurationSeconds 86400, so that kwok does not take it back).",
           f"`kubectl patch lease NODE -n kube-node-lease --type merge -p "
           f"'{DEAD_PATCH}'`, then `kubectl get nodes -w` (NotReady after 50 s) and `kubectl "
           f"get pods -l {SELECTOR} -o wide -w` (evicted 10 s later, made again elsewhere)."),
          (f"kubectl get pods -l {SELECTOR} -o wide",
           f"NODE=$(kubectl get pods -l {SELECTOR} -o jsonpath='{{.items[0].spec.nodeName}}') && "
           f"kubectl patch lease \"$NODE\" -n kube-node-lease --type merge -p '{DEAD_PATCH}' && "
           "kubectl wait --for=condition=Ready=Unknown node/\"$NODE\" --timeout=120s",
           f"kubectl wait --for=jsonpath={{.status.readyReplicas}}=3 webapp/{APP} --timeout=120s"),
          Start(webapp=f"{MACHINES}/webapp.yaml", twin=False, simulated=True)),
    Entry("15", "autoscale", "Load arrives: who adds instances?", Difficulty.MEDIUM, 15, ("02",),
          "Send the app requests that cost CPU and watch the cluster add instances by itself, "
          "then take them away when the load ends; on Docker, count what you would have to do.",
          ("The file gives a range (autoscale), not a count: something must measure what the "
           "instances use and choose the count. Look at what the operator made of the range, "
           "and at the pods' CPU.",
           f"An idle app needs one instance. Make it busy: `{LOAD} --seconds 90`, and meanwhile "
           f"`kubectl get hpa {APP} -w` in a second terminal.",
           f"`{LOAD} --seconds 10 --during \"kubectl wait --for=jsonpath={{.status.readyReplicas}}"
           f"=4 webapp/{APP} --timeout=180s\"`; then `kubectl describe hpa {APP}` and "
           f"`reconcile-lab docker status {APP}`."),
          (f"kubectl get hpa {APP}",
           f"{LOAD} --seconds 10 --during \"kubectl wait --for=jsonpath={{.status.readyReplicas}}"
           f"=4 webapp/{APP} --timeout=180s\""),
          Start(webapp=AUTOSCALE, counted=True)),
)
BY_NUMBER = {e.number: e for e in ENTRIES}


def find(number: str) -> Entry:
    """An exercise by its number ("3" and "03" both work); KeyError when there is none."""
    return BY_NUMBER[number.zfill(2)]


# --- commands -------------------------------------------------------------------------------


def files_in(commands: tuple[str, ...]) -> list[str]:
    """The example files the commands name, in order of appearance, once each."""
    return list(dict.fromkeys(f for c in commands for f in FILE.findall(c)))


def in_namespace(command: str, namespace: str, copies: str = "") -> str:
    """The command for ``namespace``: kubectl with ``-n``, the twin's names of that namespace,
    and each example file replaced by its copy under ``copies`` (the same file with
    ``metadata.namespace`` set, which the caller writes)."""
    command = command.replace(TWIN, containers.docker_name(APP, namespace))
    command = command.replace(NAMESPACE, namespace)
    if namespace == containers.DEFAULT_NAMESPACE:
        return command
    command = re.sub(r"\bkubectl(?= )", f"kubectl -n {namespace}", command)
    command = re.sub(r"(reconcile-lab (?:docker (?:status|delete)|traffic) [a-z][-a-z0-9]*)\b",
                     rf"\1 -n {namespace}", command)
    if copies:
        command = FILE.sub(lambda m: shlex.quote(f"{copies.rstrip('/')}/{m.group(0)}"),
                           command)
    return command


def solution(entry: Entry, namespace: str = containers.DEFAULT_NAMESPACE,
             copies: str = "") -> list[str]:
    return [in_namespace(c, namespace, copies) for c in entry.solution]


def reset(entry: Entry, namespace: str = containers.DEFAULT_NAMESPACE,
          copies: str = "") -> list[str]:
    """The commands that make ``entry.start`` true from anything: they remove this app (only
    it) on both engines and make it again, so no event, ReplicaSet or killed container of an
    earlier attempt is left to count as evidence."""
    start = entry.start
    if start.proxied:  # a proxy of its own (stopped by the next reset), the operator behind it
        commands = ["reconcile-lab operator stop", f"reconcile-lab fault proxy{BACKGROUND}",
                    "reconcile-lab operator start --through-fault-proxy"]
    else:
        commands = ["reconcile-lab operator start" if start.operator
                    else "reconcile-lab operator stop"]
    # Every machine up first: a pod evicted from a machine that "died" is finished (deleted)
    # only once its node answers again.
    commands += [REVIVE]
    apps = (APP, *start.others)
    commands += [f"kubectl delete webapp {' '.join(apps)} --ignore-not-found",
                 f"kubectl wait --for=delete deployment/{APP} service/{APP} --timeout=180s",
                 f"kubectl wait --for=delete pod -l {SELECTOR} --timeout=180s",
                 *(f"reconcile-lab docker delete {app}" for app in apps)]
    commands += [f"rm -rf {start.workdir}"] if start.workdir else []
    # Pods on real or simulated nodes, as the exercise starts.
    commands += [f"kubectl annotate --overwrite namespace {NAMESPACE} " + " ".join(
        f"{k}={shlex.quote(v)}" if start.simulated else f"{k}-"
        for k, v in nodeconfig.SIMULATED_NAMESPACE_ANNOTATIONS.items())]
    commands += [f"reconcile-lab traffic {APP} --forget"] if start.counted else []
    if start.webapp:
        commands += [f"kubectl apply -f {start.webapp}"]
        commands += [_WAIT_READY] if start.operator else []
        commands += [f"reconcile-lab docker apply -f {start.webapp}"] if start.twin else []
    if start.enforced is not None:
        commands += [f"kubectl label namespace {NAMESPACE} reconcile-lab.dev/policy"
                     + ("=enforce --overwrite" if start.enforced else "-")]
    return [in_namespace(c, namespace, copies) for c in commands]
