"""Which base stations, and so which zones, a workload of a slice must run in (pure).

The QoS controller keeps `status.qos.avoidBaseStations` on a critical MedicalSlice: covered
base stations whose links breach the budget while another covered one meets it. Placing
pods is the operator's decision: inference services are pinned to the covered base stations
less the avoided ones, so their Deployment rolls (surge first, never under its ready
minimum) onto the healthy base station and back. Robot fleets and nursing services keep all
covered base stations: their state lives on a local volume and a roll would not help them.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def covered_base_stations(medical_slice: Mapping | None) -> list[str]:
    return list(((medical_slice or {}).get("spec") or {}).get("baseStations") or [])


def avoided_base_stations(medical_slice: Mapping | None) -> list[str]:
    status = (medical_slice or {}).get("status") or {}
    return list((status.get("qos") or {}).get("avoidBaseStations") or [])


def required_base_stations(covered: Sequence[str], avoid: Iterable[str]) -> list[str]:
    """The covered base stations less the avoided ones; all covered ones if that leaves none
    (a service placed nowhere would help no one)."""
    avoid = set(avoid)
    return [b for b in covered if b not in avoid] or list(covered)


def slice_base_stations(medical_slice: Mapping | None, follows_qos: bool) -> list[str]:
    """The base stations a workload of this slice must run on."""
    covered = covered_base_stations(medical_slice)
    if not follows_qos:
        return covered
    return required_base_stations(covered, avoided_base_stations(medical_slice))


def zones(station_zones: Mapping[str, str], names: Iterable[str]) -> list[str]:
    """The zones of the named base stations that exist (unknown names have no zone)."""
    return sorted({station_zones[n] for n in names if n in station_zones})
