"""FHIR R4 JSON in and out (fhir.resources' R4B models, wire-compatible with R4 here).

Incoming resources are validated by the model library first and then checked for what
this service needs (a wristband identifier, a GTIN-coded drug, a schedule, ...); any
problem raises FhirError with a message and the FHIRPath of the element. Outgoing resources
are built as dicts and validated through the same models; the official HAPI validator checks
them in the tests (tests/nursing/test_fhir_conformance.py).
"""
from __future__ import annotations

import datetime as dt
import json

from fhir.resources.R4B.encounter import Encounter as FhirEncounter
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from .fhir_conformance import ACVPU_SYSTEM, NEWS2_SYSTEM, RISK_SYSTEM, SPO2_SCALE_EXTENSION
from .news2 import validate_update
from .records import Administration, Encounter, Order

WRISTBAND_SYSTEM = "https://medmec.io/fhir/sid/wristband"
READING_SYSTEM = "https://medmec.io/fhir/sid/reading"
GTIN_SYSTEM = "https://www.gs1.org/gtin"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
VITAL_SIGNS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

# vital-sign components: the LOINC codes the FHIR R4 vital-signs profiles name (SpO2 also
# carries the pulse-oximetry code devices send), UCUM units from its ucum-vitals-common set
_QUANTITIES = {
    "respiration_rate": ([("9279-1", "Respiratory rate")], "/min"),
    "spo2": ([("2708-6", "Oxygen saturation in Arterial blood"),
              ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")], "%"),
    "systolic_bp": ([("8480-6", "Systolic blood pressure")], "mm[Hg]"),
    "pulse": ([("8867-4", "Heart rate")], "/min"),
    "temperature_c": ([("8310-5", "Body temperature")], "Cel"),
}
_BY_LOINC = {code: (name, unit) for name, (codes, unit) in _QUANTITIES.items() for code, _ in codes}
# NEWS2 risk -> the nearest HL7 v3 interpretation (the medmec risk coding says it exactly)
_RISK_INTERPRETATION = {"low": ("N", "Normal"), "low-medium": ("A", "Abnormal"),
                        "medium": ("H", "High"), "high": ("HH", "Critical high")}
_GENDERS = {"male", "female", "other", "unknown"}
_OBSERVATION_STATUSES = {"final", "amended", "corrected"}  # stored and served as final
_PERIOD_SECONDS = {"min": 60, "h": 3600, "d": 86400}


class FhirError(ValueError):
    """A resource that is not valid FHIR, or lacks what this service needs; `expression`
    is the FHIRPath of the offending element(s)."""

    def __init__(self, message: str, *expression: str):
        super().__init__(message)
        self.expression = list(expression)


def _path(resource_type: str, loc: tuple) -> str:
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def parse(model, data: object):
    expected = model.get_resource_type()
    if not isinstance(data, dict):
        raise FhirError("the body must be a JSON object (a FHIR resource)", expected)
    if data.get("resourceType") != expected:
        raise FhirError(f"resourceType must be {expected!r}", f"{expected}.resourceType")
    try:
        resource = model.model_validate(data)
    except ValidationError as err:
        errors = err.errors()[:5]
        paths = [_path(expected, e["loc"]) for e in errors]
        problems = "; ".join(f"{path}: {e['msg']}" for path, e in zip(paths, errors))
        raise FhirError(f"invalid FHIR {expected}: {problems}", *paths) from None
    # the model library leaves required code bindings unchecked
    if expected == "Patient" and resource.gender is not None and resource.gender not in _GENDERS:
        raise FhirError(f"Patient.gender must be one of {sorted(_GENDERS)}", "Patient.gender")
    return resource


def _out(model, data: dict) -> dict:
    return model.model_validate(data).model_dump(mode="json", exclude_none=True)


def instant(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()


def _seconds(value, where: str) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise FhirError(f"{where} needs a time zone", where)
        return value.timestamp()
    raise FhirError(f"{where} must be a dateTime with a time", where)


def _ref_id(reference, kind: str, where: str) -> str:
    ref = getattr(reference, "reference", None) or ""
    prefix = f"{kind}/"
    if not ref.startswith(prefix) or len(ref) == len(prefix):
        raise FhirError(f"{where} must reference {kind}/<id>", where)
    return ref[len(prefix):]


# -- Patient and Encounter -------------------------------------------------------------
def patient_wristband(patient: Patient) -> str:
    bands = [i.value for i in patient.identifier or [] if i.system == WRISTBAND_SYSTEM and i.value]
    if len(bands) != 1:
        raise FhirError(f"Patient.identifier needs exactly one wristband ({WRISTBAND_SYSTEM})",
                        "Patient.identifier")
    return bands[0]


def patient_json(patient: Patient, patient_id: str) -> str:
    data = patient.model_dump(mode="json", exclude_none=True)
    data["id"] = patient_id
    return json.dumps(data)


def encounter_to_fhir(enc: Encounter) -> dict:
    data = {
        "resourceType": "Encounter", "id": enc.id, "status": enc.status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                  "code": "IMP", "display": "inpatient encounter"},
        "identifier": [{"system": WRISTBAND_SYSTEM, "value": enc.wristband}],
        "subject": {"reference": f"Patient/{enc.patient_id}"},
        "period": {"start": instant(enc.started_at),
                   **({"end": instant(enc.ended_at)} if enc.ended_at else {})},
        "location": [{"location": {"identifier": {"value": enc.ward}, "display": enc.ward},
                      # on the way: the ward is where they are planned to be, from when
                      # they are expected (R4 Encounter.location.status / .period)
                      **({"status": "planned", "period": {"start": instant(enc.expected_arrival)}}
                         if enc.expected_arrival is not None else {})}],
        "extension": [{"url": SPO2_SCALE_EXTENSION, "valueInteger": enc.spo2_scale}],
    }
    if enc.assigned_nurse:
        data["participant"] = [{"individual": {"display": enc.assigned_nurse}}]
    return _out(FhirEncounter, data)


# -- MedicationRequest -----------------------------------------------------------------
_DOSAGE = "MedicationRequest.dosageInstruction[0]"


def order_fields(mr: MedicationRequest) -> dict:
    """What the closed loop needs from an order; FhirError if it is missing or unusable."""
    if mr.status != "active" or mr.intent != "order":
        raise FhirError("MedicationRequest must have status 'active' and intent 'order'",
                        "MedicationRequest.status", "MedicationRequest.intent")
    patient_id = _ref_id(mr.subject, "Patient", "MedicationRequest.subject")
    codings = [c for c in (mr.medicationCodeableConcept.coding if mr.medicationCodeableConcept
                           else None) or [] if c.system == GTIN_SYSTEM and c.code]
    if len(codings) != 1:
        raise FhirError(f"MedicationRequest.medicationCodeableConcept needs one {GTIN_SYSTEM} coding",
                        "MedicationRequest.medicationCodeableConcept")
    drug = codings[0]
    if not mr.dosageInstruction or len(mr.dosageInstruction) != 1:
        raise FhirError("MedicationRequest needs exactly one dosageInstruction",
                        "MedicationRequest.dosageInstruction")
    dosage = mr.dosageInstruction[0]
    route = (dosage.route.coding or [None])[0] if dosage.route else None
    if route is None or not route.code:
        raise FhirError("dosageInstruction.route needs a coding", f"{_DOSAGE}.route")
    dose = dosage.doseAndRate[0].doseQuantity if dosage.doseAndRate else None
    if dose is None or dose.value is None or not (dose.code or dose.unit) or dose.value <= 0:
        raise FhirError("dosageInstruction.doseAndRate.doseQuantity needs a positive value and a unit",
                        f"{_DOSAGE}.doseAndRate[0].doseQuantity")
    repeat = dosage.timing.repeat if dosage.timing else None
    if repeat is None or repeat.boundsPeriod is None or repeat.boundsPeriod.start is None:
        raise FhirError("dosageInstruction.timing.repeat.boundsPeriod.start (first dose) is required",
                        f"{_DOSAGE}.timing.repeat.boundsPeriod.start")
    if not repeat.period or repeat.periodUnit not in _PERIOD_SECONDS or repeat.period <= 0:
        raise FhirError("dosageInstruction.timing.repeat needs a period with periodUnit min, h or d",
                        f"{_DOSAGE}.timing.repeat.period", f"{_DOSAGE}.timing.repeat.periodUnit")
    frequency = repeat.frequency or 1
    interval = float(repeat.period) * _PERIOD_SECONDS[repeat.periodUnit] / frequency
    if interval < 60:
        raise FhirError("doses must be at least a minute apart", f"{_DOSAGE}.timing.repeat")
    if repeat.count is not None and repeat.count < 1:
        raise FhirError("dosageInstruction.timing.repeat.count must be at least 1",
                        f"{_DOSAGE}.timing.repeat.count")
    return dict(patient_id=patient_id, drug_code=drug.code,
                drug_name=drug.display or mr.medicationCodeableConcept.text or drug.code,
                dose_value=float(dose.value), dose_unit=dose.code or dose.unit,
                route_code=route.code, route_name=route.display or route.code,
                start=_seconds(repeat.boundsPeriod.start, f"{_DOSAGE}.timing.repeat.boundsPeriod.start"),
                interval_s=interval, count=repeat.count)


def order_to_fhir(resource: str, order: Order) -> dict:
    data = json.loads(resource)
    data.update(id=order.id, status=order.status,
                encounter={"reference": f"Encounter/{order.encounter_id}"})
    return _out(MedicationRequest, data)


def administration_to_fhir(adm: Administration, order: Order, order_resource: str) -> dict:
    # the route as the order coded it (system included): the five rights made them the same
    ordered_route = json.loads(order_resource)["dosageInstruction"][0]["route"]
    route = next((c for c in ordered_route.get("coding", []) if c.get("code") == adm.route_code),
                 {"code": adm.route_code, "display": order.route_name})
    return _out(MedicationAdministration, {
        "resourceType": "MedicationAdministration", "id": adm.id, "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": GTIN_SYSTEM, "code": order.drug_code,
                                                  "display": order.drug_name}]},
        "subject": {"reference": f"Patient/{adm.patient_id}"},
        "context": {"reference": f"Encounter/{adm.encounter_id}"},
        "effectiveDateTime": instant(adm.given_at),
        "performer": [{"actor": {"display": adm.given_by}}],
        "request": {"reference": f"MedicationRequest/{adm.order_id}"},
        "dosage": {"route": {"coding": [route]},
                   "dose": {"value": adm.dose_value, "unit": adm.dose_unit,
                            "system": UCUM, "code": adm.dose_unit}},
    })


