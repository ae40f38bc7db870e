"""FHIR R4 in and out: every example bundle gives its expected outcome; bad bundles give a
clear error for that bundle only; unknown codes are warnings; units convert; refuted
means absent and entered-in-error means nothing; ages count birthdays; the output is
valid FHIR as documented; the project CodeSystem file is the ontology's."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codesystem import CodeSystem
from outcomes import local, observed
from rdflib import OWL, RDF, RDFS, Literal, URIRef
from rdflib.namespace import SKOS

from reasoner import DISCLAIMER
from reasoner.fhir import ucum
from reasoner.fhir.mapping import CODE_SYSTEM_FILE, FhirMapping, code_system_resource, project_code_system
from reasoner.fhir.ordering import CdsKnowledge
from reasoner.fhir.output import answer_resource, to_fhir
from reasoner.fhir.read import (
    FhirCase,
    FhirInputError,
    age_on,
    bundle_to_case,
    is_fhir,
    read_bundle,
    read_bundles,
)
from reasoner.knowledge import LBP, KnowledgeBaseError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "fhir"
BAD = Path(__file__).resolve().parent / "data" / "fhir"
SCT, LOINC, UCUM = "http://snomed.info/sct", "http://loinc.org", "http://unitsofmeasure.org"
OWN = "https://w3id.org/lbp-imaging/CodeSystem/lbp-imaging"
VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
PAMA_RATING = "http://fhir.org/argonaut/Extension/pama-rating"  # Argonaut "CDS Hooks for PAMA"
PAMA_SYSTEM = "http://fhir.org/argonaut/CodeSystem/pama-rating"
PAMA_CONSULT = "http://fhir.org/argonaut/Extension/pama-rating-consult-id"
PAMA_APPLIED = "http://fhir.org/argonaut/Extension/pama-rating-auc-applied"
CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
AS_OF = date(2026, 11, 23)


def _expected() -> dict[str, dict]:
    return {
        p.name.removesuffix(".expected.json"): json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(EXAMPLES.glob("*.expected.json"))
    }


EXPECTED = _expected()


@pytest.fixture(scope="module")
def mapping(kb) -> FhirMapping:
    return FhirMapping.for_knowledge_base(kb)


@pytest.fixture(scope="module")
def example_cases(mapping) -> dict[str, FhirCase]:
    return {
        name: read_bundle(EXAMPLES / f"{name}.json", date.fromisoformat(e["asOf"]), mapping)
        for name, e in EXPECTED.items()
    }


def _assess(assessor, cases: list[FhirCase], tmp: Path):
    """Assess cases through the engine's file path, one N-Triples file per bundle."""
    for i, case in enumerate(cases):
        (tmp / f"{i:02d}.nt").write_text(case.ntriples, encoding="utf-8")
    return assessor.assess([tmp])


@pytest.fixture(scope="module")
def example_run(assessor, example_cases, tmp_path_factory):
    run = _assess(assessor, list(example_cases.values()), tmp_path_factory.mktemp("fhir-examples"))
    assert run.input_errors == [] and run.invalid == []
    return run


def _triples(case: FhirCase) -> set[tuple[str, str]]:
    """(property local name, object) pairs of the case: a term's local name, a literal's text."""
    return {(_name(q.predicate.value), local(q.object.value)) for q in case.quads()}


def _name(iri: str) -> str:
    return iri.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


# -- examples -----------------------------------------------------------------------------
def test_examples_cover_every_criterion_every_outcome_and_bundle_type(kb):
    assert len(EXPECTED) >= 15
    covered = {c for e in EXPECTED.values() for c in e["criteria"]}
    defined = {local(str(c)) for c in kb.ontology.subjects(OWL.equivalentClass, None)}
    assert defined <= covered, f"criteria no FHIR example exercises: {sorted(defined - covered)}"
    outcomes = {
        local(str(o))
        for o in kb.ontology.subjects(RDF.type, LBP.AssessmentOutcome)
        if (o, OWL.deprecated, Literal(True)) not in kb.ontology
    }
    assert {e["outcome"] for e in EXPECTED.values()} == outcomes
    types = {json.loads((EXAMPLES / f"{n}.json").read_text())["type"] for n in EXPECTED}
    assert types == {"collection", "searchset", "transaction"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_example_bundle_gives_its_expected_outcome(example_run, example_cases, name):
    expected = EXPECTED[name]
    assert example_cases[name].case_iri == expected["case"]
    result = next(r for r in example_run.results if r.case == expected["case"])
    view = {
        k: sorted(v) if isinstance(v, list) else v
        for k, v in expected.items()
        if k in observed(result.to_dict())
    }
    assert observed(result.to_dict()) == view, expected["note"]


def test_examples_warn_only_where_they_say_so(example_cases):
    noisy = {n for n, c in example_cases.items() if c.warnings}
    assert noisy == {"16-refuted-and-entered-in-error", "17-unknown-code-pacemaker"}


# -- bad bundles ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "resource", "problem"),
    [
        ("no-patient", None, "no Patient in the bundle"),
        ("two-patients", None, "2 Patients in the bundle (Patient/fhir-bad-two-patients, Patient/other)"),
        ("broken-reference", "Condition/fever", "resolves to no entry of the bundle"),
        ("not-a-bundle", None, "not a FHIR Bundle (resourceType 'Patient')"),
        ("invalid-fhir", "Patient/fhir-bad-invalid-fhir", "invalid FHIR R4: birthDate: Date value string"),
    ],
)
def test_a_bad_bundle_gives_a_clear_error_naming_bundle_resource_and_problem(
    mapping, name, resource, problem
):
    path = BAD / f"{name}.json"
    with pytest.raises(FhirInputError) as caught:
        read_bundle(path, AS_OF, mapping)
    error = caught.value
    assert str(error).startswith(f"{path}: ") and problem in str(error)
    assert error.resource == resource
    assert str(path) not in error.detail


