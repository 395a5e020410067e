"""The comparison matrix: which scenarios, against which engines, and what "recovered" means.

A scenario is a list of abstract steps (scale, kill one instance, roll out…); each engine's
driver turns a step into the commands a person would type on that engine. Some steps are
faults (the world breaking: nobody typed them on purpose), the others are changes a person
makes. The target state after the last step is what every engine is measured against.

Purely data: no I/O, no clock, no client library. Changing a scenario here changes the
harness, the table and the plots at once.
"""

from __future__ import annotations

from typing import NamedTuple

APP_IMAGE = "reconcile-lab/hello"
V1, V2 = f"{APP_IMAGE}:v1", f"{APP_IMAGE}:v2"
# The demo image under a name outside the admission policy's allowed prefix (nothing can be
# pulled here: ``docker tag`` gives it the name).
UNTRUSTED = "untrusted/hello:v1"
REPLICAS = 3

# Sampling period of every timeline: fine enough to see a pod come back, cheap on 2 cores.
SAMPLE_PERIOD = 0.1
# How long a matching state must hold before it counts as recovered (a flicker is not).
HOLD = 1.0
# The Docker twin's --watch interval: its default, so the numbers are what a person gets.
WATCH_INTERVAL = 2.0
# Every instance is probed this often, on both sides: the WebApp's healthCheck.periodSeconds
# (the kubelet's readiness probe on the real node) and Docker's --health-interval. A restarted
# or replaced instance serves again only after its first passing probe, so this period sits in
# every time to recover.
HEALTH_PERIOD = 1
# Requests per second sent while a scenario with traffic runs: steady, bounded, and few enough
# that the CGI each one forks does not load the 2 cores the engines share.
RATE = 10.0
RELEASE_RATE = 20.0


# --- engines --------------------------------------------------------------------------------


class Engine(NamedTuple):
    id: str
    title: str  # column header in the table, panel title in the plots
    how: str  # one line: what this engine is
    controller: bool = True  # something keeps watching after the command returns


OPERATOR = Engine(
    "operator", "Kubernetes operator",
    "the kopf operator on the embedded cluster; its pods are real containers on the cluster's "
    "real node (kubelet, containerd, runc on this host), reached through a NodePort Service")
TWIN = Engine(
    "twin", "Docker twin, one-shot",
    "`reconcile-lab docker apply -f FILE`: makes the file true once and returns",
    controller=False)
WATCH = Engine(
    "twin-watch", "Docker twin --watch",
    f"`reconcile-lab docker apply -f FILE --watch` (a polling loop, every {WATCH_INTERVAL:g} s)")
RESTART = Engine(
    "restart-always", "docker run --restart always",
    "plain `docker run --restart always` containers, one per replica: dockerd's own answer")
SWARM = Engine(
    "swarm", "Docker Swarm service",
    "`docker service create --replicas N` on a single-node swarm: Docker's orchestrator")

ENGINES: tuple[Engine, ...] = (OPERATOR, TWIN, WATCH, RESTART, SWARM)
BY_ID = {e.id: e for e in ENGINES}


# --- steps ----------------------------------------------------------------------------------


class Step(NamedTuple):
    """One thing that happens in a scenario. ``fault``: the world breaks, nobody asked for it."""

    action: str
    label: str  # as shown on the plots' markers
    fault: bool = False
    replicas: int | None = None  # for create, scale, change
    image: str | None = None  # for create, rollout
    seconds: float = 0.0  # for wait, wait-converged (a bound)


def create(replicas: int = REPLICAS, image: str = V1) -> Step:
    return Step("create", "create", replicas=replicas, image=image)


def scale(replicas: int) -> Step:
    return Step("scale", f"scale to {replicas}", replicas=replicas)


def rollout(image: str) -> Step:
    return Step("rollout", f"roll out {image.rsplit(':', 1)[-1]}", image=image)


