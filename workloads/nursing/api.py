"""REST/JSON API of the nursing service (the nurse's handheld), and its FHIR R4 server.

Every call but /healthz, /fhir/metadata and the published definitions needs
`Authorization: Bearer <token>`. FHIR resources go out as application/fhir+json (or
application/json when a client asks for it); every error is an OperationOutcome with the
HTTP status of the failure. Paths carry no patient identifier that a request log could keep:
wristbands travel in request bodies, and the service's own log and trace spans name the
route template, never the concrete path.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import time
import uuid
from typing import Literal, NoReturn

from fastapi import Body, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from opentelemetry import propagate, trace
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import fhir_codec, fhir_conformance, fhir_rest, five_rights, worklist
from .context import (ACKNOWLEDGE, ADMINISTER, ADMIT, AUDIT, ORDER, READ, RECEIVE, RECORD_VITALS,
                      Context, Denied)
from .fhir_codec import FhirError
from .fhir_rest import FHIR_JSON, JSON, BadSearch, NotAcceptable, Page
from .records import Administration, Encounter, Order, expected_arrival_problem
from .store import Conflict
from .tokens import Principal
from .vitals import AlertOverflow, Reading

log = logging.getLogger("medmec.nursing.api")
tracer = trace.get_tracer("medmec.nursing")
SOFTWARE_VERSION = "v1"
COUNT = Query(100, alias="_count", ge=1, le=10000, description="page size")
OFFSET = Query(0, alias="_offset", ge=0, description="matches to skip (paging)")


class Problem(Exception):
    """An error answered as an OperationOutcome: the HTTP status, a short title, what went
    wrong, the FHIRPath of the offending element(s), and for a refused dose the failed right."""

    def __init__(self, status: int, title: str, detail: str, *expression: str,
                 right: str | None = None):
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.expression, self.right = list(expression), right


def _outcome(status: int, title: str, detail: str, expression: list[str] | None = None,
             right: str | None = None) -> JSONResponse:
    details = {"text": title}
    if right:
        details["coding"] = [{"system": fhir_conformance.FIVE_RIGHTS_SYSTEM, "code": right}]
    return JSONResponse(fhir_rest.operation_outcome(status, detail, expression, details),
                        status_code=status, media_type=FHIR_JSON)


def _fhir(resource: dict, status: int = 200, location: str | None = None) -> JSONResponse:
    headers = {"Location": location} if location else None
    return JSONResponse(resource, status_code=status, media_type=FHIR_JSON, headers=headers)


def _fhir_base(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}/fhir"


def _patient_id(param: str) -> str:
    """The search parameter `patient` as an id (Patient/ID is accepted too)."""
    return param.removeprefix("Patient/")


class Admission(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient: dict = Field(description="FHIR Patient with one wristband identifier "
                                      f"({fhir_codec.WRISTBAND_SYSTEM}); an existing id re-admits")
    spo2_scale: Literal[1, 2] = Field(1, description="NEWS2 SpO2 scale prescribed for the patient")
    assigned_nurse: str | None = Field(None, description="subject of the responsible nurse")


class Scan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wristband: str = Field(min_length=1, max_length=128)


class PlannedArrival(BaseModel):
    """When a patient admitted ahead of arrival (an ambulance on its way) is expected."""
    model_config = ConfigDict(extra="forbid")
    wristband: str = Field(min_length=1, max_length=128)
    expected_arrival: AwareDatetime = Field(description="RFC 3339 date-time with a time zone")


class Give(BaseModel):
    """What the nurse scanned at the bedside before giving a dose."""
    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1)
    wristband: str = Field(min_length=1, max_length=128)
    drug_barcode: str = Field(min_length=1, max_length=64, description="GTIN on the package")
    dose_value: float = Field(gt=0)
    dose_unit: str = Field(min_length=1)
    route_code: str = Field(min_length=1)


def create_app(ctx: Context) -> FastAPI:
    # FastAPI's own telemetry would put the concrete path (with patient ids) into spans and
    # request values into logs: its spans and logs are off, the middleware below traces.
    app = FastAPI(title="medmec cloud nursing", version="v1",
                  telemetry={"tracing": False, "logs": False, "operation_spans": False},
                  description="Bedside nursing: wristband identification, vitals with NEWS2 "
                              "early warning, the closed medication loop, worklists.")

    @app.exception_handler(Problem)
    async def _on_problem(_, err: Problem):
        return _outcome(err.status, err.title, err.detail, err.expression, err.right)

    @app.exception_handler(FhirError)
    async def _on_fhir(_, err: FhirError):
        return _outcome(422, "Invalid FHIR resource", str(err), err.expression)

    @app.exception_handler(BadSearch)
    async def _on_bad_search(_, err: BadSearch):
        return _outcome(400, "Invalid search", str(err))

    @app.exception_handler(Denied)
    async def _on_denied(_, err: Denied):
        resp = _outcome(err.status, "Unauthorized" if err.status == 401 else "Forbidden", str(err))
        if err.status == 401:
            resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(_, err: RequestValidationError):
        problems = []
        for e in err.errors():
            if e["type"] == "json_invalid":  # loc: ("body", character offset)
                problems.append(f"malformed JSON at character {e['loc'][-1]}: "
                                f"{e.get('ctx', {}).get('error', e['msg'])}")
            else:
                problems.append(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
        return _outcome(422, "Invalid request", "; ".join(problems))

    @app.exception_handler(Exception)
    async def _on_bug(_, err: Exception):
        # the message may carry request data: the log gets the type only
        log.error("unhandled %s", type(err).__name__)
        return _outcome(500, "Internal error", "the request failed inside the service")

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(_, err: StarletteHTTPException):
        return _outcome(err.status_code, "Error", str(err.detail))

    async def negotiated(request: Request, call_next):
        """FHIR content negotiation: _format, then Accept (FHIR paths only refuse)."""
        try:
            media = fhir_rest.response_type(request.headers.get("accept"),
                                            request.query_params.get("_format"))
        except NotAcceptable as err:
            if request.url.path.startswith("/fhir/"):
                return _outcome(406, "Not acceptable", str(err))
            media = FHIR_JSON
        response = await call_next(request)
        if media == JSON and response.headers.get("content-type", "").startswith(FHIR_JSON):
            response.headers["content-type"] = JSON
        return response

    @app.middleware("http")
    async def _trace_and_log(request: Request, call_next):
        # the route template (/fhir/Patient/{patient_id}), never the concrete path
        start = time.perf_counter()
        with tracer.start_as_current_span(request.method, kind=trace.SpanKind.SERVER,
                                          context=propagate.extract(request.headers)) as span:
            response = await negotiated(request, call_next)
            route = getattr(request.scope.get("route"), "path", "unmatched")
            span.update_name(f"{request.method} {route}")
            span.set_attributes({"http.request.method": request.method, "http.route": route,
                                 "http.response.status_code": response.status_code})
        log.info("%s %s %d %.1fms", request.method, route, response.status_code,
                 1000 * (time.perf_counter() - start))
        return response

    async def who(authorization: str | None) -> Principal:
        return ctx.authenticate(authorization)

    def serves(ward: str) -> None:
        if ward not in ctx.wards:
            raise Problem(404, "Unknown ward", "this service does not serve that ward")

    async def visible_encounter(principal: Principal, patient_id: str,
                                *expression: str) -> Encounter:
        enc = await ctx.db(ctx.repo.latest_encounter, patient_id)
        if enc is None or not principal.may_access(enc.ward):
            raise Problem(404, "Unknown patient", "no patient with this id in your ward",
                          *expression)
        return enc

    async def search_scope(authorization: str | None, patient: str, param: str,
                           values: list[str]) -> tuple[Principal, str, fhir_rest.TimeRange]:
        """What every search by patient and time starts with: the reader allowed to read,
        the patient's id, visible in the reader's ward, and the time range searched."""
        p = await who(authorization)
        ctx.authorize(p, READ)
        pid = _patient_id(patient)
        when = fhir_rest.time_range(param, values)
        await visible_encounter(p, pid)
        return p, pid, when

    async def patient_and_encounter(enc: Encounter) -> dict:
        resource = json.loads(await ctx.db(ctx.repo.patient_resource, enc.patient_id))
        return {"patient": resource, "encounter": fhir_codec.encounter_to_fhir(enc)}

    @app.get("/healthz", tags=["service"])
    async def healthz():
        try:
            await ctx.db(ctx.repo.ping)
        except Exception:
            return _outcome(503, "Unavailable", "the database does not answer")
        return {"status": "ok"}

    # -- what the FHIR server publishes about itself (no credential needed) -----------------
    @app.get("/fhir/metadata", tags=["fhir"])
    async def metadata(request: Request):
        """The CapabilityStatement: resources, interactions and search parameters served."""
        return _fhir(fhir_conformance.capability_statement(_fhir_base(request), SOFTWARE_VERSION))

    def publish(kind: str, published: dict[str, dict]) -> None:
        @app.get(f"/fhir/{kind}", tags=["fhir"], summary=f"Search {kind}")
        async def search_definitions(request: Request, url: str | None = Query(None),
                                     count: int = COUNT, offset: int = OFFSET):
            found = [r for r in published.values() if url is None or r["url"] == url]
            page = Page(count, offset)
            return _fhir(fhir_rest.searchset(_fhir_base(request), kind, {"url": [url]} if url else {},
                                             page, len(found), page.of(found)))

        @app.get(f"/fhir/{kind}/{{definition_id}}", tags=["fhir"], summary=f"Read {kind}")
        async def read_definition(definition_id: str):
            if definition_id not in published:
                raise Problem(404, f"Unknown {kind}", f"this server publishes no {kind} with this id")
            return _fhir(published[definition_id])

    publish("CodeSystem", fhir_conformance.CODE_SYSTEMS)
    publish("StructureDefinition", fhir_conformance.STRUCTURE_DEFINITIONS)

    async def admitted_by_band(ward: str, wristband: str) -> Encounter:
        """The ward's admitted patient with this band, or the refusal a scan would get."""
        enc = await ctx.db(ctx.repo.encounter_by_wristband, wristband)
        if enc is None or enc.ward != ward:
            raise Problem(404, "Unknown wristband", "no patient of this ward has this wristband")
        if not enc.admitted:
            raise Problem(409, "Discharged wristband",
                          "this wristband belongs to a discharged admission: do not use it")
        return enc

    # -- admissions and identification ------------------------------------------------
    @app.post("/wards/{ward}/admissions", status_code=201, tags=["patients"])
    async def admit(ward: str, body: Admission, authorization: str | None = Header(None)):
        """Admit a patient to the ward (FHIR Patient + Encounter); the wristband identifies them."""
        p = await who(authorization)
        ctx.authorize(p, ADMIT, ward)
        serves(ward)
        patient = fhir_codec.parse(fhir_codec.Patient, body.patient)
        band = fhir_codec.patient_wristband(patient)
        patient_id = patient.id or str(uuid.uuid4())
        existing = await ctx.db(ctx.repo.patient_resource, patient_id)
        enc = Encounter(id=str(uuid.uuid4()), patient_id=patient_id, ward=ward, wristband=band,
                        status="in-progress", spo2_scale=body.spo2_scale,
                        assigned_nurse=body.assigned_nurse, started_at=time.time())
        new_resource = None if existing else fhir_codec.patient_json(patient, patient_id)
        try:
            await ctx.db(ctx.repo.admit, patient_id, new_resource, enc)
        except Conflict:
            raise Problem(409, "Conflict", "the patient is already admitted or the wristband "
                                           "is in use by an admitted patient") from None
        ctx.pipeline.forget(patient_id)
        return await patient_and_encounter(enc)

    @app.post("/wards/{ward}/encounters/{encounter_id}/discharge", tags=["patients"])
    async def discharge(ward: str, encounter_id: str, authorization: str | None = Header(None)):
        """Discharge: the wristband stops identifying the patient; active orders stop."""
        p = await who(authorization)
        ctx.authorize(p, ADMIT, ward)
        enc = await ctx.db(ctx.repo.encounter, encounter_id)
        if enc is None or enc.ward != ward:
            raise Problem(404, "Unknown encounter", "no such admission in this ward")
        if not enc.admitted:
            raise Problem(409, "Conflict", "the patient is already discharged")
        await ctx.db(ctx.repo.discharge, encounter_id, time.time())
        ctx.pipeline.forget(enc.patient_id)
        return _fhir(fhir_codec.encounter_to_fhir(await ctx.db(ctx.repo.encounter, encounter_id)))

    @app.post("/wards/{ward}/scan", tags=["patients"])
    async def scan(ward: str, body: Scan, authorization: str | None = Header(None)):
        """Identify the patient by wristband: exactly one admitted patient, or a refusal."""
        p = await who(authorization)
        ctx.authorize(p, READ, ward)
        serves(ward)
        return await patient_and_encounter(await admitted_by_band(ward, body.wristband))

    # -- patients on the way (pre-arrival admissions) -------------------------------------
    @app.put("/wards/{ward}/planned-arrivals", tags=["patients"])
    async def plan_arrival(ward: str, body: PlannedArrival, authorization: str | None = Header(None)):
        """When an admitted patient who is on the way is expected at the ward (their Encounter's
        location: the ward, status `planned`, `period.start` the expected arrival)."""
        p = await who(authorization)
        ctx.authorize(p, ADMIT, ward)
        serves(ward)
        at = body.expected_arrival.timestamp()
        if problem := expected_arrival_problem(at, time.time()):
            raise Problem(422, "Invalid expected arrival", problem)
        enc = await admitted_by_band(ward, body.wristband)
        await ctx.db(ctx.repo.plan_arrival, enc.id, at)
        return await patient_and_encounter(await ctx.db(ctx.repo.encounter, enc.id))

    @app.post("/wards/{ward}/arrivals", tags=["patients"])
    async def arrival(ward: str, body: Scan, authorization: str | None = Header(None)):
        """The patient who was on the way is here: no longer expected (idempotent)."""
        p = await who(authorization)
        ctx.authorize(p, RECEIVE, ward)
        serves(ward)
        enc = await admitted_by_band(ward, body.wristband)
        await ctx.db(ctx.repo.plan_arrival, enc.id, None)
        return await patient_and_encounter(await ctx.db(ctx.repo.encounter, enc.id))

    @app.get("/wards/{ward}/incoming", tags=["ward"])
    async def incoming(ward: str, authorization: str | None = Header(None)):
        """The ward's patients on the way, soonest expected first, with their latest NEWS2."""
        p = await who(authorization)
        ctx.authorize(p, READ, ward)
        serves(ward)
        now = time.time()
        expected = await ctx.db(ctx.repo.incoming, ward)
        scores = await ctx.db(ctx.repo.last_scores, [e.id for e in expected])
        open_alerts = collections.Counter(a.encounter_id for a in await ctx.db(ctx.repo.alerts, ward, True))
        return {"ward": ward, "generated_at": fhir_codec.instant(now), "patients": [{
            "patient_id": e.patient_id, "encounter_id": e.id,
            "expected_arrival": fhir_codec.instant(e.expected_arrival),
            "eta_seconds": max(0, round(e.expected_arrival - now)),
            "news2": {"score": scores[e.id].result.score, "risk": scores[e.id].result.risk}
            if e.id in scores else None,
            "open_alerts": open_alerts[e.id]} for e in expected]}

    # -- FHIR reads and searches -----------------------------------------------------------
    @app.get("/fhir/Patient/{patient_id}", tags=["fhir"])
    async def read_patient(patient_id: str, authorization: str | None = Header(None)):
        p = await who(authorization)
        ctx.authorize(p, READ)
        await visible_encounter(p, patient_id)
        return _fhir(json.loads(await ctx.db(ctx.repo.patient_resource, patient_id)))

    @app.get("/fhir/Encounter/{encounter_id}", tags=["fhir"])
    async def read_encounter(encounter_id: str, authorization: str | None = Header(None)):
        p = await who(authorization)
        ctx.authorize(p, READ)
        enc = await ctx.db(ctx.repo.encounter, encounter_id)
        if enc is None or not p.may_access(enc.ward):
            raise Problem(404, "Unknown encounter", "no such admission in your ward")
        return _fhir(fhir_codec.encounter_to_fhir(enc))

    @app.get("/fhir/Encounter", tags=["fhir"])
    async def search_encounters(request: Request, patient: str = Query(..., description="Patient id"),
                                date: list[str] = Query([], description="[eq|gt|ge|lt|le]date"),
                                count: int = COUNT, offset: int = OFFSET,
                                authorization: str | None = Header(None)):
        """A patient's admissions in your ward whose period overlaps `date`, newest first."""
        p, pid, when = await search_scope(authorization, patient, "date", date)
        found = [e for e in await ctx.db(ctx.repo.encounters_of, pid)
                 if p.may_access(e.ward) and when.overlaps(e.started_at, e.ended_at)]
        page = Page(count, offset)
        return _fhir(fhir_rest.searchset(
            _fhir_base(request), "Encounter", {"patient": [patient], "date": date}, page,
            len(found), [fhir_codec.encounter_to_fhir(e) for e in page.of(found)]))

    # -- vitals --------------------------------------------------------------------------
    @app.post("/fhir/Observation", status_code=201, tags=["fhir"])
    async def record_vitals(request: Request, resource: dict = Body(...),
                            authorization: str | None = Header(None)):
        """Record a vital-signs Observation; a complete set is scored with NEWS2."""
        p = await who(authorization)
        ctx.authorize(p, RECORD_VITALS)
        obs = fhir_codec.parse(fhir_codec.Observation, resource)
        patient_id, effective, reading_id, vitals = fhir_codec.observation_fields(obs)
        reading = Reading(source=p.subject, ward_scope=p.ward,
                          reading_id=reading_id or str(uuid.uuid4()), patient_id=patient_id,
                          effective_at=effective, values=vitals)
        [outcome] = await ctx.pipeline.submit([reading])
        if outcome.error is not None:
            where = "Observation.subject" if outcome.status == 404 else "Observation.effectiveDateTime"
            raise Problem(outcome.status, "Vitals refused", outcome.error, where)
        # what is stored: a resent reading answers with the values first stored
        stored = await ctx.db(ctx.repo.observation, source=reading.source,
                              reading_id=reading.reading_id)
        created = fhir_codec.observation_to_fhir(stored)
        return _fhir(created, 201, f"{_fhir_base(request)}/Observation/{created['id']}")

    @app.get("/fhir/Observation/{observation_id}", tags=["fhir"])
    async def read_vitals(observation_id: str, authorization: str | None = Header(None)):
        p = await who(authorization)
        ctx.authorize(p, READ)
        found = await ctx.db(ctx.repo.observation, row_id=int(observation_id)) \
            if observation_id.isdigit() else None
        if found is None or not p.may_access(found["ward"]):
            raise Problem(404, "Unknown Observation", "no such Observation in your ward")
        return _fhir(fhir_codec.observation_to_fhir(found))

    @app.get("/fhir/Observation", tags=["fhir"])
    async def search_vitals(request: Request, patient: str = Query(..., description="Patient id"),
                            date: list[str] = Query([], description="[eq|gt|ge|lt|le]date"),
                            count: int = COUNT, offset: int = OFFSET,
                            authorization: str | None = Header(None)):
        """A patient's vital signs measured in your ward within `date`, newest first."""
        p, pid, when = await search_scope(authorization, patient, "date", date)
        total, rows = await ctx.db(
            ctx.repo.observations, pid, count, offset=offset,
            ward=None if p.ward == "*" else p.ward,
            since=None if when.since == -math.inf else when.since,
            before=None if when.before == math.inf else when.before)

        def build() -> dict:
            return fhir_rest.searchset(
                _fhir_base(request), "Observation", {"patient": [patient], "date": date},
                Page(count, offset), total,
                [fhir_codec.observation_to_fhir(r) for r in rows])
        return _fhir(await asyncio.to_thread(build))  # thousands of resources: keep the loop free

    # -- medication ----------------------------------------------------------------------
    @app.post("/fhir/MedicationRequest", status_code=201, tags=["fhir"])
    async def order(request: Request, resource: dict = Body(...),
                    authorization: str | None = Header(None)):
        """Order a medication for an admitted patient of the doctor's ward."""
        p = await who(authorization)
        ctx.authorize(p, ORDER)
        mr = fhir_codec.parse(fhir_codec.MedicationRequest, resource)
        fields = fhir_codec.order_fields(mr)
        enc = await visible_encounter(p, fields["patient_id"], "MedicationRequest.subject")
        if not enc.admitted:
            raise Problem(409, "Not admitted", "orders need an admitted patient",
                          "MedicationRequest.subject")
        new = Order(id=str(uuid.uuid4()), encounter_id=enc.id, ward=enc.ward, status="active",
                    ordered_by=p.subject, **fields)
        stored = mr.model_dump(mode="json", exclude_none=True)
        await ctx.db(ctx.repo.add_order, new, json.dumps(stored))
        return _fhir(fhir_codec.order_to_fhir(json.dumps(stored), new), 201,
                     f"{_fhir_base(request)}/MedicationRequest/{new.id}")

    async def visible_order(p: Principal, order_id: str) -> Order:
        found = await ctx.db(ctx.repo.order, order_id)
        if found is None or not p.may_access(found.ward):
            raise Problem(404, "Unknown MedicationRequest", "no such order in your ward")
        return found

    @app.get("/fhir/MedicationRequest/{order_id}", tags=["fhir"])
    async def read_order(order_id: str, authorization: str | None = Header(None)):
        p = await who(authorization)
        ctx.authorize(p, READ)
        found = await visible_order(p, order_id)
        return _fhir(fhir_codec.order_to_fhir(await ctx.db(ctx.repo.order_resource, found.id), found))

    @app.get("/fhir/MedicationRequest", tags=["fhir"])
    async def search_orders(request: Request, patient: str = Query(..., description="Patient id"),
                            date: list[str] = Query([], description="[eq|gt|ge|lt|le]date"),
                            count: int = COUNT, offset: int = OFFSET,
                            authorization: str | None = Header(None)):
        """A patient's orders in your ward whose dose schedule overlaps `date`."""
        p, pid, when = await search_scope(authorization, patient, "date", date)
        found = [o for o in await ctx.db(ctx.repo.orders, patient_id=pid)
                 if p.may_access(o.ward) and when.overlaps(o.start, o.last_slot)]
        page = Page(count, offset)
        resources = [fhir_codec.order_to_fhir(await ctx.db(ctx.repo.order_resource, o.id), o)
                     for o in page.of(found)]
        return _fhir(fhir_rest.searchset(_fhir_base(request), "MedicationRequest",
                                         {"patient": [patient], "date": date}, page, len(found),
                                         resources))

    @app.post("/wards/{ward}/administrations", status_code=201, tags=["medication"])
    async def give(request: Request, ward: str, body: Give, authorization: str | None = Header(None)):
        """Give a dose after the five-rights check; every outcome goes to the audit log."""
        p = await who(authorization)
        ctx.authorize(p, ADMINISTER, ward)
        serves(ward)
        now = time.time()
        found = await ctx.db(ctx.repo.order, body.order_id)
        if found is None or found.ward != ward:
            await ctx.db(ctx.repo.audit, {
                "at": now, "ward": ward, "actor": p.subject, "action": "administer",
                "outcome": "refused", "order_id": body.order_id,
                "detail": json.dumps({"reason": "no such medication order in this ward"})})
            raise Problem(404, "Unknown order", "no such medication order in this ward")
        scanned = await ctx.db(ctx.repo.encounter_by_wristband, body.wristband)
        decision = five_rights.check(
            found, five_rights.Scan(scanned, body.drug_barcode, body.dose_value, body.dose_unit,
                                    body.route_code, now),
            await ctx.db(ctx.repo.given_slots, found.id), ctx.dose_window_s)
        audit = {"at": now, "ward": ward, "actor": p.subject, "action": "administer",
                 "order_id": found.id, "patient_id": found.patient_id}
        scanned_json = {"drug_barcode": body.drug_barcode, "dose": body.dose_value,
                        "unit": body.dose_unit, "route": body.route_code}
        if isinstance(decision, five_rights.Refusal):
            await refuse(audit, scanned_json, decision)
        adm = Administration(id=str(uuid.uuid4()), order_id=found.id,
                             patient_id=found.patient_id, encounter_id=found.encounter_id,
                             ward=ward, slot=decision.slot, given_at=now,
                             dose_value=body.dose_value, dose_unit=body.dose_unit,
                             route_code=body.route_code, given_by=p.subject)
        try:
            await ctx.db(ctx.repo.give, adm, {**audit, "outcome": "given", "detail": json.dumps(
                {**scanned_json, "slot": fhir_codec.instant(decision.slot)})})
        except Conflict:  # another handheld gave this dose a moment ago
            await refuse(audit, scanned_json, five_rights.Refusal(
                "time", "the dose scheduled for now has already been given", duplicate=True))
        given = fhir_codec.administration_to_fhir(adm, found, await ctx.db(ctx.repo.order_resource, found.id))
        return _fhir(given, 201, f"{_fhir_base(request)}/MedicationAdministration/{adm.id}")

    async def refuse(audit: dict, scanned: dict, refusal: five_rights.Refusal) -> NoReturn:
        await ctx.db(ctx.repo.audit, {**audit, "outcome": "refused", "right_failed": refusal.right,
                                      "detail": json.dumps({**scanned, "reason": refusal.reason})})
        if refusal.duplicate:
            raise Problem(409, "Duplicate administration", refusal.reason, right=refusal.right)
        raise Problem(422, f"Wrong {refusal.right}", refusal.reason, right=refusal.right)

    @app.get("/fhir/MedicationAdministration/{administration_id}", tags=["fhir"])
    async def read_given(administration_id: str, authorization: str | None = Header(None)):
        p = await who(authorization)
        ctx.authorize(p, READ)
        adm = await ctx.db(ctx.repo.administration, administration_id)
        if adm is None or not p.may_access(adm.ward):
            raise Problem(404, "Unknown MedicationAdministration", "no such administration in your ward")
        found = await ctx.db(ctx.repo.order, adm.order_id)
        return _fhir(fhir_codec.administration_to_fhir(
            adm, found, await ctx.db(ctx.repo.order_resource, found.id)))

    @app.get("/fhir/MedicationAdministration", tags=["fhir"])
    async def search_given(request: Request, patient: str = Query(..., description="Patient id"),
                           effective_time: list[str] = Query(
                               [], alias="effective-time", description="[eq|gt|ge|lt|le]date"),
                           count: int = COUNT, offset: int = OFFSET,
                           authorization: str | None = Header(None)):
        """Doses given to a patient in your ward at `effective-time`, in the order given."""
        p, pid, when = await search_scope(authorization, patient, "effective-time", effective_time)
        orders = {o.id: o for o in await ctx.db(ctx.repo.orders, patient_id=pid)}
        found = [a for a in await ctx.db(ctx.repo.administrations, patient_id=pid)
                 if p.may_access(a.ward) and when.contains(a.given_at)]
        page = Page(count, offset)
        resources = [fhir_codec.administration_to_fhir(
            a, orders[a.order_id], await ctx.db(ctx.repo.order_resource, a.order_id))
            for a in page.of(found)]
        return _fhir(fhir_rest.searchset(_fhir_base(request), "MedicationAdministration",
                                         {"patient": [patient], "effective-time": effective_time},
                                         page, len(found), resources))

    # -- worklist, alerts, audit ---------------------------------------------------------
    @app.get("/wards/{ward}/worklist", tags=["ward"])
    async def ward_worklist(ward: str, nurse: str | None = Query(
            None, description="a nurse's subject, or 'all'; default: the caller when a nurse"),
            authorization: str | None = Header(None)):
        """What is alerting, overdue and due now, most urgent first."""
        p = await who(authorization)
        ctx.authorize(p, READ, ward)
        serves(ward)
        who_for = None if nurse == "all" else nurse or (p.subject if p.role == "nurse" else None)
        now = time.time()
        encounters = await ctx.db(ctx.repo.admitted, ward)
        orders = await ctx.db(ctx.repo.orders, ward=ward)
        given: dict[str, set[float]] = {}
        for a in await ctx.db(ctx.repo.administrations, ward=ward):
            given.setdefault(a.order_id, set()).add(a.slot)
        items = worklist.build(
            encounters, orders, given, await ctx.db(ctx.repo.alerts, ward, True),
            await ctx.db(ctx.repo.last_scores, [e.id for e in encounters]), now,
            ctx.dose_window_s, nurse=who_for)
        return {"ward": ward, "nurse": who_for or "all", "generated_at": fhir_codec.instant(now),
                "items": [i.to_json() | {"due_at": fhir_codec.instant(i.due_at)} for i in items]}

    @app.get("/wards/{ward}/alerts/stream", tags=["ward"])
    async def alert_stream(ward: str, authorization: str | None = Header(None)):
        """Server-sent events for handhelds: each NEWS2 alert of the ward as it is raised
        (event `alert`, JSON data as in /alerts). After a reconnect, list /alerts first."""
        p = await who(authorization)
        ctx.authorize(p, READ, ward)
        serves(ward)
        sub = ctx.hub.subscribe(ward)

        async def events():
            try:
                yield ": subscribed\n\n"
                while True:
                    try:
                        alert = await asyncio.wait_for(sub.get(), timeout=15)
                    except asyncio.TimeoutError:  # keeps proxies from closing an idle stream
                        yield ": keep-alive\n\n"
                        continue
                    except AlertOverflow:
                        yield "event: overflow\ndata: {}\n\n"
                        return
                    yield f"id: {alert.id}\nevent: alert\ndata: {json.dumps(alert_json(alert))}\n\n"
            finally:
                ctx.hub.unsubscribe(ward, sub)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.get("/wards/{ward}/alerts", tags=["ward"])
    async def ward_alerts(ward: str, open_only: bool = Query(True, alias="open"),
                          authorization: str | None = Header(None)):
        p = await who(authorization)
        ctx.authorize(p, READ, ward)
        serves(ward)
        return {"alerts": [alert_json(a) for a in await ctx.db(ctx.repo.alerts, ward, open_only)]}

    @app.post("/wards/{ward}/alerts/{alert_id}/acknowledge", tags=["ward"])
    async def acknowledge(ward: str, alert_id: str, authorization: str | None = Header(None)):
        p = await who(authorization)
        ctx.authorize(p, ACKNOWLEDGE, ward)
        found = await ctx.db(ctx.repo.acknowledge, alert_id, ward, p.subject, time.time())
        if found is None:
            raise Problem(404, "Unknown alert", "no such alert in this ward")
        return alert_json(found)

    @app.get("/wards/{ward}/audit", tags=["ward"])
    async def audit_log(ward: str, limit: int = Query(100, ge=1, le=10000),
                        authorization: str | None = Header(None)):
        """The append-only record of every administration and refusal, newest first."""
        p = await who(authorization)
        ctx.authorize(p, AUDIT, ward)
        serves(ward)
        entries = await ctx.db(ctx.repo.audit_log, ward, limit)
        return {"entries": [e | {"at": fhir_codec.instant(e["at"]),
                                 "detail": json.loads(e["detail"])} for e in entries]}

    return app


def alert_json(a) -> dict:
    return {"id": a.id, "ward": a.ward, "patient_id": a.patient_id,
            "encounter_id": a.encounter_id, "score": a.score, "risk": a.risk,
            "parameters": a.parameters, "effective_at": fhir_codec.instant(a.effective_at),
            "raised_at": fhir_codec.instant(a.raised_at),
            "acknowledged_by": a.acknowledged_by,
            "acknowledged_at": fhir_codec.instant(a.acknowledged_at) if a.acknowledged_at else None}

