"""Re-planning a running plan one change at a time: a new or cancelled task, a robot that
stops, goes on or joins, a lift or corridor closed or open again.

A `LivePlan` is what `planner.plan` leaves behind: each robot's goals and timed route, and
the reservation table they are all booked in. A change re-plans only the robots it touches:
their routes from where they are at `now_s` on are taken out of the table and searched again
against everybody else's bookings, so every route stays conflict-free without planning the
fleet again. Pure: times are seconds on the plan's clock.
"""
from __future__ import annotations

import bisect
import contextlib
import dataclasses
import math

from .assignment import RobotReq, TaskReq, can_carry
from .graph import HospitalGraph
from .routing import MARGIN_S, Goal, ReservationTable, Route, plan_route

URGENT = ("emergency", "high")
CANDIDATES = 3  # robots whose routes are searched for a new task, best estimate first
ETA_SLACK_S = 30.0
REPLAN_WEIGHT = 10.0
LIFT_GRACE_S = 10.0  # a failed lift still takes the robots at its doors for this long
GIVE_UP = 3  # tasks given up, the last queued first, before a robot walled in stays put
# a failed lift: a robot that would ride it is re-planned at once for what it carries and
# the tasks it was to pick up within this long, then home; the rest of its queue is handed
# back and given to it again by `take_back`, off the failure's answer (the lift left is
# jammed for the hour: searching every robot's hour of queue through it took seconds)
KEEP_S = 120.0
HANDED_BACK = "handed back for a moment, to be planned again after the robots due first"

Label = tuple[str | None, str]  # (task id, "pickup" | "dropoff" | "home")


def home_goal(robot: RobotReq) -> tuple[Goal, Label]:
    return Goal(robot.home), (None, "home")


