"""What this FHIR R4 server publishes about itself: its CapabilityStatement, and the
definitions of medmec's own code systems and extension, so that a validator or an
integration engine can resolve every system and extension URL the resources carry."""
from __future__ import annotations

MEDMEC = "https://medmec.io/fhir"
NEWS2_SYSTEM = f"{MEDMEC}/CodeSystem/news2"
ACVPU_SYSTEM = f"{MEDMEC}/CodeSystem/news2-acvpu"
RISK_SYSTEM = f"{MEDMEC}/CodeSystem/news2-risk"
FIVE_RIGHTS_SYSTEM = f"{MEDMEC}/CodeSystem/five-rights"
SPO2_SCALE_EXTENSION = f"{MEDMEC}/StructureDefinition/news2-spo2-scale"
VITALSIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
VERSION = "1.0.0"
_DATE = "2026-12-01"  # when these definitions last changed


def _code_system(cs_id: str, name: str, title: str, description: str,
                 concepts: list[tuple[str, str, str]]) -> dict:
    return {"resourceType": "CodeSystem", "id": cs_id, "url": f"{MEDMEC}/CodeSystem/{cs_id}",
            "version": VERSION, "name": name, "title": title, "status": "active",
            "experimental": False, "date": _DATE, "publisher": "medmec",
            "description": description, "caseSensitive": True, "content": "complete",
            "count": len(concepts),
            "concept": [{"code": c, "display": d, "definition": text} for c, d, text in concepts]}


CODE_SYSTEMS = {cs["id"]: cs for cs in (
    _code_system("news2", "MedmecNews2", "NEWS2 observation codes",
                 "Parts of a NEWS2 observation set (Royal College of Physicians, 2017) that "
                 "have no vital-signs LOINC code in the FHIR R4 vital-signs profile.", [
                     ("consciousness", "Level of consciousness (ACVPU)",
                      "The patient's level of consciousness on the ACVPU scale."),
                     ("on-oxygen", "On supplemental oxygen",
                      "Whether the patient breathes supplemental oxygen."),
                     ("score", "NEWS2 total score",
                      "The aggregate NEWS2 score (0-20) of a complete observation set.")]),
    _code_system("news2-acvpu", "MedmecNews2Acvpu", "ACVPU level of consciousness",
                 "The ACVPU scale NEWS2 scores consciousness on.", [
                     ("A", "Alert", "Fully awake."),
                     ("C", "New confusion", "New confusion, disorientation or agitation."),
                     ("V", "Responds to voice", "Responds only to voice."),
                     ("P", "Responds to pain", "Responds only to pain."),
                     ("U", "Unresponsive", "No response to voice or pain.")]),
    _code_system("news2-risk", "MedmecNews2Risk", "NEWS2 clinical risk",
                 "The clinical risk band of a NEWS2 score, which sets the clinical response.", [
                     ("low", "Low", "Aggregate score 0-4: ward-based response."),
                     ("low-medium", "Low-medium", "A score of 3 in any single parameter: "
                                                  "urgent ward-based response."),
                     ("medium", "Medium", "Aggregate score 5-6: urgent response."),
                     ("high", "High", "Aggregate score 7 or more: emergency response.")]),
    _code_system("five-rights", "MedmecFiveRights", "Five rights of medication administration",
                 "The right that a refused bedside administration failed.", [
                     ("patient", "Right patient", "The scanned wristband is the order's patient."),
                     ("drug", "Right drug", "The scanned package is the ordered drug."),
                     ("dose", "Right dose", "The dose and unit are the ordered ones."),
                     ("route", "Right route", "The route is the ordered one."),
                     ("time", "Right time", "The dose is due now and not given yet.")]),
)}

