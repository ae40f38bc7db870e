"""The FHIR Questionnaire generated from the ontology: valid FHIR, an item for every finding
a criterion reads, a new red flag asked with no code change, the adaptive questionnaire of
an undetermined case, and the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from rdflib import RDF, RDFS, URIRef

from reasoner.fhir.questionnaire import adaptive, questionnaire
from reasoner.knowledge import LBP, KnowledgeBase
from reasoner.pipeline.assess import Assessor
from reasoner.pipeline.definitions import compile_definitions, leaves
from tests.kb_copy import add_red_flag, copy_kb

ROOT = Path(__file__).resolve().parent.parent
UNDETERMINED = ROOT / "examples/cases/42-radiculopathy-candidacy-unknown.ttl"
CLI = [sys.executable, "-m", "reasoner.cli"]


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


@pytest.fixture(scope="module")
def full(kb: KnowledgeBase) -> dict:
    return questionnaire(kb)


def items(resource: dict) -> list[dict]:
    """The question items (not groups, not help text), in order."""
    return [i for g in resource["item"] for i in g["item"]]


def read_findings(kb: KnowledgeBase) -> set[str]:
    """Every finding a definition names: as a value, or as a member of a category it reads."""
    g = kb.ontology
    found = set()
    for formula in compile_definitions(g).values():
        for leaf in leaves(formula):
            if leaf.kind == "value" and isinstance(leaf.value, URIRef) and leaf.on == LBP.hasFinding:
                found.add(str(leaf.value))
            if leaf.kind == "some" and leaf.on == LBP.hasFinding:
                classes = set(g.transitive_subjects(RDFS.subClassOf, leaf.cls))
                found |= {str(i) for c in classes for i in g.subjects(RDF.type, c)}
    return found


def test_it_is_a_valid_fhir_questionnaire_under_the_project_base(full: dict, kb: KnowledgeBase):
    Questionnaire.model_validate(full)
    assert full["url"].startswith("https://w3id.org/lbp-imaging/fhir/Questionnaire/")
    assert full["version"] == "0.1.0"
    assert full["status"] in ("draft", "active")
    assert "Decision support, not diagnosis" in full["description"]
    assert all(g["type"] == "group" for g in full["item"])


def test_every_finding_a_criterion_reads_has_a_coded_yes_no_item(full: dict, kb: KnowledgeBase):
    by_definition = {i["definition"]: i for i in items(full)}
    findings = read_findings(kb)
    assert len(findings) > 30
    for finding in findings:
        item = by_definition[finding]
        assert item["linkId"] == finding.rsplit("/", 1)[-1]
        assert item["type"] == "choice"
        assert [o["valueCoding"]["code"] for o in item["answerOption"]] == ["Y", "N"]
        assert item["code"], finding
    fever = by_definition[str(LBP.Fever)]
    assert fever["text"] == "fever"
    assert {"system": "http://snomed.info/sct", "code": "386661006"} in fever["code"]
    assert "pyrexia" in fever["item"][0]["text"] and fever["item"][0]["type"] == "display"


def test_numbers_carry_their_ucum_unit_and_groups_go_most_urgent_first(full: dict, kb: KnowledgeBase):
    by_definition = {i["definition"]: i for i in items(full)}
    weeks = by_definition[str(LBP.symptomDurationWeeks)]
    assert weeks["type"] == "decimal"
    assert weeks["extension"][0]["valueCoding"]["code"] == "wk"
    assert by_definition[str(LBP.ageInYears)]["type"] == "integer"
    assert by_definition[str(LBP.surgicalCandidate)]["type"] == "boolean"
    groups = [g["definition"] for g in full["item"]]
    assert groups[0] == str(LBP.CaudaEquinaSyndrome)  # the emergent criterion's findings
    assert groups[-1] == str(LBP.PatientCase)  # the case properties last
    assert groups.index(str(LBP.SpinalInfection)) < groups.index(str(LBP.LumbarRadiculopathy))


def test_a_red_flag_added_by_an_author_gets_an_item_without_code_change(tmp_path: Path):
    root = copy_kb(tmp_path, ("ontology", "shapes", "queries"))
    add_red_flag(root)
    resource = questionnaire(KnowledgeBase.load(root))
    Questionnaire.model_validate(resource)
    infection = next(g for g in resource["item"] if g["definition"] == str(LBP.SpinalInfection))
    added = next(i for i in infection["item"] if i["linkId"] == "SpinalTenderness")
    assert added["text"] == "spinal tenderness" and added["item"][0]["text"] == "sore to tap"
    assert added["code"][0]["code"] == "spinal-tenderness"


def test_the_adaptive_questionnaire_asks_exactly_the_engines_questions(full: dict, kb: KnowledgeBase):
    result = Assessor(kb).assess([UNDETERMINED]).results[0]
    assert result.outcome["iri"].endswith("OutcomeMoreInformationNeeded")
    asked = list(dict.fromkeys(q["about"]["iri"] for q in result.questions))
    narrowed = adaptive(full, result)
    Questionnaire.model_validate(narrowed)
    assert [i["definition"] for i in items(narrowed)] == asked
    assert asked == [str(LBP.interventionCandidate), str(LBP.surgicalCandidate)]
    assert narrowed["derivedFrom"] == [f"{full['url']}|{full['version']}"]


def test_the_command_writes_the_questionnaire_and_the_adaptive_one(tmp_path: Path):
    out = tmp_path / "q.json"
    done = subprocess.run([*CLI, "questionnaire", "--output", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    Questionnaire.model_validate(json.loads(out.read_text(encoding="utf-8")))
    done = subprocess.run(
        [*CLI, "questionnaire", "--case", str(UNDETERMINED)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert [i["linkId"] for i in items(json.loads(done.stdout))] == [
        "interventionCandidate",
        "surgicalCandidate",
    ]
