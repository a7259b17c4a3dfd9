"""A CareRobotFleet's live figures (robots online, tasks queued / active), read from its
dispatcher's `GET /v1/fleet` through the fleet's Service.

The counting is pure (`counts`); `live_status` is the thin I/O layer the operator calls on
each status refresh. When the dispatcher cannot be read the figures are left unset, not
zero: zero robots online is a fact, an unreachable dispatcher is not knowing.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ValidationError

from medmec.operator import render_fleet
from medmec.operator.live_view import LiveView
from medmec.operator.settings import OperatorSettings

VIEW = LiveView(condition="DispatcherReachable",
                figures=("robotsOnline", "tasksQueued", "tasksActive"),
                unreachable="DispatcherUnreachable", bad="BadFleetView", read_ok="FleetViewRead")
# waiting for a robot (pending) or in a robot's queue (assigned): queued; on board: active
QUEUED, ACTIVE = {"pending", "assigned"}, {"picked_up"}


class _Robot(BaseModel):
    state: Literal["available", "fault", "offline"]


class _Task(BaseModel):
    status: str


class _FleetView(BaseModel):
    robots: list[_Robot]
    tasks: list[_Task]


def counts(view: dict) -> dict[str, int]:
    """robotsOnline (heart-beating robots, faulted ones included: they are connected),
    tasksQueued and tasksActive from the dispatcher's fleet view; ValueError if it is not one."""
    try:
        fleet = _FleetView.model_validate(view)
    except ValidationError as err:
        first = err.errors()[0]
        raise ValueError(f"not a fleet view: {first['loc']} {first['msg']}") from None
    return {"robotsOnline": sum(r.state != "offline" for r in fleet.robots),
            "tasksQueued": sum(t.status in QUEUED for t in fleet.tasks),
            "tasksActive": sum(t.status in ACTIVE for t in fleet.tasks)}


def fleet_url(template: str, crf: dict) -> str:
    md = crf["metadata"]
    return template.format(name=md["name"], namespace=md["namespace"],
                           service=render_fleet.child_name(crf), port=render_fleet.HTTP_PORT)


def live_status(crf: dict, settings: OperatorSettings, deployed: bool) -> dict:
    """The live figures and a DispatcherReachable condition, as status fields (None = unset)."""
    if not deployed:
        return VIEW.unknown("NotDeployed", "no dispatcher while the fleet is not deployed")
    return VIEW.read(fleet_url(settings.fleet_url_template, crf), settings.fleet_timeout_seconds,
                     counts)
