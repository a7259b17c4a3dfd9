"""The status patch, Triton quantiles, endpoint overrides, alerts and CLI arguments (pure)."""
import argparse
import datetime

import pytest

from medmec.operator.profiles import PROFILES
from medmec.workloads.qos import alerts, budget, cli, endpoints, slice_status, triton_metrics
from medmec.workloads.qos.stats import Sample

NOW = datetime.datetime(2026, 3, 1, 8, 0, 5, tzinfo=datetime.timezone.utc)
SLICE = {
    "apiVersion": "medmec.io/v1alpha1", "kind": "MedicalSlice",
    "metadata": {"name": "robotic-surgery", "namespace": "surgery", "generation": 3,
                 "resourceVersion": "42", "uid": "u"},
    "spec": {"baseStations": ["gnb-north", "gnb-south"], "priority": "critical"},
    "status": {
        "qos": {"networkLatencyMs": 50, "avoidBaseStations": ["gnb-north"],
                "measured": [{"baseStation": "gnb-south", "healthySince": "2026-03-01T07:00:00Z"}]},
        "conditions": [
            {"type": "Admitted", "status": "True", "reason": "Fits", "lastTransitionTime": "2026-02-01T00:00:00Z"},
            {"type": "QoSMet", "status": "False", "reason": "LinkDown", "message": "x",
             "lastTransitionTime": "2026-03-01T07:59:00Z"},
        ]},
}


def verdict(bs, rtt, inference_p99_ms=None):
    return budget.judge(bs, [Sample(i, rtt, 0.1) for i in range(10)], PROFILES["remote-surgery"],
                        budget.Policy(), inference_p99_ms=inference_p99_ms)


def test_previous_reads_what_the_last_round_wrote():
    avoid, since, met = slice_status.previous(SLICE)
    assert avoid == ["gnb-north"] and met["status"] == "False" and met["reason"] == "LinkDown"
    assert since["gnb-south"] == datetime.datetime(2026, 3, 1, 7, tzinfo=datetime.timezone.utc)
    assert slice_status.previous({"metadata": {}}) == ([], {}, None)


def test_a_restarted_prober_awaiting_probes_keeps_the_last_verdict():
    _, _, old = slice_status.previous(SLICE)
    waiting = {"type": "QoSMet", "status": "Unknown", "reason": "AwaitingProbes", "message": "..."}
    assert slice_status.carried_over(waiting, old) == {
        "type": "QoSMet", "status": "False", "reason": "LinkDown", "message": "x"}
    assert slice_status.carried_over(waiting, None) == waiting
    fresh = {"type": "QoSMet", "status": "True", "reason": "WithinBudget", "message": "ok"}
    assert slice_status.carried_over(fresh, old) == fresh


def test_patch_replaces_only_qosmet_and_keeps_its_transition_time_while_unchanged():
    v = [verdict("gnb-north", 90.0, 12.345), verdict("gnb-south", 2.0, 12.345)]
    cond = budget.slice_condition(v, ["gnb-north"])
    body = slice_status.patch(SLICE, v, {"gnb-south": NOW}, ["gnb-north"], cond, NOW)
    assert body["metadata"] == {"resourceVersion": "42"}
    conds = {c["type"]: c for c in body["status"]["conditions"]}
    assert conds["Admitted"]["reason"] == "Fits"
    assert conds["QoSMet"]["status"] == "False"
    assert conds["QoSMet"]["lastTransitionTime"] == "2026-03-01T07:59:00Z"
    assert conds["QoSMet"]["observedGeneration"] == 3
    qos = body["status"]["qos"]
    assert qos["lastProbeTime"] == "2026-03-01T08:00:05Z" and qos["avoidBaseStations"] == ["gnb-north"]
    north, south = qos["measured"]
    assert north["meetsBudget"] == "False" and north["rttP99Ms"] == 90.0
    assert "healthySince" not in north and south["healthySince"] == "2026-03-01T08:00:05Z"
    assert south["inferenceP99Ms"] == 12.35 and south["endToEndMs"] == pytest.approx(14.35)
    assert "networkLatencyMs" not in qos  # the operator's contract fields are left alone


def test_recovery_moves_the_transition_time():
    v = [verdict("gnb-north", 2.0)]
    body = slice_status.patch(SLICE, v, {}, [], budget.slice_condition(v), NOW)
    met = next(c for c in body["status"]["conditions"] if c["type"] == "QoSMet")
    assert met["status"] == "True" and met["lastTransitionTime"] == "2026-03-01T08:00:05Z"


