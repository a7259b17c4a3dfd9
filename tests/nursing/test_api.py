"""The REST API of a real nursing service process (SQLite): identification, access, the
closed medication loop, vitals, bad input."""
import datetime as dt
import json
import time
import uuid

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from medmec.waiting import wait_for


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def band() -> str:
    return f"WB-{uuid.uuid4().hex[:10]}"


def problem(r, status):
    """The error's one OperationOutcome issue, with `right` (the failed right of a refused
    dose, if any) lifted out of its details coding."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    [issue] = OperationOutcome.model_validate(r.json()).model_dump(mode="json")["issue"]
    assert issue["severity"] == "error" and issue["diagnostics"]
    codings = (issue.get("details") or {}).get("coding") or []
    return {**issue, "right": next((c["code"] for c in codings
                                    if c["system"] == "https://medmec.io/fhir/CodeSystem/five-rights"), None)}


# -- identification -------------------------------------------------------------------
def test_a_patient_on_the_way_is_expected_at_the_ward_until_arrival(http, h):
    """The pre-arrival record's ETA: the Encounter's ward location is `planned` from the
    expected arrival, the ward's incoming list shows it, and arrival clears it."""
    wb = band()
    admitted = h.admit(http, "ward-a", wb)
    assert "status" not in admitted["encounter"]["location"][0]
    assert http.get("/wards/ward-a/incoming", headers=h.auth("nurse-a")).json()["patients"] == []
    for eta_s in (900, 600):  # a later report replaces the first
        r = http.put("/wards/ward-a/planned-arrivals", headers=h.auth("dr-a"),
                     json={"wristband": wb, "expected_arrival": h.iso(time.time() + eta_s)})
        assert r.status_code == 200, r.text
    [location] = r.json()["encounter"]["location"]
    assert location["status"] == "planned" and location["location"]["display"] == "ward-a"
    expected = location["period"]["start"]
    encounter = http.get(f"/fhir/Encounter/{admitted['encounter']['id']}", headers=h.auth("nurse-a")).json()
    assert encounter["location"][0]["period"]["start"] == expected
    [incoming] = http.get("/wards/ward-a/incoming", headers=h.auth("nurse-a")).json()["patients"]
    assert incoming["patient_id"] == admitted["patient"]["id"]
    assert instant(incoming["expected_arrival"]) == instant(expected)
    assert 0 < incoming["eta_seconds"] <= 600
    assert incoming["news2"] is None and incoming["open_alerts"] == 0
    # another ward does not see it
    assert http.get("/wards/ward-b/incoming", headers=h.auth("nurse-b")).json()["patients"] == []
    # the receiving nurse marks the arrival; marking it again changes nothing
    for _ in range(2):
        r = http.post("/wards/ward-a/arrivals", headers=h.auth("nurse-a"), json={"wristband": wb})
        assert r.status_code == 200, r.text
        assert r.json()["encounter"]["location"] == admitted["encounter"]["location"]
        assert r.json()["encounter"]["status"] == "in-progress"
    assert http.get("/wards/ward-a/incoming", headers=h.auth("nurse-a")).json()["patients"] == []


@pytest.mark.parametrize("offset_s, why", [(-3600, "in the past"), (13 * 3600, "ahead"),
                                           (None, "timezone")])
def test_an_absurd_expected_arrival_is_refused_and_not_stored(http, h, offset_s, why):
    wb = band()
    h.admit(http, "ward-a", wb)
    at = h.iso(time.time() + offset_s) if offset_s is not None else "2026-12-01T10:00:00"
    body = problem(http.put("/wards/ward-a/planned-arrivals", headers=h.auth("dr-a"),
                            json={"wristband": wb, "expected_arrival": at}), 422)
    assert why in body["diagnostics"]
    assert http.get("/wards/ward-a/incoming", headers=h.auth("nurse-a")).json()["patients"] == []


