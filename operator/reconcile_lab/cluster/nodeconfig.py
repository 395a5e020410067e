"""The real node's configuration files, rendered from paths: pure text, no I/O.

One real kubelet runs beside kwok's simulated nodes (see ``realnode.py``). Everything it needs to
be told lives here: the kwokctl patches that make the control plane accept it, containerd's
config, the CNI network, the kubelet's and kube-proxy's configs, the kwok node template and its
certificates (metrics-server's arguments and API registration: ``metricsconfig``).
Nothing here reads or writes a file, starts a process or asks the host anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

NODE_NAME = "localhost"  # the kubelet's hostname-override: apiserver → kubelet stays on loopback
BRIDGE = "rlbr0"
POD_SUBNET = "10.233.77.0/24"
BRIDGE_ADDRESS = "10.233.77.1"
CGROUP_ROOT = "reconcile-lab"  # the pods' cgroups: /sys/fs/cgroup/<hierarchy>/reconcile-lab/...
# kwokctl hands out its own ports from 32767 downwards, inside the default NodePort range; a
# NodePort on 127.0.0.1 that lands on one of them would hijack the control plane. Keep the two
# ranges apart.
NODE_PORT_RANGE = "30000-31999"
KUBELET_PORT = 10350
KUBELET_HEALTHZ_PORT = 10348
PROXY_HEALTHZ_PORT = 10356
PROXY_METRICS_PORT = 10349
DNS_READY_PORT = 10347
METRICS_SERVER_PORT = 10351
PORTS = {KUBELET_PORT: "kubelet API", KUBELET_HEALTHZ_PORT: "kubelet healthz",
         PROXY_HEALTHZ_PORT: "kube-proxy healthz", PROXY_METRICS_PORT: "kube-proxy metrics",
         DNS_READY_PORT: "CoreDNS readiness",
         METRICS_SERVER_PORT: "metrics-server (the metrics.k8s.io API)"}
PAUSE_IMAGE = "reconcile-lab/pause:1"
NODE_LABEL = "reconcile-lab.dev/node"  # =real on the kubelet's node

# kwok's simulated nodes carry this annotation (its node template sets it); kwok is told to
# manage only them, and, beside a real node, they carry the same key as a taint so that
# ordinary pods land on the real node and scale work opts in.
FAKE_KEY = "kwok.x-k8s.io/node"
FAKE_VALUE = "fake"
FAKE_TAINT = {"key": FAKE_KEY, "value": FAKE_VALUE, "effect": "NoSchedule"}
FAKE_NODE_LABEL = "type=kwok"
# A namespace with these annotations puts every pod it holds on a simulated node (admission
# plugins PodNodeSelector and PodTolerationRestriction, enabled in the kwokctl config below):
# scale work opts in per namespace, and the WebApp spec needs no scheduling fields.
SIMULATED_NAMESPACE_ANNOTATIONS = {
    "scheduler.alpha.kubernetes.io/node-selector": FAKE_NODE_LABEL,
    "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps(
        [{"key": FAKE_KEY, "operator": "Equal", "value": FAKE_VALUE, "effect": "NoSchedule"}]),
}
# Kubernetes' defaults: the kubelet's lease (renewed every quarter of it), how long the node
# controller waits for a renewal before it takes the node for gone, how often it looks.
NODE_LEASE_SECONDS = 40
NODE_GRACE = "50s"
NODE_MONITOR_PERIOD = "5s"
NODE_LEASE_NAMESPACE = "kube-node-lease"
# kwokctl's admin certificate's name (it serves the apiserver, signs into it as system:masters,
# and is the apiserver's proxy client certificate for aggregated APIs).
KWOK_ADMIN = "kwok-admin"
# Who holds a simulated node's Lease once its machine "died": not kwok, which then renews it no
# more; for a day, so that kwok does not take it back as expired.
DEAD_HOLDER = "reconcile-lab-machine-down"


# kubectl's jsonpath for the names of the node Leases DEAD_HOLDER holds, one a line.
DEAD_LEASES = (f'{{range .items[?(@.spec.holderIdentity=="{DEAD_HOLDER}")]}}'
               '{.metadata.name}{"\\n"}{end}')


def dead_lease() -> dict[str, object]:
    """The merge patch that takes a simulated node's heartbeat from kwok. Its renewTime stays
    as it was: the node controller sees no renewal after it, and takes the node for gone."""
    return {"spec": {"holderIdentity": DEAD_HOLDER, "leaseDurationSeconds": 86400}}


# How often the HPA controller looks at the metrics (Kubernetes' default 15 s): a workshop sees
# a busy Deployment scale out within one resolution plus a few seconds.
HPA_SYNC_PERIOD = "5s"

# The kwokctl config carries this text once it has every setting a real node needs; clusters
# made by an earlier reconcile-lab lack it and are made again (cluster down, cluster up).
REAL_NODE_READY_MARK = "requestheader-client-ca-file"


class Layout(NamedTuple):
    """Where the node's files live; every path is absolute."""

    node: Path        # the node's state directory
    run: Path         # sockets and the kubelet's root, on a path short enough for sockets
    pki: Path         # kwokctl's pki directory (ca.crt, ca.key, admin.crt, admin.key)
    kubeconfig: Path  # kwokctl's admin kubeconfig (kube-proxy uses it)
    server: str       # the apiserver's URL
    cni_bin: Path     # the CNI plugins (bridge, host-local, portmap, loopback)
    runc: Path

    @property
    def socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.run / "kubelet"

    @property
    def kubelet_pki(self) -> Path:
        return self.node / "kubelet" / "pki"

    @property
    def runc_root(self) -> Path:
        return self.node / "runc"

    @property
    def metrics_server_pki(self) -> Path:
        return self.node / "metrics-server" / "pki"

    @property
    def logs(self) -> Path:
        return self.node / "logs"


