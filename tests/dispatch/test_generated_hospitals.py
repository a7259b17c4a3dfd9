"""Generated hospitals (2 to 6 floors, lifts of capacity 1 and 2, single-lane spurs, docks):
the generator's structure, plans checked by the independent validator, re-planning a
running plan, and bad input."""
from __future__ import annotations

import json
import pickle
import random
import time

import pytest

from medmec.workloads.dispatch.assignment import TaskReq
from medmec.workloads.dispatch.fleet import Fleet, FleetError
from medmec.workloads.dispatch.graph import HospitalGraph
from medmec.workloads.dispatch.hospital_generator import generate_hospital, random_scenario
from medmec.workloads.dispatch.live import HANDED_BACK, KEEP_S, LIFT_GRACE_S
from medmec.workloads.dispatch.planner import plan, plan_scenario, robots_of
from medmec.workloads.dispatch.scenario import (MAX_TASKS, Scenario, ScenarioError,
                                                load_scenario)
from medmec.workloads.dispatch.simulated_shift import run_shift, snapshot
from medmec.workloads.dispatch.store import Store

SWEEP = [(11, 2, 1), (12, 3, 2), (13, 4, 1), (14, 5, 2), (15, 6, 1)]


def degree(hmap: dict) -> dict[str, int]:
    out = {n["id"]: 0 for n in hmap["nodes"]}
    for e in hmap["edges"]:
        out[e["from"]] += 1
        out[e["to"]] += 1
    return out


@pytest.mark.parametrize("seed, floors, capacity", SWEEP)
def test_generator_builds_the_hospital_it_promises(seed, floors, capacity):
    hmap = generate_hospital(seed, floors, capacity, docks=40)
    assert hmap == generate_hospital(seed, floors, capacity, docks=40)  # seeded
    graph = HospitalGraph(Scenario.model_validate({"map": hmap}).map)
    assert {n["floor"] for n in hmap["nodes"]} == set(range(floors))
    assert [(len(lift["nodes"]), lift["capacity"]) for lift in hmap["lifts"]] == \
        [(floors, capacity)] * 2
    deg, single = degree(hmap), {}
    for e in hmap["edges"]:
        for end in (e["from"], e["to"]):
            single.setdefault(end, set()).add(e["single_lane"])
    rooms = [n for n in deg if "-room-" in n]
    docks = [n for n in deg if "-dock-" in n]
    assert len(docks) >= 40 and rooms
    for place in rooms + docks:  # a dead end on its own single-lane spur
        assert deg[place] == 1 and single[place] == {True}, place
    # one piece: every node reaches every other
    assert (graph.travel_times(1.0) < float("inf")).all()


@pytest.mark.parametrize("seed, floors, capacity", SWEEP)
def test_plans_on_generated_hospitals_pass_the_validator(seed, floors, capacity,
                                                         plan_problems):
    doc = random_scenario(generate_hospital(seed, floors, capacity, docks=24), 20, 120,
                          seed=seed, horizon_s=1200)
    result = plan_scenario(Scenario.model_validate(doc)).to_json()
    assert plan_problems(doc, result) == []
    assert not result["unassigned"]
    floors_of = {n["id"]: n["floor"] for n in doc["map"]["nodes"]}
    assert any(floors_of[a["node"]] != floors_of[b["node"]] for r in result["routes"]
               for a, b in zip(r["waypoints"], r["waypoints"][1:]))  # lifts were ridden


def broken_plan(doc: dict, result: dict, robot: str, waypoints: list) -> dict:
    bad = json.loads(json.dumps(result))
    for r in bad["routes"]:
        if r["robot"] == robot:
            r["waypoints"] = [{"node": n, "t": t} for n, t in waypoints]
    return bad


