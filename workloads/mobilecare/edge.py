"""One edge site's session service (`medmec serve mobilecare-edge`): takes an ambulance's
samples, scores them, and hands a session over to another site when the mobility service
says so.

A move, run by the source for the mobility service (Relocate):
  1. under the session's lock (no batch is committed meanwhile) the session becomes
     `moving`, durably, naming the move and the target;
  2. the context is sealed (AES-256-GCM) and sent to the target (ImportSession), which
     stores it durably as `active` before it answers;
  3. the source then marks the session `released` (durably, with the target), tells the
     device streams to go there (an ack with `redirect`), and answers the mobility service.
If the target refuses or cannot be reached, the session is `active` here again (rolled
back) and the device never noticed. A source that dies in step 2 finds the session
`moving` when it starts again and asks the target whether it took it (same move id):
`released` if so, else `active`. Only an `active` session commits samples, and the
context's cursor says where the next site takes over, so a sample is stored once, at one site.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import signal
import time
import uuid
from pathlib import Path

import grpc

from medmec import telemetry
from medmec.workloads.nursing.protos import nursing_pb2, nursing_pb2_grpc

from . import context as contexts
from .context import ContextError, SessionContext
from .protos import mobilecare_pb2 as pb
from .protos import mobilecare_pb2_grpc as pb_grpc
from .store import Store

log = logging.getLogger("medmec.mobilecare.edge")
_FIELDS = contexts.PARAMETERS
IMPORT_TIMEOUT_S = 3.0
RESOLVE_RETRY_S = 1.0
FORWARD_EVERY_S = 0.2
CONNECT_WAIT_S = 1.0
# a site that was down is tried again within a second of coming back (gRPC's default
# reconnect backoff grows to two minutes, during which a move to it would fail at once)
CHANNEL_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000))


@dataclasses.dataclass
class Session:
    ctx: SessionContext
    state: str  # active | moving | released | closed
    move_id: str = ""
    moved_to: pb.Site | None = None
    prepared: pb.Site | None = None
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    streams: set = dataclasses.field(default_factory=set)  # ack queues of attached devices


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Ends a device's stream with this status."""
    code: grpc.StatusCode
    message: str


CLOSED = Refusal(grpc.StatusCode.FAILED_PRECONDITION, "the session is closed (arrived)")


def sample_values(s: pb.Sample) -> dict:
    return {name: getattr(s, name) for name in _FIELDS if s.HasField(name)}