def kwokctl_patches(pki: Path) -> str:
    """componentsPatches entries (YAML, indented for kwokctl's config) for a real node."""
    return f"""\
  # The real kubelet reports Hostname=localhost: apiserver → kubelet traffic stays on loopback,
  # authenticated with kwokctl's admin certificate and checked against the kubelet's own.
  - key: kubelet-preferred-address-types
    value: Hostname
  - key: kubelet-client-certificate
    value: {pki / "admin.crt"}
  - key: kubelet-client-key
    value: {pki / "admin.key"}
  - key: kubelet-certificate-authority
    value: {pki / "ca.crt"}
  - key: service-node-port-range
    value: {NODE_PORT_RANGE}
  # The `kubernetes` Service leads to the bridge's address, where the node forwards to the
  # apiserver on 127.0.0.1 (which is all it listens on): in-cluster clients reach the API.
  - key: advertise-address
    value: {BRIDGE_ADDRESS}
  - key: enable-admission-plugins
    value: PodNodeSelector,PodTolerationRestriction
  # The aggregation layer (metrics-server's API): kwokctl gives the apiserver a proxy client
  # certificate (its admin's) but no request-header CA. With one, the apiserver tells
  # metrics-server who is asking (X-Remote-User), and metrics-server believes only that
  # certificate's name; without, every request would reach it as the admin.
  - key: {REAL_NODE_READY_MARK}
    value: {pki / "ca.crt"}
  - key: requestheader-allowed-names
    value: {KWOK_ADMIN}
  - key: requestheader-username-headers
    value: X-Remote-User
  - key: requestheader-group-headers
    value: X-Remote-Group
  - key: requestheader-extra-headers-prefix
    value: X-Remote-Extra-
# kwok must leave the real kubelet's node alone: only nodes annotated as fake are simulated.
- name: kwok-controller
  extraArgs:
  - key: manage-all-nodes
    value: "false"
  - key: manage-nodes-with-annotation-selector
    value: {FAKE_KEY}={FAKE_VALUE}
  - key: node-lease-duration-seconds
    value: "{NODE_LEASE_SECONDS}"
# A node that stops answering is noticed as on any cluster: Kubernetes' own timings. (kwokctl
# slows heartbeats down for scale: 200 s leases, a node taken for gone only after 3m20s.)
- name: kube-controller-manager
  extraArgs:
  - key: node-monitor-grace-period
    value: {NODE_GRACE}
  - key: node-monitor-period
    value: {NODE_MONITOR_PERIOD}
  - key: horizontal-pod-autoscaler-sync-period
    value: {HPA_SYNC_PERIOD}
"""


