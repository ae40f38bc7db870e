"""A FHIR QuestionnaireResponse to the generated questionnaire read as case facts (SDC
``$extract``): alone or in a Bundle with the Patient; yes = present, no = absent, no answer =
unknown; values converted to the ontology's units; every bad answer an error for that
response only. Answering the questions of each undetermined example settles it (both
engines), and ``populate`` pre-fills the questionnaire with what a case records."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from reasoner.fhir.questionnaire import adaptive, populate, questionnaire
from reasoner.fhir.sdc import NO, YES
from reasoner.knowledge import LBP, KnowledgeBase
from reasoner.pipeline.assess import Assessor
from reasoner.pipeline.cases import load

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "cases"
MORE_INFORMATION = str(LBP.OutcomeMoreInformationNeeded)
SUBJECT = "urn:uuid:4f1c1e7e-0000-4000-8000-000000000001"
UCUM = "http://unitsofmeasure.org"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


@pytest.fixture(scope="module")
def full(kb: KnowledgeBase) -> dict:
    return questionnaire(kb)


@pytest.fixture(scope="module")
def assessor(kb: KnowledgeBase) -> Assessor:
    return Assessor(kb, "fast")


def response(full: dict, answers: dict[str, dict], subject: str | None = SUBJECT) -> dict:
    """A response answering ``answers`` (linkId -> answer element), grouped as the
    questionnaire groups its items; items not answered are left out."""
    groups = []
    for group in full["item"]:
        answered = [
            {"linkId": i["linkId"], "answer": [answers[i["linkId"]]]}
            for i in group["item"]
            if i["linkId"] in answers
        ]
        if answered:
            groups.append({"linkId": group["linkId"], "item": answered})
    doc = {
        "resourceType": "QuestionnaireResponse",
        "id": "r1",
        "questionnaire": f"{full['url']}|{full['version']}",
        "status": "completed",
        "item": groups,
    }
    return {**doc, "subject": {"reference": subject}} if subject else doc


def yes() -> dict:
    return {"valueCoding": dict(YES)}


def no() -> dict:
    return {"valueCoding": dict(NO)}


def assess(
    assessor: Assessor, tmp_path: Path, *docs: dict, merge: bool = False, files: tuple[Path, ...] = ()
):
    paths = list(files)
    for n, doc in enumerate(docs):
        paths.append(tmp_path / f"input-{n}.json")
        paths[-1].write_text(json.dumps(doc))
    return assessor.assess_loaded(load(paths, replace(assessor.inputs, merge_duplicates=merge)))


def facts(result) -> dict[str, object]:
    """A result's facts as property local name -> value (findings as sets of local names)."""
    found: dict[str, object] = {}
    for fact in result.facts:
        prop, value = fact["property"]["iri"].rsplit("/", 1)[-1], fact["value"]
        if "iri" in value:
            found.setdefault(prop, set()).add(value["iri"].rsplit("/", 1)[-1])
        else:
            found[prop] = value["value"]
    return found


# -- reading -------------------------------------------------------------------------------
def test_a_response_alone_is_a_case_its_answers_the_facts(assessor, full, tmp_path):
    answers = {
        "SaddleAnaesthesia": yes(),
        "NewUrinaryDysfunction": no(),
        "ageInYears": {"valueInteger": 54},
        "crpMgPerL": {"valueQuantity": {"value": 1.2, "system": UCUM, "code": "mg/dL"}},
        "symptomDurationWeeks": {"valueDecimal": 3},
        "esrMmPerHour": {"valueInteger": 12},
        "surgicalCandidate": {"valueBoolean": False},
    }
    run = assess(assessor, tmp_path, response(full, answers))
    (result,) = run.results
    assert (result.case, result.status) == (SUBJECT, "assessed")
    got = facts(result)
    assert got["hasFinding"] == {"SaddleAnaesthesia"} and got["hasAbsentFinding"] == {"NewUrinaryDysfunction"}
    assert (got["ageInYears"], got["crpMgPerL"], got["symptomDurationWeeks"]) == (54, 12, 3)
    assert (got["esrMmPerHour"], got["surgicalCandidate"]) == (12, False)
    assert result.recommendation["urgency"]["iri"] == str(LBP.Emergent)
    assert not [w for w in result.warnings if "birthDate" in w]  # age is an answer here


def test_an_unanswered_question_is_unknown_never_absent(assessor, full, tmp_path):
    run = assess(assessor, tmp_path, response(full, {"ageInYears": {"valueInteger": 40}}))
    (result,) = run.results
    assert "hasAbsentFinding" not in facts(result)
    assert result.outcome["iri"] == MORE_INFORMATION and result.questions


def _bundle(full: dict, answers: dict[str, dict]) -> dict:
    """A Bundle with a Patient born in 1960, a Condition recording fever, and a response."""
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "386661006"}]},
    }
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1960-01-01", "gender": "female"}
    entries = [patient, response(full, answers, "Patient/p1"), condition]
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in entries]}


def test_a_response_in_a_bundle_with_the_patient_and_other_resources(assessor, full, tmp_path):
    bundle = _bundle(full, {"Immunosuppression": no(), "symptomDurationWeeks": {"valueDecimal": 2}})
    (result,) = assess(assessor, tmp_path, bundle).results
    got = facts(result)
    assert result.case == "https://w3id.org/lbp-imaging/fhir/Patient/p1"
    assert got["ageInYears"] > 60 and got["symptomDurationWeeks"] == 2
    assert got["hasFinding"] == {"Fever"} and got["hasAbsentFinding"] == {"Immunosuppression"}


def test_a_patient_without_birth_date_gets_no_age_warning_when_the_response_answers_it(
    assessor, full, tmp_path
):
    bundle = _bundle(full, {"ageInYears": {"valueInteger": 70}})
    del bundle["entry"][0]["resource"]["birthDate"]
    (answered,) = assess(assessor, tmp_path, bundle).results
    assert facts(answered)["ageInYears"] == 70 and not [w for w in answered.warnings if "birthDate" in w]
    bundle = _bundle(full, {"Fever": yes()})
    del bundle["entry"][0]["resource"]["birthDate"]
    (unanswered,) = assess(assessor, tmp_path, bundle).results
    assert any("Patient/p1: no birthDate: age unknown" in w for w in unanswered.warnings)


def test_a_response_that_contradicts_the_record_is_an_invalid_case(assessor, full, tmp_path):
    (result,) = assess(assessor, tmp_path, _bundle(full, {"Fever": no()})).results
    assert result.status == "invalid"
    assert [e["value"] for e in result.errors] == [f"<{LBP.Fever}>"]
    assert "both as present and as absent" in result.errors[0]["message"]


def _bad(full: dict, change) -> dict:
    doc = response(full, {"Fever": yes(), "ageInYears": {"valueInteger": 30}})
    change(doc)
    return doc


def _answer(doc: dict, link_id: str) -> dict:
    return next(i for g in doc["item"] for i in g["item"] if i["linkId"] == link_id)["answer"]


BAD = {
    "unknown linkId": (
        lambda d: d["item"][0]["item"].append(
            {"linkId": "NoSuchFinding", "answer": [{"valueBoolean": True}]}
        ),
        "item 'NoSuchFinding' is not a question of",
    ),
    "another questionnaire": (
        lambda d: d.update(questionnaire="http://example.org/Questionnaire/phq-9"),
        "answers questionnaire 'http://example.org/Questionnaire/phq-9'",
    ),
    "another version": (
        lambda d: d.update(questionnaire=d["questionnaire"].split("|")[0] + "|0.0.9"),
        "version '0.0.9'",
    ),
    "a coding not offered": (
        lambda d: _answer(d, "Fever")[0]["valueCoding"].update(code="maybe"),
        "item Fever takes valueCoding Y (yes) or N (no)",
    ),
    "a string for a number": (
        lambda d: _answer(d, "ageInYears").__setitem__(0, {"valueString": "thirty"}),
        "item ageInYears takes valueInteger, not valueString 'thirty'",
    ),
    "two answers": (lambda d: _answer(d, "Fever").append(no()), "item Fever has 2 answers"),
    "a unit that does not convert": (
        lambda d: d["item"].append(
            {
                "linkId": "PatientCase",
                "item": [
                    {
                        "linkId": "crpMgPerL",
                        "answer": [{"valueQuantity": {"value": 3, "system": UCUM, "code": "kg"}}],
                    }
                ],
            }
        ),
        "item crpMgPerL: 'kg' does not convert to 'mg/L'",
    ),
    "an answer to a group": (
        lambda d: d["item"][0].update(answer=[{"valueBoolean": True}]),
        "is not a question to answer",
    ),
    "no questionnaire": (lambda d: d.pop("questionnaire"), "names no questionnaire"),
}


def test_each_bad_response_is_an_error_naming_it_and_the_rest_goes_on(assessor, full, tmp_path):
    docs = [_bad(full, change) for change, _ in BAD.values()]
    for n, doc in enumerate(docs):
        doc["subject"]["reference"] = f"urn:uuid:00000000-0000-4000-8000-{n:012d}"
    good = response(
        full, {"ageInYears": {"valueInteger": 30}}, "urn:uuid:00000000-0000-4000-8000-999999999999"
    )
    run = assess(assessor, tmp_path, *docs, good)
    assert [r.case for r in run.results] == [good["subject"]["reference"]]
    errors = {e.path: e.message for e in run.input_errors}
    for n, (name, (_, message)) in enumerate(BAD.items()):
        error = errors.get(str(tmp_path / f"input-{n}.json"), "")
        assert "QuestionnaireResponse/r1" in error and message in error, (name, error)


def test_the_command_line_reads_a_response_file(cli, full, tmp_path):
    path = tmp_path / "answers.json"
    path.write_text(
        json.dumps(response(full, {"SaddleAnaesthesia": yes(), "ageInYears": {"valueInteger": 50}}))
    )
    done = cli("assess", path, "--format", "json")
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["recommendation"]["urgency"]["iri"] == str(LBP.Emergent)


# -- settling undetermined cases --------------------------------------------------------------
ANSWER_NO = {
    "integer": {"valueInteger": 40},
    "decimal": {"valueDecimal": 1},
    "boolean": {"valueBoolean": False},
}


def _answering(full: dict, result, adapted: dict) -> dict:
    """A response answering every question of ``adapted`` (no; false; a number)."""
    answers = {
        i["linkId"]: no() if i["type"] == "choice" else ANSWER_NO[i["type"]]
        for g in adapted["item"]
        for i in g["item"]
    }
    return response(full, answers, result.case)


def _undetermined(assessor) -> list[tuple[Path, object]]:
    found = []
    for path in sorted(p for p in EXAMPLES.iterdir() if not p.name.endswith(".expected.json")):
        for result in assessor.assess_loaded(load([path], assessor.inputs)).results:
            if result.status == "assessed" and result.outcome["iri"] == MORE_INFORMATION:
                found.append((path, result))
    return found


def test_answering_its_questions_settles_every_undetermined_example(assessor, full, tmp_path):
    undetermined = _undetermined(assessor)
    assert len(undetermined) >= 5
    for n, (path, result) in enumerate(undetermined):
        adapted = adaptive(full, result)
        asked = [i["linkId"] for g in adapted["item"] for i in g["item"]]
        assert asked, path.name
        folder = tmp_path / str(n)
        folder.mkdir()
        run = assess(assessor, folder, _answering(full, result, adapted), merge=True, files=(path,))
        settled = next(r for r in run.results if r.case == result.case)
        assert settled.outcome["iri"] != MORE_INFORMATION, (path.name, settled.questions)
        assert not settled.questions or settled.recommendation, path.name


@pytest.mark.hermit
def test_the_reference_engine_settles_them_the_same_way(kb, assessor, full, tmp_path):
    undetermined = _undetermined(assessor)[:3]
    files: list[Path] = []
    for n, (path, result) in enumerate(undetermined):
        files += [path, tmp_path / f"answers-{n}.json"]
        files[-1].write_text(json.dumps(_answering(full, result, adaptive(full, result))))
    options = replace(assessor.inputs, merge_duplicates=True)
    fast = assessor.assess_loaded(load(files, options))
    hermit = Assessor(kb, "hermit").assess_loaded(load(files, options))
    outcomes = {r.case: r.outcome["iri"] for r in fast.results}
    assert outcomes == {r.case: r.outcome["iri"] for r in hermit.results}
    assert MORE_INFORMATION not in outcomes.values() and len(outcomes) == len(undetermined)


# -- populate ----------------------------------------------------------------------------------
def _initial_answers(populated: dict) -> dict[str, dict]:
    return {i["linkId"]: i["initial"][0] for g in populated["item"] for i in g["item"] if "initial" in i}


def test_populate_prefills_what_the_case_records_and_nothing_else(assessor, full):
    path = EXAMPLES / "42-radiculopathy-candidacy-unknown.ttl"
    (result,) = assessor.assess_loaded(load([path], assessor.inputs)).results
    initial = _initial_answers(populate(full, result))
    got = facts(result)
    assert {k for k, v in initial.items() if v == {"valueCoding": YES}} == got["hasFinding"] & set(initial)
    assert initial["ageInYears"] == {"valueInteger": got["ageInYears"]}
    assert initial["symptomDurationWeeks"] == {"valueDecimal": got["symptomDurationWeeks"]}
    asked = {q["about"]["iri"].rsplit("/", 1)[-1] for q in result.questions}
    assert asked and not asked & set(initial)  # an open question is never pre-filled


def test_a_populated_questionnaire_answered_as_filled_gives_the_same_decision(assessor, full, tmp_path):
    """For every example case: its pre-filled answers, sent back as a response, are a case
    the engine decides exactly as the original (the questionnaire asks every fact read)."""
    paths = sorted(p for p in EXAMPLES.iterdir() if not p.name.endswith(".expected.json"))
    originals = [
        r for r in assessor.assess_loaded(load(paths, assessor.inputs)).results if r.status == "assessed"
    ]
    assert len(originals) > 40
    docs = []
    for n, result in enumerate(originals):
        docs.append(
            response(
                full, _initial_answers(populate(full, result)), f"urn:uuid:00000000-0000-4000-8000-{n:012d}"
            )
        )
    run = assess(assessor, tmp_path, *docs)
    by_case = {r.case: r for r in run.results}
    for n, original in enumerate(originals):
        again = by_case[f"urn:uuid:00000000-0000-4000-8000-{n:012d}"]
        assert again.outcome == original.outcome, original.case
        assert again.recommendation == original.recommendation, original.case
        assert again.met_classes() == original.met_classes(), original.case
        assert again.questions == original.questions, original.case


def test_the_command_writes_the_populated_questionnaire(cli, tmp_path):
    path = EXAMPLES / "42-radiculopathy-candidacy-unknown.ttl"
    done = cli("questionnaire", "--case", path, "--populate", "-o", tmp_path / "q.json")
    assert done.returncode == 0, done.stderr
    populated = json.loads((tmp_path / "q.json").read_text())
    assert populated["url"].endswith("/lbp-PatientCase") and _initial_answers(populated)["ageInYears"]
    refused = cli("questionnaire", "--populate")
    assert refused.returncode == 2 and "--populate needs --case" in refused.stderr