def test_a_bad_bundle_is_an_error_for_that_bundle_only(mapping):
    examples = [p for p in sorted(EXAMPLES.glob("*.json")) if not p.name.endswith(".expected.json")]
    paths = [*sorted(BAD.glob("*.json")), *examples]
    cases, errors = read_bundles(paths, AS_OF, mapping)
    assert len(errors) == len(list(BAD.glob("*.json"))) == 5
    assert len(cases) == len(EXPECTED)


def test_fhir_documents_are_told_from_json_ld_cases():
    assert is_fhir(json.loads((BAD / "not-a-bundle.json").read_text()))
    assert is_fhir(json.loads((EXAMPLES / "05-night-pain-first-line.json").read_text()))
    case = (ROOT / "examples" / "cases" / "02-cauda-equina-bilateral-leg-signs.jsonld").read_text()
    assert not is_fhir(json.loads(case)) and not is_fhir([])


def test_unreadable_json_and_other_bundle_types_are_errors(mapping, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceType": "Bundle",', encoding="utf-8")
    with pytest.raises(FhirInputError, match="cannot be read as JSON"):
        read_bundle(broken, AS_OF, mapping)
    with pytest.raises(FhirInputError, match="bundle type 'document' is not read"):
        bundle_to_case({"resourceType": "Bundle", "type": "document"}, "doc.json", AS_OF, mapping)


# -- small bundles built in the tests -------------------------------------------------------
PATIENT_URL = "https://example.org/fhir/Patient/t"


def _bundle(
    *resources: dict, birth: str | None = "1970-06-15", gender: str | None = "male", url: str = PATIENT_URL
) -> dict:
    """A collection bundle: Patient/t (at ``url``) and resources whose subject is Patient/t."""
    patient = {"resourceType": "Patient", "id": "t", "birthDate": birth, "gender": gender}
    entries = [{"fullUrl": url, "resource": {k: v for k, v in patient.items() if v is not None}}]
    entries += [{"resource": {"subject": {"reference": "Patient/t"}, **r}} for r in resources]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _coding(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


def _condition(
    rid: str, system: str, code: str, ver: str | None = None, clin: str | None = None, **more
) -> dict:
    resource = {"resourceType": "Condition", "id": rid, "code": _coding(system, code), **more}
    if ver:
        resource["verificationStatus"] = _coding(VER, ver)
    if clin:
        resource["clinicalStatus"] = _coding(CLIN, clin)
    return resource


def _observation(rid: str, system: str, code: str, status: str = "final", **value) -> dict:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": status,
        "code": _coding(system, code),
        **value,
    }


def _read(mapping, *resources, as_of: date = AS_OF, **patient) -> FhirCase:
    return bundle_to_case(_bundle(*resources, **patient), "test.json", as_of, mapping)


def test_unknown_coding_is_a_warning_listing_system_and_code_never_an_error(example_cases, mapping):
    warnings = example_cases["17-unknown-code-pacemaker"].warnings
    assert any(
        "Condition/pacemaker: no mapping for http://snomed.info/sct|441509002: not used" in w
        for w in warnings
    )
    assert any(
        "http://hl7.org/fhir/sid/icd-10-cm|M54.5: read through its other codings" in w for w in warnings
    )
    text_only = _read(mapping, {"resourceType": "Condition", "id": "c", "code": {"text": "back ache"}})
    assert text_only.warnings == ["test.json: Condition/c: its code has no coding: not used"]


def test_mapping_comes_from_the_ontology_not_from_code(onto, example_cases):
    """Map the pacemaker code in a copy of the ontology: the same bundle now records an
    MRI-incompatible device, and the example's warning disappears."""
    edited = copy.deepcopy(onto)
    edited.add((LBP.MRIIncompatibleDevice, SKOS.exactMatch, URIRef("http://snomed.info/id/441509002")))
    case = read_bundle(EXAMPLES / "17-unknown-code-pacemaker.json", AS_OF, FhirMapping.from_ontology(edited))
    assert ("hasFinding", "MRIIncompatibleDevice") in _triples(case)
    assert not any("441509002" in w for w in case.warnings)
    assert ("hasFinding", "MRIIncompatibleDevice") not in _triples(example_cases["17-unknown-code-pacemaker"])


@pytest.mark.parametrize(
    ("code", "value", "unit", "literal"),
    [
        ("30341-2", "19.9999999", "mm/h", "19.9999999"),  # six decimals: 20, an abnormal ESR
        ("30341-2", "20.0000001", "mm/h", "20.0000001"),
        ("30341-2", "19.999999999999996", "mm/h", "19.999999999999996"),  # a float's digits
        ("30341-2", "25.12345678", "mm/h", "25.123457"),  # no bound near: six decimals
        ("1988-5", "-0.0000001", "mg/L", "-0.0000001"),  # not the acceptable 0 of the shapes
        ("1988-5", "0.99999999", "mg/dL", "9.9999999"),  # converted, then kept below 10
    ],
)
def test_a_value_keeps_the_decimals_its_comparisons_need(mapping, code, value, unit, literal):
    """Six decimals are enough for a converted duration (41 d = 5.857143 wk), but an ESR
    of 19.9999999 mm/h rounded to six would be 20.000000, an abnormal result: a value is
    rounded only as far as it compares with every number of the ontology and of the case
    shapes as recorded."""
    quantity = {"value": float(value), "unit": unit, "system": UCUM, "code": unit}  # as JSON reads it
    case = _read(mapping, _observation("o", LOINC, code, valueQuantity=quantity))
    (found,) = [v for p, v in _triples(case) if p in ("esrMmPerHour", "crpMgPerL")]
    assert found == literal
    exact = Decimal(value) * (10 if unit == "mg/dL" else 1)
    for bound in mapping.numbers:
        assert (Decimal(found) > bound) == (exact > bound) and (Decimal(found) == bound) == (exact == bound)


def test_units_are_converted_to_the_unit_the_ontology_gives(example_cases, mapping):
    assert ("crpMgPerL", "84") in _triples(example_cases["03-infection-crp-mg-dl"])  # 8.4 mg/dL
    assert ("conservativeTreatmentWeeks", "6") in _triples(
        example_cases["08-radiculopathy-intervention-42-days"]
    )
    assert ("conservativeTreatmentWeeks", "5.857143") in _triples(example_cases["20-radiculopathy-41-days"])
    assert ("conservativeTreatmentWeeks", "12") in _triples(example_cases["09-stenosis-procedure-period"])
    assert ("symptomDurationWeeks", "1") in _triples(example_cases["01-cauda-equina-urinary-saddle"])
    no_ucum = _read(
        mapping, _observation("crp", LOINC, "1988-5", valueQuantity={"value": 5, "unit": "mg/dL"})
    )
    assert not any(p == "crpMgPerL" for p, _ in _triples(no_ucum))
    assert "has no UCUM code" in no_ucum.warnings[0]
    wrong = {"value": 5, "system": UCUM, "code": "mmol/L"}
    assert (
        "does not convert"
        in _read(mapping, _observation("crp", LOINC, "1988-5", valueQuantity=wrong)).warnings[0]
    )


def test_ucum_conversion_is_exact_and_refuses_what_it_cannot_convert():
    assert ucum.convert(Decimal("5.2"), "mg/dL", "mg/L") == Decimal("52")
    assert ucum.convert(Decimal(42), "d", "wk") == 6
    assert ucum.convert(Decimal(1), "/d", "/wk") == 7
    assert ucum.convert(Decimal(3), "mm/(1.h)", "mm/h") == 3
    with pytest.raises(ucum.UcumError, match="different kinds"):
        ucum.convert(Decimal(1), "mg/L", "mm/h")
    with pytest.raises(ucum.UcumError):
        ucum.convert(Decimal(1), "mg//L", "mg/L")


def test_refuted_is_absent_entered_in_error_is_ignored_unconfirmed_is_neither(example_cases):
    case = example_cases["16-refuted-and-entered-in-error"]
    triples = _triples(case)
    assert ("hasAbsentFinding", "HistoryOfCancer") in triples
    assert not {t for t in triples if t[1] in ("Fever", "SaddleAnaesthesia", "Osteoporosis")}
    assert len(case.warnings) == 1
    assert case.warnings[0].endswith(
        "Condition/osteoporosis-query: verification status provisional: "
        "not counted, neither present nor absent"
    )


def test_resolved_conditions_count_only_for_findings_that_include_the_past(mapping, example_cases):
    assert ("hasFinding", "HistoryOfCancer") in _triples(example_cases["04-known-cancer-in-remission"])
    assert ("hasFinding", "MinorTrauma") in _triples(example_cases["07-fracture-osteoporosis-minor-fall"])
    resolved = _read(mapping, _condition("fever", SCT, "386661006", clin="resolved"))
    assert not {t for t in _triples(resolved) if t[1] == "Fever"}
    assert "fever is resolved: not a current finding, and not recorded absent" in resolved.warnings[0]


@pytest.mark.parametrize(
    ("resource", "expected", "warning"),
    [
        (
            _observation("o", OWN, "saddle-anaesthesia", valueBoolean=False),
            ("hasAbsentFinding", "SaddleAnaesthesia"),
            None,
        ),
        (_observation("o", OWN, "saddle-anaesthesia"), ("hasFinding", "SaddleAnaesthesia"), None),
        (_observation("o", OWN, "saddle-anaesthesia", status="registered"), None, "status 'registered'"),
        (
            _observation("o", OWN, "saddle-anaesthesia", dataAbsentReason=_coding("x", "asked-unknown")),
            None,
            "not assessed",
        ),
        (_observation("o", OWN, "saddle-anaesthesia", valueString="yes"), None, "valueString is not read"),
        (
            _observation("o", LOINC, "1988-5", valueQuantity={"unit": "mg/L"}),
            None,
            "the quantity has no value",
        ),
        (
            _observation("o", OWN, "surgical-candidate", valueBoolean=False),
            ("surgicalCandidate", "false"),
            None,
        ),
        (
            {
                "resourceType": "Procedure",
                "id": "p",
                "status": "completed",
                "code": _coding(OWN, "lumbar-spine-surgery"),
            },
            ("priorLumbarSurgery", "true"),
            None,
        ),
        (
            {
                "resourceType": "Procedure",
                "id": "p",
                "status": "not-done",
                "code": _coding(OWN, "lumbar-spine-surgery"),
            },
            None,
            "not known to have been done",
        ),
        (
            {
                "resourceType": "MedicationStatement",
                "id": "m",
                "status": "not-taken",
                "medicationCodeableConcept": _coding(OWN, "prolonged-corticosteroid-use"),
            },
            ("hasAbsentFinding", "ProlongedCorticosteroidUse"),
            None,
        ),
        (
            _condition("c", SCT, "386661006", onsetDateTime="2027-01-01"),
            None,
            "dated after the reference date",
        ),
        (_condition("c", SCT, "279039007", onsetDateTime="2026-10"), None, "partial date"),
        (_condition("c", SCT, "441509002"), None, "no mapping for http://snomed.info/sct|441509002"),
        (_observation("o", LOINC, "30679-5"), None, "which is not a case fact the criteria use"),
    ],
    ids=[
        "boolean-false-absent",
        "no-value-present",
        "registered-not-read",
        "data-absent-reason",
        "value-string",
        "quantity-without-value",
        "boolean-property",
        "procedure-done",
        "procedure-not-done",
        "medication-not-taken",
        "future-onset",
        "partial-onset",
        "unknown-code",
        "known-non-fact",
    ],
)
def test_each_resource_reading(mapping, resource, expected, warning):
    case = _read(mapping, resource)
    facts = _triples(case) - {("type", "PatientCase"), ("ageInYears", "56"), ("administrativeSex", "Male")}
    assert facts == ({expected} if expected else set())
    if warning is None:
        assert case.warnings == []
    else:
        assert any(warning in w for w in case.warnings), case.warnings


def test_device_and_medication_reference_and_subjects(mapping):
    device = {"resourceType": "Device", "id": "d", "type": _coding(OWN, "mri-incompatible-device")}
    bundle = _bundle()
    bundle["entry"].append({"resource": {**device, "patient": {"reference": PATIENT_URL}}})
    bundle["entry"].append({"resource": {**device, "id": "unlinked"}})
    bundle["entry"].append(
        {
            "fullUrl": "urn:uuid:med",
            "resource": {
                "resourceType": "Medication",
                "id": "med",
                "code": _coding(OWN, "prolonged-corticosteroid-use"),
            },
        }
    )
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "MedicationStatement",
                "id": "ms",
                "status": "active",
                "medicationReference": {"reference": "urn:uuid:med"},
                "subject": {"reference": PATIENT_URL},
            }
        }
    )
    case = bundle_to_case(bundle, "test.json", AS_OF, mapping)
    assert {
        ("hasFinding", "MRIIncompatibleDevice"),
        ("hasFinding", "ProlongedCorticosteroidUse"),
    } <= _triples(case)
    assert case.warnings == [
        "test.json: Device/unlinked: no patient: not known to be about the patient, not used"
    ]


