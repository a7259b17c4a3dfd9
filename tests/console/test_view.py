"""The console's view of the hospital, built from Kubernetes objects (pure)."""
from medmec.workloads.console import history, view


def station(name, up=400, down=1000):
    return {"metadata": {"name": name}, "spec": {"zone": f"mec-{name}", "uplinkMbps": up,
                                                 "downlinkMbps": down, "location": "wing"}}


def node(name, bs, gpus):
    labels = {"medmec.io/base-station": bs} if bs else {}
    return {"metadata": {"name": name, "labels": labels},
            "status": {"capacity": {"nvidia.com/gpu": str(gpus)} if gpus else {}}}


def pod(node_name, gpus, phase="Running"):
    return {"spec": {"nodeName": node_name, "containers": [
        {"resources": {"requests": {"nvidia.com/gpu": str(gpus)}}}, {"resources": {}}]},
        "status": {"phase": phase}}


def ms(ns, name, allocations=(), **status):
    return {"metadata": {"namespace": ns, "name": name},
            "spec": {"profile": "remote-surgery", "sliceType": "URLLC", "priority": "critical",
                     "baseStations": ["north"]},
            "status": {"allocations": list(allocations), **status}}


def test_base_stations_add_up_slice_allocations_and_gpu_requests():
    slices = [ms("surgery", "or-1", [{"baseStation": "north", "uplinkMbps": 100, "downlinkMbps": 100}]),
              ms("imaging", "rad", [{"baseStation": "north", "uplinkMbps": 50, "downlinkMbps": 200},
                                    {"baseStation": "south", "uplinkMbps": 50, "downlinkMbps": 200}])]
    nodes = [node("n1", "north", 8), node("n2", "north", 8), node("s1", "south", 4), node("c1", None, 0)]
    pods = [pod("n1", 2), pod("n2", 1), pod("n1", 4, phase="Succeeded"), pod("c1", 0), pod(None, 1)]
    out = {b["name"]: b for b in view.base_stations([station("south"), station("north")], slices, nodes, pods)}
    assert list(out) == ["north", "south"]
    assert out["north"]["gpus"] == {"capacity": 16, "used": 3}
    assert out["south"]["gpus"] == {"capacity": 4, "used": 0}
    assert [(a["slice"], a["uplinkMbps"]) for a in out["north"]["allocations"]] == [
        ("surgery/or-1", 100), ("imaging/rad", 50)]


def test_slices_carry_budget_verdict_and_measurements():
    measured = [{"baseStation": "north", "rttP99Ms": 81.0, "meetsBudget": "False"}]
    s = ms("surgery", "or-1", qos={"measured": measured, "avoidBaseStations": ["north"],
                                   "lastProbeTime": "2026-01-01T00:00:00Z"},
           conditions=[{"type": "QoSMet", "status": "False", "reason": "NetworkLatencyOverBudget",
                        "message": "north: slow"}])
    [v] = view.medical_slices([s])
    assert v["budget"]["networkLatencyMs"] == 50 and v["qosMet"]["status"] == "False"
    assert v["measured"] == measured and v["avoidBaseStations"] == ["north"]
    [never] = view.medical_slices([ms("a", "b")])
    assert never["qosMet"]["status"] == "Unknown" and never["measured"] == []


def test_alert_feed_never_carries_patient_identifiers():
    alerts = [{"id": "a1", "ward": "4a", "patient_id": "p-123", "encounter_id": "e-9", "score": 7,
               "risk": "high", "parameters": {"spo2": 3}, "raised_at": "2026-01-01T00:00:01Z",
               "wristband": "WB-1"},
              {"id": "a2", "ward": "4a", "patient_id": "p-456", "score": 5, "risk": "medium",
               "raised_at": "2026-01-01T00:00:02Z"}]
    feed = view.alert_feed(alerts)
    assert [a["id"] for a in feed] == ["a2", "a1"]
    text = repr(feed)
    assert "p-123" not in text and "p-456" not in text and "e-9" not in text and "WB-1" not in text


def test_fleet_uses_live_positions_and_falls_back_to_home():
    crf = {"metadata": {"namespace": "logistics", "name": "bots"},
           "spec": {"robots": [{"id": "amr-1", "home": "pharmacy"}, {"id": "amr-2", "home": "lab"}]}}
    hospital_map = {"nodes": [{"id": "pharmacy", "floor": 1, "x": 0, "y": 0},
                              {"id": "lab", "floor": 1, "x": 20, "y": 15}], "edges": []}
    offline = view.fleet(crf, hospital_map, None)
    assert [(r["id"], r["node"], r["x"], r["state"]) for r in offline["robots"]] == [
        ("amr-1", "pharmacy", 0, "unknown"), ("amr-2", "lab", 20, "unknown")]
    assert offline["live"] is False
    live = view.fleet(crf, hospital_map, {
        "robots": [{"id": "amr-1", "node": "lab", "state": "available", "battery_pct": 80.0,
                    "queue": ["t1"]}],
        "tasks": [{"id": "t1", "kind": "medicine", "priority": "high", "pickup": "pharmacy",
                   "dropoff": "lab", "status": "assigned", "robot_id": "amr-1"},
                  {"id": "t0", "kind": "meals", "status": "delivered", "robot_id": "amr-2"}]})
    amr1 = live["robots"][0]
    assert (amr1["node"], amr1["x"], amr1["battery"], amr1["queue"]) == ("lab", 20, 80.0, ["t1"])
    assert [(t["id"], t["robot"], t["state"]) for t in live["tasks"]] == [("t1", "amr-1", "assigned")]
    assert live["live"] is True


def test_history_adds_one_point_per_probe_round():
    h = history.History(points=2)
    s = {"namespace": "a", "name": "b", "lastProbeTime": "t1",
         "measured": [{"baseStation": "north", "rttP99Ms": 3.0, "jitterMs": 0.2}]}
    h.add([s])
    h.add([s])  # the same round again: no new point
    h.add([{**s, "lastProbeTime": "t2"}])
    h.add([{**s, "lastProbeTime": "t3"}])
    assert [p["t"] for p in h.to_json()["a/b"]] == ["t2", "t3"]
    assert h.to_json()["a/b"][0]["links"]["north"] == {"rttP99Ms": 3.0, "jitterMs": 0.2}


def test_nursing_tokens_file_maps_wards_to_tokens():
    import pytest

    from medmec.workloads.console.cli import load_nursing_tokens
    assert load_nursing_tokens("# per ward\n4a tok-a\n5b tok-b  # doctor\n\n") == {
        "4a": "tok-a", "5b": "tok-b"}
    assert load_nursing_tokens("tok-all\n") == {"*": "tok-all"}
    with pytest.raises(ValueError, match="line 2"):
        load_nursing_tokens("4a tok\n4a tok extra\n")
