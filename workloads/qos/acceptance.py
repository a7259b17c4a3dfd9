"""Acceptance test of a slice's links for commissioning: probe every base station for a
fixed time and check each requirement of the slice's table 5-1 row."""
from __future__ import annotations

import asyncio
import dataclasses

from medmec.operator.profiles import QoS

from .link import LinkProbe, burst_size
from .stats import LinkFigures


@dataclasses.dataclass(frozen=True)
class Row:
    base_station: str
    requirement: str
    limit: str
    measured: str
    passed: bool | None  # None: not measured (no inference metrics for end-to-end)


def _ms(x: float | None) -> str:
    return "no answer" if x is None else f"{x:.1f} ms"


def rows(base_station: str, f: LinkFigures, qos: QoS, inference_p99_ms: float | None) -> list[Row]:
    """The table 5-1 checks for one base station (pure). Latency passes on the p99 round trip
    of the whole run, with no probe lost."""
    e2e = None if f.rtt_p99_ms is None or inference_p99_ms is None else f.rtt_p99_ms + inference_p99_ms
    return [
        Row(base_station, "uplink bandwidth", f">= {qos.uplinkMbps} Mbps",
            f"{f.uplink_mbps or 0:.1f} Mbps", (f.uplink_mbps or 0) >= qos.uplinkMbps),
        Row(base_station, "downlink bandwidth", f">= {qos.downlinkMbps} Mbps",
            f"{f.downlink_mbps or 0:.1f} Mbps", (f.downlink_mbps or 0) >= qos.downlinkMbps),
        Row(base_station, "network latency", f"<= {qos.networkLatencyMs} ms",
            f"p99 {_ms(f.rtt_p99_ms)}, p50 {_ms(f.rtt_p50_ms)}, {f.loss_ratio:.1%} lost",
            f.rtt_p99_ms is not None and f.rtt_p99_ms <= qos.networkLatencyMs
            and f.loss_ratio == 0),
        Row(base_station, "jitter", f"<= {qos.jitterMs} ms", _ms(f.jitter_ms),
            f.jitter_ms is not None and f.jitter_ms <= qos.jitterMs),
        Row(base_station, "end-to-end latency", f"<= {qos.endToEndLatencyMs} ms",
            "not measured (no inference p99)" if e2e is None
            else f"{e2e:.1f} ms (network p99 + inference p99 {inference_p99_ms:.1f} ms)",
            None if e2e is None else e2e <= qos.endToEndLatencyMs),
    ]


def passed(report: list[Row]) -> bool:
    return all(r.passed is not False for r in report) and bool(report)


def render(report: list[Row], title: str) -> str:
    mark = {True: "PASS", False: "FAIL", None: "n/a"}
    width = [max(len(x) for x in col) for col in zip(
        ("base station", "requirement", "limit", "measured"),
        *[(r.base_station, r.requirement, r.limit, r.measured) for r in report])]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(
        ("base station", "requirement", "limit", "measured"), width)) + "  result"]
    for r in report:
        lines.append("  ".join(v.ljust(w) for v, w in zip(
            (r.base_station, r.requirement, r.limit, r.measured), width)) + f"  {mark[r.passed]}")
    lines.append(f"overall: {'PASS' if passed(report) else 'FAIL'}")
    return "\n".join(lines)


async def run(qos: QoS, links: dict[str, tuple[str, int]], duration_s: float,
              interval_s: float = 0.1, bursts: int = 3, burst_s: float = 0.25,
              inference_p99_ms: float | None = None, dscp: int | None = None) -> list[Row]:
    """Ping every link for `duration_s`, then run `bursts` upload+download bursts on each,
    each sized to carry `burst_s` of the contract rate. The phases are apart so that the
    load of a burst does not count against the latency of the link."""
    burst_bytes = burst_size(max(qos.uplinkMbps, qos.downlinkMbps), burst_s)
    probes = {bs: LinkProbe(host, port, interval_s=interval_s, window_s=duration_s + 3600,
                            burst_bytes=burst_bytes, burst_every_s=None,
                            burst_max_s=4 * burst_s, dscp=dscp)
              for bs, (host, port) in links.items()}
    pings = [asyncio.create_task(p.run()) for p in probes.values()]
    try:
        await asyncio.sleep(duration_s)
    finally:
        for task in pings:
            task.cancel()
        await asyncio.gather(*pings, return_exceptions=True)
    for probe in probes.values():
        for _ in range(bursts):
            await probe.burst()
    return [row for bs, p in probes.items() for row in rows(bs, p.figures(), qos, inference_p99_ms)]
