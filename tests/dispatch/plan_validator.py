"""An independent checker of dispatch plans, written from the issue's rules, not from the
planner: it imports nothing from medmec.workloads.dispatch, so a planner bug cannot hide
behind the same bug here. Used by the tests (fixture `plan_problems`) and the benchmark.

`problems(scenario, plan)` lists every broken rule (empty when the plan is sound):
- every task is assigned once or listed unassigned with a reason;
- routes begin at the robot's start, keep time moving forward, use only corridors and lifts
  and never go faster than the robot's speed or the lift;
- each assigned task is picked up (not before its release) and then dropped off, in queue
  order, by a robot that may carry it;
- no two robots at one node at once (a robot holds its last node for good);
- never two robots in opposite directions on a single-lane corridor at once;
- no lift carries more robots than its capacity;
- no deadlock: robots parked for good never cut a task's pick-up or drop-off off from any
  robot's parking place.
Conflicts are found by sorting and sweeping, so plans of thousands of tasks check quickly.
"""
from __future__ import annotations

import math

EPS = 1e-6


def problems(scenario: dict, plan: dict, blocked: set[frozenset] = frozenset()) -> list[str]:
    out: list[str] = []
    hmap = scenario["map"]
    nodes = {n["id"]: n for n in hmap["nodes"]}
    edges: dict[frozenset, dict] = {}
    for e in hmap["edges"]:
        key = frozenset((e["from"], e["to"]))
        if key not in blocked and (key not in edges or e["length_m"] < edges[key]["length_m"]):
            edges[key] = e
    lift_of: dict[str, list] = {}
    for lift in hmap.get("lifts", []):
        for n in lift["nodes"]:
            lift_of.setdefault(n, []).append(lift)
    robots = {r["id"]: r for r in scenario["robots"]}
    tasks = {t["id"]: t for t in scenario["tasks"]}

    seen = [t for a in plan["assignments"] for t in a["tasks"]] + \
           [u["task"] for u in plan["unassigned"]]
    if sorted(seen) != sorted(tasks):
        out.append("tasks planned and tasks submitted differ: "
                   f"{sorted(set(seen) ^ set(tasks))[:5]}, or one is planned twice")
    for u in plan["unassigned"]:
        if not u.get("reason"):
            out.append(f"unassigned task {u['task']} has no reason")

    routes = {r["robot"]: [(w["node"], w["t"]) for w in r["waypoints"]] for r in plan["routes"]}
    stays: dict[str, list] = {}   # node -> (from, to, robot)
    lanes: dict[frozenset, list] = {}  # corridor -> (t0, t1, direction, robot)
    rides: dict[str, list] = {}   # lift -> (t0, t1)
    capacity = {lift["id"]: lift["capacity"] for lift in hmap.get("lifts", [])}
    parked: dict[str, str] = {}   # node -> robot parked there for good
    for rid, wp in routes.items():
        robot = robots[rid]
        if not wp or wp[0][0] != robot["start"]:
            out.append(f"{rid}: route does not begin at its start {robot['start']}")
            continue
        arrived = wp[0][1]
        for (a, ta), (b, tb) in zip(wp, wp[1:]):
            if tb < ta - EPS:
                out.append(f"{rid}: time goes back at {a}->{b}")
            if a == b:
                continue
            stays.setdefault(a, []).append((arrived, ta, rid))
            arrived = tb
            edge = edges.get(frozenset((a, b)))
            lift = next((lf for lf in lift_of.get(a, []) if b in lf["nodes"]), None)
            if edge is not None:
                need = edge["length_m"] / robot["speed_mps"]
                if edge.get("single_lane"):
                    lanes.setdefault(frozenset((a, b)), []).append((ta, tb, a, rid))
            elif lift is not None:
                need = lift["floor_travel_s"] * abs(nodes[a]["floor"] - nodes[b]["floor"])
                rides.setdefault(lift["id"], []).append((ta, tb))
            else:
                out.append(f"{rid}: no corridor or lift between {a} and {b}")
                continue
            if tb - ta < need - EPS:
                out.append(f"{rid}: {a}->{b} in {tb - ta:.3f} s, faster than {need:.3f} s")
        stays.setdefault(wp[-1][0], []).append((arrived, math.inf, rid))
        parked[wp[-1][0]] = rid

    for a in plan["assignments"]:
        rid, robot = a["robot"], robots[a["robot"]]
        wp = routes.get(rid, [])
        i = 0
        for tid in a["tasks"]:
            task = tasks[tid]
            if task["weight_kg"] > robot["payload_kg"]:
                out.append(f"{tid}: {task['weight_kg']} kg on {rid} "
                           f"(payload {robot['payload_kg']})")
            if task["kind"] not in robot["capabilities"]:
                out.append(f"{tid}: kind {task['kind']} on {rid} which lacks it")
            i = _visit(wp, i, task["pickup"], task.get("release_s", 0.0))
            if i is None:
                out.append(f"{tid}: {rid} never picks it up at {task['pickup']} after release")
                break
            i = _visit(wp, i, task["dropoff"], 0.0)
            if i is None:
                out.append(f"{tid}: {rid} never drops it off at {task['dropoff']} after pick-up")
                break

    for node, held in stays.items():
        for (a0, a1, ra), (b0, b1, rb) in _overlaps(held):
            out.append(f"vertex conflict at {node}: {ra} [{a0:.2f},{a1:.2f}] "
                       f"and {rb} [{b0:.2f},{b1:.2f}]")
    for key, used in lanes.items():
        for direction in {u[2] for u in used}:
            one = [(t0, t1, rid) for t0, t1, d, rid in used if d == direction]
            other = [(t0, t1, rid) for t0, t1, d, rid in used if d != direction]
            for (a0, a1, ra), (b0, b1, rb) in _crossings(one, other):
                out.append(f"head-on on single-lane {sorted(key)}: {ra} and {rb} "
                           f"at {max(a0, b0):.2f} s")
    for lift_id, used in rides.items():
        events = sorted([(t0, 1) for t0, _ in used] + [(t1, -1) for _, t1 in used])
        load = 0
        for _, step in events:  # at equal times a leaving robot frees room first
            load += step
            if load > capacity[lift_id]:
                out.append(f"lift {lift_id} carries {load} robots, capacity {capacity[lift_id]}")
                break
    out += _parked_cut_off(hmap, edges, parked, plan, tasks)
    return out


