"""Benchmark: the medmec operator against creating the same objects directly.

On a local control plane with 200 KWOK GPU nodes (10 base-station zones x 20 nodes x 8
GPUs), 500 EdgeInferenceServices over 10 admitted MedicalSlices are created at once and
timed until all are Ready (the operator renders and applies Deployment, Service,
HorizontalPodAutoscaler and PodDisruptionBudget for each and reports pod readiness back).
In the same run, the same child objects are created directly with the Python client (16
threads, as many as the operator's handler threads) and timed until every Deployment has
its pod ready. Printed: both times, their ratio (aim: at most 2), reconciles per second
and the operator's peak memory. Direct runs first, the operator second on the busier
cluster (the direct run's objects stay).
"""
from __future__ import annotations

import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ZONES, NODES_PER_ZONE, GPUS_PER_NODE = 10, 20, 8
SLICES, SERVICES = 10, 500
WORKERS = 16
TIMEOUT = 480


def topology() -> dict:
    return {"zones": [{"zone": f"bench-{z}", "baseStation": f"gnb-bench-{z}", "nodePools": [
        {"name": "gpu", "count": NODES_PER_ZONE, "cpu": "64", "memory": "512Gi",
         "gpu": {"count": GPUS_PER_NODE, "product": "NVIDIA-H100-80GB-HBM3"}}]}
        for z in range(ZONES)]}


def base_station(z: int) -> dict:
    return {"apiVersion": "medmec.io/v1alpha1", "kind": "BaseStation",
            "metadata": {"name": f"gnb-bench-{z}"},
            "spec": {"gnbId": 9000 + z, "zone": f"bench-{z}", "uplinkMbps": 1000,
                     "downlinkMbps": 1000}}


def medical_slice(ns: str, z: int) -> dict:
    return {"apiVersion": "medmec.io/v1alpha1", "kind": "MedicalSlice",
            "metadata": {"name": "clinic", "namespace": ns},
            "spec": {"profile": "remote-imaging", "sliceType": "eMBB",
                     "baseStations": [f"gnb-bench-{z}"], "priority": "high",
                     "resources": {"gpus": 64, "cpu": "64", "memory": "128Gi"}}}


def inference_service(ns: str, i: int) -> dict:
    return {"apiVersion": "medmec.io/v1alpha1", "kind": "EdgeInferenceService",
            "metadata": {"name": f"model-{i}", "namespace": ns},
            "spec": {"sliceRef": {"name": "clinic"},
                     "model": {"name": "breast-cancer", "version": "1",
                               "storageUri": "s3://models/breast-cancer/1", "sha256": "a" * 64},
                     "gpu": {"count": 1}, "resources": {"cpu": "1", "memory": "1Gi"}}}


def _defaults(eis: dict) -> dict:
    """The CRD defaults the API server would fill in, for the direct renderer."""
    spec = eis["spec"]
    spec.setdefault("scaling", {"minReplicas": 1, "maxReplicas": 1, "targetCPUUtilization": 70})
    spec.setdefault("batching", {"maxBatchSize": 8, "maxQueueDelayMicroseconds": 100})
    return eis


def _wait(count_ready, total: int, what: str) -> float:
    start = time.monotonic()
    while True:
        ready = count_ready()
        if ready >= total:
            return time.monotonic() - start
        if time.monotonic() - start > TIMEOUT:
            raise TimeoutError(f"{what}: only {ready} of {total} ready after {TIMEOUT} s")
        time.sleep(0.5)


def _create_namespaces(core, prefix: str) -> list[str]:
    names = [f"{prefix}-{z}" for z in range(SLICES)]
    for ns in names:
        core.create_namespace({"metadata": {"name": ns}})
    return names


def run_direct(api, settings) -> float:
    """The same children, written by a plain client with no operator and no status."""
    from kubernetes import client

    from medmec.operator import kube, render_inference, render_slice
    from medmec.operator.profiles import resolve_qos

    namespaces = _create_namespaces(client.CoreV1Api(api), "direct")
    objects: list[dict] = []
    for z, ns in enumerate(namespaces):
        ms = medical_slice(ns, z)
        ms["metadata"]["uid"] = f"direct-{z}"
        objects += render_slice.children(ms, resolve_qos(ms["spec"]), [f"bench-{z}"])
        for i in range(SERVICES // SLICES):
            eis = _defaults(inference_service(ns, z * 1000 + i))
            eis["metadata"]["uid"] = f"direct-{z}-{i}"
            objects += render_inference.children(eis, ms, [f"bench-{z}"], settings)
    for obj in objects:  # nothing owns them here
        obj["metadata"].pop("ownerReferences", None)
    quota_first = [o for o in objects if o["kind"] in ("ResourceQuota", "NetworkPolicy", "ConfigMap")]
    for obj in quota_first:
        kube.apply(obj)
    apps = client.AppsV1Api(api)
    start = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(kube.apply, [o for o in objects if o not in quota_first]))

    def ready() -> int:
        deps = apps.list_deployment_for_all_namespaces(label_selector="app.kubernetes.io/component=inference")
        return sum(1 for d in deps.items if d.metadata.namespace.startswith("direct-")
                   and (d.status.ready_replicas or 0) >= 1)
    _wait(ready, SERVICES, "direct")
    return time.monotonic() - start


