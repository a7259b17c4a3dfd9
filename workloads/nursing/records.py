"""The nursing service's own records (what the database stores), independent of FHIR.

Times are POSIX seconds (UTC). The FHIR codec turns these into FHIR resources and back.
"""
from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Encounter:
    """One admission of a patient to a ward; the wristband printed for it identifies them."""
    id: str
    patient_id: str
    ward: str
    wristband: str
    status: str  # "in-progress" while admitted, "finished" after discharge
    spo2_scale: int
    assigned_nurse: str | None
    started_at: float
    ended_at: float | None = None
    # while the patient is on the way (an ambulance's pre-arrival admission): when they are
    # expected at the ward; None once they are here
    expected_arrival: float | None = None

    @property
    def admitted(self) -> bool:
        return self.status == "in-progress"


ARRIVAL_PAST_S = 300.0  # clock skew and a late report: an arrival this far past is still accepted
ARRIVAL_AHEAD_S = 12 * 3600.0  # no ambulance is expected further ahead than this


def expected_arrival_problem(at: float, now: float) -> str | None:
    """Why `at` cannot be a patient's expected arrival at `now`, or None."""
    if at < now - ARRIVAL_PAST_S:
        return f"the expected arrival is {round(now - at)} s in the past"
    if at > now + ARRIVAL_AHEAD_S:
        return (f"the expected arrival is more than {ARRIVAL_AHEAD_S / 3600:g} h ahead "
                f"({round(at - now)} s)")
    return None


@dataclasses.dataclass(frozen=True)
class Order:
    """An active medication order (MedicationRequest): what, how much, which route, when."""
    id: str
    patient_id: str
    encounter_id: str
    ward: str
    drug_code: str  # the GTIN printed as the package barcode
    drug_name: str
    dose_value: float
    dose_unit: str  # UCUM
    route_code: str
    route_name: str
    start: float  # first dose
    interval_s: float  # between doses
    count: int | None  # number of doses; None while the order runs until stopped
    status: str  # "active" | "stopped"
    ordered_by: str

    @property
    def last_slot(self) -> float | None:
        """The last scheduled dose; None while the order runs until stopped."""
        return None if self.count is None else self.start + (self.count - 1) * self.interval_s

    def slots(self, until: float) -> list[float]:
        """Scheduled dose times from the first up to `until` (inclusive)."""
        if until < self.start:
            return []
        n = math.floor((until - self.start) / self.interval_s) + 1
        if self.count is not None:
            n = min(n, self.count)
        return [self.start + k * self.interval_s for k in range(n)]

    def next_slot_after(self, t: float) -> float | None:
        k = 0 if t < self.start else math.floor((t - self.start) / self.interval_s) + 1
        if self.count is not None and k >= self.count:
            return None
        return self.start + k * self.interval_s


@dataclasses.dataclass(frozen=True)
class Administration:
    """A dose given against one scheduled slot of an order."""
    id: str
    order_id: str
    patient_id: str
    encounter_id: str
    ward: str
    slot: float  # the scheduled time this dose fulfils
    given_at: float
    dose_value: float
    dose_unit: str
    route_code: str
    given_by: str


@dataclasses.dataclass(frozen=True)
class Alert:
    """A NEWS2 escalation raised to a ward's nurses."""
    id: str
    ward: str
    patient_id: str
    encounter_id: str
    score: int
    risk: str
    parameters: dict[str, int]
    effective_at: float  # when the vitals were measured
    raised_at: float
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