def test_only_admitting_roles_of_the_ward_set_an_expected_arrival(http, h):
    wb = band()
    h.admit(http, "ward-a", wb)
    soon = {"wristband": wb, "expected_arrival": h.iso(time.time() + 300)}
    problem(http.put("/wards/ward-a/planned-arrivals", headers=h.auth("nurse-a"), json=soon), 403)
    problem(http.put("/wards/ward-a/planned-arrivals", headers=h.auth("dr-b"), json=soon), 403)
    problem(http.put("/wards/ward-a/planned-arrivals", headers=h.auth("dr-a"),
                     json={**soon, "wristband": band()}), 404)
    problem(http.post("/wards/ward-a/arrivals", headers=h.auth("gw-a"), json={"wristband": wb}), 403)


def test_wristband_resolves_to_exactly_one_admitted_patient(http, h):
    wb = band()
    admitted = h.admit(http, "ward-a", wb)
    r = http.post("/wards/ward-a/scan", headers=h.auth("nurse-a"), json={"wristband": wb})
    assert r.status_code == 200
    assert r.json()["patient"]["id"] == admitted["patient"]["id"]
    assert r.json()["encounter"]["status"] == "in-progress"
    # a second admitted patient cannot wear the same band
    r = http.post("/wards/ward-a/admissions", headers=h.auth("dr-a"),
                  json={"patient": h.patient_resource(wb)})
    problem(r, 409)


def test_unknown_and_discharged_wristbands_are_refused(http, h):
    problem(http.post("/wards/ward-a/scan", headers=h.auth("nurse-a"),
                      json={"wristband": band()}), 404)
    wb = band()
    enc = h.admit(http, "ward-a", wb)["encounter"]
    r = http.post(f"/wards/ward-a/encounters/{enc['id']}/discharge", headers=h.auth("dr-a"))
    assert r.status_code == 200 and r.json()["status"] == "finished"
    body = problem(http.post("/wards/ward-a/scan", headers=h.auth("nurse-a"),
                             json={"wristband": wb}), 409)
    assert "discharged" in body["diagnostics"]
    # the band may be printed again for a new admission, which it then identifies
    again = h.admit(http, "ward-a", wb)
    r = http.post("/wards/ward-a/scan", headers=h.auth("nurse-a"), json={"wristband": wb})
    assert r.json()["encounter"]["id"] == again["encounter"]["id"]