# -- age and sex ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("birth", "as_of", "age"),
    [
        ("1976-11-23", date(2026, 11, 23), 50),  # the birthday itself counts
        ("1976-11-23", date(2026, 11, 22), 49),
        ("1975-11-23", date(2026, 11, 23), 51),
        ("2000-02-29", date(2026, 2, 28), 25),  # a leap-day birthday is reached on 1 March
        ("2000-02-29", date(2026, 3, 1), 26),
        ("1970", date(2026, 12, 31), 56),  # a partial date that still gives one age
    ],
)
def test_age_is_counted_at_the_reference_date(mapping, birth, as_of, age):
    case = _read(mapping, birth=birth, as_of=as_of)
    assert ("ageInYears", str(age)) in _triples(case)
    assert case.warnings == []


def test_age_boundary_decides_the_weight_loss_criterion(assessor, mapping, tmp_path):
    weight_loss = _condition("wl", SCT, "448765001")
    at_50 = _read(mapping, weight_loss, birth="1976-11-23")
    at_51 = _read(mapping, weight_loss, birth="1975-11-23", url=PATIENT_URL + "-51")
    run = _assess(assessor, [at_50, at_51], tmp_path)
    outcomes = {r.case: observed(r.to_dict()) for r in run.results}
    assert outcomes[PATIENT_URL]["criteria"] == []
    assert "MalignancyRiskFactorsFirstLineTests" in outcomes[PATIENT_URL + "-51"]["criteria"]
    assert age_on(date(1976, 11, 23), AS_OF) == 50


