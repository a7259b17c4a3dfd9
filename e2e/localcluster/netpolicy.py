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

The limit: kube-router polices the pods of one node, those whose status.hostIP is that
node's InternalIP, and each sync deletes the KUBE-POD-FW-*/KUBE-NWPLCY-* chains and policy
ipsets it did not make. So one instance per network namespace: with all real nodes in one
namespace, only the named node's pods are policed (a second instance for another node
undoes the first one's rules: a connection that policy forbids got through 24 times in 40).
Its rules match pod addresses in FORWARD and OUTPUT, routed or bridged, so a policed pod is
protected whichever node the packet comes from.
"""
from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from medmec import processes
from medmec.localcluster import binaries

START_TIMEOUT = 60.0
# a full resync also repairs rules that something else changed
SYNC_PERIOD = "30s"
# the chain kube-router hooks into FORWARD once its first sync is done
FORWARD_CHAIN = "KUBE-ROUTER-FORWARD"


def kube_router_argv(binary: Path, kubeconfig: Path, node: str, service_cidr: str) -> list[str]:
    """kube-router with its firewall only, for `node`'s pods."""
    return [
        str(binary), "--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
        f"--kubeconfig={kubeconfig}", f"--hostname-override={node}",
        # pods' traffic to Service addresses is accepted (kube-proxy's rules handle it)
        f"--service-cluster-ip-range={service_cidr}",
        # no listening ports: no health or metrics server inside the node namespace
        "--health-port=0", "--metrics-port=0",
        "--enable-ipv4=true", "--enable-ipv6=false",  # the clusters are IPv4 only
        f"--iptables-sync-period={SYNC_PERIOD}", "--v=1",
    ]


def programmed(enter: Sequence[str]) -> bool:
    """Whether kube-router's FORWARD hook exists in the namespace (its first sync is done)."""
    rules = subprocess.run([*enter, "iptables", "-t", "filter", "-S", "FORWARD"],
                           capture_output=True, text=True)
    return rules.returncode == 0 and f"-j {FORWARD_CHAIN}" in rules.stdout


def start(folder: Path, enter: Sequence[str], kubeconfig: Path, node: str, service_cidr: str,
          timeout: float = START_TIMEOUT) -> processes.Proc:
    """Start kube-router's firewall for `node`'s pods; returns once its rules are in.

    `enter` is the command prefix that runs a program in the nodes' network namespace
    (network.nsenter(plan)); `kubeconfig` needs get/list/watch on nodes, namespaces, pods
    and networkpolicies, and a server address reachable from that namespace.
    """
    binaries.ensure(["kube-router"])
    argv = [*enter, *kube_router_argv(binaries.binary("kube-router"), kubeconfig, node,
                                      service_cidr)]
    proc = processes.start("kube-router", argv, folder / "logs" / "kube-router.log")
    try:
        processes.wait_ready(proc, lambda: programmed(enter), timeout,
                             what="programming its iptables chains")
    except processes.ProcessError:
        proc.stop()
        raise
    return proc
