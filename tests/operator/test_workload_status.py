import datetime

import pytest

from medmec.operator.workload_status import PodView, pod_view, slice_state, workload_status

OK = slice_state({"spec": {"priority": "high"},
                  "status": {"conditions": [{"type": "Admitted", "status": "True"}]}}, "s", ["z1"])
ZONES = {"n1": "z1", "n2": "z2"}


def conds(status):
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_slice_missing_or_not_admitted():
    assert slice_state(None, "s", []).reason == "SliceNotFound"
    refused = slice_state({"spec": {}, "status": {"conditions": [
        {"type": "Admitted", "status": "False", "message": "over capacity on gnb-1"}]}}, "s", ["z"])
    assert refused.reason == "SliceNotAdmitted" and "over capacity on gnb-1" in refused.message
    st = workload_status(refused, [], ZONES, 1)
    assert st["phase"] == "Pending" and conds(st)["SliceReady"] == ("False", "SliceNotAdmitted")


def test_ready_when_enough_replicas_and_placement_reported():
    pods = [PodView("a", "n1", True, None), PodView("b", "n2", True, None),
            PodView("c", "n2", False, None, terminating=True)]
    st = workload_status(OK, pods, ZONES, 2)
    assert st["phase"] == "Ready" and st["readyReplicas"] == 2 and st["replicas"] == 2
    assert st["placement"] == {"zones": ["z1", "z2"], "nodes": ["n1", "n2"]}
    assert conds(st) == {"SliceReady": ("True", "SliceAdmitted"), "Scheduled": ("True", "Scheduled"),
                         "Ready": ("True", "ReplicasReady")}


def test_unschedulable_pod_carries_the_schedulers_reason():
    pods = [PodView("a", "n1", True, None),
            PodView("b", None, False, "0/5 nodes are available: 5 Insufficient nvidia.com/gpu.")]
    st = workload_status(OK, pods, ZONES, 2)
    scheduled = next(c for c in st["conditions"] if c["type"] == "Scheduled")
    assert scheduled["status"] == "False" and "Insufficient nvidia.com/gpu" in scheduled["message"]
    assert st["phase"] == "Deploying"


def test_not_ready_until_this_generation_is_applied_and_problems_fail():
    pods = [PodView("a", "n1", True, None)]
    assert conds(workload_status(OK, pods, ZONES, 1, applied=False))["Ready"] == ("False", "Reconciling")
    st = workload_status(OK, pods, ZONES, 1, problem=("ModelNotInStore", "wrong bucket"))
    assert st["phase"] == "Failed" and conds(st)["Ready"] == ("False", "ModelNotInStore")


def test_pod_view_reads_scheduler_and_readiness():
    pending = pod_view({"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending",
                        "conditions": [{"type": "PodScheduled", "status": "False",
                                        "reason": "Unschedulable", "message": "no GPU"}]}})
    assert pending.unschedulable == "no GPU" and not pending.ready
    running = pod_view({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"},
                        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
    assert running.ready and running.node == "n1" and not running.terminating


# ---- container failures: the reason and the container's last message, Ready=False ------

NOW = datetime.datetime(2026, 12, 2, 0, 0, 0, tzinfo=datetime.timezone.utc)
WANT = "a" * 64
FOUND = "b" * 64


def _pod(name="p-1", containers=(), init=(), ready=False, phase="Running", conditions=()):
    return {"metadata": {"name": name}, "spec": {"nodeName": "n1"},
            "status": {"phase": phase, "containerStatuses": list(containers),
                       "initContainerStatuses": list(init),
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"},
                                      *conditions]}}


def _ready_condition(pods, want=1, **kwargs):
    st = workload_status(OK, [pod_view(p) for p in pods], ZONES, want, now=NOW, **kwargs)
    return st, next(c for c in st["conditions"] if c["type"] == "Ready")


CRASHING = {"name": "server", "ready": False, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                                  "message": "back-off 40s restarting failed container=server"}},
            "lastState": {"terminated": {"reason": "Error", "exitCode": 1,
                                         "message": "error: --model-dir /models holds no version 3\n"}}}


