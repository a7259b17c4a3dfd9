"""Operator fixtures: the CRDs installed once, and `medmec operator run` as a real process
against the session's cluster (restartable, for the crash tests)."""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from medmec import waiting
from medmec.operator import devtools

# How long the tests wait for the operator to converge, unless a test says otherwise.
# Generous: on a busy machine (the demo running beside the suite) the operator takes far
# longer than alone, and a wait ends as soon as its condition holds.
CONVERGE_SECONDS = 180.0


def wait_for(predicate, timeout: float = CONVERGE_SECONDS, what: str = "condition",
             interval: float = 0.5, explain=None):
    """medmec.waiting.wait_for with the operator tests' deadline."""
    return waiting.wait_for(predicate, timeout, what, interval, explain)


class OperatorProcess:
    def __init__(self, kubeconfig: str, logs: Path):
        self.kubeconfig, self.logs, self.starts = kubeconfig, logs, 0
        self.proc = None

    def start(self):
        self.starts += 1
        self.proc = devtools.start_operator(self.kubeconfig, self.logs / f"operator-{self.starts}.log")

    def kill(self):
        """SIGKILL, as a crash would: no clean-up runs."""
        import os
        import signal
        if self.proc and self.proc.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            while self.proc.alive():
                time.sleep(0.05)

    def stop(self):
        if self.proc:
            self.proc.stop()


@pytest.fixture(scope="session")
def operator(cluster, tmp_path_factory):
    devtools.install(cluster.kubeconfig)
    op = OperatorProcess(cluster.kubeconfig, tmp_path_factory.mktemp("operator"))
    op.start()
    yield op
    op.stop()


@pytest.fixture
def namespace(cluster):
    """A fresh namespace, deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def apply(cluster, *objects: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                         "items": list(objects)}))


def get(cluster, kind: str, name: str, namespace: str | None = None) -> dict | None:
    args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
    proc = cluster.kubectl(*args, check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def condition(obj: dict | None, type_: str) -> dict:
    for cond in (obj or {}).get("status", {}).get("conditions") or []:
        if cond["type"] == type_:
            return cond
    return {}


def base_station(name: str, zone: str, uplink: int = 1000, downlink: int = 1000) -> dict:
    return {"apiVersion": "medmec.io/v1alpha1", "kind": "BaseStation", "metadata": {"name": name},
            "spec": {"gnbId": abs(hash(name)) % 100000, "zone": zone, "uplinkMbps": uplink,
                     "downlinkMbps": downlink}}


def medical_slice(name: str, namespace: str, stations: list[str], mbps: int = 10,
                  priority: str = "standard", gpus: int = 8) -> dict:
    return {"apiVersion": "medmec.io/v1alpha1", "kind": "MedicalSlice",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"sliceType": "eMBB", "baseStations": stations, "priority": priority,
                     "qos": {"uplinkMbps": mbps, "downlinkMbps": mbps, "networkLatencyMs": 50,
                             "endToEndLatencyMs": 200, "jitterMs": 20},
                     "resources": {"gpus": gpus, "cpu": "64", "memory": "256Gi"}}}


def inference_service(name: str, namespace: str, slice_name: str, replicas: int = 1,
                      gpus: int = 1) -> dict:
    return {"apiVersion": "medmec.io/v1alpha1", "kind": "EdgeInferenceService",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"sliceRef": {"name": slice_name},
                     "model": {"name": "breast-cancer", "version": "1",
                               "storageUri": "s3://models/breast-cancer/1", "sha256": "a" * 64},
                     "gpu": {"count": gpus},
                     "resources": {"cpu": "1", "memory": "1Gi"},
                     "scaling": {"minReplicas": replicas, "maxReplicas": replicas}}}