def test_imprecise_or_future_birth_dates(mapping):
    imprecise = _read(mapping, birth="1970")
    assert not any(p == "ageInYears" for p, _ in _triples(imprecise))
    assert "gives age 55 or 56 on 2026-11-23: age unknown" in imprecise.warnings[0]
    with pytest.raises(FhirInputError, match="birthDate 2027-01-01 is after the reference date"):
        _read(mapping, birth="2027-01-01")


def test_gender_gives_the_administrative_sex_of_the_ontology(mapping):
    assert ("administrativeSex", "Female") in _triples(_read(mapping, gender="female"))
    assert ("administrativeSex", "UnknownSex") in _triples(_read(mapping, gender="unknown"))
    assert not any(p == "administrativeSex" for p, _ in _triples(_read(mapping, gender=None)))


# -- output -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fhir_output(example_run, example_cases, mapping) -> dict:
    inputs = {c.case_iri: c for c in example_cases.values()}
    return to_fhir(
        example_run.results,
        example_run.statements,
        mapping,
        inputs=inputs,
        generated="2026-11-23T10:00:00+00:00",
    )


def _resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_fhir_output_is_a_valid_r4_collection_bundle_with_resolving_references(fhir_output):
    Bundle.model_validate(fhir_output)
    assert json.loads(json.dumps(fhir_output)) == fhir_output  # plain JSON, no Decimal or dates
    assert fhir_output["type"] == "collection"
    urls = {e["fullUrl"] for e in fhir_output["entry"]}
    assert len(urls) == len(fhir_output["entry"])
    references = []

    def walk(node):
        if isinstance(node, dict):
            references.extend([node["reference"]] if isinstance(node.get("reference"), str) else [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(fhir_output)
    assert references and set(references) <= urls


def test_one_guidance_response_per_case_as_documented(fhir_output, example_run):
    by_case = {g["identifier"][0]["value"]: g for g in _resources(fhir_output, "GuidanceResponse")}
    assert set(by_case) == {r.case for r in example_run.results}
    entries = {e["fullUrl"]: e["resource"] for e in fhir_output["entry"]}
    for r in example_run.results:
        guidance = by_case[r.case]
        rec = r.recommendation
        assert guidance["subject"]["reference"] == r.case  # the Patient, included in the bundle
        assert entries[r.case]["resourceType"] == "Patient"
        assert DISCLAIMER in [n["text"] for n in guidance["note"]]
        more_information = r.outcome["iri"] == str(LBP.OutcomeMoreInformationNeeded)
        expected_status = (
            "data-required" if more_information else "data-requested" if r.questions else "success"
        )
        assert guidance["status"] == expected_status
        assert len(guidance.get("dataRequirement", [])) == len(r.questions)
        parameters = entries[guidance["outputParameters"]["reference"]]["parameter"]
        states = [p for p in parameters if p["name"] == "criterionState"]
        assert {_part(s, "iri") for s in states} == set(r.criterion_states)
        assert all(_part(s, "state") == r.criterion_states[_part(s, "iri")] for s in states)
        asked = [_part(_part(q, "about"), "iri") for q in parameters if q["name"] == "question"]
        assert asked == [q["about"]["iri"] for q in r.questions]
        sources = [p["valueRelatedArtifact"] for p in parameters if p["name"] == "source"]
        assert [s["url"] for s in sources] == r.sources and all(
            s["citation"].startswith("\u201c") for s in sources
        )
        assert len([p for p in parameters if p["name"] == "criterion"]) == len(r.criteria)
        if rec["procedure"] is None:
            assert "result" not in guidance
            continue
        first = entries[guidance["result"]["reference"]]["action"][0]
        primary = first["action"][0] if "action" in first else first  # alternatives: a choice group
        assert len(first.get("action", [])) == (1 + len(rec["alternatives"]) if rec["alternatives"] else 0)
        request = entries[primary["resource"]["reference"]]
        assert request["intent"] == "proposal" and request["status"] == "draft"
        assert request["code"]["text"] == rec["procedure"]["label"]
        codes = [{"system": c["system"], "code": c["code"]} for c in rec["procedure"]["codes"]]
        assert request["code"].get("coding", []) == codes
        assert f"Urgency: {rec['urgency']['label']}." in [n["text"] for n in request["note"]]
        assert [d["url"] for d in primary["documentation"]] == r.sources


def test_a_procedure_without_codes_is_proposed_with_its_label_as_the_code_text(fhir_output, example_run):
    """A procedure the ontology gives no code (example 11's specialist referral) is still
    proposed: its ServiceRequest's code is the label as text (CodeableConcept.text), with no
    empty coding list (the validity of the whole bundle is tested above)."""
    codeless = [
        r
        for r in example_run.results
        if r.recommendation.get("procedure") and not r.recommendation["procedure"]["codes"]
    ]
    assert codeless, "no example proposes a procedure without codes"
    for r in codeless:
        label = r.recommendation["procedure"]["label"]
        (request,) = [
            s
            for s in _resources(fhir_output, "ServiceRequest")
            if s["subject"]["reference"] == r.case and s["code"].get("text") == label
        ]
        assert request["code"] == {"text": label}
        assert request["status"] == "draft" and request["intent"] == "proposal"


def _requests(bundle: dict, name: str) -> list[dict]:
    """The ServiceRequests proposed for an example case, the recommended procedure first."""
    case = EXPECTED[name]["case"]
    return [s for s in _resources(bundle, "ServiceRequest") if s["subject"]["reference"] == case]


def _pama(request: dict) -> dict[str, object]:
    """A ServiceRequest's Argonaut PAMA extensions, by URL (the rating as its code)."""
    found: dict[str, object] = {}
    for e in request.get("extension", []):
        if e["url"] == PAMA_RATING:
            (coding,) = e["valueCodeableConcept"]["coding"]
            assert coding["system"] == PAMA_SYSTEM
            found[e["url"]] = coding["code"]
        else:
            found[e["url"]] = e["valueUri"]
    return found


def test_a_service_request_has_the_priority_the_cds_hooks_cards_give_its_urgency(
    fhir_output, example_run, kb, mapping
):
    """The priority of every proposed ServiceRequest is the one the CDS Hooks service gives
    an order of the recommended urgency: the same ontology data (``lbp:fhirRequestPriority``)
    read by the same code (``CdsKnowledge``), so an emergent recommendation is ``stat``."""
    assert mapping.orders == CdsKnowledge.from_ontology(kb.ontology)
    entries = {e["fullUrl"]: e["resource"] for e in fhir_output["entry"]}
    proposed = 0
    for r in example_run.results:
        group = next(
            (g for g in _resources(fhir_output, "RequestGroup") if g["subject"]["reference"] == r.case), None
        )
        if group is None:
            continue
        wanted = str(kb.ontology.value(URIRef(r.recommendation["urgency"]["iri"]), LBP.fhirRequestPriority))
        flat = [a for top in group["action"] for a in top.get("action", [top])]
        for action in flat:
            assert entries[action["resource"]["reference"]]["priority"] == wanted
            proposed += 1
    assert proposed >= 15
    assert {s["priority"] for s in _requests(fhir_output, "01-cauda-equina-urinary-saddle")} == {"stat"}
    assert {s["priority"] for s in _requests(fhir_output, "03-infection-crp-mg-dl")} == {"urgent"}
    assert {s["priority"] for s in _requests(fhir_output, "09-stenosis-procedure-period")} == {"routine"}


def test_an_imaging_request_carries_the_pama_rating_the_cds_hooks_cards_give(fhir_output, example_run, kb):
    """Each proposed imaging study carries the Argonaut PAMA rating of its outcome for an
    indicated order (``lbp:pamaRatingForIndicatedOrder``), the consultation (the case's
    GuidanceResponse) and the criterion applied; what is not imaging (the ESR, the specialist
    referral) carries none, as on the CDS Hooks cards."""
    imaging = {str(i) for i in kb.ontology.subjects(RDF.type, LBP.ImagingProcedure)}
    guidance = {g["identifier"][0]["value"]: g for g in _resources(fhir_output, "GuidanceResponse")}
    urls = {e["resource"]["id"]: e["fullUrl"] for e in fhir_output["entry"]}
    by_case = {r.case: r for r in example_run.results}
    rated = unrated = 0
    for request in _resources(fhir_output, "ServiceRequest"):
        r = by_case[request["subject"]["reference"]]
        procedure = next(
            p["iri"]
            for p in [
                r.recommendation["procedure"],
                *r.recommendation["alsoRecommended"],
                *r.recommendation["alternatives"],
            ]
            if p["label"] == request["code"]["text"]
        )
        if procedure not in imaging:
            assert "extension" not in request, request["code"]["text"]
            unrated += 1
            continue
        applied = next(c["iri"] for c in r.criteria if c["selected"] and c["kind"] != "rule")
        rating = str(kb.ontology.value(URIRef(r.outcome["iri"]), LBP.pamaRatingForIndicatedOrder))
        assert _pama(request) == {
            PAMA_RATING: rating,
            PAMA_CONSULT: urls[guidance[r.case]["id"]],
            PAMA_APPLIED: applied,
        }
        rated += 1
    assert rated >= 12 and unrated >= 2
    assert _pama(_requests(fhir_output, "01-cauda-equina-urinary-saddle")[0])[PAMA_RATING] == "appropriate"


def test_no_pama_rating_where_the_outcome_states_none(example_run, example_cases, mapping):
    """The rating is ontology data: an outcome that states no rating for an indicated order
    gives its ServiceRequests none (the Argonaut guide: no rating while the decision is not
    complete; "more information needed" states none and proposes no order at all)."""
    unrated = dataclasses.replace(
        mapping, orders=dataclasses.replace(mapping.orders, indicated_order_ratings={})
    )
    inputs = {c.case_iri: c for c in example_cases.values()}
    out = to_fhir(
        example_run.results,
        example_run.statements,
        unrated,
        inputs=inputs,
        generated="2026-11-23T10:00:00+00:00",
    )
    Bundle.model_validate(out)
    requests = _resources(out, "ServiceRequest")
    assert requests and not any("extension" in s for s in requests)
    assert all(s.get("priority") for s in requests)  # the priority does not depend on the rating
    assert not [
        r
        for r in example_run.results
        if r.outcome["iri"] == str(LBP.OutcomeMoreInformationNeeded) and r.recommendation["procedure"]
    ]


def test_a_service_request_gives_its_reasons_coded_from_the_criteria_that_selected_it(fhir_output, kb):
    """``reasonCode``: the criterion that selected the procedure, then each finding that met
    it with the codes the ontology maps it to (SNOMED CT or the project CodeSystem); the
    condition the criterion suspects is not coded (that would state a diagnosis)."""
    (request,) = _requests(fhir_output, "01-cauda-equina-urinary-saddle")
    assert request["reasonCode"] == [
        {"text": "suspected cauda equina syndrome"},
        {
            "coding": [{"system": SCT, "code": "267064002"}],
            "text": str(kb.ontology.value(LBP.NewUrinaryDysfunction, RDFS.label)),
        },
        {
            "coding": [{"system": OWN, "code": "saddle-anaesthesia"}],
            "text": str(kb.ontology.value(LBP.SaddleAnaesthesia, RDFS.label)),
        },
    ]
    (steroids,) = _requests(fhir_output, "19-corticosteroids-medication-statement")
    assert steroids["reasonCode"][1]["coding"] == [{"system": OWN, "code": "prolonged-corticosteroid-use"}]
    coded = {
        c["code"]
        for s in _resources(fhir_output, "ServiceRequest")
        for r in s["reasonCode"]
        for c in r.get("coding", [])
    }
    assert "192970008" not in coded  # cauda equina syndrome, the suspected condition


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        # the contrast rule changes the study and the abnormal-result rule is outranked: neither is a reason
        ("03-infection-crp-mg-dl", ["SuspectedSpinalInfection"]),
        ("20-radiculopathy-41-days", ["RadicularSymptomsWithoutImagingCriterion"]),  # the no-imaging concept
        ("18-weight-loss-birthday-50", []),  # no criterion or rule met
        # no criterion decided the outcome: the rule that did is the reason
        ("21-night-pain-esr-normal", ["MalignancyFirstLineTestsNormal"]),
        ("22-esr-raised-without-criterion", ["AbnormalTestResultCase"]),
        ("23-under-18-saddle-anaesthesia", ["CaseUnder18Years"]),
    ],
)
def test_the_reason_of_a_guidance_response_is_what_decided_the_outcome(fhir_output, kb, name, reasons):
    guidance, _ = _guidance(fhir_output, name)
    labels = [str(kb.ontology.value(LBP[r], RDFS.label)) for r in reasons]
    assert [c["text"] for c in guidance.get("reasonCode", [])] == labels


