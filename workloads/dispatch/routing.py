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
free between other robots' stays; exact free-space travel times are the heuristic. A leg is
searched first along free-flow shortest paths only (its earliest arrival there, waiting
where others are in the way: few states and no detour metres), and only where that finds
no way through the nodes next to them, then the whole map; of two ways that reach a place
equally early, the shorter is kept. The bookings of a route can be listed and taken out,
so one robot's route can be searched again from where it changes (live.py).

This module is the planner's hot loop: setup.py compiles it with Cython (the float
annotations of the searches' locals become C doubles); uncompiled it runs the same.
"""
from __future__ import annotations

import bisect
import dataclasses
import heapq
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
    """Time intervals sorted by start: the ones overlapping a window are found by bisection
    (traversals and rides are short, so few intervals start before the window and reach in)."""

    def __init__(self):
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.longest = 0.0

    def add(self, start: float, end: float) -> None:
        i = bisect.bisect_right(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)
        self.longest = max(self.longest, end - start)

    def remove(self, start: float, end: float) -> None:
        i = bisect.bisect_left(self.starts, start)
        while self.ends[i] != end:
            i += 1
        del self.starts[i], self.ends[i]

    def latest_end(self, start: float, end: float) -> float:
        """The latest end of the intervals (s, e) with s < end and start < e (-inf: none)."""
        latest: float
        starts, ends = self.starts, self.ends
        hi = bisect.bisect_left(starts, end)
        latest = -INF
        for i in range(bisect.bisect_left(starts, start - self.longest, 0, hi), hi):
            if ends[i] > latest:
                latest = ends[i]
        return latest if latest > start else -INF


class _Load:
    """How many robots ride a lift, as a step function of time: load[i] on
    [times[i], times[i+1]). Rides are half-open: one leaving frees room at that instant."""

    def __init__(self):
        self.times: list[float] = [-INF]
        self.load: list[int] = [0]

    def _split(self, t: float) -> int:
        i = bisect.bisect_right(self.times, t) - 1
        if self.times[i] != t:
            i += 1
            self.times.insert(i, t)
            self.load.insert(i, self.load[i - 1])
        return i

    def add(self, start: float, end: float, step: int = 1) -> None:
        i, j = self._split(start), self._split(end)
        load = self.load
        for k in range(i, j):
            load[k] += step
        # steps of equal load at either end become one again (a ride taken out leaves none)
        if j < len(load) and load[j] == load[j - 1]:
            del self.times[j], load[j]
        if i and load[i] == load[i - 1]:
            del self.times[i], load[i]

    def remove(self, start: float, end: float) -> None:
        self.add(start, end, -1)

    def earliest_room(self, depart: float, duration: float, capacity: int) -> float:
        """The first time >= `depart` from which the lift has room for `duration`."""
        end: float
        times, load, n = self.times, self.load, len(self.times)
        i = bisect.bisect_right(times, depart) - 1
        while True:
            end = times[i + 1] if i + 1 < n else INF
            if load[i] >= capacity:
                depart = end
            elif end - depart >= duration:
                return depart
            i += 1


class ReservationTable:
    """What the planned robots use, by owner, so that one robot's route can be taken out
    and planned again against all the others (incremental re-planning)."""

    def __init__(self, graph: HospitalGraph):
        self.graph = graph
        self._stays: dict[int, list[tuple[float, float, str]]] = {}
        self._safe: dict[int, list[tuple[float, float]]] = {}
        self._lanes: dict[tuple[int, int], _Intervals] = {}  # directed single-lane traversals
        self._lifts: dict[str, _Load] = {}  # rides
        self._crowded: set[int] = set()

    def hold(self, node: int, start: float, end: float, owner: str) -> None:
        stay = (start, end, owner)
        stays = self._stays.get(node)
        if stays is None:
            stays = self._stays[node] = []
        k = bisect.bisect_right(stays, stay)
        stays.insert(k, stay)
        if k and stays[k - 1][1] > start and stays[k - 1][2] != owner or \
                k + 1 < len(stays) and stays[k + 1][0] < end and stays[k + 1][2] != owner:
            self._crowded.add(node)  # two robots held at once: an obstacle where one stands
        free = self._safe.get(node)
        if free is not None:  # cut the stay out of the safe intervals
            a, b = start - MARGIN_S, end + MARGIN_S
            i = bisect.bisect_right(free, (a, INF)) - 1
            if i < 0:
                i = 0
            j, pieces = i, []
            while j < len(free) and free[j][0] < b:
                s, e = free[j]
                if e <= a:
                    pieces.append((s, e))
                else:  # an instant between two stays is kept: a robot may pass then
                    if s <= a:
                        pieces.append((s, a))
                    if b <= e and b < INF:
                        pieces.append((b, e))
                j += 1
            free[i:j] = pieces

    def release(self, node: int, owner: str) -> None:
        """Drop the stays of `owner` at `node`."""
        for start, end, _ in [s for s in self._stays.get(node, []) if s[2] == owner]:
            self.drop(node, start, end, owner)

    def drop(self, node: int, start: float, end: float, owner: str) -> None:
        """Drop one stay of `owner` at `node`. Stays of different robots do not overlap
        (but where an obstacle stands), so the time freed runs from the stay before to the
        stay after: the safe intervals in between become one."""
        if node in self._crowded:  # overlapping stays: the neighbours say too little
            self._safe.pop(node, None)
        stays = self._stays[node]
        i = bisect.bisect_left(stays, (start, end, owner))
        del stays[i]
        free = self._safe.get(node)
        if free is not None:
            lo = stays[i - 1][1] + MARGIN_S if i else -INF
            hi = stays[i][0] - MARGIN_S if i < len(stays) else INF
            if lo <= hi and lo < INF:
                free[bisect.bisect_left(free, (lo, -INF)):
                     bisect.bisect_right(free, (hi, INF))] = [(lo, hi)]

    def bookings(self, waypoints: list[tuple[int, float]], first: int = 0) -> list[tuple]:
        """What the waypoints from `first` on (where the robot arrives at a node) hold: stays
        (node, arrival, departure), the last one for good, and single-lane traversals and
        lift rides (their intervals or load, departure, arrival)."""
        out = []
        move_of, lanes, lifts = self.graph.move, self._lanes, self._lifts
        arrived = waypoints[first][1]
        last = len(waypoints) - 1
        for i in range(first, last + 1):
            node, t = waypoints[i]
            if i == last:
                out.append((node, arrived, INF))
            elif waypoints[i + 1][0] != node:
                out.append((node, arrived, t))
                nxt, arrived = waypoints[i + 1]
                move = move_of(node, nxt)
                if move.single_lane:
                    out.append((lanes.get((node, nxt)) or lanes.setdefault((node, nxt),
                                                                          _Intervals()),
                                t, arrived))
                if move.lift:
                    out.append((lifts.get(move.lift) or lifts.setdefault(move.lift, _Load()),
                                t, arrived))
        return out

    @staticmethod
    def first_to_rebook(waypoints: list[tuple[int, float]], since: float) -> int:
        """Where the bookings that can matter to a search from `since` on begin: the
        arrival at the node the robot is at a little before `since`. What it held before
        ended more than three margins before `since` and is not in the way of anything
        after."""
        i = bisect.bisect_left(waypoints, since - 3 * MARGIN_S, key=lambda w: w[1])
        i = max(0, i - 1)
        while i and waypoints[i - 1][0] == waypoints[i][0]:
            i -= 1
        return i

    def take_out(self, owner: str, bookings: list[tuple]) -> None:
        """Release what `bookings` (of `owner`, from `bookings()`) hold."""
        for what, start, end in bookings:
            if what.__class__ is int:
                self.drop(what, start, end, owner)
            else:
                what.remove(start, end)

    def put_in(self, owner: str, bookings: list[tuple]) -> None:
        """Hold what `bookings` (of `owner`, from `bookings()`) hold."""
        for what, start, end in bookings:
            if what.__class__ is int:
                self.hold(what, start, end, owner)
            else:
                what.add(start, end)

    def safe_intervals(self, node: int) -> list[tuple[float, float]]:
        """The times nobody else is at `node`, as sorted (start, end) intervals."""
        if node not in self._safe:
            busy = sorted((a - MARGIN_S, b + MARGIN_S) for a, b, _ in self._stays.get(node, []))
            free, t = [], -INF
            for a, b in busy:
                if a >= t:
                    free.append((t, a))
                t = max(t, b)
            if t < INF:
                free.append((t, INF))
            self._safe[node] = free
        return self._safe[node]

    def reserve(self, route: Route, owner: str) -> None:
        """Hold what `route` uses; its last node is held for good (the robot parks there)."""
        self.put_in(owner, self.bookings(route.waypoints))

    def earliest_departure(self, a: int, move: Move, duration: float, depart: float) -> float:
        """The first time >= `depart` at which `move` from `a` meets nobody head-on and
        finds room in its lift (the nodes at either end are the caller's to check)."""
        bumped: float
        end: float
        lane = self._lanes.get((move.to, a)) if move.single_lane else None
        lift = self._lifts.get(move.lift) if move.lift else None
        capacity = self.graph.lift_capacity[move.lift] if lift else 0
        while True:
            bumped = depart
            if lane:
                end = lane.latest_end(depart - MARGIN_S, depart + duration + MARGIN_S)
                if end + MARGIN_S > bumped:
                    bumped = end + MARGIN_S
            if lift:
                bumped = lift.earliest_room(bumped, duration, capacity)
            if bumped == depart:
                return depart
            depart = bumped


def _interval_at(free: list[tuple[float, float]], t: float) -> int | None:
    k = bisect.bisect_right(free, (t, INF)) - 1
    return k if k >= 0 and free[k][0] <= t <= free[k][1] else None


def plan_route(table: ReservationTable, speed_mps: float, start: int,
               start_s: float, goals: list[Goal], weight: float = 1.0) -> Route | None:
    """A route from `start` through `goals` in order, parking at the last one for good;
    None when no conflict-free route exists. Legs are searched one after the other, each
    for its earliest arrival; a robot early for a release waits where it is, not on the way.
    When a leg cannot leave where the previous one ended (a dead end someone else is about
    to enter), the previous leg is searched again for a later arrival.

    `weight` > 1: where a leg must leave the shortest paths, the search favours getting
    closer over arriving sooner by that factor (weighted A*): a later arrival, found much
    sooner where the way is jammed (a re-plan that must answer at once)."""
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
            to_goal = times[:, goal.node].tolist()
            park = i == len(goals) - 1
            # first along shortest paths only, waiting where others are in the way: a
            # search of a few states, and no detour metres (searching wider when held up
            # long made plans longer, not timelier). Where that finds no way, also through
            # the places next to them (a step aside, another lift), and last the whole map
            found = _leg(table, speed_mps, to_goal, node, k, setoff, goal, park, excluded[i],
                         None, True)
            if found is None:
                for region in (_near_path(table.graph, times, node, goal.node), None):
                    found = _leg(table, speed_mps, to_goal, node, k, setoff, goal, park,
                                 excluded[i], region, False, weight)
                    if found is not None:
                        break
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


def _near_path(graph: HospitalGraph, times, start: int, goal: int) -> list[bool]:
    """Nodes on a shortest way from `start` to `goal` and their neighbours (a step aside,
    the next lift)."""
    on = times[start] + times[:, goal] <= times[start, goal] + 1e-6
    return (on | (graph.adjacency @ on > 0)).tolist()


def _arrival(table: ReservationTable, node: int, move: Move, duration: float,
             leave_by: float, free: list[tuple[float, float]], kv: int,
             earliest: float) -> tuple[int, float, float] | None:
    """The first safe interval of `free` (the next node's) from `kv` on that a single-lane
    or lift `move` can reach leaving `node` at or after `earliest` and by `leave_by`:
    (interval, departure, arrival), or None."""
    s: float
    e: float
    depart: float
    while kv < len(free):
        s, e = free[kv]
        depart = earliest if s - duration < earliest else s - duration
        if depart > leave_by:
            return None  # later intervals only leave later
        depart = earliest = table.earliest_departure(node, move, duration, depart)
        if depart > leave_by:
            return None
        if depart + duration <= e:
            return kv, depart, depart + duration
        kv = bisect.bisect_right(free, (depart + duration, INF)) - 1  # where it would arrive
        if free[kv][1] < depart + duration:
            kv += 1
    return None


def _leg(table: ReservationTable, speed_mps: float, to_goal: list[float], start: int, k0: int,
         start_s: float, goal: Goal, park: bool, excluded: set, region: list[bool] | None,
         progress: bool, weight: float = 1.0):
    """SIPP A* for one leg: (moves with departure and arrival times, time the goal is done,
    the (node, interval) it ends in). `excluded` are end states known to be dead ends;
    `region`: the nodes it may use (None: all); `progress`: only moves along a shortest
    path to the goal; `weight`: of the heuristic (weighted A*)."""
    t: float
    arrive: float
    depart: float
    duration: float
    leave_by: float
    interval_end: float
    s: float
    m: float
    b: float
    here: float
    here_m: float
    moves = table.graph.moves_at(speed_mps)
    safe, intervals = table._safe, table.safe_intervals
    heappush, heappop, bisect_right = heapq.heappush, heapq.heappop, bisect.bisect_right
    goal_node, not_before = goal.node, goal.not_before
    first = (start, k0)
    best = {first: start_s}
    metres = {first: 0.0}  # of the way there: of two equally early, the shorter is kept
    parent: dict[tuple, tuple] = {}
    # Successors are made lazily: a move's first reachable interval of the next node is
    # pushed, and its next interval only when that one comes off the heap. Ties of f (common:
    # the heuristic is exact) go to the later arrival, the deeper state.
    h = to_goal if weight == 1.0 else [weight * x for x in to_goal]
    heap = [(start_s + h[start], -start_s, first, None)]
    closed = set()
    while heap:
        _, t, state, more = heappop(heap)
        t = -t
        if more is not None:  # the same move into the next interval
            prev, move, duration, constrained, leave_by, depart = more
            v, kv = state
            free = safe.get(v) or intervals(v)
            kv += 1
            if constrained:
                found = _arrival(table, prev[0], move, duration, leave_by, free, kv, depart)
            elif kv < len(free):
                s = free[kv][0]
                if s - duration > depart:
                    depart = s - duration
                found = (kv, depart, depart + duration) if depart <= leave_by else None
            else:
                found = None
            if found is not None:
                kv, depart, arrive = found
                nxt = (v, kv)
                m = metres[prev] + move.length_m
                b = best.get(nxt, INF)
                if arrive < b or arrive == b and m < metres[nxt]:
                    best[nxt], metres[nxt] = arrive, m
                    parent[nxt] = (prev, move, depart, arrive)
                heappush(heap, (arrive + h[v], -arrive, nxt,
                                (prev, move, duration, constrained, leave_by, depart)))
        if state in closed or t > best[state]:
            continue  # pushed for its next interval only, or reached sooner another way
        closed.add(state)
        node, k = state
        interval_end = (safe.get(node) or intervals(node))[k][1]
        if node == goal_node:
            done = t if t > not_before else not_before
            fits = (interval_end == INF) if park else done <= interval_end
            if fits and state not in excluded:
                end = state
                steps = []
                while state in parent:
                    state, move, depart, arrive = parent[state]
                    steps.append((move, depart, arrive))
                return steps[::-1], done, end
        here, here_m = to_goal[node] + 1e-6, metres[state]
        for move, duration, constrained in moves[node]:
            v = move.to
            if progress and duration + to_goal[v] > here or region and not region[v]:
                continue
            free = safe.get(v) or intervals(v)
            arrive = t + duration
            kv = bisect_right(free, (arrive, INF)) - 1
            if kv < 0 or free[kv][1] < arrive:
                kv += 1
                if kv == len(free):
                    continue
            if constrained:
                found = _arrival(table, node, move, duration, interval_end, free, kv, t)
                if found is None:
                    continue
                kv, depart, arrive = found
            else:  # the first interval it reaches, leaving as soon as it may
                s = free[kv][0]
                depart = t if s - duration < t else s - duration
                if depart > interval_end:
                    continue
                arrive = depart + duration
            nxt = (v, kv)
            m = here_m + move.length_m
            b = best.get(nxt, INF)
            if arrive < b or arrive == b and m < metres[nxt]:
                best[nxt], metres[nxt] = arrive, m
                parent[nxt] = (state, move, depart, arrive)
            heappush(heap, (arrive + h[v], -arrive, nxt,
                            (state, move, duration, constrained, interval_end, depart)))
    return None
