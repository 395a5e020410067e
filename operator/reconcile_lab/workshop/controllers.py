"""The checks of the exercises about the controller itself: what makes it level-triggered.

Like ``exercises``, each is a pure function of a :class:`~observed.State`: it looks for the
evidence of the exercise (who made each child, which operator runs), so the state before the
exercise fails and the state after it passes.

Purely data: no I/O, no clock, no client library.
"""

from __future__ import annotations

import datetime

from reconcile_lab.declarative import render
from reconcile_lab.declarative import status as statuses
from reconcile_lab.workshop import catalog, observed
from reconcile_lab.workshop.observed import Obj, State, Verdict

HANDLED = "kopf.zalando.org/last-handled-configuration"  # kopf's mark: "on.create is done"


def managers(obj: Obj | None) -> set[str]:
    """Who wrote the object (its managedFields), status writers left out."""
    return {str(e.get("manager")) for e in (obj or {}).get("metadata", {}).get("managedFields")
            or [] if not e.get("subresource")}


def check_edge_vs_level(state: State) -> Verdict:
    if state.kube_error:
        return Verdict(False, f"the cluster does not answer: {state.kube_error}",
                       "reconcile-lab cluster up")
    edge = "reconcile-lab operator start --edge-triggered"
    w, service = state.webapp, state.service
    if w is None:
        return Verdict(False, f"no WebApp {state.app} yet",
                       f"{edge}, then kubectl apply -f {catalog.WEBAPP}")
    if HANDLED not in (w.get("metadata", {}).get("annotations") or {}):
        return Verdict(False, f"WebApp {state.app} was never handled by the edge-triggered "
                       "operator (no kopf annotation on it)",
                       f"start from the beginning: reconcile-lab exercise reset 10, then {edge}")
    if service is None:
        if state.operator_kind == "edge":
            return Verdict(False, f"the Service {state.app} is gone, and the edge-triggered "
                           "operator does nothing: it acted once, when the WebApp was created",
                           "now let a level-triggered one look: reconcile-lab operator stop, "
                           "then reconcile-lab operator start")
        if state.operator_kind == "level":
            return Verdict(False, f"the kit's operator runs; the Service {state.app} is not back "
                           "yet", "wait a moment and check again")
        return Verdict(False, f"no Service {state.app}, and no operator runs",
                       "reconcile-lab operator start (the kit's: it compares, whatever happened)")
    made_by = managers(service)
    if render.EDGE_TRIGGERED_MANAGER in made_by:
        return Verdict(False, f"the Service {state.app} is still the one the edge-triggered "
                       "operator made", f"kubectl delete service {state.app}, wait, and see "
                       "whether anything brings it back")
    if render.FIELD_MANAGER not in made_by:
        return Verdict(False, f"the Service {state.app} was made by {', '.join(sorted(made_by))}"
                       ", not by an operator", f"kubectl delete service {state.app}, then "
                       "reconcile-lab operator start")
    return Verdict(True, f"the Service {state.app} is back, made by the kit's operator; the "
                   "edge-triggered one made the first and never looked again",
                   "the kit's operator was not running when the Service went: it compared what "
                   "is with what should be when it started (level), not what had happened (edge)")


def _when(event: Obj) -> float:
    """An Event's time, in seconds since the epoch (0 when it has none)."""
    stamp = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
    try:
        return datetime.datetime.fromisoformat(str(stamp)).timestamp()
    except ValueError:
        return 0.0


def check_zombie(state: State) -> Verdict:
    if state.kube_error:
        return Verdict(False, f"the cluster does not answer: {state.kube_error}",
                       "reconcile-lab cluster up")
    proxy = state.fault_proxy
    if proxy is None or state.operator_kind != "proxied" or state.webapp is None:
        missing = ("no fault proxy answers" if proxy is None else
                   "the operator does not go through the fault proxy"
                   if state.operator_kind != "proxied" else f"no WebApp {state.app}")
        return Verdict(False, missing, "reconcile-lab exercise reset 11: it starts a proxy, "
                       "the operator behind it, and the app")
    began = proxy.get("last_stall")
    if not proxy.get("stalled_total") or began is None:
        return Verdict(False, "nothing has been silenced yet (fault proxy: "
                       f"{proxy.get('mode')}, {proxy.get('open')} connections open)",
                       f"reconcile-lab fault stall, then kubectl delete service {state.app}")
    repaired = [e for e in observed.events_for(state, "WebApp", state.app, state.webapp)
                if e.get("reason") == statuses.EventReason.REPAIRED
                and "Service" in str(e.get("message")) and _when(e) >= int(began)]
    if repaired:
        after = _when(repaired[-1]) - began
        return Verdict(True, f"the Service was made again {after:.0f} s after the stall began, "
                       "through connections opened since", "kubectl delete service while the "
                       "connections were silent: no event, no error, the operator's /healthz "
                       "answered all along, until its watch's inactivity timeout opened a new "
                       "one. reconcile-lab fault heal")
    if state.service is None:
        return Verdict(False, f"the Service {state.app} is gone and the operator has not "
                       "noticed: its connections are open and silent, it looks alive",
                       "wait, counting: how long until a timeout of its own makes it look "
                       "again? (reconcile-lab fault status shows what the proxy holds)")
    return Verdict(False, "the operator's connections are silent; nothing is broken yet",
                   f"kubectl delete service {state.app}, and watch: kubectl get service "
                   f"{state.app} -w")