def run_operator(api, kubeconfig: str, log: Path) -> tuple[float, tuple[int, int], float]:
    from kubernetes import client

    from medmec.operator import devtools

    custom = client.CustomObjectsApi(api)
    proc = devtools.start_operator(kubeconfig, log)
    try:
        namespaces = _create_namespaces(client.CoreV1Api(api), "op")
        for z, ns in enumerate(namespaces):
            custom.create_namespaced_custom_object("medmec.io", "v1alpha1", ns, "medicalslices",
                                                   medical_slice(ns, z))

        def admitted() -> int:
            items = custom.list_cluster_custom_object("medmec.io", "v1alpha1", "medicalslices")["items"]
            return sum(1 for i in items if any(c["type"] == "Ready" and c["status"] == "True"
                                               for c in i.get("status", {}).get("conditions", [])))
        _wait(admitted, SLICES, "slices admitted")
        before = _handler_runs(log)
        start = time.monotonic()

        def create(args):
            ns, i = args
            custom.create_namespaced_custom_object("medmec.io", "v1alpha1", ns,
                                                   "edgeinferenceservices", inference_service(ns, i))
        jobs = [(ns, z * 1000 + i) for z, ns in enumerate(namespaces) for i in range(SERVICES // SLICES)]
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(create, jobs))

        def ready() -> int:
            items = custom.list_cluster_custom_object("medmec.io", "v1alpha1",
                                                      "edgeinferenceservices")["items"]
            return sum(1 for i in items if any(c["type"] == "Ready" and c["status"] == "True"
                                               for c in i.get("status", {}).get("conditions", [])))
        _wait(ready, SERVICES, "operator")
        elapsed = time.monotonic() - start
        after = _handler_runs(log)
        return elapsed, (after[0] - before[0], after[1] - before[1]), _peak_rss_mib(proc.pid)
    finally:
        proc.stop()


def _handler_runs(log: Path) -> tuple[int, int]:
    """(reconciles, other handler runs) the operator logged as finished (kopf logs each)."""
    text = log.read_text(errors="replace")
    reconciles = len(re.findall(r"Handler 'reconcile' (?:succeeded|failed)", text))
    return reconciles, len(re.findall(r"Handler '[\w.<>]+' (?:succeeded|failed)", text)) - reconciles


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    from kubernetes import config

    from medmec.localcluster import cluster
    from medmec.operator import devtools
    from medmec.operator.settings import OperatorSettings

    work = Path(tempfile.mkdtemp(prefix="medmec-bench-operator-"))
    topo = work / "topology.yaml"
    topo.write_text(yaml.safe_dump(topology()))
    print(f"starting a control plane with {ZONES * NODES_PER_ZONE} KWOK GPU nodes ...", flush=True)
    state = cluster.up(work / "cluster", str(topo))
    try:
        kubeconfig = str(state.kubeconfig)
        devtools.install(kubeconfig, local_volumes=0)
        api = config.new_client_from_config(kubeconfig)
        from kubernetes import client
        custom = client.CustomObjectsApi(api)
        for z in range(ZONES):
            custom.create_cluster_custom_object("medmec.io", "v1alpha1", "basestations", base_station(z))
        from medmec.operator import kube, render_slice
        for priority in ("critical", "high", "standard"):
            kube.apply(render_slice.priority_class(priority))

        direct = run_direct(api, OperatorSettings())
        print(f"direct: {SERVICES} services' objects created, all pods ready in {direct:.1f} s", flush=True)
        operated, (reconciles, events), rss = run_operator(api, kubeconfig, work / "operator.log")
    except Exception as err:
        print(f"benchmark failed: {err} (operator log: {work / 'operator.log'})", file=sys.stderr)
        return 1
    finally:
        cluster.down(work / "cluster")
    shutil.rmtree(work, ignore_errors=True)

    rows = [
        ("services", f"{SERVICES} over {SLICES} slices on {ZONES * NODES_PER_ZONE} GPU nodes"),
        ("direct client, create -> all pods ready", f"{direct:.1f} s"),
        ("operator, create -> all services Ready", f"{operated:.1f} s"),
        ("ratio operator / direct (aim <= 2)", f"{operated / direct:.2f}"),
        ("reconciles (create/update/resume)", f"{reconciles}"),
        ("reconciles per second", f"{reconciles / operated:.1f}"),
        ("watch events handled (pods, deletions)", f"{events} ({events / operated:.1f}/s)"),
        ("operator peak memory (VmHWM)", f"{rss:.0f} MiB"),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
