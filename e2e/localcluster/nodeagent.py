"""The local cluster's node agent: what a device plugin and a local-volume provisioner would
do on a real cluster, for the real nodes on this machine.

- GPUs: each real node advertises the `nvidia.com/gpu` count of its pool by a patch of its
  node status (the documented way to advertise an extended resource). A kubelet zeroes
  extended resources it does not know when it (re)registers, so the agent re-applies it.
  NVIDIA's device plugin cannot be used here: its socket path is fixed, and several
  kubelets share this machine.
- Local volumes: a released local PersistentVolume is wiped and made Available again,
  as the local static provisioner does.

Runs as one process per cluster, started and stopped with it.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from medmec.localcluster import realnodes, topology

INTERVAL = 2.0


def gpu_patches(real_nodes: list[topology.RealNode], nodes: list) -> dict[str, dict]:
    """{node name: status patch} for the real nodes whose GPU capacity is not as wanted."""
    found = {n.metadata.name: n for n in nodes}
    patches = {}
    for want in real_nodes:
        node = found.get(want.name)
        if node is None or not want.gpus:
            continue
        if (node.status.capacity or {}).get(topology.GPU_RESOURCE) != str(want.gpus):
            patches[want.name] = {"status": {"capacity": {topology.GPU_RESOURCE: str(want.gpus)}}}
    return patches


def released_volumes(volumes: list) -> list:
    """The local volumes of the real nodes that a deleted claim left behind."""
    return [v for v in volumes
            if (v.metadata.labels or {}).get("medmec.io/local-volume-of")
            and v.status.phase in ("Released", "Failed")]


def reconcile(core, folder: Path, real_nodes: list[topology.RealNode]) -> None:
    for name, patch in gpu_patches(real_nodes, core.list_node().items).items():
        core.patch_node_status(name, patch)
    for volume in released_volumes(core.list_persistent_volume().items):
        node = volume.metadata.labels["medmec.io/local-volume-of"]
        index = int(volume.metadata.name.rsplit("-", 1)[1])
        path = Path(volume.spec.local.path)
        core.delete_persistent_volume(volume.metadata.name)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        _wait_gone(core, volume.metadata.name)
        core.create_persistent_volume(realnodes.local_volume(folder, node, index))


def _wait_gone(core, name: str, timeout: float = 30.0) -> None:
    from kubernetes.client.rest import ApiException
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_persistent_volume(name)
        except ApiException as err:
            if err.status == 404:
                return
            raise
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medmec.localcluster.nodeagent")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--topology", required=True)
    parser.add_argument("--folder", required=True)
    args = parser.parse_args(argv)
    from kubernetes import client, config
    core = client.CoreV1Api(config.new_client_from_config(args.kubeconfig))
    real_nodes = topology.load(args.topology).real_nodes()
    while True:
        try:
            reconcile(core, Path(args.folder), real_nodes)
        except Exception as err:  # the API server restarting, a node not yet registered
            print(f"node agent: {err}", file=sys.stderr, flush=True)
        time.sleep(INTERVAL)


if __name__ == "__main__":
    sys.exit(main())
