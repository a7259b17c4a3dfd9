"""The five rights of medication administration, checked before a dose is given (pure).

Right patient (the scanned wristband belongs to an admitted patient, the one the order is
for), right drug (the scanned package barcode is the ordered GTIN), right dose, right
route, right time (a scheduled dose falls within the window around now and has not been
given yet). The first right that fails is named in the refusal.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

from .records import Encounter, Order

Right = Literal["patient", "drug", "dose", "route", "time"]


@dataclasses.dataclass(frozen=True)
class Scan:
    """What the nurse scanned and is about to give."""
    wristband_encounter: Encounter | None  # what the scanned wristband resolved to
    drug_code: str
    dose_value: float
    dose_unit: str
    route_code: str
    at: float


@dataclasses.dataclass(frozen=True)
class Refusal:
    right: Right
    reason: str
    duplicate: bool = False  # the dose of this slot was already given


@dataclasses.dataclass(frozen=True)
class Approval:
    slot: float  # the scheduled time this dose fulfils


def check(order: Order, scan: Scan, given_slots: set[float], window_s: float) -> Approval | Refusal:
    enc = scan.wristband_encounter
    if enc is None:
        return Refusal("patient", "the scanned wristband belongs to no patient")
    if not enc.admitted:
        return Refusal("patient", "the scanned wristband belongs to a discharged admission")
    if enc.patient_id != order.patient_id or enc.id != order.encounter_id:
        return Refusal("patient", "the scanned wristband is not the patient this order is for")
    if scan.drug_code != order.drug_code:
        return Refusal("drug", f"the scanned package is not the ordered drug ({order.drug_name})")
    if abs(scan.dose_value - order.dose_value) > 1e-9 * max(1.0, abs(order.dose_value)) \
            or scan.dose_unit != order.dose_unit:
        return Refusal("dose", f"the ordered dose is {order.dose_value:g} {order.dose_unit}, "
                               f"not {scan.dose_value:g} {scan.dose_unit}")
    if scan.route_code != order.route_code:
        return Refusal("route", f"the ordered route is {order.route_name} ({order.route_code})")
    if order.status != "active":
        return Refusal("time", f"the order is {order.status}")
    in_window = [s for s in order.slots(scan.at + window_s) if abs(s - scan.at) <= window_s]
    open_slots = [s for s in in_window if s not in given_slots]
    if open_slots:
        return Approval(slot=min(open_slots, key=lambda s: abs(s - scan.at)))
    if in_window:
        return Refusal("time", "the dose scheduled for now has already been given", duplicate=True)
    later = order.next_slot_after(scan.at)
    if later is not None:
        minutes = (later - scan.at) / 60
        return Refusal("time", f"no dose is due now; the next is due in {minutes:.0f} min")
    return Refusal("time", "no dose of this order is due now and none is left")
