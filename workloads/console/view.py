"""What the console shows, built from Kubernetes objects and workload answers (pure).

Nursing alerts pass through a whitelist of fields: patient and encounter identifiers never
reach the page."""
from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping

from medmec.operator.meta import BASE_STATION_LABEL, GPU_RESOURCE
from medmec.operator.profiles import resolve_qos

ALERT_FIELDS = ("id", "ward", "risk", "score", "parameters", "raised_at", "effective_at",
                "acknowledged_at")


def _gpus(quantity) -> int:
    try:
        return int(str(quantity or 0))
    except ValueError:
        return 0


def _condition(obj: Mapping, type_: str) -> dict | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c.get("type") == type_), None)


def base_stations(stations: Iterable[Mapping], slices: Iterable[Mapping], nodes: Iterable[Mapping],
                  pods: Iterable[Mapping]) -> list[dict]:
    """Radio capacity against what admitted slices reserve, and GPUs against pod requests."""
    slices = list(slices)
    node_station = {n["metadata"]["name"]: n["metadata"].get("labels", {}).get(BASE_STATION_LABEL)
                    for n in nodes}
    capacity: dict[str, int] = {}
    for n in nodes:
        bs = node_station[n["metadata"]["name"]]
        if bs:
            capacity[bs] = capacity.get(bs, 0) + _gpus(n.get("status", {}).get("capacity", {})
                                                       .get(GPU_RESOURCE))
    used: dict[str, int] = {}
    for p in pods:
        bs = node_station.get(p.get("spec", {}).get("nodeName"))
        if not bs or p.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        used[bs] = used.get(bs, 0) + sum(
            _gpus(c.get("resources", {}).get("requests", {}).get(GPU_RESOURCE))
            for c in p["spec"].get("containers", []))
    out = []
    for s in sorted(stations, key=lambda s: s["metadata"]["name"]):
        name, spec = s["metadata"]["name"], s["spec"]
        shares = [{"slice": f"{ms['metadata']['namespace']}/{ms['metadata']['name']}",
                   "uplinkMbps": a.get("uplinkMbps", 0), "downlinkMbps": a.get("downlinkMbps", 0)}
                  for ms in slices for a in (ms.get("status") or {}).get("allocations") or []
                  if a.get("baseStation") == name]
        out.append({
            "name": name, "zone": spec.get("zone"), "location": spec.get("location", ""),
            "uplinkMbps": spec.get("uplinkMbps", 0), "downlinkMbps": spec.get("downlinkMbps", 0),
            "allocations": shares,
            "gpus": {"capacity": capacity.get(name, 0), "used": used.get(name, 0)},
        })
    return out


