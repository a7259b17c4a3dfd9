"""Kubernetes-style status conditions (type, status, reason, message, lastTransitionTime)."""
from __future__ import annotations

import datetime


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(type_: str, ok: bool, reason: str, message: str = "") -> dict:
    return {"type": type_, "status": "True" if ok else "False", "reason": reason, "message": message}


def merge(old: list[dict] | None, new: list[dict], generation: int | None, at: str | None = None
          ) -> list[dict]:
    """`new` conditions with lastTransitionTime kept from `old` where the status did not change."""
    previous = {c.get("type"): c for c in old or []}
    at = at or now()
    merged = []
    for cond in new:
        before = previous.get(cond["type"])
        same = before is not None and before.get("status") == cond["status"]
        merged.append({**cond, **({"observedGeneration": generation} if generation is not None else {}),
                       "lastTransitionTime": before.get("lastTransitionTime", at) if same else at})
    return merged


def is_true(conditions: list[dict] | None, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions or [])


def without_times(conditions: list[dict] | None) -> list[dict]:
    """Conditions as compared for change (a new timestamp alone is no change)."""
    return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conditions or []]
