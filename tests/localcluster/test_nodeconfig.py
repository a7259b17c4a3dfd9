"""The real nodes' configs and the cluster's addresses, rendered as data (nothing started)."""
from __future__ import annotations

import ipaddress
import tomllib

import pytest

from medmec.localcluster import addressing, network, nodeconfig, topology

RANGE = ipaddress.IPv4Network("10.240.0.0/12")


@pytest.fixture
def plan():
    return addressing.plan(RANGE, 3)


@pytest.fixture
def nodes():
    return topology.load().real_nodes()


def test_each_slot_has_its_own_block_names_and_run_folder():
    a, b = addressing.plan(RANGE, 0), addressing.plan(RANGE, 1)
    assert (str(a.block), str(b.block)) == ("10.240.0.0/16", "10.241.0.0/16")
    assert not a.block.overlaps(b.block)
    assert {a.netns, a.host_link, a.nft_table, a.cgroup_root, a.run_dir}.isdisjoint(
        {b.netns, b.host_link, b.nft_table, b.cgroup_root, b.run_dir})
    assert len(a.host_link) <= 15  # a Linux interface name
    with pytest.raises(ValueError, match="outside 10.240.0.0/12"):
        addressing.plan(RANGE, 16)


def test_every_address_of_a_cluster_lies_in_its_block_and_the_ranges_do_not_overlap(plan):
    ranges = [plan.link, plan.pod_range, plan.service_cidr, plan.kwok_pod_cidr]
    for net in ranges:
        assert net.subnet_of(plan.block)
    for i, net in enumerate(ranges):
        for other in ranges[i + 1:]:
            assert not net.overlaps(other)
    ips = [plan.host_ip, plan.netns_ip, plan.dns_ip, plan.node_ip(0), plan.node_ip(15)]
    assert len(set(ips)) == len(ips)
    assert all(ipaddress.ip_address(ip) in plan.link for ip in ips)
    assert plan.pod_cidr(0) != plan.pod_cidr(1)
    assert all(plan.pod_cidr(i).subnet_of(plan.pod_range) for i in range(topology.MAX_REAL_NODES))
    assert ipaddress.ip_address(plan.kubernetes_service_ip) in plan.service_cidr


def test_cni_config_is_a_routed_bridge_per_node_with_its_own_pod_range(plan, nodes, tmp_path):
    seen = set()
    for node in nodes:
        paths = nodeconfig.NodePaths.of(tmp_path, plan, node)
        conf = nodeconfig.cni_conflist(plan, node, paths)
        bridge, portmap = conf["plugins"]
        assert bridge["type"] == "bridge" and portmap["type"] == "portmap"
        assert bridge["ipMasq"] is False  # pods are routed, never masqueraded off the machine
        assert bridge["hairpinMode"] is True
        subnet = bridge["ipam"]["ranges"][0][0]["subnet"]
        assert subnet == str(plan.pod_cidr(node.index))
        assert bridge["ipam"]["dataDir"].startswith(str(tmp_path))
        seen.add((bridge["bridge"], subnet))
    assert len(seen) == len(nodes) == 3


def test_containerd_config_is_private_to_its_node(plan, nodes, tmp_path):
    configs = []
    for node in nodes:
        paths = nodeconfig.NodePaths.of(tmp_path, plan, node)
        text = nodeconfig.containerd_toml(plan, paths, "localhost/medmec-pause:abc")
        conf = tomllib.loads(text)
        configs.append(conf)
        assert conf["root"].startswith(str(tmp_path / "nodes" / node.name))
        assert conf["state"].startswith(plan.run_dir)
        assert len(conf["grpc"]["address"]) < 108  # a unix socket path
        assert "io.containerd.nri.v1.nri" in conf["disabled_plugins"]
        runtime = conf["plugins"]["io.containerd.cri.v1.runtime"]
        assert runtime["restrict_oom_score_adj"] is True
        runc = runtime["containerd"]["runtimes"]["runc"]["options"]
        assert runc["BinaryName"] == nodeconfig.RUNC and runc["SystemdCgroup"] is False
        assert runc["ShimCgroup"].startswith(plan.cgroup_root + "/")
        assert runtime["cni"]["conf_dir"] == str(paths.cni_conf_dir)
        images = conf["plugins"]["io.containerd.cri.v1.images"]
        assert images["pinned_images"]["sandbox"] == "localhost/medmec-pause:abc"
    assert len({c["grpc"]["address"] for c in configs}) == 3
    assert len({c["root"] for c in configs}) == 3


def test_kubelet_authenticates_and_authorizes_for_real_on_its_own_address(plan, nodes, tmp_path):
    node = nodes[1]
    paths = nodeconfig.NodePaths.of(tmp_path, plan, node)
    conf = nodeconfig.kubelet_config(plan, node, paths, tmp_path / "pki")
    assert conf["authentication"]["anonymous"]["enabled"] is False
    assert conf["authentication"]["webhook"]["enabled"] is True
    assert conf["authentication"]["x509"]["clientCAFile"] == str(tmp_path / "pki" / "ca.crt")
    assert conf["authorization"]["mode"] == "Webhook"
    assert conf["readOnlyPort"] == 0
    assert conf["address"] == conf["healthzBindAddress"] == plan.node_ip(node.index)
    assert conf["cgroupDriver"] == "cgroupfs" and conf["failCgroupV1"] is False
    assert conf["cgroupRoot"].startswith(plan.cgroup_root + "/")
    assert conf["clusterDNS"] == [plan.dns_ip]
    assert conf["containerRuntimeEndpoint"] == f"unix://{paths.containerd_socket}"
    assert conf["registerWithTaints"] == node.taints
    args = nodeconfig.kubelet_args(plan, node, paths, tmp_path / "k.kubeconfig")
    assert f"--hostname-override={node.name}" in args
    labels = next(a for a in args if a.startswith("--node-labels="))
    assert f"{topology.ZONE_LABEL}=mec-south" in labels
    assert f"{topology.BASE_STATION_LABEL}=gnb-south" in labels
    assert f"{topology.SIMULATED_GPU_LABEL}=true" in labels


def test_kube_proxy_uses_nftables_and_leaves_the_hosts_conntrack_alone(plan, tmp_path):
    conf = nodeconfig.kube_proxy_config(plan, tmp_path / "kp.kubeconfig", "mec-north-edge-1")
    assert conf["mode"] == "nftables"
    assert conf["clusterCIDR"] == str(plan.pod_range)
    assert conf["conntrack"]["maxPerCore"] == 0
    assert conf["conntrack"]["tcpEstablishedTimeout"] == "0s"
    assert conf["oomScoreAdj"] == 0
    assert conf["nodePortAddresses"] == [str(plan.link)]


def test_coredns_serves_cluster_names_only_on_the_dns_address(plan, tmp_path):
    text = nodeconfig.corefile(plan, tmp_path / "dns.kubeconfig")
    assert f"bind {plan.dns_ip}" in text
    assert "kubernetes cluster.local" in text
    assert "forward" not in text  # no upstream: no lookup leaves the machine


def test_guard_drops_the_clusters_range_on_every_other_interface(plan):
    rules = network.guard_ruleset(plan)
    assert f"table inet {plan.nft_table}" in rules
    assert f'ip saddr {plan.block} oifname != "{plan.host_link}" drop' in rules
    assert f'ip daddr {plan.block} oifname != {{ "{plan.host_link}", "lo" }} drop' in rules
    assert "masquerade" not in rules
