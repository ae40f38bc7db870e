"""``lbp-imaging check``: passes on the knowledge base as shipped, and fails (or warns)
with the right rule and message on deliberately broken copies of it, one break each."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from kb_copy import ROOT, copy_kb, edit

from reasoner.authoring.check import run_check
from reasoner.authoring.report import Level, Report


def append(root: Path, name: str, text: str) -> None:
    path = root / name
    path.write_text(path.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")


def found(report: Report, rule: str, subject: str, message: str) -> bool:
    return any(r.rule == rule and r.subject == subject and message in r.message for r in report.results)


PROBE_CRITERION = """lbp:ProbeCriterion a owl:Class ;
    rdfs:label "probe criterion"@en ; skos:definition "A criterion for a test."@en ;
    owl:equivalentClass [ a owl:Class ; owl:intersectionOf ( lbp:PatientCase
        [ a owl:Restriction ; owl:onProperty lbp:hasFinding ; owl:hasValue lbp:SexualDysfunction ] ) ] ;
    prov:wasDerivedFrom stmt:sum-08 .
"""
COPY_OF_INFECTION = """lbp:CopyOfInfection a owl:Class ;
    rdfs:label "copy of the infection criterion"@en ; skos:definition "The same members, by accident."@en ;
    owl:equivalentClass [ a owl:Class ; owl:intersectionOf (
        [ a owl:Restriction ; owl:onProperty lbp:hasFinding ; owl:someValuesFrom lbp:InfectionRiskFactor ]
        lbp:PatientCase ) ] ;
    prov:wasDerivedFrom stmt:sum-18 .
"""
UNCITED_STATEMENT = """stmt:art-70 a owl:NamedIndividual , lbp:CaveatStatement ;
    rdfs:label "Clinic article: Sometimes, but not always immediately."@en ;
    prov:wasQuotedFrom src:clinic-article ;
    oa:hasSource src:clinic-article ;
    oa:hasSelector [ a oa:TextQuoteSelector ; oa:exact "Sometimes, but not always immediately." ] .
"""
PROBE_SIGN = """lbp:ProbeSign a owl:NamedIndividual , {category} ;
    rdfs:label "probe sign"@en ; skos:altLabel "test sign"@en ;
    skos:definition "A sign added in a test."@en ; prov:wasDerivedFrom stmt:sum-08 .
"""
PROBE_SUBCATEGORY = """lbp:ProbeSubcategory a owl:Class ; rdfs:subClassOf lbp:CaudaEquinaSign ;
    rdfs:label "probe subcategory"@en ; skos:definition "A subcategory added in a test."@en .
