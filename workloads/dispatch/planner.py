"""The dispatch planner: check tasks, assign them, route every robot without conflicts.

Pure: the offline `medmec dispatch plan` and the dispatch service both call `plan` with the
fleet as it is now and get back queues, timed routes, per-task reasons for what could not
be planned, and metrics. Times are seconds from the moment planned (`now_s`).
"""
from __future__ import annotations

import dataclasses
import math

from .assignment import (PRIORITY_WEIGHT, RobotReq, TaskReq, assign, distance_lower_bound,
                         relocate)
from .graph import HospitalGraph
from .live import LivePlan, RobotPlan, goals_of
from .routing import ReservationTable, Route, plan_route
from .scenario import Scenario, Task


@dataclasses.dataclass
class Plan:
    queues: dict[str, list[str]]                 # robot -> task ids in order
    routes: dict[str, list[tuple[str, float]]]   # robot -> (node, t) waypoints
    unassigned: dict[str, str]                   # task -> reason
    pickups: dict[str, float]                    # task -> planned pick-up time
    dropoffs: dict[str, float]                   # task -> planned drop-off time
    late: list[str]                              # tasks delivered after their deadline
    total_distance_m: float
    live: LivePlan | None = None                 # for re-planning one change at a time

    @property
    def makespan_s(self) -> float:
        return max(self.dropoffs.values(), default=0.0)

    def to_json(self) -> dict:
        return {
            "assignments": [{"robot": r, "tasks": q} for r, q in self.queues.items()],
            "routes": [{"robot": r, "waypoints": [{"node": n, "t": t} for n, t in wp]}
                       for r, wp in self.routes.items()],
            "unassigned": [{"task": t, "reason": why} for t, why in self.unassigned.items()],
            "metrics": {"makespan_s": self.makespan_s,
                        "total_distance_m": self.total_distance_m,
                        "late_tasks": len(self.late)},
        }


def task_problem(task: Task, graph: HospitalGraph, robots: list[RobotReq],
                 now_s: float = 0.0) -> str | None:
    """Why `task` cannot be planned for this fleet and map, or None if it can."""
    for role, node in (("pickup", task.pickup), ("dropoff", task.dropoff)):
        if node not in graph.index:
            return f"unknown {role} node {node!r}"
    if task.pickup == task.dropoff:
        return "pickup and dropoff are the same node"
    if task.deadline_s is not None:
        if task.deadline_s < now_s:
            return "deadline is in the past"
        if task.deadline_s <= task.release_s:
            return "deadline is not after the earliest start"
    kind_ok = [r for r in robots if task.kind in r.capabilities]
    if not kind_ok:
        return f"no robot carries {task.kind!r}"
    strong = [r for r in kind_ok if task.weight_kg <= r.payload_kg]
    if not strong:
        heaviest = max(r.payload_kg for r in kind_ok)
        return (f"weight {task.weight_kg:g} kg exceeds the payload of every robot that "
                f"carries {task.kind!r} (at most {heaviest:g} kg)")
    p, d = graph.index[task.pickup], graph.index[task.dropoff]
    if not any(_reachable(graph, r, p, d) for r in strong):
        return (f"no capable robot can reach {task.pickup!r}, go on to {task.dropoff!r} and "
                "return home (disconnected map or blocked corridor)")
    return None


def _reachable(graph: HospitalGraph, robot: RobotReq, pickup: int, dropoff: int) -> bool:
    tt = graph.travel_times(robot.speed_mps)
    here = robot.carrying.dropoff if robot.carrying else robot.node
    return all(math.isfinite(x) for x in
               (tt[robot.node, here], tt[here, pickup], tt[pickup, dropoff], tt[dropoff, robot.home]))


def to_task_req(task: Task, graph: HospitalGraph, now_s: float = 0.0) -> TaskReq:
    return TaskReq(task.id, graph.index[task.pickup], graph.index[task.dropoff], task.weight_kg,
                   task.kind, task.priority, max(task.release_s, now_s),
                   task.deadline_s if task.deadline_s is not None else math.inf)