@pytest.mark.parametrize("status, reason, says", [
    (CRASHING, "CrashLoopBackOff", "error: --model-dir /models holds no version 3"),
    ({"name": "server", "ready": False, "state": {"waiting": {
        "reason": "ImagePullBackOff",
        "message": 'Back-off pulling image "localhost/medmec:nope"'}}},
     "ImagePullBackOff", 'Back-off pulling image "localhost/medmec:nope"'),
    ({"name": "server", "ready": False, "state": {"waiting": {
        "reason": "ErrImagePull", "message": "failed to pull and unpack image: not found"}}},
     "ErrImagePull", "failed to pull and unpack image: not found"),
    ({"name": "server", "ready": False, "state": {"waiting": {
        "reason": "CreateContainerConfigError",
        "message": 'secret "medmec-model-store" not found'}}},
     "CreateContainerConfigError", 'secret "medmec-model-store" not found'),
    ({"name": "server", "ready": False, "restartCount": 2,
      "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
      "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}},
     "OOMKilled", "more memory than its limit"),
    # ended again after restarts, the kubelet backing off without reporting it (kubelet 1.36)
    ({"name": "server", "ready": False, "restartCount": 5,
      "state": {"terminated": {"reason": "Error", "exitCode": 3,
                               "message": "error: tokens file /etc/medmec/tokens.json is unreadable\n"}},
      "lastState": {"terminated": {"reason": "Error", "exitCode": 3}}},
     "CrashLoopBackOff", "error: tokens file /etc/medmec/tokens.json is unreadable"),
])
def test_failing_container_makes_ready_false_with_reason_and_last_message(status, reason, says):
    st, ready = _ready_condition([_pod(containers=[status])])
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert says in ready["message"] and "pod p-1 container server" in ready["message"]
    assert st["phase"] == "Failed"


def test_a_failing_pod_beside_ready_ones_still_says_why_and_that_the_others_serve():
    serving = _pod("p-old", containers=[{"name": "server", "ready": True, "started": True,
                                         "state": {"running": {"startedAt": "2026-12-01T23:00:00Z"}}}],
                   ready=True)
    st, ready = _ready_condition([serving, _pod("p-new", containers=[CRASHING])], want=1)
    assert ready["status"] == "False" and ready["reason"] == "CrashLoopBackOff"
    assert "1 of 1 replica(s) ready; the ready pods keep serving" in ready["message"]
    assert st["readyReplicas"] == 1


def test_wrong_model_digest_names_model_expected_and_found():
    fetch = {"name": "fetch-model", "ready": False, "restartCount": 3,
             "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
             "lastState": {"terminated": {"reason": "Error", "exitCode": 1, "message": (
                 f"error: model chest-xray version 2: the store's metadata gives sha256 {FOUND}, "
                 f"but {WANT} was required\n")}}}
    server = {"name": "server", "ready": False, "state": {"waiting": {"reason": "PodInitializing"}}}
    old = _pod("p-old", ready=True, containers=[{"name": "server", "ready": True, "started": True,
                                                 "state": {"running": {}}}])
    st, ready = _ready_condition([old, _pod("p-new", containers=[server], init=[fetch],
                                            phase="Pending")])
    assert ready["reason"] == "ModelDigestMismatch"
    assert f"model chest-xray version 2: expected sha256 {WANT}, found {FOUND}" in ready["message"]
    assert "the ready pods keep serving" in ready["message"]


def test_first_failure_of_an_init_container_before_its_back_off():
    fetch = {"name": "fetch-model", "ready": False,
             "state": {"terminated": {"reason": "Error", "exitCode": 2,
                                      "message": "error: model store: connection refused"}}}
    _, ready = _ready_condition([_pod(init=[fetch], phase="Pending")])
    assert ready["reason"] == "InitContainerFailed" and "connection refused" in ready["message"]


def test_readiness_failure_counts_only_after_the_grace():
    def running(started):
        return _pod(containers=[{"name": "dispatch", "ready": False, "started": True,
                                 "state": {"running": {"startedAt": started}}}])
    fresh = running("2026-12-01T23:59:50Z")  # 10 s ago: still starting
    _, ready = _ready_condition([fresh])
    assert ready["reason"] == "WaitingForReplicas"
    stale = running("2026-12-01T23:58:00Z")
    _, ready = _ready_condition([stale], probe_messages={
        "p-1": "Readiness probe failed: HTTP probe failed with statuscode: 503"})
    assert ready["reason"] == "ReadinessProbeFailed"
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in ready["message"]
    _, ready = _ready_condition([stale])
    assert ready["reason"] == "ReadinessProbeFailed" and "readiness probe does not pass" in ready["message"]


def test_a_container_still_creating_is_no_failure():
    creating = {"name": "server", "ready": False, "state": {"waiting": {"reason": "ContainerCreating"}}}
    st, ready = _ready_condition([_pod(containers=[creating], phase="Pending")])
    assert ready["reason"] == "WaitingForReplicas" and st["phase"] == "Deploying"


def test_a_first_exit_is_no_crash_loop_until_the_container_ends_again_after_a_restart():
    ended = {"name": "server", "ready": False, "restartCount": 0,
             "state": {"terminated": {"reason": "Error", "exitCode": 1, "message": "boom"}}}
    _, ready = _ready_condition([_pod(containers=[ended])])
    assert ready["reason"] == "WaitingForReplicas"
    _, ready = _ready_condition([_pod(containers=[{**ended, "restartCount": 1}])])
    assert ready["reason"] == "CrashLoopBackOff" and "boom" in ready["message"]
