"""An emulated ambulance for tests, the benchmark and the demo: its monitor streams vitals to
the site that holds its session, and its drive along a route reports each serving-cell change
to the mobility service the way the radio side would.

The monitor keeps every sample until a site acknowledges it: after a redirect, a broken
stream or a site that restarts it resends from the last acknowledgement, so nothing is lost;
the sites' shared cursor makes each resent sample count once.
"""
from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import time
from collections.abc import Awaitable, Callable

import grpc
import httpx

from .edge import CHANNEL_OPTIONS
from .protos import mobilecare_pb2 as pb
from .protos import mobilecare_pb2_grpc as pb_grpc

CHANNELS = ("pulse", "spo2", "respiration_rate", "systolic_bp", "temperature_c", "consciousness",
            "on_oxygen")
Resolve = Callable[[], Awaitable[pb.Site]]


def vitals_at(channel: str, progress: float, rng: random.Random):
    """A patient who deteriorates over the drive (`progress` 0..1): NEWS2 climbs from 1-2 to
    the high band, so alerts are raised on the way."""
    p = min(max(progress, 0.0), 1.0)
    return {
        "pulse": int(92 + 45 * p + rng.randint(-2, 2)),
        "spo2": int(97 - 9 * p + rng.randint(-1, 0)),
        "respiration_rate": int(18 + 9 * p),
        "systolic_bp": int(122 - 30 * p),
        "temperature_c": round(37.2 + 1.6 * p, 1),
        "consciousness": "A" if p < 0.8 else "C",
        "on_oxygen": False,
    }[channel]


@dataclasses.dataclass
class AckEvent:
    at: float
    site: str
    committed_through: int
    oldest_s: float  # how long the oldest sample this ack covered had waited for it


class Monitor:
    """The ambulance's patient monitor: samples at `rate_hz` per channel, channels staggered."""

    def __init__(self, session_id: str, resolve: Resolve, rate_hz: float = 1.0, seed: int = 0,
                 eta: Callable[[], int] | None = None, dial: Callable[[str], str] = str):
        self.session_id, self.resolve, self.rate_hz = session_id, resolve, rate_hz
        self.dial = dial  # a site's target as the sites name it -> the address to connect to
        self.rng = random.Random(seed)
        self.eta = eta
        self.pending: list[pb.Sample] = []  # produced, not yet acknowledged
        self.produced = self.acked = 0
        self.acks: list[AckEvent] = []  # acks that moved the cursor
        self.rejected: list[tuple[int, str]] = []
        self.positions_ignored: list[str] = []  # why the site did not take a reported position
        self.sent_at: dict[int, float] = {}
        self.latencies: list[float] = []  # sample produced -> acknowledged, seconds
        self.errors: list[str] = []
        self.site: pb.Site | None = None
        self.closed = False
        self._new = asyncio.Event()
        self._channels: dict[str, grpc.aio.Channel] = {}
        self.progress = 0.0

    def add(self, channel: str, value) -> int:
        """Produce one sample now (also used by tests to send chosen, even wrong, values)."""
        self.produced += 1
        sample = pb.Sample(seq=self.produced, effective_time_ms=int(time.time() * 1000),
                           **{channel: value})
        self.pending.append(sample)
        self.sent_at[sample.seq] = time.perf_counter()
        self._new.set()
        return sample.seq

    async def produce(self, duration_s: float) -> None:
        """Sample every channel at rate_hz for `duration_s`, the channels spread over the period."""
        step = 1 / (self.rate_hz * len(CHANNELS))
        start = time.perf_counter()
        i = 0
        while (elapsed := time.perf_counter() - start) < duration_s:
            self.progress = elapsed / duration_s
            channel = CHANNELS[i % len(CHANNELS)]
            self.add(channel, vitals_at(channel, self.progress, self.rng))
            i += 1
            await asyncio.sleep(max(0.0, start + i * step - time.perf_counter()))

    def channel(self, target: str) -> grpc.aio.Channel:
        if target not in self._channels:
            self._channels[target] = grpc.aio.insecure_channel(self.dial(target), CHANNEL_OPTIONS)
        return self._channels[target]

    async def run(self, done: asyncio.Event, max_backoff_s: float = 0.5) -> None:
        """Stream until `done` is set and everything produced is acknowledged (or the
        session is closed)."""
        backoff = 0.02
        while not self.closed and not (done.is_set() and self.acked >= self.produced):
            if self.site is None:
                try:
                    self.site = await self.resolve()
                except Exception as err:  # the mobility service is away: keep the samples
                    self.errors.append(f"resolve: {type(err).__name__}")
                    await asyncio.sleep(backoff)
                    backoff = min(2 * backoff, max_backoff_s)
                    continue
            try:
                if await self._connection(done):
                    backoff = 0.02
            except grpc.aio.AioRpcError as err:
                self.errors.append(f"{self.site.name}: {err.code().name}: {err.details()}")
                if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    self.closed = True
                    break
                self.site = None  # ask the mobility service where the session is now
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, max_backoff_s)
        for ch in self._channels.values():
            await ch.close()

    async def _connection(self, done: asyncio.Event) -> bool:
        """One stream to self.site; True when it ended with a redirect (or all acked)."""
        site = self.site
        call = pb_grpc.EdgeSessionStub(self.channel(site.target)).StreamSamples()
        sent = self.acked

        async def write() -> None:
            try:
                await write_all()
            except (asyncio.InvalidStateError, grpc.aio.AioRpcError):
                pass  # the stream ended (a redirect, a failure): the reading side handles it

        async def write_all() -> None:
            nonlocal sent
            while True:
                batch = [s for s in self.pending if s.seq > sent]
                if batch:
                    msg = pb.SampleBatch(session_id=self.session_id, samples=batch)
                    if self.eta:
                        msg.position.CopyFrom(pb.Position(eta_s=self.eta()))
                    await call.write(msg)
                    sent = batch[-1].seq
                    continue
                if done.is_set() and self.acked >= self.produced:
                    await call.done_writing()
                    return
                self._new.clear()
                try:
                    await asyncio.wait_for(self._new.wait(), 0.1)
                except asyncio.TimeoutError:
                    pass

        writer = asyncio.create_task(write())
        try:
            async for ack in call:
                now = time.perf_counter()
                if ack.committed_through > self.acked:
                    waited = [now - self.sent_at.pop(seq, now)
                              for seq in range(self.acked + 1, ack.committed_through + 1)]
                    self.latencies += waited
                    self.acks.append(AckEvent(now, site.name, ack.committed_through, max(waited)))
                    self.acked = ack.committed_through
                    self.pending = [s for s in self.pending if s.seq > self.acked]
                self.rejected += [(r.seq, r.reason) for r in ack.rejected]
                if ack.position_ignored:
                    self.positions_ignored.append(ack.position_ignored)
                if ack.rejected and ack.rejected[-1].reason.startswith("out of order"):
                    sent = self.acked  # resend from the cursor
                    self._new.set()
                if ack.HasField("prepared"):
                    self.channel(ack.prepared.target)  # connects in the background
                if ack.HasField("redirect"):
                    self.site = pb.Site(name=ack.redirect.name, target=ack.redirect.target)
                    return True
                if done.is_set() and self.acked >= self.produced:
                    break
            return True
        finally:
            writer.cancel()
            call.cancel()

    def switchovers(self) -> list[float]:
        """Seconds from the last ack of one site to the first ack of the next, per move."""
        return [b.at - a.at for a, b in zip(self.acks, self.acks[1:]) if a.site != b.site]

    def move_delays(self) -> list[float]:
        """Per move, how long the oldest sample first acknowledged by the new site waited
        (produced to acknowledged): what the move cost a sample, without the gap between
        samples that the switchover includes."""
        return [b.oldest_s for a, b in zip(self.acks, self.acks[1:]) if a.site != b.site]


