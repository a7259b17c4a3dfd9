"""The fleet settings the operator writes for a CareRobotFleet's dispatcher (ConfigMap
`<fleet>-dispatch-fleet`, key fleet.json: the declared robots and the dispatch policy),
parsed (pure) and applied to the running fleet."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from medmec.workloads.settings_watch import parse_json


class DeclaredRobot(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    id: str = Field(min_length=1)
    home: str = Field(min_length=1)
    payload_kg: float = Field(gt=0, alias="payloadKg")
    speed_mps: float = Field(1.0, gt=0, alias="speedMps")
    capabilities: list[str] = []


class DispatchPolicy(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    emergency_preemption: bool = Field(True, alias="emergencyPreemption")
    heartbeat_timeout_s: float = Field(10.0, ge=1, le=600, alias="heartbeatTimeoutSeconds")


class FleetSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    robots: list[DeclaredRobot]
    dispatch_policy: DispatchPolicy = Field(default_factory=DispatchPolicy, alias="dispatchPolicy")


def parse(text: str) -> FleetSettings:
    """fleet.json as the operator renders it; ValueError naming the first bad field."""
    return parse_json(FleetSettings, text)


def apply(fleet, settings: FleetSettings) -> None:
    """What the running dispatcher takes over: the heartbeat timeout after which a silent
    robot goes offline and its tasks are re-planned. (The declared robots and
    emergencyPreemption are parsed for the planner; it does not act on them yet.)"""
    fleet.timeout = settings.dispatch_policy.heartbeat_timeout_s
