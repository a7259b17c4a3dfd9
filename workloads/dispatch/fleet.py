"""The dispatcher's state and rules: robots, tasks, blocked corridors, lifts out of service,
and the current plan.

With robots under way, every change is made to the running plan (live.py), re-planning
only the robots it touches against everybody else's bookings: a new task (the robot that
takes it; one no robot can take now waits, and is tried again every few seconds), a
pick-up or drop-off (no route changes), a cancel, a robot that stops or goes on again, a
robot low on battery, a corridor blocked or cleared, a lift out of or back in service
(every robot that would ride it, at once for its next tasks only; the rest of its queue is
given back to it by the next housekeeping call of `retry_pending`, off the failure's
answer). Re-planning the whole open workload with the pure planner, from where the robots
are, walls in robots standing in the corridors: it is done only with every robot parked at
home, on start, and where the running plan cannot take the change. Tasks on board stay with
their robot. State is written to the store before a call returns.
"""
from __future__ import annotations

import dataclasses
import math
import time
import uuid
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel

from .assignment import PRIORITY_WEIGHT, RobotReq
from .graph import HospitalGraph, corridor_key
from .planner import Plan, plan, task_problem, to_task_req
from .scenario import MAX_TASKS, HospitalMap, Task
from .store import Store

OPEN = ("pending", "assigned")
RETRY_BATCH = 25  # waiting tasks tried again per housekeeping call, while robots are under way


class FleetError(Exception):
    """A request the fleet refuses; `code` maps to a gRPC status / HTTP status."""

    def __init__(self, code: Literal["invalid", "not_found", "exists", "precondition",
                                     "exhausted"],
                 message: str):
        super().__init__(message)
        self.code = code


class RobotRecord(BaseModel):
    id: str
    node: str
    home: str
    speed_mps: float
    payload_kg: float
    capabilities: list[str]
    battery_pct: float = 100.0
    state: Literal["available", "fault", "offline"] = "available"
    fault_message: str = ""
    last_heartbeat: float


class TaskRecord(BaseModel):
    id: str
    pickup: str
    dropoff: str
    weight_kg: float
    kind: str
    priority: Literal["emergency", "high", "normal"] = "normal"
    earliest_start: float
    deadline: float | None = None
    status: Literal["pending", "assigned", "picked_up", "delivered", "cancelled",
                    "failed"] = "pending"
    robot_id: str = ""
    reason: str = ""
    planned_pickup: float | None = None
    planned_dropoff: float | None = None