def resolver(mobility_url: str, session_id: str, client: httpx.AsyncClient) -> Resolve:
    """Ask the mobility service which site holds the session."""
    async def resolve() -> pb.Site:
        rsp = await client.get(f"{mobility_url}/v1/sessions/{session_id}/site", timeout=5)
        rsp.raise_for_status()
        body = rsp.json()
        return pb.Site(name=body["name"], target=body["target"])
    return resolve


def cell_change(vehicle: str, source: str | None, target: str, status: str = "COMPLETED") -> dict:
    """The MEC 012-shaped notification the radio side posts."""
    now = time.time()
    return {"notificationType": "CellChangeNotification",
            "timeStamp": {"seconds": int(now), "nanoSeconds": int((now % 1) * 1e9)},
            "associateId": [{"type": "VEHICLE_ID", "value": vehicle}], "hoStatus": status,
            **({"srcEcgi": {"cellId": source}} if source else {}),
            "trgEcgi": [{"cellId": target}]}


async def drive(mobility_url: str, vehicle: str, route: list[str], dwell_s: float,
                client: httpx.AsyncClient, laps: int = 1) -> list[dict]:
    """Drive the route (`laps` times, there and back), `dwell_s` on each base station; the
    answers of the mobility service to each COMPLETED handover."""
    stops = list(route)
    for _ in range(laps - 1):
        stops += list(reversed(stops[-len(route):]))[1:]
    answers = []
    for previous, current in zip(stops, stops[1:]):
        await asyncio.sleep(dwell_s)
        rsp = await client.post(f"{mobility_url}/v1/notifications/cell-change",
                                json=cell_change(vehicle, previous, current), timeout=10)
        answers.append({"status": rsp.status_code, **rsp.json()})
    return answers


def eta_countdown(total_s: float) -> Callable[[], int]:
    start = time.monotonic()
    return lambda: max(0, math.ceil(total_s - (time.monotonic() - start)))
