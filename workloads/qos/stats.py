"""Link figures from probe samples (pure): round-trip percentiles, RFC 3550 jitter, loss."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Sample:
    """One latency probe: when it was sent (monotonic s), its round trip (None = lost) and
    the RFC 3550 jitter estimate after it."""
    at: float
    rtt_ms: float | None
    jitter_ms: float


def next_jitter(jitter_ms: float, previous_rtt_ms: float | None, rtt_ms: float) -> float:
    """RFC 3550 section 6.4.1 interarrival jitter, J += (|D| - J) / 16, where D is the
    difference between consecutive transit times (here: consecutive round trips)."""
    if previous_rtt_ms is None:
        return jitter_ms
    return jitter_ms + (abs(rtt_ms - previous_rtt_ms) - jitter_ms) / 16.0


@dataclasses.dataclass(frozen=True)
class LinkFigures:
    samples: int
    rtt_p50_ms: float | None
    rtt_p99_ms: float | None
    jitter_ms: float | None
    loss_ratio: float
    uplink_mbps: float | None = None
    downlink_mbps: float | None = None


def figures(samples: Sequence[Sample], uplink_mbps: Sequence[float] = (),
            downlink_mbps: Sequence[float] = ()) -> LinkFigures:
    """Figures over one window of samples; throughput is the median of the window's bursts
    (one slow burst alone is no breach)."""
    answered = np.array([s.rtt_ms for s in samples if s.rtt_ms is not None], dtype=float)
    lost = sum(1 for s in samples if s.rtt_ms is None)
    last_jitter = next((s.jitter_ms for s in reversed(samples) if s.rtt_ms is not None), None)
    return LinkFigures(
        samples=len(samples),
        rtt_p50_ms=float(np.percentile(answered, 50)) if answered.size else None,
        rtt_p99_ms=float(np.percentile(answered, 99)) if answered.size else None,
        jitter_ms=last_jitter,
        loss_ratio=lost / len(samples) if samples else 0.0,
        uplink_mbps=float(np.median(uplink_mbps)) if len(uplink_mbps) else None,
        downlink_mbps=float(np.median(downlink_mbps)) if len(downlink_mbps) else None,
    )