"""
OPEN_CATEGORY_CRITERION = PROBE_CRITERION.replace(
    "owl:hasValue lbp:SexualDysfunction", "owl:someValuesFrom lbp:RadicularFinding"
)
INVALID_CASE = """@prefix lbp: <https://w3id.org/lbp-imaging/> .
<https://example.org/case/99-no-age> a lbp:PatientCase ; lbp:hasFinding lbp:Fever .
"""
UNEXPECTED_CASE = """@prefix lbp: <https://w3id.org/lbp-imaging/> .
<https://example.org/case/98-unrecorded> a lbp:PatientCase ; lbp:ageInYears 40 ; lbp:hasFinding lbp:Fever .
"""

# (break, rule, subject, message fragment, level)
BREAKS: dict[str, tuple[Callable[[Path], None], str, str, str, Level]] = {
    "ontology-parse": (
        lambda r: append(r, "ontology/criteria.ttl", "lbp:Broken a ."),
        "parse_error",
        "ontology/criteria.ttl",
        "at line",
        Level.ERROR,
    ),
    "query-parse": (
        lambda r: (r / "queries" / "broken.rq").write_text("SELECT ?x WHERE { ?x ?y }\n", encoding="utf-8"),
        "parse_error",
        "queries/broken.rq",
        "SPARQL syntax error",
        Level.ERROR,
    ),
    "module-not-in-catalog": (
        lambda r: (r / "ontology" / "extra.ttl").write_text("", encoding="utf-8"),
        "catalog_unlisted",
        "ontology/extra.ttl",
        "not in catalog-v001.xml",
        Level.WARN,
    ),
    "governance": (
        lambda r: edit(
            r, "ontology/findings.ttl", '    rdfs:label "fever"@en ; skos:altLabel', "    skos:altLabel"
        ),
        "governance_shape",
        "lbp:Fever",
        "needs exactly one English rdfs:label",
        Level.ERROR,
    ),
    "quote": (
        lambda r: edit(
            r,
            "ontology/sources.ttl",
            '"fever, general weakness or suspicion of infection" ]',
            '"fever or weakness" ]',
        ),
        "source_quote",
        "stmt:art-30",
        "quote not found verbatim in its document: 'fever or weakness'",
        Level.ERROR,
    ),
    "duplicate-label": (
        lambda r: edit(
            r, "ontology/findings.ttl", 'rdfs:label "general weakness"@en', 'rdfs:label "fever"@en'
        ),
        "duplicate_label",
        "lbp:Fever, lbp:GeneralWeakness",
        'share the label "fever"@en',
        Level.ERROR,
    ),
    "label-whitespace": (
        lambda r: edit(r, "ontology/findings.ttl", 'rdfs:label "fever"@en', 'rdfs:label "fever "@en'),
        "label_whitespace",
        "lbp:Fever",
        "label 'fever ' has leading, trailing, doubled or non-space whitespace",
        Level.ERROR,
    ),
    "licence": (
        lambda r: edit(
            r,
            "ontology/findings.ttl",
            "    dcterms:license <https://creativecommons.org/licenses/by/4.0/> .",
            '    rdfs:comment "no licence"@en .',
        ),
        "missing_ontology_license",
        "<https://w3id.org/lbp-imaging/ontology/findings>",
        "the ontology has no dcterms:license",
        Level.ERROR,
    ),
    "typo": (
        lambda r: edit(
            r,
            "ontology/criteria.ttl",
            "owl:someValuesFrom lbp:CaudaEquinaSign ]",
            "owl:someValuesFrom lbp:CaudaEquinaSigns ]",
        ),
        "undeclared_reference",
        "lbp:SuspectedCaudaEquinaSyndrome",
        "refers to lbp:CaudaEquinaSigns (in owl:someValuesFrom), which is not declared",
        Level.ERROR,
    ),
    "deprecated": (
        lambda r: append(r, "ontology/findings.ttl", "lbp:SevereNeurologicDeficitSign owl:deprecated true ."),
        "deprecated_reference",
        "lbp:SevereOrProgressiveNeurologicDeficit",
        "refers to the deprecated term lbp:SevereNeurologicDeficitSign (in owl:someValuesFrom)",
        Level.ERROR,
    ),
    "closure-missing-member": (
        lambda r: append(r, "ontology/findings.ttl", PROBE_SIGN.format(category="lbp:CaudaEquinaSign")),
        "closure_missing_member",
        "lbp:ProbeSign",
        "is typed lbp:CaudaEquinaSign, whose owl:oneOf closure omits it: add it to the list. HermiT would "
        "infer it is the same individual as one of the listed ones",
        Level.ERROR,
    ),
    "closure-missing-member-of-subclass": (
        lambda r: append(
            r,
            "ontology/findings.ttl",
            PROBE_SUBCATEGORY + PROBE_SIGN.format(category="lbp:ProbeSubcategory"),
        ),
        "closure_missing_member",
        "lbp:ProbeSign",
        "is typed lbp:ProbeSubcategory, a subclass of lbp:CaudaEquinaSign, whose owl:oneOf closure omits it",
        Level.ERROR,
    ),
    "closure-member-untyped": (
        lambda r: edit(
            r,
            "ontology/findings.ttl",
            "owl:oneOf ( lbp:NewUrinaryDysfunction",
            "owl:oneOf ( lbp:MinorTrauma lbp:NewUrinaryDysfunction",
        ),
        "closure_member_untyped",
        "lbp:MinorTrauma",
        "is in the owl:oneOf closure of lbp:CaudaEquinaSign but not typed with it (or a subclass)",
        Level.ERROR,
    ),
    "open-category": (
        lambda r: append(r, "ontology/criteria.ttl", OPEN_CATEGORY_CRITERION),
        "open_category",
        "lbp:ProbeCriterion",
        "lbp:hasFinding some lbp:RadicularFinding: lbp:RadicularFinding has no owl:oneOf closure, so "
        "this condition is never ruled out: the criterion stays undetermined until some member is "
        "recorded present",
        Level.WARN,
    ),
    "two-definitions": (
        lambda r: append(
            r,
            "ontology/criteria.ttl",
            "lbp:SuspectedSpinalInfection owl:equivalentClass [ a owl:Class ; owl:intersectionOf "
            "( lbp:PatientCase [ a owl:Restriction ; owl:onProperty lbp:hasFinding ; "
            "owl:hasValue lbp:Fever ] ) ] .",
        ),
        "multiple_equivalent_classes",
        "lbp:SuspectedSpinalInfection",
        "has 2 owl:equivalentClass definitions",
        Level.ERROR,
    ),
    "unsourced-criterion": (
        lambda r: edit(
            r,
            "ontology/criteria.ttl",
            "    prov:wasDerivedFrom stmt:sum-27 , stmt:sum-24 , stmt:sum-23 , stmt:art-50 , stmt:art-19 .",
            '    rdfs:comment "sources removed"@en .',
        ),
        "criterion_without_source",
        "lbp:DiagnosticUncertaintyInSurgicalCandidate",
        "the criterion cites no source statement",
        Level.ERROR,
    ),
    "uncited-statement": (
        lambda r: append(r, "ontology/sources.ttl", UNCITED_STATEMENT),
        "uncited_statement",
        "stmt:art-70",
        "no term cites this source statement",
        Level.WARN,
    ),
    "identical-criteria": (
        lambda r: append(r, "ontology/criteria.ttl", COPY_OF_INFECTION),
        "equivalent_criteria",
        "lbp:CopyOfInfection, lbp:SuspectedSpinalInfection",
        "these criteria can never differ (their compiled definitions are identical)",
        Level.WARN,
    ),
    "not-exercised": (
        lambda r: append(r, "ontology/criteria.ttl", PROBE_CRITERION),
        "criterion_not_exercised",
        "lbp:ProbeCriterion",
        "no example case meets this criterion",
        Level.WARN,
    ),
    "threshold": (
        lambda r: edit(
            r,
            "ontology/criteria.ttl",
            "xsd:minInclusive 20.0",
            "xsd:minInclusive 25.0",
            within="lbp:MalignancyRiskFactorsWithAbnormalFirstLineTest",
        ),
        "example_outcome_changed",
        "11-night-pain-esr-20",
        "MRILumbarSpineWithoutAndWithContrast -> LumbarSpineRadiography; urgency: Prompt -> Routine",
        Level.ERROR,
    ),
    "invalid-example": (
        lambda r: (r / "examples" / "cases" / "99-no-age.ttl").write_text(INVALID_CASE, encoding="utf-8"),
        "example_invalid",
        "99-no-age",
        "age in years",
        Level.ERROR,
    ),
    "unrecorded-example": (
        lambda r: (r / "examples" / "cases" / "98-unrecorded.ttl").write_text(
            UNEXPECTED_CASE, encoding="utf-8"
        ),
        "example_without_expectation",
        "98-unrecorded",
        "no *.expected.json records it",
        Level.WARN,
    ),
    "version": (
        lambda r: edit(
            r,
            "ontology/findings.ttl",
            '/0.1.0/findings> ;\n    owl:versionInfo "0.1.0"',
            '/0.1.0/findings> ;\n    owl:versionInfo "0.2.0"',
        ),
        "ontology_version",
        "https://w3id.org/lbp-imaging/ontology/findings",
        "owl:versionInfo is 0.2.0, not 0.1.0",
        Level.ERROR,
    ),
}


def test_check_passes_on_the_knowledge_base_as_shipped():
    report = run_check(ROOT, hermit=False)
    assert report.passed, report.to_text()
    assert {r.rule for r in report.results} <= {"shared_label"}
    (closures,) = [s for s in report.steps if s.name == "closures"]
    assert closures.summary.endswith(" members, 0 open categories named by criteria")
    assert [s.name for s in report.steps] == [
        "files",
        "hermit",
        "shapes",
        "sources",
        "hygiene",
        "closures",
        "guideline",
        "examples",
        "versions",
    ]


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_a_broken_copy_is_reported_with_the_rule_and_message(tmp_path, name):
    mutate, rule, subject, message, level = BREAKS[name]
    root = copy_kb(tmp_path)
    mutate(root)
    report = run_check(root, hermit=False)
    matching = [r for r in report.results if r.rule == rule]
    assert found(report, rule, subject, message), matching or report.results
    assert all(r.level is level for r in matching)
    if level is Level.ERROR:
        assert report.exit_code == 1


def test_a_file_that_does_not_parse_stops_the_steps_that_need_it(tmp_path):
    root = copy_kb(tmp_path)
    BREAKS["ontology-parse"][0](root)
    report = run_check(root, hermit=False)
    assert [s.summary for s in report.steps[1:]] == ["skipped: the ontology does not load"] * 8
    assert report.exit_code == 1


def test_json_and_markdown_reports_carry_the_same_results(tmp_path):
    root = copy_kb(tmp_path)
    BREAKS["typo"][0](root)
    report = run_check(root, hermit=False)
    data = json.loads(report.to_json())
    assert data["passed"] is False and data["counts"]["ERROR"] == report.count(Level.ERROR)
    assert {r["rule"] for r in data["results"]} == {r.rule for r in report.results}
    assert "| ERROR | `undeclared_reference` | lbp:SuspectedCaudaEquinaSyndrome |" in report.to_markdown()


def test_cli_exit_codes(tmp_path, cli):
    root = copy_kb(tmp_path)
    BREAKS["typo"][0](root)
    broken = cli("check", "--no-hermit", "--kb", root)
    assert broken.returncode == 1
    assert "ERROR undeclared_reference  lbp:SuspectedCaudaEquinaSyndrome: refers to" in broken.stdout
    assert broken.stdout.rstrip().splitlines()[-1].startswith("FAIL: ")
    assert cli("check", "--format", "yaml").returncode == 2
    assert cli("check", "--kb", tmp_path / "nowhere").returncode == 2


@pytest.mark.hermit
def test_check_with_hermit_passes_on_the_knowledge_base_as_shipped(cli):
    done = cli("check", "--format", "json")
    data = json.loads(done.stdout)
    assert done.returncode == 0 and data["passed"], done.stdout
    (hermit,) = [s for s in data["steps"] if s["name"] == "hermit"]
    assert hermit["summary"] == "consistent, 0 unsatisfiable classes, 0 groups of equivalent criteria"


@pytest.mark.hermit
def test_an_unsatisfiable_class_is_explained_by_the_axioms_that_cause_it(tmp_path):
    root = copy_kb(tmp_path)
    append(
        root,
        "ontology/criteria.ttl",
        "lbp:SuspectedCaudaEquinaSyndrome owl:disjointWith lbp:RedFlagIndication .",
    )
    report = run_check(root)
    (result,) = [r for r in report.results if r.rule == "unsatisfiable_class"]
    assert result.subject == "lbp:SuspectedCaudaEquinaSyndrome" and result.level is Level.ERROR
    assert result.message.startswith("can have no members, because of 2 axioms")
    assert result.details == (
        "SuspectedCaudaEquinaSyndrome DisjointWith: RedFlagIndication",
        "SuspectedCaudaEquinaSyndrome SubClassOf: RedFlagIndication",
    )


@pytest.mark.hermit
def test_hermit_finds_criteria_equivalent_that_differ_in_form(tmp_path):
    # hasFinding has the domain PatientCase, so naming PatientCase as well changes nothing:
    # only a reasoner sees that the two definitions are the same.
    root = copy_kb(tmp_path)
    append(
        root,
        "ontology/criteria.ttl",
        COPY_OF_INFECTION.replace("\n        lbp:PatientCase ) ]", " ) ]"),
    )
    report = run_check(root)
    assert found(
        report,
        "equivalent_criteria",
        "lbp:CopyOfInfection, lbp:SuspectedSpinalInfection",
        "HermiT infers each to be a subclass of the other",
    )
    assert not found(
        report, "equivalent_criteria", "lbp:CopyOfInfection, lbp:SuspectedSpinalInfection", "compiled"
    )


@pytest.mark.hermit
def test_an_inconsistent_ontology_is_an_error(tmp_path):
    root = copy_kb(tmp_path)
    append(root, "ontology/core.ttl", "lbp:Prompt owl:sameAs lbp:Emergent .")
    report = run_check(root)
    assert any(r.rule == "inconsistent_ontology" for r in report.results)
    assert report.exit_code == 1
