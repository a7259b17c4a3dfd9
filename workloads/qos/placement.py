"""Where a critical slice's inference services may run, given how its links measure (pure).

The QoS controller keeps `status.qos.avoidBaseStations` on the MedicalSlice: a base station
whose link breaches joins it while another covered base station meets the budget, and
leaves it once its link has met the budget for the hold-down time. Where the pods then go
is the operator's decision (`medmec.operator.placement`).
"""
from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence


def healthy_since(previous: datetime.datetime | None, ok: bool | None,
                  now: datetime.datetime) -> datetime.datetime | None:
    """Since when a link has met its budget without a break (None while it does not). A link
    not judged yet (a restarted prober filling its window) keeps its streak."""
    if ok is None:
        return previous
    if ok is False:
        return None
    return previous or now


def next_avoid(avoid: Sequence[str], covered: Sequence[str], ok: Mapping[str, bool | None],
               since: Mapping[str, datetime.datetime | None], now: datetime.datetime,
               hold_down_s: float, critical: bool) -> list[str]:
    """The base stations to keep critical services off from now on.

    `ok` is each covered base station's verdict (None: not judged yet) and `since` when it
    started meeting its budget. Only critical slices shift."""
    if not critical:
        return []
    hold = datetime.timedelta(seconds=hold_down_s)
    kept = [b for b in avoid if b in covered
            and not (ok.get(b) is True and since.get(b) is not None and now - since[b] >= hold)]
    for b in covered:
        if ok.get(b) is False and b not in kept:
            alternatives = [o for o in covered if o != b and o not in kept and ok.get(o) is True]
            if alternatives:
                kept.append(b)
    if not [b for b in covered if b not in kept]:  # never avoid everything
        return []
    return sorted(kept)