def test_the_validator_catches_head_on_lift_overload_and_a_parked_robot_in_the_way(
        plan_problems):
    hmap = generate_hospital(3, floors=2, lift_capacity=1, docks=8)
    doc = {"map": hmap, "robots": [
        {"id": "a", "start": "f0-dock-00a", "speed_mps": 1.0, "payload_kg": 10,
         "capabilities": ["k"]},
        {"id": "b", "start": "f0-dock-00b", "speed_mps": 1.0, "payload_kg": 10,
         "capabilities": ["k"]}], "tasks": []}
    result = plan_scenario(Scenario.model_validate(doc)).to_json()
    assert plan_problems(doc, result) == []
    # head-on: b leaves its dock while a drives into it on the same single-lane spur
    both = broken_plan(doc, result, "a", [("f0-dock-00a", 0), ("f0-dockbay-00", 2.0),
                                          ("f0-dock-00b", 4.0), ("f0-dockbay-00", 6.0),
                                          ("f0-dock-00a", 8.0)])
    both = broken_plan(doc, both, "b", [("f0-dock-00b", 0), ("f0-dock-00b", 3.5),
                                        ("f0-dockbay-00", 5.5), ("f0-dock-00b", 20.0)])
    assert any("head-on" in p for p in plan_problems(doc, both))
    # lift of capacity 1 carrying two at once
    lift = hmap["lifts"][0]
    landing0, landing1 = lift["nodes"][0], lift["nodes"][1]
    corridor = next(e["from"] for e in hmap["edges"] if e["to"] == landing0)
    ride = [("f0-dock-00a", 0), ("f0-dockbay-00", 2)]
    two = broken_plan(doc, result, "a", ride + [(landing0, 200), (landing0, 300),
                                                (landing1, 310)])
    two = broken_plan(doc, two, "b", [("f0-dock-00b", 0), (landing0, 0), (landing0, 302),
                                      (landing1, 312)])
    assert any("carries 2 robots" in p for p in plan_problems(doc, two))
    # a robot parked for good on the corridor in front of the lift walls off the other floor
    doc["tasks"] = [{"id": "t", "pickup": landing1, "dropoff": "f1-room-a1w", "weight_kg": 1,
                     "kind": "k"}]
    walled = {"assignments": [{"robot": "a", "tasks": ["t"]}],
              "routes": result["routes"], "unassigned": []}
    walled = broken_plan(doc, walled, "b", [("f0-dock-00b", 0), ("f0-dockbay-00", 2)] +
                         [(corridor, 100)])
    assert any("cuts" in p for p in plan_problems(doc, walled))


def running_plan(seed=21, floors=4, capacity=1):
    doc = random_scenario(generate_hospital(seed, floors, capacity, docks=24), 20, 150,
                          seed=seed, horizon_s=1800)
    sc = Scenario.model_validate(doc)
    graph = HospitalGraph(sc.map)
    return doc, graph, plan(graph, robots_of(sc, graph), sc.tasks).live


def test_an_urgent_task_goes_into_a_running_plan_without_conflicts(plan_problems):
    doc, graph, live = running_plan()
    before = {rid: list(rp.route.waypoints) for rid, rp in live.robots.items()}
    spec = {"id": "stat", "pickup": "pharmacy-bay-2", "dropoff": "f3-room-a1e",
            "weight_kg": 1, "kind": "medicine", "priority": "emergency",
            "release_s": 600.0, "deadline_s": 1200.0}
    doc["tasks"].append(spec)
    rid = live.add_task(TaskReq("stat", graph.index[spec["pickup"]],
                                graph.index[spec["dropoff"]], 1, "medicine", "emergency",
                                600.0, 1200.0), now_s=600.0)
    assert rid is not None
    assert plan_problems(doc, live.to_json()) == []
    # the route up to now is kept; it is the robot's next task after what it carries
    route = live.robots[rid].route.waypoints
    assert [w for w in before[rid] if w[1] < 600.0] == [w for w in route if w[1] < 600.0]
    open_pickups = [tid for g, (tid, role) in live.robots[rid].goals
                    if role == "pickup" and g.not_before >= 0 and tid == "stat"]
    assert open_pickups == ["stat"]
    # nobody else was re-planned, and every robot still ends at home
    assert all(before[r] == live.robots[r].route.waypoints for r in before if r != rid)
    starts = {r["id"]: r["start"] for r in doc["robots"]}
    assert all(live.route_of(r)[-1][0] == starts[r] for r in live.robots)


