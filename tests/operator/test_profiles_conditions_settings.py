import pytest

from medmec.operator.conditions import condition, merge, without_times
from medmec.operator.profiles import PROFILES, resolve_qos, snssai
from medmec.operator.settings import OperatorSettings


def test_table_5_1_rows():
    assert len(PROFILES) == 7
    surgery = PROFILES["remote-surgery"]
    assert (surgery.uplinkMbps, surgery.networkLatencyMs, surgery.endToEndLatencyMs) == (100, 50, 300)
    assert PROFILES["non-realtime"].endToEndLatencyMs == 2000
    assert PROFILES["remote-monitoring"].downlinkMbps == 20


def test_explicit_qos_wins_when_no_profile_and_errors_name_the_field():
    qos = resolve_qos({"qos": {"uplinkMbps": 5, "downlinkMbps": 7, "networkLatencyMs": 10,
                               "endToEndLatencyMs": 20, "jitterMs": 1}})
    assert (qos.uplinkMbps, qos.downlinkMbps) == (5, 7)
    with pytest.raises(ValueError, match="spec.profile"):
        resolve_qos({"profile": "tele-dentistry"})
    with pytest.raises(ValueError, match="spec.profile or spec.qos"):
        resolve_qos({})


def test_snssai_from_slice_type_and_differentiator():
    assert snssai({"sliceType": "URLLC", "sliceDifferentiator": "00a0ff"}) == "2-00A0FF"
    assert snssai({"sliceType": "mIoT"}) == "3"


def test_merge_keeps_transition_time_while_status_is_unchanged():
    old = merge(None, [condition("Ready", False, "Waiting")], 1, at="2026-01-01T00:00:00Z")
    same = merge(old, [condition("Ready", False, "StillWaiting", "x")], 2, at="2026-01-01T00:01:00Z")
    flipped = merge(same, [condition("Ready", True, "Done")], 2, at="2026-01-01T00:02:00Z")
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["observedGeneration"] == 2
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:02:00Z"
    assert without_times(flipped) == [{"type": "Ready", "status": "True", "reason": "Done",
                                       "message": "", "observedGeneration": 2}]


def test_settings_from_env_then_flags():
    s = OperatorSettings.from_env({"MEDMEC_OPERATOR_NAMESPACES": "a,b",
                                   "MEDMEC_OPERATOR_STORE_SECURE": "true",
                                   "MEDMEC_OPERATOR_IMAGE": "env/image:1"}, image="flag/image:2")
    assert s.namespaces == ["a", "b"] and s.store_secure is True and s.image == "flag/image:2"
    assert OperatorSettings.from_env({}).image == "ghcr.io/medmec/medmec:0.1.0"
    with pytest.raises(ValueError):
        OperatorSettings.from_env({"MEDMEC_OPERATOR_LIVENESS_PORT": "99999"})


def test_peering_priorities_of_one_deployments_pods_differ_and_are_stable():
    from medmec.operator.settings import OperatorSettings, pod_name_priority
    names = ["medmec-operator-7d9f8c6b5-" + s for s in ("x2b4k", "x2b4l", "bbbbb", "99999", "q7z2m")]
    priorities = [pod_name_priority(n) for n in names]
    assert len(set(priorities)) == len(names) and all(p > 0 for p in priorities)
    assert pod_name_priority(names[0]) == pod_name_priority(names[0])
    # a name without a ReplicaSet suffix still gets a priority (not the default 0)
    assert pod_name_priority("operator-0") > 0
    settings = OperatorSettings.from_env({"MEDMEC_OPERATOR_POD_NAME": names[0]})
    assert settings.peering_priority == priorities[0]
    explicit = OperatorSettings.from_env({"MEDMEC_OPERATOR_POD_NAME": names[0],
                                          "MEDMEC_OPERATOR_PRIORITY": "7"})
    assert explicit.peering_priority == 7
    assert OperatorSettings().peering_priority == 0


def test_a_replica_stands_by_like_kopf_decides():
    import datetime

    from medmec.operator.peering import standing_by
    now = datetime.datetime(2026, 12, 2, 0, 0, 30, tzinfo=datetime.timezone.utc)

    def peer(priority, seen="2026-12-02T00:00:25+00:00", lifetime=15):
        return {"priority": priority, "lifetime": lifetime, "lastseen": seen}
    me = peer(500)
    assert not standing_by({"me": me}, 500, now)
    assert not standing_by({"me": me, "low": peer(40)}, 500, now)
    assert standing_by({"me": me, "high": peer(9000)}, 500, now)
    # a higher peer that stopped heart-beating is gone: this replica takes over
    assert not standing_by({"me": me, "high": peer(9000, "2026-12-02T00:00:00+00:00")}, 500, now)
    # two of one priority: kopf pauses both
    assert standing_by({"me": me, "twin": peer(500)}, 500, now)
    assert not standing_by({}, 500, now) and not standing_by({"x": None, "y": "junk"}, 500, now)