TRITON = """\
# HELP nv_inference_request_summary_us Summary of inference request duration in microseconds
# TYPE nv_inference_request_summary_us summary
nv_inference_request_summary_us_count{model="tumour-seg",version="1"} 12
nv_inference_request_summary_us_sum{model="tumour-seg",version="1"} 240000
nv_inference_request_summary_us{model="tumour-seg",version="1",quantile="0.5"} 15000
nv_inference_request_summary_us{model="tumour-seg",version="1",quantile="0.99"} 48000
nv_inference_request_summary_us{model="tumour-seg",version="2",quantile="0.99"} 61000
nv_inference_request_summary_us{model="other",version="1",quantile="0.99"} 900000
nv_inference_request_summary_us{model="idle",version="1",quantile="0.99"} NaN
# HELP nv_inference_count Number of inferences performed
# TYPE nv_inference_count counter
nv_inference_count{model="tumour-seg",version="1"} 12
"""


def test_triton_p99_is_the_slowest_served_version_of_the_model():
    assert triton_metrics.p99_ms(TRITON, "tumour-seg") == pytest.approx(61.0)
    assert triton_metrics.p99_ms(TRITON) == pytest.approx(900.0)
    assert triton_metrics.p99_ms(TRITON, "idle") is None
    assert triton_metrics.p99_ms("nv_inference_count 3\n") is None


def test_endpoints_default_to_cluster_dns_and_take_overrides():
    eis = {"metadata": {"name": "tumour-seg", "namespace": "surgery"}}
    e = endpoints.Endpoints.from_args(["inference/surgery/tumour-seg=http://127.0.0.1:9002/"])
    assert e.inference_metrics(eis) == "http://127.0.0.1:9002/metrics"
    plain = endpoints.Endpoints()
    assert plain.inference_metrics(eis) == "http://tumour-seg-predictor.surgery.svc:8002/metrics"
    with_status = {**eis, "status": {"endpoints": {"http": "http://ts.surgery.svc.cluster.local:8000"}}}
    assert plain.inference_metrics(with_status) == "http://ts.surgery.svc.cluster.local:8002/metrics"
    fleet = {"metadata": {"name": "fleet", "namespace": "logistics"}}
    assert plain.dispatch(fleet) == "http://fleet-dispatch.logistics.svc:8080"
    for bad in ["inference/surgery=http://x", "robots/a/b=http://x", "inference/a/b=ftp://x",
                "inference/a/b"]:
        with pytest.raises(ValueError):
            endpoints.parse_override(bad)


def test_alert_follows_the_alertmanager_v2_shape():
    cond = {"type": "QoSMet", "status": "False", "reason": "LinkDown", "message": "gnb-north: down"}
    a = alerts.alert("surgery", "robotic-surgery", True, cond, "2026-03-01T08:00:00Z")
    assert a["labels"]["alertname"] == "MedicalSliceQoSBreach"
    assert a["labels"]["severity"] == "critical" and "endsAt" not in a
    assert a["annotations"]["description"] == "gnb-north: down"
    assert a["annotations"]["reason"] == "LinkDown" and "reason" not in a["labels"]
    other = alerts.alert("surgery", "robotic-surgery", True, {**cond, "reason": "ProbeLoss"}, "t")
    assert other["labels"] == a["labels"]  # the same alert while the breach changes reason
    resolved = alerts.alert("surgery", "robotic-surgery", False, cond, "t0", ends_at="t1")
    assert resolved["endsAt"] == "t1" and resolved["labels"]["severity"] == "warning"


def test_cli_durations_and_links():
    assert cli.duration("60s") == 60 and cli.duration("100ms") == pytest.approx(0.1)
    assert cli.duration("5m") == 300 and cli.duration("2") == 2
    assert cli.link("gnb-north=127.0.0.1:7001") == ("gnb-north", ("127.0.0.1", 7001))
    for bad in ["0s", "-1s", "ten", "5 parsecs"]:
        with pytest.raises(argparse.ArgumentTypeError):
            cli.duration(bad)
    for bad in ["gnb-north", "gnb-north=host", "=h:1", "gnb=h:99999", "gnb=h:x"]:
        with pytest.raises(argparse.ArgumentTypeError):
            cli.link(bad)
