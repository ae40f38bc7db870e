"""``lbp-imaging impact``: case changes with their causes, the axiom diff (structural, not
by blank-node id), git revisions as the base without touching the working tree."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from kb_copy import ROOT, copy_kb, edit
from rdflib import Graph

from reasoner.authoring.axiom_diff import diff
from reasoner.authoring.axioms import Renderer, prefixes_of, split
from reasoner.authoring.impact import impact
from reasoner.knowledge import LBP, KnowledgeBase

EXTRA_CASE = """@prefix lbp: <https://w3id.org/lbp-imaging/> .
<https://example.org/case/extra-esr-22> a lbp:PatientCase ; lbp:ageInYears 60 ;
    lbp:hasFinding lbp:NightOrRestPain ; lbp:esrMmPerHour 22.0 .
<https://example.org/case/extra-new-sign> a lbp:PatientCase ; lbp:ageInYears 60 ;
    lbp:hasFinding lbp:AuthorAddedSign .
"""


ABNORMAL_TEST = (
    "MalignancyRiskFactorsWithAbnormalFirstLineTest EquivalentTo: MalignancyRiskFactorsFirstLineTests"
    " and ((esrMmPerHour some xsd:decimal[>= {}]) or (hasFinding value AbnormalLumbarRadiograph))"
)
INFECTION = (
    "[ a owl:Restriction ; owl:onProperty lbp:hasFinding ; owl:someValuesFrom lbp:InfectionRiskFactor ]"
)
CONTRAST_RULE = "ContrastForSuspectedInfectionMalignancyOrInflammation"
# A new member of a closed category goes into its owl:oneOf list as well.
NEW_SIGN = "lbp:AuthorAddedSign lbp:NewUrinaryDysfunction"


def raise_esr_threshold(root: Path) -> None:
    """20 -> 25 mm/h in the abnormal first-line test criterion (a clinical review trigger
    tests the same ESR and keeps its own threshold)."""
    edit(
        root,
        "ontology/criteria.ttl",
        "xsd:minInclusive 20.0",
        "xsd:minInclusive 25.0",
        within="lbp:MalignancyRiskFactorsWithAbnormalFirstLineTest",
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return copy_kb(tmp_path_factory.mktemp("base"))


def test_the_axiom_rendering_is_manchester_like_with_named_operands_first(onto):
    axioms = {a.text for a in split(onto, Renderer(onto, prefixes_of(onto), str(LBP)))}
    assert (
        "SuspectedSpinalInfection EquivalentTo: PatientCase and (hasFinding some InfectionRiskFactor)"
        in axioms
    )
    assert "DifferentIndividuals: Emergent, Prompt, Routine" in axioms
    assert "SuspectedSpinalInfection SubClassOf: hasUrgency value Prompt" in axioms
    assert ABNORMAL_TEST.format("20.0") in axioms


def test_blank_node_structures_compare_by_content_not_by_id(onto):
    # The same ontology re-serialised gets new blank-node ids and another layout; the
    # operands of an intersection listed in another order are the same class expression.
    reparsed = Graph().parse(data=onto.serialize(format="nt"), format="nt")
    assert set(onto.subjects()) != set(reparsed.subjects())  # other blank-node ids
    assert diff(onto, reparsed).lines() == []


def test_a_threshold_change_is_one_definition_removed_and_one_added(onto, tmp_path):
    raise_esr_threshold(copy_kb(tmp_path, ("ontology", "shapes", "queries")))
    changed = KnowledgeBase.load(tmp_path).ontology
    assert diff(onto, changed).lines() == [
        "- " + ABNORMAL_TEST.format("20.0"),
        "+ " + ABNORMAL_TEST.format("25.0"),
    ]


def test_reordered_operands_are_not_a_change(tmp_path, base, cli):
    work = copy_kb(tmp_path)
    edit(
        work,
        "ontology/criteria.ttl",
        f"owl:intersectionOf ( lbp:PatientCase\n        {INFECTION} )",
        f"owl:intersectionOf (\n        {INFECTION} lbp:PatientCase )",
    )
    done = cli("impact", "--kb", work, "--base", base)
    assert (done.returncode, done.stdout) == (0, "0 of 56 cases change decision; 0 axioms added, 0 removed\n")


def test_changed_cases_are_listed_with_their_causes(tmp_path, base, cli):
    work = copy_kb(tmp_path / "kb")
    raise_esr_threshold(work)
    edit(
        work,
        "ontology/criteria.ttl",
        "owl:hasValue lbp:Emergent",
        "owl:hasValue lbp:Prompt",
        within="lbp:SevereOrProgressiveNeurologicDeficit",
    )
    edit(work, "ontology/findings.ttl", "owl:oneOf ( lbp:NewUrinaryDysfunction", f"owl:oneOf ( {NEW_SIGN}")
    with (work / "ontology" / "findings.ttl").open("a", encoding="utf-8") as f:
        f.write(
            "\nlbp:AuthorAddedSign a owl:NamedIndividual , lbp:CaudaEquinaSign ;\n"
            '    rdfs:label "author-added sign"@en ; skos:altLabel "new sign"@en ;\n'
            '    skos:definition "A sign added in a test."@en ; prov:wasDerivedFrom stmt:sum-08 .\n'
        )
    cases = tmp_path / "extra.ttl"
    cases.write_text(EXTRA_CASE, encoding="utf-8")
    done = cli("impact", "--kb", work, "--base", base, "--cases", cases, "--format", "json")
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    changed = {c["case"].rsplit("/", 1)[1]: c for c in data["changed"]}
    # The decision first, then the details: at routine urgency, every more urgent criterion
    # still undetermined could raise it, and MRI safety no longer matters.
    decision, (undetermined, questions) = (
        changed["11-night-pain-esr-20"]["changes"][:4],
        changed["11-night-pain-esr-20"]["changes"][4:],
    )
    assert decision == [
        "procedure: MRILumbarSpineWithoutAndWithContrast -> LumbarSpineRadiography",
        "urgency: Prompt -> Routine",
        "criteria: -MalignancyRiskFactorsWithAbnormalFirstLineTest",
        "alternatives: +ESRTest",
    ]
    assert undetermined == "undetermined: +MalignancyRiskFactorsWithAbnormalFirstLineTest"
    assert questions.startswith("questions: -MRIIncompatibleDevice -SignificantMetalArtefact +Abnormal")
    assert changed["11-night-pain-esr-20"]["causes"] == [
        "MalignancyRiskFactorsWithAbnormalFirstLineTest no longer met: its definition changed"
    ]
    assert changed["extra-esr-22"]["changes"][0].startswith("procedure: MRILumbarSpineWithoutAndWithContrast")
    # Case 03 recorded the seven listed cauda equina signs absent, not the new one: at prompt
    # urgency, the emergent cauda equina criterion could raise it, so the case asks about it.
    assert changed["03-progressive-leg-weakness"]["changes"] == [
        "urgency: Emergent -> Prompt",
        "undetermined: +SuspectedCaudaEquinaSyndrome",
        "questions: +AuthorAddedSign",
    ]
    assert changed["03-progressive-leg-weakness"]["causes"] == [
        "SevereOrProgressiveNeurologicDeficit: its outcome axioms changed"
    ]
    # No criterion met or left: the outcome moved because the new sign reopened one.
    assert changed["39-screened-negative"]["changes"] == [
        "outcome: OutcomeNoImaging -> OutcomeMoreInformationNeeded",
        "undetermined: +SuspectedCaudaEquinaSyndrome",
        "questions: +AuthorAddedSign",
    ]
    assert changed["39-screened-negative"]["causes"] == [
        "SuspectedCaudaEquinaSyndrome now undetermined: changed axioms on CaudaEquinaSign"
    ]
    # Invalid under the base (an unknown finding), assessed under the working version.
    assert changed["extra-new-sign"]["changes"][0].startswith("status: invalid (")
    assert "+ AuthorAddedSign Types: CaudaEquinaSign" in [f"+ {a}" for a in data["axioms"]["added"]]
    # Cases whose decision holds but whose questions (or undetermined criteria) moved are
    # counted, not listed: most now ask about the new sign.
    unchanged = data["cases"] - len(data["changed"])
    assert set(data["detailOnly"]) == {"questions", "undetermined"}
    assert unchanged // 2 < data["detailOnly"]["questions"] <= unchanged


def test_a_finding_moved_into_a_category_is_named_as_the_cause(tmp_path, base):
    # The infection criterion's own axioms do not change; its category gains a member.
    work = copy_kb(tmp_path / "kb")
    edit(
        work,
        "ontology/findings.ttl",
        "lbp:ElevatedInflammatoryMarkers a owl:NamedIndividual , lbp:TestResultFinding ;",
        "lbp:ElevatedInflammatoryMarkers a owl:NamedIndividual , lbp:InfectionRiskFactor ;",
    )
    edit(
        work,
        "ontology/findings.ttl",
        "owl:oneOf ( lbp:Fever",
        "owl:oneOf ( lbp:ElevatedInflammatoryMarkers lbp:Fever",
    )
    found = impact(KnowledgeBase.load(base), KnowledgeBase.load(work), [work / "examples" / "cases"])
    changed = {c.case.rsplit("/", 1)[1]: c for c in found.changed}
    assert changed["38-elevated-esr-without-risk-factors"].causes == (
        f"{CONTRAST_RULE} now met: changed axioms on InfectionRiskFactor",
        "SuspectedSpinalInfection now met: changed axioms on InfectionRiskFactor",
    )
    assert found.exit_code == 1


def test_criteria_ruled_out_by_a_new_axiom_are_named_as_the_cause(tmp_path):
    # Without the disjointness of present and absent findings, a finding recorded absent
    # rules nothing out; with it, the screened-negative case is known to meet no criterion.
    without = copy_kb(tmp_path / "kb")
    edit(
        without,
        "ontology/core.ttl",
        "rdfs:range lbp:ClinicalFinding ;\n    owl:propertyDisjointWith lbp:hasAbsentFinding .",
        "rdfs:range lbp:ClinicalFinding .",
    )
    found = impact(KnowledgeBase.load(without), KnowledgeBase.load(ROOT), [ROOT / "examples" / "cases"])
    assert [a.text for a in found.axioms.added] == ["hasFinding DisjointWith: hasAbsentFinding"]
    changed = {c.case.rsplit("/", 1)[1]: c for c in found.changed}
    screened = changed["39-screened-negative"]
    assert screened.changes[0] == "outcome: OutcomeMoreInformationNeeded -> OutcomeNoImaging"
    assert "SuspectedCaudaEquinaSyndrome now ruled out: changed axioms on hasFinding" in screened.causes


def test_a_git_revision_is_exported_without_touching_the_working_tree(tmp_path, cli):
    repo = copy_kb(tmp_path / "repo")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
        ).stdout

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "base")
    raise_esr_threshold(repo)
    status = git("status", "--porcelain")
    done = cli("impact", "--kb", repo, "--base", "HEAD", "--format", "md")
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("1 of 56 cases change decision; 1 axiom added, 1 removed")
    assert "| 11-night-pain-esr-20 | procedure: MRILumbarSpineWithoutAndWithContrast -> Lumbar" in done.stdout
    assert "```diff\n- MalignancyRiskFactorsWithAbnormalFirstLineTest EquivalentTo:" in done.stdout
    assert git("status", "--porcelain") == status
    bad = cli("impact", "--kb", repo, "--base", "no-such-revision")
    assert bad.returncode == 2 and "--base no-such-revision" in bad.stderr
