"""Fixtures of the dispatch tests: the sample hospital, scenarios on it, and an independent
plan validator (fixture `plan_problems`).

The validator is written from the issue's rules, not from the planner: it shares no code
with medmec.workloads.dispatch, so a planner bug cannot hide behind the same bug here.
"""
from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import pytest

import medmec.workloads.dispatch

SAMPLE_MAP = Path(medmec.workloads.dispatch.__file__).parent / "maps" / "sample-hospital.json"
KINDS = ["medicine", "specimen", "linen", "meals"]


@pytest.fixture
def plan_problems():
    return problems


@pytest.fixture
def hospital() -> dict:
    return json.loads(SAMPLE_MAP.read_text())


@pytest.fixture
def busy_scenario(hospital) -> dict:
    """12 robots parked on three floors, 60 tasks between rooms and services of all floors."""
    rng = random.Random(7)
    ids = [n["id"] for n in hospital["nodes"]]
    places = [i for i in ids if "-room-" in i] + ["pharmacy", "laboratory", "kitchen", "laundry"]
    parks = [i for i in ids if "-park-" in i]
    robots = [{"id": f"robot-{i}", "start": p, "speed_mps": rng.choice([0.8, 1.0, 1.2]),
               "payload_kg": rng.choice([15, 40]), "capabilities": rng.sample(KINDS, 3)}
              for i, p in enumerate(rng.sample(parks, 12))]
    tasks = []
    for j in range(60):
        pickup, dropoff = rng.sample(places, 2)
        release = rng.uniform(0, 600)
        tasks.append({"id": f"task-{j}", "pickup": pickup, "dropoff": dropoff,
                      "weight_kg": rng.choice([2, 10, 25]), "kind": rng.choice(KINDS),
                      "priority": rng.choice(["normal"] * 6 + ["high", "emergency"]),
                      "release_s": release, "deadline_s": release + 900})
    return {"map": hospital, "robots": robots, "tasks": tasks}

EPS = 1e-6


