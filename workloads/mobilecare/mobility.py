"""The mobility service (`medmec serve mobility`): the handover API, and the one that decides
where each ambulance's session runs.

The radio side posts serving-cell changes, shaped after ETSI MEC 012's
CellChangeNotification (`associateId` names the vehicle's UE, `trgEcgi[0].cellId` the new
base station, `hoStatus` the phase). IN_PREPARATION / IN_EXECUTION warm the target site;
COMPLETED moves the session there (ETSI MEC 021's application mobility): the source site
runs the move and answers once the target holds the session (see edge.py). A target that
is down or full leaves the session where it is, and the status says why. After each move
the next base station on the route is warmed.

It also sends the destination ward the pre-arrival admission (a FHIR Patient with the
session's pseudonymous id as its id and band: an Encounter in progress there), keeps the
ward's expected arrival of the patient within ETA_TOLERANCE_S of the ambulance's ETA and
clears it on arrival, tells
devices which site holds their session, and reports each transport's status (read by the
operator for `kubectl get emergencytransports`).
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
import uuid
from typing import Literal

import grpc
import httpx
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import metrics, trace
from pydantic import BaseModel, ConfigDict, Field, model_validator

from medmec.workloads.nursing.fhir_codec import WRISTBAND_SYSTEM

from .edge import CHANNEL_OPTIONS
from .protos import mobilecare_pb2 as pb
from .protos import mobilecare_pb2_grpc as pb_grpc

log = logging.getLogger("medmec.mobilecare.mobility")
tracer = trace.get_tracer("medmec.mobilecare")
_meter = metrics.get_meter("medmec.mobilecare")
_moves = _meter.create_counter("medmec.mobilecare.moves", unit="{move}",
                               description="session moves between edge sites, by outcome")
_move_duration = _meter.create_histogram("medmec.mobilecare.move.duration", unit="s",
                                         description="one move, as the source ran it")
RELOCATE_TIMEOUT_S = 5.0
ADMIT_RETRY_S = 2.0
ETA_CHECK_S = 5.0  # how often the session's ETA is read for the ward
ETA_TOLERANCE_S = 30.0  # the ward's expected arrival is updated when it is off by this much
PSEUDONYM = r"^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$"  # also a valid FHIR id


# ---- configuration ------------------------------------------------------------------------

class Site(BaseModel):
    model_config = ConfigDict(extra="forbid")
    baseStation: str = Field(min_length=1)
    target: str = Field(min_length=1, description="host:port of the site's edge session service")


class Destination(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ward: str = Field(min_length=1)
    nursingUrl: str = Field(min_length=1, description="the nursing service's REST base URL")
    nursingGrpc: str = Field(min_length=1, description="its gRPC host:port (vitals are forwarded there)")


class Transport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vehicle: str = Field(min_length=1, max_length=63)
    sessionId: str = Field(pattern=PSEUDONYM, description="pseudonymous; never a patient identifier")
    route: list[str] = Field(min_length=1, description="base stations in driving order; the first serves at the start")
    prewarm: bool = True
    spo2Scale: Literal[1, 2] = 1
    destination: Destination | None = None


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sites: list[Site] = Field(min_length=1)
    transports: list[Transport] = Field(default_factory=list)

    @model_validator(mode="after")
    def _routes_on_sites(self) -> "Config":
        known = {s.baseStation for s in self.sites}
        for t in self.transports:
            unknown = [bs for bs in t.route if bs not in known]
            if unknown:
                raise ValueError(f"transport {t.vehicle}: route names base stations without a "
                                 f"site: {', '.join(unknown)}")
        return self


# ---- the MEC 012-shaped notification ------------------------------------------------------

class Ecgi(BaseModel):
    cellId: str = Field(min_length=1, description="the base station (our cell id)")
    plmn: dict | None = None


class AssociateId(BaseModel):
    type: str = Field(min_length=1)
    value: str = Field(min_length=1)


class CellChangeNotification(BaseModel):
    notificationType: Literal["CellChangeNotification"]
    associateId: list[AssociateId] = Field(min_length=1)
    hoStatus: Literal["IN_PREPARATION", "IN_EXECUTION", "COMPLETED", "REJECTED", "CANCELLED"]
    srcEcgi: Ecgi | None = None
    trgEcgi: list[Ecgi] = Field(min_length=1)
    timeStamp: dict | None = None


def next_on_route(route: list[str], current: str) -> str | None:
    """The base station after `current` on the route (pure), None at its end or off it."""
    try:
        i = route.index(current)
    except ValueError:
        return None
    return route[i + 1] if i + 1 < len(route) else None


def eta_update_due(told: float | None, expected: float | None) -> bool:
    """Whether the ward must be told a new expected arrival (pure): the first one, or one
    ETA_TOLERANCE_S or more from what it was last told. An ambulance on schedule reports
    ETAs that point at the same instant, so it causes no update at all."""
    return expected is not None and (told is None or abs(expected - told) >= ETA_TOLERANCE_S)


def instant(t: float | None) -> str | None:
    return None if t is None else \
        datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds")


def condition(type_: str, ok: bool, reason: str, message: str) -> dict:
    return {"type": type_, "status": "True" if ok else "False", "reason": reason, "message": message}


class HandoverError(Exception):
    def __init__(self, status: int, title: str, detail: str):
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


@dataclasses.dataclass
class State:
    spec: Transport
    serving: str  # the base station the vehicle is attached to
    site: str  # the base station whose edge site holds the session
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    following: dict = dataclasses.field(default_factory=lambda: condition(
        "Following", False, "Opening", "the session is being opened"))
    pre_arrival: dict = dataclasses.field(default_factory=lambda: condition(
        "PreArrivalSent", False, "Pending", "the destination ward has not been told yet"))
    arrived: bool = False
    arrival: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)  # set with `arrived`
    ward_eta: float | None = None  # the expected arrival the ward's record holds
    eta_told: float | None = None  # the last one the ward answered (took or refused)
    prepared: str | None = None
    moves: int = 0
    last_move: dict | None = None


class Mobility:
    def __init__(self, config: Config, admit_token: str | None = None):
        self.sites = {s.baseStation: s.target for s in config.sites}
        self.transports = {t.vehicle: State(t, t.route[0], t.route[0]) for t in config.transports}
        self.by_session = {t.sessionId: t.vehicle for t in config.transports}
        self.admit_token = admit_token
        self.channels: dict[str, grpc.aio.Channel] = {}
        self.tasks: set[asyncio.Task] = set()

    def stub(self, bs: str) -> pb_grpc.EdgeSessionStub:
        target = self.sites[bs]
        if target not in self.channels:
            self.channels[target] = grpc.aio.insecure_channel(target, CHANNEL_OPTIONS)
        return pb_grpc.EdgeSessionStub(self.channels[target])

    def site_of(self, bs: str) -> pb.Site:
        return pb.Site(name=bs, target=self.sites[bs])

    def background(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ---- start --------------------------------------------------------------------------

    async def start(self) -> None:
        for st in self.transports.values():
            self.background(self._open(st))
            if st.spec.destination and self.admit_token:
                self.background(self._to_ward(st))
            elif not st.spec.destination:
                st.pre_arrival = condition("PreArrivalSent", False, "NoDestination",
                                           "no destination ward is declared")

    async def _open(self, st: State) -> None:
        """Open the session at its first site, or find the site that holds it (after a
        restart of this service). It is opened only when every site says it does not hold
        it: a site that cannot answer might."""
        t = st.spec
        while True:
            holder, unsure = await self._find(t.sessionId)
            if holder:
                async with st.lock:
                    st.site, closed = holder
                    if closed:
                        self._mark_arrived(st)
                    st.following = condition("Following", True, "Resumed", f"held by site {st.site}")
                break
            if not unsure:
                dest = t.destination
                try:
                    await self.stub(st.site).OpenSession(pb.OpenRequest(
                        session_id=t.sessionId, vehicle=t.vehicle, spo2_scale=t.spo2Scale,
                        nursing_grpc_target=dest.nursingGrpc if dest else "",
                        nursing_ward=dest.ward if dest else ""), timeout=5)
                    st.following = condition("Following", True, "Opened", f"opened at site {st.site}")
                    break
                except grpc.aio.AioRpcError as err:
                    unsure = [f"site {st.site} cannot open the session: {err.details()}"]
            st.following = condition("Following", False, "SiteUnavailable", "; ".join(unsure))
            await asyncio.sleep(ADMIT_RETRY_S)
        await self._prewarm_next(st)

    async def _find(self, session_id: str) -> tuple[tuple[str, bool] | None, list[str]]:
        """((site, closed) of the site holding the session, or None; the sites that could
        not say)."""
        unsure = []
        for bs in self.sites:
            try:
                view = await self.stub(bs).GetSession(pb.SessionRef(session_id=session_id), timeout=2)
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.NOT_FOUND:
                    unsure.append(f"site {bs}: {err.code().name}")
                continue
            if view.state in ("active", "closed"):
                return (bs, view.state == "closed"), []
            if view.state == "moving":
                unsure.append(f"site {bs}: a move is in doubt")
        return None, unsure

    def _mark_arrived(self, st: State) -> None:
        st.arrived = True
        st.arrival.set()

    async def _to_ward(self, st: State) -> None:
        """Everything the destination ward's record gets from the transport, in order: the
        pre-arrival admission, the expected arrival while on the way, the arrival."""
        async with httpx.AsyncClient(timeout=5, headers={
                "Authorization": f"Bearer {self.admit_token}"}) as client:
            if await self._pre_arrival(st, client):
                await self._follow_eta(st, client)
                while await self._ward_write(st, client, "POST", "arrivals",
                                             {"wristband": st.spec.sessionId}) is None:
                    await asyncio.sleep(ADMIT_RETRY_S)
                st.ward_eta = None

    async def _follow_eta(self, st: State, client: httpx.AsyncClient) -> None:
        """Until arrival: keep the ward's expected arrival within ETA_TOLERANCE_S of the one
        the session's site has from the ambulance (edge.py refuses impossible ETAs)."""
        while not st.arrived:
            try:
                view = await self.stub(st.site).GetSession(
                    pb.SessionRef(session_id=st.spec.sessionId), timeout=2)
            except grpc.aio.AioRpcError:
                view = None  # the status says why; asked again next time
            expected = view.expected_arrival_ms / 1000 \
                if view is not None and view.HasField("expected_arrival_ms") else None
            if eta_update_due(st.eta_told, expected):
                took = await self._ward_write(st, client, "PUT", "planned-arrivals", {
                    "wristband": st.spec.sessionId, "expected_arrival": instant(expected)})
                if took is not None:  # a refused one is not sent again
                    st.eta_told = expected
                if took:
                    st.ward_eta = expected
            try:
                await asyncio.wait_for(st.arrival.wait(), ETA_CHECK_S)
            except asyncio.TimeoutError:
                pass

    async def _ward_write(self, st: State, client: httpx.AsyncClient, method: str, path: str,
                          body: dict) -> bool | None:
        """One write to the destination ward: True when taken, False when refused (said in
        PreArrivalSent's message; not retried), None when the ward could not answer."""
        dest = st.spec.destination
        try:
            rsp = await client.request(method, f"{dest.nursingUrl}/wards/{dest.ward}/{path}", json=body)
        except httpx.HTTPError as err:
            log.warning("transport %s: %s %s failed: %s", st.spec.vehicle, method, path,
                        type(err).__name__)
            return None
        if rsp.status_code < 300:
            return True
        if rsp.status_code >= 500:
            return None
        log.warning("transport %s: the ward refused %s %s: HTTP %d", st.spec.vehicle, method,
                    path, rsp.status_code)
        st.pre_arrival = {**st.pre_arrival, "message": f"Encounter in progress at ward "
                          f"{dest.ward}; {method} {path} answered HTTP {rsp.status_code}"}
        return False

    async def _pre_arrival(self, st: State, client: httpx.AsyncClient) -> bool:
        """Admit the patient to the destination ward ahead of arrival: an Encounter in
        progress there, so the forwarded vitals are scored and alert as on the ward."""
        t, dest = st.spec, st.spec.destination
        patient = {"resourceType": "Patient", "id": t.sessionId, "active": True,
                   "identifier": [{"system": WRISTBAND_SYSTEM, "value": t.sessionId}]}
        url = f"{dest.nursingUrl}/wards/{dest.ward}/admissions"
        while True:
            try:
                rsp = await client.post(url, json={"patient": patient, "spo2_scale": t.spo2Scale})
            except httpx.HTTPError as err:
                st.pre_arrival = condition("PreArrivalSent", False, "NursingUnreachable",
                                           f"POST {url}: {type(err).__name__}")
                await asyncio.sleep(ADMIT_RETRY_S)
                continue
            if rsp.status_code in (201, 409):  # 409: admitted by an earlier run
                st.pre_arrival = condition("PreArrivalSent", True, "Admitted",
                                           f"Encounter in progress at ward {dest.ward}")
                return True
            st.pre_arrival = condition("PreArrivalSent", False, "NursingRefused",
                                       f"POST {url} answered HTTP {rsp.status_code}")
            if rsp.status_code < 500:
                return False  # a refusal the platform engineer must fix (token, ward)
            await asyncio.sleep(ADMIT_RETRY_S)

    # ---- handovers ---------------------------------------------------------------------------

    def _vehicle(self, n: CellChangeNotification) -> State:
        for a in n.associateId:
            if a.value in self.transports:
                return self.transports[a.value]
        raise HandoverError(404, "Unknown vehicle", "no transport has the vehicle named in associateId")

    async def cell_change(self, n: CellChangeNotification) -> dict:
        st = self._vehicle(n)
        target = n.trgEcgi[0].cellId
        if target not in self.sites:
            raise HandoverError(422, "Unknown base station",
                                f"base station {target!r} has no edge site of this transport's slice")
        if st.arrived:
            raise HandoverError(409, "Arrived", "the transport has arrived; its session is closed")
        if n.hoStatus in ("IN_PREPARATION", "IN_EXECUTION"):
            return {"outcome": "prepared" if await self._prepare(st, target) else "not-prepared",
                    **self.brief(st)}
        if n.hoStatus != "COMPLETED":
            return {"outcome": "ignored", **self.brief(st)}
        async with st.lock:
            st.serving = target
            outcome = await self._move(st, target)
        if outcome == "moved":
            self.background(self._prewarm_next(st))
        return {"outcome": outcome, **self.brief(st)}

    async def _prepare(self, st: State, bs: str) -> bool:
        if bs == st.site:
            return True
        try:
            await self.stub(st.site).Prepare(pb.PrepareRequest(
                session_id=st.spec.sessionId, target=self.site_of(bs)), timeout=RELOCATE_TIMEOUT_S)
        except grpc.aio.AioRpcError as err:
            log.info("transport %s: warming %s failed: %s", st.spec.vehicle, bs, err.code().name)
            return False
        st.prepared = bs
        return True

    async def _prewarm_next(self, st: State) -> None:
        if st.spec.prewarm and (nxt := next_on_route(st.spec.route, st.site)):
            await self._prepare(st, nxt)

    async def _move(self, st: State, target: str) -> str:
        with tracer.start_as_current_span("mobilecare.move", attributes={
                "medmec.vehicle": st.spec.vehicle, "medmec.session": st.spec.sessionId,
                "medmec.move.source": st.site, "medmec.move.target": target}) as span:
            outcome = await self._run_move(st, target)
            span.set_attribute("medmec.move.outcome", outcome)
            return outcome

    async def _run_move(self, st: State, target: str) -> str:
        if target == st.site:
            st.following = condition("Following", True, "AtServingSite", f"held by site {target}")
            return "unchanged"
        source, move_id = st.site, uuid.uuid4().hex
        started = time.perf_counter()
        try:
            reply = await self.stub(source).Relocate(pb.RelocateRequest(
                session_id=st.spec.sessionId, move_id=move_id, target=self.site_of(target)),
                timeout=RELOCATE_TIMEOUT_S)
        except grpc.aio.AioRpcError as err:
            code = err.code()
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                return self._stayed(st, target, "TargetOverCapacity", err.details())
            if code in (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION):
                return self._stayed(st, target, "TargetUnavailable", err.details())
            # the source did not answer: the move completed or rolled back; the target knows
            if await self._holds(target, st.spec.sessionId, move_id):
                reply = None
            else:
                return self._stayed(st, target, "SourceUnavailable",
                                    f"site {source} did not answer ({code.name}); the session "
                                    f"stays there and resumes when it is back")
        st.site, st.moves, st.prepared = target, st.moves + 1, None
        st.last_move = {"moveId": move_id, "from": source, "to": target,
                        "durationMs": round(reply.duration_ms if reply else
                                            1000 * (time.perf_counter() - started), 1),
                        "contextBytes": reply.context_bytes if reply else None}
        st.following = condition("Following", True, "Moved", f"moved from site {source} to {target}")
        _moves.add(1, {"outcome": "moved"})
        _move_duration.record(time.perf_counter() - started)
        log.info("transport %s: session moved %s -> %s", st.spec.vehicle, source, target)
        return "moved"

    async def _holds(self, bs: str, session_id: str, move_id: str) -> bool:
        try:
            view = await self.stub(bs).GetSession(pb.SessionRef(session_id=session_id), timeout=2)
        except grpc.aio.AioRpcError:
            return False
        return view.state == "active" and view.move_id == move_id

    def _stayed(self, st: State, target: str, reason: str, message: str) -> str:
        st.following = condition("Following", False, reason,
                                 f"the vehicle is on {target} but the session stays at site "
                                 f"{st.site}: {message}")
        _moves.add(1, {"outcome": reason})
        log.warning("transport %s: session stays at %s (%s)", st.spec.vehicle, st.site, reason)
        return "stayed"

    # ---- arrival, devices, status ------------------------------------------------------------

    async def arrive(self, vehicle: str) -> dict:
        st = self.transports.get(vehicle)
        if st is None:
            raise HandoverError(404, "Unknown vehicle", "no transport for this vehicle")
        async with st.lock:
            try:
                await self.stub(st.site).CloseSession(pb.SessionRef(session_id=st.spec.sessionId),
                                                      timeout=5)
            except grpc.aio.AioRpcError as err:
                raise HandoverError(503, "Site unavailable",
                                    f"site {st.site} cannot close the session: {err.details()}") from None
            self._mark_arrived(st)  # the ward's expected arrival is cleared (_to_ward)
        return await self.status(vehicle)

    def site_for(self, session_id: str) -> dict:
        vehicle = self.by_session.get(session_id)
        if vehicle is None:
            raise HandoverError(404, "Unknown session", "no transport has this session")
        st = self.transports[vehicle]
        if st.arrived:
            raise HandoverError(409, "Arrived", "the session is closed: the transport has arrived")
        return {"name": st.site, "target": self.sites[st.site]}

    def brief(self, st: State) -> dict:
        return {"vehicle": st.spec.vehicle, "sessionId": st.spec.sessionId,
                "servingBaseStation": st.serving, "edgeSite": st.site,
                "following": st.following}

    async def status(self, vehicle: str) -> dict:
        st = self.transports.get(vehicle)
        if st is None:
            raise HandoverError(404, "Unknown vehicle", "no transport for this vehicle")
        out = {**self.brief(st), "phase": "Arrived" if st.arrived else "EnRoute",
               "destination": {"ward": st.spec.destination.ward,
                               "expectedArrival": instant(st.ward_eta)} if st.spec.destination else None,
               "moves": st.moves, "lastMove": st.last_move, "preparedSite": st.prepared,
               "news2": None, "etaSeconds": None, "expectedArrival": None, "openAlerts": []}
        conds = [st.following, st.pre_arrival,
                 condition("Arrived", st.arrived, "Arrived" if st.arrived else "EnRoute",
                           "handed over to the ward" if st.arrived else "on the way")]
        try:
            view = await self.stub(st.site).GetSession(pb.SessionRef(session_id=st.spec.sessionId),
                                                       timeout=2)
        except grpc.aio.AioRpcError as err:
            conds.append(condition("SessionReachable", False, "SiteUnavailable",
                                   f"site {st.site}: {err.code().name}"))
        else:
            if view.HasField("news2_score"):
                out["news2"] = {"score": view.news2_score, "risk": view.news2_risk,
                                "trend": view.news2_trend}
            out["etaSeconds"] = view.eta_s if view.HasField("eta_s") else None
            out["expectedArrival"] = instant(view.expected_arrival_ms / 1000) \
                if view.HasField("expected_arrival_ms") else None
            out["openAlerts"] = [{"score": a.score, "risk": a.risk,
                                  "raisedAtMs": a.raised_time_ms} for a in view.open_alerts]
            out["committedThrough"] = view.committed_through
            conds.append(condition("SessionReachable", True, "SessionRead", f"read from site {st.site}"))
        out["conditions"] = conds
        return out


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail},
                        status_code=status, media_type="application/problem+json")


