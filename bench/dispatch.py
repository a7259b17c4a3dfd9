"""Dispatch benchmark: 50 robots, 500 tasks on the 3-floor sample hospital.

Side by side in one run: the planner (rounds of optimal assignment + conflict-free routing),
a greedy nearest-robot baseline routed by the same router, and the assignment lower bound on
total distance computed without traffic. Prints planning time, makespan, distance, late tasks
and the ratios. Exits non-zero only if a plan is missing tasks it should have planned.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import time
from pathlib import Path

import medmec.workloads.dispatch
from medmec.workloads.dispatch.assignment import RobotReq, TaskReq, can_carry
from medmec.workloads.dispatch.graph import HospitalGraph
from medmec.workloads.dispatch.planner import lower_bound_m, plan, robots_of, to_task_req
from medmec.workloads.dispatch.scenario import Scenario

MAP = Path(medmec.workloads.dispatch.__file__).parent / "maps" / "sample-hospital.json"
ROBOTS, TASKS, HORIZON_S = 50, 500, 3600.0
SOURCES = {"medicine": "pharmacy", "meals": "kitchen", "linen": "laundry"}


def scenario(seed: int = 2026) -> Scenario:
    rng = random.Random(seed)
    hmap = json.loads(MAP.read_text())
    ids = [n["id"] for n in hmap["nodes"]]
    rooms = [i for i in ids if "-room-" in i]
    parks = rng.sample([i for i in ids if "-park-" in i], ROBOTS)
    robots = [{"id": f"amr-{i:02d}", "start": p, "speed_mps": rng.choice([0.8, 1.0, 1.2]),
               "payload_kg": rng.choice([20, 40, 60]),
               "capabilities": ["medicine", "specimen", "linen", "meals"] if i % 5
               else ["linen", "meals"]}
              for i, p in enumerate(parks)]
    tasks = []
    for j in range(TASKS):
        kind = rng.choice(["medicine"] * 4 + ["specimen"] * 3 + ["meals"] * 2 + ["linen"])
        room = rng.choice(rooms)
        bay = f"{'laboratory' if kind == 'specimen' else SOURCES[kind]}-bay-{rng.randint(1, 3)}"
        pickup, dropoff = (room, bay) if kind == "specimen" else (bay, room)
        priority = rng.choice(["emergency"] + ["high"] * 3 + ["normal"] * 16)
        release = rng.uniform(0, HORIZON_S)
        tasks.append({"id": f"t{j:03d}", "pickup": pickup, "dropoff": dropoff,
                      "weight_kg": rng.choice([1, 3, 8, 15]), "kind": kind,
                      "priority": priority, "release_s": release,
                      "deadline_s": release + (600 if priority == "emergency" else 1500)})
    return Scenario.model_validate({"map": hmap, "robots": robots, "tasks": tasks})


def greedy_queues(graph: HospitalGraph, robots: list[RobotReq],
                  tasks: list[TaskReq]) -> dict[str, list[TaskReq]]:
    """Baseline: by release time, each task to the capable robot nearest its pick-up."""
    where = {r.id: (r.node, 0.0) for r in robots}
    queues: dict[str, list[TaskReq]] = {r.id: [] for r in robots}
    for task in sorted(tasks, key=lambda t: t.release_s):
        capable = [r for r in robots if can_carry(r, task)]
        robot = min(capable, key=lambda r: graph.travel_times(r.speed_mps)[where[r.id][0],
                                                                           task.pickup])
        tt = graph.travel_times(robot.speed_mps)
        node, clock = where[robot.id]
        start = max(clock + tt[node, task.pickup], task.release_s)
        where[robot.id] = (task.dropoff, start + tt[task.pickup, task.dropoff])
        queues[robot.id].append(task)
    return queues


@contextlib.contextmanager
def timed():
    """Wall and CPU seconds of the block (CPU time is steadier on a shared machine)."""
    took = {}
    wall, cpu = time.perf_counter(), time.process_time()
    yield took
    took["wall"], took["cpu"] = time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    sc = scenario()
    graph = HospitalGraph(sc.map)
    robots = robots_of(sc, graph)

    graph.travel_times(1.0)  # warm scipy's first call outside the timings

    with timed() as ours_s:
        ours = plan(graph, robots, sc.tasks)
    with timed() as greedy_s:
        reqs = [to_task_req(t, graph) for t in sc.tasks]
        greedy = plan(graph, robots, sc.tasks, queues=greedy_queues(graph, robots, reqs))
    with timed() as bound_s:
        bound = lower_bound_m(graph, robots, sc.tasks)

    print(f"dispatch: {ROBOTS} robots, {TASKS} tasks released over {HORIZON_S:.0f} s, "
          f"3-floor sample hospital ({len(graph.ids)} nodes, 2 lifts)")
    print(f"{'plan':<34}{'wall s':>8}{'cpu s':>8}{'makespan s':>12}{'distance m':>12}"
          f"{'late':>6}{'unplanned':>10}")
    for name, p, secs in (("assignment rounds + SIPP (ours)", ours, ours_s),
                          ("greedy nearest robot + SIPP", greedy, greedy_s)):
        print(f"{name:<34}{secs['wall']:>8.2f}{secs['cpu']:>8.2f}{p.makespan_s:>12.0f}"
              f"{p.total_distance_m:>12.0f}{len(p.late):>6}{len(p.unassigned):>10}")
    print(f"{'lower bound (no traffic)':<34}{bound_s['wall']:>8.2f}{bound_s['cpu']:>8.2f}"
          f"{'':>12}{bound:>12.0f}")
    print()
    print(f"distance  ours / lower bound   {ours.total_distance_m / bound:.3f}")
    print(f"distance  greedy / lower bound {greedy.total_distance_m / bound:.3f}")
    print(f"distance  ours / greedy        {ours.total_distance_m / greedy.total_distance_m:.3f}")
    print(f"makespan  ours / greedy        {ours.makespan_s / greedy.makespan_s:.3f}")
    print(f"planning time ours {ours_s['wall']:.2f} s wall, {ours_s['cpu']:.2f} s cpu "
          f"(aim: under 1 s; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for name, p in (("ours", ours), ("greedy", greedy)):
        if p.unassigned:
            print(f"FAILED: {name} left {len(p.unassigned)} tasks unplanned, e.g. "
                  f"{next(iter(p.unassigned.items()))}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
