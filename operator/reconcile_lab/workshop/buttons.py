"""The buttons of the live page (``reconcile-lab web``): per exercise, what a participant does to
each engine, the command exactly as the exercise's README writes it (a unit test checks that
it does).

Purely data: no I/O, no clock, no client library.
"""

from __future__ import annotations

from typing import NamedTuple

from reconcile_lab.workshop.catalog import (
    APP,
    DEAD_PATCH,
    LEASES,
    POLICY,
    RELEASE,
    REVIVE,
    SELECTOR,
    TWIN,
    UNTRUSTED,
    WEBAPP,
    WEBAPP_V2,
    WORK,
)


class Fault(NamedTuple):
    """A button of the web page (``reconcile-lab web``): one thing a participant does to one
    engine during an exercise, the command exactly as the exercise's README writes it."""

    label: str
    engine: str  # "kubernetes" or "docker": the side it acts on
    command: str


_ONE_POD = f"$(kubectl get pods -l {SELECTOR} -o name | head -n 1)"
_TWIN_APPLY = Fault("be the controller: apply again", "docker",
                    f"reconcile-lab docker apply -f {WEBAPP}")
FAULTS: dict[str, tuple[Fault, ...]] = {
    "01": (Fault("declare it on Kubernetes", "kubernetes", f"kubectl apply -f {WEBAPP}"),
           Fault("make it true with the twin", "docker", f"reconcile-lab docker apply -f {WEBAPP}")),
    "02": (Fault("scale to 5", "kubernetes", f"kubectl scale webapp/{APP} --replicas=5"),),
    "03": (Fault("delete a pod", "kubernetes", f"kubectl delete {_ONE_POD} --wait=false"),
           Fault("kill a container", "docker", f"docker kill {TWIN}-1"),
           Fault("crash a pod's process", "kubernetes", f"kubectl exec {_ONE_POD} -- kill 1"),
           Fault("crash a container's process", "docker", f"docker exec {TWIN}-2 kill 1"),
           _TWIN_APPLY),
    "04": (Fault("delete the Service", "kubernetes", f"kubectl delete service {APP}"),
           Fault("scale the Deployment by hand", "kubernetes",
                 f"kubectl scale deployment {APP} --replicas=1"),
           Fault("add an env entry by hand", "kubernetes",
                 f"kubectl set env deployment/{APP} EXTRA=1"),
           Fault("disconnect a container", "docker",
                 f"docker network disconnect {TWIN} {TWIN}-2")),
    "05": (Fault("roll out v2", "kubernetes", f"kubectl apply -f {WEBAPP_V2}"),
           Fault("back to v1", "kubernetes", f"kubectl apply -f {WEBAPP}")),
    "06": (Fault("delete the WebApp", "kubernetes", f"kubectl delete webapp {APP}"),
           Fault("delete the twin", "docker", f"reconcile-lab docker delete {APP}")),
    "07": (Fault("stop the operator", "kubernetes", "reconcile-lab operator stop"),
           Fault("scale to 4 meanwhile", "kubernetes", f"kubectl scale webapp/{APP} --replicas=4"),
           Fault("start the operator", "kubernetes", "reconcile-lab operator start")),
    "09": (Fault("install the policy", "kubernetes", f"kubectl apply -f {POLICY}"),
           Fault("ask for the untrusted app", "kubernetes", f"kubectl apply -f {UNTRUSTED}"),
           Fault("the same image under Docker", "docker",
                 "docker tag reconcile-lab/hello:v1 untrusted/hello:v1"),
           Fault("run it with the twin", "docker", f"reconcile-lab docker apply -f {UNTRUSTED}")),
    "10": (Fault("start the edge-triggered operator", "kubernetes",
                 "reconcile-lab operator start --edge-triggered"),
           Fault("declare the app", "kubernetes", f"kubectl apply -f {WEBAPP}"),
           Fault("delete the Service", "kubernetes", f"kubectl delete service {APP}"),
           Fault("start the kit's operator instead", "kubernetes",
                 "reconcile-lab operator start")),
    "11": (Fault("stall the operator's connections", "kubernetes", "reconcile-lab fault stall"),
           Fault("delete the Service", "kubernetes", f"kubectl delete service {APP}"),
           Fault("what the proxy holds", "kubernetes", "reconcile-lab fault status"),
           Fault("heal", "kubernetes", "reconcile-lab fault heal"),
           Fault("kill a container", "docker", f"docker kill {TWIN}-1"),
           _TWIN_APPLY),
    "12": (Fault("release v2 under traffic", "kubernetes",
                 f"reconcile-lab traffic {APP} --during \"kubectl apply -f "
                 f"{RELEASE}/webapp-v2.yaml\" --during \"reconcile-lab docker apply -f "
                 f"{RELEASE}/webapp-v2.yaml\""),
           Fault("add the health check", "kubernetes",
                 f"kubectl apply -f {RELEASE}/webapp-probed.yaml"),
           Fault("the twin with a health check", "docker",
                 f"reconcile-lab docker apply -f {RELEASE}/webapp-probed.yaml")),
    "14": (Fault("the machine under a pod dies", "kubernetes",
                 f"kubectl patch lease $(kubectl get pods -l {SELECTOR} -o jsonpath="
                 f"'{{.items[0].spec.nodeName}}') -n kube-node-lease --type merge -p "
                 f"'{DEAD_PATCH}'"),
           Fault("who holds each heartbeat", "kubernetes", LEASES),
           Fault("bring every machine back", "kubernetes", REVIVE)),
    "13": (Fault("sync the folder", "kubernetes", f"reconcile-lab sync {WORK}"),
           Fault("scale by hand", "kubernetes", f"kubectl scale webapp/{APP} --replicas=1"),
           Fault("apply the folder", "docker", f"reconcile-lab docker apply -f {WORK} --prune"),
           Fault("remove goodbye's file", "kubernetes", f"rm {WORK}/goodbye.yaml")),
}


def faults(number: str) -> tuple[Fault, ...]:
    """The web page's buttons for an exercise (none for one without faults to press)."""
    return FAULTS.get(number.zfill(2), ())
