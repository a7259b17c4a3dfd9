"""The operator writes a BaseStation's Ready condition from its site's nodes, once per
change, with an Event on each transition (the API calls recorded, not made)."""
from medmec.operator import handlers, kube
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