KILL_ONE = Step("kill-one", "kill one", fault=True)
CRASH_ONE = Step("crash-one", "crash one", fault=True)
DELETE_CHILD = Step("delete-child", "delete child", fault=True)
DRIFT = Step("drift", "drift by hand", fault=True)
KILL_CONTROLLER = Step("kill-controller", "controller killed", fault=True)
RESTART_CONTROLLER = Step("restart-controller", "controller restarted")
CUT_CONTROLLER = Step("cut-controller", "controller cut off", fault=True)
HEAL_CONTROLLER = Step("heal-controller", "path healed")
THROTTLE_CONTROLLER = Step("throttle-controller", "controller throttled", fault=True)
UNTHROTTLE_CONTROLLER = Step("unthrottle-controller", "throttle lifted")
CONTROLLER_FAULTS = frozenset(s.action for s in (KILL_CONTROLLER, CUT_CONTROLLER,
                                                 THROTTLE_CONTROLLER))
# Other apps that arrive with the change in "throttled" (no replicas: objects, not pods).
CROWD = 30
# How long the controller's path stays broken while the spec changes.
CUT_SECONDS = 10.0
DELETE_APP = Step("delete-app", "delete app")
# The app is one file of a folder, and a person changes what runs by hand behind its back: on
# Kubernetes `kubectl scale webapp` (the WebApp no longer says what the folder says), on Docker
# `docker rm -f` of two of the three containers (what runs is all Docker knows).
HAND_EDIT = Step("hand-edit", "hand edit: 1 left", fault=True)
REMOVE_FILE = Step("remove-file", "file removed")
# Seconds between two passes of the folder's loops (`reconcile-lab sync --watch`, the twin's
# `--watch`): the same for both, so neither is faster by its setting.
SYNC_INTERVAL = WATCH_INTERVAL
# The machine under the app goes: on Kubernetes the node that runs most of its pods stops
# answering (a simulated node whose heartbeat stops), on Docker the host's engine stops and
# every container on it with it. A person brings the Docker host back (the repair).
NODE_DIES = Step("node-dies", "the machine dies", fault=True)
# How long the machine-dies scenario's pods stay on a node that stopped answering.
RESCHEDULE_AFTER = 10
# An admission policy that refuses images outside ``reconcile-lab/`` (deploy/policy.yaml),
# switched on for the app's namespace; on Docker there is nothing to switch on.
POLICY_ON = Step("policy-on", "policy on")
# Autoscaling: the app declares a range of instances and a CPU target; requests that each cost
# CPU arrive (the demo image's /cgi-bin/work: about 40 ms of one core each) and later stop.
# Under that load the right number is the most the range allows, without it the fewest.
AUTOSCALE_MIN, AUTOSCALE_MAX = 1, 4
AUTOSCALE_TARGET = 50  # percent of each instance's CPU request
SCALE_IN_AFTER = 20  # the WebApp's autoscale.scaleInAfterSeconds (Kubernetes' default: 300)
LOAD_RATE = 4.0  # requests per second: ~0.2 of a core in all, whatever the instance count
LOAD_PATH = "/cgi-bin/work"
LOAD_ON = Step("load-on", f"load: {LOAD_RATE:g} req/s of CPU work", fault=True,
               replicas=AUTOSCALE_MAX)
LOAD_OFF = Step("load-off", "load ends", replicas=AUTOSCALE_MIN)


def change(replicas: int) -> Step:
    return Step("change", f"spec: replicas {replicas}", replicas=replicas)


def crowd(count: int) -> Step:
    return Step("crowd", f"{count} more apps", replicas=count)


def wait(seconds: float) -> Step:
    return Step("wait", f"wait {seconds:g} s", seconds=seconds)


def wait_converged(seconds: float) -> Step:
    return Step("wait-converged", "converged", seconds=seconds)


# --- targets --------------------------------------------------------------------------------


