"""Seeded hospital maps and delivery scenarios, for benchmarks and tests beyond the sample map.

A generated hospital has `floors` floors, each a two-lane main corridor with ward wings
(two-lane or single-lane, drawn per wing); every room hangs off its wing on its own
single-lane spur, and every robot has its own dead-end dock on a single-lane spur off a dock
bay. `lifts` lifts of `lift_capacity` robots serve every floor. The pharmacy, laboratory,
kitchen and laundry sit on drawn floors, each with hubs of three loading bays on single-lane
spurs. Corridors allow 1.5 m/s.

Node ids follow the sample hospital's naming (`-room-`, `-dock-`/`-park-`, `<service>-bay-N`),
so `random_scenario` draws robots and tasks on either.
"""
from __future__ import annotations

import math
import random

SERVICES = ("pharmacy", "laboratory", "kitchen", "laundry")
SOURCES = {"medicine": "pharmacy", "specimen": "laboratory", "meals": "kitchen",
           "linen": "laundry"}
CORRIDOR_STEP_M = 10.0


def generate_hospital(seed: int, floors: int = 4, lift_capacity: int = 1, lifts: int = 2,
                      docks: int = 60, service_hubs: int = 1) -> dict:
    """A hospital map (the scenario JSON's `map`) with at least `docks` robot docks; each
    service has `service_hubs` hubs of three loading bays (a large fleet needs more)."""
    if not 1 <= floors <= 50 or lifts < 1 or lift_capacity < 1 or docks < 0 or \
            not 1 <= service_hubs <= 4:
        raise ValueError("need 1..50 floors, at least one lift of capacity >= 1, docks >= 0 "
                         "and 1..4 hubs per service")
    rng = random.Random(seed)
    nodes: list[dict] = []
    edges: list[dict] = []

    def node(nid: str, floor: int, x: float, y: float) -> str:
        nodes.append({"id": nid, "floor": floor, "x": round(x, 2), "y": round(y, 2)})
        return nid

    def edge(a: str, b: str, length: float, single_lane: bool) -> None:
        edges.append({"from": a, "to": b, "length_m": round(length, 2),
                      "single_lane": single_lane})

    length = rng.randint(12, 18) + 3 * max(0, lifts - 2)  # corridor nodes per floor
    docks_per_floor = math.ceil(docks / floors)
    bays_per_floor = math.ceil(docks_per_floor / 4)
    # corridor positions: lifts spread along the corridor, services at the ends
    lift_at = [round((i + 1) * (length - 1) / (lifts + 1)) for i in range(lifts)]
    service_floor = {s: rng.randrange(min(floors, 2)) for s in SERVICES}
    service_at = dict(zip(SERVICES, (0, length - 1, 0, length - 1)))
    for f in range(floors):
        corridor = [node(f"f{f}-corridor-{i:02d}", f, CORRIDOR_STEP_M * i, 0.0)
                    for i in range(length)]
        for a, b in zip(corridor, corridor[1:]):
            edge(a, b, CORRIDOR_STEP_M, False)
        # ward wings on the north side, every other free corridor node
        free = [i for i in range(1, length - 1) if i not in lift_at]
        for w, i in enumerate(free[::2]):
            wing = chr(ord("a") + w)
            single = rng.random() < 0.5
            prev, depth = corridor[i], rng.randint(2, 4)
            for k in range(1, depth + 1):
                ward = node(f"f{f}-ward-{wing}{k}", f, CORRIDOR_STEP_M * i, 8.0 * k)
                edge(prev, ward, 8.0, single)
                for side, dx in (("w", -1), ("e", 1)):
                    spur = rng.uniform(3.0, 6.0)
                    room = node(f"f{f}-room-{wing}{k}{side}", f, CORRIDOR_STEP_M * i + dx * spur,
                                8.0 * k)
                    edge(ward, room, spur, True)
                prev = ward
        # dock bays on the south side, four single-lane docks each
        for d in range(bays_per_floor):
            i = free[d % len(free)]
            bay = node(f"f{f}-dockbay-{d:02d}", f, CORRIDOR_STEP_M * i, -6.0 - d)
            edge(corridor[i], bay, 6.0, False)
            for k in range(4):
                dock = node(f"f{f}-dock-{d:02d}{'abcd'[k]}", f, CORRIDOR_STEP_M * i + k - 1.5,
                            -8.0 - d)
                edge(bay, dock, 2.0, True)
        for s in SERVICES:
            if service_floor[s] != f:
                continue
            for h in range(service_hubs):  # hubs side by side, inwards from the end
                i = service_at[s] + (h if service_at[s] == 0 else -h)
                y = -6.0 if s in ("pharmacy", "laundry") else 6.0
                hub = node(s if h == 0 else f"{s}-{h + 1}", f, CORRIDOR_STEP_M * i, y)
                edge(corridor[i], hub, 6.0, False)
                for k in range(1, 4):
                    bay = node(f"{s}-bay-{3 * h + k}", f, CORRIDOR_STEP_M * i + 3.0 * (k - 2),
                               y * 1.5)
                    edge(hub, bay, 3.0, True)
    lift_list = []
    for n, i in enumerate(lift_at):
        lid = f"lift-{chr(ord('a') + n)}"
        landings = []
        for f in range(floors):
            landing = node(f"{lid}-f{f}", f, CORRIDOR_STEP_M * i, 5.0)
            edge(f"f{f}-corridor-{i:02d}", landing, 5.0, False)
            landings.append(landing)
        if floors > 1:
            lift_list.append({"id": lid, "nodes": landings, "capacity": lift_capacity,
                              "floor_travel_s": rng.choice([4.0, 5.0, 6.0])})
    return {"nodes": nodes, "edges": edges, "lifts": lift_list, "speed_limit_mps": 1.5}


