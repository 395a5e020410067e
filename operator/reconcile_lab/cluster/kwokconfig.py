"""Where the embedded cluster lives and how kwokctl is told to make it: its directories, its
ports, the apiserver's flags and audit policy, and the environment kwokctl runs in.

``kwok`` runs the cluster; this module only names and configures it (no process is started
here).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import yaml

from reconcile_lab import paths
from reconcile_lab.cluster import probing

NAME = "reconcile-lab"

CONFIG = """\
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  bindAddress: 127.0.0.1
{ports}  # In-cluster clients dial kubernetes.default's ClusterIP (the first of the range below).
  kubeApiserverCertSANs: ["10.96.0.1"]
# The apiserver's default Service range (10.0.0.0/24) holds 254 ClusterIPs: too few for a
# workshop that creates a thousand WebApps.
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - key: service-cluster-ip-range
    value: 10.96.0.0/16
  - key: audit-log-maxsize
    value: "50"
  - key: audit-log-maxbackup
    value: "2"
{extra}"""

# kwokctl's --disable-qps-limits (the controllers' client-side limits off, for a thousand
# objects at once) also turns the apiserver's in-flight limits and API Priority and Fairness
# off. They are turned back on with the apiserver's own defaults, as on any cluster: the admin
# and the control plane are exempt; a ServiceAccount (the operator's own, in a Role) is not.
APISERVER_ARGS = {"enable-priority-and-fairness": "true", "max-requests-inflight": "400",
                  "max-mutating-requests-inflight": "200"}

# The apiserver's own record of every write to the objects the kit makes: a write counted here
# happened, whatever the client believes (tests and benchmarks count the operator's writes by
# its user agent). Reads, leases, pods and status updates by the controllers are left out.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  verbs: [get, list, watch]
- level: Metadata
  resources:
  - group: ""
    resources: [services, events]
  - group: apps
    resources: [deployments]
  - group: reconcile-lab.dev
    resources: [webapps, webapps/status]
- level: None
"""


def workdir() -> Path:
    return paths.state_dir() / "kwok"


def cluster_dir() -> Path:
    return workdir() / "clusters" / NAME


def kubeconfig() -> Path:
    return cluster_dir() / "kubeconfig.yaml"


# kwokctl would hand out ports from 32767 downwards: every new cluster takes the ports of a
# stopped one first (so a stopped cluster could not start again), and they sit inside the
# NodePort range. The kit picks free ports of its own, spread over a range nothing else uses
# by default.
PORT_RANGE = (21000, 29999)
PORT_OPTIONS = ("etcdPort", "etcdPeerPort", "kubeApiserverPort", "kubeControllerManagerPort",
                "kubeSchedulerPort", "kwokControllerPort")


def pick_ports(apiserver_port: int | None) -> dict[str, int]:
    rng = random.Random()  # noqa: S311 - spreading ports, not secrets
    chosen: dict[str, int] = {}
    if apiserver_port is not None:
        chosen["kubeApiserverPort"] = apiserver_port
    while len(chosen) < len(PORT_OPTIONS):
        port = rng.randint(*PORT_RANGE)
        if port not in chosen.values() and probing.port_is_free(port):
            chosen[next(o for o in PORT_OPTIONS if o not in chosen)] = port
    return chosen


def recorded_ports() -> dict[str, int]:
    """The ports a created cluster was given (kwokctl keeps them in kwok.yaml)."""
    try:
        for doc in yaml.safe_load_all((cluster_dir() / "kwok.yaml").read_text()):
            if (doc or {}).get("kind") == "KwokctlConfiguration":
                options = doc.get("options") or {}
                return {o: int(options[o]) for o in PORT_OPTIONS if options.get(o)}
    except (OSError, yaml.YAMLError, ValueError):
        pass
    return {}


def audit_log() -> Path:
    return cluster_dir() / "logs" / "audit.log"


def kwokctl_env() -> dict[str, str]:
    # kwokctl adds and removes contexts in the kubeconfig $KUBECONFIG names (by default
    # ~/.kube/config): after `eval "$(reconcile-lab cluster env)"` that would be the kit's own
    # cluster's. It sees only a file of its own, which nothing reads.
    # client-go keeps a discovery cache in ~/.kube/cache unless told otherwise.
    return {**os.environ, "KWOK_WORKDIR": str(workdir()),
            "KUBECONFIG": str(workdir() / "kwokctl-scratch.kubeconfig"),
            "KUBECACHEDIR": str(paths.state_dir() / "kube-cache")}
