"""The pure rules: five rights (the time window in detail), worklist, vitals merging, tokens."""
import pytest
from pydantic import ValidationError

from medmec.workloads.nursing import five_rights, news2, worklist
from medmec.workloads.nursing.records import Alert, Encounter, Order
from medmec.workloads.nursing.tokens import Credentials, Principal, TokensError
from medmec.workloads.nursing.vitals import escalates, merge

T0 = 1_800_000_000.0
WINDOW = 30 * 60
ENC = Encounter(id="e1", patient_id="p1", ward="ward-a", wristband="WB1", status="in-progress",
                spo2_scale=1, assigned_nurse="nurse-a", started_at=T0 - 86400)
ORDER = Order(id="o1", patient_id="p1", encounter_id="e1", ward="ward-a", drug_code="0501",
              drug_name="Paracetamol", dose_value=1000, dose_unit="mg", route_code="26643006",
              route_name="Oral", start=T0, interval_s=6 * 3600, count=3, status="active",
              ordered_by="dr-a")


def scan(at: float = T0, encounter=ENC, **changes):
    fields = dict(wristband_encounter=encounter, drug_code="0501", dose_value=1000.0,
                  dose_unit="mg", route_code="26643006", at=at)
    return five_rights.Scan(**{**fields, **changes})


@pytest.mark.parametrize("at,slot", [
    (T0, T0), (T0 - WINDOW, T0), (T0 + WINDOW, T0),  # the window's edges count
    (T0 + 6 * 3600 - 60, T0 + 6 * 3600), (T0 + 12 * 3600 + WINDOW, T0 + 12 * 3600),
])
def test_a_dose_in_the_window_is_approved_for_its_slot(at, slot):
    assert five_rights.check(ORDER, scan(at), set(), WINDOW) == five_rights.Approval(slot)


@pytest.mark.parametrize("at,reason", [
    (T0 - WINDOW - 1, "next is due in 30 min"),
    (T0 + WINDOW + 1, "next is due in 330 min"),
    (T0 + 18 * 3600, "none is left"),  # count=3: the 4th slot does not exist
])
def test_outside_every_window_the_time_is_wrong(at, reason):
    result = five_rights.check(ORDER, scan(at), set(), WINDOW)
    assert isinstance(result, five_rights.Refusal) and result.right == "time"
    assert reason in result.reason and not result.duplicate


def test_a_given_slot_is_a_duplicate():
    result = five_rights.check(ORDER, scan(T0 + 60), {T0}, WINDOW)
    assert result.right == "time" and result.duplicate


@pytest.mark.parametrize("encounter,reason", [
    (None, "belongs to no patient"),
    (Encounter(**{**ENC.__dict__, "status": "finished"}), "discharged"),
    (Encounter(**{**ENC.__dict__, "id": "e2", "patient_id": "p2"}), "not the patient"),
])
def test_the_wrong_patient_is_refused_first(encounter, reason):
    # every other right is wrong too: the patient is named
    result = five_rights.check(ORDER, scan(T0 + 86400, encounter, drug_code="x", dose_value=1,
                                           route_code="y"), set(), WINDOW)
    assert result.right == "patient" and reason in result.reason


def test_a_stopped_order_is_not_given():
    stopped = Order(**{**ORDER.__dict__, "status": "stopped"})
    assert five_rights.check(stopped, scan(), set(), WINDOW).right == "time"


def test_worklist_orders_alerting_then_overdue_then_due():
    now = T0 + 6 * 3600  # slot 1 (T0) is overdue, slot 2 is due now, slot 3 not yet
    other = Encounter(**{**ENC.__dict__, "id": "e9", "patient_id": "p9", "assigned_nurse": "b"})
    alert = Alert(id="a1", ward="ward-a", patient_id="p1", encounter_id="e1", score=7,
                  risk="high", parameters={}, effective_at=now - 60, raised_at=now - 60)
    scored = worklist.LastScore(news2.score(news2.VitalSigns(
        respiration_rate=16, spo2=97, on_oxygen=False, systolic_bp=120, pulse=95,
        consciousness="A", temperature_c=37.0)), now - 3 * 3600)  # score 1: 4-hourly
    items = worklist.build([ENC, other], [ORDER], {}, [alert], {"e1": scored}, now, WINDOW,
                           nurse="nurse-a")
    assert [(i.status, i.kind) for i in items] == [
        ("alerting", "alert"), ("overdue", "medication"), ("due", "medication")]
    assert items[1].due_at == T0 and items[2].due_at == T0 + 6 * 3600
    later = worklist.build([ENC], [ORDER], {"o1": {T0, T0 + 6 * 3600}}, [], {"e1": scored},
                           now + 2 * 3600, WINDOW)
    assert [(i.status, i.kind) for i in later] == [("overdue", "observations")]
    assert worklist.build([other], [ORDER], {}, [], {}, now, WINDOW, nurse="nurse-a") == []


def test_merge_keeps_the_newest_value_of_each_parameter_within_the_age_limit():
    latest = {"pulse": (70, 100.0), "systolic_bp": (120, 10.0)}
    merged = merge(latest, {"pulse": 90, "spo2": 95}, 200.0, max_age_s=150)
    assert merged == {"pulse": (90, 200.0), "spo2": (95, 200.0)}  # the old BP aged out
    late = merge(merged, {"pulse": 60}, 150.0, max_age_s=150)  # arrived out of order
    assert late["pulse"] == (90, 200.0)


@pytest.mark.parametrize("previous,risk,alerts", [
    (None, "low", False), (None, "low-medium", True), ("low-medium", "low-medium", False),
    ("low-medium", "medium", True), ("high", "medium", False), ("low", "high", True),
])
def test_an_alert_is_raised_when_the_risk_climbs_into_an_alerting_band(previous, risk, alerts):
    result = news2.News2Result(score=0, risk=risk, parameters={})
    assert escalates(previous, result) == alerts


def test_tokens_bind_a_role_and_a_ward():
    creds = Credentials({"a-long-enough-token-1": Principal(role="nurse", ward="ward-a", subject="n1")})
    assert creds.authenticate("Bearer a-long-enough-token-1").subject == "n1"
    assert creds.authenticate("bearer  a-long-enough-token-1 ").subject == "n1"
    for header in (None, "", "Bearer", "Basic a-long-enough-token-1", "Bearer a-long-enough-token-2"):
        assert creds.authenticate(header) is None
    with pytest.raises(TokensError, match="shorter than 16"):
        Credentials({"short": Principal(role="nurse", ward="ward-a", subject="n1")})
    with pytest.raises(ValidationError, match="only an admin"):
        Principal(role="nurse", ward="*", subject="n1")
    assert Principal(role="admin", ward="*", subject="it").may_access("ward-b")
    assert not Principal(role="nurse", ward="ward-a", subject="n1").may_access("ward-b")
