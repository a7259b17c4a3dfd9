"""Real-pod benchmark: the sample hospital on a fresh local cluster with real nodes.

1. time from the two `helm install`s to a Ready platform, and on to a Ready hospital (the
   models pushed, the GitOps overlay and the samples applied, every resource Ready);
2. each hospital pod's start by phase, from its own timestamps (one-second resolution):
   scheduling (created -> PodScheduled), start (-> containers started: sandbox, the image,
   init containers such as the model fetch; images are loaded into the nodes beforehand, so
   no pull), probes (-> Ready);
3. inference through the screening Service (gRPC, from this host) against the same server,
   same arguments, as a local process, side by side in interleaved rounds; the cost of the
   pod path is the ratio at p50 (aim: at most 1.10).

    .venv/bin/python bench/realpods.py [--duration 8] [--rounds 4] [--keep]
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from medmec import demo
from medmec.cluster_services import ServiceAddresses
from medmec.loadgen import merge, run_load
from medmec.localcluster import cluster
from medmec.operator import devtools
from medmec.workloads.inference.process import InferenceServer

MODELS = Path(__file__).resolve().parents[1] / "models"
CONCURRENCY = (1, 8)
# the flags InferenceServer sets itself for a local process
OWN_FLAGS = {"--model-dir", "--model", "--version", "--http-port", "--grpc-port", "--metrics-port"}


def log(message: str) -> None:
    print(f"[realpods] {message}", file=sys.stderr, flush=True)


def _time(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def start_phases(pod: dict) -> dict[str, float] | None:
    """Seconds spent scheduling, starting and passing probes; None for a pod not Ready."""
    conds = {c["type"]: c for c in pod["status"].get("conditions", [])}
    if conds.get("Ready", {}).get("status") != "True":
        return None
    created = _time(pod["metadata"]["creationTimestamp"])
    scheduled = _time(conds["PodScheduled"]["lastTransitionTime"])
    started = max(_time(s["state"]["running"]["startedAt"])
                  for s in pod["status"]["containerStatuses"])
    ready = _time(conds["Ready"]["lastTransitionTime"])
    return {"scheduling": (scheduled - created).total_seconds(),
            "start": (started - scheduled).total_seconds(),
            "probes": (ready - started).total_seconds()}


def phase_table(kubeconfig: str) -> str:
    pods = json.loads(devtools.kubectl(kubeconfig, "get", "pods", "-A", "-o", "json").stdout)["items"]
    rows = []
    for pod in pods:
        if pod["metadata"]["namespace"] in {"kube-system", "default"}:
            continue
        phases = start_phases(pod)
        if phases:
            rows.append((pod["metadata"]["namespace"], pod["metadata"]["name"], phases))
    lines = [f"{'pod':<58}{'sched s':>8}{'start s':>8}{'probes s':>9}"]
    for ns, name, ph in sorted(rows):
        lines.append(f"{ns + '/' + name:<58}{ph['scheduling']:>8.0f}{ph['start']:>8.0f}{ph['probes']:>9.0f}")
    for key in ("scheduling", "start", "probes"):
        values = [ph[key] for _, _, ph in rows]
        lines.append(f"  {key}: median {statistics.median(values):.0f} s, max {max(values):.0f} s "
                     f"over {len(values)} pods")
    return "\n".join(lines)


def local_args(kubeconfig: str, services: ServiceAddresses) -> list[str]:
    """The screening pod's server flags (batching, escalation), the escalation target made
    reachable from this host."""
    deployment = json.loads(devtools.kubectl(
        kubeconfig, "get", "deployment", "breast-cancer-screening-predictor", "-n", "imaging",
        "-o", "json").stdout)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["command"][3:]  # after `medmec serve inference`
    kept = []
    for flag, value in zip(args[::2], args[1::2]):
        if flag in OWN_FLAGS:
            continue
        if flag == "--escalation-url":
            scheme, _, address = value.partition("://")
            value = f"{scheme}://{services.dial(address)}"
        kept += [flag, value]
    return kept


def grpc_caller(target: str, case: np.ndarray):
    import tritonclient.grpc as grpcclient

    def make_call():
        client = grpcclient.InferenceServerClient(target)
        tensor = grpcclient.InferInput("features", list(case.shape), "FP32")
        tensor.set_data_from_numpy(case)
        wanted = [grpcclient.InferRequestedOutput("probabilities")]
        return lambda: client.infer("breast-cancer", [tensor], outputs=wanted)
    return make_call


def compare_inference(kubeconfig: str, services: ServiceAddresses, work: Path,
                      duration: float, rounds: int) -> str:
    from sklearn.datasets import load_breast_cancer
    case = load_breast_cancer().data[:1].astype(np.float32)  # confident: answered at the edge
    local = InferenceServer(work, MODELS, "breast-cancer", "1", local_args(kubeconfig, services),
                            name="bench-local").start()
    try:
        callers = {"service": grpc_caller(services.address(
                       "imaging", "breast-cancer-screening-predictor", 8001), case),
                   "local": grpc_caller(local.target, case)}
        lines = [f"{'path':<10}{'conc':>5}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'p50 svc/local':>15}"]
        for c in CONCURRENCY:
            runs = {path: [] for path in callers}
            for _ in range(rounds):
                for path, make_call in callers.items():
                    runs[path].append(run_load(make_call, c, duration / rounds))
            results = {path: merge(parts, duration) for path, parts in runs.items()}
            for path, r in results.items():
                ratio = (f"{r.p50_ms / results['local'].p50_ms:>15.3f}" if path == "service" else "")
                lines.append(f"{path:<10}{c:>5}{r.throughput:>9.1f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{ratio}")
        return "\n".join(lines)
    finally:
        local.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load level")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per level")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="medmec-realpods-"))
    folder = work / "cluster"
    t0 = time.monotonic()
    state = cluster.up(folder, log=log)
    kubeconfig = str(state.kubeconfig)
    log(f"cluster up with its images in {time.monotonic() - t0:.1f} s")
    try:
        services = ServiceAddresses(kubeconfig)
        built = cluster.load_images(state, log)  # in case a file changed since `up`
        t0 = time.monotonic()
        demo.install_platform(kubeconfig, built)
        platform_s = time.monotonic() - t0
        demo.push_models(kubeconfig, services)
        demo.apply_hospital(kubeconfig)
        hospital_s = time.monotonic() - t0
        print("\n== helm install to Ready (both charts, the sample hospital St Luke's)")
        print(f"  platform (operator x2, MinIO, QoS prober and 3 reflectors, console): {platform_s:.1f} s")
        print(f"  hospital (+ models pushed, overlay and samples applied, every resource Ready): {hospital_s:.1f} s")
        print("\n== pod start by phase")
        print(phase_table(kubeconfig))
        print("\n== inference: the screening Service vs the same server as a local process (gRPC, one case per request)")
        print(compare_inference(kubeconfig, services, work, args.duration, args.rounds))
    finally:
        if not args.keep:
            cluster.down(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