STRUCTURE_DEFINITIONS = {"news2-spo2-scale": {
    "resourceType": "StructureDefinition", "id": "news2-spo2-scale", "url": SPO2_SCALE_EXTENSION,
    "version": VERSION, "name": "News2Spo2Scale", "title": "NEWS2 SpO2 scale",
    "status": "active", "experimental": False, "date": _DATE, "publisher": "medmec",
    "description": "The NEWS2 SpO2 scale prescribed for an admission: 1, or 2 for patients "
                   "with hypercapnic respiratory failure and a prescribed target of 88-92 %.",
    "fhirVersion": "4.0.1", "kind": "complex-type", "abstract": False,
    "context": [{"type": "element", "expression": "Encounter"}],
    "type": "Extension", "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
    "derivation": "constraint",
    "differential": {"element": [
        {"id": "Extension", "path": "Extension", "short": "NEWS2 SpO2 scale (1 or 2)",
         "definition": "The NEWS2 SpO2 scale prescribed for this admission.", "min": 0, "max": "1"},
        {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
        {"id": "Extension.url", "path": "Extension.url", "fixedUri": SPO2_SCALE_EXTENSION},
        {"id": "Extension.value[x]", "path": "Extension.value[x]", "min": 1,
         "type": [{"code": "integer"}]},
    ]},
}}

_CLINICAL = "http://hl7.org/fhir/SearchParameter"
_PATIENT = {"name": "patient", "definition": f"{_CLINICAL}/clinical-patient", "type": "reference",
            "documentation": "The patient's id (Patient/id is accepted too); required."}


def _date(definition: str, name: str, what: str) -> dict:
    return {"name": name, "definition": f"{_CLINICAL}/{definition}", "type": "date",
            "documentation": f"{what}; prefixes eq, gt, ge, lt, le; repeat to give a range. "
                             "A date without a time stands for that UTC day."}


_RESOURCES = [
    ("Patient", ["read"], [], None),
    ("Encounter", ["read", "search-type"],
     [_PATIENT, _date("clinical-date", "date", "The admission's period overlaps")], None),
    ("Observation", ["read", "search-type", "create"],
     [_PATIENT, _date("clinical-date", "date", "When the vital signs were measured")],
     VITALSIGNS_PROFILE),
    ("MedicationRequest", ["read", "search-type", "create"],
     [_PATIENT, _date("medications-date", "date", "The order's dose schedule overlaps")], None),
    ("MedicationAdministration", ["read", "search-type"],
     [_PATIENT, _date("MedicationAdministration-effective-time", "effective-time",
                      "When the dose was given")], None),
    ("CodeSystem", ["read", "search-type"],
     [{"name": "url", "definition": f"{_CLINICAL}/CodeSystem-url", "type": "uri"}], None),
    ("StructureDefinition", ["read", "search-type"],
     [{"name": "url", "definition": f"{_CLINICAL}/StructureDefinition-url", "type": "uri"}], None),
]


def capability_statement(base: str, software_version: str) -> dict:
    resources = []
    for kind, interactions, params, profile in _RESOURCES:
        entry = {"type": kind, "interaction": [{"code": i} for i in interactions],
                 "versioning": "no-version", "readHistory": False, "updateCreate": False}
        if params:
            entry["searchParam"] = params
        if profile:
            entry["supportedProfile"] = [profile]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement", "id": "medmec-nursing",
        "url": f"{base}/metadata", "version": software_version, "name": "MedmecCloudNursing",
        "title": "medmec cloud nursing FHIR server", "status": "active", "experimental": False,
        "date": _DATE, "publisher": "medmec", "kind": "instance",
        "description": "Bedside nursing: wristband identification, vital signs with NEWS2 "
                       "early warning, the closed medication loop.",
        "software": {"name": "medmec cloud nursing", "version": software_version},
        "implementation": {"description": "medmec cloud nursing", "url": base},
        "fhirVersion": "4.0.1", "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Searches return searchset Bundles paged with _count and _offset.",
            "security": {"cors": False, "description": (
                "Every call but /metadata and the CodeSystem and StructureDefinition reads "
                "needs an `Authorization: Bearer` token; each token acts for one role in one "
                "ward and sees that ward's patients only.")},
            "resource": resources,
        }],
    }
