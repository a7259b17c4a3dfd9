"""Where a slice's workloads are placed when the QoS controller marks base stations to avoid:
the pure rules, and what the operator's handlers make of a watched slice."""
from medmec.operator import placement
from medmec.operator.admission import Station
from medmec.operator.handlers import WORKLOADS, Operator, _same
from medmec.operator.settings import OperatorSettings

COVERED = ["gnb-north", "gnb-south"]


def medical_slice(avoid=None, covered=COVERED):
    status = {"conditions": [{"type": "QoSMet", "status": "False", "reason": "NetworkLatencyOverBudget"}]}
    if avoid is not None:
        status["qos"] = {"uplinkMbps": 100, "avoidBaseStations": avoid}
    return {"apiVersion": "medmec.io/v1alpha1", "kind": "MedicalSlice",
            "metadata": {"name": "surgery", "namespace": "or", "uid": "u1", "generation": 1,
                         "creationTimestamp": "2026-01-01T10:00:00Z"},
            "spec": {"profile": "remote-surgery", "priority": "critical", "baseStations": covered},
            "status": status}


def test_required_are_the_covered_less_the_avoided():
    assert placement.required_base_stations(COVERED, ["gnb-north"]) == ["gnb-south"]
    assert placement.required_base_stations(COVERED, []) == COVERED
    assert placement.required_base_stations(COVERED, ["gnb-east"]) == COVERED


def test_avoiding_every_covered_base_station_keeps_them_all():
    assert placement.required_base_stations(COVERED, COVERED) == COVERED


def test_only_qos_following_workloads_leave_an_avoided_base_station():
    ms = medical_slice(avoid=["gnb-north"])
    assert placement.slice_base_stations(ms, follows_qos=True) == ["gnb-south"]
    assert placement.slice_base_stations(ms, follows_qos=False) == COVERED
    assert placement.slice_base_stations(medical_slice(), follows_qos=True) == COVERED
    assert placement.slice_base_stations(None, follows_qos=True) == []


def test_zones_of_unknown_base_stations_are_left_out():
    assert placement.zones({"gnb-north": "mec-north", "gnb-south": "mec-south"},
                           ["gnb-south", "gnb-gone"]) == ["mec-south"]


def operator_watching(ms):
    op = Operator(OperatorSettings())
    op.slices = {("or", "surgery"): [ms]}
    op.stations = {"gnb-north": [Station("gnb-north", "mec-north", 400, 1000)],
                   "gnb-south": [Station("gnb-south", "mec-south", 300, 800)]}
    return op


def test_inference_follows_the_avoid_list_and_fleets_and_nursing_do_not():
    op = operator_watching(medical_slice(avoid=["gnb-north"]))
    seen, zones = op._slice_of("or", "surgery", WORKLOADS["EdgeInferenceService"])
    assert zones == ["mec-south"]
    # the watched status stays (the renderer and the status see the avoid list and QoSMet)
    assert seen["status"]["qos"]["avoidBaseStations"] == ["gnb-north"]
    assert {c["type"] for c in seen["status"]["conditions"]} == {"Admitted"}
    assert next(c for c in seen["status"]["conditions"])["status"] == "True"
    for kind in ("CareRobotFleet", "CloudNursingService"):
        assert op._slice_of("or", "surgery", WORKLOADS[kind])[1] == ["mec-north", "mec-south"]


def test_a_changed_avoid_list_is_noticed_once():
    op = operator_watching(medical_slice())
    assert not op.placement_changed("or", "surgery", medical_slice(avoid=[]))  # first sight
    assert not op.placement_changed("or", "surgery", medical_slice(avoid=[]))
    assert op.placement_changed("or", "surgery", medical_slice(avoid=["gnb-north"]))
    assert not op.placement_changed("or", "surgery", medical_slice(avoid=["gnb-north"]))
    assert op.placement_changed("or", "surgery", medical_slice(avoid=[]))
    # avoiding a base station the slice does not cover moves nothing
    assert not op.placement_changed("or", "surgery", medical_slice(avoid=["gnb-east"]))


def test_another_writers_condition_is_no_reason_to_write():
    mine = [{"type": "Admitted", "status": "True", "reason": "Fits", "lastTransitionTime": "t1"}]
    watched = {"phase": "Ready", "conditions": [
        {"type": "QoSMet", "status": "False", "reason": "NetworkLatencyOverBudget"},
        {**mine[0], "lastTransitionTime": "t0"}]}
    assert _same(watched, {"phase": "Ready", "conditions": mine})
    assert not _same(watched, {"phase": "Ready", "conditions": [{**mine[0], "status": "False"}]})
    assert not _same(watched, {"phase": "Pending", "conditions": mine})