def test_an_idle_robot_given_a_task_goes_home_after_it(plan_problems):
    doc = random_scenario(generate_hospital(23, 3, 2, docks=8), 2, 0, seed=3)
    sc = Scenario.model_validate(doc)
    graph = HospitalGraph(sc.map)
    live = plan(graph, robots_of(sc, graph), []).live
    spec = {"id": "late-call", "pickup": "pharmacy-bay-1", "dropoff": "f2-room-a1w",
            "weight_kg": 1, "kind": "medicine", "priority": "normal", "release_s": 100.0}
    doc["tasks"].append(spec)
    rid = live.add_task(TaskReq("late-call", graph.index["pharmacy-bay-1"],
                                graph.index["f2-room-a1w"], 1, "medicine", "normal", 100.0),
                        now_s=100.0)
    route = live.route_of(rid)
    assert [n for n, _ in route].index("pharmacy-bay-1") < [n for n, _ in route].index(
        "f2-room-a1w")
    assert route[-1][0] == next(r["start"] for r in doc["robots"] if r["id"] == rid)
    assert plan_problems(doc, live.to_json()) == []


def no_ride_after(live, graph, lift: str, now_s: float) -> None:
    for rid in live.robots:  # no ride of the failed lift starts after the failure but
        wp = live.robots[rid].route.waypoints  # those of robots already at its doors
        for (a, t), (b, _) in zip(wp, wp[1:]):
            if a != b and t > now_s + LIFT_GRACE_S:
                assert graph.move(a, b).lift != lift, rid


def test_a_lift_that_fails_re_plans_the_robots_that_would_ride_it(plan_problems):
    doc, graph, live = running_plan(seed=22, floors=3, capacity=2)
    queued = {rid: set(live.queue_of(rid)) for rid in live.robots}
    due = {tid for rp in live.robots.values() for (_, (tid, role)), t
           in zip(rp.goals, rp.route.goal_times) if role == "pickup" and t <= 900.0 + KEEP_S}
    lift = doc["map"]["lifts"][0]["id"]
    affected = live.fail_lift(lift, now_s=900.0)
    assert affected
    assert plan_problems(doc, live.to_json()) == []
    no_ride_after(live, graph, lift, 900.0)
    # at once: what is due within KEEP_S stays queued; the rest of the riders' queues is
    # handed back (listed, with why, so the plan is sound as it stands)
    handed = {tid for tid, why in live.unassigned.items() if why.endswith(HANDED_BACK)}
    assert handed and not handed & due
    # then each robot takes its tasks back: none lost, still no ride of the failed lift
    robots, dropped = live.take_back(now_s=900.0)
    assert not dropped and not live.handed_back
    assert set(robots) == {rid for rid in live.robots if queued[rid] & handed}
    assert set(affected) & set(robots)
    assert not handed & set(live.unassigned)
    assert all(handed & queued[rid] <= set(live.queue_of(rid)) for rid in robots)
    assert plan_problems(doc, live.to_json()) == []
    no_ride_after(live, graph, lift, 900.0)


