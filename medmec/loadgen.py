"""Closed-loop load for the benchmarks: threads calling back to back, latencies of the calls
that start inside a measured window (after a warm-up)."""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass
class Result:
    latencies_ms: np.ndarray = dataclasses.field(repr=False)
    seconds: float

    @property
    def throughput(self) -> float:  # cases per second
        return len(self.latencies_ms) / self.seconds

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 50))

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 99))

    def __str__(self) -> str:
        return (f"{self.throughput:.1f}/s p50 {self.p50_ms:.2f} ms p99 {self.p99_ms:.2f} ms "
                f"({len(self.latencies_ms)} requests)")


def merge(parts: list[Result], seconds: float) -> Result:
    return Result(np.concatenate([p.latencies_ms for p in parts]), seconds)


def run_load(make_call: Callable[[], Callable[[], None]], concurrency: int, duration: float,
             warmup: float = 0.5) -> Result:
    """`concurrency` threads, each calling its own `make_call()` back to back; latencies of
    the calls that start inside the measured window count."""
    calls = [make_call() for _ in range(concurrency)]
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[BaseException] = []
    start_gate = threading.Barrier(concurrency + 1)
    window = {}

    def worker(i: int) -> None:
        start_gate.wait()
        try:
            while True:
                t0 = time.perf_counter()
                if t0 >= window["end"]:
                    return
                calls[i]()
                if t0 >= window["begin"]:
                    latencies[i].append(time.perf_counter() - t0)
        except BaseException as err:  # reported after the run
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    now = time.perf_counter()
    window.update(begin=now + warmup, end=now + warmup + duration)
    start_gate.wait()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} calls failed; first: {errors[0]!r}")
    all_ms = np.concatenate([np.array(x) for x in latencies]) * 1000
    if len(all_ms) == 0:
        raise RuntimeError("no call completed inside the measured window")
    return Result(all_ms, duration)
