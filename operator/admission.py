"""Slice admission against base-station radio capacity (pure).

A slice is admitted when, on every base station it covers, the admitted slices' bandwidth
plus its own stays within capacity, uplink and downlink alike. Slices admitted before keep
their place (admission is never revoked to make room for another); waiting slices are then
considered first-come by creation time, so freed capacity goes to the oldest waiting one.
A namespace holds one admitted slice, because the slice's budget is its ResourceQuota.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Station:
    name: str
    zone: str
    uplink_mbps: int
    downlink_mbps: int
    # as watched, for the status writer; no part of admission
    uid: str = dataclasses.field(default="", compare=False)
    conditions: tuple = dataclasses.field(default=(), compare=False)


@dataclasses.dataclass(frozen=True)
class Claim:
    namespace: str
    name: str
    created: str  # RFC 3339 creationTimestamp; sorts chronologically as text
    uplink_mbps: int
    downlink_mbps: int
    base_stations: tuple[str, ...]
    admitted: bool = False  # admitted by an earlier decision

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True)
class Decision:
    admitted: bool
    reason: str
    message: str


@dataclasses.dataclass
class Usage:
    uplink_mbps: int = 0
    downlink_mbps: int = 0
    slices: list[str] = dataclasses.field(default_factory=list)


def decide(stations: dict[str, Station], claims: list[Claim]) -> dict[str, Decision]:
    """A decision for every claim, keyed by namespace/name."""
    usage = {name: Usage() for name in stations}
    namespaces_taken: dict[str, str] = {}
    decisions: dict[str, Decision] = {}
    for claim in sorted(claims, key=lambda c: (not c.admitted, c.created, c.key)):
        decision = _check(stations, usage, namespaces_taken, claim)
        if decision.admitted:
            for bs in claim.base_stations:
                usage[bs].uplink_mbps += claim.uplink_mbps
                usage[bs].downlink_mbps += claim.downlink_mbps
                usage[bs].slices.append(claim.key)
            namespaces_taken[claim.namespace] = claim.name
        decisions[claim.key] = decision
    return decisions


def usage_by_station(stations: dict[str, Station], claims: list[Claim],
                     decisions: dict[str, Decision]) -> dict[str, Usage]:
    """Bandwidth allocated on each base station to the admitted claims."""
    usage = {name: Usage() for name in stations}
    for claim in sorted(claims, key=lambda c: c.key):
        if decisions.get(claim.key, Decision(False, "", "")).admitted:
            for bs in claim.base_stations:
                if bs in usage:
                    usage[bs].uplink_mbps += claim.uplink_mbps
                    usage[bs].downlink_mbps += claim.downlink_mbps
                    usage[bs].slices.append(claim.key)
    return usage


def _check(stations: dict[str, Station], usage: dict[str, Usage],
           namespaces_taken: dict[str, str], claim: Claim) -> Decision:
    missing = [bs for bs in claim.base_stations if bs not in stations]
    if missing:
        return Decision(False, "BaseStationNotFound",
                        f"spec.baseStations: no BaseStation named {', '.join(missing)}")
    other = namespaces_taken.get(claim.namespace)
    if other is not None:
        return Decision(False, "NamespaceHasSlice",
                        f"namespace {claim.namespace} already holds admitted slice {other}; "
                        "a slice's budget is its namespace's ResourceQuota, so use one namespace per slice")
    short = []
    for bs in claim.base_stations:
        station, used = stations[bs], usage[bs]
        for direction, want, have, taken in (
                ("uplink", claim.uplink_mbps, station.uplink_mbps, used.uplink_mbps),
                ("downlink", claim.downlink_mbps, station.downlink_mbps, used.downlink_mbps)):
            if taken + want > have:
                short.append(f"base station {bs}: {direction} needs {want} Mbps but only "
                             f"{max(have - taken, 0)} of {have} Mbps are free ({taken} Mbps allocated)")
    if short:
        return Decision(False, "OverCapacity", "; ".join(short))
    return Decision(True, "Admitted",
                    f"{claim.uplink_mbps}/{claim.downlink_mbps} Mbps up/down reserved on "
                    f"{', '.join(claim.base_stations)}")
