"""What the operator may do in the cluster, and the manifests that run it there.

Least privilege, written next to the code that needs it: the operator reads WebApps and writes
their status; reads and server-side applies (patch, and create for a first apply) its
Deployments, Services and HorizontalPodAutoscalers; posts Events. It deletes only an autoscaler
the spec stopped asking for (everything else of a deleted WebApp goes by garbage collection),
and never reads Secrets. ``make manifests`` writes these to ``deploy/``; a test fails when they are stale.

Purely data: no I/O.
"""

from __future__ import annotations

from typing import Any

from reconcile_lab import ports, spec

NAMESPACE = "reconcile-lab-system"
NAME = "reconcile-lab-operator"
IMAGE = "reconcile-lab/operator:dev"
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "reconcile-lab",
          "app.kubernetes.io/component": "operator"}
# In the pod the defaults: nothing else listens there.
METRICS_PORT, HEALTH_PORT = ports.OPERATOR_METRICS.default, ports.OPERATOR_HEALTH.default

# What the operator does in a namespace it serves.
NAMESPACED_RULES: list[dict[str, Any]] = [
    {"apiGroups": [spec.GROUP], "resources": [spec.PLURAL], "verbs": ["get", "list", "watch"]},
    # status is the only part of a WebApp the operator writes
    {"apiGroups": [spec.GROUP], "resources": [f"{spec.PLURAL}/status"],
     "verbs": ["get", "patch", "update"]},
    # blockOwnerDeletion on the children needs this when OwnerReferencesPermissionEnforcement is on
    {"apiGroups": [spec.GROUP], "resources": [f"{spec.PLURAL}/finalizers"], "verbs": ["update"]},
    {"apiGroups": ["apps"], "resources": ["deployments"],
     "verbs": ["get", "list", "watch", "create", "patch"]},
    {"apiGroups": [""], "resources": ["services"],
     "verbs": ["get", "list", "watch", "create", "patch"]},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"],
     "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
]
RULES: list[dict[str, Any]] = [
    *NAMESPACED_RULES,
    # kopf watches CRDs to start and stop serving resources as they come and go
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
     "verbs": ["get", "list", "watch"]},
    # kopf peering: replicas announce themselves so that only one acts at a time
    {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"],
     "verbs": ["get", "list", "watch", "patch"]},
]
PEERING = "reconcile-lab"


def peering() -> list[dict[str, Any]]:
    """kopf's peering CRD and the one peering object the operator's replicas share."""
    return [
        {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
         "metadata": {"name": "clusterkopfpeerings.kopf.dev"},
         "spec": {"scope": "Cluster", "group": "kopf.dev",
                  "names": {"kind": "ClusterKopfPeering", "plural": "clusterkopfpeerings",
                            "singular": "clusterkopfpeering"},
                  "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                      "openAPIV3Schema": {"type": "object", "properties": {
                          "status": {"type": "object",
                                     "x-kubernetes-preserve-unknown-fields": True}}}}}]}},
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
         "metadata": {"name": PEERING}},
    ]


def rbac() -> list[dict[str, Any]]:
    meta = {"name": NAME, "labels": LABELS}
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": NAMESPACE, "labels": {
             **LABELS, "pod-security.kubernetes.io/enforce": "restricted"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {**meta, "namespace": NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta,
         "rules": RULES},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]},
    ]


# The namespace the generated namespaced RBAC serves; `reconcile-lab operator rbac --namespace`
# prints it for any other.
WATCHED = "reconcile-lab-apps"


def namespaced_rbac(watched: str = WATCHED, *, account: str = NAME,
                    account_namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """For ``reconcile-lab operator run --namespace WATCHED``: a Role and RoleBinding in that
    namespace only, for the operator's ServiceAccount (by default :func:`rbac`'s). No
    cluster-wide permission at all: the operator then lists nothing cluster-wide."""
    meta = {"name": account, "namespace": watched, "labels": LABELS}
    docs: list[dict[str, Any]] = []
    if account_namespace != watched:
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": account_namespace,
            "labels": {**LABELS, "pod-security.kubernetes.io/enforce": "restricted"}}})
    return [
        *docs,
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": account, "namespace": account_namespace, "labels": LABELS}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
         "rules": NAMESPACED_RULES},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
         "subjects": [{"kind": "ServiceAccount", "name": account,
                       "namespace": account_namespace}]},
    ]


def operator(image: str = IMAGE) -> list[dict[str, Any]]:
    probe = {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 10}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": LABELS},
         "spec": {
             "replicas": 1,
             "strategy": {"type": "Recreate"},  # one operator at a time, without peering
             "selector": {"matchLabels": LABELS},
             "template": {
                 "metadata": {"labels": LABELS},
                 "spec": {
                     "serviceAccountName": NAME,
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{
                         "name": "operator",
                         "image": image,
                         # No registry: the image is loaded into the nodes (make deploy does).
                         "imagePullPolicy": "Never",
                         # In a pod, probes and Prometheus come from other hosts.
                         "args": ["operator", "run", "--bind", "0.0.0.0",  # noqa: S104
                                  "--log-format", "json",
                                  "--metrics-port", str(METRICS_PORT),
                                  "--health-port", str(HEALTH_PORT)],
                         "ports": [{"name": "metrics", "containerPort": METRICS_PORT},
                                   {"name": "health", "containerPort": HEALTH_PORT}],
                         "livenessProbe": probe,
                         "readinessProbe": {**probe, "periodSeconds": 5},
                         "resources": {"requests": {"cpu": "50m", "memory": "96Mi"},
                                       "limits": {"cpu": "1", "memory": "256Mi"}},
                         "securityContext": {"allowPrivilegeEscalation": False,
                                             "readOnlyRootFilesystem": True,
                                             "capabilities": {"drop": ["ALL"]}},
                     }],
                 },
             },
         }},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": f"{NAME}-metrics", "namespace": NAMESPACE, "labels": LABELS},
         "spec": {"selector": LABELS,
                  "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"}]}},
    ]