class Target(NamedTuple):
    """The state an engine must reach: ``replicas`` ready on ``image``; ``gone``: nothing left."""

    replicas: int
    image: str
    gone: bool = False


def target_after(initial: Target, steps: tuple[Step, ...]) -> Target:
    """The desired state once ``steps`` have all happened (faults change no desired state)."""
    current = initial
    for step in steps:
        if step.action in ("create", "scale", "change", "load-on", "load-off") \
                and step.replicas is not None:
            current = current._replace(replicas=step.replicas, gone=False)
        if step.action in ("create", "rollout") and step.image is not None:
            current = current._replace(image=step.image)
        if step.action in ("delete-app", "remove-file"):
            current = current._replace(replicas=0, gone=True)
    return current


# --- scenarios ------------------------------------------------------------------------------


class Shape(NamedTuple):
    """How a scenario's app is declared, the same on every engine."""

    probed: bool = True  # a healthCheck: a readiness probe; Docker's HEALTHCHECK
    startup: int = 0  # seconds the app takes before it listens (the demo image's STARTUP_SECONDS)
    # One file of a folder that holds the rest of its project too: `reconcile-lab sync DIR
    # --watch` on Kubernetes, `docker apply -f DIR` on Docker.
    folder: bool = False
    # On Kubernetes the pods go to kwok's simulated nodes (the namespace opts in): scheduling,
    # node health and eviction are real there, containers are not.
    simulated: bool = False
    reschedule_after: int | None = None  # the WebApp's rescheduleAfterSeconds
    # autoscale: AUTOSCALE_MIN to AUTOSCALE_MAX instances at AUTOSCALE_TARGET % CPU (Docker
    # engines are given the same file, and have nothing that reads it)
    autoscaled: bool = False


PLAIN = Shape()  # probed, listening at once, one file

# Two releases of an app that takes STARTUP s to listen, one replica at a time: under load on
# 2 cores they take longer than the other scenarios' changes.
RELEASE_WINDOW = 45

# The release scenarios' app takes this long to listen, as an app that loads before it serves:
# what a readiness probe is for (the demo image's own server listens at once).
STARTUP = 2


class Scenario(NamedTuple):
    id: str
    title: str  # the table's row header
    fault_docker: str  # what is done on the Docker side, said in commands
    fault_kubernetes: str  # and on the Kubernetes side
    steps: tuple[Step, ...]
    window: float  # seconds to watch for recovery after the first step
    setup: bool = True  # start from the app converged at REPLICAS × V1
    quick: bool = False  # part of `compare --quick`
    traffic: bool = False  # send real requests to 127.0.0.1 while it runs
    rate: float = RATE  # requests per second, when ``traffic``
    shape: Shape = PLAIN  # how the app is declared, the same on every engine
    # A gate: the right outcome is that nothing runs (an image the policy refuses). Measured
    # is whether any instance ran, and when the first did; not a time to converge.
    gate: bool = False
    measure_from: int = 0  # which step's time starts the clock for "time to recover"
    not_applicable: tuple[tuple[str, str], ...] = ()  # (engine id, why) pairs
    repair_window: float = 15.0  # after a repair was typed, how long to wait for it to work
    # The fault is silent: it happens at once (the machine is gone), an engine learns of it only
    # later (a node is taken for gone after a grace period). Its clock starts at the fault, not
    # when a sample first shows it, and no sample showing it means it was never noticed.
    silent: bool = False
    replicas: int = REPLICAS  # how many instances the app starts from

    @property
    def initial(self) -> Target:
        return Target(0, V1, gone=True) if not self.setup else Target(self.replicas, V1)

    @property
    def load(self) -> bool:
        """Its traffic is CPU work that a step starts (and another may stop)."""
        return any(s.action == LOAD_ON.action for s in self.steps)

    @property
    def target(self) -> Target:
        return target_after(self.initial, self.steps)

    def why_not(self, engine: str) -> str | None:
        """Why this scenario does not apply to ``engine``; None when it does."""
        return dict(self.not_applicable).get(engine)

    @property
    def faulty(self) -> bool:
        return any(s.fault for s in self.steps)

    @property
    def controller_fault(self) -> bool:
        """The fault hits the controller, not the app: nothing for a person to repair by hand."""
        return any(s.action in CONTROLLER_FAULTS for s in self.steps)


