"""A BaseStation is Ready when its MEC site (the nodes of its zone) has a Ready node."""
from medmec.operator.station_status import node_view, ready_condition


def _node(name, zone, ready=True, reason="KubeletReady", message="", gpus=None, cordoned=False):
    return {"metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
            "spec": {"unschedulable": True} if cordoned else {},
            "status": {"allocatable": {"nvidia.com/gpu": gpus} if gpus else {},
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "reason": reason, "message": message}]}}


def test_ready_with_a_ready_node_in_the_zone():
    nodes = [node_view(_node("n1", "mec-north", gpus="8")), node_view(_node("n2", "mec-south"))]
    cond = ready_condition("mec-north", nodes)
    assert (cond["status"], cond["reason"]) == ("True", "NodesReady")
    assert cond["message"] == "1 of 1 node(s) in zone mec-north Ready"
    assert nodes[0].gpus == 8 and nodes[1].gpus == 0


def test_no_nodes_in_the_zone():
    cond = ready_condition("mec-west", [node_view(_node("n1", "mec-north"))])
    assert (cond["status"], cond["reason"]) == ("False", "NoNodes")
    assert "topology.kubernetes.io/zone=mec-west" in cond["message"]


def test_not_ready_nodes_say_why():
    nodes = [node_view(_node("n1", "z", ready=False, reason="KubeletNotReady",
                             message="container runtime network not ready")),
             node_view(_node("n2", "z", cordoned=True))]
    cond = ready_condition("z", nodes)
    assert (cond["status"], cond["reason"]) == ("False", "NodesNotReady")
    assert "n1: KubeletNotReady: container runtime network not ready" in cond["message"]
    assert "n2: cordoned" in cond["message"]


def test_a_node_without_a_ready_condition_is_not_ready():
    view = node_view({"metadata": {"name": "n", "labels": {}}, "status": {}})
    assert not view.ready and view.why_not == "no Ready condition"
