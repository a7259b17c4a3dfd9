"""Measured latency and jitter of each slice's links over time, for the console's charts."""
from __future__ import annotations

from collections import deque


class History:
    def __init__(self, points: int = 360):
        self.points = points
        self.series: dict[str, deque] = {}
        self._last_probe: dict[str, str] = {}

    def add(self, slices: list[dict]) -> None:
        """Append each slice's measured figures once per probe round (lastProbeTime)."""
        for s in slices:
            key = f"{s['namespace']}/{s['name']}"
            at = s.get("lastProbeTime")
            if not at or self._last_probe.get(key) == at:
                continue
            self._last_probe[key] = at
            series = self.series.setdefault(key, deque(maxlen=self.points))
            series.append({"t": at, "links": {m["baseStation"]: {"rttP99Ms": m.get("rttP99Ms"),
                                                                 "jitterMs": m.get("jitterMs")}
                                              for m in s.get("measured", [])}})

    def to_json(self) -> dict[str, list]:
        return {k: list(v) for k, v in self.series.items()}