# -- Observation -----------------------------------------------------------------------
def observation_fields(obs: Observation) -> tuple[str, float, str | None, dict[str, object]]:
    """(patient id, effective time, reading id or None, the vital signs it carries)."""
    if obs.status not in _OBSERVATION_STATUSES:
        raise FhirError(f"Observation.status must be one of {sorted(_OBSERVATION_STATUSES)}",
                        "Observation.status")
    patient_id = _ref_id(obs.subject, "Patient", "Observation.subject")
    if obs.effectiveDateTime is None:
        raise FhirError("Observation.effectiveDateTime is required", "Observation.effectiveDateTime")
    effective = _seconds(obs.effectiveDateTime, "Observation.effectiveDateTime")
    reading_ids = [i.value for i in obs.identifier or [] if i.system == READING_SYSTEM and i.value]
    values: dict[str, object] = {}
    paths: dict[str, str] = {}
    for index, comp in enumerate(obs.component or []):
        where = f"Observation.component[{index}]"
        codes = [(c.system, c.code) for c in comp.code.coding or []]
        loinc = next((code for system, code in codes if system == LOINC and code in _BY_LOINC), None)
        if loinc is not None:
            name, unit = _BY_LOINC[loinc]
            q = comp.valueQuantity
            if q is None or q.value is None or (q.code or q.unit) != unit or q.system not in (None, UCUM):
                raise FhirError(f"component {loinc} needs a valueQuantity in UCUM {unit!r}",
                                f"{where}.valueQuantity")
            values[name] = float(q.value) if name == "temperature_c" else _whole(q.value, loinc, where)
        elif (NEWS2_SYSTEM, "consciousness") in codes:
            c = comp.valueCodeableConcept
            name = "consciousness"
            values[name] = next((x.code for x in c.coding or [] if x.system in (None, ACVPU_SYSTEM)),
                                None) if c else None
        elif (NEWS2_SYSTEM, "on-oxygen") in codes:
            name = "on_oxygen"
            values[name] = comp.valueBoolean
        else:
            shown = ", ".join(f"{system}|{code}" for system, code in codes) or "none"
            raise FhirError(f"unsupported Observation.component code ({shown})", f"{where}.code")
        paths[name] = where
    if not values:
        raise FhirError("the Observation carries no vital sign component", "Observation.component")
    try:
        vitals = validate_update(values)
    except ValidationError as err:
        errors = err.errors()
        raise FhirError("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in errors),
                        *(paths.get(str(e["loc"][0]), "Observation.component") for e in errors)) from None
    return patient_id, effective, (reading_ids[0] if reading_ids else None), vitals


