"""The cluster's network on the host: its network namespace, the veth that links it to the
host, the one route to its /16, and the guard that keeps its addresses on this machine.

The real nodes' kubelets, containerds, kube-proxy and CoreDNS run inside the namespace
(network only: they share the host's filesystem and mounts), so their bridges, pod veths,
nftables rules and network sysctls are the namespace's and vanish with it. Every change is
recorded in the cluster's ledger before it is made.
"""
from __future__ import annotations

from medmec.localcluster.addressing import Plan
from medmec.localcluster.ledger import Ledger, run_checked


def nsenter(plan: Plan) -> list[str]:
    """The command prefix that runs a program in the cluster's network namespace."""
    return ["nsenter", f"--net=/run/netns/{plan.netns}", "--"]


def guard_ruleset(plan: Plan) -> str:
    """nftables rules that drop any packet of the cluster's range that would use another
    interface than the cluster's own link (or loopback): its addresses never leave."""
    block, link, table = plan.block, plan.host_link, plan.nft_table
    ours = f'{{ "{link}", "lo" }}'
    return f"""table inet {table} {{
    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        ip saddr {block} oifname != "{link}" drop
        ip daddr {block} oifname != "{link}" drop
    }}
    chain output {{
        type filter hook output priority filter - 10; policy accept;
        ip saddr {block} oifname != {ours} drop
        ip daddr {block} oifname != {ours} drop
    }}
}}
"""


def guard(plan: Plan, ledger: Ledger) -> None:
    ledger.record("nft-table", family="inet", name=plan.nft_table)
    run_checked(["nft", "-f", "-"], input=guard_ruleset(plan))


def create(plan: Plan, ledger: Ledger, node_count: int) -> None:
    """The namespace with the node, DNS and host-link addresses, routed from the host."""
    ns, link = plan.netns, plan.host_link
    in_ns = ["ip", "-n", ns]
    ledger.run("netns", ["ip", "netns", "add", ns], name=ns)
    ledger.run("link", ["ip", "link", "add", link, "type", "veth", "peer", "name", "eth0",
                        "netns", ns], name=link)
    run_checked(["ip", "addr", "add", f"{plan.host_ip}/{plan.link.prefixlen}", "dev", link])
    run_checked(["ip", "link", "set", link, "up"])
    for ip in [plan.netns_ip, plan.dns_ip, *(plan.node_ip(i) for i in range(node_count))]:
        run_checked([*in_ns, "addr", "add", f"{ip}/{plan.link.prefixlen}", "dev", "eth0"])
    run_checked([*in_ns, "link", "set", "lo", "up"])
    run_checked([*in_ns, "link", "set", "eth0", "up"])
    # routing between the nodes' bridges and the host link, inside the namespace only;
    # the namespace has no default route, so nothing leaves it but towards the host
    run_checked(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
    ledger.run("route", ["ip", "route", "add", str(plan.block), "via", plan.netns_ip, "dev", link],
               dst=str(plan.block))
