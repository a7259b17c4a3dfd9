"""Re-planning a running plan one change at a time: a new task, a lift out of service.

A `LivePlan` is what `planner.plan` leaves behind: each robot's goals and timed route, and
the reservation table they are all booked in. A change re-plans only the robots it touches:
their routes from where they are at `now_s` on are taken out of the table and searched again
against everybody else's bookings, so every route stays conflict-free without planning the
fleet again. Pure: times are seconds on the plan's clock.
"""
from __future__ import annotations

import bisect
import dataclasses
import math

from .assignment import RobotReq, TaskReq, can_carry
from .graph import HospitalGraph
from .routing import Goal, ReservationTable, Route, plan_route

URGENT = ("emergency", "high")
CANDIDATES = 3  # robots whose routes are searched for a new task, best estimate first
ETA_SLACK_S = 30.0

Label = tuple[str | None, str]  # (task id, "pickup" | "dropoff" | "home")


def goals_of(robot: RobotReq, queue: list[TaskReq]) -> list[tuple[Goal, Label]]:
    """The goals a robot's route goes through: what it carries, each task's pick-up (not
    before its release) and drop-off, then home."""
    goals = [(Goal(robot.carrying.dropoff), (robot.carrying.id, "dropoff"))] \
        if robot.carrying else []
    for t in queue:
        goals += [(Goal(t.pickup, t.release_s), (t.id, "pickup")),
                  (Goal(t.dropoff), (t.id, "dropoff"))]
    return goals + [(Goal(robot.home), (None, "home"))]


@dataclasses.dataclass
class RobotPlan:
    robot: RobotReq
    goals: list[tuple[Goal, Label]]  # aligned with route.goal_times
    route: Route

    def cut(self, now_s: float) -> tuple[list[tuple[int, float]], int]:
        """The route up to where the robot is at `now_s` (a move under way is finished
        first), and how many goals it has reached by then."""
        wp = self.route.waypoints
        i = max(0, bisect.bisect_right(wp, now_s, key=lambda w: w[1]) - 1)
        if i + 1 < len(wp) and wp[i + 1][0] != wp[i][0]:
            prefix = wp[:i + 2]
        else:
            prefix = wp[:i + 1] + ([(wp[i][0], now_s)] if now_s > wp[i][1] else [])
        return prefix, bisect.bisect_right(self.route.goal_times, prefix[-1][1])


