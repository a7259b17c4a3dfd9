"""gRPC side of the nursing service: the wearable vitals stream and the ward alert stream."""
from __future__ import annotations

import asyncio
import time

import grpc
from pydantic import ValidationError

from .context import READ, STREAM_VITALS, Context, Denied
from .news2 import validate_update
from .protos import nursing_pb2, nursing_pb2_grpc
from .records import Alert
from .tokens import Principal
from .vitals import AlertOverflow, Reading

_FIELDS = ("respiration_rate", "spo2", "on_oxygen", "systolic_bp", "pulse", "consciousness",
           "temperature_c")
# batches of one stream being committed while the next are read (acks stay in order)
_IN_FLIGHT = 8


def reading_values(msg: nursing_pb2.VitalReading) -> dict[str, object]:
    """The parameters a reading carries, validated (ValidationError on impossible values)."""
    present = {name: getattr(msg, name) for name in _FIELDS if msg.HasField(name)}
    return validate_update(present)


def alert_message(a: Alert) -> nursing_pb2.Alert:
    return nursing_pb2.Alert(
        alert_id=a.id, ward=a.ward, patient_id=a.patient_id, encounter_id=a.encounter_id,
        score=a.score, risk=a.risk, parameters=a.parameters,
        effective_time_ms=int(a.effective_at * 1000), raised_time_ms=int(a.raised_at * 1000))


class CloudNursingServicer(nursing_pb2_grpc.CloudNursingServicer):
    def __init__(self, ctx: Context):
        self.ctx = ctx

    async def _principal(self, context, roles: frozenset[str], ward: str | None = None) -> Principal:
        metadata = dict(context.invocation_metadata() or ())
        try:
            p = self.ctx.authenticate(metadata.get("authorization"))
            self.ctx.authorize(p, roles, ward)
            return p
        except Denied as err:
            code = grpc.StatusCode.UNAUTHENTICATED if err.status == 401 else \
                grpc.StatusCode.PERMISSION_DENIED
            await context.abort(code, str(err))

    def _readings(self, p: Principal, batch: nursing_pb2.VitalBatch, now: float):
        readings, rejected = [], []
        for msg in batch.readings:
            if not msg.reading_id or not msg.patient_id:
                rejected.append(nursing_pb2.Rejection(
                    reading_id=msg.reading_id, reason="reading_id and patient_id are required"))
                continue
            try:
                values = reading_values(msg)
            except ValidationError as err:
                rejected.append(nursing_pb2.Rejection(reading_id=msg.reading_id, reason="; ".join(
                    f"{e['loc'][0]}: {e['msg']}" for e in err.errors())))
                continue
            if not values:
                rejected.append(nursing_pb2.Rejection(reading_id=msg.reading_id,
                                                      reason="the reading carries no vital sign"))
                continue
            at = msg.effective_time_ms / 1000 if msg.effective_time_ms else now
            readings.append(Reading(p.subject, p.ward, msg.reading_id, msg.patient_id, at, values))
        return readings, rejected

    async def StreamVitals(self, request_iterator, context):
        p = await self._principal(context, STREAM_VITALS)
        pending: asyncio.Queue = asyncio.Queue(_IN_FLIGHT)

        async def read_batches():
            try:
                async for batch in request_iterator:
                    readings, rejected = self._readings(p, batch, time.time())
                    await pending.put((len(batch.readings), rejected,
                                       self.ctx.pipeline.enqueue(readings)))
            finally:
                await pending.put(None)

        reader = asyncio.create_task(read_batches())
        handled = 0
        try:
            while (item := await pending.get()) is not None:
                count, rejected, future = item
                try:
                    outcomes = await future
                except Exception:
                    await context.abort(grpc.StatusCode.UNAVAILABLE,
                                        "the database refused the readings; resend from the last ack")
                rejected += [nursing_pb2.Rejection(reading_id=o.reading.reading_id, reason=o.error)
                             for o in outcomes if o.error]
                handled += count
                yield nursing_pb2.IngestAck(handled=handled, rejected=rejected)
            await reader  # a broken client stream surfaces here
        finally:
            reader.cancel()

    async def WatchAlerts(self, request, context):
        await self._principal(context, READ, request.ward)
        if request.ward not in self.ctx.wards:
            await context.abort(grpc.StatusCode.NOT_FOUND, "this service does not serve that ward")
        sub = self.ctx.hub.subscribe(request.ward)
        try:
            # initial metadata tells the client that it is subscribed from now on
            await context.send_initial_metadata(())
            while True:
                try:
                    alert = await sub.get()
                except AlertOverflow:
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        "too slow to keep up: list open alerts and resubscribe")
                yield alert_message(alert)
        finally:
            self.ctx.hub.unsubscribe(request.ward, sub)