@pytest.mark.slow
@pytest.mark.parametrize("seed, floors, capacity, now_s", [(1, 2, 1, 1500.0), (3, 4, 2, 1500.0)])
def test_a_lift_failing_in_a_jam_leaves_a_sound_plan(seed, floors, capacity, now_s,
                                                     plan_problems):
    """Robots queued at the lift, one stepping in as another leaves by it: each is re-planned
    from where it stands (or, at the doors, still rides), none is left where it blocks."""
    doc = random_scenario(generate_hospital(seed, floors, capacity), 50, 500, seed=2026,
                          horizon_s=3600.0)
    sc = Scenario.model_validate(doc)
    graph = HospitalGraph(sc.map)
    live = plan(graph, robots_of(sc, graph), sc.tasks).live
    rng = random.Random(7)  # urgent tasks put in one by one, as the benchmark does
    rooms = [n.id for n in sc.map.nodes if "-room-" in n.id]
    bays = [n.id for n in sc.map.nodes if n.id.startswith("pharmacy-bay-")]
    for i in range(int((now_s - 600.0) / 20.0)):
        t = 600.0 + 20.0 * i
        spec = {"id": f"urgent-{i}", "pickup": rng.choice(bays), "dropoff": rng.choice(rooms),
                "weight_kg": 1, "kind": "medicine", "priority": "emergency", "release_s": t,
                "deadline_s": t + 600}
        doc["tasks"].append(spec)
        live.add_task(TaskReq(spec["id"], graph.index[spec["pickup"]],
                              graph.index[spec["dropoff"]], 1, "medicine", "emergency", t,
                              t + 600), t)
    for lift in sc.map.lifts:
        copy = pickle.loads(pickle.dumps(live))
        assert copy.fail_lift(lift.id, now_s)
        assert plan_problems(doc, copy.to_json()) == []
        copy.take_back(now_s)
        assert plan_problems(doc, copy.to_json()) == []


def busy_fleet(tmp_path, clock):
    """A fleet of 12 on a generated hospital, each robot with work, five minutes in."""
    doc = random_scenario(generate_hospital(21, 3, 1), 12, 0, seed=21)
    sc = Scenario.model_validate(doc)
    fleet = Fleet(sc.map, Store(tmp_path), heartbeat_timeout_s=1e9, clock=lambda: clock[0])
    for r in sc.robots:
        fleet.register(r.id, r.start, "", r.speed_mps, r.payload_kg, r.capabilities, 90)
    rooms = sorted(n.id for n in sc.map.nodes if "-room-" in n.id)
    for j, room in enumerate(rooms[:24]):
        fleet.submit(f"t{j}", f"laundry-bay-{1 + j % 2}", room, 1, "linen", "normal", None,
                     None)
    clock[0] += 300.0
    return fleet


def test_pick_ups_deliveries_and_cancels_re_plan_no_other_robot(tmp_path):
    clock = [1_000_000.0]
    fleet = busy_fleet(tmp_path, clock)
    routes, version = dict(fleet.routes), fleet.version
    # a reported pick-up the running plan has: no route changes, the queue moves on
    task = next(t for t in fleet.tasks.values()
                if t.planned_pickup is not None and t.planned_pickup <= clock[0])
    fleet.task_event(task.robot_id, task.id, "picked_up")
    assert (fleet.routes, fleet.version) == (routes, version)
    assert task.id not in fleet.queues[task.robot_id]
    # a cancelled task: only the robot that was to fetch it is re-planned, without it
    task = next(t for t in fleet.tasks.values()
                if t.status == "assigned" and t.planned_pickup > clock[0] + 60)
    rid = task.robot_id
    fleet.cancel(task.id)
    assert fleet.version == version + 1
    assert {r for r in routes if routes[r] != fleet.routes[r]} == {rid}
    assert task.id not in fleet.queues[rid]
    assert all(tid != task.id for _, (tid, _) in fleet.live.robots[rid].goals)
    kept = [w for w in routes[rid] if w[1] <= clock[0]]
    assert fleet.routes[rid][:len(kept)] == kept  # where it has been stays as it was
    assert all(t.status in ("assigned", "picked_up") for t in fleet.tasks.values()
               if t.id != task.id)


