"""The nursing service as a FHIR R4 server, checked by the official HAPI FHIR validator
(HAPI 8.8.0, org.hl7.fhir.validation 6.7.9, R4 4.0.1 definitions) against what a real
service process answers. The validator runs offline: no terminology server is configured,
so LOINC, SNOMED CT and GTIN codes are reported as unverifiable (warnings), while UCUM,
FHIR's own code systems and the code systems the service publishes are checked."""
import collections
import time
import uuid
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fhir.resources.R4B import get_fhir_model_class

FHIR_JSON = "application/fhir+json"
FIVE_RIGHTS = "https://medmec.io/fhir/CodeSystem/five-rights"


def band() -> str:
    return f"WB-{uuid.uuid4().hex[:10]}"


# Validating a StructureDefinition whose context is an element, the validator core checks
# that element in every published FHIR version it does not hold: HAPI's context says 4.0.1,
# the core's list says 4.0, so it asks the package registry for hl7.fhir.r4.core (no
# version). Offline that download is refused (see OFFLINE in hapi/hapi_validator.py) and
# the validator reports it as an error of the definition; online it would pass.
OFFLINE_PACKAGE_LOAD = "Unable to resolve package id hl7.fhir.r4.core#null"


def offline_limitation(issue: dict) -> bool:
    return issue["location"] == "StructureDefinition" and OFFLINE_PACKAGE_LOAD in issue["message"]


def errors(issues: list[dict]) -> list[dict]:
    return [i for i in issues if i["severity"] in ("error", "fatal") and not offline_limitation(i)]


def load_published(http, hapi) -> list[dict]:
    """What the service publishes about itself (no credential needed), loaded into the validator."""
    published = [e["resource"] for kind in ("CodeSystem", "StructureDefinition")
                 for e in http.get(f"/fhir/{kind}").json()["entry"]]
    hapi.load(published)
    return published


class Recorder:
    """Every FHIR response of a session with the service, as a real client would see it."""

    def __init__(self, http: httpx.Client):
        self.http, self.responses = http, []

    def __call__(self, method: str, path: str, who: dict | None, status: int, **kw) -> dict:
        r = self.http.request(method, path, headers=who or {}, **kw)
        assert r.status_code == status, f"{method} {path}: {r.text}"
        if r.headers["content-type"].startswith(FHIR_JSON):
            self.responses.append((f"{method} {urlsplit(path).path} {status}", r.json()))
        return r.json()


