"""Policy before anything runs: what the cluster refuses at admission, as code.

Two ValidatingAdmissionPolicies, built into the kube-apiserver (CEL, no webhook, nothing else
to run): a WebApp, and any Pod, whose image does not start with an allowed prefix is refused,
and so is a Pod that asks for privilege (privileged, host namespaces, privilege escalation).
They bind to namespaces labelled ``reconcile-lab.dev/policy=enforce`` only, so that turning
them on is a choice a participant makes (`kubectl label namespace NS ...`) and the cluster's
own namespaces are never refused anything. ``make manifests`` writes them to
``deploy/policy.yaml``; `kubectl apply -f deploy/policy.yaml` installs them.

The refusal comes from the apiserver, before anything is stored or scheduled. The Docker twin
has no such gate: `docker run` of the same image just runs, and a check inside the twin would
be advice, not a gate (any other client goes around it).

Purely data: no I/O.
"""

from __future__ import annotations

import re
from typing import Any

from reconcile_lab import spec

API = "admissionregistration.k8s.io/v1"
LABEL, ENFORCE = "reconcile-lab.dev/policy", "enforce"
ALLOWED_PREFIXES = ("reconcile-lab/",)  # the kit builds every image it runs; nothing is pulled
WEBAPPS, PODS = "reconcile-lab-webapp-images", "reconcile-lab-pod-posture"


def _allowed(image: str) -> str:
    """CEL: ``image`` starts with one of the allowed prefixes."""
    return " || ".join(f"{image}.startsWith('{p}')" for p in ALLOWED_PREFIXES)


PREFIXES = ", ".join(ALLOWED_PREFIXES)
ALL_CONTAINERS = "variables.containers"  # see CONTAINERS


CONTAINERS = {"name": "containers", "expression": "object.spec.containers + "
              "(has(object.spec.initContainers) ? object.spec.initContainers : [])"}


def _policy(name: str, rules: list[dict[str, Any]], validations: list[dict[str, str]],
            variables: tuple[dict[str, str], ...] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": rules}}
    if variables:
        body["variables"] = list(variables)
    return {
        "apiVersion": API, "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "reconcile-lab"}},
        "spec": {**body, "validations": validations},
    }


def _binding(policy: str) -> dict[str, Any]:
    return {
        "apiVersion": API, "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy, "labels": {"app.kubernetes.io/part-of": "reconcile-lab"}},
        "spec": {"policyName": policy, "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": {LABEL: ENFORCE}}}},
    }


def _rule(group: str, version: str, resource: str) -> dict[str, Any]:
    return {"apiGroups": [group], "apiVersions": [version], "operations": ["CREATE", "UPDATE"],
            "resources": [resource]}


def policies() -> list[dict[str, Any]]:
    webapps = _policy(WEBAPPS, [_rule(spec.GROUP, spec.VERSION, spec.PLURAL)], [{
        "expression": _allowed("object.spec.image"),
        "messageExpression": f"'spec.image ' + object.spec.image + ' is not allowed here: "
                             f"images must start with {PREFIXES} (policy {WEBAPPS})'",
        "reason": "Forbidden",
    }])
    pods = _policy(PODS, [_rule("", "v1", "pods")], [
        {"expression": f"{ALL_CONTAINERS}.all(c, {_allowed('c.image')})",
         "messageExpression": f"'image ' + {ALL_CONTAINERS}.filter(c, !({_allowed('c.image')}))"
                              f"[0].image + ' is not allowed here: images must start with "
                              f"{PREFIXES} (policy {PODS})'",
         "reason": "Forbidden"},
        {"expression": f"{ALL_CONTAINERS}.all(c, !has(c.securityContext) || "
                       "((!has(c.securityContext.privileged) || !c.securityContext.privileged) "
                       "&& (!has(c.securityContext.allowPrivilegeEscalation) || "
                       "!c.securityContext.allowPrivilegeEscalation)))",
         "message": f"a container asks for privilege (privileged or allowPrivilegeEscalation): "
                    f"not allowed here (policy {PODS})",
         "reason": "Forbidden"},
        {"expression": "!(has(object.spec.hostNetwork) && object.spec.hostNetwork) && "
                       "!(has(object.spec.hostPID) && object.spec.hostPID) && "
                       "!(has(object.spec.hostIPC) && object.spec.hostIPC)",
         "message": f"the pod asks for a host namespace (hostNetwork, hostPID or hostIPC): not "
                    f"allowed here (policy {PODS})",
         "reason": "Forbidden"},
    ], variables=(CONTAINERS,))
    return [webapps, _binding(WEBAPPS), pods, _binding(PODS)]


_DENIED = re.compile(r"ValidatingAdmissionPolicy '([\w.-]+)' .*denied request: (.*)")


def refusal(stderr: str) -> str | None:
    """The policy's message, when ``stderr`` (kubectl's) says one of these policies refused a
    request; None for any other failure."""
    for line in stderr.splitlines():
        found = _DENIED.search(line)
        if found and found.group(1) in (WEBAPPS, PODS):
            return found.group(2).strip()
    return None
