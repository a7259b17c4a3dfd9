"""The topology file: validation with messages that name the field, and the Nodes it renders."""
from __future__ import annotations

import pytest
import yaml

from medmec.localcluster import topology


def write(tmp_path, text):
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    return path


def test_default_topology_has_three_base_stations_with_two_gpu_nodes_and_one_cpu_node_each():
    topo = topology.load()
    sites = [z for z in topo.zones if z.base_station]
    assert len(sites) == 3
    assert any(z.base_station is None for z in topo.zones)  # the cloud zone
    for zone in sites:
        nodes = [n for n in topo.nodes() if n["metadata"]["labels"][topology.ZONE_LABEL] == zone.zone]
        gpu = [n for n in nodes if topology.GPU_RESOURCE in n["status"]["capacity"]]
        assert len(gpu) == 2 and len(nodes) == 3


def test_gpu_node_manifest_carries_zone_base_station_gpu_capacity_product_and_taint():
    topo = topology.Topology.model_validate({"zones": [{
        "zone": "mec-a", "baseStation": "gnb-a",
        "nodePools": [{"name": "gpu", "count": 2, "cpu": "32", "memory": "256Gi",
                       "gpu": {"count": 4, "product": "NVIDIA-L4"}}]}]})
    nodes = topo.nodes()
    assert [n["metadata"]["name"] for n in nodes] == ["mec-a-gpu-1", "mec-a-gpu-2"]
    node = nodes[0]
    labels = node["metadata"]["labels"]
    assert labels[topology.ZONE_LABEL] == "mec-a"
    assert labels[topology.BASE_STATION_LABEL] == "gnb-a"
    assert labels[topology.GPU_PRODUCT_LABEL] == "NVIDIA-L4"
    assert node["status"]["allocatable"][topology.GPU_RESOURCE] == "4"
    assert node["spec"]["taints"] == [topology.GPU_TAINT]
    assert node["metadata"]["annotations"][topology.KWOK_ANNOTATION] == "fake"


def test_cpu_node_in_a_zone_without_base_station_has_no_gpu_or_base_station_label():
    topo = topology.Topology.model_validate({"zones": [{
        "zone": "cloud", "nodePools": [{"name": "cpu", "count": 1, "cpu": "8", "memory": "32Gi"}]}]})
    node = topo.nodes()[0]
    assert topology.BASE_STATION_LABEL not in node["metadata"]["labels"]
    assert topology.GPU_RESOURCE not in node["status"]["capacity"]
    assert node["spec"]["taints"] == []


@pytest.mark.parametrize("text, names", [
    ("zones: [", "not valid YAML"),
    ("zones: []", "zones"),
    ("zones: [{zone: Bad_Zone, nodePools: [{name: a, count: 1, cpu: '1', memory: 1Gi}]}]",
     "zones.0.zone"),
    ("zones: [{zone: a, nodePools: [{name: a, count: 0, cpu: '1', memory: 1Gi}]}]",
     "zones.0.nodePools.0.count"),
    ("zones: [{zone: a, nodePools: [{name: a, count: 1, cpu: lots, memory: 1Gi}]}]",
     "zones.0.nodePools.0.cpu"),
    ("zones: [{zone: a, nodePools: [{name: a, count: 1, cpu: '1', memory: 1Gi, gpu: {count: -1, product: x}}]}]",
     "zones.0.nodePools.0.gpu.count"),
    ("zones: [{zone: a, colour: red, nodePools: [{name: a, count: 1, cpu: '1', memory: 1Gi}]}]",
     "zones.0.colour"),
    ("zones: [{zone: a, nodePools: [{name: a, count: 1, cpu: '1', memory: 1Gi}]},"
     " {zone: a, nodePools: [{name: b, count: 1, cpu: '1', memory: 1Gi}]}]", "repeated: ['a']"),
])
def test_broken_topology_is_refused_with_a_message_naming_file_and_field(tmp_path, text, names):
    path = write(tmp_path, text)
    with pytest.raises(topology.TopologyError) as err:
        topology.load(path)
    assert str(path) in str(err.value)
    assert names in str(err.value)


def test_missing_topology_file_is_named(tmp_path):
    with pytest.raises(topology.TopologyError, match="cannot read topology file .*nope.yaml"):
        topology.load(tmp_path / "nope.yaml")


def test_default_topology_has_one_real_node_per_base_station_and_taints_the_simulated_ones():
    topo = topology.load()
    real = topo.real_nodes()
    assert sorted(n.labels[topology.BASE_STATION_LABEL] for n in real) == [
        "gnb-east", "gnb-north", "gnb-south"]
    assert [n.index for n in real] == [0, 1, 2]
    for node in real:
        assert node.taints == []  # it runs its site's pods, GPU or not
        assert node.gpus == 1 and node.labels[topology.SIMULATED_GPU_LABEL] == "true"
        assert node.labels[topology.NODE_KIND_LABEL] == "real"
    for node in topo.nodes():
        assert {"key": "medmec.io/simulated", "value": "true", "effect": "NoSchedule"} in \
            node["spec"]["taints"]
        assert node["metadata"]["labels"][topology.NODE_KIND_LABEL] == "kwok"
    kwok_only = topology.load(topology.KWOK_ONLY)
    assert kwok_only.real_nodes() == []
    assert len(kwok_only.nodes()) == len(topo.nodes())


@pytest.mark.parametrize("pool, message", [
    ({"name": "r", "kind": "real", "count": 1, "cpu": "4"}, "a real pool's cpu is the machine's"),
    ({"name": "r", "kind": "real", "count": 9}, "a real pool has at most 8 nodes"),
    ({"name": "k", "count": 1, "cpu": "4"}, "a kwok pool needs memory"),
    ({"name": "k", "kind": "vm", "count": 1}, "Input should be 'kwok' or 'real'"),
])
def test_a_bad_pool_is_refused_with_the_field_named(tmp_path, pool, message):
    path = write(tmp_path, yaml.safe_dump({"zones": [{"zone": "a", "nodePools": [pool]}]}))
    with pytest.raises(topology.TopologyError, match=f"zones.0.nodePools.0.*{message}"):
        topology.load(path)


@pytest.mark.parametrize("network, message", [
    ({"range": "8.8.0.0/16"}, "must be a private range"),
    ({"range": "10.1.0.0/24"}, "at least one /16"),
    ({"range": "10.1.0.0/12"}, "not a valid IPv4 network"),
])
def test_a_network_range_that_could_leave_the_machine_or_is_too_small_is_refused(
        tmp_path, network, message):
    path = write(tmp_path, yaml.safe_dump({"network": network, "zones": [
        {"zone": "a", "nodePools": [{"name": "k", "count": 1, "cpu": "1", "memory": "1Gi"}]}]}))
    with pytest.raises(topology.TopologyError, match=message):
        topology.load(path)
