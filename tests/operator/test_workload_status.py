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