@dataclasses.dataclass
class LivePlan:
    graph: HospitalGraph
    table: ReservationTable
    robots: dict[str, RobotPlan]
    tasks: dict[str, TaskReq] = dataclasses.field(default_factory=dict)
    unassigned: dict[str, str] = dataclasses.field(default_factory=dict)

    def route_of(self, robot_id: str) -> list[tuple[str, float]]:
        return [(self.graph.ids[n], t) for n, t in self.robots[robot_id].route.waypoints]

    def queue_of(self, robot_id: str) -> list[str]:
        return [tid for _, (tid, role) in self.robots[robot_id].goals if role == "pickup"]

    def add_task(self, task: TaskReq, now_s: float) -> str | None:
        """Give `task` to a robot that delivers it soonest (an urgent one goes first in its
        queue, after what it carries; another one last) and re-plan that robot's route.
        Returns the robot, or None (the task is then in `unassigned` with the reason)."""
        ranked = []
        for rid, rp in self.robots.items():
            if not can_carry(rp.robot, task) or not rp.route.goal_times:
                continue
            prefix, done = rp.cut(now_s)
            goals = self._with(rp, done, task)
            eta = self._estimate(rp.robot, prefix[-1], goals, task)
            if math.isfinite(eta):
                ranked.append((eta, rid, prefix, done, goals))
        # within ETA_SLACK_S of the soonest, the robot with the least work left: the load
        # spreads, and a short route is searched again quickly
        soonest = min((r[0] for r in ranked), default=math.inf)
        ranked.sort(key=lambda r: (r[0] > soonest + ETA_SLACK_S, len(r[4]), r[0], r[1]))
        for _, rid, prefix, done, goals in ranked[:CANDIDATES]:
            if self._replan(rid, prefix, done, goals):
                self.tasks[task.id] = task
                return rid
        self.unassigned[task.id] = ("no capable robot can reach it" if not ranked else
                                    "no conflict-free route for any nearby robot")
        return None

    def fail_lift(self, lift_id: str, now_s: float) -> list[str]:
        """Take `lift_id` out of service from `now_s`: rides under way finish; every robot
        that would ride it later is re-planned without it. Tasks it can no longer reach are
        put in `unassigned`. Returns the robots re-planned."""
        old = self.graph
        self.graph = self.table.graph = old.without_lift(lift_id)
        first_ride = {}  # robot -> when it would next board the lift
        for rid, rp in self.robots.items():
            wp = rp.route.waypoints
            first_ride[rid] = next((t for (a, t), (b, _) in zip(wp, wp[1:])
                                    if a != b and t >= now_s and old.move(a, b).lift == lift_id),
                                   None)
        affected = [rid for rid, t in first_ride.items() if t is not None]
        # each keeps its old route up to the last goal before that ride (it never used the
        # lift) and its old booking until it is re-planned (the old routes are free of
        # conflicts among themselves); the robot that would board first goes first
        cuts = {}
        for rid in affected:
            rp = self.robots[rid]
            reached = [g for g in rp.route.goal_times if g <= first_ride[rid]]
            cuts[rid] = rp.cut(max([now_s] + reached[-1:]))
        pending = sorted(affected, key=lambda r: (first_ride[r], r))  # the lift's queue
        waited = set()
        while pending:
            rid = pending.pop(0)
            rp = self.robots[rid]
            prefix, done = cuts[rid]
            goals = rp.goals[done:]
            for tid in self._unreachable(rp.robot, prefix[-1][0], goals):
                self.unassigned[tid] = f"lift {lift_id} is out of service: no way to it"
                goals = [g for g in goals if g[1][0] != tid]
            planned = self._replan(rid, prefix, done, goals)
            if not planned and pending and rid not in waited:
                waited.add(rid)  # walled in by one still to be re-planned: after them
                pending.append(rid)
                continue
            while not planned:
                dropped = next((g[1][0] for g in reversed(goals) if g[1][1] == "pickup"), None)
                if dropped is None:  # boxed in: it stays where it is, held there
                    self._book(rid, Route(prefix, rp.route.goal_times[:done]), rp.goals[:done])
                    break
                self.unassigned[dropped] = (f"lift {lift_id} is out of service: no "
                                            "conflict-free route")
                goals = [g for g in goals if g[1][0] != dropped]
                planned = self._replan(rid, prefix, done, goals)
        return affected

    def _with(self, rp: RobotPlan, done: int, task: TaskReq) -> list[tuple[Goal, Label]]:
        rest = rp.goals[done:] or [(Goal(rp.robot.home), (None, "home"))]  # idle: home again
        new = [(Goal(task.pickup, task.release_s), (task.id, "pickup")),
               (Goal(task.dropoff), (task.id, "dropoff"))]
        if task.priority not in URGENT:
            return rest[:-1] + new + rest[-1:]
        picked = {tid for _, (tid, role) in rp.goals[:done] if role == "pickup"} | \
            ({rp.robot.carrying.id} if rp.robot.carrying else set())
        carried = [g for g in rest if g[1][1] == "dropoff" and g[1][0] in picked]
        return carried + new + [g for g in rest if g not in carried]

    def _estimate(self, robot: RobotReq, at: tuple[int, float], goals, task: TaskReq) -> float:
        """Free-flow time the robot would deliver `task` with these goals."""
        tt = self.graph.travel_times(robot.speed_mps)
        node, t = at
        for goal, (tid, role) in goals:
            t = max(t + tt[node, goal.node], goal.not_before)
            node = goal.node
            if tid == task.id and role == "dropoff":
                return t
        return math.inf

    def _unreachable(self, robot: RobotReq, here: int, goals) -> set[str]:
        tt = self.graph.travel_times(robot.speed_mps)
        out, node = set(), here
        for goal, (tid, _) in goals:
            if not math.isfinite(tt[node, goal.node]) and tid is not None:
                out.add(tid)
            else:
                node = goal.node
        return out

    def _replan(self, rid: str, prefix: list[tuple[int, float]], done: int, goals) -> bool:
        """Search the robot's route from the end of `prefix` (where it has reached `done`
        goals) through `goals` against all other bookings; book it, or keep the old route
        if there is none."""
        rp = self.robots[rid]
        self.table.unreserve(rp.route, rid)
        node, t = prefix[-1]
        route = plan_route(self.table, rp.robot.speed_mps, node, t, [g for g, _ in goals])
        if route is None:
            self.table.reserve(rp.route, rid)
            return False
        self._book(rid, Route(prefix + route.waypoints[1:],
                              rp.route.goal_times[:done] + route.goal_times),
                   rp.goals[:done] + goals)
        return True

    def _book(self, rid: str, route: Route, goals) -> None:
        rp = self.robots[rid]
        self.table.unreserve(rp.route, rid)
        self.table.reserve(route, rid)
        self.robots[rid] = RobotPlan(rp.robot, goals, route)

    def to_json(self) -> dict:
        """Queues and routes in the planner's JSON form (for checking a changed plan)."""
        return {"assignments": [{"robot": rid, "tasks": self.queue_of(rid)}
                                for rid in self.robots],
                "routes": [{"robot": rid, "waypoints": [{"node": n, "t": t}
                                                        for n, t in self.route_of(rid)]}
                           for rid in self.robots],
                "unassigned": [{"task": t, "reason": why} for t, why in self.unassigned.items()]}