def _part(parameter: dict, name: str):
    """The value (or, for a part with parts, the part) named ``name`` of a parameter."""
    (found,) = [p for p in parameter["part"] if p["name"] == name]
    values = [v for k, v in found.items() if k.startswith("value")]
    return values[0] if values else found


def _guidance(bundle: dict, name: str) -> tuple[dict, list[dict]]:
    """The GuidanceResponse of an example case and its output parameters."""
    case = EXPECTED[name]["case"]
    (guidance,) = [g for g in _resources(bundle, "GuidanceResponse") if g["identifier"][0]["value"] == case]
    entries = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    return guidance, entries[guidance["outputParameters"]["reference"]]["parameter"]


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("15-screening-incomplete", "data-required"),  # more information needed
        ("16-refuted-and-entered-in-error", "data-required"),
        ("14-screened-negative", "success"),  # no imaging: nothing could change it
        ("18-weight-loss-birthday-50", "success"),  # red flag without criterion, nothing to ask
        # outcomes without lbp:guidanceResponseStatus and nothing to ask: a decision made
        ("21-night-pain-esr-normal", "success"),  # first-line pathway complete
        ("22-esr-raised-without-criterion", "success"),  # abnormal result without criterion
        ("23-under-18-saddle-anaesthesia", "success"),  # out of scope
        ("13-infection-with-cauda-equina", "data-requested"),  # decided; the procedure could change
        ("01-cauda-equina-urinary-saddle", "data-requested"),
    ],
)
def test_guidance_status_says_the_three_valued_decision(fhir_output, name, status):
    guidance, _ = _guidance(fhir_output, name)
    assert guidance["status"] == status
    assert ("dataRequirement" in guidance) == (status != "success")
    if status == "data-requested":
        assert "result" in guidance  # a decision was made: the proposal is there


