"""NEWS2 against the RCP 2017 chart, at both sides of every band boundary."""
import pytest
from pydantic import ValidationError

from medmec.workloads.nursing import news2

NORMAL = dict(respiration_rate=16, spo2=97, spo2_scale=1, on_oxygen=False, systolic_bp=120,
              pulse=70, consciousness="A", temperature_c=37.0)

# (parameter, value, points), read off the RCP chart: each boundary from both sides
CHART = [
    ("respiration_rate", 0, 3), ("respiration_rate", 8, 3), ("respiration_rate", 9, 1),
    ("respiration_rate", 11, 1), ("respiration_rate", 12, 0), ("respiration_rate", 20, 0),
    ("respiration_rate", 21, 2), ("respiration_rate", 24, 2), ("respiration_rate", 25, 3),
    ("respiration_rate", 60, 3),
    ("spo2", 91, 3), ("spo2", 92, 2), ("spo2", 93, 2), ("spo2", 94, 1), ("spo2", 95, 1),
    ("spo2", 96, 0), ("spo2", 100, 0),
    ("systolic_bp", 90, 3), ("systolic_bp", 91, 2), ("systolic_bp", 100, 2),
    ("systolic_bp", 101, 1), ("systolic_bp", 110, 1), ("systolic_bp", 111, 0),
    ("systolic_bp", 219, 0), ("systolic_bp", 220, 3),
    ("pulse", 40, 3), ("pulse", 41, 1), ("pulse", 50, 1), ("pulse", 51, 0), ("pulse", 90, 0),
    ("pulse", 91, 1), ("pulse", 110, 1), ("pulse", 111, 2), ("pulse", 130, 2),
    ("pulse", 131, 3),
    ("consciousness", "A", 0), ("consciousness", "C", 3), ("consciousness", "V", 3),
    ("consciousness", "P", 3), ("consciousness", "U", 3),
    ("temperature_c", 35.0, 3), ("temperature_c", 35.1, 1), ("temperature_c", 36.0, 1),
    ("temperature_c", 36.1, 0), ("temperature_c", 38.0, 0), ("temperature_c", 38.1, 1),
    ("temperature_c", 39.0, 1), ("temperature_c", 39.1, 2), ("temperature_c", 41.0, 2),
]

# SpO2 scale 2 (hypercapnic respiratory failure): (spo2, on_oxygen, spo2 points)
SCALE2 = [
    (83, False, 3), (84, False, 2), (85, False, 2), (86, False, 1), (87, False, 1),
    (88, False, 0), (92, False, 0), (93, False, 0), (97, False, 0), (100, False, 0),
    (88, True, 0), (92, True, 0), (93, True, 1), (94, True, 1), (95, True, 2), (96, True, 2),
    (97, True, 3), (100, True, 3), (83, True, 3), (86, True, 1),
]


@pytest.mark.parametrize("name,value,points", CHART)
def test_each_parameter_band(name, value, points):
    result = news2.score(news2.VitalSigns(**{**NORMAL, name: value}))
    assert result.parameters[name] == points
    assert result.score == points  # every other parameter is in its 0 band


@pytest.mark.parametrize("spo2,on_oxygen,points", SCALE2)
def test_spo2_scale_2(spo2, on_oxygen, points):
    vitals = news2.VitalSigns(**{**NORMAL, "spo2_scale": 2, "spo2": spo2, "on_oxygen": on_oxygen})
    result = news2.score(vitals)
    assert result.parameters["spo2"] == points
    assert result.parameters["on_oxygen"] == (2 if on_oxygen else 0)


def test_scale_1_oxygen_scores_two_and_does_not_change_spo2_points():
    result = news2.score(news2.VitalSigns(**{**NORMAL, "on_oxygen": True, "spo2": 99}))
    assert result.parameters == {**{k: 0 for k in news2.PARAMETERS}, "on_oxygen": 2}
    assert (result.score, result.risk) == (2, "low")


@pytest.mark.parametrize("changes,total,risk", [
    ({}, 0, "low"),
    ({"respiration_rate": 21, "pulse": 111}, 4, "low"),  # 2 + 2, no single 3
    ({"consciousness": "C"}, 3, "low-medium"),  # a red score in one parameter
    ({"pulse": 131, "temperature_c": 38.1}, 4, "low-medium"),
    ({"respiration_rate": 21, "pulse": 111, "temperature_c": 38.1}, 5, "medium"),
    ({"spo2": 92, "pulse": 111, "systolic_bp": 101, "temperature_c": 38.1}, 6, "medium"),
    ({"respiration_rate": 25, "systolic_bp": 91, "temperature_c": 39.1}, 7, "high"),
    ({"respiration_rate": 25, "spo2": 91, "on_oxygen": True, "systolic_bp": 90, "pulse": 131,
      "consciousness": "U", "temperature_c": 35.0}, 20, "high"),
])
def test_aggregate_score_and_clinical_risk(changes, total, risk):
    result = news2.score(news2.VitalSigns(**{**NORMAL, **changes}))
    assert (result.score, result.risk) == (total, risk)
    assert result.alerting == (risk != "low")


@pytest.mark.parametrize("field,value", [
    ("spo2", 140), ("pulse", -3), ("respiration_rate", 200), ("temperature_c", 50.0),
    ("consciousness", "X"), ("systolic_bp", 0), ("spo2_scale", 3),
])
def test_impossible_values_are_rejected(field, value):
    with pytest.raises(ValidationError) as info:
        news2.VitalSigns(**{**NORMAL, field: value})
    assert info.value.errors()[0]["loc"] == (field,)


def test_a_partial_set_is_not_complete_until_every_parameter_is_known():
    partial = news2.validate_update({"pulse": 80, "spo2": 95})
    assert partial == {"pulse": 80, "spo2": 95} and not news2.complete(partial)
    full = news2.validate_update({k: v for k, v in NORMAL.items() if k != "spo2_scale"})
    assert news2.complete(full) and news2.score(full).score == 0
    with pytest.raises(ValidationError):
        news2.validate_update({"pulse": 80, "heart_rate": 80})  # unknown parameter


@pytest.mark.parametrize("changes,minutes", [
    ({}, 720), ({"pulse": 91}, 240), ({"consciousness": "V"}, 60),
    ({"respiration_rate": 21, "pulse": 111, "temperature_c": 38.1}, 60),
    ({"respiration_rate": 25, "systolic_bp": 91, "temperature_c": 39.1}, 0),
])
def test_monitoring_frequency_follows_the_score(changes, minutes):
    result = news2.score(news2.VitalSigns(**{**NORMAL, **changes}))
    assert news2.monitoring_interval_minutes(result) == minutes
