"""NetworkPolicy enforcement for the real nodes: kube-router's firewall, and nothing else of it.

Why kube-router: it is the one policy engine that both builds from its Go module here and
runs on this kernel. kube-network-policies (v0.7.0, v0.8.0) always sends packets through the
nftables `queue` expression, which the kernel lacks; Calico's Felix needs its
github.com/projectcalico/api module, which the module proxy does not serve; Cilium and Antrea
need an eBPF toolchain or Open vSwitch. kube-router polices with iptables (here iptables-nft)
and ipsets, which both work.

Only its network-policy controller runs (`--run-firewall`): the published advisories against
v2.1.0 concern its router (GoBGP's unauthenticated gRPC port) and its service proxy, and
kube-proxy already serves Services.

kube-router polices the pods of one node, found by that node's InternalIP (the pods'
status.hostIP), in the network namespace it runs in, and on each sync rewrites the filter
table's KUBE-* chains that it did not make itself: so one instance per network namespace,
named after the node whose pods must be policed.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from medmec import processes
from medmec.localcluster import binaries

START_TIMEOUT = 60.0
# the chain kube-router hooks into FORWARD once its first sync is done
FORWARD_CHAIN = "KUBE-ROUTER-FORWARD"


def in_netns(netns: str | None, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def kube_router_argv(binary: Path, kubeconfig: Path, node: str, service_cidr: str,
                     sync_period: str = "30s") -> list[str]:
    """kube-router with its firewall only, for `node`'s pods."""
    return [
        str(binary), "--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
        f"--kubeconfig={kubeconfig}", f"--hostname-override={node}",
        # traffic to ClusterIPs is left to kube-proxy's rules
        f"--service-cluster-ip-range={service_cidr}",
        # no listening ports: no health or metrics server inside the node namespace
        "--health-port=0", "--metrics-port=0",
        "--enable-ipv4=true", "--enable-ipv6=false",
        # a full resync also repairs chains that something else changed
        f"--iptables-sync-period={sync_period}", "--v=1",
    ]


def programmed(netns: str | None) -> bool:
    """Whether kube-router's FORWARD hook exists in `netns` (its first sync is done)."""
    rules = subprocess.run(in_netns(netns, ["iptables", "-t", "filter", "-S", "FORWARD"]),
                           capture_output=True, text=True)
    return rules.returncode == 0 and f"-j {FORWARD_CHAIN}" in rules.stdout


def start(folder: Path, kubeconfig: Path, node: str, service_cidr: str,
          netns: str | None = None, timeout: float = START_TIMEOUT) -> processes.Proc:
    """Start kube-router's firewall in `netns` for `node`'s pods; returns once its rules are in.

    `kubeconfig` needs get/list/watch on nodes, namespaces, pods and networkpolicies.
    """
    binaries.ensure(["kube-router"])
    argv = in_netns(netns, kube_router_argv(binaries.binary("kube-router"), kubeconfig, node,
                                            service_cidr))
    proc = processes.start("kube-router", argv, folder / "logs" / "kube-router.log")
    try:
        processes.wait_ready(proc, lambda: programmed(netns), timeout,
                             what="programming its iptables chains")
    except processes.ProcessError:
        proc.stop()
        raise
    return proc
