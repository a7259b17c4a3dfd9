"""Inference benchmark: throughput and p50/p99 latency at concurrency 1, 8 and 32 for
(a) ONNX Runtime called in-process (the ceiling on this machine),
(b) the Triton server with dynamic batching off,
(c) the Triton server with dynamic batching on,
for the tabular breast-cancer model and the imaging-sized (untrained) CNN, side by side in
one run. Clients send one case per request over gRPC (tritonclient), as bedside devices do.
All three use the same ONNX Runtime settings (its default thread pool, one thread per core).

    .venv/bin/python bench/inference.py [--duration 3] [--models tabular,imaging]

Exits non-zero if a run fails, or if the imaging model's p99 at concurrency 8 with batching
exceeds the remote-imaging slice's 500 ms end-to-end budget.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medmec.loadgen import merge, run_load
from medmec.workloads.inference import imaging_cnn, runtime
from medmec.workloads.inference.process import InferenceServer

MODELS = Path(__file__).resolve().parents[1] / "models"
CONCURRENCY = (1, 8, 32)
# The same ONNX Runtime settings everywhere: its default thread pool (one thread per core).
INTRA_OP_THREADS = 0
# A short hold: under load the batch fills while the model is busy; at concurrency 1 every
# request waits this long for company that never comes.
QUEUE_DELAY_US = 500
SERVER_ARGS = ["--max-batch-size", "32", "--intra-op-threads", str(INTRA_OP_THREADS)]
IMAGING_BUDGET_MS = 500.0  # remote-imaging slice, end to end (design.md, table 5-1)


@dataclasses.dataclass
class Workload:
    key: str
    model_dir: Path
    name: str
    version: str
    case: np.ndarray  # one case, batch dimension included


def in_process(workload: Workload) -> Callable[[], Callable[[], None]]:
    model = runtime.load(workload.model_dir, workload.name, workload.version,
                         threads=INTRA_OP_THREADS)
    return lambda: (lambda: model.probabilities(workload.case))


def over_grpc(server: InferenceServer, workload: Workload) -> Callable[[], Callable[[], None]]:
    import tritonclient.grpc as grpcclient

    def make_call():
        client = grpcclient.InferenceServerClient(server.target)
        infer_input = grpcclient.InferInput(_input_name(workload), list(workload.case.shape),
                                            "FP32")
        infer_input.set_data_from_numpy(workload.case)
        wanted = [grpcclient.InferRequestedOutput("probabilities")]
        return lambda: client.infer(workload.name, [infer_input], outputs=wanted)
    return make_call


def _input_name(workload: Workload) -> str:
    from medmec.workloads.modelstore.modelcard import read_metadata
    return read_metadata(workload.model_dir / workload.name / workload.version)["inputs"][0]["name"]


def workloads(selected: set[str]) -> list[Workload]:
    from sklearn.datasets import load_breast_cancer
    found = []
    if "tabular" in selected:
        case = load_breast_cancer().data[:1].astype(np.float32)
        found.append(Workload("tabular", MODELS, "breast-cancer", "1", case))
    if "imaging" in selected:
        folder = imaging_cnn.ensure()
        case = np.random.default_rng(0).random((1, 3, imaging_cnn.SIZE, imaging_cnn.SIZE),
                                               dtype=np.float32)
        found.append(Workload("imaging", folder.parents[1], imaging_cnn.NAME, imaging_cnn.VERSION,
                              case))
    return found


def measure(workload: Workload, duration: float, rounds: int, state: Path) -> dict:
    """All three modes, interleaved in `rounds` short runs per concurrency, so that a change
    in the machine's load (two shared cores) hits every mode alike."""
    servers = {}
    try:
        for mode, extra in (("b", ["--no-dynamic-batching"]),
                            ("c", ["--max-queue-delay-us", str(QUEUE_DELAY_US)])):
            servers[mode] = InferenceServer(
                state, workload.model_dir, workload.name, workload.version,
                [*SERVER_ARGS, *extra], name=f"bench-{workload.key}-{mode}").start()
        callers = {"a": in_process(workload), "b": over_grpc(servers["b"], workload),
                   "c": over_grpc(servers["c"], workload)}
        results = {}
        for c in CONCURRENCY:
            runs = {mode: [] for mode in callers}
            for _ in range(rounds):
                for mode, make_call in callers.items():
                    runs[mode].append(run_load(make_call, c, duration / rounds))
            for mode, parts in runs.items():
                results[(mode, c)] = merge(parts, duration)
                print(f"  {workload.key} ({mode}) c={c}: {results[(mode, c)]}",
                      file=sys.stderr, flush=True)
        return results
    finally:
        for server in servers.values():
            server.stop()


MODES = {"a": "ONNX Runtime in-process", "b": "server, batching off", "c": "server, batching on"}


def table(workload: Workload, results: dict) -> str:
    lines = [f"\n{workload.key}: {workload.name}:{workload.version}, input "
             f"{list(workload.case.shape)}, one case per request",
             f"{'mode':<26}{'conc':>5}{'cases/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
             f"{'(c)/(a)':>9}{'(c)/(b)':>9}"]
    for mode, label in MODES.items():
        for c in CONCURRENCY:
            r = results[(mode, c)]
            ratios = ""
            if mode == "c":
                ratios = (f"{r.throughput / results[('a', c)].throughput:>9.3g}"
                          f"{r.throughput / results[('b', c)].throughput:>9.3g}")
            lines.append(f"{label:<26}{c:>5}{r.throughput:>10.1f}{r.p50_ms:>9.2f}"
                         f"{r.p99_ms:>9.2f}{ratios}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds measured per cell")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved runs per cell")
    parser.add_argument("--models", default="tabular,imaging")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPU cores, no GPU; {args.duration:g} s per cell in "
          f"{args.rounds} interleaved rounds; load average before: {os.getloadavg()[0]:.1f}")
    verdict = 0
    with tempfile.TemporaryDirectory(prefix="medmec-bench-") as tmp:
        for workload in workloads(set(args.models.split(","))):
            results = measure(workload, args.duration, args.rounds, Path(tmp))
            print(table(workload, results), flush=True)
            if workload.key == "imaging":
                p99 = results[("c", 8)].p99_ms
                ok = p99 <= IMAGING_BUDGET_MS
                print(f"imaging p99 at concurrency 8 with batching: {p99:.1f} ms "
                      f"({'inside' if ok else 'OVER'} the {IMAGING_BUDGET_MS:.0f} ms "
                      "remote-imaging budget)")
                verdict = verdict or (0 if ok else 2)
    return verdict


if __name__ == "__main__":
    sys.exit(main())