def create_app(mobility: Mobility) -> FastAPI:
    app = FastAPI(title="medmec mobility", version="v1",
                  description="Handover API (MEC 012-shaped cell-change notifications) and the "
                              "status of each ambulance's monitoring session.")

    @app.exception_handler(HandoverError)
    async def _on_error(_, err: HandoverError):
        return _problem(err.status, err.title, err.detail)

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(_, err: RequestValidationError):
        return _problem(422, "Invalid request", "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()))

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.post("/v1/notifications/cell-change")
    async def cell_change(body: CellChangeNotification):
        """A serving-cell change of a vehicle's UE (ETSI MEC 012 CellChangeNotification)."""
        return await mobility.cell_change(body)

    @app.get("/v1/transports")
    async def transports():
        return {"items": [await mobility.status(v) for v in mobility.transports]}

    @app.get("/v1/transports/{vehicle}")
    async def transport(vehicle: str):
        return await mobility.status(vehicle)

    @app.post("/v1/transports/{vehicle}/arrival")
    async def arrival(vehicle: str):
        """The ambulance is at the hospital: the session closes; the patient stays admitted."""
        return await mobility.arrive(vehicle)

    @app.get("/v1/sessions/{session_id}/site")
    async def site(session_id: str):
        """Where a device sends its session's samples now."""
        return mobility.site_for(session_id)

    return app


async def serve(*, host: str, port: int, config: Config, admit_token: str | None) -> None:
    import uvicorn

    from medmec import telemetry
    telemetry.setup("medmec-mobility")
    mobility = Mobility(config, admit_token)
    server = uvicorn.Server(uvicorn.Config(create_app(mobility), host=host, port=port,
                                           access_log=False, log_config=None, lifespan="off"))
    await mobility.start()
    log.info("mobility service on %s:%d: %d site(s), %d transport(s)", host, port,
             len(mobility.sites), len(mobility.transports))
    await server.serve()  # until SIGTERM / SIGINT