class EdgeSessions(pb_grpc.EdgeSessionServicer):
    def __init__(self, site: str, store: Store, key: bytes, max_sessions: int,
                 nursing_token: str | None = None):
        self.site, self.store, self.key = site, store, key
        self.max_sessions, self.nursing_token = max_sessions, nursing_token
        self.sessions: dict[str, Session] = {}
        self.reserved: set[str] = set()
        self.channels: dict[str, grpc.aio.Channel] = {}

    # ---- start-up ---------------------------------------------------------------------------

    async def load(self) -> None:
        """Sessions from the store; those caught in a move are resolved with their target."""
        for row in await asyncio.to_thread(self.store.sessions):
            moved_to = pb.Site(name=row.moved_to_name, target=row.moved_to_target) \
                if row.moved_to_target else None
            self.sessions[row.session_id] = Session(SessionContext.from_json(row.context), row.state,
                                                    row.move_id, moved_to)
        for sid, s in self.sessions.items():
            if s.state == "moving":
                asyncio.create_task(self._resolve_in_doubt(sid))

    async def _resolve_in_doubt(self, session_id: str) -> None:
        s = self.sessions[session_id]
        async with s.lock:
            while True:
                try:
                    view = await self._stub(s.moved_to.target).GetSession(
                        pb.SessionRef(session_id=session_id), timeout=2)
                    took_it = view.move_id == s.move_id and view.state != "closed"
                except grpc.aio.AioRpcError as err:
                    if err.code() == grpc.StatusCode.NOT_FOUND:
                        took_it = False
                    else:  # cannot tell yet: stay `moving` (commit nothing) and ask again
                        await asyncio.sleep(RESOLVE_RETRY_S)
                        continue
                break
            await self._set_state(s, "released" if took_it else "active",
                                  s.move_id, s.moved_to if took_it else None)
            log.info("session %s: in-doubt move %s %s", session_id, s.move_id,
                     "completed" if took_it else "rolled back")
            if took_it:
                self._redirect_streams(s)

    # ---- helpers ------------------------------------------------------------------------------

    def _channel(self, target: str) -> grpc.aio.Channel:
        """One channel per peer, kept: a prepared target is connected before the move."""
        channel = self.channels.get(target)
        if channel is None:
            channel = self.channels[target] = grpc.aio.insecure_channel(target, CHANNEL_OPTIONS)
        return channel

    def _stub(self, target: str) -> pb_grpc.EdgeSessionStub:
        return pb_grpc.EdgeSessionStub(self._channel(target))

    async def _connected_stub(self, target: str) -> pb_grpc.EdgeSessionStub:
        """A stub to a peer, given up to CONNECT_WAIT_S to connect: a peer that just came
        back is reached even while the channel still reports its last failure."""
        channel = self._channel(target)
        if channel.get_state(try_to_connect=True) != grpc.ChannelConnectivity.READY:
            try:
                await asyncio.wait_for(channel.channel_ready(), CONNECT_WAIT_S)
            except asyncio.TimeoutError:
                pass  # the call fails and says why
        return pb_grpc.EdgeSessionStub(channel)

    async def _set_state(self, s: Session, state: str, move_id: str,
                         moved_to: pb.Site | None) -> None:
        await asyncio.to_thread(self.store.put_session, s.ctx.session_id, state, s.ctx.to_json(),
                                move_id, (moved_to.name, moved_to.target) if moved_to else ("", ""),
                                s.ctx.nursing_target)
        s.state, s.move_id, s.moved_to = state, move_id, moved_to

    def _active_count(self) -> int:
        return sum(s.state in ("active", "moving") for s in self.sessions.values())

    def _over_capacity(self, session_id: str) -> bool:
        others = {sid for sid in self.reserved if sid != session_id} - {
            sid for sid, s in self.sessions.items() if s.state in ("active", "moving")}
        return self._active_count() + len(others) >= self.max_sessions

    def _view(self, s: Session) -> pb.SessionView:
        view = pb.SessionView(session_id=s.ctx.session_id, vehicle=s.ctx.vehicle, state=s.state,
                              site=self.site, committed_through=s.ctx.committed_through,
                              news2_trend=s.ctx.trend, move_id=s.move_id,
                              open_alerts=[pb.Alert(alert_id=a["alert_id"], score=a["score"],
                                                    risk=a["risk"], raised_time_ms=a["raised_ms"])
                                           for a in s.ctx.open_alerts])
        if s.ctx.news2:
            view.news2_score, view.news2_risk = s.ctx.news2
        if (expected := s.ctx.expected_arrival_ms) is not None:
            view.expected_arrival_ms = expected
            view.eta_s = max(0, round(expected / 1000 - time.time()))
        if s.moved_to:
            view.moved_to.CopyFrom(s.moved_to)
        return view

    def _redirect_streams(self, s: Session) -> None:
        ack = pb.SampleAck(committed_through=s.ctx.committed_through, redirect=s.moved_to)
        for queue in list(s.streams):
            queue.put_nowait(ack)

    async def _session(self, session_id: str, context) -> Session:
        s = self.sessions.get(session_id)
        if s is None:
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                f"no session {session_id!r} at site {self.site}")
        return s

    # ---- devices ------------------------------------------------------------------------------

    async def StreamSamples(self, request_iterator, context):
        out: asyncio.Queue = asyncio.Queue()
        attached: list[Session] = []

        async def read() -> None:
            try:
                async for batch in request_iterator:
                    s = self.sessions.get(batch.session_id)
                    if s is None:
                        await out.put(Refusal(grpc.StatusCode.NOT_FOUND,
                                              f"no session with this id at site {self.site}"))
                        return
                    if attached and attached[0] is not s:
                        await out.put(Refusal(grpc.StatusCode.INVALID_ARGUMENT,
                                              "one stream carries one session"))
                        return
                    if not attached:
                        attached.append(s)
                        s.streams.add(out)
                    await out.put(await self._ingest(s, batch))
            finally:
                await out.put(None)

        reader = asyncio.create_task(read())
        try:
            while (item := await out.get()) is not None:
                if isinstance(item, Refusal):
                    await context.abort(item.code, item.message)
                yield item
                if item.HasField("redirect"):
                    return  # the device reconnects to the new site
            await reader
        finally:
            reader.cancel()
            for s in attached:
                s.streams.discard(out)

    async def _ingest(self, s: Session, batch: pb.SampleBatch) -> pb.SampleAck | Refusal:
        async with s.lock:  # a move holds it: this batch waits and then follows the session
            if s.state == "released":
                return pb.SampleAck(committed_through=s.ctx.committed_through, redirect=s.moved_to)
            if s.state == "closed":
                return CLOSED
            if s.state == "moving":  # in doubt and not resolved yet
                return Refusal(grpc.StatusCode.UNAVAILABLE, "the session is being moved; resend shortly")
            now = time.time()
            applied = s.ctx.apply([(m.seq, m.effective_time_ms, sample_values(m))
                                   for m in batch.samples], now)
            ignored = None
            if batch.HasField("position"):
                p = batch.position
                ignored = s.ctx.report_position(p.latitude, p.longitude, p.speed_mps,
                                                p.eta_s if p.HasField("eta_s") else None, now)
            try:
                await self.store.commit(s.ctx.session_id, applied.rows, s.ctx.to_json())
            except Exception:
                # the context ran ahead of the store: read it back before anything else
                row = next(r for r in await asyncio.to_thread(self.store.sessions)
                           if r.session_id == s.ctx.session_id)
                s.ctx = SessionContext.from_json(row.context)
                log.exception("commit failed at site %s", self.site)
                return Refusal(grpc.StatusCode.UNAVAILABLE, "the store refused the samples; "
                                                            "resend from the last ack")
            ack = pb.SampleAck(committed_through=s.ctx.committed_through,
                               duplicates=applied.duplicates,
                               rejected=[pb.Rejection(seq=q, reason=r) for q, r in applied.rejected],
                               position_ignored=ignored or "")
            if s.prepared:
                ack.prepared.CopyFrom(s.prepared)
            return ack

    # ---- mobility service ---------------------------------------------------------------------

    async def OpenSession(self, request, context):
        if not request.session_id or not request.vehicle:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "session_id and vehicle are required")
        s = self.sessions.get(request.session_id)
        if s is not None:
            return self._view(s)  # opened before: idempotent
        if self._over_capacity(request.session_id):
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"site {self.site} holds its {self.max_sessions} sessions")
        ctx = SessionContext(request.session_id, request.vehicle, request.spo2_scale or 1,
                             request.nursing_grpc_target, request.nursing_ward)
        s = Session(ctx, "active", move_id="open-" + uuid.uuid4().hex[:12])
        await self._set_state(s, "active", s.move_id, None)
        self.sessions[request.session_id] = s
        log.info("session %s opened at site %s", request.session_id, self.site)
        return self._view(s)

    async def GetSession(self, request, context):
        return self._view(await self._session(request.session_id, context))

    async def CloseSession(self, request, context):
        s = await self._session(request.session_id, context)
        async with s.lock:
            if s.state not in ("active", "closed"):
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                    f"the session is {s.state} at site {self.site}")
            await self._set_state(s, "closed", s.move_id, None)
        for queue in list(s.streams):
            queue.put_nowait(CLOSED)
        return self._view(s)

    async def Prepare(self, request, context):
        s = await self._session(request.session_id, context)
        try:
            await (await self._connected_stub(request.target.target)).Reserve(
                pb.PrepareRequest(session_id=request.session_id), timeout=IMPORT_TIMEOUT_S)
        except grpc.aio.AioRpcError as err:
            await context.abort(err.code(), f"site {request.target.name}: {err.details()}")
        s.prepared = pb.Site(name=request.target.name, target=request.target.target)
        return pb.PrepareReply(ready=True)

    async def Reserve(self, request, context):
        if self._over_capacity(request.session_id):
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"site {self.site} holds its {self.max_sessions} sessions")
        self.reserved.add(request.session_id)
        return pb.PrepareReply(ready=True)

    async def Relocate(self, request, context):
        s = await self._session(request.session_id, context)
        if not request.move_id or not request.target.target:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "move_id and target are required")
        started = time.perf_counter()
        async with s.lock:
            if s.state != "active":
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                    f"the session is {s.state} at site {self.site}")
            target = pb.Site(name=request.target.name, target=request.target.target)
            previous_move = s.move_id
            await self._set_state(s, "moving", request.move_id, target)
            s.ctx.moves += 1
            nonce, sealed = contexts.seal(s.ctx, self.key, request.move_id, self.site, target.name)
            try:
                await (await self._connected_stub(target.target)).ImportSession(pb.SealedContext(
                    session_id=s.ctx.session_id, move_id=request.move_id, source_site=self.site,
                    target_site=target.name, nonce=nonce, ciphertext=sealed),
                    timeout=IMPORT_TIMEOUT_S)
            except grpc.aio.AioRpcError as err:
                s.ctx.moves -= 1
                await self._set_state(s, "active", previous_move, None)
                log.warning("session %s: move %s to %s rolled back: %s", s.ctx.session_id,
                            request.move_id, target.name, err.code().name)
                code = grpc.StatusCode.RESOURCE_EXHAUSTED \
                    if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED else grpc.StatusCode.ABORTED
                await context.abort(code, f"site {target.name} did not take the session "
                                          f"({err.code().name}: {err.details()}); it stays at {self.site}")
            await self._set_state(s, "released", request.move_id, target)
            s.prepared = None
            self._redirect_streams(s)
        log.info("session %s moved to %s (move %s, %d bytes)", s.ctx.session_id, target.name,
                 request.move_id, len(sealed))
        return pb.RelocateReply(committed_through=s.ctx.committed_through,
                                context_bytes=len(sealed) + len(nonce),
                                duration_ms=1000 * (time.perf_counter() - started))

    async def ImportSession(self, request, context):
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the move's deadline passed")
        if request.target_site != self.site:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"the context is sealed for site {request.target_site}, not {self.site}")
        try:
            ctx = contexts.unseal(self.key, request.session_id, request.move_id, request.source_site,
                                  request.target_site, request.nonce, request.ciphertext)
        except ContextError as err:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        s = self.sessions.get(ctx.session_id)
        if s is not None and s.move_id == request.move_id and s.state == "active":
            return pb.ImportReply(committed_through=s.ctx.committed_through)  # a retried import
        if s is not None and s.state in ("active", "moving"):
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"site {self.site} already holds this session")
        if self._over_capacity(ctx.session_id):
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"site {self.site} holds its {self.max_sessions} sessions")
        s = Session(ctx, "active")
        await self._set_state(s, "active", request.move_id, None)
        self.sessions[ctx.session_id] = s
        self.reserved.discard(ctx.session_id)
        return pb.ImportReply(committed_through=ctx.committed_through)

    # ---- forwarding to the destination ward ---------------------------------------------------

    async def forward_forever(self) -> None:
        """Send the samples committed here to the destination ward's nursing service
        (gRPC StreamVitals as a device). Each site forwards what it stored; a resend after a
        failure carries the same reading ids, which nursing stores once."""
        while True:
            await asyncio.sleep(FORWARD_EVERY_S)
            try:
                for row, samples in await asyncio.to_thread(self.store.unforwarded):
                    await self._forward(row, samples)
            except grpc.aio.AioRpcError as err:
                log.warning("forwarding to nursing failed (%s); retrying", err.code().name)
            except Exception:
                log.exception("forwarding failed; retrying")

    async def _forward(self, row, samples: list[tuple]) -> None:
        ctx = SessionContext.from_json(row.context)
        readings = []
        for seq, ms, vitals in samples:
            readings.append(nursing_pb2.VitalReading(
                reading_id=f"{ctx.session_id}-{seq}", patient_id=ctx.session_id,
                effective_time_ms=ms, **json.loads(vitals)))
        stub = nursing_pb2_grpc.CloudNursingStub(self._channel(ctx.nursing_target))
        call = stub.StreamVitals(metadata=(("authorization", f"Bearer {self.nursing_token}"),),
                                 timeout=10)
        await call.write(nursing_pb2.VitalBatch(readings=readings))
        await call.done_writing()
        async for ack in call:
            if ack.rejected:
                log.warning("nursing refused %d reading(s) of session %s: %s", len(ack.rejected),
                            ctx.session_id, ack.rejected[0].reason)
        await asyncio.to_thread(self.store.forwarded, ctx.session_id, samples[-1][0])


async def serve(*, host: str, port: int, site: str, database: Path, key_file: Path,
                max_sessions: int, nursing_token_file: Path | None) -> None:
    telemetry.setup("medmec-mobilecare-edge")
    store = await asyncio.to_thread(Store, database)
    token = nursing_token_file.read_text().strip() if nursing_token_file else None
    service = EdgeSessions(site, store, contexts.load_key(key_file), max_sessions, token)
    writer = asyncio.create_task(store.run_writer())
    await asyncio.sleep(0)  # the writer's queue exists before anything commits
    await service.load()
    forwarder = asyncio.create_task(service.forward_forever()) if token else None
    server = grpc.aio.server()
    pb_grpc.add_EdgeSessionServicer_to_server(service, server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    await server.start()
    log.info("mobile care edge site %s on %s:%d (%d session(s) in its store, at most %d active)",
             site, host, port, len(service.sessions), max_sessions)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=1)
    if forwarder:
        forwarder.cancel()
    writer.cancel()
    store.close()
