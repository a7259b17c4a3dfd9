"""The local cluster's topology: zones (one per 5G base station, plus e.g. a cloud zone),
the nodes in each (real kubelets or simulated KWOK nodes) and the address range every
cluster address comes from, read from a YAML file.

KWOK pools are rendered into Node objects here; real pools into the facts a kubelet
registers its node with (real_nodes()); their configs are rendered in nodeconfig.py.
"""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT = Path(__file__).with_name("topology.yaml")
ZONE_LABEL = "topology.kubernetes.io/zone"
BASE_STATION_LABEL = "medmec.io/base-station"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
# KWOK manages the nodes that carry this annotation and leaves all others alone
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
# says plainly on a real node that its GPUs are advertised, not present, on this machine
SIMULATED_GPU_LABEL = "medmec.io/gpu-simulated"
NODE_KIND_LABEL = "medmec.io/node-kind"  # real | kwok
KWOK_ONLY = Path(__file__).with_name("topology-kwok.yaml")

DnsLabel = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
Quantity = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")]


class TopologyError(ValueError):
    """The topology file is missing or invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Gpu(_Strict):
    count: int = Field(gt=0)
    product: str = Field(min_length=1)


class Taint(_Strict):
    key: str = Field(min_length=1)
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class NodePool(_Strict):
    name: DnsLabel
    # real: a kubelet with its own containerd runs pods of the medmec image; kwok: a
    # simulated node (pods turn Running with no container), for scale
    kind: Literal["kwok", "real"] = "kwok"
    count: int = Field(ge=1, le=1000)
    # a KWOK node's capacity; a real node reports the machine's own
    cpu: Quantity | None = None
    memory: Quantity | None = None
    pods: int = Field(default=110, ge=1)
    gpu: Gpu | None = None
    # None: the default, the GPU taint on a pool with GPUs
    taints: list[Taint] | None = None

    @model_validator(mode="after")
    def _capacity(self) -> "NodePool":
        if self.kind == "kwok":
            missing = [f for f in ("cpu", "memory") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"a kwok pool needs {' and '.join(missing)}")
        else:
            given = [f for f in ("cpu", "memory") if getattr(self, f) is not None]
            if given:
                raise ValueError(f"a real pool's {' and '.join(given)} is the machine's: "
                                 "remove it")
            if self.count > MAX_REAL_PER_POOL:
                raise ValueError(f"a real pool has at most {MAX_REAL_PER_POOL} nodes")
        return self

    def node_taints(self) -> list[dict]:
        if self.taints is None:
            return [dict(GPU_TAINT)] if self.gpu else []
        return [t.model_dump(exclude_defaults=False) for t in self.taints]


MAX_REAL_PER_POOL = 8
MAX_REAL_NODES = 16  # each takes a /24 of pod addresses in the cluster's /16


class Zone(_Strict):
    zone: DnsLabel
    base_station: DnsLabel | None = Field(default=None, alias="baseStation")
    node_pools: list[NodePool] = Field(alias="nodePools", min_length=1)


class Network(_Strict):
    # Every address of a cluster (its link to the host, node, pod, Service and DNS
    # addresses) comes from one /16 of this range; each cluster running on the host takes
    # its own /16 (its slot), so two clusters never collide.
    range: ipaddress.IPv4Network = ipaddress.IPv4Network("10.240.0.0/12")

    @model_validator(mode="after")
    def _size(self) -> "Network":
        if self.range.prefixlen > 16:
            raise ValueError("range must hold at least one /16 (a prefix of /16 or shorter)")
        if not self.range.is_private:
            raise ValueError("range must be a private range: cluster addresses never leave "
                             "this machine")
        return self

    def slots(self) -> int:
        return 2 ** (16 - self.range.prefixlen)


class RealNode(BaseModel):
    """What a real node registers with: its name, labels, taints and simulated GPUs."""
    name: str
    index: int  # 0-based among the topology's real nodes: its addresses derive from it
    labels: dict[str, str]
    taints: list[dict]
    gpus: int


class Topology(_Strict):
    network: Network = Network()
    zones: list[Zone] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "Topology":
        for what, names in (("zone", [z.zone for z in self.zones]),
                            ("baseStation", [z.base_station for z in self.zones if z.base_station])):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"{what} names must be unique; repeated: {sorted(dup)}")
        real = sum(p.count for z in self.zones for p in z.node_pools if p.kind == "real")
        if real > MAX_REAL_NODES:
            raise ValueError(f"at most {MAX_REAL_NODES} real nodes; the topology has {real}")
        return self

    def nodes(self) -> list[dict]:
        """The Node objects of every KWOK pool, ready to create (status included)."""
        return [node_manifest(zone, pool, i)
                for zone in self.zones for pool in zone.node_pools if pool.kind == "kwok"
                for i in range(1, pool.count + 1)]

    def real_nodes(self) -> list[RealNode]:
        found = []
        for zone in self.zones:
            for pool in zone.node_pools:
                if pool.kind != "real":
                    continue
                for i in range(1, pool.count + 1):
                    labels = {**_site_labels(zone, pool), NODE_KIND_LABEL: "real"}
                    if pool.gpu:
                        labels[SIMULATED_GPU_LABEL] = "true"
                    found.append(RealNode(name=f"{zone.zone}-{pool.name}-{i}", index=len(found),
                                          labels=labels, taints=pool.node_taints(),
                                          gpus=pool.gpu.count if pool.gpu else 0))
        return found


def load(path: str | Path | None = None) -> Topology:
    path = Path(path) if path else DEFAULT
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise TopologyError(f"cannot read topology file {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise TopologyError(f"topology file {path} is not valid YAML: {err}") from err
    try:
        return Topology.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in err.errors())
        raise TopologyError(f"topology file {path} is invalid: {problems}") from err


def _site_labels(zone: Zone, pool: NodePool) -> dict[str, str]:
    """Labels a node of `pool` carries whatever its kind: its site and its GPUs."""
    labels = {ZONE_LABEL: zone.zone}
    if zone.base_station:
        labels[BASE_STATION_LABEL] = zone.base_station
    if pool.gpu:
        labels[GPU_PRODUCT_LABEL] = pool.gpu.product
        labels[GPU_COUNT_LABEL] = str(pool.gpu.count)
    return labels


def node_manifest(zone: Zone, pool: NodePool, index: int) -> dict:
    name = f"{zone.zone}-{pool.name}-{index}"
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        NODE_KIND_LABEL: "kwok",
        **_site_labels(zone, pool),
    }
    capacity = {"cpu": pool.cpu, "memory": pool.memory, "pods": str(pool.pods)}
    if pool.gpu:
        capacity[GPU_RESOURCE] = str(pool.gpu.count)
    taints = pool.node_taints()
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {KWOK_ANNOTATION: "fake",
                                     "node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"taints": taints},
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }
