"""The case page's questionnaire form without a browser: the form model built from the
questionnaire (an item added to the knowledge base becomes a field with no code change),
the posted fields read into a FHIR Bundle with a ``QuestionnaireResponse``, the format of
pasted text detected, and a form answer assessed like the equivalent example case."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from pathlib import Path

import pytest

from reasoner.fhir.questionnaire import questionnaire
from reasoner.fhir.sdc import NO, UNIT_EXTENSION, YES
from reasoner.knowledge import KnowledgeBase
from reasoner.server.pages.case_form import CaseDesk, detect_format
from reasoner.server.pages.questionnaire_form import GENDER_FIELD, FormModel, FormView, Option
from tests.kb_copy import add_red_flag, copy_kb

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "cases"
GENDERS = (Option("female", "female"), Option("male", "male"))


@pytest.fixture(scope="module")
def resource(kb: KnowledgeBase) -> dict:
    return questionnaire(kb)


@pytest.fixture(scope="module")
def model(resource: dict) -> FormModel:
    return FormModel.from_questionnaire(resource, GENDERS)


def _items(resource: dict) -> list[tuple[str, list[str]]]:
    """(group linkId, its non-display item linkIds), in the questionnaire's order."""
    return [
        (g["linkId"], [i["linkId"] for i in g["item"] if i["type"] != "display"]) for g in resource["item"]
    ]


def _finding_group(model: FormModel):
    return next(g for g in model.groups if g.none_field)


# -- the form model -----------------------------------------------------------------------
def test_every_questionnaire_item_is_a_field_in_its_group_in_order(resource, model):
    assert [(g.link_id, [f.link_id for f in g.fields]) for g in model.groups] == _items(resource)
    texts = {g["linkId"]: g["text"] for g in resource["item"]}
    assert {g.link_id: g.text for g in model.groups} == texts
    for item in (i for g in resource["item"] for i in g["item"]):
        f = model.fields[item["linkId"]]
        assert (f.type, f.definition, f.text) == (item["type"], item["definition"], item["text"])
        helps = [c["text"] for c in item.get("item", ()) if c["type"] == "display"]
        assert f.help == ("; ".join(helps) or None)
        units = [e["valueCoding"]["code"] for e in item.get("extension", ()) if e["url"] == UNIT_EXTENSION]
        assert f.unit == (units[0] if units else None)
        if item["type"] == "choice":
            assert [o.value for o in f.options] == [YES["code"], NO["code"]]
    # Only groups with findings offer "none of these".
    assert {g.link_id for g in model.groups if g.none_field} == {
        g.link_id for g in model.groups if any(f.type == "choice" for f in g.fields)
    }
    assert model.canonical == f"{resource['url']}|{resource['version']}"


def test_a_red_flag_added_to_the_knowledge_base_is_a_field_without_code_change(tmp_path):
    root = copy_kb(tmp_path, ("ontology", "shapes", "queries"))
    add_red_flag(root)
    model = FormModel.from_questionnaire(questionnaire(KnowledgeBase.load(root)), GENDERS)
    group = next(g for g in model.groups if "SpinalTenderness" in [f.link_id for f in g.fields])
    assert "Fever" in [f.link_id for f in group.fields]
    field = model.fields["SpinalTenderness"]
    assert (field.type, field.text, field.help) == ("choice", "spinal tenderness", "sore to tap")
    answers = model.read({"SpinalTenderness": "Y"})
    response = model.bundle(answers)["entry"][1]["resource"]
    assert response["item"][0]["item"][0]["linkId"] == "SpinalTenderness"


def test_initial_values_of_a_populated_questionnaire_start_the_form(resource):
    populated = copy.deepcopy(resource)
    found = {i["linkId"]: i for g in populated["item"] for i in g["item"]}
    choice = next(k for k, i in found.items() if i["type"] == "choice")
    number = {
        t: next(k for k, i in found.items() if i["type"] == t) for t in ("integer", "decimal", "boolean")
    }
    found[choice]["initial"] = [{"valueCoding": YES}]
    found[number["integer"]]["initial"] = [{"valueInteger": 61}]
    found[number["decimal"]]["initial"] = [{"valueDecimal": 4.5}]
    found[number["boolean"]]["initial"] = [{"valueBoolean": False}]
    view = FormView.blank(FormModel.from_questionnaire(populated, GENDERS))
    assert view.values == {
        choice: "Y",
        number["integer"]: "61",
        number["decimal"]: "4.5",
        number["boolean"]: "false",
    }


# -- fields -> Bundle -----------------------------------------------------------------------
def test_fields_become_a_bundle_of_patient_and_response(model, resource):
    group = _finding_group(model)
    first, second = group.fields[0].link_id, group.fields[1].link_id
    integer = next(f.link_id for f in model.fields.values() if f.type == "integer")
    decimal = next(f.link_id for f in model.fields.values() if f.type == "decimal")
    boolean = next(f.link_id for f in model.fields.values() if f.type == "boolean")
    posted = {
        first: "Y",
        second: "",
        integer: " 54 ",
        decimal: "2.5",
        boolean: "false",
        GENDER_FIELD: "female",
    }
    answers = model.read({**posted, "unknown-field": "x"})
    assert answers.errors == {}
    minted = uuid.uuid4()
    bundle = model.bundle(answers, minted)
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    patient_entry, response_entry = bundle["entry"]
    assert patient_entry == {
        "fullUrl": f"urn:uuid:{minted}",
        "resource": {"resourceType": "Patient", "id": str(minted), "gender": "female"},
    }
    response = response_entry["resource"]
    assert response["questionnaire"] == f"{resource['url']}|{resource['version']}"
    assert response["subject"] == {"reference": f"urn:uuid:{minted}"}
    answered = {i["linkId"]: i["answer"] for g in response["item"] for i in g["item"]}
    assert answered == {
        first: [{"valueCoding": YES}],
        integer: [{"valueInteger": 54}],
        decimal: [{"valueDecimal": 2.5}],
        boolean: [{"valueBoolean": False}],
    }
    # Groups as in the questionnaire, only those with an answer, in its order.
    order = [g.link_id for g in model.groups]
    groups = [g["linkId"] for g in response["item"]]
    assert groups == sorted(groups, key=order.index) and group.link_id in groups
    assert len(groups) == len({g.link_id for g in model.groups for f in g.fields if f.link_id in answered})
    # A new Patient per submission.
    assert model.bundle(answers)["entry"][0]["fullUrl"] != model.bundle(answers)["entry"][0]["fullUrl"]