def kwok_node_resource(*, tainted: bool) -> str:
    """kwokctl's default node template (kwok v0.8.0, Apache-2.0) with an optional taint.

    ``kwokctl scale node`` reads it from ``$KWOK_WORKDIR/kwok.yaml``, so every caller that scales
    the simulated nodes gets the same ones.
    """
    taints = (f"""
    taints:
    - key: {FAKE_KEY}
      value: {FAKE_VALUE}
      effect: NoSchedule""" if tainted else "")
    return """\
# Written by reconcile-lab: the simulated nodes of `kwokctl scale node`.
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlResource
metadata:
  name: node
parameters:
  allocatable:
    cpu: 32
    memory: 256Gi
    pods: 110
  capacity: {}
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
  podCIDRs:
  - 10.0.0.0/24
  nodeIPs:
  - 192.0.2.1
template: |-
  kind: Node
  apiVersion: v1
  metadata:
    name: {{ Name }}
    annotations:
      @KEY@: @VALUE@
      node.alpha.kubernetes.io/ttl: "0"
    labels:
      beta.kubernetes.io/arch: {{ .nodeInfo.architecture }}
      beta.kubernetes.io/os: {{ .nodeInfo.operatingSystem }}
      kubernetes.io/arch: {{ .nodeInfo.architecture }}
      kubernetes.io/hostname: {{ Name }}
      kubernetes.io/os: {{ .nodeInfo.operatingSystem }}
      kubernetes.io/role: agent
      node-role.kubernetes.io/agent: ""
      type: kwok
  spec:
    {{ $index := Index }}
    {{ $podCIDRs := .podCIDRs }}
    podCIDR: {{ AddCIDR (index $podCIDRs 0) $index }}
    podCIDRs:
    {{ range $podCIDRs }}
    - {{ AddCIDR . $index }}
    {{ end }}@TAINTS@
  status:
    addresses:
    {{ range .nodeIPs }}
    - address: {{ AddIP . $index | Quote }}
      type: InternalIP
    {{ end }}
    allocatable:
    {{ range $key, $value := .allocatable }}
      {{ $key }}: {{ $value }}
    {{ end }}
    {{ $capacity := .capacity }}
    capacity:
    {{ range $key, $value := .allocatable }}
      {{ $key }}: {{ or ( index $capacity $key ) $value }}
    {{ end }}
    nodeInfo:
    {{ range $key, $value := .nodeInfo }}
      {{ $key }}: {{ $value }}
    {{ end }}
""".replace("@KEY@", FAKE_KEY).replace("@VALUE@", FAKE_VALUE).replace("@TAINTS@", taints)


def containerd_toml(layout: Layout) -> str:
    """containerd v2 (config version 4) with its own root, state and socket: never Docker's."""
    n = layout.node
    return f"""\
# containerd for the real node: own root, state and socket (never the Docker engine's).
version = 4
root = "{n / "containerd" / "root"}"
state = "{n / "containerd" / "state"}"
disabled_plugins = ["io.containerd.nri.v1.nri"]

[debug]
  level = "info"

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = "{layout.socket}"
  [plugins.'io.containerd.server.v1.ttrpc']
    address = "{layout.socket}.ttrpc"
  [plugins.'io.containerd.server.v1.debug']
    address = ""
  [plugins.'io.containerd.server.v1.metrics']
    address = ""
  [plugins.'io.containerd.internal.v1.opt']
    path = "{n / "containerd" / "opt"}"

  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "{PAUSE_IMAGE}"

  [plugins.'io.containerd.cri.v1.runtime']
    enable_selinux = false
    disable_apparmor = true
    # Without CAP_SYS_RESOURCE runc cannot lower the sandbox's oom_score_adj to -998.
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = "{layout.runc}"
          Root = "{layout.runc_root}"
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["{layout.cni_bin}"]
      conf_dir = "{n / "cni" / "net.d"}"
      max_conf_num = 1

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
"""


def cni_conflist(layout: Layout) -> str:
    """A bridge with no masquerade: pods reach each other and the host, nothing beyond."""
    return json.dumps({
        "cniVersion": "1.0.0",
        "name": "reconcile-lab",
        "plugins": [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET}]],
                      "routes": [{"dst": "0.0.0.0/0"}],
                      "dataDir": str(layout.node / "cni" / "ipam")}},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }, indent=2) + "\n"


