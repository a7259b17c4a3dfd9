"""The dispatch service as a real process, driven by a real gRPC client (and its REST view)."""
from __future__ import annotations

import json
import threading
import time

import grpc
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from medmec.workloads.dispatch.live import HANDED_BACK
from medmec.workloads.dispatch.protos import dispatch_pb2 as pb


def register(stub, rid, node, payload=20.0, caps=("medicine", "specimen"), speed=1.0):
    return stub.RegisterRobot(pb.RegisterRobotRequest(
        robot_id=rid, node=node, speed_mps=speed, payload_kg=payload, capabilities=caps,
        battery_pct=90))


def submit(stub, tid, pickup="pharmacy", dropoff="f1-room-a1w", **kw):
    kw.setdefault("kind", "medicine")
    kw.setdefault("weight_kg", 2.0)
    return stub.SubmitTask(pb.SubmitTaskRequest(task_id=tid, pickup=pickup, dropoff=dropoff, **kw))


def stamp(t: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(t * 1e9))
    return ts


def eventually(check, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def snapshot(server) -> tuple[dict, dict]:
    """The fleet and every robot's route (REST form) at one plan version: the service's
    housekeeping may change the plan between two requests."""
    while True:
        fleet = server.fleet()
        routes = {r["id"]: httpx.get(f"{server.http}/v1/robots/{r['id']}/route").json()
                  for r in fleet["robots"]}
        if all(r["plan_version"] == fleet["plan_version"] for r in routes.values()):
            return fleet, routes


def as_plan(fleet: dict, routes: dict, hospital: dict) -> tuple[dict, dict]:
    """A snapshot's routes as a scenario and plan for the independent validator."""
    robots = [{"id": r["id"], "start": r["node"], "speed_mps": r["speed_mps"],
               "payload_kg": r["payload_kg"], "capabilities": r["capabilities"]}
              for r in fleet["robots"] if r["state"] == "available"]
    tasks = [{"id": t["id"], "pickup": t["pickup"], "dropoff": t["dropoff"],
              "weight_kg": t["weight_kg"], "kind": t["kind"]}
             for t in fleet["tasks"] if t["status"] == "assigned"]
    routes = [routes[r["id"]] for r in robots]
    plan = {"assignments": [{"robot": r["robot"], "tasks": r["tasks"]} for r in routes],
            "routes": [{"robot": r["robot"], "waypoints": r["waypoints"]} for r in routes],
            "unassigned": []}
    return {"map": hospital, "robots": robots, "tasks": tasks}, plan


def test_tasks_are_assigned_and_routes_streamed_to_the_robots(dispatch_server, hospital,
                                                             plan_problems):
    server = dispatch_server()
    stub = server.stub
    register(stub, "amr-1", "f0-park-02a")
    register(stub, "amr-2", "f2-park-09b")
    stream = stub.StreamRoute(pb.StreamRouteRequest(robot_id="amr-1"), timeout=30)
    first = next(stream)
    assert [w.node for w in first.waypoints] == ["f0-park-02a"] and not first.task_ids

    task = submit(stub, "insulin-1", "pharmacy", "f0-room-a1w",
                  deadline=stamp(time.time() + 900))
    assert task.status == pb.TASK_STATUS_ASSIGNED and task.robot_id == "amr-1"
    assert task.planned_pickup.seconds < task.planned_dropoff.seconds
    route = next(stream)
    while "insulin-1" not in route.task_ids:
        route = next(stream)
    nodes = [w.node for w in route.waypoints]
    assert nodes.index("pharmacy") < nodes.index("f0-room-a1w")
    assert nodes[-1] == "f0-park-02a"  # home again afterwards
    stream.cancel()

    for i in range(6):
        submit(stub, f"batch-{i}", "laboratory", f"f{i % 3}-room-b{1 + i % 3}e", kind="specimen")
    scenario, plan = as_plan(*snapshot(server), hospital)
    assert len(scenario["tasks"]) == 7
    assert plan_problems(scenario, plan) == []
    assert {t.status for t in stub.ListTasks(pb.ListTasksRequest()).tasks} == \
        {pb.TASK_STATUS_ASSIGNED}


def test_bad_requests_get_a_clear_status_and_change_nothing(dispatch_server, hospital,
                                                            tmp_path):
    hospital["nodes"].append({"id": "island", "floor": 0, "x": 999.0, "y": 0.0})
    island_map = tmp_path / "island.json"
    island_map.write_text(json.dumps(hospital))
    server = dispatch_server(island_map)
    stub = server.stub
    register(stub, "amr-1", "f0-park-02a", payload=10)

    cases = [
        (dict(dropoff="f7-room-x"), grpc.StatusCode.INVALID_ARGUMENT, "unknown dropoff node"),
        (dict(weight_kg=80.0), grpc.StatusCode.FAILED_PRECONDITION, "80 kg"),
        (dict(kind="linen"), grpc.StatusCode.FAILED_PRECONDITION, "'linen'"),
        (dict(deadline=stamp(time.time() - 60)), grpc.StatusCode.INVALID_ARGUMENT, "past"),
        (dict(dropoff="island"), grpc.StatusCode.FAILED_PRECONDITION, "disconnected"),
        (dict(weight_kg=float("nan")), grpc.StatusCode.INVALID_ARGUMENT, "weight_kg"),
    ]
    for i, (fields, code, text) in enumerate(cases):
        with pytest.raises(grpc.RpcError) as err:
            submit(stub, f"bad-{i}", **fields)
        assert err.value.code() == code, fields
        assert text in err.value.details(), err.value.details()

    with pytest.raises(grpc.RpcError) as err:
        register(stub, "amr-2", "the-roof")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        stub.Heartbeat(pb.HeartbeatRequest(robot_id="amr-1", node="f0-park-02a",
                                           battery_pct=140))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "battery_pct" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub.GetTask(pb.TaskRef(task_id="bad-0"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    # nothing was stored, and the service still serves
    assert server.fleet()["tasks"] == []
    assert submit(stub, "good").status == pb.TASK_STATUS_ASSIGNED
    with pytest.raises(grpc.RpcError) as err:
        submit(stub, "good")
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    missing = httpx.get(f"{server.http}/v1/robots/nobody/route")
    assert missing.status_code == 404 and "nobody" in missing.json()["error"]


def test_an_emergency_preempts_queued_normal_work(dispatch_server):
    stub = dispatch_server().stub
    register(stub, "amr-1", "f0-park-05a")
    for i in range(3):
        submit(stub, f"linen-{i}", "pharmacy", f"f1-room-c{i + 1}w")
    urgent = submit(stub, "blood", "laboratory", "f2-room-d3e", kind="specimen",
                    priority=pb.PRIORITY_EMERGENCY)
    robot = stub.Heartbeat(pb.HeartbeatRequest(robot_id="amr-1", node="f0-park-05a",
                                               battery_pct=80))
    assert urgent.robot_id == "amr-1"
    assert robot.task_ids[0] == "blood"
    assert sorted(robot.task_ids[1:]) == ["linen-0", "linen-1", "linen-2"]


def test_a_faulted_robot_hands_its_queue_to_another(dispatch_server):
    server = dispatch_server()
    stub = server.stub
    register(stub, "amr-1", "f0-park-03a")
    register(stub, "amr-2", "f2-park-10b")
    near = submit(stub, "near-1", "pharmacy", "f0-room-a1w")
    cargo = submit(stub, "cargo", "kitchen", "f0-room-b1e")
    assert near.robot_id == "amr-1"
    on_board = cargo.robot_id
    stub.ReportTaskEvent(pb.TaskEventRequest(robot_id=on_board, task_id="cargo",
                                             event=pb.TASK_EVENT_PICKED_UP))
    with pytest.raises(grpc.RpcError) as err:  # delivered needs picked up first
        stub.ReportTaskEvent(pb.TaskEventRequest(robot_id="amr-2", task_id="near-1",
                                                 event=pb.TASK_EVENT_DELIVERED))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    robot = stub.Heartbeat(pb.HeartbeatRequest(robot_id="amr-1", node="f0-corridor-07",
                                               battery_pct=50, fault=True,
                                               fault_message="wheel motor"))
    assert robot.state == pb.ROBOT_STATE_FAULT
    moved = stub.GetTask(pb.TaskRef(task_id="near-1"))
    assert moved.status == pb.TASK_STATUS_ASSIGNED and moved.robot_id == "amr-2"
    if on_board == "amr-1":
        lost = stub.GetTask(pb.TaskRef(task_id="cargo"))
        assert lost.status == pb.TASK_STATUS_FAILED and "recover" in lost.reason
    # the faulted robot stands in a corridor: amr-2's route does not pass through it
    route = httpx.get(f"{server.http}/v1/robots/amr-2/route").json()
    assert "f0-corridor-07" not in [w["node"] for w in route["waypoints"]]


def test_a_robot_low_on_battery_hands_over_its_queue_and_goes_home(dispatch_server):
    server = dispatch_server()
    stub = server.stub
    register(stub, "amr-1", "f0-park-03a")
    register(stub, "amr-2", "f2-park-10b")
    assert submit(stub, "near-1", "pharmacy", "f0-room-a1w").robot_id == "amr-1"
    stub.Heartbeat(pb.HeartbeatRequest(robot_id="amr-1", node="f0-corridor-05", battery_pct=12))
    assert stub.GetTask(pb.TaskRef(task_id="near-1")).robot_id == "amr-2"
    route = httpx.get(f"{server.http}/v1/robots/amr-1/route").json()
    assert route["tasks"] == [] and route["waypoints"][-1]["node"] == "f0-park-03a"
    # charged again, it takes work again (what amr-2 is under way for stays with amr-2)
    stub.Heartbeat(pb.HeartbeatRequest(robot_id="amr-1", node="f0-park-03a", battery_pct=95))
    assert submit(stub, "near-2", "pharmacy", "f0-room-a2w").robot_id == "amr-1"
    assert stub.GetTask(pb.TaskRef(task_id="near-1")).robot_id == "amr-2"


def test_a_silent_robot_goes_offline_and_its_tasks_move(dispatch_server):
    server = dispatch_server(heartbeat_timeout_s=2.0)
    stub = server.stub
    register(stub, "amr-1", "f0-park-03a")
    register(stub, "amr-2", "f2-park-10b")
    assert submit(stub, "near-1", "pharmacy", "f0-room-a1w").robot_id == "amr-1"
    alive = threading.Event()

    def beat():  # amr-2 keeps heart-beating, amr-1 stays silent
        while not alive.wait(0.5):
            stub.Heartbeat(pb.HeartbeatRequest(robot_id="amr-2", node="f2-park-10b",
                                               battery_pct=70))

    beating = threading.Thread(target=beat)
    beating.start()
    try:
        moved = eventually(lambda: stub.GetTask(pb.TaskRef(task_id="near-1")).robot_id == "amr-2")
    finally:
        alive.set()
        beating.join()
    assert moved
    states = {r["id"]: r["state"] for r in server.fleet()["robots"]}
    assert states == {"amr-1": "offline", "amr-2": "available"}


def test_a_blocked_corridor_is_avoided_from_then_on(dispatch_server):
    server = dispatch_server()
    stub = server.stub
    register(stub, "amr-1", "f0-park-00a")
    submit(stub, "t1", "pharmacy", "laundry")

    def corridor_used():
        wp = httpx.get(f"{server.http}/v1/robots/amr-1/route").json()["waypoints"]
        pairs = {frozenset((a["node"], b["node"])) for a, b in zip(wp, wp[1:])}
        return frozenset(("f0-corridor-05", "f0-corridor-06")) in pairs

    assert corridor_used()
    reply = stub.ReportBlockedCorridor(pb.BlockedCorridorRequest(
        robot_id="amr-1", from_node="f0-corridor-06", to_node="f0-corridor-05"))
    assert [(c.from_node, c.to_node) for c in reply.blocked] == \
        [("f0-corridor-05", "f0-corridor-06")]
    assert not corridor_used()
    task = stub.GetTask(pb.TaskRef(task_id="t1"))
    assert task.status == pb.TASK_STATUS_ASSIGNED  # a detour upstairs by the lifts
    with pytest.raises(grpc.RpcError) as err:
        stub.ReportBlockedCorridor(pb.BlockedCorridorRequest(from_node="pharmacy",
                                                             to_node="laundry"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    stub.ClearBlockedCorridor(pb.BlockedCorridorRequest(from_node="f0-corridor-05",
                                                        to_node="f0-corridor-06"))
    assert corridor_used()


def test_state_survives_a_crash_and_a_restart(dispatch_server):
    server = dispatch_server()
    stub = server.stub
    register(stub, "amr-1", "f0-park-03a")
    register(stub, "amr-2", "f1-park-07b", caps=("linen",), payload=40)
    submit(stub, "insulin", "pharmacy", "f0-room-a1w", priority=pb.PRIORITY_HIGH,
           deadline=stamp(time.time() + 3600))
    submit(stub, "sheets", "laundry", "f1-room-c2e", kind="linen", weight_kg=30)
    stub.ReportTaskEvent(pb.TaskEventRequest(robot_id="amr-2", task_id="sheets",
                                             event=pb.TASK_EVENT_PICKED_UP))
    stub.ReportBlockedCorridor(pb.BlockedCorridorRequest(from_node="f0-corridor-01",
                                                         to_node="f0-corridor-02"))
    stub.CancelTask(pb.TaskRef(task_id="insulin"))
    submit(stub, "morphine", "pharmacy", "f0-room-b2w")
    before = server.fleet()

    server.stop(kill=True)
    server.start()
    after = server.fleet()
    assert after["blocked_corridors"] == before["blocked_corridors"] != []
    status = {t["id"]: (t["status"], t["robot_id"]) for t in after["tasks"]}
    assert status == {"insulin": ("cancelled", ""), "sheets": ("picked_up", "amr-2"),
                      "morphine": ("assigned", "amr-1")}
    assert {r["id"]: r["capabilities"] for r in after["robots"]} == \
        {"amr-1": ["medicine", "specimen"], "amr-2": ["linen"]}
    # the restarted service carries on: the on-board task can be delivered
    done = server.stub.ReportTaskEvent(pb.TaskEventRequest(
        robot_id="amr-2", task_id="sheets", event=pb.TASK_EVENT_DELIVERED))
    assert done.status == pb.TASK_STATUS_DELIVERED


def test_robots_that_follow_their_routes_deliver_everything(dispatch_server):
    """Robots simulated by this test drive their streamed routes node by node, reporting
    positions and pick-ups/deliveries; every re-plan starts from where they are."""
    server = dispatch_server()
    stub = server.stub
    for rid, home in (("amr-1", "f0-park-01a"), ("amr-2", "f1-park-05b")):
        register(stub, rid, home, caps=("medicine", "meals"))
    for j in range(5):
        submit(stub, f"t{j}", ("pharmacy-bay-1", "kitchen-bay-2")[j % 2],
               f"f{j % 2}-room-b{1 + j % 3}w", kind=("medicine", "meals")[j % 2])
    progress: dict = {}
    for _ in range(400):
        fleet = server.fleet()
        moved = False
        for robot in fleet["robots"]:
            route = httpx.get(f"{server.http}/v1/robots/{robot['id']}/route").json()
            nodes = [w["node"] for w in route["waypoints"]]
            at = progress.setdefault((robot["id"], route["plan_version"]), 0)
            ahead = [k for k in range(at + 1, len(nodes)) if nodes[k] != nodes[at]]
            if not ahead:
                continue
            progress[robot["id"], route["plan_version"]] = ahead[0]
            moved = True
            node = nodes[ahead[0]]
            stub.Heartbeat(pb.HeartbeatRequest(robot_id=robot["id"], node=node, battery_pct=80))
            for task in fleet["tasks"]:
                if task["robot_id"] != robot["id"]:
                    continue
                if task["status"] == "assigned" and task["pickup"] == node \
                        and route["tasks"][:1] == [task["id"]]:
                    event = pb.TASK_EVENT_PICKED_UP
                elif task["status"] == "picked_up" and task["dropoff"] == node:
                    event = pb.TASK_EVENT_DELIVERED
                else:
                    continue
                stub.ReportTaskEvent(pb.TaskEventRequest(robot_id=robot["id"],
                                                         task_id=task["id"], event=event))
        if not moved:  # every robot is at the end of its route
            break
    fleet = server.fleet()
    assert {t["id"]: t["status"] for t in fleet["tasks"]} == {f"t{j}": "delivered"
                                                              for j in range(5)}
    assert {r["id"]: r["node"] for r in fleet["robots"]} == {"amr-1": "f0-park-01a",
                                                              "amr-2": "f1-park-05b"}


def rides(route: dict, lift: dict, after: float) -> list[float]:
    """When `route` (REST form) sets off on a ride of `lift` after `after`."""
    landings = set(lift["nodes"])
    wp = route["waypoints"]
    return [a["t"] for a, b in zip(wp, wp[1:])
            if a["node"] in landings and b["node"] in landings and a["node"] != b["node"]
            and a["t"] > after]


def test_a_lift_out_of_service_re_plans_the_robots_that_would_ride_it(dispatch_server,
                                                                      hospital, plan_problems):
    server = dispatch_server()
    stub = server.stub
    for i, park in enumerate(("f0-park-02a", "f0-park-05b", "f1-park-03a", "f2-park-08b")):
        register(stub, f"amr-{i}", park)
    for j, room in enumerate(("f1-room-a1w", "f2-room-b2e", "f1-room-c3e", "f2-room-a2w",
                              "f2-room-c1w", "f1-room-b1e")):
        submit(stub, f"t{j}", f"pharmacy-bay-{1 + j % 3}", room,
               earliest_start=stamp(time.time() + 60 + 30 * j))
    lifts = {lift["id"]: lift for lift in hospital["lifts"]}

    def routes():
        return snapshot(server)[1]

    soon = time.time() + 20
    riders = {lid: [rid for rid, route in routes().items() if rides(route, lift, soon)]
              for lid, lift in lifts.items()}
    lift_id = max(riders, key=lambda lid: len(riders[lid]))
    assert riders[lift_id]
    rider = riders[lift_id][0]
    stream = stub.StreamRoute(pb.StreamRouteRequest(robot_id=rider), timeout=30)
    first = next(stream)

    version = server.fleet()["plan_version"]
    for bad, code in (("lift-z", grpc.StatusCode.INVALID_ARGUMENT),
                      ("", grpc.StatusCode.INVALID_ARGUMENT)):
        with pytest.raises(grpc.RpcError) as err:
            stub.ReportLiftOutOfService(pb.LiftServiceRequest(robot_id=rider, lift_id=bad))
        assert err.value.code() == code and "lift" in err.value.details()
    assert server.fleet()["plan_version"] == version  # refused: nothing changed

    failed_at = time.time()
    reply = stub.ReportLiftOutOfService(pb.LiftServiceRequest(robot_id=rider,
                                                              lift_id=lift_id))
    assert list(reply.out_of_service) == [lift_id]
    assert set(riders[lift_id]) <= set(reply.replanned)
    route = next(stream)  # the new route, streamed
    assert route.plan_version > first.plan_version
    fleet, now = snapshot(server)
    assert fleet["lifts_out_of_service"] == [lift_id]
    after = failed_at + 10.0 + 1.0  # robots at the doors still ride (live.LIFT_GRACE_S)
    assert not any(rides(r, lifts[lift_id], after) for r in now.values())
    assert plan_problems(*as_plan(fleet, now, hospital)) == []  # sound at once
    # the riders kept what they were to pick up within live.KEEP_S; the rest of their queues
    # was handed back, and each takes its own back at the fleet's next housekeeping call
    # (which may have come already: housekeeping runs every second)
    if fleet["plan_version"] == route.plan_version:
        handed = [t["id"] for t in fleet["tasks"] if t["status"] == "pending"]
        assert handed and all(HANDED_BACK in t["reason"] for t in fleet["tasks"]
                              if t["id"] in handed), fleet["tasks"]
    fleet = eventually(lambda: (f := server.fleet())["plan_version"] > version + 1 and all(
        t["status"] == "assigned" for t in f["tasks"]) and f)  # the other lift serves
    assert fleet, server.fleet()["tasks"]
    fleet, now = snapshot(server)
    assert all(t["status"] == "assigned" for t in fleet["tasks"])
    assert not any(rides(r, lifts[lift_id], after) for r in now.values())
    assert plan_problems(*as_plan(fleet, now, hospital)) == []

    with pytest.raises(grpc.RpcError) as err:  # reported twice
        stub.ReportLiftOutOfService(pb.LiftServiceRequest(lift_id=lift_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "out of service already" in err.value.details()
    assert server.fleet()["plan_version"] == fleet["plan_version"]
    stream.cancel()

    server.stop(kill=True)  # remembered across a crash
    server.start()
    assert server.fleet()["lifts_out_of_service"] == [lift_id]
    assert not any(rides(r, lifts[lift_id], time.time()) for r in routes().values())

    reply = server.stub.ReturnLiftToService(pb.LiftServiceRequest(lift_id=lift_id))
    assert list(reply.out_of_service) == [] and reply.replanned
    assert server.fleet()["lifts_out_of_service"] == []
    with pytest.raises(grpc.RpcError) as err:
        server.stub.ReturnLiftToService(pb.LiftServiceRequest(lift_id=lift_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "in service already" in err.value.details()
