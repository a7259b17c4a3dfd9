"""Vitals ingestion: merge readings into complete sets, score NEWS2, raise alerts, commit.

Wearables send parts of an observation set (pulse and SpO2 every second, blood pressure
now and then); a patient's current set is the newest value of each parameter measured
within `max_age_s`. Each reading that leaves the set complete is scored. An alert is
raised when the clinical risk climbs into an alerting band (low-medium, medium, high),
so a deteriorating patient raises one alert per escalation, not one per reading.

One writer task takes what every stream and request submitted, scores it in order and
commits it in one transaction (group commit), scoring the next group while the last one
is being committed; only after the commit are the submitters answered and the alerts
published. Nothing is acknowledged before it is durable.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import time
import uuid

from opentelemetry import metrics

from .news2 import RISK_ORDER, News2Result, complete, score
from .records import Alert, Encounter
from .store import Repository

_ALERT_NAMESPACE = uuid.UUID("0e7f6b52-8a53-4c1c-9d0e-5b3f4c6a9d21")
_meter = metrics.get_meter("medmec.nursing")
_readings_counter = _meter.create_counter(
    "medmec.nursing.readings", unit="{reading}", description="vitals readings handled, by outcome")
_alerts_counter = _meter.create_counter(
    "medmec.nursing.alerts", unit="{alert}", description="NEWS2 alerts raised, by risk")
_commit_duration = _meter.create_histogram(
    "medmec.nursing.commit.duration", unit="s",
    description="one group commit of readings and the alerts they raised")
# a device clock this far ahead of ours is wrong; its readings would outrank real ones
_MAX_CLOCK_SKEW_S = 300


@dataclasses.dataclass(frozen=True)
class Reading:
    source: str  # subject of the credential that sent it
    ward_scope: str  # the sender's ward ("*" for every ward)
    reading_id: str
    patient_id: str
    effective_at: float
    values: dict[str, object]  # validated parameters (news2.validate_update)


@dataclasses.dataclass(frozen=True)
class Outcome:
    reading: Reading
    error: str | None = None
    status: int = 200  # an HTTP status for a refused reading: 404 unknown patient, 422 bad
    encounter: Encounter | None = None
    result: News2Result | None = None
    alert: Alert | None = None


@dataclasses.dataclass
class _PatientState:
    encounter: Encounter
    latest: dict[str, tuple[object, float]]  # parameter -> (value, measured at)
    last_risk: str | None


def merge(latest: dict[str, tuple[object, float]], values: dict[str, object], at: float,
          max_age_s: float) -> dict[str, tuple[object, float]]:
    """The newest value of each parameter, dropping those measured over `max_age_s` before `at`."""
    merged = {k: v for k, v in latest.items() if v[1] >= at - max_age_s}
    for name, value in values.items():
        if name not in merged or merged[name][1] <= at:
            merged[name] = (value, at)
    return merged


def escalates(previous: str | None, result: News2Result) -> bool:
    return result.alerting and RISK_ORDER[result.risk] > RISK_ORDER.get(previous or "low", 0)


class AlertOverflow(Exception):
    """A subscriber fell too far behind; it should re-list open alerts and resubscribe."""


class _Subscription:
    def __init__(self, limit: int):
        self.queue: asyncio.Queue[Alert] = asyncio.Queue(limit)
        self.overflowed = False

    async def get(self) -> Alert:
        if self.overflowed and self.queue.empty():
            raise AlertOverflow("alert subscriber fell behind")
        return await self.queue.get()


class AlertHub:
    """Fan-out of raised alerts to the subscribers of each ward."""

    def __init__(self, limit: int = 10000):
        self._subs: dict[str, set[_Subscription]] = collections.defaultdict(set)
        self._limit = limit

    def subscribe(self, ward: str) -> _Subscription:
        sub = _Subscription(self._limit)
        self._subs[ward].add(sub)
        return sub

    def unsubscribe(self, ward: str, sub: _Subscription) -> None:
        self._subs[ward].discard(sub)

    def publish(self, alert: Alert) -> None:
        for sub in list(self._subs.get(alert.ward, ())):
            try:
                sub.queue.put_nowait(alert)
            except asyncio.QueueFull:
                sub.overflowed = True


@dataclasses.dataclass
class _Group:
    """Readings taken together, scored, waiting to be committed in one transaction."""
    jobs: list[tuple[list[Reading], asyncio.Future]]
    outcomes: list[Outcome]
    rows: list[tuple]
    alerts: list[Alert]


def _fail(jobs: list[tuple[list[Reading], asyncio.Future]], err: Exception) -> None:
    for _, future in jobs:
        if not future.done():
            future.set_exception(err)


class VitalsPipeline:
    def __init__(self, repo: Repository, hub: AlertHub, max_age_s: float = 3600,
                 max_batch: int = 5000):
        self.repo, self.hub = repo, hub
        self.max_age_s, self.max_batch = max_age_s, max_batch
        self._queue: asyncio.Queue[tuple[list[Reading], asyncio.Future]] = asyncio.Queue()
        self._states: dict[str, _PatientState] = {}

    def enqueue(self, readings: list[Reading]) -> asyncio.Future:
        """A future of the outcomes of `readings`, set once they (and any alert they
        raised) are committed. Batches are committed in the order they were enqueued."""
        future = asyncio.get_running_loop().create_future()
        if readings:
            self._queue.put_nowait((readings, future))
        else:
            future.set_result([])
        return future

    async def submit(self, readings: list[Reading]) -> list[Outcome]:
        return await self.enqueue(readings)

    def forget(self, patient_id: str) -> None:
        """Drop a patient's cached state (their admission changed)."""
        self._states.pop(patient_id, None)

    async def run(self) -> None:
        committing: asyncio.Task | None = None
        while True:
            jobs = [await self._queue.get()]
            count = len(jobs[0][0])
            while count < self.max_batch and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
                count += len(jobs[-1][0])
            try:
                group = await self._prepare(jobs)
            except Exception as err:  # patient state could not be read: nobody is acknowledged
                _fail(jobs, err)
                continue
            # this group was scored while the previous one was being committed; commits
            # (and so acknowledgements) stay in submission order
            if committing is not None:
                await committing
            committing = asyncio.create_task(self._commit(group))

    def _load(self, patient_ids: set[str]) -> None:
        for pid in patient_ids:
            enc = self.repo.latest_encounter(pid)
            if enc is None or not enc.admitted:
                continue
            latest = self.repo.latest_values(enc.id, time.time() - self.max_age_s)
            last = self.repo.last_scores([enc.id]).get(enc.id)
            self._states[pid] = _PatientState(enc, latest, last.result.risk if last else None)

    async def _prepare(self, jobs: list[tuple[list[Reading], asyncio.Future]]) -> _Group:
        readings = [r for batch, _ in jobs for r in batch]
        missing = {r.patient_id for r in readings} - self._states.keys()
        if missing:
            await asyncio.to_thread(self._load, missing)
        now = time.time()
        group = _Group(jobs, [], [], [])
        for r in readings:
            outcome = self._apply(r, now)
            group.outcomes.append(outcome)
            if outcome.error is None:
                group.rows.append(row_of(r, outcome, now))
                if outcome.alert is not None:
                    group.alerts.append(outcome.alert)
        return group

    async def _commit(self, group: _Group) -> None:
        started = time.perf_counter()
        try:
            await asyncio.to_thread(self.repo.write_readings, group.rows, group.alerts)
        except Exception as err:  # the database refused: nobody is acknowledged
            # the cached state ran ahead of the database: rebuild it from what is stored
            self._states.clear()
            _fail(group.jobs, err)
            return
        _commit_duration.record(time.perf_counter() - started)
        _readings_counter.add(len(group.rows), {"outcome": "stored"})
        if len(group.outcomes) > len(group.rows):
            _readings_counter.add(len(group.outcomes) - len(group.rows), {"outcome": "rejected"})
        start = 0
        for readings, future in group.jobs:
            if not future.done():
                future.set_result(group.outcomes[start:start + len(readings)])
            start += len(readings)
        for alert in group.alerts:
            _alerts_counter.add(1, {"risk": alert.risk})
            self.hub.publish(alert)

    def _apply(self, r: Reading, now: float) -> Outcome:
        state = self._states.get(r.patient_id)
        if state is None or not (r.ward_scope in ("*", state.encounter.ward)):
            return Outcome(r, error="no admitted patient with this id in your ward", status=404)
        if r.effective_at > now + _MAX_CLOCK_SKEW_S:
            return Outcome(r, error="the measurement time is in the future", status=422)
        enc = state.encounter
        state.latest = merge(state.latest, r.values, r.effective_at, self.max_age_s)
        current = {k: v for k, (v, _) in state.latest.items()}
        current["spo2_scale"] = enc.spo2_scale
        if not complete(current):
            return Outcome(r, encounter=enc)
        result = score(current)
        alert = None
        if escalates(state.last_risk, result):
            alert = Alert(id=str(uuid.uuid5(_ALERT_NAMESPACE, f"{r.source}/{r.reading_id}")),
                          ward=enc.ward, patient_id=enc.patient_id, encounter_id=enc.id,
                          score=result.score, risk=result.risk, parameters=result.parameters,
                          effective_at=r.effective_at, raised_at=now)
        state.last_risk = result.risk
        return Outcome(r, encounter=enc, result=result, alert=alert)


def row_of(r: Reading, o: Outcome, now: float) -> tuple:
    """The OBSERVATION_COLUMNS row of an accepted reading."""
    v, enc, res = r.values, o.encounter, o.result
    on_oxygen = v.get("on_oxygen")
    return (r.source, r.reading_id, enc.id, r.patient_id, enc.ward, r.effective_at, now,
            v.get("respiration_rate"), v.get("spo2"), enc.spo2_scale,
            None if on_oxygen is None else int(on_oxygen), v.get("systolic_bp"), v.get("pulse"),
            v.get("consciousness"), v.get("temperature_c"),
            None if res is None else res.score, None if res is None else res.risk,
            None if res is None else json.dumps(res.parameters))