def _requirements(bundle: dict, name: str) -> dict[str, dict]:
    """The data requirements of an example case, by the IRI its question asks about, checked
    to be one per question in the questions' order."""
    guidance, parameters = _guidance(bundle, name)
    asked = [_part(_part(q, "about"), "iri") for q in parameters if q["name"] == "question"]
    assert len(guidance["dataRequirement"]) == len(asked) == len(set(asked))
    return dict(zip(asked, guidance["dataRequirement"], strict=True))


def test_one_data_requirement_per_question_typed_by_the_resource_that_carries_the_answer(fhir_output):
    required = _requirements(fhir_output, "15-screening-incomplete")
    assert set(required) == {str(LBP[q]) for q in EXPECTED["15-screening-incomplete"]["questions"]}
    # a finding with a SNOMED CT code: a Condition, refuted when absent
    assert required[str(LBP.Immunosuppression)] == {
        "type": "Condition",
        "mustSupport": ["verificationStatus"],
        "codeFilter": [{"path": "code", "code": [{"system": SCT, "code": "38013005"}]}],
    }
    # a finding with only the project's code: an Observation with valueBoolean
    assert required[str(LBP.IntravenousDrugUse)] == {
        "type": "Observation",
        "mustSupport": ["value"],
        "codeFilter": [{"path": "code", "code": [{"system": OWN, "code": "intravenous-drug-use"}]}],
    }
    # a laboratory value: an Observation, with every LOINC code the input reads for it (asked
    # once night pain puts the case on the first-line pathway: it could raise the urgency)
    esr = _requirements(fhir_output, "05-night-pain-first-line")[str(LBP.esrMmPerHour)]
    assert esr["type"] == "Observation" and esr["mustSupport"] == ["value"]
    assert {c["code"] for c in esr["codeFilter"][0]["code"]} == {"30341-2", "4537-7"}
    # a yes/no case property: an Observation (a Procedure could not say "no"); asked where prior
    # surgery would add contrast to the persistent-symptom MRI
    surgery = _requirements(fhir_output, "08-radiculopathy-intervention-42-days")[str(LBP.priorLumbarSurgery)]
    assert surgery == {
        "type": "Observation",
        "mustSupport": ["value"],
        "codeFilter": [{"path": "code", "code": [{"system": OWN, "code": "lumbar-spine-surgery"}]}],
    }
    # a finding the ontology says records keep as a medication (lbp:fhirResourceType): a
    # MedicationStatement, taken or not-taken, filtered on its medication
    steroids = _requirements(fhir_output, "15-screening-incomplete")[str(LBP.ProlongedCorticosteroidUse)]
    assert steroids == {
        "type": "MedicationStatement",
        "mustSupport": ["status"],
        "codeFilter": [
            {"path": "medication", "code": [{"system": OWN, "code": "prolonged-corticosteroid-use"}]}
        ],
    }
    # history of cancer, SNOMED CT-coded: a Condition (example 02 asks for it)
    cancer = _requirements(fhir_output, "02-progressive-deficit")[str(LBP.HistoryOfCancer)]
    assert cancer["type"] == "Condition" and cancer["mustSupport"] == ["verificationStatus"]


