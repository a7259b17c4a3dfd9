"""Whether this replica stands by (pure): kopf pauses a replica's handlers while a live peer
of higher priority, or another of its own priority, is in the peering object; the
operator's own periodic re-checks follow the same rule, so a standby writes nothing."""
from __future__ import annotations

import datetime


def _alive(record: dict, now: datetime.datetime) -> bool:
    try:
        seen = datetime.datetime.fromisoformat(str(record["lastseen"]).replace("Z", "+00:00"))
        return seen + datetime.timedelta(seconds=int(record.get("lifetime", 60))) > now
    except (KeyError, TypeError, ValueError):
        return False


def standing_by(peers: dict, priority: int, now: datetime.datetime | None = None) -> bool:
    """`peers` is the peering object's status (identity -> priority, lifetime, lastseen),
    this replica's own record included."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    alive = [r for r in peers.values() if isinstance(r, dict) and _alive(r, now)]
    higher = any(int(r.get("priority", 0)) > priority for r in alive)
    same = sum(int(r.get("priority", 0)) == priority for r in alive)
    return higher or same > 1
