"""The local cluster's topology: zones (one per 5G base station, plus e.g. a cloud zone)
and the KWOK nodes in each, read from a YAML file and rendered into Node objects."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

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

DnsLabel = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
Quantity = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")]


class TopologyError(ValueError):
    """The topology file is missing or invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Gpu(_Strict):
    count: int = Field(gt=0)
    product: str = Field(min_length=1)


class NodePool(_Strict):
    name: DnsLabel
    count: int = Field(ge=1, le=1000)
    cpu: Quantity
    memory: Quantity
    pods: int = Field(default=110, ge=1)
    gpu: Gpu | None = None


class Zone(_Strict):
    zone: DnsLabel
    base_station: DnsLabel | None = Field(default=None, alias="baseStation")
    node_pools: list[NodePool] = Field(alias="nodePools", min_length=1)


class Topology(_Strict):
    zones: list[Zone] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "Topology":
        for what, names in (("zone", [z.zone for z in self.zones]),
                            ("baseStation", [z.base_station for z in self.zones if z.base_station])):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"{what} names must be unique; repeated: {sorted(dup)}")
        return self

    def nodes(self) -> list[dict]:
        """The Node objects of every pool, ready to create (status included)."""
        return [node_manifest(zone, pool, i)
                for zone in self.zones for pool in zone.node_pools
                for i in range(1, pool.count + 1)]


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


def node_manifest(zone: Zone, pool: NodePool, index: int) -> dict:
    name = f"{zone.zone}-{pool.name}-{index}"
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        ZONE_LABEL: zone.zone,
    }
    if zone.base_station:
        labels[BASE_STATION_LABEL] = zone.base_station
    capacity = {"cpu": pool.cpu, "memory": pool.memory, "pods": str(pool.pods)}
    taints = []
    if pool.gpu:
        labels[GPU_PRODUCT_LABEL] = pool.gpu.product
        labels[GPU_COUNT_LABEL] = str(pool.gpu.count)
        capacity[GPU_RESOURCE] = str(pool.gpu.count)
        taints.append(dict(GPU_TAINT))
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {KWOK_ANNOTATION: "fake",
                                     "node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"taints": taints},
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }
