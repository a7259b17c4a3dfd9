"""The planner on the sample hospital and on small maps built to force conflicts."""
from __future__ import annotations

import json
import subprocess
import sys

from medmec.workloads.dispatch.assignment import RobotReq
from medmec.workloads.dispatch.graph import HospitalGraph
from medmec.workloads.dispatch.planner import lower_bound_m, plan, plan_scenario, robots_of
from medmec.workloads.dispatch.scenario import Scenario, ScenarioError, load_scenario

import pytest


def run(scenario: dict) -> dict:
    return plan_scenario(Scenario.model_validate(scenario)).to_json()


def robot(rid, start, speed=1.0, payload=20, caps=("medicine", "specimen")):
    return {"id": rid, "start": start, "speed_mps": speed, "payload_kg": payload,
            "capabilities": list(caps)}


def task(tid, pickup, dropoff, weight=1, kind="medicine", priority="normal", release=0.0,
         deadline=None):
    return {"id": tid, "pickup": pickup, "dropoff": dropoff, "weight_kg": weight, "kind": kind,
            "priority": priority, "release_s": release, "deadline_s": deadline}


def line_map(names, length=10.0, single_lane=True, pockets=()):
    """Nodes in a row on floor 0; `pockets` hang a side node off a node (a place to wait)."""
    nodes = [{"id": n, "floor": 0, "x": 10.0 * i, "y": 0.0} for i, n in enumerate(names)]
    edges = [{"from": a, "to": b, "length_m": length, "single_lane": single_lane}
             for a, b in zip(names, names[1:])]
    for at, pocket in pockets:
        nodes.append({"id": pocket, "floor": 0, "x": 0.0, "y": 5.0})
        edges.append({"from": at, "to": pocket, "length_m": 3.0, "single_lane": True})
    return {"nodes": nodes, "edges": edges, "lifts": []}


def test_busy_hospital_plan_passes_the_independent_validator(busy_scenario, plan_problems):
    result = run(busy_scenario)
    assert plan_problems(busy_scenario, result) == []
    assigned = sum(len(a["tasks"]) for a in result["assignments"])
    assert assigned >= 40, result["unassigned"]
    # every unassigned task really is beyond the fleet (weight, kind), not dropped silently
    for u in result["unassigned"]:
        assert "payload" in u["reason"] or "carries" in u["reason"], u
    floors = {n["id"]: n["floor"] for n in busy_scenario["map"]["nodes"]}
    rode_lift = any(floors[a["node"]] != floors[b["node"]] for r in result["routes"]
                    for a, b in zip(r["waypoints"], r["waypoints"][1:]))
    assert rode_lift


def test_reported_distance_is_the_routes_and_not_below_the_lower_bound(busy_scenario):
    scenario = Scenario.model_validate(busy_scenario)
    graph = HospitalGraph(scenario.map)
    result = plan_scenario(scenario)
    walked = 0.0
    lengths = {frozenset((e["from"], e["to"])): e["length_m"] for e in busy_scenario["map"]["edges"]}
    for wp in result.routes.values():
        walked += sum(lengths.get(frozenset((a, b)), 0.0) for (a, _), (b, _) in zip(wp, wp[1:]))
    assert result.total_distance_m == pytest.approx(walked)
    bound = lower_bound_m(graph, robots_of(scenario, graph), scenario.tasks)
    assert 0 < bound <= result.total_distance_m


def test_opposite_robots_on_a_single_lane_corridor_do_not_meet_head_on(plan_problems):
    # west and east swap ends of a one-lane corridor; a pocket halfway lets one step aside
    hmap = line_map(["w", "a", "b", "c", "e"], pockets=[("b", "pocket")])
    scenario = {"map": hmap,
                "robots": [robot("r-west", "w"), robot("r-east", "e")],
                "tasks": [task("to-east", "a", "c"), task("to-west", "c", "a")]}
    result = run(scenario)
    assert plan_problems(scenario, result) == []
    assert not result["unassigned"]
    # the two cannot both have gone at free-flow speed: somebody waited or stepped aside
    ends = [r["waypoints"][-1]["t"] for r in result["routes"]]
    assert max(ends) > 40.0 + 1.0


def test_a_one_robot_lift_carries_one_robot_at_a_time(plan_problems):
    nodes = [{"id": f"{side}{f}", "floor": f, "x": x, "y": 0.0}
             for f in (0, 1) for side, x in (("p", 0.0), ("q", 20.0), ("l", 10.0))]
    edges = [{"from": f"{s}{f}", "to": f"l{f}", "length_m": 10.0} for f in (0, 1) for s in "pq"]
    lifts = [{"id": "lift", "nodes": ["l0", "l1"], "capacity": 1, "floor_travel_s": 20.0}]
    scenario = {"map": {"nodes": nodes, "edges": edges, "lifts": lifts},
                "robots": [robot("r1", "p0"), robot("r2", "q0")],
                "tasks": [task("t1", "p0", "p1"), task("t2", "q0", "q1")]}
    result = run(scenario)
    assert plan_problems(scenario, result) == []
    assert not result["unassigned"]


