"""The real node's pure parts: rendered configs, host-check parsers, the iptables sweep."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import yaml

from reconcile_lab.cluster import hostchanges, hostcheck, metricsconfig, nodeconfig, nodeparts

LAYOUT = nodeconfig.Layout(node=Path("/s/realnode"), run=Path("/run/reconcile-lab/abc"),
                           pki=Path("/s/kwok/pki"), kubeconfig=Path("/s/kwok/kubeconfig.yaml"),
                           server="https://127.0.0.1:32760", cni_bin=Path("/usr/lib/cni"),
                           runc=Path("/usr/sbin/runc"))

HYBRID = """\
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct
33 30 0:29 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset
34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
36 30 0:32 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
37 30 0:33 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
"""


def test_kubelet_config_is_loopback_only_and_not_anonymous() -> None:
    config = yaml.safe_load(nodeconfig.kubelet_config(LAYOUT, cgroup_v1=True))
    assert config["address"] == "127.0.0.1" and config["healthzBindAddress"] == "127.0.0.1"
    assert config["failCgroupV1"] is False
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authentication"]["webhook"]["enabled"] is True
    assert config["authorization"]["mode"] == "Webhook"
    assert config["containerRuntimeEndpoint"] == f"unix://{LAYOUT.socket}"
    assert len(str(LAYOUT.socket)) < 100  # unix socket paths are short


def test_kwokctl_patches_keep_kwok_off_the_real_node_and_node_ports_off_kwokctls() -> None:
    config = yaml.safe_load("componentsPatches:\n- name: kube-apiserver\n  extraArgs:\n"
                            + nodeconfig.kwokctl_patches(LAYOUT.pki))
    apiserver, kwok, controllers = config["componentsPatches"]
    args = {a["key"]: a["value"] for a in apiserver["extraArgs"]}
    assert args["kubelet-preferred-address-types"] == "Hostname"
    high = int(args["service-node-port-range"].split("-")[1])
    assert high < 32700  # kwokctl hands out its ports from 32767 downwards
    assert {a["key"]: a["value"] for a in kwok["extraArgs"]} == {
        "manage-all-nodes": "false",
        "manage-nodes-with-annotation-selector": "kwok.x-k8s.io/node=fake",
        "node-lease-duration-seconds": "40"}
    # A node that stops renewing its lease is taken for gone as on any cluster (a renewal every
    # 10 s, 50 s of grace), not after kwokctl's 3m20s; the HPA looks every 5 s, not every 15 s.
    assert controllers["name"] == "kube-controller-manager"
    assert {a["key"]: a["value"] for a in controllers["extraArgs"]} == {
        "node-monitor-grace-period": "50s", "node-monitor-period": "5s",
        "horizontal-pod-autoscaler-sync-period": "5s"}


def test_the_apiserver_tells_aggregated_apis_who_asks_and_the_mark_says_so() -> None:
    text = nodeconfig.kwokctl_patches(LAYOUT.pki)
    config = yaml.safe_load("componentsPatches:\n- name: kube-apiserver\n  extraArgs:\n" + text)
    args = {a["key"]: a["value"] for a in config["componentsPatches"][0]["extraArgs"]}
    # kwokctl's proxy client certificate (its admin's) is the only one allowed to say who asks.
    assert args["requestheader-client-ca-file"] == str(LAYOUT.pki / "ca.crt")
    assert args["requestheader-allowed-names"] == nodeconfig.KWOK_ADMIN
    assert args["requestheader-username-headers"] == "X-Remote-User"
    assert args["requestheader-group-headers"] == "X-Remote-Group"
    # A cluster made before these settings lacks the mark, and is made again.
    assert nodeconfig.REAL_NODE_READY_MARK in text
    assert nodeconfig.REAL_NODE_READY_MARK in args


def _flags(args: list[str]) -> dict[str, str]:
    pairs = [a.removeprefix("--").split("=", 1) for a in args]
    assert all(len(p) == 2 for p in pairs), args
    return dict(pairs)


def test_metrics_server_listens_on_loopback_and_scrapes_the_real_kubelet_only() -> None:
    flags = _flags(metricsconfig.args(LAYOUT))
    assert flags["bind-address"] == "127.0.0.1"
    assert int(flags["secure-port"]) == nodeconfig.METRICS_SERVER_PORT
    assert nodeconfig.METRICS_SERVER_PORT in nodeconfig.PORTS  # checked free before a start
    assert flags["node-selector"] == f"{nodeconfig.NODE_LABEL}=real"
    # Where the apiserver reaches the kubelet, checked against the cluster's CA, as the admin.
    assert flags["kubelet-preferred-address-types"] == "Hostname"
    assert int(flags["kubelet-port"]) == nodeconfig.KUBELET_PORT
    assert flags["kubelet-certificate-authority"] == str(LAYOUT.pki / "ca.crt")
    assert "kubelet-insecure-tls" not in flags
    assert flags["kubelet-client-certificate"] == str(LAYOUT.pki / "admin.crt")
    for kubeconfig in ("kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig"):
        assert flags[kubeconfig] == str(LAYOUT.kubeconfig)
    # metrics-server refuses a resolution under 10 s, and a kubelet timeout over 90 % of it.
    resolution = int(flags["metric-resolution"].removesuffix("s"))
    assert resolution == 10
    assert int(flags["kubelet-request-timeout"].removesuffix("s")) <= resolution * 0.9
    serving = metricsconfig.certificate(LAYOUT)
    assert flags["tls-cert-file"] == f"{serving.path}.crt"


def test_metrics_server_certificate_names_what_the_apiserver_checks() -> None:
    certs = {c.path: c for c in (*nodeconfig.certificates(LAYOUT),
                                  metricsconfig.certificate(LAYOUT))}
    serving = certs[LAYOUT.metrics_server_pki / "serving"]
    # The aggregator checks <service>.<namespace>.svc; the node probes it on 127.0.0.1.
    assert "subjectAltName=DNS:metrics-server.kube-system.svc,DNS:localhost,IP:127.0.0.1" \
        in serving.extensions
    assert "extendedKeyUsage=serverAuth" in serving.extensions
    assert "extendedKeyUsage=clientAuth" in certs[LAYOUT.kubelet_pki / "node"].extensions
    assert certs[LAYOUT.kubelet_pki / "node"].subject == "/O=system:nodes/CN=system:node:localhost"


def test_the_metrics_api_leads_to_this_host_and_checks_its_certificate() -> None:
    service, apiservice = metricsconfig.api_objects(ca_crt=b"-----CA-----\n")
    # Endpoints may not hold loopback addresses; the aggregator dials an ExternalName itself.
    assert service["kind"] == "Service"
    assert service["spec"] == {"type": "ExternalName", "externalName": "localhost"}
    assert apiservice["kind"] == "APIService"
    assert apiservice["metadata"]["name"] == "v1beta1.metrics.k8s.io"  # type: ignore[index]
    spec: dict[str, Any] = apiservice["spec"]  # type: ignore[assignment]
    assert (spec["group"], spec["version"]) == ("metrics.k8s.io", "v1beta1")
    assert spec["service"] == {"name": "metrics-server", "namespace": "kube-system",
                               "port": nodeconfig.METRICS_SERVER_PORT}
    assert base64.b64decode(spec["caBundle"]) == b"-----CA-----\n"
    assert "insecureSkipTLSVerify" not in spec
    name = f"{spec['service']['name']}.{spec['service']['namespace']}.svc"
    assert name == metricsconfig.SERVER_NAME


def test_the_kwok_node_template_is_annotated_and_tainted_only_beside_a_real_node() -> None:
    tainted = yaml.safe_load(nodeconfig.kwok_node_resource(tainted=True))
    plain = yaml.safe_load(nodeconfig.kwok_node_resource(tainted=False))
    assert tainted["metadata"]["name"] == "node"
    assert "kwok.x-k8s.io/node: fake" in plain["template"]
    assert "NoSchedule" in tainted["template"] and "taints" not in plain["template"]


def test_cni_and_containerd_use_the_nodes_own_directories() -> None:
    cni = json.loads(nodeconfig.cni_conflist(LAYOUT))
    assert cni["plugins"][0]["bridge"] == nodeconfig.BRIDGE
    assert cni["plugins"][0]["ipMasq"] is False
    toml = nodeconfig.containerd_toml(LAYOUT)
    assert "restrict_oom_score_adj = true" in toml
    assert f'Root = "{LAYOUT.runc_root}"' in toml and "/var/lib/containerd" not in toml


def test_cgroup_layouts_are_told_apart() -> None:
    hybrid = hostcheck.parse_cgroups(HYBRID)
    assert hybrid.layout == "hybrid"
    assert hybrid.v1["cpuset"] == Path("/sys/fs/cgroup/cpuset")
    assert hostcheck.cgroup_problems(hybrid, "") == []
    v2 = hostcheck.parse_cgroups("37 30 0:33 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    assert v2.layout == "v2" and v2.hierarchies() == [Path("/sys/fs/cgroup")]
    assert "pids" in hostcheck.cgroup_problems(v2, "cpu memory")[0]
    no_memory = hostcheck.parse_cgroups(HYBRID.replace("rw,memory", "rw,hugetlb"))
    assert "memory" in hostcheck.cgroup_problems(no_memory, "")[0]


def test_missing_capabilities_name_the_bit_and_the_reason() -> None:
    blocking, worked = hostcheck.missing_capabilities("CapBnd:\t000001fffeffffff\n")
    assert blocking == [] and worked[0].startswith("CAP_SYS_RESOURCE")
    blocking, _ = hostcheck.missing_capabilities("CapBnd:\t000001fffedfffff\n")
    assert blocking[0].startswith("CAP_SYS_ADMIN")


def test_a_route_into_the_pods_subnet_is_a_conflict_unless_it_is_our_bridge() -> None:
    header = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
    ours = f"{nodeconfig.BRIDGE}\t004DE90A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"
    other = "br-x\t0000E90A\t00000000\t0001\t0\t0\t0\t0000FFFF\n"
    default = "eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\n"
    assert hostcheck.route_conflicts(header + ours + default, nodeconfig.POD_SUBNET,
                                     nodeconfig.BRIDGE) == []
    assert hostcheck.route_conflicts(header + other, nodeconfig.POD_SUBNET,
                                     nodeconfig.BRIDGE) == ["br-x (10.233.0.0/16)"]


SAVE = """\
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:KUBE-SERVICES - [0:0]
:CNI-abc123 - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -s 10.233.77.2/32 -m comment --comment "name: \\"reconcile-lab\\"" -j CNI-abc123
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A KUBE-SERVICES -j RETURN
COMMIT
*filter
:INPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
-A DOCKER-USER -j RETURN
COMMIT
"""


def test_the_iptables_sweep_removes_only_kube_and_cni_chains() -> None:
    script = hostchanges.sweep_script(SAVE).splitlines()
    assert script[0] == "*nat" and script[-1] == "COMMIT"
    assert '-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' \
        in script
    assert any(line.startswith("-D POSTROUTING -s 10.233.77.2/32") for line in script)
    assert {"-F KUBE-SERVICES", "-X KUBE-SERVICES", "-F CNI-abc123", "-X CNI-abc123"} <= set(script)
    assert not any("DOCKER" in line or "MASQUERADE" in line for line in script)
    assert "*filter" not in script  # nothing of ours there: the table is left alone
    assert hostchanges.sweep_script("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n") == ""


def test_mounts_under_the_node_come_deepest_first() -> None:
    info = ("1 0 0:1 / /s/realnode/a rw - overlay overlay rw\n"
            "2 1 0:2 / /s/realnode/a/b\\040c rw - tmpfs tmpfs rw\n"
            "3 0 0:3 / /s/realnode2 rw - tmpfs tmpfs rw\n")
    assert hostchanges.mounts_under(info, [Path("/s/realnode")]) == [
        Path("/s/realnode/a/b c"), Path("/s/realnode/a")]


def test_topmost_absent_names_the_first_directory_to_remove(tmp_path: Path) -> None:
    assert hostchanges.topmost_absent(tmp_path / "x" / "y") == tmp_path / "x"
    assert hostchanges.topmost_absent(tmp_path) is None


def test_the_pause_image_is_a_docker_archive_from_scratch() -> None:
    data = io.BytesIO(nodeparts.docker_archive(b"\x7fELF", tag="p:1"))
    with tarfile.open(fileobj=data) as archive:
        manifest = json.loads(archive.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert manifest[0]["RepoTags"] == ["p:1"]
        config = json.loads(archive.extractfile(manifest[0]["Config"]).read())  # type: ignore[union-attr]
        assert config["config"]["Entrypoint"] == ["/pause"]
        with tarfile.open(fileobj=archive.extractfile(manifest[0]["Layers"][0])) as layer:
            assert layer.getnames() == ["pause"] and layer.getmember("pause").mode == 0o755


def test_values_from_an_earlier_run_that_failed_to_undo_win(tmp_path: Path) -> None:
    host_record = tmp_path / "run" / "host-changes.json"
    host_record.parent.mkdir()
    host_record.write_text(json.dumps({"sysctls": {"vm.overcommit_memory": "7"},
                                       "absent_dirs": ["/nowhere/earlier"]}))
    record = tmp_path / "state" / "realnode-changes.json"
    hostchanges.snapshot(record, dirs=(tmp_path / "absent" / "run",), host_record=host_record)
    data = hostchanges.load(record)
    assert data["sysctls"]["vm.overcommit_memory"] == "7"  # not what is set now
    assert "/nowhere/earlier" in data["absent_dirs"]
    assert str(tmp_path / "absent") in data["absent_dirs"]
    assert hostchanges.load(host_record) == data
