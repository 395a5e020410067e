"""API Priority and Fairness objects that throttle one ServiceAccount, and it alone.

A PriorityLevelConfiguration with ``shares`` nominal concurrency shares that lends and borrows
nothing and rejects what it cannot seat (the apiserver answers 429 with a Retry-After), and a FlowSchema
that sends every request of the account there. A level never starves a lone request: one is
dispatched whenever none executes, so only a client that sends several at once is refused.
Needs an apiserver with API Priority and Fairness on (the kit's clusters have it:
``kwokconfig.APISERVER_ARGS``). Pure: dictionaries out; whoever applies them decides for how long.
"""

from __future__ import annotations

from typing import Any

API_VERSION = "flowcontrol.apiserver.k8s.io/v1"
# Before every default FlowSchema but "exempt" (precedence 1), whose system:masters members
# cannot be throttled at all: the account must not be an admin.
PRECEDENCE = 100


def throttle(name: str, *, account: str, namespace: str, shares: int) -> list[dict[str, Any]]:
    """The level and the schema, both called ``name``, for ServiceAccount namespace/account."""
    limited = {"nominalConcurrencyShares": shares, "lendablePercent": 0,
               "borrowingLimitPercent": 0, "limitResponse": {"type": "Reject"}}
    return [
        {"apiVersion": API_VERSION, "kind": "PriorityLevelConfiguration",
         "metadata": {"name": name}, "spec": {"type": "Limited", "limited": limited}},
        {"apiVersion": API_VERSION, "kind": "FlowSchema", "metadata": {"name": name},
         "spec": {"priorityLevelConfiguration": {"name": name},
                  "matchingPrecedence": PRECEDENCE,
                  "distinguisherMethod": {"type": "ByUser"},
                  "rules": [{
                      "subjects": [{"kind": "ServiceAccount", "serviceAccount": {
                          "name": account, "namespace": namespace}}],
                      "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"],
                                         "resources": ["*"], "namespaces": ["*"],
                                         "clusterScope": True}],
                      "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}},
    ]


def rejected(metrics: str, level: str) -> float:
    """From the apiserver's /metrics text: requests refused so far in priority level ``level``."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("apiserver_flowcontrol_rejected_requests_total{")
               and f'priority_level="{level}"' in line)