def test_a_resource_type_the_ontology_names_must_say_every_answer(onto, mapping):
    """``lbp:fhirResourceType`` decides the type, but only among the types that record an
    answer either way: an ontology naming a Procedure (done, never "not done" as the input
    reads it) is a knowledge-base error naming the term and the type."""
    steroids = {"asks": "presence", "about": {"iri": str(LBP.ProlongedCorticosteroidUse)}}
    assert answer_resource(mapping, steroids) == "MedicationStatement"
    without = dataclasses.replace(mapping, answer_resources={})
    assert answer_resource(without, steroids) == "Observation"  # derived: only a project code
    edited = copy.deepcopy(onto)
    edited.set((LBP.ProlongedCorticosteroidUse, LBP.fhirResourceType, Literal("Procedure")))
    with pytest.raises(
        KnowledgeBaseError, match=r"ProlongedCorticosteroidUse is 'Procedure'.*MedicationStatement"
    ):
        FhirMapping.from_ontology(edited)


def test_each_question_is_a_parameter_with_its_unit_criteria_effects_and_needs(fhir_output):
    _, first_line = _guidance(fhir_output, "05-night-pain-first-line")
    asked = {_part(_part(q, "about"), "iri"): q for q in first_line if q["name"] == "question"}
    esr = asked[str(LBP.esrMmPerHour)]
    assert _part(esr, "asks") == "value" and _part(esr, "unit") == "mm/h"
    criterion = _part(esr, "criterion")
    assert _part(criterion, "iri") == str(LBP.MalignancyRiskFactorsWithAbnormalFirstLineTest)
    assert _part(criterion, "effect") == "raise-urgency"
    (bound,) = _part(criterion, "needs")["part"]
    assert bound["name"] == "range"
    assert {k: bound["valueQuantity"][k] for k in ("comparator", "system", "code")} == {
        "comparator": ">=",
        "system": UCUM,
        "code": "mm/h",
    }
    _, parameters = _guidance(fhir_output, "15-screening-incomplete")
    questions = {_part(_part(q, "about"), "iri"): q for q in parameters if q["name"] == "question"}
    finding = questions[str(LBP.Immunosuppression)]
    assert _part(finding, "asks") == "presence" and _part(_part(finding, "property"), "iri") == str(
        LBP.hasFinding
    )
    assert _part(_part(finding, "criterion"), "needs")["part"] == [{"name": "present", "valueBoolean": True}]
    assert _part(_part(finding, "criterion"), "urgency")["part"][0]["valueUri"] == str(LBP.Prompt)


def test_a_data_requirement_is_what_the_fhir_input_reads_as_the_answer(fhir_output, mapping):
    """Answer each question of the examples with a resource of the required type and its
    first code: the input reads it as the fact asked about, either way (present and absent,
    true and false, a value in the question's unit). The output asks for what the input
    reads."""
    answered = {}
    for name in EXPECTED:
        guidance, parameters = _guidance(fhir_output, name)
        questions = [q for q in parameters if q["name"] == "question"]
        answered.update(zip(_questions_about(questions), guidance.get("dataRequirement", []), strict=True))
    assert len(answered) >= 30
    assert {r["type"] for r in answered.values()} == {"Condition", "Observation", "MedicationStatement"}
    for (about, unit), requirement in answered.items():
        (code_filter,) = requirement["codeFilter"]
        element = CODED_ELEMENT.get(code_filter["path"], code_filter["path"])
        for answer, fact in _answers(requirement["type"], about, unit, mapping):
            resource = {
                "resourceType": requirement["type"],
                "id": "a",
                element: {"coding": [code_filter["code"][0]]},
                **answer,
            }
            case = _read(mapping, resource)
            assert case.warnings == [] and fact in _triples(case), (about, requirement, answer)