def goals_of(robot: RobotReq, queue: list[TaskReq]) -> list[tuple[Goal, Label]]:
    """The goals a robot's route goes through: what it carries, each task's pick-up (not
    before its release) and drop-off, then home."""
    goals = [(Goal(robot.carrying.dropoff), (robot.carrying.id, "dropoff"))] \
        if robot.carrying else []
    for t in queue:
        goals += [(Goal(t.pickup, t.release_s), (t.id, "pickup")),
                  (Goal(t.dropoff), (t.id, "dropoff"))]
    return goals + [home_goal(robot)]


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
    unassigned: dict[str, str] = dataclasses.field(default_factory=dict)
    # robot -> (where fail_lift re-planned it from, the goals it took off the end of its
    # queue), for take_back
    handed_back: dict[str, tuple[float, list[tuple[Goal, Label]]]] = dataclasses.field(
        default_factory=dict)
    # robots stopped where they are (a fault, silence), held there for good: not planned
    stopped: dict[str, RobotPlan] = dataclasses.field(default_factory=dict)
    # robots re-planned around a closed corridor or lift: searched again when one reopens
    detoured: set[str] = dataclasses.field(default_factory=set)
    # where a re-planned leg must leave the shortest paths (a jam), favour getting closer
    # over arriving sooner by this factor: a re-plan answers at once (routing.plan_route)
    weight: float = REPLAN_WEIGHT

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
            if not can_carry(rp.robot, task):
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
                self.unassigned.pop(task.id, None)
                return rid
        self.unassigned[task.id] = ("no capable robot can reach it" if not ranked else
                                    "no conflict-free route for any nearby robot")
        return None

    def take_on_board(self, robot_id: str, task_id: str, dropoff: int, now_s: float) -> bool:
        """A robot reports it has picked up a task its route does not have (given to it in
        a change it had not seen yet): anybody else's route goes on without it, the robot's
        delivers it first. False when the robot has no such route (nothing changes)."""
        rp = self.robots[robot_id]
        prefix, done = rp.cut(now_s)
        if not self._replan(robot_id, prefix, done, [(Goal(dropoff), (task_id, "dropoff"))] +
                            [g for g in rp.goals[done:] if g[1][0] != task_id]):
            return False
        self.drop_task(task_id, now_s)  # from whoever else was to fetch it
        return True

    def free_walled_in(self, now_s: float) -> list[str]:
        """Plan home, from where it is at `now_s`, each robot left walled in away from home
        (the others have moved on since). Returns those that have a way now."""
        freed = []
        for rid, rp in sorted(self.robots.items()):
            if rp.route.waypoints[-1][0] != rp.robot.home:
                prefix, done = rp.cut(now_s)
                with self._sharing(prefix[-1][0], rid):
                    if self._replan(rid, prefix, done, [home_goal(rp.robot)]):
                        freed.append(rid)
        return freed

    @contextlib.contextmanager
    def _sharing(self, node: int, rid: str):
        """While `rid` is searched from `node`: without the holds of the other robots
        walled in there for good (robots that ran into one that stopped in front of them
        hold its place together, and none could ever leave first)."""
        held = {}
        for other, rp in self.robots.items():
            wp = rp.route.waypoints
            if other != rid and wp[-1][0] == node and wp[-1][0] != rp.robot.home:
                j = len(wp) - 1
                while j > 0 and wp[j - 1][0] == node:
                    j -= 1
                held[other] = self.table.bookings(wp, j)
                self.table.take_out(other, held[other])
        try:
            yield
        finally:
            for other, bookings in held.items():
                self.table.put_in(other, bookings)

    def drop_task(self, task_id: str, now_s: float) -> str | None:
        """Take a task that is not picked up by `now_s` out of the plan (cancelled, or
        picked up by another robot): the robot that was to fetch it re-planned without it. Returns that robot, "" when no
        robot had it to do, or None when that robot has no route without it (its route is
        unchanged, the task still in it)."""
        self.unassigned.pop(task_id, None)
        for rid, (cut_s, goals) in list(self.handed_back.items()):
            self.handed_back[rid] = (cut_s, [g for g in goals if g[1][0] != task_id])
        for rid, rp in self.robots.items():
            prefix, done = rp.cut(now_s)
            rest = rp.goals[done:]
            if not any(tid == task_id and role == "pickup" for _, (tid, role) in rest):
                continue
            if not self._replan(rid, prefix, done, [g for g in rest if g[1][0] != task_id]):
                return None
            return rid
        return ""

    def stop_robot(self, robot_id: str, now_s: float, reason: str) -> list[str]:
        """A robot stops where it is at `now_s` (a move under way finished), for good: it
        takes no task, what it has not delivered is given up (in `unassigned`), and robots
        that would pass there later are re-planned around it. Returns those robots."""
        before = {rid: rp.route for rid, rp in self.robots.items()}
        rp = self.robots[robot_id]
        prefix, done = rp.cut(now_s)
        node, at = prefix[-1]
        if len(prefix) > 1 and prefix[-2][0] != node:
            # stopped on its way there: robots already on their way there too, or there,
            # pass it (it stops short of the place until they have left it)
            leave = max([at] + [self._leaves(other, node, now_s) for other in self.robots
                                if other != robot_id])
            prefix = prefix[:-1] + [(node, leave)]
        self._stay(robot_id, prefix, done, now_s, reason, set(), "stopped")
        self.stopped[robot_id] = self.robots.pop(robot_id)
        return sorted(rid for rid, rp in self.robots.items() if rp.route is not before[rid])

    def _leaves(self, rid: str, node: int, now_s: float) -> float:
        """When `rid`, there or on its way there at `now_s`, leaves `node` (-inf if it is
        neither, or stays for good)."""
        wp = self.robots[rid].route.waypoints
        i = max(0, bisect.bisect_right(wp, now_s, key=lambda w: w[1]) - 1)
        k = i if wp[i][0] == node else i + 1
        if k >= len(wp) or wp[k][0] != node:
            return -math.inf
        while k + 1 < len(wp) and wp[k + 1][0] == node:
            k += 1
        return wp[k][1] if k + 1 < len(wp) else -math.inf

    def place_robot(self, robot: RobotReq, now_s: float) -> bool:
        """A robot joins the plan at `now_s`: a new one at `robot.node`, or a stopped one
        going on where it stopped; planned home from there, to take tasks. False when its
        place is booked by another robot later (a new one is then not placed) or it has no
        way home yet (a stopped one stays held)."""
        held = self.stopped.pop(robot.id, None)
        if held is None:
            free = self.table.safe_intervals(robot.node)
            if not free or free[-1][0] > now_s or free[-1][1] != math.inf:
                return False
            at = robot.node
        else:
            at = held.route.waypoints[-1][0]
            self.table.take_out(robot.id, self.table.bookings(held.route.waypoints))
        route = Route([(at, now_s)], [])
        self.table.put_in(robot.id, self.table.bookings(route.waypoints))
        self.robots[robot.id] = RobotPlan(dataclasses.replace(robot, node=at, carrying=None),
                                          [], route)
        with self._sharing(at, robot.id):
            placed = self._replan(robot.id, route.waypoints, 0, [home_goal(robot)])
        if placed:
            return True
        if held is None:  # not placed after all
            self.table.take_out(robot.id, self.table.bookings(route.waypoints))
            del self.robots[robot.id]
        else:
            self.stopped[robot.id] = self.robots.pop(robot.id)
        return False

    def fail_lift(self, lift_id: str, now_s: float) -> list[str]:
        """Take `lift_id` out of service from `now_s`: rides under way finish, and so do
        those of robots at its doors (at the landing or stepping in, leaving within
        LIFT_GRACE_S); every robot that would board it later is re-planned without it, from
        the last goal it reaches before that ride (or from where it is at `now_s`, a move
        under way finished), in the order they would board, to deliver what it carries and
        the tasks it was to pick up within KEEP_S, and park; one walled in by a robot still
        to be re-planned tries again after the others. Returns the robots re-planned; tasks
        one can no longer do, and the rest of their queues (HANDED_BACK, until
        `take_back`), are put in `unassigned`. Raises ValueError, changing nothing, for a
        lift the map lacks or one out of service already."""
        old = self.graph
        if lift_id not in old.lift_capacity:
            raise ValueError(f"no lift {lift_id!r} on this map")
        if lift_id in old.out_of_service:
            raise ValueError(f"lift {lift_id} is out of service already")
        # the car still takes those at its doors: a robot at the landing or stepping in at
        # now_s rides if it leaves within LIFT_GRACE_S (two robots may be committed to
        # the landing, one leaving as the other comes in: neither could stay)
        return self._avoid(old.without_lift(lift_id),
                           lambda x, y: old.move(x, y).lift == lift_id, now_s,
                           f"lift {lift_id} is out of service", LIFT_GRACE_S)

    def block_corridor(self, graph: HospitalGraph, a: int, b: int, now_s: float) -> list[str]:
        """The corridor between `a` and `b` blocked from `now_s` (`graph`: the map without
        it): robots in it go on through, every robot that would enter it later is
        re-planned as for a failed lift. Returns those robots."""
        old = self.graph
        return self._avoid(graph, lambda x, y: {x, y} == {a, b} and old.move(x, y).lift is None,
                           now_s, f"corridor {old.ids[a]} - {old.ids[b]} is blocked", 0.0)

    def reopen(self, graph: HospitalGraph, now_s: float) -> list[str]:
        """A corridor or lift open again from `now_s` (`graph`: the map with it): no route
        needs to change, but each robot re-planned around a closure is searched again
        from where it is, through the same goals, and takes the new route if it is done
        sooner. Returns those robots."""
        self.graph = self.table.graph = graph
        sooner = []
        for rid in sorted(self.detoured & set(self.robots)):
            rp = self.robots[rid]
            prefix, done = rp.cut(now_s)
            if done < len(rp.goals) and self._replan(rid, prefix, done, rp.goals[done:],
                                                      before_s=rp.route.goal_times[-1]):
                sooner.append(rid)
        if not graph.blocked and not graph.out_of_service:
            self.detoured.clear()
        return sooner

    def _avoid(self, graph: HospitalGraph, closed, now_s: float, reason: str,
               grace_s: float) -> list[str]:
        """Switch to `graph` from `now_s`: each robot that would later take a move for
        which `closed(from, to)` holds (but those about to, within `grace_s`, stepped in by
        now_s) is re-planned without it (see fail_lift). Returns those robots."""
        self.graph = self.table.graph = graph

        def rides(route: Route):
            """(departure, stepped in by now_s) of each closed move after now_s."""
            wp = route.waypoints
            i = max(0, bisect.bisect_left(wp, now_s, key=lambda w: w[1]) - 1)
            entered = -math.inf  # when it set off to the node it is at
            for (a, t), (b, _) in zip(wp[i:], wp[i + 1:]):
                if a != b:
                    if t > now_s and closed(a, b):
                        yield t, entered <= now_s
                    entered = t

        since = {}
        for rid, rp in self.robots.items():
            since[rid] = now_s
            for t, stepped_in in rides(rp.route):
                if not (stepped_in and t <= now_s + grace_s):
                    break
                since[rid] = t

        def next_ride(rid: str) -> float | None:
            return next((t for t, _ in rides(self.robots[rid].route) if t > since[rid]), None)

        first = {rid: next_ride(rid) for rid in self.robots}
        affected = [rid for rid, t in first.items() if t is not None]
        self.detoured.update(affected)
        pending = sorted(affected, key=lambda r: (first[r], r))
        waited: set[str] = set()
        while pending:
            rid = pending.pop(0)
            last_try = rid in waited or not pending
            seen = -math.inf
            while (ride := next_ride(rid)) is not None and ride > seen:
                seen = ride  # each stretch searched leaves out the lift: on to a later ride
                if not self._detour(rid, ride, since[rid], reason, last_try, set(pending)):
                    break
            else:
                continue
            waited.add(rid)
            pending.append(rid)
        return affected

    def _detour(self, rid: str, by_s: float, now_s: float, reason: str, last_try: bool,
                pending: set[str]) -> bool:
        """Re-plan `rid` from the last goal it reaches before `by_s` (or from where it is at
        `now_s`). Where it cannot set off from there, it follows its old route further (out
        of the way, up to where it must not go on) and sets off from there. False when it
        has no route (its route is unchanged). On the last try, tasks are given up (the last
        queued first) until it has one, and one walled in for good stays at the last of
        those places (True); `pending`: robots still to be re-planned, which will go around
        it."""
        rp = self.robots[rid]
        first = max([now_s] + [g for g in rp.route.goal_times if g < by_s][-1:])
        later = sorted({t for _, t in rp.route.waypoints if first < t < by_s})
        # up to four places further on, spread out, the last one nearest `by_s`
        cuts = [first] + later[::-1][::max(1, len(later) // 4)][:4][::-1]
        for cut in cuts:
            prefix, done = rp.cut(cut)
            lost = self._unreachable(rp.robot, prefix[-1][0], rp.goals[done:])
            if lost & self._on_board(rp, done):
                break  # what it carries is out of reach from there
            goals, handed = self._kept(rp, done, lost, now_s + KEEP_S)
            if self._replan(rid, prefix, done, goals):
                self.unassigned.update({tid: f"{reason}: no way to it" for tid in lost})
                self._hand_back(rid, prefix[-1][1], handed, reason)
                return True
        if not last_try:
            return False
        goals, handed = self._kept(rp, done, lost, now_s + KEEP_S)
        self._hand_back(rid, prefix[-1][1], handed, reason)
        for _ in range(GIVE_UP if not lost & self._on_board(rp, done) else 0):
            # a leg further on may be what has no way: give tasks up, the last first
            dropped = next((g[1][0] for g in reversed(goals) if g[1][1] == "pickup"), None)
            if dropped is None:
                break
            lost.add(dropped)
            goals = [g for g in goals if g[1][0] != dropped]
            if self._replan(rid, prefix, done, goals):
                self.unassigned.update({tid: f"{reason}: no conflict-free route"
                                        for tid in lost})
                return True
        on_the_way = [now_s] + [t for _, t in rp.route.waypoints if now_s < t < by_s]
        self._stay(rid, *self._place_to_stay(rid, on_the_way, (prefix, done)), now_s, reason, pending)
        return True

    def _place_to_stay(self, rid: str, cuts: list[float], otherwise):
        """Where a robot walled in for good stops: the end of its route cut at the latest
        of `cuts` whose place nobody else needs from then on (out of the way, as far as it
        may go; two robots walled in must not stop at one place); else `otherwise`.
        Returns (prefix, goals done)."""
        rp = self.robots[rid]
        own = self.table.bookings(rp.route.waypoints,
                                  self.table.first_to_rebook(rp.route.waypoints, min(cuts)))
        self.table.take_out(rid, own)
        try:
            for cut in sorted(cuts, reverse=True):
                prefix, done = rp.cut(cut)
                node, at = prefix[-1]
                free = self.table.safe_intervals(node)
                if free and free[-1][1] == math.inf and free[-1][0] <= at:
                    return prefix, done
            return otherwise
        finally:
            self.table.put_in(rid, own)

    def _kept(self, rp: RobotPlan, done: int, lost: set[str], until_s: float):
        """The goals after the first `done` that a robot keeps when re-planned for a failed
        lift (what it carries, and the tasks it was to pick up by `until_s`, but `lost`;
        home), and those it hands back, in order."""
        rest = list(zip(rp.goals[done:], rp.route.goal_times[done:]))
        keep = self._on_board(rp, done) | {tid for (_, (tid, role)), t in rest
                                           if role == "pickup" and t <= until_s}
        keep -= lost
        return ([g for g, _ in rest if g[1][0] is None or g[1][0] in keep],
                [g for g, _ in rest if g[1][0] is not None and g[1][0] not in keep | lost])

    def _hand_back(self, rid: str, cut_s: float, goals: list[tuple[Goal, Label]],
                   reason: str) -> None:
        """Keep `goals` (taken off the end of `rid`'s queue, re-planned from `cut_s`) for
        take_back."""
        if not goals:
            return
        _, before = self.handed_back.get(rid, (cut_s, []))
        self.handed_back[rid] = (cut_s, before + goals)
        self.unassigned.update({tid: f"{reason}: {HANDED_BACK}" for _, (tid, _) in goals})

    def take_back(self, now_s: float) -> tuple[list[str], dict[str, str]]:
        """Give each robot the goals fail_lift handed back, after those it kept: its route
        searched again from the last of them (or from where it is at `now_s`), in the order
        they are free; where that finds no way, from where the failure re-planned it, all
        its goals again, tasks given up (the last first) as there. Returns the robots
        re-planned, and the tasks given up (in `unassigned`, with why)."""
        def free_at(rid: str) -> float:  # when it has done what it kept, but parking
            times = self.robots[rid].route.goal_times
            return max(now_s, times[-2] if len(times) > 1 else now_s)

        replanned, dropped = [], {}
        why = "no conflict-free route once a lift failed"
        for rid in sorted(self.handed_back, key=lambda r: (free_at(r), r)):
            cut_s, goals = self.handed_back[rid]
            rp = self.robots[rid]
            home = [home_goal(rp.robot)]  # done with its goals, it may be
            prefix, done = rp.cut(free_at(rid))            # home already: home once more
            taken = self._replan(rid, prefix, done, goals + home)
            if not taken:
                prefix, done = rp.cut(max(now_s, cut_s))
                for _ in range(GIVE_UP + 1):
                    if self._replan(rid, prefix, done, rp.goals[done:-1] + goals + home):
                        taken = True
                        break
                    if not goals:
                        break
                    last = goals[-1][1][0]
                    dropped[last] = why
                    goals = [g for g in goals if g[1][0] != last]
            if taken:
                replanned.append(rid)
                for _, (tid, _) in goals:
                    self.unassigned.pop(tid, None)
            else:
                dropped.update({tid: why for _, (tid, _) in goals})
        self.handed_back.clear()
        self.unassigned.update(dropped)
        return replanned, dropped

    @staticmethod
    def _on_board(rp: RobotPlan, done: int) -> set[str]:
        """Tasks picked up by the time the robot has reached `done` goals, not delivered."""
        picked = {tid for _, (tid, role) in rp.goals[:done] if role == "pickup"}
        if rp.robot.carrying:
            picked.add(rp.robot.carrying.id)
        return picked - {tid for _, (tid, role) in rp.goals[:done] if role == "dropoff"}

    def _stay(self, rid: str, prefix: list[tuple[int, float]], done: int, now_s: float,
              reason: str, pending: set[str], how: str = "walled in") -> None:
        """Leave `rid` where `prefix` ends, held there for good: what it has not delivered
        is given up (a task on board is for recovery by hand). Robots that would be there
        later are re-planned around it, from before they set off there (but those in
        `pending`, which will be)."""
        rp = self.robots[rid]
        node, at = prefix[-1]
        lost = self._on_board(rp, done) | {tid for _, (tid, _) in rp.goals[done:] if tid} | \
            {tid for _, (tid, _) in self.handed_back.pop(rid, (0.0, []))[1]}
        self.unassigned.update({tid: f"{reason}: robot {rid} is {how} at "
                                     f"{self.graph.ids[node]}" for tid in lost})
        kept = [(g, t) for g, t in zip(rp.goals[:done], rp.route.goal_times)
                if g[1][0] not in lost]
        first = self.table.first_to_rebook(prefix, at)
        self.table.take_out(rid, self.table.bookings(rp.route.waypoints, first))
        self.table.put_in(rid, self.table.bookings(prefix, first))
        self.robots[rid] = RobotPlan(rp.robot, [g for g, _ in kept],
                                     Route(prefix, [t for _, t in kept]))

        def sets_off_there(route: Route) -> float | None:
            wp = route.waypoints
            j = next((j for j, (n, t) in enumerate(wp) if n == node and t > at - MARGIN_S),
                     None)
            return None if j is None else wp[max(0, j - 1)][1]

        for other in sorted({owner for _, end, owner in self.table._stays.get(node, [])
                             if owner != rid and end > at - MARGIN_S} - pending):
            if other not in self.robots:
                continue  # an obstacle
            seen = -math.inf  # one that set off there before now_s cannot keep out: once
            while (by_s := sets_off_there(self.robots[other].route)) is not None and by_s > seen:
                seen = by_s
                self._detour(other, by_s, now_s, reason, True, pending)

    def _with(self, rp: RobotPlan, done: int, task: TaskReq) -> list[tuple[Goal, Label]]:
        rest = rp.goals[done:] or [home_goal(rp.robot)]  # idle: home again
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

    def _replan(self, rid: str, prefix: list[tuple[int, float]], done: int, goals,
                before_s: float = math.inf) -> bool:
        """Search the robot's route from the end of `prefix` (where it has reached `done`
        goals) through `goals` against all other bookings; book it, or keep the old route
        if there is none (or none done before `before_s`). Only what it holds from a little
        before the end of `prefix` on is taken out and booked again."""
        rp = self.robots[rid]
        node, t = prefix[-1]
        first = self.table.first_to_rebook(prefix, t)
        before = self.table.bookings(rp.route.waypoints, first)
        self.table.take_out(rid, before)
        route = plan_route(self.table, rp.robot.speed_mps, node, t, [g for g, _ in goals],
                           weight=self.weight)
        if route is None or route.goal_times[-1:] and route.goal_times[-1] >= before_s - MARGIN_S:
            self.table.put_in(rid, before)
            return False
        route = Route(prefix + route.waypoints[1:],
                      rp.route.goal_times[:done] + route.goal_times)
        self.table.put_in(rid, self.table.bookings(route.waypoints, first))
        self.robots[rid] = RobotPlan(rp.robot, rp.goals[:done] + goals, route)
        return True

    def to_json(self) -> dict:
        """Queues and routes in the planner's JSON form (for checking a changed plan)."""
        return {"assignments": [{"robot": rid, "tasks": self.queue_of(rid)}
                                for rid in self.robots],
                "routes": [{"robot": rid, "waypoints": [{"node": n, "t": t}
                                                        for n, t in self.route_of(rid)]}
                           for rid in self.robots],
                "unassigned": [{"task": t, "reason": why} for t, why in self.unassigned.items()]}
