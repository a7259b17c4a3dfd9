"""Where every address and host-level name of one local cluster comes from (pure).

A cluster running on this host owns one slot: a /16 of the topology's network range and
the names derived from the slot number (its network namespace, its host-side veth, its
nftables table, its cgroup root). Two clusters hold different slots, so nothing collides.

Inside a slot's /16:
  x.x.0.0/24     the link between the host and the cluster's network namespace: the host
                 end (.1, where the API server listens), the namespace end (.2), the cluster
                 DNS server (.10) and one address per real node (.11 onwards)
  x.x.64.0/18    pod addresses of the real nodes, one /24 per node
  x.x.128.0/20   Service ClusterIPs (the first is the `kubernetes` Service)
  x.x.192.0/18   pod addresses KWOK hands out on simulated nodes (never routed)
"""
from __future__ import annotations

import dataclasses
import ipaddress

LINK_OFFSET = 0
POD_OFFSET = 64
SERVICE_OFFSET = 128
KWOK_OFFSET = 192
FIRST_NODE_HOST = 11


@dataclasses.dataclass(frozen=True)
class Plan:
    slot: int
    block: ipaddress.IPv4Network  # the slot's /16

    def _net(self, third_octet: int, prefix: int) -> ipaddress.IPv4Network:
        base = int(self.block.network_address) + (third_octet << 8)
        return ipaddress.IPv4Network((base, prefix))

    @property
    def link(self) -> ipaddress.IPv4Network:
        return self._net(LINK_OFFSET, 24)

    @property
    def host_ip(self) -> str:
        return str(self.link.network_address + 1)

    @property
    def netns_ip(self) -> str:
        return str(self.link.network_address + 2)

    @property
    def dns_ip(self) -> str:
        return str(self.link.network_address + 10)

    def node_ip(self, index: int) -> str:
        return str(self.link.network_address + FIRST_NODE_HOST + index)

    @property
    def pod_range(self) -> ipaddress.IPv4Network:
        return self._net(POD_OFFSET, 18)

    def pod_cidr(self, index: int) -> ipaddress.IPv4Network:
        return self._net(POD_OFFSET + index, 24)

    @property
    def service_cidr(self) -> ipaddress.IPv4Network:
        return self._net(SERVICE_OFFSET, 20)

    @property
    def kubernetes_service_ip(self) -> str:
        return str(self.service_cidr.network_address + 1)

    @property
    def kwok_pod_cidr(self) -> ipaddress.IPv4Network:
        return self._net(KWOK_OFFSET, 18)

    # names on the host: short (interface names have at most 15 characters) and per slot
    @property
    def netns(self) -> str:
        return f"medmec-{self.slot}"

    @property
    def host_link(self) -> str:
        return f"medmec{self.slot}"

    @property
    def nft_table(self) -> str:
        return f"medmec_{self.slot}"

    @property
    def cgroup_root(self) -> str:
        return f"/medmec-{self.slot}"

    @property
    def run_dir(self) -> str:
        """Short paths for sockets (a unix socket path has at most 107 bytes)."""
        return f"/run/medmec/{self.slot}"


def plan(network_range: ipaddress.IPv4Network, slot: int) -> Plan:
    blocks = 2 ** (16 - network_range.prefixlen)
    if not 0 <= slot < blocks:
        raise ValueError(f"slot {slot} is outside {network_range} ({blocks} slots of /16)")
    base = int(network_range.network_address) + (slot << 16)
    return Plan(slot=slot, block=ipaddress.IPv4Network((base, 16)))


def sweep(plan: Plan) -> list[dict]:
    """The host changes named after a slot, as ledger entries in the order they are made:
    what `up` undoes for a dead cluster whose own ledger is gone with its folder."""
    return [{"kind": "nft-table", "family": "inet", "name": plan.nft_table},
            {"kind": "netns", "name": plan.netns},
            {"kind": "link", "name": plan.host_link},
            {"kind": "route", "dst": str(plan.block)},
            {"kind": "dir", "path": plan.run_dir},
            {"kind": "mounts", "path": plan.run_dir},
            {"kind": "cgroup", "path": plan.cgroup_root},
            {"kind": "processes", "marker": plan.run_dir + "/"}]
