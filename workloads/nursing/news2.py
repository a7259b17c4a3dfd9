"""NEWS2 early-warning score (Royal College of Physicians, 2017), as pure functions.

Each parameter has one validated type with a plausible physiological range (a reading
outside it is a device or typing error, never a score). `VitalsUpdate` is any subset of
an observation set (what a wearable sends), `VitalSigns` a complete set; `score` applies
the RCP chart and its clinical-risk thresholds.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict

Consciousness = Literal["A", "C", "V", "P", "U"]
Risk = Literal["low", "low-medium", "medium", "high"]
RISK_ORDER: dict[str, int] = {"low": 0, "low-medium": 1, "medium": 2, "high": 3}

# The scored parameters, in the chart's order (spo2_scale only picks the SpO2 chart).
PARAMETERS = ("respiration_rate", "spo2", "on_oxygen", "systolic_bp", "pulse",
              "consciousness", "temperature_c")

RespirationRate = Annotated[int, Field(ge=0, le=80, description="breaths per minute")]
SpO2 = Annotated[int, Field(ge=40, le=100, description="oxygen saturation, %")]
# scale 2 only for prescribed hypercapnic respiratory failure
SpO2Scale = Literal[1, 2]
OnOxygen = Annotated[bool, Field(description="supplemental oxygen (true) or air (false)")]
Systolic = Annotated[int, Field(ge=30, le=300, description="systolic blood pressure, mmHg")]
Pulse = Annotated[int, Field(ge=10, le=300, description="beats per minute")]
# the chart is drawn in tenths of a degree; 36.04 is read as 36.0
Temperature = Annotated[float, Field(ge=25.0, le=45.0, description="degrees Celsius"),
                        AfterValidator(lambda v: round(v, 1))]
ACVPU = Annotated[Consciousness, Field(description="ACVPU: alert, new confusion, voice, pain, unresponsive")]


class VitalsUpdate(TypedDict, total=False):
    """Any subset of an observation set; missing parameters are absent keys."""
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    respiration_rate: RespirationRate
    spo2: SpO2
    spo2_scale: SpO2Scale
    on_oxygen: OnOxygen
    systolic_bp: Systolic
    pulse: Pulse
    consciousness: ACVPU
    temperature_c: Temperature


_update = TypeAdapter(VitalsUpdate)


def validate_update(values: Mapping[str, object]) -> dict[str, object]:
    """The validated parameters (pydantic ValidationError on impossible values: SpO2 140)."""
    return _update.validate_python(values)


class VitalSigns(BaseModel):
    """A complete observation set: every scored parameter present."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    respiration_rate: RespirationRate
    spo2: SpO2
    spo2_scale: SpO2Scale = 1
    on_oxygen: OnOxygen
    systolic_bp: Systolic
    pulse: Pulse
    consciousness: ACVPU
    temperature_c: Temperature


@dataclasses.dataclass(frozen=True)
class News2Result:
    score: int
    risk: Risk
    parameters: dict[str, int]

    @property
    def alerting(self) -> bool:
        """A score of 5 or more, or 3 in any single parameter, needs a clinical response."""
        return self.risk != "low"

    def to_json(self) -> dict:
        return {"score": self.score, "risk": self.risk, "parameters": dict(self.parameters)}


def _band(value: float, bands: list[tuple[float, int]], above: int) -> int:
    """Points of the first band whose upper bound (inclusive) holds `value`."""
    for upper, points in bands:
        if value <= upper:
            return points
    return above


def respiration_points(rate: int) -> int:
    return _band(rate, [(8, 3), (11, 1), (20, 0), (24, 2)], 3)


def spo2_points(spo2: int, scale: int, on_oxygen: bool) -> int:
    if scale == 1:
        return _band(spo2, [(91, 3), (93, 2), (95, 1)], 0)
    if spo2 <= 92:
        return _band(spo2, [(83, 3), (85, 2), (87, 1)], 0)
    # scale 2 above 92%: on air it is the target range; on oxygen, too high is a risk
    if not on_oxygen:
        return 0
    return _band(spo2, [(94, 1), (96, 2)], 3)


def oxygen_points(on_oxygen: bool) -> int:
    return 2 if on_oxygen else 0


def systolic_points(systolic: int) -> int:
    return _band(systolic, [(90, 3), (100, 2), (110, 1), (219, 0)], 3)


def pulse_points(pulse: int) -> int:
    return _band(pulse, [(40, 3), (50, 1), (90, 0), (110, 1), (130, 2)], 3)


def consciousness_points(level: str) -> int:
    return 0 if level == "A" else 3


def temperature_points(celsius: float) -> int:
    return _band(round(celsius, 1), [(35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1)], 2)


def risk_of(total: int, parameters: dict[str, int], medium_score: int = 5,
            high_score: int = 7) -> Risk:
    """The risk band; the medium and high totals are the RCP's unless a service sets them."""
    if total >= high_score:
        return "high"
    if total >= medium_score:
        return "medium"
    if any(points == 3 for points in parameters.values()):
        return "low-medium"
    return "low"


def score(v: VitalSigns | Mapping[str, object], medium_score: int = 5,
          high_score: int = 7) -> News2Result:
    """NEWS2 of a complete set (a VitalSigns, or validated values as `complete` returns)."""
    v = v.__dict__ if isinstance(v, VitalSigns) else v
    parameters = {
        "respiration_rate": respiration_points(v["respiration_rate"]),
        "spo2": spo2_points(v["spo2"], v.get("spo2_scale") or 1, v["on_oxygen"]),
        "on_oxygen": oxygen_points(v["on_oxygen"]),
        "systolic_bp": systolic_points(v["systolic_bp"]),
        "pulse": pulse_points(v["pulse"]),
        "consciousness": consciousness_points(v["consciousness"]),
        "temperature_c": temperature_points(v["temperature_c"]),
    }
    total = sum(parameters.values())
    return News2Result(score=total, risk=risk_of(total, parameters, medium_score, high_score),
                       parameters=parameters)


def complete(values: Mapping[str, object]) -> bool:
    """Whether validated `values` hold every scored parameter."""
    return all(values.get(name) is not None for name in PARAMETERS)


# Minimum monitoring frequency by score (RCP 2017 chart 3), in minutes; 0 = continuous.
def monitoring_interval_minutes(result: News2Result) -> int:
    if result.score >= 7:
        return 0
    if result.score >= 5 or result.risk == "low-medium":
        return 60
    if result.score >= 1:
        return 4 * 60
    return 12 * 60