def kubelet_config(layout: Layout, *, cgroup_v1: bool, cluster_dns: str | None = None) -> str:
    p = layout.kubelet_pki
    dns = f"clusterDNS: [{cluster_dns}]\nclusterDomain: cluster.local\n" if cluster_dns else ""
    return f"""\
# A real kubelet beside kwok's simulated nodes. With containerd 2.x the cgroup driver comes from
# the CRI (RuntimeConfig); cgroupDriver below is the fallback. Everything on 127.0.0.1.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: {"false" if cgroup_v1 else "true"}
cgroupDriver: cgroupfs
cgroupRoot: /{CGROUP_ROOT}
containerRuntimeEndpoint: unix://{layout.socket}
imageServiceEndpoint: unix://{layout.socket}
address: 127.0.0.1
port: {KUBELET_PORT}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {KUBELET_HEALTHZ_PORT}
tlsCertFile: {p / "serving.crt"}
tlsPrivateKeyFile: {p / "serving.key"}
# Not anonymous: the apiserver presents kwokctl's admin certificate; anything else asks the
# apiserver (TokenReview, SubjectAccessReview).
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {layout.pki / "ca.crt"}
authorization:
  mode: Webhook
{dns}podLogsDir: {layout.node / "kubelet" / "pod-logs"}
failSwapOn: false
serializeImagePulls: false
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "2%"
  imagefs.available: "2%"
  nodefs.inodesFree: "2%"
# Quick restarts like Docker's: without it the third crash in a row waits 20 s or more.
crashLoopBackOff:
  maxContainerRestartPeriod: 1s
"""


def kubelet_kubeconfig(layout: Layout) -> str:
    p = layout.kubelet_pki
    return f"""\
apiVersion: v1
kind: Config
clusters:
- name: reconcile-lab
  cluster:
    certificate-authority: {layout.pki / "ca.crt"}
    server: {layout.server}
users:
- name: node
  user:
    client-certificate: {p / "node.crt"}
    client-key: {p / "node.key"}
contexts:
- name: node
  context: {{cluster: reconcile-lab, user: node}}
current-context: node
"""


def kube_proxy_config(layout: Layout) -> str:
    return f"""\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: {layout.kubeconfig}
hostnameOverride: {NODE_NAME}
mode: iptables
clusterCIDR: {POD_SUBNET}
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:{PROXY_HEALTHZ_PORT}
metricsBindAddress: 127.0.0.1:{PROXY_METRICS_PORT}
# NodePorts answer on loopback only, in NODE_PORT_RANGE (away from kwokctl's own ports).
nodePortAddresses: ["127.0.0.0/8"]
iptables:
  localhostNodePorts: true
conntrack:  # leave the host's conntrack tunables alone
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
"""


def corefile(layout: Layout) -> str:
    """CoreDNS on the bridge's address: Service and pod names, nothing from outside."""
    return f"""\
# Cluster DNS for the real node's pods. No forwarding: pods have no way out anyway.
cluster.local:53 in-addr.arpa:53 {{
  bind {BRIDGE_ADDRESS}
  kubernetes cluster.local in-addr.arpa {{
    kubeconfig {layout.kubeconfig}
    pods insecure
  }}
  ready 127.0.0.1:{DNS_READY_PORT}
  cache 5
  errors
}}
"""


def kubelet_args(layout: Layout, config: Path, kubeconfig: Path) -> list[str]:
    return [
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={layout.kubelet_root}",
        f"--hostname-override={NODE_NAME}",
        f"--node-labels={NODE_LABEL}=real",
        "--v=1",
    ]


def openssl_extensions(*, client: bool, names: tuple[str, ...] = ("localhost",)) -> str:
    """x509v3 extensions: a client certificate, or a serving one for ``names`` and 127.0.0.1."""
    if client:
        return "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" \
               "extendedKeyUsage=clientAuth\n"
    sans = ",".join([*(f"DNS:{n}" for n in names), "IP:127.0.0.1"])
    return "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" \
           f"extendedKeyUsage=serverAuth\nsubjectAltName={sans}\n"


class Certificate(NamedTuple):
    """A key pair signed by kwokctl's CA: ``path``.crt and ``path``.key."""

    path: Path
    subject: str      # openssl's -subj
    extensions: str   # openssl's -extfile


def certificates(layout: Layout) -> tuple[Certificate, ...]:
    """The node's client certificate (the Node authorizer's system:node:localhost) and the
    kubelet's serving certificate for localhost (metrics-server's: ``metricsconfig``)."""
    p = layout.kubelet_pki
    return (
        Certificate(p / "node", f"/O=system:nodes/CN=system:node:{NODE_NAME}",
                    openssl_extensions(client=True)),
        Certificate(p / "serving", f"/CN={NODE_NAME}", openssl_extensions(client=False)),
    )
