"""The QoS part of a MedicalSlice's status, built from the verdicts of its links (pure).

Written by merge patch: `status.qos.measured` (figures per base station), `lastProbeTime`
and `avoidBaseStations` sit beside the contract the operator keeps in `status.qos`; the
QoSMet condition replaces only itself in `status.conditions`."""
from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

from medmec.operator import conditions

from .budget import Verdict


def _round(x: float | None, digits: int = 2) -> float | None:
    return None if x is None else round(x, digits)


def timestamp(t: datetime.datetime | None) -> str | None:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def measured_entry(v: Verdict, healthy_since: datetime.datetime | None) -> dict:
    f = v.figures
    entry = {
        "baseStation": v.base_station,
        "meetsBudget": {True: "True", False: "False", None: "Unknown"}[v.ok],
        "reason": v.reason,
        "samples": f.samples,
        "rttP50Ms": _round(f.rtt_p50_ms),
        "rttP99Ms": _round(f.rtt_p99_ms),
        "jitterMs": _round(f.jitter_ms),
        "lossRatio": _round(f.loss_ratio, 4),
        "uplinkMbps": _round(f.uplink_mbps, 1),
        "downlinkMbps": _round(f.downlink_mbps, 1),
        "inferenceP99Ms": _round(v.inference_p99_ms),
        "endToEndMs": _round(v.end_to_end_ms),
        "healthySince": timestamp(healthy_since),
    }
    return {k: val for k, val in entry.items() if val is not None}


def previous(medical_slice: Mapping) -> tuple[list[str], dict[str, datetime.datetime | None],
                                              dict | None]:
    """(avoidBaseStations, healthySince per base station, QoSMet condition) as last written."""
    status = medical_slice.get("status") or {}
    qos = status.get("qos") or {}
    since = {m["baseStation"]: parse_time(m.get("healthySince"))
             for m in qos.get("measured") or []}
    met = next((c for c in status.get("conditions") or [] if c.get("type") == "QoSMet"), None)
    return list(qos.get("avoidBaseStations") or []), since, met


def carried_over(new: dict, old: dict | None) -> dict:
    """The QoSMet condition to write: a verdict that is only waiting for probes (after a
    restart) does not replace a known True or False, so a breach is not forgotten."""
    if new["status"] == "Unknown" and old and old.get("status") in ("True", "False"):
        return {k: old[k] for k in ("type", "status", "reason", "message") if k in old}
    return new


def patch(medical_slice: Mapping, verdicts: Sequence[Verdict],
          since: Mapping[str, datetime.datetime | None], avoid: Sequence[str], condition: dict,
          now: datetime.datetime) -> dict:
    """A merge patch for the slice's status; carries the resourceVersion it was built from,
    so a concurrent change to the conditions is retried rather than overwritten."""
    status = medical_slice.get("status") or {}
    others = [c for c in status.get("conditions") or [] if c.get("type") != "QoSMet"]
    generation = medical_slice["metadata"].get("generation")
    qos_met = conditions.merge(status.get("conditions"), [condition], generation, timestamp(now))
    return {
        "metadata": {"resourceVersion": medical_slice["metadata"]["resourceVersion"]},
        "status": {
            "qos": {
                "measured": [measured_entry(v, since.get(v.base_station)) for v in verdicts],
                "lastProbeTime": timestamp(now),
                "avoidBaseStations": list(avoid),
            },
            "conditions": others + qos_met,
        },
    }
