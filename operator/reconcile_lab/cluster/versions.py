"""Pinned versions of everything the kit builds or runs. Change them here only.

The Go wrapper modules under ``assets/go/`` require the same versions; a unit test checks it.
"""

from __future__ import annotations

KUBERNETES = "v1.36.3"
ETCD = "v3.6.16"
KWOK = "v0.8.0"
# The real node: containerd built from source (1.6 lacks the CRI RuntimeConfig call), CoreDNS
# for Service names, metrics-server for `kubectl top` and CPU-based HorizontalPodAutoscalers.
# runc and the CNI plugins come from Debian.
CONTAINERD = "v2.4.2"
COREDNS = "v1.14.7"
METRICS_SERVER = "v0.8.0"
KIND_NODE_IMAGE = f"kindest/node:{KUBERNETES}"

# kubectl is supported within one minor version of the apiserver.
KUBECTL_MINOR_SKEW = 1


def minor(version: str) -> tuple[int, int]:
    major, minor_, *_ = version.lstrip("v").split(".")
    return int(major), int("".join(c for c in minor_ if c.isdigit()))
