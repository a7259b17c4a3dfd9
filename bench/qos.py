"""Benchmark: what slice QoS probing costs, and how many links one prober process can watch.

Links are emulated on loopback: the reflector (`medmec serve qos-reflector`) behind a real
Toxiproxy proxy. The probes run in this process, so its CPU time is the prober's.

1. Overhead per slice and base station at the default settings of `medmec qos run` (a ping a
   second, a burst of 0.2 s of the contract rate a minute): prober CPU, measured over a run
   of many probes, and bandwidth: ping bytes counted on the wire (payload plus TCP/IPv4
   headers, one segment each way) and burst bytes per table 5-1 bandwidth.
2. Capacity: Toxiproxy adds a fixed latency on one proxy; N probes (N slices on one base
   station) run in this process for a while, and at the same time a reference process
   pings a second proxy without the toxic (the bare loopback and Toxiproxy path under the
   same machine load). The prober's error is how far its round trips are from the
   configured latency plus the reference's median round trip. The largest N with a median
   error under 1 ms is what one process can watch.
"""
from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from medmec.operator.profiles import PROFILES
from medmec.workloads.qos import emulation
from medmec.workloads.qos.assurance import ProbeSettings
from medmec.workloads.qos.link import LinkProbe
from medmec.workloads.qos.reflector import PING

DEFAULT = ProbeSettings()
LATENCY_MS = 20
RUN_S = 15.0
STEPS = [10, 50, 200, 500, 1000, 2000, 4000]
TCP_IP_HEADERS = 20 + 32  # IPv4 + TCP with the timestamp option, as Linux sends by default


async def run_probes(address, n: int, seconds: float, interval: float) -> tuple[list[float], float, int]:
    """Round trips (ms) of n probes over `seconds`, this process's CPU seconds, pings sent."""
    probes = [LinkProbe(*address, interval_s=interval, timeout_s=2.0, window_s=seconds + 60)
              for _ in range(n)]
    cpu = time.process_time()
    tasks = [asyncio.create_task(p.run()) for p in probes]
    await asyncio.sleep(seconds)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    cpu = time.process_time() - cpu
    samples = [s for p in probes for s in p.samples]
    rtts = [s.rtt_ms for s in samples if s.rtt_ms is not None]
    return rtts, cpu, len(samples)


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def reference(host: str, port: int, seconds: float) -> None:
    """The reference process: one probe on the bare path, its round trips printed as JSON."""
    rtts, _, _ = asyncio.run(run_probes((host, port), 1, seconds, 0.1))
    print(json.dumps(rtts))


async def side_by_side(probed, bare, n: int) -> tuple[list[float], list[float], float, int]:
    ref = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--reference", bare[0], str(bare[1]), str(RUN_S),
        stdout=asyncio.subprocess.PIPE)
    rtts, cpu, sent = await run_probes(probed, n, RUN_S, DEFAULT.interval_s)
    out, _ = await ref.communicate()
    return rtts, json.loads(out), cpu, sent


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # progress shows while it runs
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    steps = [n for n in STEPS if 2 * n + 50 < hard]
    links = emulation.start(["gnb-bench", "gnb-bare"],
                            Path(tempfile.mkdtemp(prefix="medmec-bench-qos-")))
    probed, bare = links.links["gnb-bench"], links.links["gnb-bare"]
    try:
        # 1. overhead at the default interval
        n_cost = 200
        _, cpu, sent = asyncio.run(run_probes(probed, n_cost, RUN_S, DEFAULT.interval_s))
        cpu_per_probe = cpu / (n_cost * RUN_S)
        ping_bits = 2 * (PING.size + TCP_IP_HEADERS) * 8 / DEFAULT.interval_s
        print("QoS prober overhead per slice and base station (default: ping every "
              f"{DEFAULT.interval_s:g} s, burst of {DEFAULT.burst_seconds_of_contract:g} s of the "
              f"contract every {DEFAULT.burst_every_s:g} s); 2-core CPU")
        print(f"  prober CPU: {cpu_per_probe * 100:.4f} % of one core "
              f"({cpu * 1000 / max(sent, 1):.3f} ms CPU per ping, {n_cost} probes for {RUN_S:g} s)")
        print(f"  ping traffic: {ping_bits / 1000:.2f} kbit/s "
              f"({PING.size} B payload + {TCP_IP_HEADERS} B headers each way)")
        print(f"  {'profile':<22}{'contract':>10}{'burst traffic':>16}{'ping+burst':>12}{'share of contract':>20}")
        for name, qos in PROFILES.items():
            rate = max(qos.uplinkMbps, qos.downlinkMbps)
            burst_bits = 2 * rate * 1e6 * DEFAULT.burst_seconds_of_contract / DEFAULT.burst_every_s
            total = burst_bits + ping_bits
            print(f"  {name:<22}{rate:>6} Mbps{burst_bits / 1e3:>11.1f} kbit/s{total / 1e3:>8.1f} kbit/s"
                  f"{total / (rate * 1e6) * 100:>19.3f} %")

        # 2. capacity of one prober process
        links.toxiproxy.add_latency("gnb-bench", LATENCY_MS)
        print(f"\nProbes per prober process: Toxiproxy latency {LATENCY_MS} ms, ping every "
              f"{DEFAULT.interval_s:g} s, {RUN_S:g} s per step, reference bare path pinged side "
              f"by side from another process")
        print(f"  {'probes':>7}{'pings':>8}{'lost':>6}{'bare path':>11}{'median error':>14}"
              f"{'p95 error':>13}{'p99 error':>13}{'prober CPU':>12}")
        capacity = 0
        for n in steps:
            rtts, ref, cpu, sent = asyncio.run(side_by_side(probed, bare, n))
            if not rtts or not ref:
                print(f"  {n:>7}: no answers")
                break
            base = statistics.median(ref)
            errors = [abs(r - LATENCY_MS - base) for r in rtts]
            median = abs(statistics.median(rtts) - LATENCY_MS - base)
            print(f"  {n:>7}{sent:>8}{sent - len(rtts):>6}{base:>8.3f} ms{median:>11.3f} ms"
                  f"{percentile(errors, 95):>10.3f} ms{percentile(errors, 99):>10.3f} ms"
                  f"{cpu / RUN_S * 100:>10.1f} %")
            if median < 1.0 and sent == len(rtts):
                capacity = n
            else:
                break
        if capacity:
            print(f"  one prober process keeps its median error under 1 ms with {capacity} probes "
                  f"(slice x base station pairs) at the default interval"
                  + (" (the largest step tried)" if capacity == steps[-1] else ""))
        else:
            print(f"  even {steps[0]} probes miss the 1 ms bound here: the error is the machine's "
                  f"load (see the load average), not the number of probes; run again when idle")
        print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        links.stop()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--reference"]:
        reference(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
        sys.exit(0)
    sys.exit(main())
