"""Which robot does which task, in which order: rounds of optimal assignment.

Each round solves one linear assignment (scipy's `linear_sum_assignment`) between the robots
and the open tasks: the cost of giving task j to robot r next is the time r needs to fetch
and deliver it from where its queue ends, plus idle time waiting for the task's release,
plus lateness weighted by priority, less a bonus for urgent tasks that are ready. Every
round appends at most one task to each robot, so the work spreads over the fleet; a robot
that cannot carry a task (payload, kind) or cannot reach it never gets it. The emergency
bonus outweighs any travel, so a ready emergency task is taken in the first round, ahead
of lower-priority work that was queued before (which is re-planned behind it).

`relocate` then moves normal tasks between queues where that saves distance without making
anything late (the rounds only look one task ahead). `distance_lower_bound` is the
assignment relaxation of the multi-robot routing problem (each task is preceded by one
robot start or one other task), a bound no plan can beat.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from scipy.optimize import linear_sum_assignment

PRIORITY_WEIGHT = {"emergency": 100.0, "high": 10.0, "normal": 1.0}
# seconds of cost waived for taking an urgent task that is ready when the robot gets there:
# an emergency goes first, before work that is already queued
PRIORITY_BONUS = {"emergency": 1e5, "high": 120.0, "normal": 0.0}
READY_SLACK_S = 60.0
RELOCATE_MARGIN_S = 120.0
# waiting for a release costs less than travelling: the robot is idle, not moving
IDLE_WEIGHT = 0.25
_INFEASIBLE = 1e15


@dataclasses.dataclass(frozen=True)
class TaskReq:
    id: str
    pickup: int
    dropoff: int
    weight_kg: float
    kind: str
    priority: str = "normal"
    release_s: float = 0.0
    deadline_s: float = float("inf")


@dataclasses.dataclass(frozen=True)
class RobotReq:
    id: str
    node: int                 # where it is now
    home: int                 # where it parks when its queue is done
    speed_mps: float
    payload_kg: float
    capabilities: frozenset[str]
    ready_s: float = 0.0
    carrying: TaskReq | None = None  # picked up already: delivered first, never reassigned


def can_carry(robot: RobotReq, task: TaskReq) -> bool:
    return task.weight_kg <= robot.payload_kg and task.kind in robot.capabilities


def assign(robots: list[RobotReq], tasks: list[TaskReq],
           times: Callable[[float], np.ndarray]) -> dict[str, list[TaskReq]]:
    """Queues of tasks per robot id. Tasks no robot can carry and reach are left out."""
    queues: dict[str, list] = {r.id: [] for r in robots}
    if not robots:
        return queues
    pos = np.array([r.carrying.dropoff if r.carrying else r.node for r in robots])
    clock = np.array([r.ready_s + (times(r.speed_mps)[r.node, r.carrying.dropoff]
                                   if r.carrying else 0.0) for r in robots])
    pool = np.argsort([t.release_s for t in tasks], kind="stable")
    pick = np.array([t.pickup for t in tasks], dtype=int)
    drop = np.array([t.dropoff for t in tasks], dtype=int)
    release = np.array([t.release_s for t in tasks], dtype=float)
    deadline = np.array([t.deadline_s for t in tasks], dtype=float)
    weight = np.array([PRIORITY_WEIGHT[t.priority] for t in tasks])
    bonus = np.array([PRIORITY_BONUS[t.priority] for t in tasks])
    capable = np.array([[can_carry(r, t) for t in tasks] for r in robots], dtype=bool)
    for i, robot in enumerate(robots):  # it must also get home after the delivery
        tt = times(robot.speed_mps)
        capable[i] &= np.isfinite(tt[pick, drop]) & np.isfinite(tt[drop, robot.home])
    while pool.size:
        taken = _round(robots, pool, pos, clock, queues, times, capable, pick, drop, release,
                       deadline, weight, bonus)
        if not taken:
            break  # what is left, no robot can do
        pool = pool[~np.isin(pool, taken)]
    return {rid: [tasks[j] for j in q] for rid, q in queues.items()}


def _round(robots, window, pos, clock, queues, times, capable, pick, drop, release, deadline,
           weight, bonus) -> list[int]:
    """One optimal assignment of the open tasks `window` to the robots, at most one each;
    appends to the queues and moves each robot's position and clock on. Returns the tasks
    taken."""
    p, d = pick[window], drop[window]
    cost = np.full((len(robots), window.size), _INFEASIBLE)
    finish = np.zeros_like(cost)
    for i, robot in enumerate(robots):
        tt = times(robot.speed_mps)
        fetch = tt[pos[i], p]
        arrive = clock[i] + fetch
        start = np.maximum(arrive, release[window])
        finish[i] = start + tt[p, d]
        late = np.maximum(0.0, finish[i] - deadline[window])
        idle = start - arrive
        c = (fetch + tt[p, d] + IDLE_WEIGHT * idle + weight[window] * late
             - np.where(idle <= READY_SLACK_S, bonus[window], 0.0))
        ok = capable[i, window] & np.isfinite(c)
        cost[i, ok] = c[ok]
    rows, cols = linear_sum_assignment(cost)
    taken = []
    for r, c in zip(rows, cols):
        if cost[r, c] < _INFEASIBLE:
            queues[robots[r].id].append(window[c])
            pos[r] = drop[window[c]]
            clock[r] = finish[r, c]
            taken.append(window[c])
    return taken


def relocate(robots: list[RobotReq], queues: dict[str, list[TaskReq]],
             times: Callable[[float], np.ndarray], dist: np.ndarray,
             passes: int = 5) -> dict[str, list[TaskReq]]:
    """Shorten the total distance by moving normal-priority tasks to another robot's queue,
    wherever that saves metres without a new late task, a later urgent delivery or a longer
    makespan (a local search after the rounds, which only ever look one task ahead)."""
    queues = {rid: list(q) for rid, q in queues.items()}
    if not queues:
        return queues
    by_id = {r.id: r for r in robots}

    def first(robot):
        return robot.carrying.dropoff if robot.carrying else robot.node

    def schedule(robot, queue):
        tt = times(robot.speed_mps)
        node, clock = robot.node, robot.ready_s
        if robot.carrying:
            node, clock = robot.carrying.dropoff, clock + tt[robot.node, robot.carrying.dropoff]
        done = []
        for t in queue:
            clock = max(clock + tt[node, t.pickup], t.release_s) + tt[t.pickup, t.dropoff]
            done.append(clock)
            node = t.dropoff
        return done

    def late(queue, done):  # with a margin: traffic makes real routes slower than these
        return sum(f > t.deadline_s - RELOCATE_MARGIN_S for t, f in zip(queue, done))

    finish = {rid: schedule(by_id[rid], q) for rid, q in queues.items()}
    makespan = max((f[-1] for f in finish.values() if f), default=0.0)
    column = {rid: i for i, rid in enumerate(queues)}
    capable: dict[tuple, np.ndarray] = {}  # (kind, weight) -> which robots may carry it

    def gaps_of(rid):  # the places a task can go in this queue: (after node, before node)
        q, robot = queues[rid], by_id[rid]
        return (np.array([first(robot)] + [t.dropoff for t in q], dtype=int),
                np.array([t.pickup for t in q] + [robot.home], dtype=int))

    gaps = {rid: gaps_of(rid) for rid in queues}

    def flatten():
        rids = list(queues)
        return (np.concatenate([gaps[r][0] for r in rids]),
                np.concatenate([gaps[r][1] for r in rids]),
                np.concatenate([np.full(len(gaps[r][0]), column[r]) for r in rids]),
                np.concatenate([np.arange(len(gaps[r][0])) for r in rids]))

    rid_of = list(queues)
    gp, gn, owner, slot = flatten()
    n_tasks = sum(len(q) for q in queues.values())
    for _ in range(passes):
        moved = 0
        for rid_a in list(queues):
            i = 0
            while i < len(queues[rid_a]):
                qa = queues[rid_a]
                task = qa[i]
                if task.priority != "normal":
                    i += 1
                    continue
                prev = qa[i - 1].dropoff if i else first(by_id[rid_a])
                nxt = qa[i + 1].pickup if i + 1 < len(qa) else by_id[rid_a].home
                gain = (dist[prev, task.pickup] + dist[task.dropoff, nxt] - dist[prev, nxt])
                key = (task.kind, task.weight_kg)
                if key not in capable:
                    capable[key] = np.array([can_carry(by_id[r], task) for r in rid_of])
                extra = dist[gp, task.pickup] + dist[task.dropoff, gn] - dist[gp, gn]
                extra[(owner == column[rid_a]) | ~capable[key][owner]] = np.inf
                placed = False
                for c in np.argsort(extra)[:5]:
                    if not extra[c] < gain - 1e-6:
                        break
                    rid_b, k = rid_of[owner[c]], slot[c]
                    qb = queues[rid_b][:k] + [task] + queues[rid_b][k:]
                    qa_new = qa[:i] + qa[i + 1:]
                    fb, fa = schedule(by_id[rid_b], qb), schedule(by_id[rid_a], qa_new)
                    if not np.isfinite(fb[-1]) or fb[-1] > makespan:
                        continue
                    if late(qb, fb) + late(qa_new, fa) > \
                            late(queues[rid_b], finish[rid_b]) + late(qa, finish[rid_a]):
                        continue
                    before = {t.id: f for t, f in zip(queues[rid_b], finish[rid_b])}
                    if any(t.priority != "normal" and f > before[t.id] + 1e-9
                           for t, f in zip(qb, fb) if t.id in before):
                        continue
                    queues[rid_a], queues[rid_b] = qa_new, qb
                    finish[rid_a], finish[rid_b] = fa, fb
                    gaps[rid_a], gaps[rid_b] = gaps_of(rid_a), gaps_of(rid_b)
                    gp, gn, owner, slot = flatten()
                    placed = True
                    moved += 1
                    break
                if not placed:  # else the next task has moved up to index i
                    i += 1
        if moved <= n_tasks // 1000:
            break  # what is left to gain is small; passes cost time with thousands of tasks
    return queues


def distance_lower_bound(robots: list[RobotReq], tasks: list[TaskReq],
                         dist: np.ndarray) -> float:
    """Metres no plan can undercut: every robot leaves its start and ends at its home.

    Rows are the places a leg can start (robot starts, task drop-offs), columns the places
    it can go next (task pick-ups, robot homes); a task's own delivery is added to its
    column. A plan's queues are one feasible assignment, so the optimum is a lower bound.
    """
    n_r, n_t = len(robots), len(tasks)
    starts = [r.node for r in robots] + [t.dropoff for t in tasks]
    pick = np.array([t.pickup for t in tasks], dtype=int)
    carry = dist[pick, [t.dropoff for t in tasks]] if tasks else np.zeros(0)
    cost = np.empty((n_r + n_t, n_t + n_r))
    cost[:, :n_t] = dist[np.ix_(starts, pick)] + carry
    cost[:, n_t:] = dist[np.ix_(starts, [r.home for r in robots])]
    cost[n_r + np.arange(n_t), np.arange(n_t)] = _INFEASIBLE  # a task cannot follow itself
    for i, robot in enumerate(robots):
        for j, task in enumerate(tasks):
            if not can_carry(robot, task):
                cost[i, j] = _INFEASIBLE
    cost[~np.isfinite(cost)] = _INFEASIBLE
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].sum())
