"""The assignment on a corridor of known distances, where the best answer is obvious."""
from __future__ import annotations

import numpy as np

from medmec.workloads.dispatch.assignment import (RobotReq, TaskReq, assign,
                                                  distance_lower_bound, relocate)

# nodes 0..10 on a line, 10 m apart; travel at 1 m/s
DIST = np.abs(np.subtract.outer(np.arange(11), np.arange(11))) * 10.0


def times(_speed):
    return DIST


def robot(rid, node, kinds=("medicine",), payload=20.0):
    return RobotReq(rid, node, node, 1.0, payload, frozenset(kinds))


def task(tid, pickup, dropoff, kind="medicine", priority="normal", weight=1.0, **kw):
    return TaskReq(tid, pickup, dropoff, weight, kind, priority, **kw)


def queue_ids(queues):
    return {rid: [t.id for t in q] for rid, q in queues.items()}


def total_m(robots, queues):
    total = 0.0
    for r in robots:
        node = r.node
        for t in queues[r.id]:
            total += DIST[node, t.pickup] + DIST[t.pickup, t.dropoff]
            node = t.dropoff
        total += DIST[node, r.home]
    return total


def test_each_robot_gets_the_task_next_to_it():
    robots = [robot("west", 0), robot("east", 10)]
    tasks = [task("near-east", 9, 8), task("near-west", 1, 2)]
    assert queue_ids(assign(robots, tasks, times)) == {"west": ["near-west"],
                                                       "east": ["near-east"]}


def test_payload_and_kind_are_respected_even_when_far():
    robots = [robot("small", 9, payload=5), robot("big", 0, kinds=("medicine", "linen"))]
    tasks = [task("heavy", 9, 10, weight=15), task("sheets", 10, 9, kind="linen")]
    assert queue_ids(assign(robots, tasks, times)) == {"small": [], "big": ["heavy", "sheets"]}


def test_an_emergency_jumps_the_queue():
    robots = [robot("only", 5)]
    tasks = [task(f"n{i}", 5, 6) for i in range(3)] + [task("stat", 0, 1, priority="emergency")]
    assert queue_ids(assign(robots, tasks, times))["only"][0] == "stat"


def test_relocate_moves_work_to_the_nearer_robot_and_keeps_every_task():
    robots = [robot("west", 0), robot("east", 10)]
    by_hand = {"west": [task("a", 9, 10), task("b", 1, 0)], "east": []}
    better = relocate(robots, by_hand, times, DIST)
    assert queue_ids(better) == {"west": ["b"], "east": ["a"]}
    assert total_m(robots, better) < total_m(robots, by_hand)


def test_relocate_leaves_urgent_work_alone_and_never_lengthens_the_makespan():
    robots = [robot("west", 0), robot("east", 10)]
    urgent = {"west": [task("a", 9, 10, priority="emergency"), task("b", 1, 0)], "east": []}
    assert queue_ids(relocate(robots, urgent, times, DIST)) == queue_ids(urgent)
    # east finishes last (t=200); taking "a" anywhere in its queue would end it later
    tight = {"west": [task("a", 9, 10)],
             "east": [task("long", 10, 0, release_s=0.0), task("back", 0, 10)]}
    assert queue_ids(relocate(robots, tight, times, DIST)) == queue_ids(tight)


def test_the_lower_bound_is_exact_when_chaining_is_free():
    robots = [robot("r", 0)]
    tasks = [task("t1", 0, 5), task("t2", 5, 10)]
    # 0->5 loaded, 5->10 loaded, then 100 m home: nothing shorter exists
    assert distance_lower_bound(robots, tasks, DIST) == 200.0
