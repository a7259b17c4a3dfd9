"""Helpers for `make demo`, the end-to-end tests and the benchmark: install the CRDs, start
the operator as a process, provide volumes on a local cluster, wait for convergence.

    from medmec.operator import devtools
    devtools.install(kubeconfig)                 # CRDs, peering object, local volumes
    proc = devtools.start_operator(kubeconfig, log_path)
    devtools.apply_samples(kubeconfig)           # the sample hospital in crds/samples
    devtools.wait_converged(kubeconfig)          # every medmec resource Ready
"""
from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from importlib import resources
from pathlib import Path

import yaml

from medmec import processes
from medmec.netutil import free_port
from medmec.waiting import wait_for

CRD_DIR = Path(__file__).resolve().parent.parent / "crds"
SAMPLES_DIR = CRD_DIR / "samples"
PLURALS = ("basestations", "medicalslices", "edgeinferenceservices", "carerobotfleets",
           "cloudnursingservices", "emergencytransports")


def kubectl(kubeconfig: str, *args: str, input: str | None = None, check: bool = True
            ) -> subprocess.CompletedProcess:
    from medmec.localcluster import binaries
    binaries.ensure(["kubernetes"])
    proc = subprocess.run([str(binaries.binary("kubectl")), "--kubeconfig", kubeconfig, *args],
                          input=input, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def install(kubeconfig: str, local_volumes: int = 16) -> None:
    """CRDs (medmec and kopf peering), the cluster-wide peering object, and on a cluster
    without a volume provisioner (the local one) some hostPath PersistentVolumes."""
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "--timeout=60s",
            *[f"crd/{p}.medmec.io" for p in PLURALS], "crd/clusterkopfpeerings.kopf.dev")
    from medmec.operator import kube
    kube.use(kubeconfig)
    kube.apply({"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                "metadata": {"name": "medmec"}})
    for i in range(local_volumes):
        kube.apply(local_volume(f"medmec-local-{i}"))


def local_volume(name: str, size: str = "10Gi") -> dict:
    """A hostPath PersistentVolume with no storage class: claims without a class bind to it."""
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "medmec"}},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Delete",
                     "hostPath": {"path": f"/var/lib/medmec-volumes/{name}",
                                  "type": "DirectoryOrCreate"}}}


def start_operator(kubeconfig: str, log: Path, namespaces: list[str] | None = None,
                   liveness_port: int | None = None, extra_env: dict | None = None
                   ) -> processes.Proc:
    """`medmec operator run` as a process; returns once its liveness endpoint answers."""
    port = liveness_port or free_port()
    argv = [sys.executable, "-m", "medmec.cli", "operator", "run",
            "--liveness-host", "127.0.0.1", "--liveness-port", str(port)]
    for ns in namespaces or []:
        argv += ["--namespace", ns]
    env = {**os.environ, "KUBECONFIG": kubeconfig, **(extra_env or {})}
    proc = processes.start("medmec-operator", argv, log, env=env)

    def alive() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as rsp:
            return rsp.status == 200
    processes.wait_ready(proc, alive, timeout=60, what="live")
    return proc


def apply_samples(kubeconfig: str) -> None:
    """The sample hospital, with the dispatcher's sample map as the robot fleet's map."""
    kubectl(kubeconfig, "apply", "-f", str(SAMPLES_DIR))
    from medmec.operator import kube
    kube.use(kubeconfig)
    kube.apply(sample_map_configmap())


def sample_map_configmap(namespace: str = "logistics", name: str = "hospital-map") -> dict:
    map_json = resources.files("medmec.workloads.dispatch").joinpath("maps/sample-hospital.json")
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"map.json": map_json.read_text()}}


def not_ready(kubeconfig: str) -> list[str]:
    """medmec resources whose Ready condition is not True."""
    out = kubectl(kubeconfig, "get", ",".join(PLURALS), "-A", "-o", "yaml").stdout
    waiting = []
    for item in yaml.safe_load(out)["items"]:
        conds = {c["type"]: c for c in item.get("status", {}).get("conditions") or []}
        if conds.get("Ready", {}).get("status") != "True":
            md = item["metadata"]
            where = f"{md['namespace']}/" if md.get("namespace") else ""  # BaseStations: cluster-wide
            waiting.append(f"{item['kind']} {where}{md['name']}: "
                           f"{conds.get('Ready', {}).get('message', 'no status yet')}")
    return waiting


def wait_converged(kubeconfig: str, timeout: float = 180) -> None:
    """Until every medmec resource is Ready; TimeoutError names the ones that are not."""
    try:
        wait_for(lambda: not not_ready(kubeconfig), timeout, "every medmec resource Ready",
                 interval=2)
    except TimeoutError:
        raise TimeoutError("not converged:\n  " + "\n  ".join(not_ready(kubeconfig))) from None
