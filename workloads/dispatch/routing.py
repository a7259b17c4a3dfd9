"""Conflict-free routes in space and time: a reservation table and Safe Interval Path Planning.

Robots are planned one after another (prioritised planning); each route is reserved before
the next robot is planned, so a later robot waits or detours around earlier ones:
- a node is held by one robot at a time, from its arrival to its departure, with a margin;
- a single-lane corridor is never traversed in both directions at once (no head-on meeting);
- a lift carries at most `capacity` robots at once; a ride takes its floor travel time.
A robot that finished its queue parks at its home node, held from then on. Robots not yet
planned are held where they stand, so nobody is routed through them.

Each leg of a route (to a pick-up, a drop-off, home) is an A* search (SIPP, Phillips &
Likhachev 2011) over (node, safe interval) states, a safe interval being a time the node is
free between other robots' stays; exact free-space travel times are the heuristic, so the
search finds the leg's earliest arrival, waiting or detouring where others are in the way.
"""
from __future__ import annotations

import bisect
import dataclasses
import heapq
import itertools
import math

from .graph import HospitalGraph, Move

# seconds kept between two robots at one node and between opposite single-lane traversals
MARGIN_S = 1.0
INF = math.inf


@dataclasses.dataclass(frozen=True)
class Goal:
    node: int
    not_before: float = 0.0  # a pick-up cannot happen before the task is released


@dataclasses.dataclass
class Route:
    waypoints: list[tuple[int, float]]  # (node, time); the same node twice means a wait
    goal_times: list[float]             # when each goal was reached (pick-up, drop-off, ...)