def _questions_about(questions: list[dict]) -> list[tuple[str, str | None]]:
    """(IRI asked about, unit) of each question parameter."""
    units = [[p["valueCode"] for p in q["part"] if p["name"] == "unit"] for q in questions]
    return [
        (_part(_part(q, "about"), "iri"), (u or [None])[0]) for q, u in zip(questions, units, strict=True)
    ]


CODED_ELEMENT = {"medication": "medicationCodeableConcept"}  # a choice element's CodeableConcept


def _answers(kind: str, about: str, unit: str | None, mapping) -> list[tuple[dict, tuple[str, str]]]:
    """Two answers of a resource type to a question about ``about``, with the fact each gives."""
    name = _name(about)
    if kind == "Condition":
        return [
            ({"verificationStatus": _coding(VER, "confirmed")}, ("hasFinding", name)),
            ({"verificationStatus": _coding(VER, "refuted")}, ("hasAbsentFinding", name)),
        ]
    if kind == "MedicationStatement":
        return [
            ({"status": "active"}, ("hasFinding", name)),
            ({"status": "not-taken"}, ("hasAbsentFinding", name)),
        ]
    assert kind == "Observation"
    base = {"status": "final"}
    if about in mapping.findings:
        return [
            ({**base, "valueBoolean": True}, ("hasFinding", name)),
            ({**base, "valueBoolean": False}, ("hasAbsentFinding", name)),
        ]
    if unit:
        quantity = {"value": 7, "system": UCUM, "code": unit}
        return [({**base, "valueQuantity": quantity}, (name, "7"))]
    return [({**base, "valueBoolean": b}, (name, str(b).lower())) for b in (True, False)]


def test_the_mapping_document_tables_the_resource_type_of_every_fact_as_the_code_derives_it(mapping):
    """docs/fhir-mapping.md lists which resource type each fact is asked as: every finding and
    every coded case property, each in the row of the type ``answer_resource`` gives."""
    text = (ROOT / "docs" / "fhir-mapping.md").read_text(encoding="utf-8")
    rows = text.split("| asked | `type` | `mustSupport` |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    listed: dict[str, str] = {}
    for row in rows:
        _, _, kind, _, facts, _ = row.split("|")
        listed.update(dict.fromkeys(re.findall(r"`(\w+)`", facts), kind.strip(" `")))
    coded = {p for p in mapping.properties if mapping.read_codings(p)}
    assert set(listed) == {_name(t) for t in mapping.findings | coded}
    for term in mapping.findings | coded:
        asks = "presence" if term in mapping.findings else "value"
        assert listed[_name(term)] == answer_resource(mapping, {"asks": asks, "about": {"iri": term}}), term


def test_no_screening_complete_anywhere_in_the_fhir_output(fhir_output):
    assert "screeningComplete" not in json.dumps(fhir_output)


def test_unknown_code_warnings_travel_into_the_output(fhir_output):
    issues = [i for o in _resources(fhir_output, "OperationOutcome") for i in o["issue"]]
    assert any(i["severity"] == "warning" and "441509002" in i["diagnostics"] for i in issues)


def test_an_invalid_case_is_a_failed_guidance_response(assessor, mapping, tmp_path):
    no_birth = _read(mapping, birth=None)
    run = _assess(assessor, [no_birth], tmp_path)
    assert run.results[0].status == "invalid"
    out = to_fhir(
        run.results, run.statements, mapping, inputs={no_birth.case_iri: no_birth}, input_errors=["x: bad"]
    )
    Bundle.model_validate(out)
    (guidance,) = _resources(out, "GuidanceResponse")
    assert guidance["status"] == "failure" and "result" not in guidance
    issues = [i for o in _resources(out, "OperationOutcome") for i in o["issue"]]
    assert any(i["severity"] == "error" and "Age is missing" in i["diagnostics"] for i in issues)
    assert any(i["diagnostics"] == "x: bad" for i in issues)
    assert any("no birthDate: age unknown" in i["diagnostics"] for i in issues)


# -- the project CodeSystem -------------------------------------------------------------------
def test_project_code_system_file_is_generated_from_the_ontology(onto, kb):
    on_disk = json.loads((kb.ontology_dir / CODE_SYSTEM_FILE).read_text(encoding="utf-8"))
    assert on_disk == code_system_resource(onto), "regenerate: python -m reasoner.fhir.mapping"
    CodeSystem.model_validate(on_disk)
    assert on_disk["url"] == project_code_system(onto).fhir_system == OWN
    assert on_disk["count"] == len(on_disk["concept"]) >= 30


def test_every_finding_and_input_property_can_be_coded_in_fhir(mapping):
    coded = {t for terms in mapping.terms.values() for t in terms}
    assert mapping.findings <= coded, f"findings FHIR cannot express: {sorted(mapping.findings - coded)}"
    for name in (
        "symptomDurationWeeks",
        "conservativeTreatmentWeeks",
        "surgicalCandidate",
        "interventionCandidate",
        "priorLumbarSurgery",
        "esrMmPerHour",
        "crpMgPerL",
    ):
        assert str(LBP[name]) in coded, name
        assert mapping.properties[str(LBP[name])].unit or mapping.properties[
            str(LBP[name])
        ].datatype.endswith("boolean")


def test_the_mapping_document_lists_every_project_code(kb):
    """docs/fhir-mapping.md tables every concept of the CodeSystem: a new code needs a row."""
    text = (ROOT / "docs" / "fhir-mapping.md").read_text(encoding="utf-8")
    codes = [c["code"] for c in json.loads((kb.ontology_dir / CODE_SYSTEM_FILE).read_text())["concept"]]
    assert [c for c in codes if f"lbp-imaging `{c}`" not in text] == []
