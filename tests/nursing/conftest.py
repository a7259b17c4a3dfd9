"""Fixtures: the real nursing service as a process (SQLite or a real PostgreSQL server),
the official HAPI FHIR validator as one JVM, bearer tokens for each role, and small
builders of FHIR resources."""
from __future__ import annotations

import datetime as dt
import importlib.util
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest

from medmec.workloads.nursing.local_service import LocalNursingService
from medmec.workloads.nursing.pg_server import LocalPostgres
from medmec.workloads.nursing.protos import nursing_pb2, nursing_pb2_grpc

WRISTBAND = "https://medmec.io/fhir/sid/wristband"
GTIN = "https://www.gs1.org/gtin"
TOKENS = {
    "nurse-a": {"token": "tok-nurse-a-0000000001", "role": "nurse", "ward": "ward-a"},
    "nurse-a2": {"token": "tok-nurse-a2-000000001", "role": "nurse", "ward": "ward-a"},
    "dr-a": {"token": "tok-doctor-a-000000001", "role": "doctor", "ward": "ward-a"},
    "gw-a": {"token": "tok-device-a-000000001", "role": "device", "ward": "ward-a"},
    "nurse-b": {"token": "tok-nurse-b-0000000001", "role": "nurse", "ward": "ward-b"},
    "dr-b": {"token": "tok-doctor-b-000000001", "role": "doctor", "ward": "ward-b"},
    "it-ops": {"token": "tok-admin-00000000001", "role": "admin", "ward": "*"},
}
WARDS = ["ward-a", "ward-b"]
NORMAL = {"respiration_rate": 16, "spo2": 97, "on_oxygen": False, "systolic_bp": 120,
          "pulse": 70, "consciousness": "A", "temperature_c": 37.0}


def auth(subject: str) -> dict:
    return {"Authorization": f"Bearer {TOKENS[subject]['token']}"}


def grpc_auth(subject: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {TOKENS[subject]['token']}")]


@pytest.fixture(scope="session")
def postgres():
    with LocalPostgres() as pg:
        yield pg


@pytest.fixture(scope="session")
def hapi(tmp_path_factory):
    """The HAPI FHIR validator (fetched into the cache on first use), offline: no terminology
    server is configured and the JVM's sockets go to a closed loopback port."""
    spec = importlib.util.spec_from_file_location(
        "hapi_validator", Path(__file__).parent / "hapi" / "hapi_validator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    validator = module.HapiValidator(tmp_path_factory.mktemp("hapi") / "validator.log")
    yield validator
    validator.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("nursing")
    # spans go to the log too (console exporter), so tests can read what traces would carry
    svc = LocalNursingService(workdir, f"sqlite:///{workdir}/nursing.db", TOKENS, WARDS, env={
        "OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "100"}).start()
    yield svc
    svc.stop()


@pytest.fixture
def http(service):
    with httpx.Client(base_url=service.url, timeout=30) as client:
        yield client


def patient_resource(wristband: str, **extra) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": WRISTBAND, "value": wristband}],
            "name": [{"family": "Example", "given": ["Pat"]}], "gender": "female",
            "birthDate": "1948-03-02", **extra}


def admit(http: httpx.Client, ward: str, wristband: str, doctor: str | None = None,
          nurse: str | None = None, spo2_scale: int = 1) -> dict:
    doctor = doctor or ("dr-a" if ward == "ward-a" else "dr-b")
    r = http.post(f"/wards/{ward}/admissions", headers=auth(doctor), json={
        "patient": patient_resource(wristband), "spo2_scale": spo2_scale,
        "assigned_nurse": nurse})
    assert r.status_code == 201, r.text
    return r.json()


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()


def order_resource(patient_id: str, *, gtin="05012345678900", drug="Paracetamol 500 mg tablet",
                   dose=1000, unit="mg", route="26643006", route_name="Oral route",
                   start: float | None = None, every_h: float = 6, count: int | None = 4) -> dict:
    repeat = {"boundsPeriod": {"start": iso(time.time() if start is None else start)},
              "frequency": 1, "period": every_h, "periodUnit": "h"}
    if count is not None:
        repeat["count"] = count
    return {
        "resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
        "medicationCodeableConcept": {"coding": [{"system": GTIN, "code": gtin, "display": drug}]},
        "dosageInstruction": [{
            "route": {"coding": [{"system": "http://snomed.info/sct", "code": route,
                                  "display": route_name}]},
            "doseAndRate": [{"doseQuantity": {"value": dose, "unit": unit,
                                              "system": "http://unitsofmeasure.org", "code": unit}}],
            "timing": {"repeat": repeat}}],
    }


def vitals_resource(patient_id: str, at: float | None = None, reading_id: str | None = None,
                    **values) -> dict:
    loinc = {"respiration_rate": ("9279-1", "/min"), "spo2": ("59408-5", "%"),
             "systolic_bp": ("8480-6", "mm[Hg]"), "pulse": ("8867-4", "/min"),
             "temperature_c": ("8310-5", "Cel")}
    components = []
    for name, value in values.items():
        if name in loinc:
            code, unit = loinc[name]
            components.append({"code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                               "valueQuantity": {"value": value, "unit": unit,
                                                 "system": "http://unitsofmeasure.org", "code": unit}})
        elif name == "consciousness":
            components.append({"code": {"coding": [{"system": "https://medmec.io/fhir/CodeSystem/news2",
                                                    "code": "consciousness"}]},
                               "valueCodeableConcept": {"coding": [{"code": value}]}})
        elif name == "on_oxygen":
            components.append({"code": {"coding": [{"system": "https://medmec.io/fhir/CodeSystem/news2",
                                                    "code": "on-oxygen"}]}, "valueBoolean": value})
    resource = {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "85353-1"}]},
                "subject": {"reference": f"Patient/{patient_id}"},
                "effectiveDateTime": iso(time.time() if at is None else at),
                "component": components}
    if reading_id:
        resource["identifier"] = [{"system": "https://medmec.io/fhir/sid/reading", "value": reading_id}]
    return resource


def reading(patient_id: str, reading_id: str, at: float | None = None, **values):
    return nursing_pb2.VitalReading(reading_id=reading_id, patient_id=patient_id,
                                    effective_time_ms=int(1000 * (at or time.time())), **values)


def watch_alerts(target: str, ward: str, subject: str):
    """A subscribed alert stream (returns once the server has registered it) and its channel."""
    channel = grpc.insecure_channel(target)
    stub = nursing_pb2_grpc.CloudNursingStub(channel)
    call = stub.WatchAlerts(nursing_pb2.WatchAlertsRequest(ward=ward), metadata=grpc_auth(subject))
    call.initial_metadata()  # sent by the server once it is subscribed
    return call, channel


@pytest.fixture
def h():
    """These helpers, for the test modules (conftest is not importable under importlib mode)."""
    return sys.modules[__name__]