def problems(scenario: dict, plan: dict, blocked: set[frozenset] = frozenset()) -> list[str]:
    out: list[str] = []
    nodes = {n["id"]: n for n in scenario["map"]["nodes"]}
    edges: dict[frozenset, dict] = {}
    for e in scenario["map"]["edges"]:
        key = frozenset((e["from"], e["to"]))
        if key not in blocked and (key not in edges or e["length_m"] < edges[key]["length_m"]):
            edges[key] = e
    lift_of = {}
    for lift in scenario["map"].get("lifts", []):
        for n in lift["nodes"]:
            lift_of.setdefault(n, []).append(lift)
    robots = {r["id"]: r for r in scenario["robots"]}
    tasks = {t["id"]: t for t in scenario["tasks"]}

    # every task exactly once: assigned or unassigned with a reason
    seen = [t for a in plan["assignments"] for t in a["tasks"]] + \
           [u["task"] for u in plan["unassigned"]]
    if sorted(seen) != sorted(tasks):
        out.append(f"tasks planned {sorted(seen)} != submitted {sorted(tasks)}")
    for u in plan["unassigned"]:
        if not u.get("reason"):
            out.append(f"unassigned task {u['task']} has no reason")

    routes = {r["robot"]: [(w["node"], w["t"]) for w in r["waypoints"]] for r in plan["routes"]}
    stays, lanes, rides = [], [], []  # (node, robot, from, to), (edge, dir, t0, t1), (lift, t0, t1)
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
            stays.append((a, rid, arrived, ta))
            arrived = tb
            edge = edges.get(frozenset((a, b)))
            lift = next((lf for lf in lift_of.get(a, []) if b in lf["nodes"]), None)
            if edge is not None:
                need = edge["length_m"] / robot["speed_mps"]
                if edge.get("single_lane"):
                    lanes.append((frozenset((a, b)), (a, b), ta, tb, rid))
            elif lift is not None:
                need = lift["floor_travel_s"] * abs(nodes[a]["floor"] - nodes[b]["floor"])
                rides.append((lift["id"], ta, tb, lift["capacity"], rid))
            else:
                out.append(f"{rid}: no corridor or lift between {a} and {b}")
                continue
            if tb - ta < need - EPS:
                out.append(f"{rid}: {a}->{b} in {tb - ta:.3f} s, faster than {need:.3f} s")
        stays.append((wp[-1][0], rid, arrived, math.inf))

    # pick-up (not before release) before drop-off, in queue order; payload and kind
    for a in plan["assignments"]:
        rid, robot = a["robot"], robots[a["robot"]]
        wp = routes.get(rid, [])
        i = 0
        for tid in a["tasks"]:
            task = tasks[tid]
            if task["weight_kg"] > robot["payload_kg"]:
                out.append(f"{tid}: {task['weight_kg']} kg on {rid} (payload {robot['payload_kg']})")
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

    by_node: dict[str, list] = {}
    for node, rid, t0, t1 in stays:
        by_node.setdefault(node, []).append((t0, t1, rid))
    for node, held in by_node.items():
        for (a0, a1, ra), (b0, b1, rb) in itertools.combinations(held, 2):
            if ra != rb and a0 <= b1 and b0 <= a1:
                out.append(f"vertex conflict at {node}: {ra} [{a0:.2f},{a1:.2f}] "
                           f"and {rb} [{b0:.2f},{b1:.2f}]")
    for (ka, da, a0, a1, ra), (kb, db, b0, b1, rb) in itertools.combinations(lanes, 2):
        if ka == kb and da != db and ra != rb and a0 < b1 and b0 < a1:
            out.append(f"head-on on single-lane {sorted(ka)}: {ra} and {rb}")
    for lift_id in {r[0] for r in rides}:
        events = sorted([(t0, 1) for lf, t0, _, _, _ in rides if lf == lift_id] +
                        [(t1, -1) for lf, _, t1, _, _ in rides if lf == lift_id])
        capacity = next(r[3] for r in rides if r[0] == lift_id)
        load = 0
        for _, step in events:  # at equal times a leaving robot frees room first
            load += step
            if load > capacity:
                out.append(f"lift {lift_id} carries {load} robots, capacity {capacity}")
                break
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


def metrics(scenario: dict, plan: dict) -> dict:
    """Distance recomputed from the routes (corridor metres; lift rides cover none)."""
    lengths = {frozenset((e["from"], e["to"])): e["length_m"] for e in scenario["map"]["edges"]}
    total = 0.0
    for r in plan["routes"]:
        for a, b in zip(r["waypoints"], r["waypoints"][1:]):
            if a["node"] != b["node"]:
                total += lengths.get(frozenset((a["node"], b["node"])), 0.0)
    return {"total_distance_m": total}


class DispatchServer:
    """`medmec serve dispatch` as a real process on free loopback ports."""

    def __init__(self, tmp_path: Path, map_path: Path, heartbeat_timeout_s: float):
        self.tmp_path, self.map_path, self.timeout = tmp_path, map_path, heartbeat_timeout_s
        self.state_dir = tmp_path / "state"

    def start(self) -> DispatchServer:
        import grpc

        from medmec.workloads.dispatch.local_service import LocalDispatcher
        from medmec.workloads.dispatch.protos import dispatch_pb2_grpc

        self.local = LocalDispatcher.start(self.tmp_path, self.map_path, self.timeout,
                                           state_dir=self.state_dir)
        self.http = self.local.url
        self.channel = grpc.insecure_channel(self.local.target)
        self.stub = dispatch_pb2_grpc.DispatchStub(self.channel)
        return self

    def stop(self, kill: bool = False) -> None:
        self.channel.close()
        self.local.stop(kill)

    def fleet(self) -> dict:
        return self.local.fleet()


@pytest.fixture
def dispatch_server(tmp_path):
    servers = []

    def start(map_path: Path = SAMPLE_MAP, heartbeat_timeout_s: float = 30.0) -> DispatchServer:
        server = DispatchServer(tmp_path, map_path, heartbeat_timeout_s).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.local.proc.alive():
            server.stop()