def _whole(value, code: str, where: str) -> int:
    if value != int(value):
        raise FhirError(f"component {code} must be a whole number", f"{where}.valueQuantity.value")
    return int(value)


def observation_to_fhir(row: dict) -> dict:
    components = []
    for name, (codes, unit) in _QUANTITIES.items():
        if row.get(name) is not None:
            components.append({"code": {"coding": [{"system": LOINC, "code": code, "display": display}
                                                   for code, display in codes]},
                               "valueQuantity": {"value": row[name], "unit": unit,
                                                 "system": UCUM, "code": unit}})
    if row.get("consciousness") is not None:
        components.append({"code": {"coding": [{"system": NEWS2_SYSTEM, "code": "consciousness"}]},
                           "valueCodeableConcept": {"coding": [{"system": ACVPU_SYSTEM,
                                                                "code": row["consciousness"]}]}})
    if row.get("on_oxygen") is not None:
        components.append({"code": {"coding": [{"system": NEWS2_SYSTEM, "code": "on-oxygen"}]},
                           "valueBoolean": bool(row["on_oxygen"])})
    if row.get("score") is not None:
        v3_code, v3_display = _RISK_INTERPRETATION[row["risk"]]
        components.append({"code": {"coding": [{"system": NEWS2_SYSTEM, "code": "score",
                                                "display": "NEWS2 total score"}]},
                           "valueInteger": row["score"],
                           "interpretation": [{"coding": [
                               {"system": RISK_SYSTEM, "code": row["risk"]},
                               {"system": V3_INTERPRETATION, "code": v3_code, "display": v3_display}],
                               "text": row["risk"]}]})
    return _out(Observation, {
        "resourceType": "Observation", "id": str(row["id"]), "status": "final",
        "identifier": [{"system": READING_SYSTEM, "value": row["reading_id"]}],
        "category": [{"coding": [{"system": VITAL_SIGNS_CATEGORY, "code": "vital-signs",
                                  "display": "Vital Signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "85353-1",
                             "display": "Vital signs, weight, height, head circumference, "
                                        "oxygen saturation and BMI panel"}]},
        "subject": {"reference": f"Patient/{row['patient_id']}"},
        "encounter": {"reference": f"Encounter/{row['encounter_id']}"},
        "effectiveDateTime": instant(row["effective_at"]),
        "performer": [{"display": row["source"]}],
        "component": components,
    })
