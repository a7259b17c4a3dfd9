"""The operator writes statuses once per change with an Event on each transition: a
BaseStation's Ready from its site's nodes, a workload's Ready from its failing pods (the API
calls recorded, not made)."""
from medmec.operator import handlers, inference_status, kube
from medmec.operator.admission import Station
from medmec.operator.handlers import Operator
from medmec.operator.settings import OperatorSettings


def _node(name, zone, ready=True):
    return {"metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
            "spec": {}, "status": {"allocatable": {"nvidia.com/gpu": "4"},
                                   "conditions": [{"type": "Ready", "status": str(ready),
                                                   "reason": "KubeletReady" if ready else "KubeletNotReady"}]}}


def test_ready_written_once_per_change_with_an_event(monkeypatch):
    nodes = [_node("n1", "mec-north")]
    writes, events = [], []
    monkeypatch.setattr(kube, "list_nodes", lambda: nodes)
    monkeypatch.setattr(kube, "patch_status", lambda plural, ns, name, status: writes.append(status))
    monkeypatch.setattr(handlers.kopf, "event", lambda body, **kw: events.append((body, kw)))
    op = Operator(OperatorSettings())
    op.slices = {}
    op.stations = {"gnb-north": [Station("gnb-north", "mec-north", 400, 1000, uid="u-1")]}

    op.refresh_station("gnb-north")
    [status] = writes
    assert status["gpuNodes"] == ["n1"] and status["allocatableGPUs"] == 4
    [ready] = status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "NodesReady")
    assert events[0][0]["metadata"] == {"name": "gnb-north", "uid": "u-1"}
    assert events[0][1]["type"] == "Normal"

    op.refresh_station("gnb-north")  # nothing changed: no write, no Event
    assert len(writes) == 1 and len(events) == 1

    nodes[0] = _node("n1", "mec-north", ready=False)
    op._nodes = (0.0, {})  # the node list is re-read
    op.refresh_station("gnb-north")
    assert writes[-1]["conditions"][0]["reason"] == "NodesNotReady"
    assert events[-1][1]["type"] == "Warning" and events[-1][1]["reason"] == "NodesNotReady"


def test_a_crash_looping_pod_sets_ready_false_and_posts_one_warning(monkeypatch):
    from medmec.operator.handlers import WORKLOADS
    from medmec.operator.workload_status import pod_view
    writes, events = [], []
    monkeypatch.setattr(kube, "list_nodes", lambda: [_node("n1", "mec-north")])
    monkeypatch.setattr(kube, "patch_status", lambda plural, ns, name, status: writes.append(status))
    monkeypatch.setattr(handlers.kopf, "event", lambda body, **kw: events.append(kw))
    monkeypatch.setattr(inference_status, "_read", {})
    op = Operator(OperatorSettings(inference_metrics_url_template=""))
    ms = {"apiVersion": "medmec.io/v1alpha1", "kind": "MedicalSlice",
          "metadata": {"name": "radiology", "namespace": "imaging", "uid": "u-ms",
                       "creationTimestamp": "2026-01-01T10:00:00Z"},
          "spec": {"profile": "remote-imaging", "sliceType": "eMBB", "baseStations": ["gnb-north"]},
          "status": {}}
    eis = {"apiVersion": "medmec.io/v1alpha1", "kind": "EdgeInferenceService",
           "metadata": {"name": "triage", "namespace": "imaging", "uid": "u-eis", "generation": 1},
           "spec": {"sliceRef": {"name": "radiology"},
                    "model": {"name": "chest-xray", "version": "1"}}, "status": {}}
    crashing = pod_view({"metadata": {"name": "triage-predictor-abc"}, "spec": {"nodeName": "n1"},
                         "status": {"phase": "Running", "containerStatuses": [{
                             "name": "server", "ready": False, "restartCount": 3,
                             "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                             "lastState": {"terminated": {"exitCode": 1,
                                                          "message": "error: no model.onnx"}}}]}})
    op.slices = {("imaging", "radiology"): [ms]}
    op.stations = {"gnb-north": [Station("gnb-north", "mec-north", 400, 1000)]}
    op.workloads = {("edgeinferenceservices", "imaging", "triage"): [eis]}
    op.pods = {("imaging", "inference", "triage"): [crashing]}
    op.applied[("edgeinferenceservices", "imaging", "triage")] = 1
    wk = WORKLOADS["EdgeInferenceService"]

    op.refresh_status(wk, eis)
    ready = next(c for c in writes[-1]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "CrashLoopBackOff")
    assert "error: no model.onnx" in ready["message"] and writes[-1]["phase"] == "Failed"
    assert [(e["type"], e["reason"]) for e in events] == [("Warning", "CrashLoopBackOff")]
    op.refresh_status(wk, eis)  # unchanged: neither a write nor a second Event
    assert len(writes) == 1 and len(events) == 1