class Fleet:
    def __init__(self, hmap: HospitalMap, store: Store, heartbeat_timeout_s: float,
                 min_battery_pct: float = 20.0, clock: Callable[[], float] = time.time,
                 on_plan: Callable[[Fleet], None] = lambda fleet: None,
                 max_open_tasks: int = MAX_TASKS):
        self.map = hmap
        self.store = store
        self.timeout = heartbeat_timeout_s
        self.min_battery = min_battery_pct
        self.clock = clock
        self.on_plan = on_plan
        self.max_open_tasks = max_open_tasks
        self.robots = {r.id: r for r in store.load("robots", RobotRecord)}
        self.tasks = {t.id: t for t in store.load("tasks", TaskRecord)}
        self.blocked = store.blocked()
        self.lifts_down = store.lifts_down() & {lift.id for lift in hmap.lifts}
        self.graph = self._graph()
        self.routes: dict[str, list[tuple[str, float]]] = {}
        self.live = None  # the running plan, for re-planning a new task alone
        self.taking_back = False  # a failed lift's riders have tasks to take back
        self.version = 0
        now = clock()
        for r in self.robots.values():  # silence while we were down is not the robot's fault
            r.last_heartbeat = max(r.last_heartbeat, now)
        self.replan()

    # robots

    def register(self, robot_id: str, node: str, home: str, speed_mps: float,
                 payload_kg: float, capabilities: list[str], battery_pct: float) -> RobotRecord:
        home = home or node
        if not robot_id:
            raise FleetError("invalid", "robot_id is required")
        for what, n in (("node", node), ("home", home)):
            self._known(what, n)
        if not speed_mps > 0 or payload_kg < 0 or not math.isfinite(speed_mps + payload_kg):
            raise FleetError("invalid", "speed_mps must be > 0 and payload_kg >= 0")
        limit = self.map.speed_limit_mps
        if limit is not None and speed_mps > limit:
            raise FleetError("invalid", f"speed_mps {speed_mps:g} is faster than the corridors "
                             f"allow ({limit:g} m/s)")
        _check_battery(battery_pct)
        for other in self.robots.values():
            if other.id != robot_id and home in (other.home, other.node):
                raise FleetError("invalid", f"node {home!r} is robot {other.id}'s home or place")
        robot = RobotRecord(id=robot_id, node=node, home=home, speed_mps=speed_mps,
                            payload_kg=payload_kg, capabilities=sorted(set(capabilities)),
                            battery_pct=battery_pct, last_heartbeat=self.clock())
        self.robots[robot_id] = robot
        self.store.save_robot(robot)
        now = self.clock() - self.planned_at
        if self._at_rest() or robot_id in self.live.robots or robot_id in self.live.stopped \
                or not self.live.place_robot(self._requests([robot], working=True)[0], now):
            self.replan()  # (registered again, or its place is on others' routes)
        else:
            self._adopt([robot_id], {})
            self._place_waiting()
        return robot

    def heartbeat(self, robot_id: str, node: str, battery_pct: float, fault: bool,
                  fault_message: str) -> RobotRecord:
        robot = self._robot(robot_id)
        if node:
            self._known("node", node)
        _check_battery(battery_pct)
        was = robot.state, robot.battery_pct < self.min_battery
        robot.node = node or robot.node
        robot.battery_pct = battery_pct
        robot.last_heartbeat = self.clock()
        robot.state = "fault" if fault else "available"
        robot.fault_message = fault_message if fault else ""
        self.store.save_robot(robot)
        if (robot.state, robot.battery_pct < self.min_battery) != was:
            if robot.state != "available":
                self._take_tasks_from(robot)
            if not self._robot_changed(robot):
                self.replan()
        return robot

    def expire(self) -> list[str]:
        """Take robots silent for longer than the timeout offline; their tasks re-planned."""
        now = self.clock()
        silent = [r for r in self.robots.values()
                  if r.state == "available" and now - r.last_heartbeat > self.timeout]
        whole = False
        for robot in silent:
            robot.state = "offline"
            self.store.save_robot(robot)
            self._take_tasks_from(robot)
            whole = whole or not self._robot_changed(robot)  # one re-plan takes them all
        if whole:
            self.replan()
        return [r.id for r in silent]

    def retry_pending(self, every_s: float = 5.0) -> bool:
        """Give a failed lift's riders back the tasks they handed back to answer at once;
        and now and then plan home the robots left walled in and try waiting tasks again:
        a way that was blocked by traffic may be free now, without any event to say so.
        Returns whether the plan changed."""
        if self.taking_back:
            self.taking_back = False
            robots, dropped = self.live.take_back(self.clock() - self.planned_at)
            taken = []
            for rid in robots:
                for tid in self.live.queue_of(rid):
                    task = self.tasks.get(tid)
                    if task is not None and task.status == "pending":
                        task.status, task.robot_id, task.reason = "assigned", rid, ""
                        taken.append(task)
            self._adopt(robots, dropped, taken)
            return True
        if self.clock() - self.retried_at < every_s:
            return False
        self.retried_at = self.clock()
        freed = self.live.free_walled_in(self.clock() - self.planned_at)
        if freed:
            self._adopt(freed, {})
        if not any(t.status == "pending" for t in self.tasks.values()) or \
                not any(r.state == "available" for r in self.robots.values()):
            return bool(freed)
        if self._at_rest():
            self.replan()
            return True
        return self._place_waiting() or bool(freed)

    def _place_waiting(self) -> bool:
        """Put waiting tasks into the running plan one by one, urgent first (re-planning
        the fleet from where robots stand in the corridors walls most of them in)."""
        handed = {tid for _, goals in self.live.handed_back.values() for _, (tid, _) in goals}
        waiting = sorted((t for t in self.tasks.values()
                          if t.status == "pending" and t.id not in handed),  # (taken back)
                         key=lambda t: (-PRIORITY_WEIGHT[t.priority], t.earliest_start, t.id))
        return any([self._insert(t) for t in waiting[:RETRY_BATCH]])

    def _robot_changed(self, robot: RobotRecord) -> bool:
        """A robot stopped (fault, silence), went on again, or its battery crossed the
        minimum: with robots under way, only the robots this touches are re-planned, in
        the running plan, and the tasks it let go are put in again. False when the fleet
        must be re-planned whole instead (at rest; one that stopped off its route is
        planned from where it is)."""
        live, rid = self.live, robot.id
        now = self.clock() - self.planned_at
        if self._at_rest() or rid not in live.robots and rid not in live.stopped or \
                robot.state != "available" and rid in live.robots and self.graph.index[
                    robot.node] not in {n for n, _ in live.robots[rid].cut(now)[0][-2:]}:
            return False
        working = robot.state == "available" and robot.battery_pct >= self.min_battery
        if robot.state != "available":
            if rid not in live.robots:
                return True  # stopped already
            before = dict(live.unassigned)
            replanned = live.stop_robot(rid, now, f"robot {rid} went {robot.state}")
            dropped = {tid: why for tid, why in self._given_up(before).items()
                       if self.tasks.get(tid) is not None and self.tasks[tid].robot_id != rid}
            self.routes.pop(rid, None)
            self.queues.pop(rid, None)
            self._adopt(replanned, dropped)
            self.taking_back = self.taking_back or bool(live.handed_back)
        elif rid in live.stopped:
            if not live.place_robot(self._requests([robot], working=True)[0], now):
                return True  # walled in where it stopped: it goes on at the next re-plan
            self._adopt([rid], {})
        else:  # low on battery: it keeps what it has picked up, the rest is let go
            rp = live.robots[rid]
            rp.robot = dataclasses.replace(rp.robot, capabilities=frozenset(
                robot.capabilities) if working else frozenset())
            let_go = []
            for tid in [] if working else live.queue_of(rid):
                if live.drop_task(tid, now) and self.tasks[tid].status == "assigned":
                    task = self.tasks[tid]
                    task.status, task.robot_id, task.reason = "pending", "", \
                        f"robot {rid} is low on battery"
                    let_go.append(task)
            self._adopt([rid], {}, let_go)
        self._place_waiting()
        return True

    def _take_tasks_from(self, robot: RobotRecord) -> None:
        changed = []
        for task in self.tasks.values():
            if task.robot_id != robot.id:
                continue
            if task.status == "picked_up":
                task.status = "failed"
                task.reason = (f"robot {robot.id} went {robot.state} with it on board at "
                               f"{robot.node}; recover it by hand")
                changed.append(task)
            elif task.status == "assigned":
                task.status, task.robot_id = "pending", ""
                changed.append(task)
        self.store.save_tasks(changed)

    # corridors

    def set_blocked(self, a: str, b: str, blocked: bool) -> list[tuple[str, str]]:
        for n in (a, b):
            self._known("node", n)
        if not self.graph.has_corridor(a, b):
            raise FleetError("invalid", f"there is no corridor between {a!r} and {b!r}")
        key = corridor_key(a, b)
        if (key in self.blocked) != blocked:
            self.store.set_blocked(*key, blocked)
            (self.blocked.add if blocked else self.blocked.discard)(key)
            old, self.graph = self.graph, self._graph()
            if self._at_rest() or self.graph.pieces > old.pieces:
                self.replan()  # (a map cut in two walls robots in: planned from their places)
            elif blocked:
                self._avoided(lambda now: self.live.block_corridor(
                    self.graph, self.graph.index[a], self.graph.index[b], now))
            else:
                self._reopened()
        return sorted(self.blocked)

    # lifts

    def set_lift(self, lift_id: str, in_service: bool) -> tuple[list[str], list[str]]:
        """A lift out of service (every robot that would ride it re-planned without it, in
        the running plan) or back in service (the fleet re-planned). Returns the lifts out of
        service and the robots re-planned."""
        if not lift_id:
            raise FleetError("invalid", "lift_id is required")
        if lift_id not in self.graph.lift_capacity:
            known = ", ".join(sorted(self.graph.lift_capacity)) or "none"
            raise FleetError("invalid", f"unknown lift {lift_id!r} (this map's lifts: {known})")
        if (lift_id in self.lifts_down) != in_service:
            raise FleetError("precondition", f"lift {lift_id} is "
                             f"{'in service' if in_service else 'out of service'} already")
        self.store.set_lift_down(lift_id, not in_service)
        (self.lifts_down.discard if in_service else self.lifts_down.add)(lift_id)
        if self.live is None or not in_service and \
                self.graph.without_lift(lift_id).pieces > self.graph.pieces:
            self.graph = self._graph()
            return sorted(self.lifts_down), sorted(self.replan().routes)
        if in_service:
            self.graph = self._graph()
            return sorted(self.lifts_down), self._reopened()
        robots = self._avoided(lambda now: self.live.fail_lift(lift_id, now))
        self.graph = self.live.graph
        return sorted(self.lifts_down), sorted(robots)

    def _avoided(self, close: Callable[[float], list[str]]) -> list[str]:
        """`close(now)` takes a corridor or lift out of the running plan, re-planning the
        robots that would take it; their new routes adopted, what they gave up waiting
        again. Returns those robots."""
        before = dict(self.live.unassigned)
        robots = close(self.clock() - self.planned_at)
        self._adopt(robots, self._given_up(before))
        self.taking_back = bool(self.live.handed_back)
        return robots

    def _given_up(self, before: dict[str, str]) -> dict[str, str]:
        """The tasks the running plan has given up since it listed `before`, and why."""
        return {tid: why for tid, why in self.live.unassigned.items() if before.get(tid) != why}

    def _reopened(self) -> list[str]:
        """A corridor or lift open again: the robots that went around a closure take the
        way back where it is sooner; waiting tasks may go now. Returns those robots."""
        robots = self.live.reopen(self.graph, self.clock() - self.planned_at)
        self._adopt(robots, {})
        self._place_waiting()
        return robots

    def warm_up(self) -> bool:
        """Work out the travel times of the map without one lift in service, for one lift
        and one robot speed not done yet (a lift that fails is then re-planned at once);
        False when all are done. Called now and then while nothing else happens."""
        for lift in sorted(set(self.graph.lift_capacity) - self.lifts_down):
            for speed in sorted({r.speed_mps for r in self.robots.values()}):
                degraded = self.graph.without_lift(lift)
                if speed not in degraded._times:
                    degraded.travel_times(speed)
                    return True
        return False

    def _graph(self) -> HospitalGraph:
        return HospitalGraph(self.map, self.blocked, frozenset(self.lifts_down))

    # tasks

    def submit(self, task_id: str, pickup: str, dropoff: str, weight_kg: float, kind: str,
               priority: str, earliest_start: float | None, deadline: float | None) -> TaskRecord:
        now = self.clock()
        task_id = task_id or f"task-{uuid.uuid4().hex[:12]}"
        if task_id in self.tasks:
            raise FleetError("exists", f"task {task_id!r} already exists")
        if sum(t.status in OPEN for t in self.tasks.values()) >= self.max_open_tasks:
            raise FleetError("exhausted", f"{self.max_open_tasks} tasks are open already; "
                             "submit more when some are done")
        if not weight_kg >= 0 or not math.isfinite(weight_kg):
            raise FleetError("invalid", "weight_kg must be a number >= 0")
        if not kind:
            raise FleetError("invalid", "kind is required (medicine, specimen, linen, meals, ...)")
        start = max(earliest_start or now, now)
        spec = Task(id=task_id, pickup=pickup, dropoff=dropoff, weight_kg=weight_kg, kind=kind,
                    priority=priority, release_s=start - now,
                    deadline_s=None if deadline is None else deadline - now)
        # judged against every robot the fleet has, so that a task waits out a robot's fault
        why = task_problem(spec, self.graph, self._requests(list(self.robots.values())))
        if why:
            code = "invalid" if "unknown" in why or "deadline" in why or "same node" in why \
                else "precondition"
            raise FleetError(code, why)
        task = TaskRecord(id=task_id, pickup=pickup, dropoff=dropoff, weight_kg=weight_kg,
                          kind=kind, priority=priority, earliest_start=start, deadline=deadline)
        self.tasks[task_id] = task
        self.store.save_tasks([task])
        if not self._insert(task) and self._at_rest():
            self.replan()
        return task

    def cancel(self, task_id: str) -> TaskRecord:
        task = self.task(task_id)
        if task.status not in OPEN:
            raise FleetError("precondition", f"task {task_id} is {task.status}; only a pending "
                             "or assigned task can be cancelled")
        had = task.robot_id
        task.status, task.robot_id, task.reason = "cancelled", "", ""
        self.store.save_tasks([task])
        rid = None if self.live is None else \
            self.live.drop_task(task_id, self.clock() - self.planned_at)
        if rid is None:  # no running plan, or no route without it
            self.replan()
        elif rid:
            self._adopt([rid], {})
        elif had:  # the plan has it picked up already: the robot just drops it off
            self._trim_queue(had)
        return task

    def task_event(self, robot_id: str, task_id: str, event: str) -> TaskRecord:
        self._robot(robot_id)
        task = self.task(task_id)
        need = {"picked_up": "assigned", "delivered": "picked_up"}[event]
        if task.robot_id != robot_id or task.status != need:
            raise FleetError("precondition", f"task {task_id} is {task.status}"
                             f"{' on ' + task.robot_id if task.robot_id else ''}; "
                             f"{robot_id} cannot report it {event}")
        task.status = event
        self.store.save_tasks([task])
        live = self.live
        if live is None or robot_id not in live.robots:
            self.replan()
        elif any(tid == task_id for _, (tid, _) in live.robots[robot_id].goals) or \
                event == "delivered":  # as the running plan has it: no route changes
            self._trim_queue(robot_id)
        elif live.take_on_board(robot_id, task_id, self.graph.index[task.dropoff],
                                self.clock() - self.planned_at):
            self._adopt([rid for rid in live.robots if task_id in self.queues.get(rid, [])
                         or rid == robot_id], {})
        else:
            self.replan()
        return task

    def task(self, task_id: str) -> TaskRecord:
        if task_id not in self.tasks:
            raise FleetError("not_found", f"no task {task_id!r}")
        return self.tasks[task_id]

    # planning

    def replan(self) -> Plan:
        now = self.clock()
        ready = [r for r in self.robots.values() if r.state == "available"]
        carrying = {t.robot_id: t for t in self.tasks.values() if t.status == "picked_up"}
        open_tasks = [t for t in self.tasks.values() if t.status in OPEN]
        obstacles = [self.graph.index[r.node] for r in self.robots.values()
                     if r.state != "available"]
        result = plan(self.graph, self._requests(ready, carrying, now, working=True),
                      [self._spec(t, now) for t in open_tasks], now_s=0.0, obstacles=obstacles)
        on: dict[str, str] = {t: r for r, q in result.queues.items() for t in q}
        changed = []
        for task in open_tasks + list(carrying.values()):
            before = task.model_dump()
            if task.id in on:
                task.status, task.robot_id, task.reason = "assigned", on[task.id], ""
            elif task.status != "picked_up":
                task.status, task.robot_id = "pending", ""
                task.reason = result.unassigned.get(task.id, "no robot available")
            task.planned_pickup = _at(now, result.pickups.get(task.id))
            task.planned_dropoff = _at(now, result.dropoffs.get(task.id))
            if task.model_dump() != before:
                changed.append(task)
        self.store.save_tasks(changed)
        self.routes = {r: [(n, now + t) for n, t in wp] for r, wp in result.routes.items()}
        self.queues = result.queues
        self.planned_at = self.retried_at = now
        self.live = result.live
        self.taking_back = False
        self.version += 1
        self.on_plan(self)
        return result

    def _at_rest(self) -> bool:
        """Whether every robot is parked at home: only then does re-planning the whole
        fleet find routes for all of them (robots standing in the corridors wall each
        other in)."""
        now = self.clock()
        return self.live is None or all(
            not wp or wp[-1][1] <= now and wp[-1][0] == self.robots[rid].home
            for rid, wp in self.routes.items())

    def _insert(self, task: TaskRecord) -> bool:
        """Re-plan only the robot that takes `task` into the running plan (the others keep
        their routes); False when that finds no robot: the task waits, with why."""
        if self.live is None:
            return False
        now = self.clock() - self.planned_at  # on the running plan's clock
        spec = self._spec(task, self.planned_at)
        rid = self.live.add_task(to_task_req(spec, self.graph, now), now)
        if rid is None:
            why = self.live.unassigned.pop(task.id)
            if task.reason != why:
                task.reason = why
                self.store.save_tasks([task])
            return False
        task.status, task.robot_id, task.reason = "assigned", rid, ""
        self._adopt([rid], {}, [task])
        return True

    def _adopt(self, robot_ids: list[str], dropped: dict[str, str],
               changed: list[TaskRecord] | None = None) -> None:
        """Take the running plan's new routes of `robot_ids` (their tasks' planned times
        with them); the tasks it gave up (`dropped`: task -> why) wait for a robot again, or
        fail if on board. Saves them and `changed`."""
        changed = list(changed or [])
        for rid in robot_ids:
            rp = self.live.robots[rid]
            planned = {(tid, role): self.planned_at + at
                       for (_, (tid, role)), at in zip(rp.goals, rp.route.goal_times)}
            for tid in {tid for _, (tid, _) in rp.goals if tid in self.tasks}:
                t = self.tasks[tid]
                before = t.model_dump()
                t.planned_pickup = planned.get((tid, "pickup"), t.planned_pickup
                                               if t.status == "picked_up" else None)
                t.planned_dropoff = planned.get((tid, "dropoff"))
                if t.model_dump() != before:
                    changed.append(t)
            self.routes[rid] = [(n, self.planned_at + t) for n, t in self.live.route_of(rid)]
            self.queues[rid] = self.live.queue_of(rid)
            self._trim_queue(rid)
        for tid, why in dropped.items():
            t = self.tasks.get(tid)
            if t is None or t.status not in OPEN + ("picked_up",):
                continue
            if t.status == "picked_up":
                t.status = "failed"
            else:
                t.status, t.robot_id = "pending", ""
            t.reason, t.planned_pickup, t.planned_dropoff = why, None, None
            changed.append(t)
        self.store.save_tasks(changed)
        self.version += 1
        self.on_plan(self)

    def _trim_queue(self, robot_id: str) -> None:
        """Drop from a robot's queue what is no longer open."""
        self.queues[robot_id] = [tid for tid in self.queues.get(robot_id, [])
                                 if tid in self.tasks and self.tasks[tid].status in OPEN]

    def _requests(self, robots: list[RobotRecord], carrying: dict | None = None,
                  now: float = 0.0, working: bool = False) -> list[RobotReq]:
        """Planner robots; `working`: a robot low on battery takes no new task (it delivers
        what it carries and goes home to its charger)."""
        index = self.graph.index
        return [RobotReq(r.id, index[r.node], index[r.home], r.speed_mps, r.payload_kg,
                         frozenset() if working and r.battery_pct < self.min_battery
                         else frozenset(r.capabilities),
                         carrying=to_task_req(self._spec(carrying[r.id], now), self.graph)
                         if carrying and r.id in carrying else None)
                for r in robots]

    @staticmethod
    def _spec(task: TaskRecord, now: float) -> Task:
        release = max(0.0, task.earliest_start - now)
        # an accepted task whose deadline has passed is still delivered, as soon as possible
        deadline = None if task.deadline is None else max(task.deadline - now, release + 1e-3)
        return Task(id=task.id, pickup=task.pickup, dropoff=task.dropoff,
                    weight_kg=task.weight_kg, kind=task.kind, priority=task.priority,
                    release_s=release, deadline_s=deadline)

    def _robot(self, robot_id: str) -> RobotRecord:
        if robot_id not in self.robots:
            raise FleetError("not_found", f"no robot {robot_id!r}; register it first")
        return self.robots[robot_id]

    def _known(self, what: str, node: str) -> None:
        if node not in self.graph.index:
            raise FleetError("invalid", f"unknown {what} node {node!r}")


def _check_battery(pct: float) -> None:
    if not 0.0 <= pct <= 100.0:
        raise FleetError("invalid", f"battery_pct must be within 0..100, not {pct}")


def _at(now: float, offset: float | None) -> float | None:
    return None if offset is None else now + offset
