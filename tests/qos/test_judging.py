"""Link figures, the budget verdicts and the slice condition (pure functions)."""
import pytest

from medmec.operator.profiles import PROFILES
from medmec.workloads.qos import budget, stats
from medmec.workloads.qos.stats import Sample

SURGERY = PROFILES["remote-surgery"]  # 50 ms network, 300 ms end to end, 30 ms jitter, 100 Mbps
POLICY = budget.Policy(window_s=10, min_samples=5, breach_ratio=0.1)


def samples(rtts):
    out, jitter, last = [], 0.0, None
    for i, rtt in enumerate(rtts):
        if rtt is not None:
            jitter, last = stats.next_jitter(jitter, last, rtt), rtt
        out.append(Sample(i * 0.5, rtt, jitter))
    return out


def test_rfc3550_jitter_moves_a_sixteenth_of_the_way_to_each_difference():
    j = stats.next_jitter(0.0, None, 10.0)
    assert j == 0.0  # the first packet has no predecessor
    j = stats.next_jitter(j, 10.0, 26.0)
    assert j == pytest.approx(1.0)
    j = stats.next_jitter(j, 26.0, 10.0)
    assert j == pytest.approx(1.0 + (16.0 - 1.0) / 16)


def test_figures_give_percentiles_over_answered_probes_and_loss_over_all():
    f = stats.figures(samples([1.0, 2.0, 3.0, None, 4.0]), uplink_mbps=[90, 120, 110])
    assert f.samples == 5 and f.loss_ratio == pytest.approx(0.2)
    assert f.rtt_p50_ms == pytest.approx(2.5)
    assert 3.9 < f.rtt_p99_ms <= 4.0
    assert f.uplink_mbps == 110 and f.downlink_mbps is None


def test_a_clean_link_meets_the_surgery_budget():
    v = budget.judge("gnb-north", samples([2.0] * 20), SURGERY, POLICY, [500], [800])
    assert v.ok is True and v.reason == "WithinBudget"


def test_one_slow_probe_in_a_window_is_no_breach_but_a_tenth_more_is():
    one = budget.judge("gnb-north", samples([2.0] * 19 + [400.0]), SURGERY, POLICY)
    assert one.ok is True
    three = budget.judge("gnb-north", samples([2.0] * 17 + [82.0] * 3), SURGERY, POLICY)
    assert three.ok is False and three.reason == "NetworkLatencyOverBudget"
    assert "3 of 20 probes over the 50 ms" in three.message


def test_too_few_probes_are_not_judged():
    v = budget.judge("gnb-north", samples([90.0] * 4), SURGERY, POLICY)
    assert v.ok is None and v.reason == "AwaitingProbes"


def test_a_cut_link_is_down_and_partial_loss_is_loss():
    assert budget.judge("b", samples([None] * 10), SURGERY, POLICY).reason == "LinkDown"
    lossy = budget.judge("b", samples([2.0, None] * 5), SURGERY, POLICY)
    assert lossy.ok is False and lossy.reason == "ProbeLoss"


def test_jitter_over_budget_breaches_even_with_latency_inside():
    v = budget.judge("b", samples([1.0, 49.0] * 30), SURGERY, POLICY)
    assert v.ok is False and v.reason == "JitterOverBudget"


def test_bandwidth_under_contract_breaches_on_the_median_burst():
    low = budget.judge("b", samples([2.0] * 10), SURGERY, POLICY, [9.0, 10.0, 500.0], [900])
    assert low.ok is False and low.reason == "BandwidthBelowContract" and "uplink" in low.message
    one_slow = budget.judge("b", samples([2.0] * 10), SURGERY, POLICY, [9.0, 400.0, 500.0], [900])
    assert one_slow.ok is True


def test_end_to_end_adds_the_inference_p99_to_the_network_p99():
    ok = budget.judge("b", samples([20.0] * 10), SURGERY, POLICY, inference_p99_ms=250.0)
    assert ok.ok is True and ok.end_to_end_ms == pytest.approx(270.0)
    over = budget.judge("b", samples([20.0] * 10), SURGERY, POLICY, inference_p99_ms=290.0)
    assert over.ok is False and over.reason == "EndToEndOverBudget"


def test_slice_condition_is_false_when_any_base_station_breaches():
    good = budget.judge("gnb-south", samples([2.0] * 10), SURGERY, POLICY)
    bad = budget.judge("gnb-north", samples([90.0] * 10), SURGERY, POLICY)
    c = budget.slice_condition([good, bad], avoided=["gnb-north"])
    assert c["status"] == "False" and c["reason"] == "NetworkLatencyOverBudget"
    assert c["message"].startswith("gnb-north:") and "kept off gnb-north" in c["message"]
    assert budget.slice_condition([good])["status"] == "True"
    waiting = budget.judge("gnb-east", samples([]), SURGERY, POLICY)
    assert budget.slice_condition([good, waiting])["status"] == "Unknown"