def test_a_pick_up_the_running_plan_lacks_is_delivered_first_without_a_whole_re_plan(
        tmp_path, plan_problems):
    """The robot reports a pick-up of a task its route no longer has (a change it had not
    seen yet): its route delivers it first, nobody else's has it."""
    clock = [1_000_000.0]
    fleet = busy_fleet(tmp_path, clock)
    whole = []
    replan = fleet.replan
    fleet.replan = lambda: whole.append(1) or replan()
    task = next(t for t in fleet.tasks.values()
                if t.status == "assigned" and t.planned_pickup > clock[0] + 60)
    rid = task.robot_id
    assert fleet.live.drop_task(task.id, clock[0] - fleet.planned_at) == rid
    fleet.task_event(rid, task.id, "picked_up")
    assert not whole and task.status == "picked_up"
    goals = [label for _, label in fleet.live.robots[rid].goals]
    done = fleet.live.robots[rid].cut(clock[0] - fleet.planned_at)[1]
    assert goals[done] == (task.id, "dropoff")
    assert [label for r, rp in fleet.live.robots.items() for _, label in rp.goals
            if label[0] == task.id] == [(task.id, "dropoff")]
    assert task.dropoff in [n for n, t in fleet.routes[rid] if t > clock[0]]
    assert plan_problems(*snapshot({"map": generate_hospital(21, 3, 1)}, fleet)) == []


def test_a_robot_that_stops_mid_shift_hands_its_tasks_on_without_a_whole_re_plan(
        tmp_path, plan_problems):
    clock = [1_000_000.0]
    fleet = busy_fleet(tmp_path, clock)
    whole = []
    replan = fleet.replan
    fleet.replan = lambda: whole.append(1) or replan()
    rid = max(fleet.queues, key=lambda r: len(fleet.queues[r]))
    had = list(fleet.queues[rid])
    at = fleet.graph.ids[fleet.live.robots[rid].cut(clock[0] - fleet.planned_at)[0][-1][0]]
    fleet.heartbeat(rid, at, 80, True, "bumper")
    assert len(had) >= 2 and not whole
    assert rid not in fleet.routes
    for tid in had:  # each put into another robot's route at once
        assert fleet.tasks[tid].status == "assigned" and fleet.tasks[tid].robot_id != rid
    assert not any(n == at and t > clock[0] for wp in fleet.routes.values() for n, t in wp)
    doc = {"map": generate_hospital(21, 3, 1)}
    assert plan_problems(*snapshot(doc, fleet)) == []
    clock[0] += 30.0
    fleet.heartbeat(rid, at, 80, False, "")  # going again: planned home, takes work again
    assert not whole and fleet.routes[rid][-1][0] == fleet.robots[rid].home
    assert plan_problems(*snapshot(doc, fleet)) == []