def test_none_of_these_answers_no_only_to_findings_left_not_asked(model):
    group = _finding_group(model)
    yes = group.fields[0].link_id
    answers = model.read({group.none_field: "on", yes: "Y"})
    expected = {f.link_id: "N" for f in group.fields if f.type == "choice"} | {yes: "Y"}
    assert answers.values == expected
    response = model.bundle(answers)["entry"][1]["resource"]
    assert [g["linkId"] for g in response["item"]] == [group.link_id]
    # Other groups' findings stay unasked: absent from the response.
    assert not any(f.link_id in answers.values for g in model.groups if g is not group for f in g.fields)


def test_an_empty_form_is_a_response_with_no_items(model):
    answers = model.read({})
    assert answers.values == {} and answers.errors == {}
    assert model.bundle(answers)["entry"][1]["resource"]["item"] == []
    assert "gender" not in model.bundle(answers)["entry"][0]["resource"]


@pytest.mark.parametrize(
    ("kind", "typed", "message"),
    [
        ("integer", "abc", "not a whole number"),
        ("integer", "4.5", "not a whole number"),
        ("integer", "99999999999", "too large"),
        ("decimal", "abc", "not a number"),
        ("decimal", "1e5", "not a number"),
        ("decimal", "9" * 400, "too large"),
        ("boolean", "maybe", "listed answers"),
        ("choice", "X", "listed answers"),
    ],
)
def test_bad_values_are_errors_of_their_field_and_the_rest_is_kept(model, kind, typed, message):
    name = next(f.link_id for f in model.fields.values() if f.type == kind)
    other = next(f.link_id for f in model.fields.values() if f.type == "choice" and f.link_id != name)
    answers = model.read({name: typed, other: "N", GENDER_FIELD: "male"})
    assert list(answers.errors) == [name] and message in answers.errors[name]
    assert answers.values == {name: typed, other: "N", GENDER_FIELD: "male"}


def test_a_gender_not_in_the_mapping_is_an_error(model):
    assert model.read({GENDER_FIELD: "robot"}).errors == {GENDER_FIELD: "choose one of the listed values"}


# -- the advanced tab's format detection ----------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"resourceType": "Bundle", "type": "collection"}', "fhir"),
        ('{"resourceType": "QuestionnaireResponse"}', "fhir"),
        ('{"@context": {}, "@id": "x"}', "json-ld"),
        ('[{"resourceType": "Patient"}]', "json-ld"),
        ('{"resourceType": "Bundle", ', "json-ld"),
        ("@prefix lbp: <https://w3id.org/lbp-imaging/> .\n<x> a lbp:PatientCase .", "turtle"),
        ("<https://example.org/c> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <x> .", "turtle"),
        ("[ a <https://w3id.org/lbp-imaging/PatientCase> ] .", "turtle"),
        ("", "turtle"),
    ],
)
def test_the_format_of_pasted_text_is_detected(text, expected):
    assert detect_format(text) == expected


def test_json_nested_too_deep_to_parse_is_left_to_the_json_reader():
    assert detect_format("[" * 100_000 + "]" * 100_000) == "json-ld"


# -- assessed like the equivalent case --------------------------------------------------------
def test_a_form_answer_is_assessed_like_the_equivalent_example(assessor):
    """The form filled as ``01-cauda-equina-urinary-saddle.ttl`` (the same facts): the same
    outcome, procedure and urgency, through the FHIR reader."""
    desk = CaseDesk(assessor, threading.Lock())
    posted = {
        "ageInYears": "45",
        GENDER_FIELD: "male",
        "symptomDurationWeeks": "2",
        "NewUrinaryDysfunction": "Y",
        "SaddleAnaesthesia": "Y",
        "Fever": "N",
        "HistoryOfCancer": "N",
        "SignificantTrauma": "N",
    }
    report = desk.assess_form(desk.form.read(posted))
    assert report.errors == [] and len(report.results) == 1
    result = report.results[0]
    expected = json.loads((EXAMPLES / "01-cauda-equina-urinary-saddle.expected.json").read_text())
    local = {
        "outcome": (result.outcome or {}).get("iri", "").rsplit("/", 1)[-1],
        "procedure": ((result.recommendation or {}).get("procedure") or {}).get("iri", "").rsplit("/", 1)[-1],
        "urgency": ((result.recommendation or {}).get("urgency") or {}).get("iri", "").rsplit("/", 1)[-1],
    }
    assert local == {k: expected[k] for k in local}
    assert json.loads(report.text)["entry"][1]["resource"]["resourceType"] == "QuestionnaireResponse"
    assert report.shown_as == "the form"
