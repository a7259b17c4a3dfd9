"""Judging a link against a slice's QoS contract (pure).

A link breaches when, over the window, more than `breach_ratio` of the probes were lost or
took longer than the network-latency budget (the budget is a percentile objective, so one
slow probe is no breach), when the RFC 3550 jitter estimate exceeds the jitter budget, when
the window's median burst throughput is under the contract, or when the network p99 plus
the slowest inference service's p99 exceeds the end-to-end budget. Round trips are compared
with the one-way budget: the stricter reading, since a UE's request and its answer both
cross the link.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from medmec.operator.profiles import QoS

from .stats import LinkFigures, Sample, figures


@dataclasses.dataclass(frozen=True)
class Verdict:
    base_station: str
    ok: bool | None  # None: too few probes in the window to judge
    reason: str
    message: str
    figures: LinkFigures
    inference_p99_ms: float | None = None
    end_to_end_ms: float | None = None


@dataclasses.dataclass(frozen=True)
class Policy:
    window_s: float = 10.0
    min_samples: int = 5
    breach_ratio: float = 0.1


def _fmt(ms: float | None) -> str:
    return "n/a" if ms is None else f"{ms:.1f} ms"


def judge(base_station: str, samples: Sequence[Sample], qos: QoS, policy: Policy,
          uplink_mbps: Sequence[float] = (), downlink_mbps: Sequence[float] = (),
          inference_p99_ms: float | None = None) -> Verdict:
    fig = figures(samples, uplink_mbps, downlink_mbps)
    e2e = (fig.rtt_p99_ms + inference_p99_ms
           if fig.rtt_p99_ms is not None and inference_p99_ms is not None else None)

    def verdict(ok, reason, message):
        return Verdict(base_station, ok, reason, f"{base_station}: {message}", fig,
                       inference_p99_ms, e2e)

    if fig.samples < policy.min_samples:
        return verdict(None, "AwaitingProbes",
                       f"{fig.samples} probes so far, {policy.min_samples} needed to judge")
    lost = sum(1 for s in samples if s.rtt_ms is None)
    slow = sum(1 for s in samples if s.rtt_ms is not None and s.rtt_ms > qos.networkLatencyMs)
    window = f"over the last {policy.window_s:g} s"
    if lost == len(samples):
        return verdict(False, "LinkDown", f"no probe answered {window}")
    if (lost + slow) / len(samples) > policy.breach_ratio:
        if lost >= slow:
            return verdict(False, "ProbeLoss",
                           f"{lost} of {len(samples)} probes lost {window}")
        return verdict(False, "NetworkLatencyOverBudget",
                       f"{slow} of {len(samples)} probes over the {qos.networkLatencyMs} ms "
                       f"latency budget {window} (round trip p50 {_fmt(fig.rtt_p50_ms)}, "
                       f"p99 {_fmt(fig.rtt_p99_ms)})")
    if fig.jitter_ms is not None and fig.jitter_ms > qos.jitterMs:
        return verdict(False, "JitterOverBudget",
                       f"jitter {_fmt(fig.jitter_ms)} over the {qos.jitterMs} ms budget")
    for measured, contract, direction in ((fig.uplink_mbps, qos.uplinkMbps, "uplink"),
                                          (fig.downlink_mbps, qos.downlinkMbps, "downlink")):
        if measured is not None and measured < contract:
            return verdict(False, "BandwidthBelowContract",
                           f"{direction} {measured:.1f} Mbps under the {contract} Mbps contract")
    if e2e is not None and e2e > qos.endToEndLatencyMs:
        return verdict(False, "EndToEndOverBudget",
                       f"end-to-end {_fmt(e2e)} (network p99 {_fmt(fig.rtt_p99_ms)} + inference "
                       f"p99 {_fmt(inference_p99_ms)}) over the {qos.endToEndLatencyMs} ms budget")
    return verdict(True, "WithinBudget",
                   f"round trip p99 {_fmt(fig.rtt_p99_ms)} of {qos.networkLatencyMs} ms, "
                   f"jitter {_fmt(fig.jitter_ms)} of {qos.jitterMs} ms")


def slice_condition(verdicts: Sequence[Verdict], avoided: Sequence[str] = ()) -> dict:
    """The QoSMet condition of a slice from the verdicts of its base stations."""
    breached = [v for v in verdicts if v.ok is False]
    if breached:
        message = "; ".join(v.message for v in breached)
        if avoided:
            message += f"; critical services kept off {', '.join(avoided)}"
        return {"type": "QoSMet", "status": "False", "reason": breached[0].reason,
                "message": message}
    waiting = [v for v in verdicts if v.ok is None]
    if waiting or not verdicts:
        return {"type": "QoSMet", "status": "Unknown", "reason": "AwaitingProbes",
                "message": "; ".join(v.message for v in waiting) or "no probed base station"}
    return {"type": "QoSMet", "status": "True", "reason": "WithinBudget",
            "message": "; ".join(v.message for v in verdicts)}