def test_corridors_lifts_and_a_new_robot_mid_shift_re_plan_only_who_they_touch(
        tmp_path, plan_problems):
    clock = [1_000_000.0]
    fleet = busy_fleet(tmp_path, clock)
    doc = {"map": generate_hospital(21, 3, 1)}
    whole = []
    replan = fleet.replan
    fleet.replan = lambda: whole.append(1) or replan()

    def ahead(rid):  # the moves of its route from now on
        return [(a, b) for (a, t), (b, _) in zip(fleet.routes[rid], fleet.routes[rid][1:])
                if t > clock[0] and a != b]

    # of the corridors whose blocking leaves the map in one piece (between the lifts), the
    # one most routes take next is blocked: those robots go around it
    use = {}
    for rid in fleet.routes:
        for a, b in ahead(rid):
            if HospitalGraph(fleet.map, {(a, b)}).pieces == 1:
                use.setdefault(tuple(sorted((a, b))), set()).add(rid)
    corridor = max(use, key=lambda c: len(use[c]))
    assert len(use[corridor]) >= 2
    fleet.set_blocked(*corridor, True)
    assert not any(set(m) == set(corridor) for rid in fleet.routes for m in ahead(rid))
    assert plan_problems(*snapshot(doc, fleet)) == []
    assert all(HANDED_BACK in t.reason for t in fleet.tasks.values() if t.status == "pending")
    fleet.retry_pending()  # each takes the rest of its queue back
    assert all(t.status != "pending" for t in fleet.tasks.values())
    assert not any(set(m) == set(corridor) for rid in fleet.routes for m in ahead(rid))
    assert plan_problems(*snapshot(doc, fleet)) == []
    # open again: some take it again, for sooner
    before = {rid: fleet.routes[rid][-1][1] for rid in use[corridor]}
    clock[0] += 5.0
    fleet.set_blocked(*corridor, False)
    assert any(fleet.routes[rid][-1][1] < before[rid] for rid in before)
    assert plan_problems(*snapshot(doc, fleet)) == []
    # a lift out of service and back
    lift = doc["map"]["lifts"][0]["id"]
    _, riders = fleet.set_lift(lift, False)
    assert riders and plan_problems(*snapshot(doc, fleet)) == []
    fleet.retry_pending()  # the riders take the rest of their queues back
    assert all(t.status != "pending" for t in fleet.tasks.values())
    clock[0] += 5.0
    _, sooner = fleet.set_lift(lift, True)
    assert sooner and plan_problems(*snapshot(doc, fleet)) == []
    # a robot registered mid-shift is planned at its dock and takes the next task
    fleet.register("amr-new", "f0-dock-00a", "", 1.0, 40, ["linen"], 90)
    assert fleet.routes["amr-new"][-1][0] == "f0-dock-00a"
    assert fleet.submit("late", "laundry-bay-1", "f0-room-a1w", 1, "linen", "emergency",
                        None, None).status == "assigned"
    assert not whole
    assert plan_problems(*snapshot(doc, fleet)) == []
    # a corridor whose blocking cuts the map in two: the fleet is planned again from the
    # robots' places (going around is no longer possible for those beyond it)
    fleet.set_blocked("f1-corridor-11", "f1-corridor-12", True)
    assert whole == [1] and plan_problems(*snapshot(doc, fleet)) == []


def test_a_busy_shift_keeps_every_task_planned_and_every_plan_sound(plan_problems):
    """Robots follow their routes on time, report pick-ups and drop-offs, tasks come in and
    some are cancelled (simulated_shift): no whole re-plan once the robots are registered
    (re-planning the fleet from the corridors left most tasks unplanned), every task taken
    at once and delivered, and the running routes pass the validator all along."""
    doc = random_scenario(generate_hospital(21, 3, 1), 12, 60, seed=21, horizon_s=900)
    shift = run_shift(doc, until_s=1800, check_every_s=150)
    assert shift.replans == len(doc["robots"]) + 1  # starting, and each registration
    assert shift.never_planned == [] and shift.waits_s[-1] <= 5.0
    assert shift.delivered + shift.cancelled == shift.submitted == 60
    assert shift.cancelled == 6 and shift.events == 2 * shift.delivered
    assert len(shift.plans) > 5 and sum(len(sc["tasks"]) for sc, _ in shift.plans) > 20
    for scenario, running in shift.plans:
        assert plan_problems(scenario, running) == []


def test_a_lift_failure_is_refused_for_an_unknown_lift_or_one_out_of_service_already():
    doc, graph, live = running_plan(seed=22, floors=3, capacity=2)
    before = live.to_json()
    with pytest.raises(ValueError, match="no lift 'lift-z'"):
        live.fail_lift("lift-z", 900.0)
    assert live.to_json() == before
    live.fail_lift("lift-a", 900.0)
    after = live.to_json()
    with pytest.raises(ValueError, match="out of service already"):
        live.fail_lift("lift-a", 950.0)
    assert live.to_json() == after


