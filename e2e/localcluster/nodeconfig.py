"""The configs of the real nodes' components, rendered as data from the address plan (pure).

kubelet, containerd, the CNI network, kube-proxy and CoreDNS each get their config from
one function here; nothing is started or written, so every config is tested as data.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from medmec.localcluster.addressing import Plan
from medmec.localcluster.topology import RealNode

CLUSTER_DOMAIN = "cluster.local"
CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins
RUNC = "/usr/sbin/runc"  # Debian's runc: crun cannot run on hybrid cgroups
KUBELET_PORT = 10250
# host sysctls the kubelet sets on start (kernel defaults it insists on): the ledger keeps
# the host's values and `down` puts them back
KUBELET_SYSCTLS = ["kernel.panic", "kernel.panic_on_oops", "vm.overcommit_memory",
                   "vm.panic_on_oom", "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes"]


@dataclasses.dataclass(frozen=True)
class NodePaths:
    """Where one real node keeps its state: data under the cluster's folder, sockets and
    runtime state under the slot's short run folder."""
    data: Path
    run: Path

    @classmethod
    def of(cls, folder: Path, plan: Plan, node: RealNode) -> "NodePaths":
        return cls(data=folder / "nodes" / node.name, run=Path(plan.run_dir) / str(node.index))

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def kubelet_config(self) -> Path:
        return self.data / "kubelet.yaml"

    @property
    def containerd_config(self) -> Path:
        return self.data / "containerd.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.data / "cni" / "net.d"


def cni_conflist(plan: Plan, node: RealNode, paths: NodePaths) -> dict:
    """A bridge per node with its own pod /24, routed (not masqueraded) through the
    cluster's network namespace; hairpin so a pod reaches itself through its Service."""
    cidr = plan.pod_cidr(node.index)
    return {
        "cniVersion": "1.0.0",
        "name": "medmec",
        "plugins": [
            {"type": "bridge", "bridge": f"cni{node.index}", "isGateway": True,
             "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": str(paths.data / "cni" / "ipam"),
                      "ranges": [[{"subnet": str(cidr), "gateway": str(cidr.network_address + 1)}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def shim_cgroup(plan: Plan, paths: NodePaths) -> str:
    """Beside (not inside) the kubelet's cgroup root, which the kubelet manages itself."""
    return f"{plan.cgroup_root}/shims-{paths.run.name}"


def containerd_toml(plan: Plan, paths: NodePaths, pause_image: str) -> str:
    """containerd 2.x config: its own root, state and socket, the CRI plugin on runc with
    the CNI network above, and nothing that would be shared with another containerd."""
    return f"""version = 3
root = "{paths.data / 'containerd'}"
state = "{paths.run / 'state'}"
# NRI's socket path is fixed (/var/run/nri): two containerds on one host would share it
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{paths.containerd_socket}"

[ttrpc]
  address = "{paths.run / 'containerd.sock.ttrpc'}"

[debug]
  address = ""

[metrics]
  address = ""

[plugins.'io.containerd.internal.v1.opt']
  path = "{paths.data / 'opt'}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "{pause_image}"

[plugins.'io.containerd.cri.v1.runtime']
  # no CAP_SYS_RESOURCE here: a negative OOM score cannot be set
  restrict_oom_score_adj = true
  # pod network namespaces under this node's own state, not the host's /var/run/netns
  netns_mounts_under_state_dir = true

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["{CNI_BIN_DIR}"]
  conf_dir = "{paths.cni_conf_dir}"
  max_conf_num = 1

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = "runc"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = "{RUNC}"
  SystemdCgroup = false
  # the shims live in the cluster's cgroup, so a killed run's shims are found and ended
  ShimCgroup = "{shim_cgroup(plan, paths)}"

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def kubelet_config(plan: Plan, node: RealNode, paths: NodePaths, pki_dir: Path) -> dict:
    """KubeletConfiguration: real authentication (client certificates, webhook) and
    authorization (webhook), on this node's address only, its pods in its own cgroup."""
    ip = plan.node_ip(node.index)
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": ip,
        "healthzPort": 10248,
        "tlsCertFile": str(pki_dir / f"node-{node.name}-serving.crt"),
        "tlsPrivateKeyFile": str(pki_dir / f"node-{node.name}-serving.key"),
        "authentication": {"anonymous": {"enabled": False},
                           "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(pki_dir / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"{plan.cgroup_root}/{node.index}",
        # this machine runs cgroup v1 (hybrid); the kubelet refuses it unless told
        "failCgroupV1": False,
        "failSwapOn": False,
        "oomScoreAdj": 0,
        "clusterDNS": [plan.dns_ip],
        "clusterDomain": CLUSTER_DOMAIN,
        # pods with dnsPolicy Default get no nameserver of the host's: no lookups leave
        "resolvConf": str(paths.data / "resolv.conf"),
        "podLogsDir": str(paths.data / "pod-logs"),
        "registerNode": True,
        "registerWithTaints": node.taints,
        "serializeImagePulls": False,
        # a shared development machine: evict only when it is really short
        "evictionHard": {"memory.available": "200Mi", "nodefs.available": "2%",
                         "imagefs.available": "2%", "nodefs.inodesFree": "2%"},
        "imageGCHighThresholdPercent": 98,
        "imageGCLowThresholdPercent": 95,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "protectKernelDefaults": False,
        "maxPods": 110,
    }


def kubelet_args(plan: Plan, node: RealNode, paths: NodePaths, kubeconfig: Path) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(node.labels.items()))
    return [f"--config={paths.kubelet_config}", f"--kubeconfig={kubeconfig}",
            f"--root-dir={paths.data / 'kubelet'}", f"--cert-dir={paths.data / 'kubelet-pki'}",
            f"--hostname-override={node.name}", f"--node-ip={plan.node_ip(node.index)}",
            f"--node-labels={labels}", "--v=1"]


def kube_proxy_config(plan: Plan, kubeconfig: Path, node_name: str) -> dict:
    """One kube-proxy (nftables) for every real node: they share the cluster's network
    namespace, so its rules are the namespace's and vanish with it."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node_name,
        "mode": "nftables",
        "clusterCIDR": str(plan.pod_range),
        "bindAddress": plan.netns_ip,
        "healthzBindAddress": f"{plan.netns_ip}:10256",
        "metricsBindAddress": f"{plan.netns_ip}:10249",
        "nodePortAddresses": [str(plan.link)],
        "oomScoreAdj": 0,
        # zero: leave the conntrack sysctls as they are
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
    }


def corefile(plan: Plan, kubeconfig: Path) -> str:
    """Cluster names only: there is no upstream to forward other names to."""
    return f""".:53 {{
    bind {plan.dns_ip}
    errors
    health {plan.dns_ip}:8080
    ready {plan.dns_ip}:8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
    loadbalance
}}
"""


def resolv_conf() -> str:
    """What a pod with dnsPolicy Default gets: nothing beyond the cluster."""
    return "options ndots:1\n"