class _Intervals:
    """Time intervals bucketed by start time, so that finding the ones overlapping a short
    window looks at a few buckets instead of every interval (traversals and rides are short)."""

    BUCKET_S = 30.0

    def __init__(self):
        self._buckets: dict[int, list[tuple[float, float]]] = {}
        self._longest = 0.0

    def add(self, start: float, end: float) -> None:
        self._buckets.setdefault(int(start // self.BUCKET_S), []).append((start, end))
        self._longest = max(self._longest, end - start)

    def overlapping(self, start: float, end: float) -> list[tuple[float, float]]:
        """Intervals (s, e) with s < end and start < e."""
        found = []
        for b in range(int((start - self._longest) // self.BUCKET_S),
                       int(end // self.BUCKET_S) + 1):
            for i in self._buckets.get(b, ()):
                if i[0] < end and start < i[1]:
                    found.append(i)
        return found


class ReservationTable:
    def __init__(self, graph: HospitalGraph):
        self.graph = graph
        self._stays: dict[int, list[tuple[float, float, str]]] = {}
        self._safe: dict[int, list[tuple[float, float]]] = {}
        self._lanes: dict[tuple[int, int], _Intervals] = {}  # directed single-lane traversals
        self._lifts: dict[str, _Intervals] = {}  # rides

    def hold(self, node: int, start: float, end: float, owner: str) -> None:
        self._stays.setdefault(node, []).append((start, end, owner))
        self._safe.pop(node, None)

    def release(self, node: int, owner: str) -> None:
        """Drop the stays of `owner` at `node` (the placeholder of a robot about to be planned)."""
        self._stays[node] = [s for s in self._stays.get(node, []) if s[2] != owner]
        self._safe.pop(node, None)

    def safe_intervals(self, node: int) -> list[tuple[float, float]]:
        """The times nobody else is at `node`, as sorted (start, end) intervals."""
        if node not in self._safe:
            busy = sorted((a - MARGIN_S, b + MARGIN_S) for a, b, _ in self._stays.get(node, []))
            free, t = [], -INF
            for a, b in busy:
                if a > t:
                    free.append((t, a))
                t = max(t, b)
            if t < INF:
                free.append((t, INF))
            self._safe[node] = free
        return self._safe[node]

    def reserve(self, route: Route, owner: str) -> None:
        """Hold what `route` uses; its last node is held for good (the robot parks there)."""
        wp = route.waypoints
        arrived = wp[0][1]
        for i, (node, t) in enumerate(wp):
            if i + 1 == len(wp):
                self.hold(node, arrived, INF, owner)
            elif wp[i + 1][0] != node:
                self.hold(node, arrived, t, owner)
                nxt, arrived = wp[i + 1]
                move = self.graph.move(node, nxt)
                if move.single_lane:
                    self._lanes.setdefault((node, nxt), _Intervals()).add(t, arrived)
                if move.lift:
                    self._lifts.setdefault(move.lift, _Intervals()).add(t, arrived)

    def earliest_departure(self, a: int, move: Move, duration: float, depart: float) -> float:
        """The first time >= `depart` at which `move` from `a` meets nobody head-on and
        finds room in its lift (the nodes at either end are the caller's to check)."""
        lane = self._lanes.get((move.to, a)) if move.single_lane else None
        lift = self._lifts.get(move.lift) if move.lift else None
        while True:
            bumped = depart
            if lane:
                for _, e in lane.overlapping(depart - MARGIN_S, depart + duration + MARGIN_S):
                    bumped = max(bumped, e + MARGIN_S)
            if lift:
                riding = lift.overlapping(depart, depart + duration)
                if len(riding) >= self.graph.lift_capacity[move.lift]:
                    bumped = max(bumped, min(e for _, e in riding))
            if bumped == depart:
                return depart
            depart = bumped


def _interval_at(free: list[tuple[float, float]], t: float) -> int | None:
    k = bisect.bisect_right(free, (t, INF)) - 1
    return k if k >= 0 and free[k][0] <= t <= free[k][1] else None


def plan_route(table: ReservationTable, speed_mps: float, start: int,
               start_s: float, goals: list[Goal]) -> Route | None:
    """A route from `start` through `goals` in order, parking at the last one for good;
    None when no conflict-free route exists. Legs are searched one after the other, each
    for its earliest arrival; a robot early for a release waits where it is, not on the way.
    When a leg cannot leave where the previous one ended (a dead end someone else is about
    to enter), the previous leg is searched again for a later arrival."""
    times = table.graph.travel_times(speed_mps)
    legs: list[tuple[float, list, float, tuple]] = []  # (set-off, steps, done, end state)
    excluded: list[set] = [set() for _ in goals]
    retries = 2 * len(goals) + 8
    while len(legs) < len(goals):
        i = len(legs)
        goal = goals[i]
        node, t = (start, start_s) if i == 0 else (goals[i - 1].node, legs[-1][2])
        free = table.safe_intervals(node)
        k = _interval_at(free, t)
        found = None
        if k is not None:
            setoff = min(max(t, goal.not_before - times[node, goal.node]), free[k][1])
            found = _leg(table, speed_mps, times[goal.node].tolist(), node, k, setoff, goal,
                         park=i == len(goals) - 1, excluded=excluded[i])
        if found is None:
            if i == 0 or retries == 0:
                return None
            retries -= 1
            excluded[i].clear()
            excluded[i - 1].add(legs.pop()[3])
            continue
        legs.append((setoff, *found))
    waypoints = [(start, start_s)]
    for setoff, steps, _, _ in legs:
        for move, depart, arrive in [(None, setoff, None)] + steps:
            if depart > waypoints[-1][1]:
                waypoints.append((waypoints[-1][0], depart))
            if move is not None:
                waypoints.append((move.to, arrive))
    return Route(waypoints, [done for _, _, done, _ in legs])


def _leg(table: ReservationTable, speed_mps: float, to_goal: list[float], start: int, k0: int,
         start_s: float, goal: Goal, park: bool, excluded: set):
    """SIPP A* for one leg: (moves with departure and arrival times, time the goal is done,
    the (node, interval) it ends in). `excluded` are end states known to be dead ends."""
    moves = table.graph.moves_at(speed_mps)
    safe = table._safe
    first = (start, k0)
    best = {first: start_s}
    parent: dict[tuple, tuple] = {}
    counter = itertools.count()
    heap = [(start_s + to_goal[start], next(counter), start_s, first)]
    while heap:
        _, _, t, state = heapq.heappop(heap)
        if t > best.get(state, INF):
            continue
        node, k = state
        interval_end = (safe.get(node) or table.safe_intervals(node))[k][1]
        if node == goal.node:
            done = max(t, goal.not_before)
            fits = (interval_end == INF) if park else done <= interval_end
            if fits and state not in excluded:
                end = state
                steps = []
                while state in parent:
                    state, move, depart, arrive = parent[state]
                    steps.append((move, depart, arrive))
                return steps[::-1], done, end
        for move, duration, constrained in moves[node]:
            v = move.to
            free = safe.get(v) or table.safe_intervals(v)
            # only the intervals it can reach before it must leave `node`
            arrive_min = t + duration
            kv = bisect.bisect_right(free, (arrive_min, INF)) - 1
            if kv < 0 or free[kv][1] < arrive_min:
                kv += 1
            latest = interval_end + duration
            while kv < len(free):
                s, e = free[kv]
                if s > latest:
                    break
                depart = t if s - duration < t else s - duration
                if constrained:
                    depart = table.earliest_departure(node, move, duration, depart)
                    if depart > interval_end or depart + duration > e:
                        kv += 1
                        continue
                arrive = depart + duration
                nxt = (v, kv)
                if arrive < best.get(nxt, INF):
                    best[nxt] = arrive
                    parent[nxt] = (state, move, depart, arrive)
                    heapq.heappush(heap, (arrive + to_goal[v], next(counter), arrive, nxt))
                kv += 1
    return None