def test_bad_maps_and_fleets_are_refused_naming_the_problem():
    hmap = generate_hospital(5, floors=2, lift_capacity=1, docks=4)
    doc = random_scenario(hmap, 2, 3, seed=1)
    lifted = json.loads(json.dumps(doc))
    lifted["map"]["nodes"].append({"id": "lift-a-f7", "floor": 7, "x": 0, "y": 0})
    lifted["map"]["lifts"][0]["nodes"].append("lift-a-f7")
    with pytest.raises(ScenarioError, match="lift-a-f7.*floor 7"):
        load_scenario(json.dumps(lifted))
    fast = json.loads(json.dumps(doc))
    fast["robots"][0]["speed_mps"] = 3.0
    with pytest.raises(ScenarioError, match="faster than the corridors allow"):
        load_scenario(json.dumps(fast))


def test_a_scenario_of_100000_tasks_is_refused_quickly_and_in_bounded_memory():
    doc = random_scenario(generate_hospital(6, floors=2, docks=4), 2, 0, seed=1)
    task = {"id": "", "pickup": "pharmacy-bay-1", "dropoff": "f1-room-a1w", "weight_kg": 1,
            "kind": "medicine"}
    doc["tasks"] = [task | {"id": f"t{i}"} for i in range(100_000)]
    text = json.dumps(doc)
    started = time.process_time()
    with pytest.raises(ScenarioError, match=f"at most {MAX_TASKS}"):
        load_scenario(text)
    assert time.process_time() - started < 30  # refused, not planned


def test_unreachable_and_disconnected_tasks_are_reported_and_the_rest_planned(plan_problems):
    hmap = generate_hospital(7, floors=3, lift_capacity=2, docks=8)
    hmap["nodes"].append({"id": "f1-room-island", "floor": 1, "x": 999.0, "y": 999.0})
    doc = random_scenario(hmap, 6, 30, seed=7, horizon_s=900)
    doc["tasks"] += [
        {"id": "to-island", "pickup": "pharmacy-bay-1", "dropoff": "f1-room-island",
         "weight_kg": 1, "kind": "medicine"},
        {"id": "from-island", "pickup": "f1-room-island", "dropoff": "laboratory-bay-1",
         "weight_kg": 1, "kind": "specimen"}]
    result = plan_scenario(Scenario.model_validate(doc)).to_json()
    reasons = {u["task"]: u["reason"] for u in result["unassigned"]}
    assert set(reasons) == {"to-island", "from-island"}
    assert all("disconnected" in why for why in reasons.values())
    assert plan_problems(doc, result) == []


def test_the_service_refuses_tasks_beyond_its_open_task_limit_and_keeps_serving(tmp_path):
    hmap = Scenario.model_validate({"map": generate_hospital(8, floors=2, docks=4)}).map
    store = Store(tmp_path)
    fleet = Fleet(hmap, store, heartbeat_timeout_s=30, max_open_tasks=3)
    fleet.register("amr-1", "f0-dock-00a", "", 1.0, 20, ["medicine"], 90)
    for i in range(3):
        fleet.submit(f"t{i}", "pharmacy-bay-1", "f1-room-a1w", 1, "medicine", "normal",
                     None, None)
    with pytest.raises(FleetError) as refused:
        fleet.submit("t3", "pharmacy-bay-1", "f1-room-a1w", 1, "medicine", "normal", None, None)
    assert refused.value.code == "exhausted" and "3 tasks are open" in str(refused.value)
    assert "t3" not in fleet.tasks
    fleet.cancel("t0")  # room again
    assert fleet.submit("t3", "pharmacy-bay-1", "f1-room-a1w", 1, "medicine", "normal",
                        None, None).status == "assigned"
    with pytest.raises(FleetError, match="faster than the corridors"):
        fleet.register("amr-2", "f0-dock-00b", "", 2.5, 20, ["medicine"], 90)
    store.close()