def medical_slices(slices: Iterable[Mapping]) -> list[dict]:
    out = []
    for ms in sorted(slices, key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"])):
        spec, status = ms["spec"], ms.get("status") or {}
        try:
            budget = resolve_qos(spec).model_dump()
        except ValueError:
            budget = None
        qos = status.get("qos") or {}
        met = _condition(ms, "QoSMet")
        out.append({
            "namespace": ms["metadata"]["namespace"], "name": ms["metadata"]["name"],
            "profile": spec.get("profile") or "explicit", "sliceType": spec.get("sliceType"),
            "priority": spec.get("priority", "standard"), "phase": status.get("phase", "Pending"),
            "baseStations": list(spec.get("baseStations") or []), "budget": budget,
            "qosMet": {k: met.get(k) for k in ("status", "reason", "message", "lastTransitionTime")}
            if met else {"status": "Unknown", "reason": "NotProbed", "message": "no QoS probe yet"},
            "measured": qos.get("measured") or [], "avoidBaseStations": qos.get("avoidBaseStations") or [],
            "lastProbeTime": qos.get("lastProbeTime"),
        })
    return out


def inference_services(services: Iterable[Mapping], p99: Mapping[str, float | None]) -> list[dict]:
    out = []
    for e in sorted(services, key=lambda e: (e["metadata"]["namespace"], e["metadata"]["name"])):
        spec, status = e["spec"], e.get("status") or {}
        key = f"{e['metadata']['namespace']}/{e['metadata']['name']}"
        canary = spec.get("canary")
        out.append({
            "namespace": e["metadata"]["namespace"], "name": e["metadata"]["name"],
            "slice": spec["sliceRef"]["name"], "model": spec["model"]["name"],
            "version": spec["model"]["version"],
            "canary": f"{canary['version']} ({canary['trafficPercent']}%)" if canary else None,
            "replicas": status.get("replicas", 0), "readyReplicas": status.get("readyReplicas", 0),
            "minReplicas": (spec.get("scaling") or {}).get("minReplicas", 1),
            "phase": status.get("phase", "Pending"),
            "zones": ((status.get("placement") or {}).get("zones")) or [],
            "p99Ms": p99.get(key),
        })
    return out


def _map_nodes(hospital_map: Mapping | None) -> dict[str, dict]:
    return {n["id"]: n for n in (hospital_map or {}).get("nodes", [])}


# tasks still in the queue, in the dispatcher's task states
OPEN_TASKS = ("pending", "assigned", "picked_up")


def fleet(crf: Mapping, hospital_map: Mapping | None, dispatch: Mapping | None) -> dict:
    """Robots on the floor map and the task queue, from the dispatcher's fleet view
    (GET /v1/fleet); without it, robots are shown at their home node with state unknown."""
    nodes = _map_nodes(hospital_map)
    live = {r.get("id"): r for r in (dispatch or {}).get("robots", [])}
    robots = []
    for r in crf["spec"].get("robots", []):
        seen = live.get(r["id"], {})
        node = seen.get("node") or r.get("home")
        where = nodes.get(node, {})
        robots.append({"id": r["id"], "node": node, "x": where.get("x"), "y": where.get("y"),
                       "floor": where.get("floor"), "state": seen.get("state", "unknown"),
                       "battery": seen.get("battery_pct"), "queue": seen.get("queue", [])})
    tasks = [{"id": t.get("id"), "kind": t.get("kind"), "priority": t.get("priority"),
              "pickup": t.get("pickup"), "dropoff": t.get("dropoff"),
              "robot": t.get("robot_id") or "", "state": t.get("status")}
             for t in (dispatch or {}).get("tasks", []) if t.get("status") in OPEN_TASKS]
    return {"namespace": crf["metadata"]["namespace"], "name": crf["metadata"]["name"],
            "map": {"nodes": list(nodes.values()), "edges": (hospital_map or {}).get("edges", []),
                    "lifts": (hospital_map or {}).get("lifts", [])},
            "robots": robots, "tasks": tasks, "live": dispatch is not None}


def alert_feed(alerts: Iterable[Mapping]) -> list[dict]:
    """Nursing alerts with only the whitelisted fields, newest first."""
    safe = [{k: a[k] for k in ALERT_FIELDS if k in a} for a in alerts]
    return sorted(safe, key=lambda a: a.get("raised_at") or "", reverse=True)


def incoming_ambulances(transports: Iterable[Mapping], now: float) -> list[dict]:
    """Ambulances on their way, soonest first, from the EmergencyTransports' status: where
    each is, which edge site holds its session, NEWS2, when it is expected and the ETA from
    `now` (so it does not age between two status refreshes). The session's pseudonym is
    not shown (the ward sees the patient through its own admission)."""
    out = []
    for et in transports:
        spec, status = et["spec"], et.get("status") or {}
        arrived = _condition(et, "Arrived")
        if arrived and arrived.get("status") == "True":
            continue
        following = _condition(et, "Following") or {}
        news2 = status.get("news2") or {}
        out.append({
            "namespace": et["metadata"]["namespace"], "name": et["metadata"]["name"],
            "vehicle": spec["vehicle"]["id"], "callSign": spec["vehicle"].get("callSign", ""),
            "ward": (spec.get("destination") or {}).get("ward"),
            "servingBaseStation": status.get("servingBaseStation"), "edgeSite": status.get("edgeSite"),
            "news2": news2.get("score"), "risk": news2.get("risk"), "trend": news2.get("trend"),
            "expectedArrival": status.get("expectedArrival"),
            "etaSeconds": _eta(status, now), "openAlerts": status.get("openAlerts") or 0,
            "following": {k: following.get(k) for k in ("status", "reason", "message")},
        })
    return sorted(out, key=lambda a: (a["etaSeconds"] is None, a["etaSeconds"] or 0, a["name"]))


def _eta(status: Mapping, now: float) -> int | None:
    """Seconds from `now` to the expected arrival; the status's own figure without one."""
    try:
        expected = datetime.datetime.fromisoformat(status["expectedArrival"].replace("Z", "+00:00"))
    except (KeyError, AttributeError, ValueError):
        return status.get("etaSeconds")
    return max(0, round(expected.timestamp() - now))
