"""The session context (pure): the cursor that makes each sample count once, NEWS2 score,
trend and alerts on the way, and the sealing of the context between sites."""
import dataclasses

import pytest

from medmec.workloads.mobilecare import context as contexts
from medmec.workloads.mobilecare.context import ContextError, SessionContext

NORMAL = {"respiration_rate": 16, "spo2": 97, "on_oxygen": False, "systolic_bp": 125,
          "pulse": 80, "consciousness": "A", "temperature_c": 37.0}
SICK = {"respiration_rate": 26, "spo2": 90, "on_oxygen": False, "systolic_bp": 95,
        "pulse": 135, "consciousness": "A", "temperature_c": 38.6}


def _ctx() -> SessionContext:
    return SessionContext("sess-00000001", "amb-1")


def test_duplicates_are_counted_not_stored_and_a_gap_is_refused():
    ctx = _ctx()
    first = ctx.apply([(1, 1000, {"pulse": 80}), (2, 2000, {"spo2": 97})], now=3)
    assert [r[0] for r in first.rows] == [1, 2] and ctx.committed_through == 2
    again = ctx.apply([(1, 1000, {"pulse": 80}), (2, 2000, {"spo2": 97}), (3, 3000, {"pulse": 81})], 4)
    assert again.duplicates == 2 and [r[0] for r in again.rows] == [3]
    gap = ctx.apply([(5, 5000, {"pulse": 82})], 5)
    assert gap.rows == [] and gap.rejected == [(5, "out of order: expected sample 4")]
    assert ctx.committed_through == 3


def test_out_of_range_readings_are_rejected_with_a_reason_and_the_session_goes_on():
    ctx = _ctx()
    out = ctx.apply([(1, 0, {"spo2": 140}), (2, 0, {"pulse": 80}), (3, 0, {}), (4, 0, {"pulse": "x"})],
                    now=10)
    assert [r[0] for r in out.rows] == [2]
    reasons = dict(out.rejected)
    assert "spo2" in reasons[1] and "less than or equal to 100" in reasons[1]
    assert reasons[3] == "the sample carries no vital sign" and "pulse" in reasons[4]
    assert ctx.committed_through == 4  # handled: the device need not resend them


def test_news2_score_trend_and_one_alert_per_escalation():
    ctx = _ctx()
    seq = 0
    for t, vitals in [(0, NORMAL), (70, SICK), (80, SICK)]:
        for name, value in vitals.items():
            seq += 1
            ctx.apply([(seq, t * 1000, {name: value})], now=t)
    score, risk = ctx.news2
    assert risk == "high" and score >= 7
    assert ctx.trend == "rising"
    # channel by channel the risk climbs through each band: one alert per escalation, not
    # one per reading (the second SICK set raises none)
    assert [a["risk"] for a in ctx.open_alerts] == ["low-medium", "medium", "high"]
    for name, value in NORMAL.items():
        seq += 1
        ctx.apply([(seq, 200_000, {name: value})], now=200)
    assert ctx.news2[1] == "low" and ctx.open_alerts == [] and ctx.trend == "falling"


def test_sealed_context_round_trips_and_is_kilobytes():
    ctx = _ctx()
    for seq in range(1, 400):  # far beyond the window: the context stays bounded
        ctx.apply([(seq, seq * 150, {"pulse": 80 + seq % 5})], now=seq)
    key = contexts.new_key()
    nonce, sealed = contexts.seal(ctx, key, "move-1", "gnb-east", "gnb-south")
    assert len(sealed) < 16_000
    assert b"sess-00000001" not in sealed  # encrypted, not merely encoded
    back = contexts.unseal(key, "sess-00000001", "move-1", "gnb-east", "gnb-south", nonce, sealed)
    assert dataclasses.asdict(back) == dataclasses.asdict(ctx)


@pytest.mark.parametrize("change", ["key", "byte", "move", "target", "session"])
def test_a_tampered_or_misdirected_context_is_refused(change):
    ctx, key = _ctx(), contexts.new_key()
    nonce, sealed = contexts.seal(ctx, key, "move-1", "gnb-east", "gnb-south")
    args = {"key": key, "session_id": "sess-00000001", "move_id": "move-1", "source": "gnb-east",
            "target": "gnb-south", "nonce": nonce, "ciphertext": sealed}
    if change == "key":
        args["key"] = contexts.new_key()
    elif change == "byte":
        args["ciphertext"] = sealed[:-1] + bytes([sealed[-1] ^ 1])
    elif change == "move":
        args["move_id"] = "move-2"  # replayed into another move
    elif change == "target":
        args["target"] = "gnb-north"
    else:
        args["session_id"] = "sess-00000002"
    with pytest.raises(ContextError, match="integrity"):
        contexts.unseal(**args)


def test_key_files_hold_32_bytes_raw_or_base64(tmp_path):
    raw = b" \n" + contexts.new_key()[2:]  # raw bytes may look like whitespace
    (tmp_path / "raw").write_bytes(raw)
    import base64
    (tmp_path / "b64").write_text(base64.b64encode(raw).decode() + "\n")
    assert contexts.load_key(tmp_path / "raw") == contexts.load_key(tmp_path / "b64") == raw
    (tmp_path / "short").write_text(base64.b64encode(b"x" * 16).decode())
    with pytest.raises(ValueError, match="32 bytes"):
        contexts.load_key(tmp_path / "short")
    (tmp_path / "text").write_text("not a key at all!")
    with pytest.raises(ValueError, match="neither 32 raw bytes nor base64"):
        contexts.load_key(tmp_path / "text")


def test_the_eta_is_kept_as_the_instant_it_points_at_and_moves_with_the_context():
    ctx = _ctx()
    assert ctx.report_position(51.5, -0.12, 14.0, 600, now=1000.0) is None
    assert ctx.expected_arrival_ms == 1_600_000
    # a later report on schedule points at the same instant
    assert ctx.report_position(51.6, -0.11, 14.0, 540, now=1060.0) is None
    assert ctx.expected_arrival_ms == 1_600_000
    key = contexts.new_key()
    nonce, sealed = contexts.seal(ctx, key, "move-1", "gnb-east", "gnb-south")
    moved = contexts.unseal(key, ctx.session_id, "move-1", "gnb-east", "gnb-south", nonce, sealed)
    assert moved.expected_arrival_ms == 1_600_000
    # a position without an ETA: the arrival is no longer known
    assert ctx.report_position(51.6, -0.11, 0.0, None, now=1100.0) is None
    assert ctx.expected_arrival_ms is None


@pytest.mark.parametrize("position, why", [
    ((51.5, -0.12, 14.0, -5), "ETA -5 s is out of range"),
    ((51.5, -0.12, 14.0, contexts.MAX_ETA_S + 1), "out of range"),
    ((91.0, -0.12, 14.0, 600), "off the globe"),
    ((float("nan"), -0.12, 14.0, 600), "off the globe"),
    ((51.5, -0.12, -3.0, 600), "not a speed"),
    ((51.5, -0.12, float("inf"), 600), "not a speed"),
])
def test_an_impossible_position_is_ignored_with_its_reason_and_the_last_one_kept(position, why):
    ctx = _ctx()
    ctx.report_position(51.5, -0.12, 14.0, 600, now=1000.0)
    kept = dict(ctx.position)
    reason = ctx.report_position(*position, now=1010.0)
    assert why in reason
    assert ctx.position == kept and ctx.expected_arrival_ms == 1_600_000