# -- access -----------------------------------------------------------------------------
def test_every_call_needs_a_valid_bearer_token(http, h):
    for headers in ({}, {"Authorization": "Bearer not-a-known-token-xyz"},
                    {"Authorization": f"Basic {h.TOKENS['nurse-a']['token']}"}):
        r = http.get("/wards/ward-a/worklist", headers=headers)
        problem(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"
    assert http.get("/healthz").status_code == 200


def test_roles_limit_what_a_token_may_do(http, h):
    pid = h.admit(http, "ward-a", band())["patient"]["id"]
    problem(http.get("/wards/ward-a/worklist", headers=h.auth("gw-a")), 403)  # devices only write
    problem(http.post("/fhir/MedicationRequest", headers=h.auth("nurse-a"),
                      json=h.order_resource(pid)), 403)  # nurses do not prescribe
    problem(http.post("/wards/ward-a/admissions", headers=h.auth("nurse-a"),
                      json={"patient": h.patient_resource(band())}), 403)


def test_a_nurse_of_ward_b_cannot_read_ward_a(http, h):
    wb = band()
    pid = h.admit(http, "ward-a", wb)["patient"]["id"]
    obs = http.post("/fhir/Observation", headers=h.auth("nurse-a"), json=h.vitals_resource(pid, **h.NORMAL))
    assert obs.status_code == 201
    b = h.auth("nurse-b")
    problem(http.get("/wards/ward-a/worklist", headers=b), 403)
    problem(http.get("/wards/ward-a/alerts", headers=b), 403)
    problem(http.post("/wards/ward-a/scan", headers=b, json={"wristband": wb}), 403)
    problem(http.post("/wards/ward-b/scan", headers=b, json={"wristband": wb}), 404)
    for path in (f"/fhir/Patient/{pid}", f"/fhir/Observation?patient={pid}",
                 f"/fhir/MedicationRequest?patient={pid}",
                 f"/fhir/MedicationAdministration?patient={pid}", f"/fhir/Observation/{obs.json()['id']}"):
        problem(http.get(path, headers=b), 404)
        assert http.get(path, headers=h.auth("nurse-a")).status_code == 200
    problem(http.post("/fhir/Observation", headers=b, json=h.vitals_resource(pid, pulse=80)), 404)
    problem(http.post("/fhir/MedicationRequest", headers=h.auth("dr-b"),
                      json=h.order_resource(pid)), 404)


# -- medication closed loop ---------------------------------------------------------------
@pytest.fixture
def ordered(http, h):
    """A patient of ward A with a 4-dose order whose first dose is due now."""
    wb = band()
    pid = h.admit(http, "ward-a", wb, nurse="nurse-a")["patient"]["id"]
    r = http.post("/fhir/MedicationRequest", headers=h.auth("dr-a"), json=h.order_resource(pid))
    assert r.status_code == 201, r.text
    return {"wristband": wb, "patient_id": pid, "order": r.json(),
            "give": {"order_id": r.json()["id"], "wristband": wb, "drug_barcode": "05012345678900",
                     "dose_value": 1000, "dose_unit": "mg", "route_code": "26643006"}}


@pytest.mark.parametrize("right,change", [
    ("patient", {"wristband": "OTHER"}),
    ("drug", {"drug_barcode": "05099999999999"}),
    ("dose", {"dose_value": 500}),
    ("dose", {"dose_unit": "g", "dose_value": 1}),
    ("route", {"route_code": "47625008"}),  # intravenous
])
def test_each_wrong_right_is_refused_on_its_own(http, h, ordered, right, change):
    scan = {**ordered["give"], **change}
    if right == "patient":  # a real, admitted neighbour's band
        scan["wristband"] = band()
        h.admit(http, "ward-a", scan["wristband"])
    body = problem(http.post("/wards/ward-a/administrations", headers=h.auth("nurse-a"),
                             json=scan), 422)
    assert body["right"] == right
    # nothing was given: the correct scan still succeeds afterwards
    r = http.post("/wards/ward-a/administrations", headers=h.auth("nurse-a"), json=ordered["give"])
    assert r.status_code == 201, r.text
    audit = http.get("/wards/ward-a/audit", headers=h.auth("dr-a")).json()["entries"]
    mine = [e for e in audit if e["order_id"] == ordered["order"]["id"]]
    assert [(e["outcome"], e["right_failed"]) for e in mine] == [("given", None), ("refused", right)]
    assert mine[0]["actor"] == "nurse-a"


def test_wrong_time_and_duplicate_administration_are_refused(http, h):
    wb = band()
    pid = h.admit(http, "ward-a", wb)["patient"]["id"]
    later = http.post("/fhir/MedicationRequest", headers=h.auth("dr-a"),
                      json=h.order_resource(pid, start=time.time() + 3 * 3600)).json()
    give = {"order_id": later["id"], "wristband": wb, "drug_barcode": "05012345678900",
            "dose_value": 1000, "dose_unit": "mg", "route_code": "26643006"}
    body = problem(http.post("/wards/ward-a/administrations", headers=h.auth("nurse-a"),
                             json=give), 422)
    assert body["right"] == "time" and "180 min" in body["diagnostics"]
    now = http.post("/fhir/MedicationRequest", headers=h.auth("dr-a"),
                    json=h.order_resource(pid)).json()
    give["order_id"] = now["id"]
    first = http.post("/wards/ward-a/administrations", headers=h.auth("nurse-a"), json=give)
    assert first.status_code == 201
    given = MedicationAdministration.model_validate(first.json())
    assert given.request.reference == f"MedicationRequest/{now['id']}"
    assert given.dosage.dose.value == 1000 and given.subject.reference == f"Patient/{pid}"
    body = problem(http.post("/wards/ward-a/administrations", headers=h.auth("nurse-a2"),
                             json=give), 409)
    assert body["right"] == "time" and "already been given" in body["diagnostics"]
    bundle = Bundle.model_validate(http.get(f"/fhir/MedicationAdministration?patient={pid}",
                                            headers=h.auth("nurse-a")).json())
    assert bundle.total == 1


def test_a_discharged_band_cannot_receive_medication(http, h, ordered):
    enc = http.post("/wards/ward-a/scan", headers=h.auth("nurse-a"),
                    json={"wristband": ordered["wristband"]}).json()["encounter"]
    http.post(f"/wards/ward-a/encounters/{enc['id']}/discharge", headers=h.auth("dr-a"))
    body = problem(http.post("/wards/ward-a/administrations", headers=h.auth("nurse-a"),
                             json=ordered["give"]), 422)
    assert body["right"] == "patient" and "discharged" in body["diagnostics"]


def test_worklist_shows_due_and_overdue_doses_and_alerting_patients(http, h):
    wb = band()
    pid = h.admit(http, "ward-b", wb, nurse="nurse-b")["patient"]["id"]
    # doses every 2 h from 5 h ago: -5h and -3h are overdue, -1h is overdue too, +1h not yet
    order = http.post("/fhir/MedicationRequest", headers=h.auth("dr-b"), json=h.order_resource(
        pid, start=time.time() - 5 * 3600 + 600, every_h=2, count=None)).json()
    other = h.admit(http, "ward-b", band(), nurse="someone-else")["patient"]["id"]
    sick = dict(h.NORMAL, respiration_rate=25, systolic_bp=91, temperature_c=39.1)  # 7: high
    assert http.post("/fhir/Observation", headers=h.auth("nurse-b"),
                     json=h.vitals_resource(pid, **sick)).status_code == 201
    items = http.get("/wards/ward-b/worklist", headers=h.auth("nurse-b")).json()["items"]
    assert {i["patient_id"] for i in items} == {pid}  # only the nurse's own patients
    assert items[0]["status"] == "alerting" and items[0]["risk"] == "high"
    meds = [i for i in items if i["kind"] == "medication"]
    assert [i["status"] for i in meds] == ["overdue", "overdue", "overdue"]
    assert all(i["order_id"] == order["id"] for i in meds)
    everyone = http.get("/wards/ward-b/worklist?nurse=all", headers=h.auth("nurse-b")).json()
    assert {i["patient_id"] for i in everyone["items"]} == {pid, other}


# -- vitals, NEWS2 and alerts ---------------------------------------------------------------
def test_a_complete_set_is_scored_and_a_deterioration_alerts_the_ward(http, h):
    pid = h.admit(http, "ward-a", band())["patient"]["id"]
    r = http.post("/fhir/Observation", headers=h.auth("nurse-a"),
                  json=h.vitals_resource(pid, **h.NORMAL))
    obs = Observation.model_validate(r.json())
    score = [c for c in obs.component if c.code.coding[0].code == "score"]
    assert score[0].valueInteger == 0
    assert all(a["patient_id"] != pid for a in http.get(
        "/wards/ward-a/alerts", headers=h.auth("nurse-a")).json()["alerts"])
    r = http.post("/fhir/Observation", headers=h.auth("nurse-a"),
                  json=h.vitals_resource(pid, consciousness="V"))  # completes with the rest: 3
    assert r.status_code == 201
    alerts = [a for a in http.get("/wards/ward-a/alerts", headers=h.auth("nurse-a")).json()["alerts"]
              if a["patient_id"] == pid]
    assert [(a["score"], a["risk"], a["parameters"]["consciousness"]) for a in alerts] == \
        [(3, "low-medium", 3)]
    ack = http.post(f"/wards/ward-a/alerts/{alerts[0]['id']}/acknowledge", headers=h.auth("nurse-a"))
    assert ack.json()["acknowledged_by"] == "nurse-a"
    still_open = http.get("/wards/ward-a/alerts", headers=h.auth("nurse-a")).json()["alerts"]
    assert all(a["id"] != alerts[0]["id"] for a in still_open)


def test_handhelds_receive_alerts_as_server_sent_events(service, http, h):
    pid = h.admit(http, "ward-b", band())["patient"]["id"]
    problem(http.get("/wards/ward-b/alerts/stream", headers=h.auth("nurse-a")), 403)
    with httpx.Client(base_url=service.url, timeout=10) as listener, \
            listener.stream("GET", "/wards/ward-b/alerts/stream", headers=h.auth("nurse-b")) as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = events.iter_lines()
        assert next(lines) == ": subscribed"
        sick = dict(h.NORMAL, respiration_rate=25, systolic_bp=91, temperature_c=39.1)  # 7
        assert http.post("/fhir/Observation", headers=h.auth("nurse-b"),
                         json=h.vitals_resource(pid, **sick)).status_code == 201
        received = {}
        for line in lines:
            if not line:
                if received:
                    break  # the end of the first event
                continue
            field, _, value = line.partition(": ")
            received[field] = value
    assert received["event"] == "alert"
    data = json.loads(received["data"])
    assert (data["patient_id"], data["score"], data["risk"]) == (pid, 7, "high")
    assert received["id"] == data["id"]


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("values,field", [({"spo2": 140}, "spo2"), ({"pulse": -3}, "pulse"),
                                          ({"temperature_c": 52.0}, "temperature_c")])
def test_out_of_range_vitals_are_refused_and_not_stored(http, h, values, field):
    pid = h.admit(http, "ward-a", band())["patient"]["id"]
    body = problem(http.post("/fhir/Observation", headers=h.auth("nurse-a"),
                             json=h.vitals_resource(pid, **values)), 422)
    assert field in body["diagnostics"]
    stored = http.get(f"/fhir/Observation?patient={pid}", headers=h.auth("nurse-a")).json()
    assert stored["total"] == 0


def test_malformed_fhir_is_refused_and_nothing_is_half_written(http, h):
    wb = band()
    bad = h.patient_resource(wb, birthDate="yesterday")
    body = problem(http.post("/wards/ward-a/admissions", headers=h.auth("dr-a"),
                             json={"patient": bad}), 422)
    assert "birthDate" in body["diagnostics"]
    problem(http.post("/wards/ward-a/scan", headers=h.auth("nurse-a"), json={"wristband": wb}), 404)
    no_band = {"resourceType": "Patient", "name": [{"family": "X"}]}
    problem(http.post("/wards/ward-a/admissions", headers=h.auth("dr-a"),
                      json={"patient": no_band}), 422)
    problem(http.post("/wards/ward-a/admissions", headers=h.auth("dr-a"),
                      json={"patient": {"resourceType": "Observation"}}), 422)
    r = http.post("/fhir/Observation", headers={**h.auth("nurse-a"), "content-type": "application/json"},
                  content=b"{not json")
    problem(r, 422)
    pid = h.admit(http, "ward-a", wb)["patient"]["id"]  # the band was never taken
    no_schedule = h.order_resource(pid)
    del no_schedule["dosageInstruction"][0]["timing"]
    problem(http.post("/fhir/MedicationRequest", headers=h.auth("dr-a"), json=no_schedule), 422)
    assert http.get(f"/fhir/MedicationRequest?patient={pid}",
                    headers=h.auth("nurse-a")).json()["total"] == 0
    assert http.get("/healthz").status_code == 200


def test_unknown_patient_is_a_404(http, h):
    problem(http.post("/fhir/Observation", headers=h.auth("nurse-a"),
                      json=h.vitals_resource(str(uuid.uuid4()), pulse=80)), 404)
    problem(http.get(f"/fhir/Patient/{uuid.uuid4()}", headers=h.auth("nurse-a")), 404)
    problem(http.post("/wards/ward-b/administrations", headers=h.auth("nurse-b"), json={
        "order_id": "nope", "wristband": "x", "drug_barcode": "1", "dose_value": 1,
        "dose_unit": "mg", "route_code": "1"}), 404)
    [entry] = [e for e in http.get("/wards/ward-b/audit", headers=h.auth("dr-b")).json()["entries"]
               if e["order_id"] == "nope"]
    assert (entry["outcome"], entry["actor"]) == ("refused", "nurse-b")  # refusals are audited


# -- FHIR exchange ----------------------------------------------------------------------
def test_fhir_resources_round_trip_through_the_model_library(http, h):
    wb = band()
    admitted = h.admit(http, "ward-a", wb)
    pid = admitted["patient"]["id"]
    got = Patient.model_validate(http.get(f"/fhir/Patient/{pid}", headers=h.auth("nurse-a")).json())
    assert got.model_dump(mode="json", exclude_none=True) == \
        Patient.model_validate({**h.patient_resource(wb), "id": pid}).model_dump(
            mode="json", exclude_none=True)
    order = h.order_resource(pid)
    created = MedicationRequest.model_validate(http.post(
        "/fhir/MedicationRequest", headers=h.auth("dr-a"), json=order).json())
    searched = Bundle.model_validate(http.get(f"/fhir/MedicationRequest?patient={pid}",
                                              headers=h.auth("nurse-a")).json())
    read_back = searched.entry[0].resource
    assert read_back.id == created.id
    assert read_back.dosageInstruction == MedicationRequest.model_validate(order).dosageInstruction
    assert read_back.encounter.reference == f"Encounter/{admitted['encounter']['id']}"
    obs_in = h.vitals_resource(pid, reading_id="handheld-1", **h.NORMAL)
    posted = http.post("/fhir/Observation", headers=h.auth("nurse-a"), json=obs_in).json()
    searched = Bundle.model_validate(http.get(f"/fhir/Observation?patient={pid}",
                                              headers=h.auth("nurse-a")).json())
    obs = searched.entry[0].resource
    assert obs.id == posted["id"] and obs.identifier[0].value == "handheld-1"
    sent_components = {coding["code"]: c for c in obs_in["component"] for coding in c["code"]["coding"]}
    for comp in obs.component:
        codes = [c.code for c in comp.code.coding]
        if codes == ["score"]:
            assert comp.valueInteger == 0
        elif comp.valueQuantity is not None:  # SpO2 comes back with the profile's LOINC code too
            [sent] = {id(sent_components[c]): sent_components[c] for c in codes
                      if c in sent_components}.values()
            assert float(comp.valueQuantity.value) == float(sent["valueQuantity"]["value"])
    # a resend of the same reading (same identifier) is stored once, and answers what was stored
    resent = {**obs_in, "component": [c for c in obs_in["component"] if c["code"]["coding"][0]["code"] != "8867-4"]}
    again = http.post("/fhir/Observation", headers=h.auth("nurse-a"), json=resent).json()
    assert again == posted == http.get(f"/fhir/Observation/{posted['id']}", headers=h.auth("nurse-a")).json()
    assert http.get(f"/fhir/Observation?patient={pid}", headers=h.auth("nurse-a")).json()["total"] == 1


# -- privacy and self-description ------------------------------------------------------------
def test_no_patient_identifier_reaches_the_log_or_the_traces(http, h, service, ordered):
    scanned = http.post("/wards/ward-a/scan", headers=h.auth("nurse-a"),
                        json={"wristband": ordered["wristband"]}).json()
    pid = ordered["patient_id"]
    assert http.get(f"/fhir/Patient/{pid}", headers=h.auth("nurse-a")).status_code == 200
    assert http.post("/fhir/Observation", headers=h.auth("nurse-a"),
                     json=h.vitals_resource(pid, **h.NORMAL)).status_code == 201
    given = http.post("/wards/ward-a/administrations", headers=h.auth("nurse-a"), json=ordered["give"])
    assert given.status_code == 201
    assert http.get(f"/fhir/Observation?patient={pid}", headers=h.auth("nurse-b")).status_code == 404
    for path in (f"/fhir/Encounter?patient={pid}&date=ge2020-01-01", f"/fhir/Observation?patient={pid}",
                 f"/fhir/MedicationRequest/{ordered['order']['id']}",
                 f"/fhir/MedicationAdministration/{given.json()['id']}"):  # the last request
        assert http.get(path, headers=h.auth("nurse-a")).status_code == 200
    wait_for(lambda: '"name": "GET /fhir/MedicationAdministration/{administration_id}"' in service.log(),
             timeout=10, what="the last request's span in the log", interval=0.2)
    log = service.log()
    assert '"http.route": "/wards/{ward}/scan"' in log  # spans were exported
    assert "GET /fhir/Patient/{patient_id} 200" in log  # and requests logged
    for identifier in (pid, ordered["wristband"], scanned["encounter"]["id"], "Example",
                       ordered["order"]["id"], given.json()["id"]):
        assert identifier not in log


def test_the_service_serves_its_openapi_document(http):
    doc = http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in ("/wards/{ward}/scan", "/wards/{ward}/administrations", "/fhir/Observation",
                 "/wards/{ward}/worklist"):
        assert path in doc["paths"]
