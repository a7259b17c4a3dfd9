"""The planner's input: a hospital map, robots and delivery tasks (the scenario JSON format).

Structural problems (a malformed document, duplicate ids, an edge or robot on an unknown
node) make the whole scenario invalid. Problems of one task (unknown node, too heavy, a
deadline before its release) are not structural: the planner reports them per task.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Priority = Literal["emergency", "high", "normal"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Node(_Strict):
    id: str = Field(min_length=1)
    floor: int
    x: float
    y: float


class Edge(_Strict):
    from_: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)
    length_m: float = Field(gt=0)
    single_lane: bool = False


class Lift(_Strict):
    id: str = Field(min_length=1)
    nodes: list[str] = Field(min_length=2, description="the lift's landing node on each floor")
    capacity: int = Field(ge=1)
    floor_travel_s: float = Field(gt=0)


# what one plan takes: beyond this a scenario is refused (planning time and memory grow
# with the tasks; a service re-plans its open tasks, never more than this)
MAX_TASKS = 10_000
MAX_ROBOTS = 1_000


class HospitalMap(_Strict):
    nodes: list[Node] = Field(min_length=1)
    edges: list[Edge] = []
    lifts: list[Lift] = []
    speed_limit_mps: float | None = Field(None, gt=0, description="no robot may go faster")

    @model_validator(mode="after")
    def _references(self) -> HospitalMap:
        ids = [n.id for n in self.nodes]
        _unique("node", ids)
        known = {n.id: n for n in self.nodes}
        for e in self.edges:
            for end in (e.from_, e.to):
                if end not in known:
                    raise ValueError(f"edge {e.from_}->{e.to} names unknown node {end!r}")
            if e.from_ == e.to:
                raise ValueError(f"edge {e.from_}->{e.to} is a loop")
        _unique("lift", [lift.id for lift in self.lifts])
        for lift in self.lifts:
            for n in lift.nodes:
                if n not in known:
                    raise ValueError(f"lift {lift.id} names unknown node {n!r}")
            floors = [known[n].floor for n in lift.nodes]
            if len(set(floors)) != len(floors):
                raise ValueError(f"lift {lift.id} has two landings on one floor")
        linked = {e.from_ for e in self.edges} | {e.to for e in self.edges}
        for lift in self.lifts:
            for n in lift.nodes:
                if n not in linked:
                    raise ValueError(f"lift {lift.id} stops at {n!r} on floor {known[n].floor}, "
                                     "which no corridor reaches (a floor the map lacks)")
        return self


class Robot(_Strict):
    id: str = Field(min_length=1)
    start: str = Field(min_length=1)
    speed_mps: float = Field(gt=0)
    payload_kg: float = Field(ge=0)
    capabilities: list[str] = []


class Task(_Strict):
    id: str = Field(min_length=1)
    pickup: str = Field(min_length=1)
    dropoff: str = Field(min_length=1)
    weight_kg: float = Field(ge=0)
    kind: str = Field(min_length=1)
    priority: Priority = "normal"
    release_s: float = Field(0.0, ge=0)
    deadline_s: float | None = None


class Scenario(_Strict):
    map: HospitalMap
    robots: list[Robot] = Field([], max_length=MAX_ROBOTS)
    tasks: list[Task] = Field([], max_length=MAX_TASKS)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        _unique("robot", [r.id for r in self.robots])
        _unique("task", [t.id for t in self.tasks])
        known = {n.id for n in self.map.nodes}
        for r in self.robots:
            if r.start not in known:
                raise ValueError(f"robot {r.id} starts on unknown node {r.start!r}")
        _unique("robot start", [r.start for r in self.robots])
        limit = self.map.speed_limit_mps
        for r in self.robots:
            if limit is not None and r.speed_mps > limit:
                raise ValueError(f"robot {r.id} goes {r.speed_mps:g} m/s, faster than the "
                                 f"corridors allow ({limit:g} m/s)")
        return self


def _unique(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"duplicate {what} id {i!r}")
        seen.add(i)


class ScenarioError(ValueError):
    """The scenario document is malformed; the message names what is wrong."""


def load_scenario(text: str) -> Scenario:
    return _parse(Scenario, text)


def load_map(text: str) -> HospitalMap:
    return _parse(HospitalMap, text)


def _parse(model, text: str):
    try:
        return model.model_validate_json(text)
    except ValidationError as err:
        raise ScenarioError(_describe(err)) from None


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "document"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {msg}")
    return "; ".join(lines)
