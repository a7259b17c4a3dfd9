"""The end-to-end tests' clusters.

`cluster`: one Kubernetes control plane for the tests of what the control plane decides
(schemas, scheduling, the operator's children): with KUBECONFIG set, that cluster (kind,
k3d, a real edge cluster) and nothing is started; otherwise a local cluster of simulated
(KWOK) nodes, brought up in a temporary state folder for the session and torn down after.

`real_cluster`: a local cluster with the default topology's real nodes (kubelet,
containerd, the medmec image), for what a pod does (probes, volumes, restarts, DNS,
Services); with KUBECONFIG set, that cluster, whose nodes are taken to be real.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from medmec.localcluster import binaries, cluster as localcluster, topology


@dataclasses.dataclass
class ClusterHandle:
    kubeconfig: str
    local: bool
    state: localcluster.State | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": self.kubeconfig}

    @property
    def api(self):
        from kubernetes import config
        return config.new_client_from_config(self.kubeconfig)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True
                ) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(kubectl_binary()), "--kubeconfig", self.kubeconfig, *args],
                              input=input, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stderr}{proc.stdout}")
        return proc


def kubectl_binary() -> Path:
    binaries.ensure(["kubernetes"])
    return binaries.binary("kubectl")


def _local(prefix: str, topology_file: str | None):
    """A local cluster for the session in a temporary folder, down after it."""
    folder = Path(tempfile.mkdtemp(prefix=prefix)) / "cluster"
    state = localcluster.up(folder, topology_file)
    try:
        yield ClusterHandle(kubeconfig=str(state.kubeconfig), local=True, state=state)
    finally:
        localcluster.down(folder)


@pytest.fixture(scope="session")
def cluster():
    existing = os.environ.get("KUBECONFIG")
    if existing:
        yield ClusterHandle(kubeconfig=existing, local=False)
        return
    yield from _local("medmec-e2e-", str(topology.KWOK_ONLY))


@pytest.fixture(scope="session")
def real_cluster():
    existing = os.environ.get("KUBECONFIG")
    if existing:
        yield ClusterHandle(kubeconfig=existing, local=False)
        return
    yield from _local("medmec-e2e-real-", None)
