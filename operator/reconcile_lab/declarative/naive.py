"""An edge-triggered operator for the same WebApp, written the way kopf's tutorial teaches.

An ``@kopf.on.create`` handler with default settings: build the children, ``kopf.adopt`` them,
create them with the official client, return a result (kopf stores it in the status). kopf
keeps its own progress and the last handled spec in annotations, as it does by default.

It acts on an *event* (a WebApp was created) and never looks again: nothing watches the
children, so a child deleted afterwards stays deleted, and a restart changes nothing (the
annotation says the creation was handled). The kit's operator (``handlers``) is
level-triggered: whatever the event, it compares what is with what should be. Exercise 10 runs
one after the other:

    reconcile-lab operator start --edge-triggered

``bench/convergence.py`` races it against the kit's operator; the children are the very
objects the kit's operator renders, so both create identical Deployments and Services.
"""

from __future__ import annotations

from typing import Any

import kopf
import kubernetes

from reconcile_lab import parsing
from reconcile_lab import spec as specs
from reconcile_lab.declarative import render

FIELD_MANAGER = render.EDGE_TRIGGERED_MANAGER  # in the children's managedFields: who made them


# kopf types handlers as a protocol listing every kwarg it may pass; this one takes what it uses.
@kopf.on.create(specs.GROUP, specs.VERSION, specs.PLURAL)  # type: ignore[arg-type]
def create_fn(spec: kopf.Spec, name: str, namespace: str, uid: str,
              logger: kopf.Logger, **_: Any) -> dict[str, Any]:
    owner, parsed = render.Owner(name, namespace, uid), parsing.parse_spec(dict(spec), name=name)
    deployment, service = render.deployment(owner, parsed), render.service(owner, parsed)
    for child in (deployment, service):
        del child["metadata"]["ownerReferences"]
    kopf.adopt([deployment, service])

    # The client takes plain dicts as bodies, whatever its annotations say.
    kubernetes.client.AppsV1Api().create_namespaced_deployment(
        namespace, deployment, field_manager=FIELD_MANAGER)  # type: ignore[arg-type]
    kubernetes.client.CoreV1Api().create_namespaced_service(
        namespace, service, field_manager=FIELD_MANAGER)  # type: ignore[arg-type]
    logger.info(f"Deployment and Service {name} created")
    return {"children": [f"deployment/{name}", f"service/{name}"]}
