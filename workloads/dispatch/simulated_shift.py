"""A shift driven through a `Fleet` on a simulated clock, as the dispatch service sees it.

Robots follow their routes on time: each reports where it is when it reaches a node, and
each pick-up and drop-off when its route has it there; tasks are submitted when they are
released (a few cancelled a minute later), and the service's housekeeping runs every
second. For the tests and the bench: how long tasks wait for a robot, what is delivered,
and how much the fleet's calls cost, on any hospital.
"""
from __future__ import annotations

import bisect
import dataclasses
import tempfile
import time
from pathlib import Path

from .fleet import Fleet
from .scenario import Scenario
from .store import Store

STEP_S = 1.0
CANCEL_AFTER_S = 60.0


@dataclasses.dataclass
class ShiftResult:
    submitted: int
    delivered: int
    cancelled: int
    late: int
    waits_s: list[float]        # from submission to a robot's route taking it, per task
    never_planned: list[str]    # tasks no robot's route took by the end of the shift
    events: int                 # pick-ups and drop-offs reported
    replans: int                # whole-fleet re-plans
    cpu_s: float                # in the fleet's calls
    plans: list[tuple[dict, dict]]  # (scenario, plan) of the routes now and then, to check


def run_shift(doc: dict, until_s: float, fleet_class: type[Fleet] = Fleet,
              cancel_every: int = 10, check_every_s: float = 0.0,
              incidents: list[tuple[float, str, str]] = ()) -> ShiftResult:
    """Drive `doc` (a scenario: map, robots, tasks with release and deadline seconds) for
    `until_s` simulated seconds; every `cancel_every`th task is cancelled a minute after
    it is submitted, if not picked up by then. `incidents`: (seconds, what, robot or lift)
    with what one of "fault" (the robot stops where it is), "recover", "lift_out",
    "lift_back", "restart" (the service, from its store). `check_every_s`: keep the
    running routes that often, to be checked (0: never)."""
    sc = Scenario.model_validate(doc)
    clock = [1_000_000.0]
    t0 = clock[0]
    cpu = 0.0
    replans = 0

    class Counted(fleet_class):
        def replan(self):
            nonlocal replans
            replans += 1
            return super().replan()

    def call(fn, *args):
        nonlocal cpu
        started = time.process_time()
        try:
            return fn(*args)
        finally:
            cpu += time.process_time() - started

    with tempfile.TemporaryDirectory() as state:
        def start():
            return Counted(sc.map, Store(Path(state)), heartbeat_timeout_s=1e9,
                           clock=lambda: clock[0])

        fleet = start()
        for r in sc.robots:
            call(fleet.register, r.id, r.start, "", r.speed_mps, r.payload_kg,
                 r.capabilities, 90.0)
        tasks = sorted(sc.tasks, key=lambda t: (t.release_s, t.id))
        submitted, first_planned, cancels, plans = {}, {}, [], []
        events = late = 0
        next_check = 0.0
        incidents = sorted(incidents)
        while clock[0] - t0 <= until_s:
            now = clock[0]
            while tasks and tasks[0].release_s <= now - t0:
                t = tasks.pop(0)
                deadline = None if t.deadline_s is None else t0 + t.deadline_s
                call(fleet.submit, t.id, t.pickup, t.dropoff, t.weight_kg, t.kind,
                     t.priority, None, deadline)
                submitted[t.id] = now
                if len(submitted) % cancel_every == 0:
                    cancels.append((now + CANCEL_AFTER_S, t.id))
            while cancels and cancels[0][0] <= now:
                _, tid = cancels.pop(0)
                if fleet.tasks[tid].status in ("pending", "assigned"):
                    call(fleet.cancel, tid)
            while (due := _next_due(fleet, now)) is not None:
                kind, task = due
                call(fleet.task_event, task.robot_id, task.id, kind)
                events += 1
                late += kind == "delivered" and task.deadline is not None and \
                    now > task.deadline
            for rid, route in list(fleet.routes.items()):
                node = _where(route, now)
                if node != fleet.robots[rid].node:
                    call(fleet.heartbeat, rid, node, 90.0, False, "")
            while incidents and incidents[0][0] <= now - t0:
                _, what, who = incidents.pop(0)
                if what == "restart":
                    fleet.store.close()
                    fleet = call(start)
                elif what in ("fault", "recover"):
                    call(fleet.heartbeat, who, fleet.robots[who].node, 90.0, what == "fault",
                         "bumper pressed" if what == "fault" else "")
                else:
                    call(fleet.set_lift, who, what == "lift_back")
            call(fleet.retry_pending)
            for tid, task in fleet.tasks.items():
                if tid not in first_planned and task.status != "pending":
                    first_planned[tid] = now
            if check_every_s and now - t0 >= next_check:
                next_check += check_every_s
                plans.append(snapshot(doc, fleet))
            clock[0] += STEP_S
        fleet.store.close()
    status = [t.status for t in fleet.tasks.values()]
    return ShiftResult(
        submitted=len(submitted), delivered=status.count("delivered"),
        cancelled=status.count("cancelled"), late=late,
        waits_s=sorted(first_planned[tid] - at for tid, at in submitted.items()
                       if tid in first_planned),
        never_planned=sorted(tid for tid in submitted if tid not in first_planned),
        events=events, replans=replans, cpu_s=cpu, plans=plans)