def check_machine_dies(state: State) -> Verdict:
    """Exercise 14: the node controller noticed a machine that died, and the app's pods run on
    the machines left, without a command."""
    if (failed := observed.basics(state)) is not None:
        return failed
    w = state.webapp
    assert w is not None
    dead = {str(lease.get("metadata", {}).get("name")) for lease in state.leases
            if (lease.get("spec") or {}).get("holderIdentity") == catalog.DEAD_HOLDER}
    if not dead:
        return Verdict(False, "every machine still renews its heartbeat (no node Lease was taken)",
                       f"kubectl get pods -l {observed.INSTANCE}={state.app} -o wide, then "
                       f"kubectl patch lease NODE -n kube-node-lease --type merge -p "
                       f"'{catalog.DEAD_PATCH}'")
    evicted = [e for e in state.events if e.get("reason") == "TaintManagerEviction"
               and e.get("involvedObject", {}).get("kind") == "Pod"
               and e.get("involvedObject", {}).get("name", "").startswith(f"{state.app}-")]
    live = [p for p in state.pods if not p.get("metadata", {}).get("deletionTimestamp")]
    on_dead = [p for p in live if p.get("spec", {}).get("nodeName") in dead]
    where = ", ".join(sorted(dead))
    if not evicted:
        if not on_dead and not any(p.get("spec", {}).get("nodeName") in dead
                                   for p in state.pods):
            return Verdict(False, f"the machine under {where} died, but none of {state.app}'s "
                           "pods ran there", "take the Lease of a node that runs one of them")
        return Verdict(False, f"{where} stopped answering; its pods are still taken for serving",
                       "wait: the node controller gives a node 50 s of grace, then the pods "
                       f"rescheduleAfterSeconds ({(w.get('spec') or {}).get('rescheduleAfterSeconds', 30)} s)"
                       " more; kubectl get nodes -w")
    if on_dead or observed.ready(w) != observed.replicas(w):
        return Verdict(False, f"the pods of {where} were evicted; "
                       f"{observed.ready(w)}/{observed.replicas(w)} ready elsewhere so far",
                       "wait a moment and check again")
    nodes = sorted({str(p.get("spec", {}).get("nodeName")) for p in live})
    return Verdict(True, f"{observed.ready(w)}/{observed.replicas(w)} ready on "
                   f"{', '.join(nodes)}: the pods of {where} were evicted and made again there, "
                   "and nobody typed a command",
                   f"bring the machine back: kubectl delete lease {sorted(dead)[0]} -n "
                   "kube-node-lease (kwok makes a new one); on one Docker host nothing would "
                   "have moved")


def check_autoscale(state: State) -> Verdict:
    """Exercise 15: the autoscaler added instances because of the load, by itself; the twin
    still runs what its file says."""
    if (failed := observed.basics(state)) is not None:
        return failed
    w = state.webapp
    assert w is not None
    scale = (w.get("spec") or {}).get("autoscale")
    if not scale:
        return Verdict(False, f"WebApp {state.app} has no autoscale: it runs a fixed count",
                       f"kubectl apply -f {catalog.AUTOSCALE}")
    hpa = state.autoscaler
    if hpa is None or render.controlling_webapp(hpa) is None:
        return Verdict(False, f"no HorizontalPodAutoscaler {state.app} made by the operator",
                       "is the operator running? reconcile-lab operator start")
    # The autoscaler's own account of a scale-out: an Event on this very object.
    out = [e for e in observed.events_for(state, render.AUTOSCALER, state.app, hpa)
           if e.get("reason") == "SuccessfulRescale" and "above target" in str(e.get("message"))]
    low, high = scale.get("minReplicas", 1), scale.get("maxReplicas")
    if not out:
        return Verdict(False, f"{state.app} runs {observed.replicas(w)} (its range is "
                       f"{low}–{high}); nothing has asked for more yet",
                       f"make it busy: {catalog.LOAD} --seconds 90, and kubectl get hpa "
                       f"{state.app} -w")
    running = [c for c in state.containers if (c.get("State") or {}).get("Running")]
    twin = (f"the twin still runs {len(running)} container(s) from the same file: on Docker a "
            "person would have to notice the load, edit replicas and apply again"
            if state.containers else "now run the twin on the same file: "
            f"reconcile-lab docker apply -f {catalog.AUTOSCALE}")
    return Verdict(True, f"the autoscaler scaled {state.app} out by itself: "
                   f"{str(out[-1].get('message'))[:120]}; "
                   f"{observed.ready(w)}/{observed.replicas(w)} ready now",
                   f"{twin}. Stop the load and watch it go back to {low} after "
                   f"scaleInAfterSeconds ({scale.get('scaleInAfterSeconds', 60)} s)")