def plan(graph: HospitalGraph, robots: list[RobotReq], tasks: list[Task], now_s: float = 0.0,
         obstacles: list[int] = (), queues: dict[str, list[TaskReq]] | None = None) -> Plan:
    """Plan `tasks` for `robots` starting at `now_s`. `obstacles` are nodes held for good
    (a faulted robot standing there). `queues` skips the assignment (for comparisons)."""
    unassigned: dict[str, str] = {}
    plannable: list[TaskReq] = []
    for task in tasks:
        why = task_problem(task, graph, robots, now_s)
        if why:
            unassigned[task.id] = why
        else:
            plannable.append(to_task_req(task, graph, now_s))
    if queues is None:
        queues = relocate(robots, assign(robots, plannable, graph.travel_times),
                          graph.travel_times, graph.distances_m)
    queued = {t.id for q in queues.values() for t in q}
    for t in plannable:
        if t.id not in queued:
            unassigned[t.id] = "no capable robot can reach it"

    table = ReservationTable(graph)
    for node in obstacles:
        table.hold(node, now_s, math.inf, "obstacle")
    for r in robots:
        table.hold(r.node, now_s, math.inf, r.id)
        table.hold(r.home, now_s, math.inf, r.id)

    result = Plan({}, {}, unassigned, {}, {}, [], 0.0)
    result.live = live = LivePlan(graph, table, {})
    if graph.blocked or graph.out_of_service:  # each robot may go around a closure
        live.detoured.update(r.id for r in robots)
    # robots out on the corridors go first: until planned, each is held where it stands,
    # which would wall in everyone planned before it; then urgent and long queues
    order = sorted(robots, key=lambda r: (r.node == r.home, -max(
        (PRIORITY_WEIGHT[t.priority] for t in queues[r.id]), default=0.0), -len(queues[r.id]),
        r.id))
    for robot in order:
        table.release(robot.node, robot.id)
        table.release(robot.home, robot.id)
        queue = list(queues[robot.id])
        route = plan_route(table, robot.speed_mps, robot.node, now_s,
                           [g for g, _ in goals_of(robot, queue)])
        while route is None and queue:
            dropped = queue.pop()
            unassigned[dropped.id] = ("no conflict-free route: the corridors it needs are "
                                      "held by other robots")
            route = plan_route(table, robot.speed_mps, robot.node, now_s,
                               [g for g, _ in goals_of(robot, queue)])
        if route is None:  # boxed in: it stays where it is
            route = Route([(robot.node, now_s)], [])
        table.reserve(route, robot.id)
        live.robots[robot.id] = RobotPlan(robot, goals_of(robot, queue) if route.goal_times
                                          else [], route)
        _record(result, graph, robot, queue, route)
    return result


def _record(result: Plan, graph: HospitalGraph, robot: RobotReq, queue: list[TaskReq],
            route) -> None:
    ids = graph.ids
    result.queues[robot.id] = [t.id for t in queue]
    result.routes[robot.id] = [(ids[n], t) for n, t in route.waypoints]
    if not route.goal_times:
        return  # boxed in
    times = route.goal_times[1:] if robot.carrying else route.goal_times
    if robot.carrying:
        _delivered(result, robot.carrying, None, route.goal_times[0])
    for i, task in enumerate(queue):
        _delivered(result, task, times[2 * i], times[2 * i + 1])
    wp = route.waypoints
    result.total_distance_m += sum(graph.move(a, b).length_m
                                   for (a, _), (b, _) in zip(wp, wp[1:]) if a != b)


def _delivered(result: Plan, task: TaskReq, pickup: float | None, dropoff: float) -> None:
    if pickup is not None:
        result.pickups[task.id] = pickup
    result.dropoffs[task.id] = dropoff
    if dropoff > task.deadline_s:
        result.late.append(task.id)


def lower_bound_m(graph: HospitalGraph, robots: list[RobotReq], tasks: list[Task]) -> float:
    """The assignment lower bound on total distance for the tasks this fleet can do."""
    doable = [to_task_req(t, graph) for t in tasks if not task_problem(t, graph, robots)]
    return distance_lower_bound(robots, doable, graph.distances_m)


def robots_of(scenario: Scenario, graph: HospitalGraph) -> list[RobotReq]:
    return [RobotReq(r.id, graph.index[r.start], graph.index[r.start], r.speed_mps,
                     r.payload_kg, frozenset(r.capabilities)) for r in scenario.robots]


def plan_scenario(scenario: Scenario) -> Plan:
    graph = HospitalGraph(scenario.map)
    return plan(graph, robots_of(scenario, graph), scenario.tasks)