def random_scenario(hmap: dict, robots: int, tasks: int, seed: int,
                    horizon_s: float = 3600.0) -> dict:
    """`robots` robots on distinct docks (or parking bays) and `tasks` deliveries released
    over `horizon_s`: medicine, meals and linen from their service's bays to rooms,
    specimens from rooms to the laboratory; a tenth of them urgent."""
    rng = random.Random(seed)
    ids = [n["id"] for n in hmap["nodes"]]
    rooms = [i for i in ids if "-room-" in i]
    docks = [i for i in ids if "-park-" in i or "-dock-" in i]
    if robots > len(docks):
        raise ValueError(f"{robots} robots but only {len(docks)} docks on this map")
    bays = {s: [i for i in ids if i.startswith(f"{s}-bay-")] for s in SERVICES}
    starts = rng.sample(docks, robots)
    fleet = [{"id": f"amr-{i:03d}", "start": p, "speed_mps": rng.choice([0.8, 1.0, 1.2]),
              "payload_kg": rng.choice([20, 40, 60]),
              "capabilities": ["medicine", "specimen", "linen", "meals"] if i % 5
              else ["linen", "meals"]}
             for i, p in enumerate(starts)]
    work = []
    for j in range(tasks):
        kind = rng.choice(["medicine"] * 4 + ["specimen"] * 3 + ["meals"] * 2 + ["linen"])
        room = rng.choice(rooms)
        bay = rng.choice(bays[SOURCES[kind]])
        pickup, dropoff = (room, bay) if kind == "specimen" else (bay, room)
        priority = rng.choice(["emergency"] + ["high"] * 3 + ["normal"] * 16)
        release = rng.uniform(0, horizon_s)
        work.append({"id": f"t{j:04d}", "pickup": pickup, "dropoff": dropoff,
                     "weight_kg": rng.choice([1, 3, 8, 15]), "kind": kind,
                     "priority": priority, "release_s": release,
                     "deadline_s": release + (600 if priority == "emergency" else 1500)})
    return {"map": hmap, "robots": fleet, "tasks": work}