def ward_day(http, h) -> tuple[Recorder, dict]:
    """Admission, scans, vitals that raise and clear an alert, an order and its dose, a
    wrong-patient scan refused, discharge; every FHIR answer recorded."""
    call = Recorder(http)
    nurse, doctor, device = h.auth("nurse-a"), h.auth("dr-a"), h.auth("gw-a")
    wb = band()
    admitted = call("POST", "/wards/ward-a/admissions", doctor, 201, json={
        "patient": h.patient_resource(wb), "spo2_scale": 2, "assigned_nurse": "nurse-a"})
    pid, eid = admitted["patient"]["id"], admitted["encounter"]["id"]
    call.responses += [("admission Patient", admitted["patient"]),
                       ("admission Encounter", admitted["encounter"])]
    scanned = call("POST", "/wards/ward-a/scan", nurse, 200, json={"wristband": wb})
    assert scanned["encounter"]["id"] == eid
    call("GET", f"/fhir/Patient/{pid}", nurse, 200)
    # on the way first (an ambulance's pre-arrival admission): the ward location is planned
    planned = call("PUT", "/wards/ward-a/planned-arrivals", doctor, 200,
                   json={"wristband": wb, "expected_arrival": h.iso(time.time() + 600)})
    assert planned["encounter"]["location"][0]["status"] == "planned"
    call("GET", f"/fhir/Encounter/{eid}", nurse, 200)
    call("POST", "/wards/ward-a/arrivals", nurse, 200, json={"wristband": wb})
    now = time.time()
    call("POST", "/fhir/Observation", nurse, 201,
         json=h.vitals_resource(pid, at=now - 900, **h.NORMAL))
    sick = dict(h.NORMAL, respiration_rate=25, systolic_bp=91, temperature_c=39.1)  # 7: high
    raised = call("POST", "/fhir/Observation", nurse, 201,
                  json=h.vitals_resource(pid, at=now - 600, **sick))
    [alert] = [a for a in http.get("/wards/ward-a/alerts", headers=nurse).json()["alerts"]
               if a["patient_id"] == pid]
    assert (alert["score"], alert["risk"]) == (7, "high")
    assert http.post(f"/wards/ward-a/alerts/{alert['id']}/acknowledge", headers=nurse).status_code == 200
    call("POST", "/fhir/Observation", device, 201,  # a wearable's partial set
         json=h.vitals_resource(pid, at=now - 300, reading_id="wearable-1", pulse=72, spo2=90))
    cleared = call("POST", "/fhir/Observation", nurse, 201,
                   json=h.vitals_resource(pid, at=now - 60, **h.NORMAL))
    [score] = [c for c in cleared["component"] if c["code"]["coding"][0]["code"] == "score"]
    assert (score["valueInteger"], score["interpretation"][0]["text"]) == (0, "low")
    assert all(a["patient_id"] != pid for a in  # acknowledged, and no new escalation
               http.get("/wards/ward-a/alerts", headers=nurse).json()["alerts"])
    call("GET", f"/fhir/Observation/{raised['id']}", nurse, 200)
    call("GET", f"/fhir/Observation?patient={pid}", nurse, 200)
    call("GET", f"/fhir/Observation?patient={pid}&_count=2", nurse, 200)
    call("GET", f"/fhir/Encounter?patient={pid}", nurse, 200)
    call("GET", f"/fhir/Observation?patient={pid}&date=lt2000-01-01", nurse, 200)  # finds none
    order = call("POST", "/fhir/MedicationRequest", doctor, 201, json=h.order_resource(pid))
    call("GET", f"/fhir/MedicationRequest/{order['id']}", nurse, 200)
    call("GET", f"/fhir/MedicationRequest?patient={pid}", nurse, 200)
    give = {"order_id": order["id"], "wristband": wb, "drug_barcode": "05012345678900",
            "dose_value": 1000, "dose_unit": "mg", "route_code": "26643006"}
    neighbour = band()
    h.admit(http, "ward-a", neighbour)
    refused = call("POST", "/wards/ward-a/administrations", nurse, 422,
                   json={**give, "wristband": neighbour})
    assert refused["issue"][0]["details"]["coding"] == [{"system": FIVE_RIGHTS, "code": "patient"}]
    given = call("POST", "/wards/ward-a/administrations", nurse, 201, json=give)
    call("GET", f"/fhir/MedicationAdministration/{given['id']}", nurse, 200)
    call("GET", f"/fhir/MedicationAdministration?patient={pid}", nurse, 200)
    call("POST", "/wards/ward-a/administrations", nurse, 409, json=give)  # given already
    call("POST", f"/wards/ward-a/encounters/{eid}/discharge", doctor, 200)
    call("POST", "/wards/ward-a/scan", nurse, 409, json={"wristband": wb})
    call("GET", f"/fhir/Patient/{uuid.uuid4()}", nurse, 404)
    call("GET", "/fhir/metadata", None, 200)
    return call, {"patient": pid, "encounter": eid, "raised": raised, "cleared": cleared,
                  "given": given, "order": order}


