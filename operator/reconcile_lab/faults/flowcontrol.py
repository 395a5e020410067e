"""API Priority and Fairness objects that throttle one ServiceAccount, and it alone.

A PriorityLevelConfiguration with ``shares`` nominal concurrency shares that lends and borrows
nothing and rejects what it cannot seat (the apiserver answers 429 with a Retry-After), and a
FlowSchema that sends every request of the account there. With ``shares=0`` the level has no
seat at all: every new request of the account is refused, while the watches it opened before
keep streaming. Pure: dictionaries out; whoever applies them decides for how long.
"""

from __future__ import annotations

from typing import Any

API_VERSION = "flowcontrol.apiserver.k8s.io/v1"
# Before every default FlowSchema but "exempt" (precedence 1), whose system:masters members
# cannot be throttled at all: the account must not be an admin.
PRECEDENCE = 100


def throttle(name: str, *, account: str, namespace: str, shares: int) -> list[dict[str, Any]]:
    """The level and the schema, both called ``name``, for ServiceAccount namespace/account."""
    limited: dict[str, Any] = {"nominalConcurrencyShares": shares, "lendablePercent": 0,
                               "limitResponse": {"type": "Reject"}}
    if shares == 0:
        limited["borrowingLimitPercent"] = 0  # a jail: no seat of its own, none borrowed
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
