"""A robot fleet's live figures come from its real dispatcher: robots online and tasks
queued / active follow the dispatcher (read on the operator's periodic re-check, with no
change to the fleet itself), and an unreachable dispatcher leaves them unset with a reason.

The cluster's pods run no containers, so the dispatcher runs as a local process, and for
this test the session's operator is replaced by one that reads it through
MEDMEC_OPERATOR_FLEET_URL_TEMPLATE instead of the fleet's Service."""
from __future__ import annotations

import grpc
import pytest

from medmec.operator import devtools
from medmec.workloads.dispatch.local_service import LocalDispatcher
from medmec.workloads.dispatch.protos import dispatch_pb2 as pb
from medmec.workloads.dispatch.protos import dispatch_pb2_grpc

from .conftest import apply, base_station, condition, get, medical_slice, wait_for

pytestmark = pytest.mark.e2e
FIGURES = ("robotsOnline", "tasksQueued", "tasksActive")


def figures(cluster, namespace) -> dict:
    status = (get(cluster, "crf", "porters", namespace) or {}).get("status", {})
    return {k: status.get(k) for k in FIGURES}


def columns(cluster, namespace) -> dict:
    """`kubectl get crf porters` as printed: column name -> cell (cells may be blank)."""
    header, row = cluster.kubectl("get", "crf", "porters", "-n", namespace).stdout.splitlines()[:2]
    names = header.split()
    starts = [header.index(n) for n in names] + [None]
    return {n: row[a:b].strip() for n, a, b in zip(names, starts, starts[1:])}


def test_fleet_status_follows_its_dispatcher(cluster, operator, namespace, tmp_path):
    bs = "t-fleet-live"
    fleet = {"apiVersion": "medmec.io/v1alpha1", "kind": "CareRobotFleet",
             "metadata": {"name": "porters", "namespace": namespace},
             "spec": {"sliceRef": {"name": "logistics"}, "mapRef": {"name": "ward-map"},
                      "robots": [{"id": "amr-1", "home": "f0-park-00a", "payloadKg": 20},
                                 {"id": "amr-2", "home": "f0-park-01a", "payloadKg": 20}]}}
    dispatcher = LocalDispatcher(tmp_path, heartbeat_timeout_s=600).start()  # the sample map
    url = f"{dispatcher.url}/v1/fleet?ns={{namespace}}&fleet={{name}}"
    operator.stop()
    channel = grpc.insecure_channel(dispatcher.target)
    replaced = None
    try:
        # standalone: it leaves no peering record behind to pause the session's operator
        replaced = devtools.start_operator(cluster.kubeconfig, tmp_path / "operator.log", extra_env={
            "MEDMEC_OPERATOR_PEERING": "", "MEDMEC_OPERATOR_RECHECK_SECONDS": "1",
            "MEDMEC_OPERATOR_FLEET_URL_TEMPLATE": url})
        apply(cluster, base_station(bs, "mec-east", 100, 100),
              medical_slice("logistics", namespace, [bs], mbps=5, gpus=0),
              devtools.sample_map_configmap(namespace, "ward-map"), fleet)
        wait_for(lambda: condition(get(cluster, "crf", "porters", namespace),
                                   "DispatcherReachable").get("status") == "True", 90,
                 "the dispatcher read")
        assert figures(cluster, namespace) == {"robotsOnline": 0, "tasksQueued": 0, "tasksActive": 0}

        stub = dispatch_pb2_grpc.DispatchStub(channel)
        for robot, park in (("amr-1", "f0-park-00a"), ("amr-2", "f0-park-01a")):
            stub.RegisterRobot(pb.RegisterRobotRequest(
                robot_id=robot, node=park, speed_mps=1.0, payload_kg=20, battery_pct=90,
                capabilities=["medicine", "specimen"]))
        task = stub.SubmitTask(pb.SubmitTaskRequest(task_id="meds-1", pickup="pharmacy",
                                                    dropoff="f1-room-a1w", weight_kg=2,
                                                    kind="medicine"))
        assert task.robot_id  # two idle robots: the task is queued on one at once
        wait_for(lambda: figures(cluster, namespace) ==
                 {"robotsOnline": 2, "tasksQueued": 1, "tasksActive": 0}, 30, "2 online, 1 queued")
        shown = columns(cluster, namespace)
        assert (shown["ROBOTS"], shown["ONLINE"], shown["QUEUED"], shown["ACTIVE"]) == ("2", "2", "1", "0")

        stub.ReportTaskEvent(pb.TaskEventRequest(robot_id=task.robot_id, task_id="meds-1",
                                                 event=pb.TASK_EVENT_PICKED_UP))
        wait_for(lambda: figures(cluster, namespace) ==
                 {"robotsOnline": 2, "tasksQueued": 0, "tasksActive": 1}, 30, "1 active")

        dispatcher.stop()
        wait_for(lambda: figures(cluster, namespace) == dict.fromkeys(FIGURES), 30,
                 "figures unset while the dispatcher is unreachable")
        reachable = condition(get(cluster, "crf", "porters", namespace), "DispatcherReachable")
        assert (reachable["status"], reachable["reason"]) == ("False", "DispatcherUnreachable")
        assert f"127.0.0.1:{dispatcher.http_port}/v1/fleet?ns={namespace}&fleet=porters" in \
            reachable["message"]
        shown = columns(cluster, namespace)
        assert (shown["ROBOTS"], shown["ONLINE"], shown["QUEUED"], shown["ACTIVE"]) == ("2", "", "", "")
        assert get(cluster, "crf", "porters", namespace)["status"]["robotsDeclared"] == 2
    finally:
        channel.close()
        if replaced:
            replaced.stop()
        operator.start()
        dispatcher.stop()
        # gone before the next test: a console lists every fleet in the cluster
        cluster.kubectl("delete", "crf", "porters", "-n", namespace, "--ignore-not-found",
                        check=False)
        cluster.kubectl("delete", "basestation", bs, check=False)
