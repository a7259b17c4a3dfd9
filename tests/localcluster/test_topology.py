"""The topology file: validation with messages that name the field, and the Nodes it renders."""
from __future__ import annotations

import pytest

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
