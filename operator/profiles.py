"""Table 5-1 of the 5G smart-hospital white paper: the minimum network quality per service,
and how a MedicalSlice spec resolves to the QoS contract in force."""
from __future__ import annotations

from pydantic import BaseModel


class QoS(BaseModel, frozen=True):
    uplinkMbps: int
    downlinkMbps: int
    networkLatencyMs: int
    endToEndLatencyMs: int
    jitterMs: int


def _qos(mbps: int, network_ms: int, e2e_ms: int, jitter_ms: int = 30) -> QoS:
    # table 5-1 gives one bandwidth for both directions
    return QoS(uplinkMbps=mbps, downlinkMbps=mbps, networkLatencyMs=network_ms,
               endToEndLatencyMs=e2e_ms, jitterMs=jitter_ms)


PROFILES: dict[str, QoS] = {
    "remote-consultation": _qos(10, 100, 500),
    "remote-ecg": _qos(10, 100, 500),
    "remote-imaging": _qos(100, 100, 500),
    "remote-pathology": _qos(100, 100, 500),
    "remote-monitoring": _qos(20, 100, 500),
    "remote-surgery": _qos(100, 50, 300),
    "non-realtime": _qos(10, 500, 2000),
}

# 3GPP TS 23.501 standardised Slice/Service Types
SST = {"eMBB": 1, "URLLC": 2, "mIoT": 3}


def resolve_qos(spec: dict) -> QoS:
    """The contract of a slice: its profile's row of table 5-1, or its explicit qos."""
    if spec.get("profile"):
        try:
            return PROFILES[spec["profile"]]
        except KeyError:
            raise ValueError(f"spec.profile: unknown profile {spec['profile']!r}; "
                             f"expected one of {', '.join(PROFILES)}") from None
    if spec.get("qos"):
        return QoS.model_validate(spec["qos"])
    raise ValueError("spec: set spec.profile or spec.qos")


def snssai(spec: dict) -> str:
    """S-NSSAI as SST-SD (SD omitted when not set), e.g. '2-000001'."""
    sst = str(SST[spec["sliceType"]])
    sd = spec.get("sliceDifferentiator")
    return f"{sst}-{sd.upper()}" if sd else sst