def test_each_bad_task_gets_its_own_reason_and_the_rest_are_planned(hospital):
    hospital["nodes"].append({"id": "island", "floor": 0, "x": 500.0, "y": 500.0})
    scenario = {"map": hospital,
                "robots": [robot("r1", "f0-park-00a", payload=20, caps=["medicine"])],
                "tasks": [task("fine", "pharmacy", "f1-room-a1w"),
                          task("nowhere", "pharmacy", "f9-room"),
                          task("heavy", "pharmacy", "f1-room-a1w", weight=50),
                          task("linen", "laundry", "f1-room-a1w", kind="linen"),
                          task("too-late", "pharmacy", "f1-room-a1w", release=100, deadline=50),
                          task("island", "pharmacy", "island")]}
    result = run(scenario)
    reasons = {u["task"]: u["reason"] for u in result["unassigned"]}
    assert result["assignments"] == [{"robot": "r1", "tasks": ["fine"]}]
    assert "unknown dropoff node 'f9-room'" in reasons["nowhere"]
    assert "50 kg" in reasons["heavy"] and "20 kg" in reasons["heavy"]
    assert "'linen'" in reasons["linen"]
    assert "deadline" in reasons["too-late"]
    assert "disconnected" in reasons["island"]


def test_emergency_goes_ahead_of_queued_normal_work(hospital, plan_problems):
    normal = [task(f"n{i}", "pharmacy", f"f0-room-{w}1w", release=0) for i, w in enumerate("abc")]
    urgent = task("stat", "laboratory", "f2-room-d3e", priority="emergency", deadline=400)
    scenario = {"map": hospital, "robots": [robot("r1", "f0-park-03a")],
                "tasks": normal + [urgent]}
    result = run(scenario)
    assert plan_problems(scenario, result) == []
    assert result["assignments"][0]["tasks"][0] == "stat"
    assert result["metrics"]["late_tasks"] == 0


def test_late_tasks_are_counted(hospital):
    scenario = {"map": hospital, "robots": [robot("r1", "f0-park-00a", speed=0.5)],
                "tasks": [task("far", "pharmacy", "f2-room-d3e", deadline=30)]}
    assert run(scenario)["metrics"]["late_tasks"] == 1


def test_a_blocked_corridor_is_avoided(plan_problems):
    # a ring: the short way round from a to c is through b, unless a-b is blocked
    nodes = [{"id": n, "floor": 0, "x": 0.0, "y": 0.0} for n in "abcd"]
    edges = [{"from": x, "to": y, "length_m": m, "single_lane": False}
             for x, y, m in (("a", "b", 10), ("b", "c", 10), ("c", "d", 30), ("d", "a", 30))]
    scenario = {"map": {"nodes": nodes, "edges": edges, "lifts": []},
                "robots": [robot("r1", "a")], "tasks": [task("t", "b", "c")]}
    parsed = Scenario.model_validate(scenario)
    open_plan = plan(HospitalGraph(parsed.map), robots_of(parsed, HospitalGraph(parsed.map)),
                     parsed.tasks).to_json()
    graph = HospitalGraph(parsed.map, blocked=[("b", "a")])
    detour = plan(graph, robots_of(parsed, graph), parsed.tasks).to_json()
    assert plan_problems(scenario, detour, blocked={frozenset("ab")}) == []
    assert plan_problems(scenario, open_plan, blocked={frozenset("ab")}) != []
    assert detour["metrics"]["total_distance_m"] > open_plan["metrics"]["total_distance_m"]


@pytest.mark.parametrize("broken, message", [
    ({"edges": [{"from": "a", "to": "zz", "length_m": 1}]}, "unknown node 'zz'"),
    ({"edges": [{"from": "a", "to": "b", "length_m": -1}]}, "length_m"),
    ({"lifts": [{"id": "l", "nodes": ["a", "b"], "capacity": 1, "floor_travel_s": 5}]},
     "two landings on one floor"),
])
def test_malformed_maps_are_rejected_naming_the_problem(broken, message):
    hmap = line_map(["a", "b"]) | broken
    with pytest.raises(ScenarioError, match=message):
        load_scenario(json.dumps({"map": hmap, "robots": [], "tasks": []}))


def test_cli_plans_a_scenario_file_and_refuses_a_malformed_one(tmp_path, busy_scenario,
                                                               plan_problems):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(busy_scenario))
    done = subprocess.run([sys.executable, "-m", "medmec.cli", "dispatch", "plan",
                           "--scenario", str(good)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert plan_problems(busy_scenario, json.loads(done.stdout)) == []

    busy_scenario["robots"][0]["start"] = "the-roof"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(busy_scenario))
    done = subprocess.run([sys.executable, "-m", "medmec.cli", "dispatch", "plan",
                           "--scenario", str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "the-roof" in done.stderr and done.stdout == ""


def test_a_robot_standing_in_the_corridor_moves_out_of_the_way(plan_problems):
    # "idle" stopped in the middle of the only corridor, away from its home pocket; "worker"
    # must pass through where it stands
    hmap = line_map(["w", "a", "b", "c", "e"], single_lane=False,
                    pockets=[("a", "idle-home"), ("b", "worker-home")])
    parsed = Scenario.model_validate({"map": hmap, "robots": [], "tasks": [
        task("through", "worker-home", "e")]})
    graph = HospitalGraph(parsed.map)
    ix = graph.index
    robots = [RobotReq("worker", ix["worker-home"], ix["worker-home"], 1.0, 20,
                       frozenset({"medicine"})),
              RobotReq("idle", ix["c"], ix["idle-home"], 1.0, 20, frozenset({"medicine"}))]
    result = plan(graph, robots, parsed.tasks)
    assert result.unassigned == {}
    assert result.queues["worker"] == ["through"]
    assert [n for n, _ in result.routes["idle"]][-1] == "idle-home"
