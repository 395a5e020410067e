"""metrics-server: the API `kubectl top` and the HorizontalPodAutoscaler read, served by a
process on this host and reached through the apiserver's aggregation layer. Its arguments, its
serving certificate and the objects that register its API; ``metricsapi`` registers them.

Nothing here reads or writes a file, starts a process or asks the host anything.
"""

from __future__ import annotations

import base64

from reconcile_lab.cluster import nodeconfig

API_GROUP = "metrics.k8s.io"
API_VERSION = "v1beta1"
APISERVICE = f"{API_VERSION}.{API_GROUP}"
SERVICE = "metrics-server"
NAMESPACE = "kube-system"
# The name the apiserver checks metrics-server's certificate against: <service>.<namespace>.svc.
SERVER_NAME = f"{SERVICE}.{NAMESPACE}.svc"
# How often it scrapes the kubelet: its minimum (it refuses less), so that a workshop sees a
# busy pod in `kubectl top` and in an HPA's decision within seconds, not after its default 60 s.
RESOLUTION = "10s"
# metrics-server refuses a kubelet timeout above 90 % of the resolution (its default is 10 s).
KUBELET_TIMEOUT = "5s"


def args(layout: nodeconfig.Layout) -> list[str]:
    """metrics-server on 127.0.0.1, scraping the real kubelet only, as kwokctl's admin."""
    serving = layout.metrics_server_pki / "serving"
    return [
        f"--kubeconfig={layout.kubeconfig}",
        # Who asks (the request-header CA, the names it may carry) and may they: from the
        # apiserver, through the same kubeconfig (there is no in-cluster config off-cluster).
        f"--authentication-kubeconfig={layout.kubeconfig}",
        f"--authorization-kubeconfig={layout.kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={nodeconfig.METRICS_SERVER_PORT}",
        f"--tls-cert-file={serving}.crt",
        f"--tls-private-key-file={serving}.key",
        # The kubelet as the apiserver reaches it: Hostname=localhost, port 10350, its serving
        # certificate checked against the cluster's CA, kwokctl's admin certificate presented
        # (the kubelet authenticates it with clientCAFile and asks the apiserver whether it may).
        "--kubelet-preferred-address-types=Hostname",
        f"--kubelet-port={nodeconfig.KUBELET_PORT}",
        f"--kubelet-certificate-authority={layout.pki / 'ca.crt'}",
        f"--kubelet-client-certificate={layout.pki / 'admin.crt'}",
        f"--kubelet-client-key={layout.pki / 'admin.key'}",
        f"--kubelet-request-timeout={KUBELET_TIMEOUT}",
        # kwok's simulated nodes have no kubelet to scrape: every scrape of them would fail.
        f"--node-selector={nodeconfig.NODE_LABEL}=real",
        f"--metric-resolution={RESOLUTION}",
    ]


def api_objects(*, ca_crt: bytes) -> list[dict[str, object]]:
    """The Service and APIService that make the apiserver serve metrics.k8s.io from
    metrics-server on this host.

    The apiserver runs on this host too, and a Service's endpoints may not be loopback
    addresses. An ExternalName Service is the way: without --enable-aggregator-routing the
    aggregator dials an ExternalName Service's name itself (k8s.io/apiserver's
    proxy.ResolveCluster), at the APIService's port, and checks the certificate against
    ``caBundle`` for the name <service>.<namespace>.svc.
    """
    labels = {"app.kubernetes.io/name": "metrics-server",
              "app.kubernetes.io/managed-by": "reconcile-lab"}
    return [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": SERVICE, "namespace": NAMESPACE,
                      "labels": labels},
         "spec": {"type": "ExternalName", "externalName": "localhost"}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": {"name": APISERVICE, "labels": labels},
         "spec": {"group": API_GROUP, "version": API_VERSION,
                  "service": {"name": SERVICE, "namespace": NAMESPACE,
                              "port": nodeconfig.METRICS_SERVER_PORT},
                  "caBundle": base64.b64encode(ca_crt).decode(),
                  "groupPriorityMinimum": 100, "versionPriority": 100}},
    ]


def certificate(layout: nodeconfig.Layout) -> nodeconfig.Certificate:
    """metrics-server's serving certificate, for the name the apiserver checks (and
    127.0.0.1, where the node probes it)."""
    return nodeconfig.Certificate(
        layout.metrics_server_pki / "serving", f"/CN={SERVER_NAME}",
        nodeconfig.openssl_extensions(client=False, names=(SERVER_NAME, "localhost")))