def _next_due(fleet: Fleet, now: float):
    """The first pick-up or drop-off not reported that a robot on time has made by `now`
    (each one reported may change the plan)."""
    due = []
    for task in fleet.tasks.values():
        if task.status == "assigned" and task.planned_pickup is not None and \
                task.planned_pickup <= now:
            due.append((task.planned_pickup, task.id, "picked_up", task))
        elif task.status == "picked_up" and task.planned_dropoff is not None and \
                task.planned_dropoff <= now:
            due.append((task.planned_dropoff, task.id, "delivered", task))
    return min(due, key=lambda d: d[:2])[2:] if due else None


def _where(route: list[tuple[str, float]], now: float) -> str:
    """The node a robot on time is at, or on its way to, at `now` (a re-plan from there
    loses it no time)."""
    i = max(0, bisect.bisect_right(route, now, key=lambda w: w[1]) - 1)
    return route[min(i + 1, len(route) - 1)][0] if route[i][1] < now else route[i][0]


def snapshot(doc: dict, fleet: Fleet) -> tuple[dict, dict]:
    """The fleet's running routes from now on, as a scenario and plan for the validator."""
    now = fleet.clock()
    robots, routes = [], []
    for r in fleet.robots.values():
        wp = fleet.routes.get(r.id)
        if r.state != "available" or not wp:
            continue
        wp = wp[max(0, bisect.bisect_right(wp, now, key=lambda w: w[1]) - 1):]
        robots.append({"id": r.id, "start": wp[0][0], "speed_mps": r.speed_mps,
                       "payload_kg": r.payload_kg, "capabilities": r.capabilities})
        routes.append({"robot": r.id, "waypoints": [{"node": n, "t": t - now} for n, t in wp]})
    # the tasks still to be picked up (a robot on time reports the others)
    ahead = {t.id: t for t in fleet.tasks.values() if t.status == "assigned"
             and t.planned_pickup is not None and t.planned_pickup >= now}
    tasks = [{"id": t.id, "pickup": t.pickup, "dropoff": t.dropoff, "weight_kg": t.weight_kg,
              "kind": t.kind} for t in ahead.values()]
    return ({"map": doc["map"], "robots": robots, "tasks": tasks},
            {"assignments": [{"robot": r["id"], "tasks": [tid for tid in fleet.queues.get(
                r["id"], []) if tid in ahead]} for r in robots],
             "routes": routes, "unassigned": []})
