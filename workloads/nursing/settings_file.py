"""The settings the operator writes for a CloudNursingService (ConfigMap
`<service>-nursing-settings`, key nursing.json: wards and early-warning thresholds), parsed
(pure); the vitals pipeline scores with the thresholds in force."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medmec.workloads.settings_watch import parse_json


class EarlyWarning(BaseModel):
    """NEWS2 totals from which a patient's risk is medium and high (RCP 2017: 5 and 7)."""
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)
    medium_score: int = Field(5, ge=1, le=20, alias="mediumScore")
    high_score: int = Field(7, ge=1, le=20, alias="highScore")

    @model_validator(mode="after")
    def _ordered(self) -> "EarlyWarning":
        if self.high_score <= self.medium_score:
            raise ValueError(f"highScore ({self.high_score}) must be above mediumScore "
                             f"({self.medium_score})")
        return self


class NursingSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    wards: list[dict] = []
    early_warning: EarlyWarning = Field(default_factory=EarlyWarning, alias="earlyWarning")


def parse(text: str) -> NursingSettings:
    """nursing.json as the operator renders it; ValueError naming the first bad field."""
    return parse_json(NursingSettings, text)