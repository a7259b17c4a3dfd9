from medmec.operator.admission import Claim, Station, decide, usage_by_station

STATIONS = {"north": Station("north", "mec-north", 100, 200),
            "south": Station("south", "mec-south", 50, 50)}


def claim(ns, name, created, up, down=None, stations=("north",), admitted=False):
    return Claim(ns, name, created, up, up if down is None else down, tuple(stations), admitted)


def test_first_come_by_creation_time_gets_the_capacity():
    d = decide(STATIONS, [claim("b", "late", "2026-01-01T10:00:02Z", 60),
                          claim("a", "early", "2026-01-01T10:00:01Z", 60)])
    assert d["a/early"].admitted and not d["b/late"].admitted
    assert d["b/late"].reason == "OverCapacity"
    assert "base station north: uplink needs 60 Mbps but only 40 of 100 Mbps are free " \
           "(60 Mbps allocated)" in d["b/late"].message


def test_ties_on_creation_time_are_broken_by_name():
    same = "2026-01-01T10:00:00Z"
    d = decide(STATIONS, [claim("b", "x", same, 60), claim("a", "x", same, 60)])
    assert d["a/x"].admitted and not d["b/x"].admitted


def test_every_covered_station_must_fit_uplink_and_downlink():
    d = decide(STATIONS, [claim("a", "wide", "t1", 40, 40, ("north", "south")),
                          claim("b", "south-heavy", "t2", 20, 5, ("south",))])
    assert d["a/wide"].admitted
    refused = d["b/south-heavy"]
    assert not refused.admitted
    assert "base station south: uplink needs 20 Mbps but only 10 of 50 Mbps are free" in refused.message
    assert "downlink" not in refused.message  # 5 of the 10 free downlink Mbps fit


def test_admitted_slices_keep_their_place_over_older_waiting_ones():
    d = decide(STATIONS, [claim("a", "old-waiting", "t1", 80),
                          claim("b", "young-admitted", "t2", 60, admitted=True)])
    assert d["b/young-admitted"].admitted and not d["a/old-waiting"].admitted


def test_freed_capacity_goes_to_the_oldest_waiting_slice():
    d = decide(STATIONS, [claim("c", "newest", "t3", 50), claim("b", "older", "t2", 50),
                          claim("a", "kept", "t1", 50, admitted=True)])
    assert d["a/kept"].admitted and d["b/older"].admitted and not d["c/newest"].admitted


def test_unknown_base_station_and_second_slice_in_namespace_are_refused():
    d = decide(STATIONS, [claim("a", "s1", "t1", 1), claim("a", "s2", "t2", 1),
                          claim("b", "lost", "t3", 1, stations=("west",))])
    assert d["a/s1"].admitted
    assert d["a/s2"].reason == "NamespaceHasSlice" and "a/s1" not in d["a/s2"].message
    assert d["b/lost"].reason == "BaseStationNotFound" and "west" in d["b/lost"].message


def test_usage_counts_only_admitted_claims():
    claims = [claim("a", "in", "t1", 70, 90), claim("b", "out", "t2", 70)]
    usage = usage_by_station(STATIONS, claims, decide(STATIONS, claims))
    assert (usage["north"].uplink_mbps, usage["north"].downlink_mbps) == (70, 90)
    assert usage["north"].slices == ["a/in"] and usage["south"].uplink_mbps == 0
