"""A nurse's worklist for a ward: what is alerting, overdue and due now (pure).

Medication: a scheduled dose not yet given is `due` within the administration window
around its time and `overdue` after it (looking back `lookback_s`). Observations: the next
NEWS2 observation set is due at the interval the last score calls for (RCP chart 3), or at
once when none has been scored this admission. Alerts: open (unacknowledged) NEWS2 alerts.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from .news2 import RISK_ORDER, News2Result, monitoring_interval_minutes
from .records import Alert, Encounter, Order

_STATUS_ORDER = {"alerting": 0, "overdue": 1, "due": 2}


@dataclasses.dataclass(frozen=True)
class LastScore:
    result: News2Result
    effective_at: float


@dataclasses.dataclass(frozen=True)
class Item:
    status: str  # alerting | overdue | due
    kind: str  # alert | medication | observations
    patient_id: str
    encounter_id: str
    due_at: float
    order_id: str | None = None
    drug_name: str | None = None
    dose: str | None = None
    route: str | None = None
    alert_id: str | None = None
    risk: str | None = None
    score: int | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def build(encounters: Iterable[Encounter], orders: Iterable[Order],
          given: Mapping[str, set[float]], open_alerts: Iterable[Alert],
          last_scores: Mapping[str, LastScore], now: float, window_s: float,
          nurse: str | None = None, lookback_s: float = 24 * 3600) -> list[Item]:
    """Items for the admitted `encounters` (only those assigned to `nurse` when given)."""
    mine = {e.id: e for e in encounters if e.admitted and (nurse is None or e.assigned_nurse == nurse)}
    items: list[Item] = []
    for alert in open_alerts:
        if alert.encounter_id in mine:
            items.append(Item("alerting", "alert", alert.patient_id, alert.encounter_id,
                              alert.raised_at, alert_id=alert.id, risk=alert.risk,
                              score=alert.score))
    for order in orders:
        if order.encounter_id not in mine or order.status != "active":
            continue
        done = given.get(order.id, set())
        for slot in order.slots(now + window_s):
            if slot in done or slot < now - lookback_s:
                continue
            status = "overdue" if slot < now - window_s else "due"
            items.append(Item(status, "medication", order.patient_id, order.encounter_id, slot,
                              order_id=order.id, drug_name=order.drug_name,
                              dose=f"{order.dose_value:g} {order.dose_unit}",
                              route=order.route_name))
    for enc in mine.values():
        last = last_scores.get(enc.id)
        due_at = enc.started_at if last is None else \
            last.effective_at + 60 * monitoring_interval_minutes(last.result)
        if due_at <= now + window_s:
            status = "overdue" if due_at < now - window_s else "due"
            items.append(Item(status, "observations", enc.patient_id, enc.id, due_at,
                              risk=None if last is None else last.result.risk,
                              score=None if last is None else last.result.score))
    items.sort(key=lambda i: (_STATUS_ORDER[i.status], -RISK_ORDER.get(i.risk or "low", 0),
                              i.due_at))
    return items
