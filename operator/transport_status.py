"""An EmergencyTransport's live figures (serving base station, the edge site holding the
session, NEWS2 score and trend, ETA and the expected arrival it points at) and its Following / PreArrivalSent conditions, read
from its mobility service's `GET /v1/transports/{vehicle}` through the transport's Service.

`fields` is pure; `live_status` is the thin I/O layer the operator calls on each status
refresh. When the mobility service cannot be read the figures are unset, not guessed.
"""
from __future__ import annotations

import datetime

from pydantic import AwareDatetime, BaseModel, ValidationError

from medmec.operator import render_transport
from medmec.operator.conditions import condition
from medmec.operator.live_view import LiveView
from medmec.operator.settings import OperatorSettings

VIEW = LiveView(condition="MobilityReachable",
                figures=("servingBaseStation", "edgeSite", "news2", "etaSeconds", "expectedArrival",
                         "openAlerts", "moves"),
                unreachable="MobilityUnreachable", bad="BadTransportView",
                read_ok="TransportViewRead")
# the mobility service's own conditions the resource shows
PASSED_ON = ("Following", "PreArrivalSent", "Arrived")


class _Condition(BaseModel):
    type: str
    status: str
    reason: str
    message: str = ""


class _News2(BaseModel):
    score: int
    risk: str
    trend: str


class _View(BaseModel):
    servingBaseStation: str
    edgeSite: str
    news2: _News2 | None = None
    etaSeconds: int | None = None
    expectedArrival: AwareDatetime | None = None
    openAlerts: list[dict] = []
    moves: int = 0
    conditions: list[_Condition]


def fields(view: dict) -> dict:
    """Status fields and conditions from the mobility service's transport view;
    ValueError if it is not one."""
    try:
        v = _View.model_validate(view)
    except ValidationError as err:
        first = err.errors()[0]
        raise ValueError(f"not a transport view: {first['loc']} {first['msg']}") from None
    return {"servingBaseStation": v.servingBaseStation, "edgeSite": v.edgeSite,
            "news2": v.news2.model_dump() if v.news2 else None, "etaSeconds": v.etaSeconds,
            "expectedArrival": v.expectedArrival.astimezone(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ") if v.expectedArrival else None,
            "openAlerts": len(v.openAlerts), "moves": v.moves,
            "conditions": [condition(c.type, c.status == "True", c.reason, c.message)
                           for c in v.conditions if c.type in PASSED_ON]}


def transport_url(template: str, et: dict) -> str:
    md = et["metadata"]
    return template.format(name=md["name"], namespace=md["namespace"],
                           service=render_transport.mobility_name(et),
                           port=render_transport.MOBILITY_PORT, vehicle=et["spec"]["vehicle"]["id"])


def live_status(et: dict, settings: OperatorSettings, deployed: bool) -> dict:
    if not deployed:
        return VIEW.unknown("NotDeployed", "no mobility service while the transport is not deployed")
    return VIEW.read(transport_url(settings.transport_url_template, et),
                     settings.fleet_timeout_seconds, fields)