_NO_CONTROLLER = ("there is no controller to cut off: the person who types `apply` is the "
                  "controller, and nothing happens until they do")
_NO_PATH = ("dockerd restarts the containers itself: no API lies between the engine and its "
            "own controller, so there is no path to cut")
_NO_THROTTLE = ("dockerd has no priority and fairness: it never answers 429 or asks a client "
                "to wait; a busy engine answers late, and one that does not answer at all is "
                "the cut-off row")
_NO_FOLDER = ("no file is its input: what was typed (`docker run`, `docker service create`) "
              "is the only record of what should run, so there is no folder to drift from")
_NO_AUTOSCALER = ("it never scaled out by itself (see *autoscale-out*): whoever scaled it out by "
                  "hand has to notice the load is gone and scale it back by hand, the same "
                  "commands with the old count")
_NO_ENGINE_KILL = ("the restart policy is enforced by dockerd itself; stopping the shared "
                   "engine would stop every container on the host, so it is not measured")

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "create", "Create the app (3 replicas)",
        "`reconcile-lab docker apply` / `docker run` ×3 / `docker service create`",
        "`kubectl apply -f webapp.yaml`",
        (create(),), window=20, setup=False, quick=True),
    Scenario(
        "scale", "Scale 3 → 5",
        "edit the file + `apply` / `docker run` ×2 / `docker service scale`",
        "`kubectl apply` with replicas: 5",
        (scale(5),), window=20),
    Scenario(
        "kill-one", "Kill one instance",
        "`docker kill NAME-1` (a task container for Swarm): SIGKILL to its main process",
        "SIGKILL to the main process of one pod's container, from the host (what `docker kill` "
        "sends)",
        (KILL_ONE,), window=14, quick=True),
    Scenario(
        "crash-one", "An instance crashes (its process dies)",
        "`kill -9` of a container's main process, from the host",
        "`kill -9` of a pod's container's main process, from the host",
        (CRASH_ONE,), window=14),
    Scenario(
        "delete-child", "Delete a child object",
        "`docker rm -f` every container (+ `docker network rm` for the twin)",
        "`kubectl delete deployment,service NAME`",
        (DELETE_CHILD,), window=14, quick=True),
    Scenario(
        "drift", "Manual drift",
        "`docker stop -t 1 NAME-1`",
        "`kubectl scale deployment NAME --replicas=1`",
        (DRIFT,), window=14),
    Scenario(
        "rollout", "Release v1 → v2, then roll back to v1, under steady requests",
        "edit + `apply` / `docker rm -f` + `docker run` per container / `docker service update`",
        "`kubectl apply` with the new image (RollingUpdate maxSurge 1, maxUnavailable 0)",
        (rollout(V2), wait_converged(25), rollout(V1)), window=RELEASE_WINDOW, traffic=True,
        rate=RELEASE_RATE, shape=Shape(startup=STARTUP)),
    Scenario(
        "rollout-unprobed", "The same release with no health check (no readiness probe)",
        "as *rollout*, the file without `healthCheck`: `--no-healthcheck`, running counts as "
        "ready",
        "as *rollout*, the WebApp without `healthCheck`: no readiness probe, a pod is ready "
        "once its container started",
        (rollout(V2), wait_converged(25), rollout(V1)), window=RELEASE_WINDOW, traffic=True,
        rate=RELEASE_RATE, shape=Shape(probed=False, startup=STARTUP)),
    Scenario(
        "policy", f"Policy: an image from outside the allowed prefix ({UNTRUSTED})",
        f"`docker tag` the demo image as {UNTRUSTED}, then the same commands as *create*: "
        "the engine has no admission step, so there is nothing to switch on",
        "the ValidatingAdmissionPolicy of `deploy/policy.yaml` on for the namespace (`kubectl "
        "label namespace … reconcile-lab.dev/policy=enforce`), then `kubectl apply`",
        (POLICY_ON, create(image=UNTRUSTED)), window=12, setup=False, gate=True,
        measure_from=1),
    Scenario(
        "git-drift", "The folder says 3; a person leaves 1 by hand",
        "`docker rm -f NAME-2 NAME-3` (the twin applied the folder with `docker apply -f DIR "
        "--prune`; --watch polls the folder)",
        "`kubectl scale webapp NAME --replicas=1` (the folder is kept applied by `reconcile-lab "
        f"sync DIR --watch`, every {SYNC_INTERVAL:g} s)",
        (HAND_EDIT,), window=14, shape=Shape(folder=True),
        not_applicable=(("restart-always", _NO_FOLDER), ("swarm", _NO_FOLDER))),
    Scenario(
        "git-remove", "A file removed from the folder: its app must go",
        "`rm DIR/NAME.yaml`, then `reconcile-lab docker apply -f DIR --prune`; --watch polls "
        "the folder",
        "`rm DIR/NAME.yaml`; `reconcile-lab sync DIR --watch` prunes what no file declares",
        (REMOVE_FILE,), window=14, shape=Shape(folder=True),
        not_applicable=(("restart-always", _NO_FOLDER), ("swarm", _NO_FOLDER))),
    Scenario(
        "machine-dies", "A machine dies under the app",
        "the host's Docker engine stops (`dockerd` stopped: every container on it stops with "
        "it); nothing is left to act until a person starts the engine again",
        "the node that runs most of the app's pods stops answering (simulated: its heartbeat, "
        "the node Lease, is no longer renewed); after the node controller's grace period it is "
        f"NotReady, {RESCHEDULE_AFTER} s later (rescheduleAfterSeconds) its pods are evicted and "
        "the ReplicaSet makes them on the nodes left. The pods run on kwok's simulated nodes",
        (NODE_DIES,), window=100, repair_window=40, silent=True,
        shape=Shape(simulated=True, reschedule_after=RESCHEDULE_AFTER)),
    Scenario(
        "autoscale-out", f"Load arrives: {LOAD_RATE:g} requests/s of CPU work "
        f"(autoscale {AUTOSCALE_MIN}–{AUTOSCALE_MAX} instances)",
        f"the same requests to `{LOAD_PATH}` on the containers' ports; Docker measures CPU "
        "(docker stats) and nothing acts on it: a person who notices scales by hand",
        f"the same requests through the NodePort; the WebApp's `autoscale` (CPU target "
        f"{AUTOSCALE_TARGET} % of the request) is a HorizontalPodAutoscaler; metrics-server reads "
        "the pods' CPU from the real node's kubelet",
        (LOAD_ON,), window=90, repair_window=30, traffic=True, rate=LOAD_RATE,
        replicas=AUTOSCALE_MIN, shape=Shape(autoscaled=True),
        not_applicable=(("swarm", "a swarm publishes on every interface, so no requests are "
                                  "sent to it from here (loopback only); it has no autoscaler "
                                  "either: `docker service scale` by hand, as the twin"),)),
    Scenario(
        "autoscale-in", f"The load ends: back to {AUTOSCALE_MIN} instance",
        "n/a",
        f"the requests stop after the app scaled out; {SCALE_IN_AFTER} s of low CPU "
        "(autoscale.scaleInAfterSeconds) before instances are removed",
        (LOAD_ON, wait_converged(80), LOAD_OFF), window=200, measure_from=2, traffic=True,
        rate=LOAD_RATE, replicas=AUTOSCALE_MIN, shape=Shape(autoscaled=True),
        not_applicable=tuple((e, _NO_AUTOSCALER) for e in ("twin", "twin-watch",
                                                           "restart-always", "swarm"))),
    Scenario(
        "kill-controller", "Controller down while the spec changes (3 → 5)",
        "SIGKILL the --watch loop, edit the file, start the loop again",
        "SIGKILL the operator, `kubectl apply` replicas 5, start the operator again",
        (KILL_CONTROLLER, change(5), wait(5), RESTART_CONTROLLER), window=22, measure_from=3,
        not_applicable=(
            ("twin", "there is no controller to kill: the person who types `apply` is the "
                     "controller, and nothing happens until they do"),
            ("restart-always", _NO_ENGINE_KILL),
            ("swarm", "the swarm manager runs inside dockerd; stopping the shared engine would "
                      "stop every container on the host, so it is not measured"),
        )),
    Scenario(
        "cut-off", "Controller cut off from its API while the spec changes (3 → 5)",
        "the --watch loop reaches dockerd through the fault proxy: `reconcile-lab fault cut "
        f"--docker`, edit the file, `reconcile-lab fault heal --docker` {CUT_SECONDS:g} s later",
        "the operator reaches the apiserver through the fault proxy: `reconcile-lab fault cut`, "
        f"`kubectl apply` replicas 5, `reconcile-lab fault heal` {CUT_SECONDS:g} s later",
        (CUT_CONTROLLER, change(5), wait(CUT_SECONDS), HEAL_CONTROLLER), window=30,
        measure_from=3, traffic=True,
        not_applicable=(("twin", _NO_CONTROLLER), ("restart-always", _NO_PATH),
                        ("swarm", _NO_PATH.replace("containers", "tasks")))),
    Scenario(
        "throttled", f"Controller throttled while {CROWD} more apps arrive with the change (3 → 5)",
        "none: dockerd cannot throttle a client",
        "API Priority and Fairness: a FlowSchema sends the operator's ServiceAccount to a "
        "priority level with no seat of its own (one request at a time passes, the others are "
        f"answered 429 with a Retry-After); `kubectl apply` of {CROWD} more WebApps and of "
        "replicas 5 at once",
        (THROTTLE_CONTROLLER, crowd(CROWD), change(5), wait_converged(25),
         UNTHROTTLE_CONTROLLER), window=30, measure_from=2,
        not_applicable=(("twin", _NO_CONTROLLER), ("twin-watch", _NO_THROTTLE),
                        ("restart-always", _NO_THROTTLE), ("swarm", _NO_THROTTLE))),
    Scenario(
        "delete-app", "Delete the app",
        "`reconcile-lab docker delete` / `docker rm -f` ×3 / `docker service rm`",
        "`kubectl delete webapp NAME` (ownerReferences → garbage collection)",
        (DELETE_APP,), window=14),
)

BY_SCENARIO = {s.id: s for s in SCENARIOS}
QUICK = tuple(s.id for s in SCENARIOS if s.quick)


def select(ids: tuple[str, ...] | None = None, *, quick: bool = False) -> tuple[Scenario, ...]:
    """The scenarios to run, in the canonical order; unknown ids raise KeyError."""
    if ids:
        wanted = set(ids)
        unknown = wanted - set(BY_SCENARIO)
        if unknown:
            raise KeyError(", ".join(sorted(unknown)))
        return tuple(s for s in SCENARIOS if s.id in wanted)
    return tuple(s for s in SCENARIOS if s.quick or not quick)


def app_name(run: str, scenario: str, engine: str) -> str:
    """A DNS-1035 name unique to one run, scenario and engine (≤ 63 characters)."""
    short = {"operator": "k8s", "twin": "twin", "twin-watch": "watch", "restart-always": "rp",
             "swarm": "swarm"}.get(engine, engine)
    return f"c{run}-{scenario}-{short}"[:63].rstrip("-")