def test_a_wards_day_is_valid_fhir_r4_for_the_official_validator(service, http, h, hapi):
    published = load_published(http, hapi)
    call, day = ward_day(http, h)
    responses = call.responses + [("published", r) for r in published]
    results = hapi.validate([r for _, r in responses])
    counts = collections.defaultdict(collections.Counter)
    for (label, resource), issues in zip(responses, results):
        kind = resource["resourceType"]
        counts[kind]["resources"] += 1
        counts[kind].update(i["severity"] for i in issues)
    print("\nHAPI validator, per resource type:", {k: dict(v) for k, v in sorted(counts.items())})
    found = [(label, i["location"], i["message"]) for (label, _), issues in zip(responses, results)
             for i in errors(issues)]
    assert found == []
    # the one error left aside is the refused package download, once per StructureDefinition
    assert [r["resourceType"] for (_, r), issues in zip(responses, results)
            for i in issues if offline_limitation(i)] == ["StructureDefinition"]
    kinds = set(counts)
    assert kinds >= {"Patient", "Encounter", "Observation", "MedicationRequest", "Bundle",
                     "MedicationAdministration", "OperationOutcome", "CapabilityStatement",
                     "CodeSystem", "StructureDefinition"}
    # the vital-signs profile holds for every Observation but for the coded ACVPU value, to
    # which the R4 profile's required UCUM binding of component.value[x] cannot apply
    profiled = [vitalsigns_claimed(r) for _, r in call.responses if r["resourceType"] == "Observation"]
    without_acvpu = [{**r, "component": [c for c in r["component"] if not is_acvpu(c)]} for r in profiled]
    results = hapi.validate(profiled + without_acvpu)
    assert [errors(issues) for issues in results[len(profiled):]] == [[]] * len(profiled)
    for obs, issues in zip(profiled, results):
        acvpu = [f"Observation.component[{k}].value.ofType(CodeableConcept)"
                 for k, c in enumerate(obs["component"]) if is_acvpu(c)]
        assert [i["location"] for i in errors(issues)] == acvpu
        assert all("ucum-vitals-common" in i["message"] for i in errors(issues))
    # the NEWS2 score carries coded interpretations (medmec's risk band and HL7's v3 code)
    [score] = [c for c in day["raised"]["component"] if c["code"]["coding"][0]["code"] == "score"]
    assert score["valueInteger"] == 7
    assert {(c["system"], c["code"]) for c in score["interpretation"][0]["coding"]} == {
        ("https://medmec.io/fhir/CodeSystem/news2-risk", "high"),
        ("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "HH")}
    # the administration keeps the route's SNOMED CT system from the order
    assert day["given"]["dosage"]["route"]["coding"][0]["system"] == "http://snomed.info/sct"


def vitalsigns_claimed(obs: dict) -> dict:
    return {**obs, "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]}}


def is_acvpu(component: dict) -> bool:
    return component["code"]["coding"][0]["code"] == "consciousness"


def test_the_validator_really_checks(service, http, h, hapi):
    """Broken copies of real answers (a bad gender, a missing status, a bad UCUM unit, a
    Bundle entry without fullUrl) are errors where they are broken."""
    pid = h.admit(http, "ward-a", band())["patient"]["id"]
    patient = http.get(f"/fhir/Patient/{pid}", headers=h.auth("nurse-a")).json()
    obs = http.post("/fhir/Observation", headers=h.auth("nurse-a"),
                    json=h.vitals_resource(pid, **h.NORMAL)).json()
    bundle = http.get(f"/fhir/Observation?patient={pid}", headers=h.auth("nurse-a")).json()
    no_status = {k: v for k, v in obs.items() if k != "status"}
    bad_unit = {**obs, "component": [{**obs["component"][0], "valueQuantity": {
        **obs["component"][0]["valueQuantity"], "code": "mmHgx"}}]}
    no_full_url = {**bundle, "entry": [{k: v for k, v in e.items() if k != "fullUrl"}
                                       for e in bundle["entry"]]}
    results = hapi.validate([{**patient, "gender": "femalex"}, no_status, bad_unit, no_full_url,
                             patient, obs, bundle])
    located = [{i["location"] for i in errors(issues)} for issues in results]
    assert "Patient.gender" in located[0]
    assert any("status" in i["message"] for i in errors(results[1]))
    assert "Observation.component[0].value.ofType(Quantity)" in located[2]
    assert "Bundle.entry[0]" in located[3]
    assert located[4:] == [set(), set(), set()]


def _follow(http, who, base: str, resource: dict, seen: set) -> None:
    """GET every reference in a resource (recursively into what it finds) and parse it."""
    def references(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "reference" and isinstance(value, str):
                    yield value
                else:
                    yield from references(value)
        elif isinstance(node, list):
            for item in node:
                yield from references(item)

    for ref in references(resource):
        if ref in seen:
            continue
        seen.add(ref)
        r = http.get(f"{base}/{ref}", headers=who)
        assert r.status_code == 200, f"{ref}: {r.text}"
        found = get_fhir_model_class(ref.split("/")[0]).model_validate(r.json())
        assert f"{found.get_resource_type()}/{found.id}" == ref
        _follow(http, who, base, r.json(), seen)


def test_an_integration_engine_reads_the_capability_statement_searches_and_follows_references(
        service, http, h):
    """What a HIS does: read /metadata, run every search it declares by patient (and date),
    parse each Bundle with the fhir.resources models, follow every fullUrl and reference."""
    _, day = ward_day(http, h)
    base, nurse = f"{service.url}/fhir", h.auth("nurse-a")
    capability = http.get("/fhir/metadata").json()  # no credential needed
    assert (capability["fhirVersion"], capability["kind"]) == ("4.0.1", "instance")
    assert set(capability["format"]) >= {FHIR_JSON, "json"}
    declared = {r["type"]: r for r in capability["rest"][0]["resource"]}
    today = time.strftime("%Y-%m-%d", time.gmtime())
    searched = set()
    for kind, resource in declared.items():
        params = {p["name"]: p["type"] for p in resource.get("searchParam", [])}
        if "patient" not in params:
            continue
        date_param = next(name for name, t in params.items() if t == "date")
        r = http.get(f"/fhir/{kind}", headers=nurse,
                     params={"patient": day["patient"], date_param: f"ge{today}"})
        assert r.status_code == 200, r.text
        bundle = get_fhir_model_class("Bundle").model_validate(r.json())
        assert bundle.type == "searchset" and bundle.total == len(bundle.entry) > 0, kind
        assert [link.relation for link in bundle.link][:2] == ["self", "first"]
        seen: set = set()
        for entry in bundle.entry:
            assert entry.search.mode == "match"
            assert entry.fullUrl == f"{base}/{kind}/{entry.resource.id}"
            assert entry.resource.get_resource_type() == kind
            if "read" in [i["code"] for i in resource["interaction"]]:
                assert http.get(entry.fullUrl, headers=nurse).json()["id"] == entry.resource.id
            _follow(http, nurse, base, entry.resource.model_dump(mode="json"), seen)
        searched.add(kind)
    assert searched == {"Encounter", "Observation", "MedicationRequest", "MedicationAdministration"}
    # a date range that excludes today finds nothing
    r = http.get("/fhir/Observation", headers=nurse, params={"patient": day["patient"], "date": "lt2000-01-01"})
    assert r.json()["total"] == 0 and "entry" not in r.json()


def test_searches_page_with_count_and_offset(service, http, h):
    pid = h.admit(http, "ward-a", band())["patient"]["id"]
    now = time.time()
    for k in range(5):  # one a minute, oldest first
        assert http.post("/fhir/Observation", headers=h.auth("nurse-a"), json=h.vitals_resource(
            pid, at=now - 3600 + 60 * k, reading_id=f"paged-{k}", pulse=70 + k)).status_code == 201
    url, pages = f"/fhir/Observation?patient={pid}&_count=2", []
    while url:
        bundle = http.get(url, headers=h.auth("nurse-a")).json()
        assert bundle["total"] == 5
        pages.append([e["resource"]["identifier"][0]["value"] for e in bundle["entry"]])
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert dict(parse_qsl(urlsplit(links["self"]).query))["_count"] == "2"
        url = links.get("next")
    assert pages == [["paged-4", "paged-3"], ["paged-2", "paged-1"], ["paged-0"]]
    assert "previous" in links and dict(parse_qsl(urlsplit(links["last"]).query))["_offset"] == "4"
    # a time range: the middle three, given as a dateTime range
    since, before = h.iso(now - 3600 + 60), h.iso(now - 3600 + 3 * 60 + 1)
    r = http.get("/fhir/Observation", headers=h.auth("nurse-a"),
                 params=[("patient", pid), ("date", f"ge{since}"), ("date", f"lt{before}")])
    assert [e["resource"]["identifier"][0]["value"] for e in r.json()["entry"]] == \
        ["paged-3", "paged-2", "paged-1"]


@pytest.mark.parametrize("accept,fmt,expected", [
    (None, None, FHIR_JSON), (FHIR_JSON, None, FHIR_JSON), ("application/json", None, "application/json"),
    ("*/*", None, FHIR_JSON), ("application/fhir+xml;q=0.9, application/json;q=0.5", None, "application/json"),
    ("application/fhir+xml", "json", FHIR_JSON), (None, "application/json", "application/json"),
])
def test_content_negotiation_answers_fhir_json_or_plain_json(service, accept, fmt, expected):
    headers = {"Accept": accept} if accept else {}
    with httpx.Client(base_url=service.url) as client:  # httpx would send Accept: */*
        if not accept:
            client.headers.pop("accept")
        r = client.get("/fhir/metadata", headers=headers, params={"_format": fmt} if fmt else {})
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == expected
    assert r.json()["resourceType"] == "CapabilityStatement"


def test_formats_the_server_does_not_speak_get_406_operation_outcomes(http, h, hapi):
    for params, headers in (({}, {"Accept": "application/fhir+xml"}), ({"_format": "xml"}, {})):
        r = http.get("/fhir/metadata", params=params, headers=headers)
        assert r.status_code == 406 and r.headers["content-type"].startswith(FHIR_JSON)
        assert r.json()["issue"][0]["code"] == "not-supported"
        assert errors(hapi.validate([r.json()])[0]) == []


def test_bad_input_at_the_fhir_endpoints_gets_an_operation_outcome_with_the_path_and_stores_nothing(
        service, http, h, hapi):
    pid = h.admit(http, "ward-a", band())["patient"]["id"]
    other_ward = h.admit(http, "ward-b", band())["patient"]["id"]
    nurse = h.auth("nurse-a")
    bad_unit = h.vitals_resource(pid, respiration_rate=16, pulse=70)
    bad_unit["component"][1]["valueQuantity"].update(unit="mm[Hg]", code="mm[Hg]")
    bad_status = {**h.vitals_resource(pid, pulse=70), "status": "finalised"}
    cases = [
        ("/fhir/Observation", nurse, bad_unit, 422, ["Observation.component[1].valueQuantity"]),
        ("/fhir/Observation", nurse, bad_status, 422, ["Observation.status"]),
        ("/fhir/Observation", nurse, h.vitals_resource(pid, spo2=140), 422, ["Observation.component[0]"]),
        ("/fhir/Observation", nurse, h.vitals_resource(other_ward, pulse=70), 404, ["Observation.subject"]),
        ("/fhir/Observation", nurse, {**h.vitals_resource(pid, pulse=70), "effectiveDateTime": "today"},
         422, ["Observation.effectiveDateTime"]),
        ("/fhir/MedicationRequest", h.auth("dr-a"), h.order_resource(other_ward), 404,
         ["MedicationRequest.subject"]),
        ("/fhir/Observation", nurse, b'{"resourceType": "Observation", ', 422, None),
    ]
    outcomes = []
    for path, who, body, status, expression in cases:
        sent = {"content": body, "headers": {**who, "content-type": FHIR_JSON}} if isinstance(body, bytes) \
            else {"json": body, "headers": who}
        r = http.post(path, **sent)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith(FHIR_JSON)
        [issue] = r.json()["issue"]
        assert issue.get("expression") == expression, issue
        if expression is None:
            assert "malformed JSON at character" in issue["diagnostics"]
        outcomes.append(r.json())
    assert all(errors(issues) == [] for issues in hapi.validate(outcomes))
    for patient, who in ((pid, nurse), (other_ward, h.auth("nurse-b"))):
        for kind in ("Observation", "MedicationRequest"):
            assert http.get(f"/fhir/{kind}?patient={patient}", headers=who).json()["total"] == 0
    # a search the server cannot honour is a 400 OperationOutcome
    r = http.get(f"/fhir/Observation?patient={pid}&date=sa2026-01-01", headers=nurse)
    assert r.status_code == 400 and "prefix" in r.json()["issue"][0]["diagnostics"]


def test_definitions_are_published_without_a_credential(http, hapi):
    for kind, ids in (("CodeSystem", {"news2", "news2-acvpu", "news2-risk", "five-rights"}),
                      ("StructureDefinition", {"news2-spo2-scale"})):
        bundle = http.get(f"/fhir/{kind}").json()
        assert {e["resource"]["id"] for e in bundle["entry"]} == ids
        for entry in bundle["entry"]:
            url = entry["resource"]["url"]
            assert http.get(f"/fhir/{kind}", params={"url": url}).json()["total"] == 1
            read = get_fhir_model_class(kind).model_validate(http.get(entry["fullUrl"]).json())
            assert read.url == url
    assert http.get("/fhir/CodeSystem/nope").status_code == 404