def _overlaps(held: list) -> list:
    """Pairs of closed intervals of different robots that overlap (a sweep by start)."""
    found = []
    held = sorted(held)
    best: list = []  # up to two (end, start, robot) of distinct robots with the latest ends
    for cur in held:
        s, e, rid = cur
        for end, start, other in best:
            if other != rid and s <= end:
                found.append(((start, end, other), cur))
                break
        mine = [b for b in best if b[2] == rid]
        if mine and mine[0][0] >= e:
            continue
        best = sorted([b for b in best if b[2] != rid] + [(e, s, rid)], reverse=True)[:2]
    return found


def _crossings(one: list, other: list) -> list:
    """Pairs (a in one, b in other) of open intervals that overlap, by two pointers."""
    found = []
    other = sorted(other)
    for a in sorted(one):
        for b in other:
            if b[0] >= a[1]:
                break
            if a[0] < b[1]:
                found.append((a, b))
    return found


def _parked_cut_off(hmap, edges, parked, plan, tasks) -> list[str]:
    """Robots standing still for good must not wall off a place some task needs."""
    parent = {n["id"]: n["id"] for n in hmap["nodes"]}

    def root(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    links = [tuple(k) for k in edges] + [(a, b) for lift in hmap.get("lifts", [])
                                         for a, b in zip(lift["nodes"], lift["nodes"][1:])]
    neighbours: dict[str, set] = {}
    for a, b in links:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
        if a not in parked and b not in parked:
            parent[root(a)] = root(b)
    out = []
    doors = {p: {root(n) for n in neighbours.get(p, ()) if n not in parked} for p in parked}
    for a in plan["assignments"]:
        for tid in a["tasks"]:
            for place in (tasks[tid]["pickup"], tasks[tid]["dropoff"]):
                if place in parked:
                    continue
                for p, rid in parked.items():
                    if root(place) not in doors[p]:
                        out.append(f"{rid} parked at {p} cuts {place} (task {tid}) off from it")
                        return out
    return out


def _visit(wp: list, start: int, node: str, not_before: float) -> int | None:
    """Index of the first stay at `node` from waypoint `start` on that lasts until
    `not_before` or later; None if there is none."""
    for i in range(start, len(wp)):
        if wp[i][0] != node:
            continue
        j = i
        while j + 1 < len(wp) and wp[j + 1][0] == node:
            j += 1
        leaves = math.inf if j + 1 == len(wp) else wp[j][1]
        if leaves >= not_before - EPS:
            return j
    return None
