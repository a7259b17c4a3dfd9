"""Which base stations a critical slice's inference services avoid (pure)."""
import datetime

from medmec.workloads.qos import placement

T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
COVERED = ["gnb-north", "gnb-south"]


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def test_a_breaching_base_station_is_avoided_when_another_meets_the_budget():
    avoid = placement.next_avoid([], COVERED, {"gnb-north": False, "gnb-south": True},
                                 {"gnb-south": T0}, at(1), 60, critical=True)
    assert avoid == ["gnb-north"]


def test_no_shift_without_a_healthy_alternative_or_for_non_critical_slices():
    both_bad = {"gnb-north": False, "gnb-south": False}
    assert placement.next_avoid([], COVERED, both_bad, {}, T0, 60, critical=True) == []
    unknown = {"gnb-north": False, "gnb-south": None}
    assert placement.next_avoid([], COVERED, unknown, {}, T0, 60, critical=True) == []
    split = {"gnb-north": False, "gnb-south": True}
    assert placement.next_avoid([], COVERED, split, {"gnb-south": T0}, T0, 60, critical=False) == []


def test_the_way_back_waits_for_the_hold_down():
    ok = {"gnb-north": True, "gnb-south": True}
    since = {"gnb-north": at(0), "gnb-south": T0}
    assert placement.next_avoid(["gnb-north"], COVERED, ok, since, at(59), 60, True) == ["gnb-north"]
    assert placement.next_avoid(["gnb-north"], COVERED, ok, since, at(60), 60, True) == []


def test_an_avoided_station_that_wobbles_restarts_its_hold_down():
    since = placement.healthy_since(None, True, at(0))
    assert placement.healthy_since(since, True, at(30)) == at(0)
    assert placement.healthy_since(since, False, at(31)) is None
    assert placement.healthy_since(None, True, at(40)) == at(40)
    # not judged yet (a restarted prober): the streak is kept, not restarted
    assert placement.healthy_since(at(40), None, at(45)) == at(40)
    assert placement.healthy_since(None, None, at(45)) is None


def test_never_everything_is_avoided():
    # north already avoided, now south breaches too while north is not yet healthy
    avoid = placement.next_avoid(["gnb-north"], COVERED, {"gnb-north": None, "gnb-south": False},
                                 {}, T0, 60, critical=True)
    assert avoid == ["gnb-north"]
    three = ["a", "b", "c"]
    avoid = placement.next_avoid([], three, {"a": False, "b": False, "c": True}, {"c": T0}, T0, 60, True)
    assert avoid == ["a", "b"]


def test_a_base_station_no_longer_covered_leaves_the_list():
    assert placement.next_avoid(["gnb-east"], COVERED, {"gnb-north": True, "gnb-south": True},
                                {}, T0, 60, True) == []

