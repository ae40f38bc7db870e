"""Output formats of an assessment run: PROV-O (Turtle and JSON-LD) conforms to
shapes/result-shapes.ttl, the JSON keys are the documented schema (docs/output-schema.md),
every quoted source statement is verbatim in its document, the CSV has the documented
columns, and every format carries the decision-support disclaimer.

The valid example cases (tests/data/cases/valid/ and examples/cases/ when it holds case
files) are assessed once with the default fast engine.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pyoxigraph as ox
import pytest
from pyshacl import validate
from rdflib import RDF, RDFS, XSD, BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import PROV, SH, SKOS
from rich.console import Console

from reasoner import DISCLAIMER
from reasoner.knowledge import LBP
from reasoner.pipeline import cases as case_input
from reasoner.pipeline import render
from reasoner.pipeline.assess import AssessmentRun
from reasoner.pipeline.sources import normalise

# rdflib's JSON-LD parser still uses ConjunctiveGraph internally.
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = ROOT / "tests" / "data" / "cases"
EXAMPLES_DIR = ROOT / "examples" / "cases"
RESULT_SHAPES = ROOT / "shapes" / "result-shapes.ttl"
LBPSH = Namespace("https://w3id.org/lbp-imaging/shapes/")
STMT = str(LBP) + "statement/"
NOT_DIAGNOSIS = "not diagnosis"
CES = "https://example.org/case/ces-1"


def _case_paths() -> list[Path]:
    paths = [CASES_DIR / "valid"]
    if EXAMPLES_DIR.is_dir() and case_input.find_files([EXAMPLES_DIR])[0]:
        paths.append(EXAMPLES_DIR)
    return paths


TOP_KEYS = {
    "generator",
    "engine",
    "knowledgeBase",
    "started",
    "ended",
    "disclaimer",
    "summary",
    "results",
    "criteria",
    "statements",
    "inputErrors",
    "inputWarnings",
}
ASSESSED_KEYS = {
    "case",
    "source",
    "engine",
    "status",
    "facts",
    "outcome",
    "recommendation",
    "criteria",
    "criterionStates",
    "questions",
    "redFlags",
    "sources",
    "warnings",
    "disclaimer",
}
INVALID_KEYS = {"case", "source", "engine", "status", "errors", "warnings", "disclaimer"}
SUMMARY_KEYS = {"cases", "assessed", "invalid", "inputErrors"}
RECOMMENDATION_KEYS = {
    "procedure",
    "alsoRecommended",
    "indicatedBeforeModifiers",
    "urgency",
    "appropriateness",
    "alternatives",
}
CASE_CRITERION_KEYS = {"iri", "label", "kind", "selected", "facts"}
CRITERION_KEYS = {"iri", "label", "kind", "indicates", "urgency", "appropriateness", "acrVariants", "sources"}
CONCEPT_KEYS = {"iri", "label", "codes"}
CODE_KEYS = {"system", "code", "match"}
STATEMENT_KEYS = {"iri", "quote", "kind", "document"}
ERROR_KEYS = {"field", "path", "value", "message", "constraint"}
QUESTION_KEYS = {"asks", "about", "property", "unit", "suggests", "criteria"}
QUESTION_CRITERION_KEYS = {"iri", "label", "urgency", "effect", "effectIri", "needs"}
NEEDS_FORMS = {"present", "equals", "range", "inClass", "isA", "any"}
STATES = {"met", "notMet", "undetermined"}
OUTCOMES = {
    LBP.OutcomeImagingIndicated,
    LBP.OutcomeMoreInformationNeeded,
    LBP.OutcomeNoImaging,
    LBP.OutcomeRedFlagWithoutCriterion,
    LBP.OutcomeAbnormalResultWithoutCriterion,
    LBP.OutcomePathwayComplete,
    LBP.OutcomeOutOfScope,
}
CASE_40 = "https://example.org/case/40-screening-incomplete"
CASE_39 = "https://example.org/case/39-screened-negative"
CASE_46 = "https://example.org/case/46-infection-cauda-equina-not-asked"
ORIGINAL_CSV_COLUMNS = [
    "case",
    "source",
    "engine",
    "status",
    "outcome",
    "procedure",
    "procedure_codes",
    "urgency",
    "appropriateness",
    "selected_criteria",
    "all_criteria",
    "alternatives",
    "present_red_flags",
    "unassessed_red_flags",
    "source_statements",
    "warnings",
    "errors",
    "disclaimer",
]


# -- fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(assessor) -> AssessmentRun:
    return assessor.assess(_case_paths())


@pytest.fixture(scope="module")
def mixed_run(assessor) -> AssessmentRun:
    """A valid case, an invalid case and an unreadable path, for the invalid-result keys."""
    return assessor.assess(
        [
            CASES_DIR / "valid" / "cauda-equina.ttl",
            CASES_DIR / "invalid" / "age-too-high.ttl",
            CASES_DIR / "no-such-file.ttl",
        ]
    )


@pytest.fixture(scope="module")
def doc(run, kb) -> dict:

    return json.loads(render.to_json(run, kb.identity))


@pytest.fixture(scope="module")
def prov(run) -> Graph:
    return render.to_prov(run)


@pytest.fixture(scope="module")
def result_shapes() -> Graph:
    return Graph().parse(RESULT_SHAPES)


def _canonical(graph: Graph) -> set[ox.Quad]:
    """The graph with every xsd:decimal literal in one lexical form, its blank nodes
    labelled canonically (RDFC-1.0: two graphs are isomorphic when their canonical forms
    are equal; rdflib's ``isomorphic`` took 15 s on each of these).

    rdflib's Turtle writer rewrites the lexical form of a decimal (``"7"^^xsd:decimal`` is
    written ``7.0``): the same value, but not the same RDF term.
    """
    out = Graph()
    for s, p, o in graph:
        if isinstance(o, Literal) and o.datatype == XSD.decimal and isinstance(o.value, Decimal):
            o = Literal(format(o.value.normalize(), "f"), datatype=XSD.decimal)
        out.add((s, p, o))
    canonical = ox.Dataset(
        ox.parse(out.serialize(format="nt", encoding="utf-8"), format=ox.RdfFormat.N_TRIPLES)
    )
    canonical.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return set(canonical)


def shacl(graph: Graph, ontology: Graph, shapes: Graph) -> tuple[bool, list[tuple[URIRef, str]]]:
    """pyshacl over the PROV graph merged with the ontology: (conforms, [(shape, message)])."""
    conforms, report, _ = validate(
        graph + ontology, shacl_graph=shapes, inference="none", allow_warnings=True, advanced=False
    )
    results = [
        (report.value(r, SH.sourceShape), str(report.value(r, SH.resultMessage)))
        for r in report.subjects(RDF.type, SH.ValidationResult)
    ]
    return conforms, results


def test_the_example_cases_are_all_assessed(run):
    assert run.results
    assert run.exit_code == 0, [(r.case, r.errors) for r in run.invalid] + run.input_errors
    assert {r.status for r in run.results} == {"assessed"}


# -- PROV-O -----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["turtle", "json-ld"])
def test_prov_serialisation_round_trips_and_conforms_to_the_result_shapes(
    fmt, prov, run, onto, result_shapes
):
    text = prov.serialize(format=fmt)
    reparsed = Graph().parse(data=text, format=fmt)
    assert len(reparsed) == len(prov)
    assert _canonical(reparsed) == _canonical(prov)
    assert set(reparsed.objects(None, LBP.forCase)) == {URIRef(r.case) for r in run.results}
    assert len(set(reparsed.subjects(RDF.type, LBP.Recommendation))) == len(run.results)
    conforms, results = shacl(reparsed, onto, result_shapes)
    assert conforms, results


def test_result_shapes_are_shacl_core_with_a_message_on_every_shape(result_shapes):
    shapes = set(result_shapes.subjects(RDF.type, SH.NodeShape)) | set(
        result_shapes.subjects(RDF.type, SH.PropertyShape)
    )
    shapes |= set(result_shapes.subjects(SH.path, None))
    assert len(shapes) > 20
    for shape in shapes:
        assert result_shapes.value(shape, SH.message) is not None, shape
        if isinstance(shape, URIRef):
            assert str(shape).startswith(str(LBPSH)), shape
    sparql = {SH.sparql, SH.SPARQLConstraint, SH.rule, SH.select, SH.ask}
    assert not any(p in sparql or o in sparql for _, p, o in result_shapes)


def _recommendation(g: Graph, outcome: URIRef) -> URIRef:
    return sorted(g.subjects(LBP.outcome, outcome))[0]


def _imaging(g: Graph) -> URIRef:
    return _recommendation(g, LBP.OutcomeImagingIndicated)


def _drop(prop: URIRef, outcome: URIRef = LBP.OutcomeImagingIndicated) -> Callable[[Graph], None]:
    def mutate(g: Graph) -> None:
        g.remove((_recommendation(g, outcome), prop, None))

    return mutate


def _unselect_all(g: Graph) -> None:
    rec = _recommendation(g, LBP.OutcomeImagingIndicated)
    for match in g.objects(rec, LBP.hasCriterionMatch):
        g.set((match, LBP.selected, Literal(False)))


def _wrong_outcome(g: Graph) -> None:
    g.set((_imaging(g), LBP.outcome, LBP.SuspectedCaudaEquinaSyndrome))


def _derived_from_non_statement(g: Graph) -> None:
    g.add((_recommendation(g, LBP.OutcomeNoImaging), PROV.wasDerivedFrom, LBP.Fever))


def _activity_not_typed(g: Graph) -> None:
    act = g.value(_imaging(g), PROV.wasGeneratedBy)
    g.remove((act, RDF.type, LBP.Assessment))


def _activity_without_agent(g: Graph) -> None:
    act = g.value(_imaging(g), PROV.wasGeneratedBy)
    g.remove((act, PROV.wasAssociatedWith, None))


def _activity_used_other_case(g: Graph) -> None:
    act = g.value(_imaging(g), PROV.wasGeneratedBy)
    g.set((act, PROV.used, URIRef("https://example.org/case/someone-else")))


def _match_without_selected(g: Graph) -> None:
    match = next(g.subjects(RDF.type, LBP.CriterionMatch))
    g.remove((match, LBP.selected, None))


def _match_without_source(g: Graph) -> None:
    match = next(g.subjects(RDF.type, LBP.CriterionMatch))
    g.remove((match, PROV.wasDerivedFrom, None))


def _fact_without_value(g: Graph) -> None:
    fact = next(g.subjects(RDF.type, LBP.CaseFact))
    g.remove((fact, LBP.factValue, None))


def _fact_with_literal_property(g: Graph) -> None:
    fact = next(g.subjects(RDF.type, LBP.CaseFact))
    g.set((fact, LBP.factProperty, Literal("age")))


def _two_disclaimers(g: Graph) -> None:
    g.add((_imaging(g), LBP.disclaimer, Literal("Another disclaimer, not diagnosis.", lang="en")))


def _remove_generated_by_of_one(g: Graph) -> None:
    rec = sorted(g.subjects(RDF.type, LBP.Recommendation))[0]
    g.remove((rec, PROV.wasGeneratedBy, None))


def _deprecated_outcome(g: Graph) -> None:
    g.set((_imaging(g), LBP.outcome, LBP.OutcomeScreeningIncomplete))


def _a_question(g: Graph) -> BNode:
    """A question of a more-information-needed recommendation."""
    return sorted(g.objects(_recommendation(g, LBP.OutcomeMoreInformationNeeded), LBP.hasQuestion))[0]


def _no_imaging_with_a_question(g: Graph) -> None:
    g.add((_recommendation(g, LBP.OutcomeNoImaging), LBP.hasQuestion, _a_question(g)))


def _question_without(prop: URIRef) -> Callable[[Graph], None]:
    def mutate(g: Graph) -> None:
        g.remove((_a_question(g), prop, None))

    return mutate


def _question_about_two_things(g: Graph) -> None:
    question = _a_question(g)  # which one is chance (blank nodes): add something it does not ask
    other = LBP.Fever if (question, LBP.asksAbout, LBP.Fever) not in g else LBP.Osteoporosis
    g.add((question, LBP.asksAbout, other))


def _question_about_a_literal(g: Graph) -> None:
    g.set((_a_question(g), LBP.asksAbout, Literal("fever")))


def _question_with_an_outcome_as_effect(g: Graph) -> None:
    g.set((_a_question(g), LBP.effect, LBP.OutcomeImagingIndicated))


def _question_untyped(g: Graph) -> None:
    g.remove((_a_question(g), RDF.type, LBP.Question))


def _undetermined_literal(g: Graph) -> None:
    g.add((_imaging(g), LBP.undeterminedCriterion, Literal("suspected cauda equina syndrome")))


BREAKAGES = {
    "recommendation without prov:wasGeneratedBy": (
        _remove_generated_by_of_one,
        LBPSH["RecommendationShape-generatedBy"],
        "must be generated by exactly one assessment",
    ),
    "imaging recommendation without lbp:recommendedProcedure": (
        _drop(LBP.recommendedProcedure),
        LBPSH.ImagingRecommendationProcedureShape,
        "must name exactly one recommended procedure",
    ),
    "imaging recommendation without lbp:urgency": (
        _drop(LBP.urgency),
        LBPSH.ImagingRecommendationUrgencyShape,
        "must have exactly one urgency",
    ),
    "imaging recommendation without a selected criterion": (
        _unselect_all,
        LBPSH.ImagingRecommendationCriterionShape,
        "whose lbp:selected is true",
    ),
    "recommendation without lbp:forCase": (
        _drop(LBP.forCase),
        LBPSH["RecommendationShape-forCase"],
        "must name exactly one patient case",
    ),
    "outcome outside the four outcomes": (
        _wrong_outcome,
        LBPSH["RecommendationShape-outcome"],
        "exactly one lbp:outcome, one of",
    ),
    "recommendation without prov:wasDerivedFrom": (
        _drop(PROV.wasDerivedFrom, LBP.OutcomeNoImaging),
        LBPSH["RecommendationShape-derivedFrom"],
        "at least one source statement",
    ),
    "recommendation derived from a non-statement IRI": (
        _derived_from_non_statement,
        LBPSH["RecommendationShape-derivedFrom"],
        "an IRI under https://w3id.org/lbp-imaging/statement/",
    ),
    "recommendation without a disclaimer": (
        _drop(LBP.disclaimer, LBP.OutcomeNoImaging),
        LBPSH["RecommendationShape-disclaimer"],
        "decision support, not diagnosis",
    ),
    "recommendation with two disclaimers": (
        _two_disclaimers,
        LBPSH["RecommendationShape-disclaimer"],
        "exactly one lbp:disclaimer",
    ),
    "assessment not typed lbp:Assessment": (
        _activity_not_typed,
        LBPSH["RecommendationShape-generatedBy"],
        "typed lbp:Assessment and prov:Activity",
    ),
    "assessment without a software agent": (
        _activity_without_agent,
        LBPSH["AssessmentShape-agent"],
        "a prov:SoftwareAgent",
    ),
    "assessment that used another case": (
        _activity_used_other_case,
        LBPSH["RecommendationShape-usedCase"],
        "exactly the case the recommendation is for",
    ),
    "criterion match without lbp:selected": (
        _match_without_selected,
        LBPSH["CriterionMatchShape-selected"],
        "whether it was selected",
    ),
    "criterion match without a source statement": (
        _match_without_source,
        LBPSH["CriterionMatchShape-derivedFrom"],
        "at least one source statement",
    ),
    "case fact without a value": (
        _fact_without_value,
        LBPSH["CaseFactShape-value"],
        "exactly one value (lbp:factValue)",
    ),
    "case fact whose property is a literal": (
        _fact_with_literal_property,
        LBPSH["CaseFactShape-property"],
        "exactly one property (lbp:factProperty), by its IRI",
    ),
    "the deprecated outcome screening incomplete": (
        _deprecated_outcome,
        LBPSH["RecommendationShape-outcome"],
        "lbp:OutcomeMoreInformationNeeded",
    ),
    "more information needed without a question": (
        _drop(LBP.hasQuestion, LBP.OutcomeMoreInformationNeeded),
        LBPSH.MoreInformationNeededQuestionShape,
        "must have at least one question (lbp:hasQuestion)",
    ),
    "more information needed without an undetermined criterion": (
        _drop(LBP.undeterminedCriterion, LBP.OutcomeMoreInformationNeeded),
        LBPSH.MoreInformationNeededUndeterminedShape,
        "must name at least one criterion the facts recorded leave undetermined",
    ),
    "no imaging with a question": (
        _no_imaging_with_a_question,
        LBPSH.NoImagingWithoutQuestionShape,
        "must have no question",
    ),
    "question that asks about nothing": (
        _question_without(LBP.asksAbout),
        LBPSH["QuestionShape-asksAbout"],
        "must ask about exactly one thing",
    ),
    "question that asks about two things": (
        _question_about_two_things,
        LBPSH["QuestionShape-asksAbout"],
        "must ask about exactly one thing",
    ),
    "question that asks about a literal": (
        _question_about_a_literal,
        LBPSH["QuestionShape-asksAbout"],
        "by its IRI",
    ),
    "question that could meet no criterion": (
        _question_without(LBP.couldMeet),
        LBPSH["QuestionShape-couldMeet"],
        "at least one criterion or rule that an answer could meet",
    ),
    "question without an effect": (
        _question_without(LBP.effect),
        LBPSH["QuestionShape-effect"],
        "what an answer could do to the decision",
    ),
    "question whose effect is not a question effect": (
        _question_with_an_outcome_as_effect,
        LBPSH["QuestionShape-effect"],
        "lbp:EffectIndicateImaging, lbp:EffectRaiseUrgency and lbp:EffectChangeProcedure",
    ),
    "question not typed lbp:Question": (
        _question_untyped,
        LBPSH["RecommendationShape-question"],
        "must be a lbp:Question",
    ),
    "undetermined criterion given as a literal": (
        _undetermined_literal,
        LBPSH["RecommendationShape-undetermined"],
        "must name a criterion or rule by its IRI",
    ),
}


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_a_broken_prov_graph_does_not_conform(name, prov, onto, result_shapes):
    mutate, shape, message = BREAKAGES[name]
    broken = Graph()
    broken += prov
    before = set(broken)
    mutate(broken)
    assert set(broken) != before  # the mutation did something
    conforms, results = shacl(broken, onto, result_shapes)
    assert not conforms
    assert any(s == shape and message in m for s, m in results), results


def test_non_imaging_recommendations_need_no_procedure(prov):
    for outcome in OUTCOMES - {LBP.OutcomeImagingIndicated}:
        for rec in prov.subjects(LBP.outcome, outcome):
            assert prov.value(rec, LBP.recommendedProcedure) is None
    # ...and the valid graph (checked above) holds every outcome the engine gives, and
    # never the deprecated one.
    assert set(prov.objects(None, LBP.outcome)) == OUTCOMES


def _effect_iris(onto: Graph) -> dict[str, URIRef]:
    """Question effects by notation, from the ontology."""
    return {str(onto.value(e, SKOS.notation)): e for e in onto.subjects(RDF.type, LBP.QuestionEffect)}


def test_prov_states_and_questions_are_those_of_the_json(prov, run, onto):
    effects = _effect_iris(onto)
    assert len(effects) == 3
    asked = 0
    for r in run.results:
        (rec,) = prov.subjects(LBP.forCase, URIRef(r.case))
        for state, prop in (("undetermined", LBP.undeterminedCriterion), ("notMet", LBP.notMetCriterion)):
            want = {URIRef(c) for c, s in r.criterion_states.items() if s == state}
            assert set(prov.objects(rec, prop)) == want, (r.case, state)
        questions = list(prov.objects(rec, LBP.hasQuestion))
        got = sorted(
            (
                prov.value(q, LBP.asksAbout),
                prov.value(q, LBP.factProperty),
                frozenset(prov.objects(q, LBP.couldMeet)),
                frozenset(prov.objects(q, LBP.effect)),
            )
            for q in questions
        )
        want = sorted(
            (
                URIRef(q["about"]["iri"]),
                URIRef(q["property"]["iri"]) if q["property"] else None,
                frozenset(URIRef(c["iri"]) for c in q["criteria"]),
                frozenset(effects[c["effect"]] for c in q["criteria"]),
            )
            for q in r.questions
        )
        assert all(str(effects[c["effect"]]) == c["effectIri"] for q in r.questions for c in q["criteria"])
        assert got == want, r.case
        assert all((q, RDF.type, LBP.Question) in prov for q in questions)
        asked += len(questions)
    assert asked  # the examples hold questions


# -- JSON -------------------------------------------------------------------------------
def test_json_top_level_keys(doc, run):
    assert set(doc) == TOP_KEYS
    assert doc["generator"].startswith("lbp-imaging ")
    assert doc["engine"] == "fast"
    assert set(doc["knowledgeBase"]) == {"ontology", "versionIRI"}
    assert set(doc["summary"]) == SUMMARY_KEYS
    assert doc["summary"] == {
        "cases": len(run.results),
        "assessed": len(run.results),
        "invalid": 0,
        "inputErrors": 0,
    }
    assert doc["inputErrors"] == []
    assert doc["inputWarnings"] == []
    assert len(doc["results"]) == len(run.results)


def _concept(c: dict | None, nullable: bool = True) -> None:
    if c is None:
        assert nullable
        return
    assert set(c) == CONCEPT_KEYS, c
    assert c["iri"].startswith("http") and c["label"]
    for code in c["codes"]:
        assert set(code) == CODE_KEYS
        assert code["match"] in {"exactMatch", "closeMatch", "narrowMatch", "broadMatch"}


def _statement(s: dict) -> None:
    assert set(s) == STATEMENT_KEYS, s
    assert s["iri"].startswith(STMT)
    assert set(s["document"]) == {"iri", "title"}


def _fact(f: dict) -> None:
    assert set(f) == {"property", "value"}
    assert set(f["property"]) == {"iri", "label"}
    value = f["value"]
    if "iri" in value:
        assert set(value) == {"iri", "label"}, value
    else:
        assert set(value) == {"value", "datatype"}, value
        assert value["datatype"].startswith("http://www.w3.org/2001/XMLSchema#")
        assert isinstance(value["value"], bool | int | float | str)


def _question(q: dict, states: dict[str, str]) -> None:
    assert set(q) == QUESTION_KEYS, q
    assert q["asks"] in {"presence", "value"}
    _concept(q["about"], nullable=False)
    assert q["property"] is None or set(q["property"]) == {"iri", "label"}
    assert q["unit"] is None or (q["asks"] == "value" and isinstance(q["unit"], str))
    assert set(q["suggests"]) == {"iri", "label"}
    assert q["criteria"]
    for c in q["criteria"]:
        assert set(c) == QUESTION_CRITERION_KEYS, c
        assert states[c["iri"]] == "undetermined"  # a question only for what is open
        _concept(c["urgency"])
        assert c["effect"] in {"indicate-imaging", "raise-urgency", "change-procedure"}
        assert c["effectIri"].startswith(str(LBP) + "Effect")
        (form,) = c["needs"]
        assert form in NEEDS_FORMS


def test_json_assessed_result_keys(doc):
    for r in doc["results"]:
        assert set(r) == ASSESSED_KEYS, r["case"]
        assert r["status"] == "assessed"
        assert r["disclaimer"] == DISCLAIMER
        for f in r["facts"]:
            _fact(f)
        assert set(r["outcome"]) == {"iri", "label", "sources"}
        for s in r["outcome"]["sources"]:
            _statement(doc["statements"][s])
        assert set(r["recommendation"]) == RECOMMENDATION_KEYS
        rec = r["recommendation"]
        for key in ("procedure", "urgency", "appropriateness"):
            _concept(rec[key])
        for key in ("alsoRecommended", "indicatedBeforeModifiers", "alternatives"):
            for c in rec[key]:
                _concept(c, nullable=False)
        for c in r["criteria"]:
            assert set(c) == CASE_CRITERION_KEYS
            assert c["kind"] in {"criterion", "rule", "closed-world"}
            assert isinstance(c["selected"], bool)
            for f in c["facts"]:
                _fact(f)
            listed = doc["criteria"][c["iri"]]
            assert set(listed) == CRITERION_KEYS
            for key in ("indicates", "urgency", "appropriateness"):
                _concept(listed[key])
            assert all(isinstance(v, str) for v in listed["acrVariants"])
            for s in listed["sources"]:
                _statement(doc["statements"][s])
        assert set(r["redFlags"]) == {"present", "unassessed"}
        for c in r["redFlags"]["present"] + r["redFlags"]["unassessed"]:
            assert set(c) == {"iri", "label"}
        assert set(r["criterionStates"].values()) <= STATES
        for q in r["questions"]:
            _question(q, r["criterionStates"])
        for s in r["sources"]:
            _statement(doc["statements"][s])
        assert all(isinstance(w, str) for w in r["warnings"])


def test_json_invalid_result_and_input_error_keys(mixed_run, kb):

    doc = json.loads(render.to_json(mixed_run, kb.identity))
    assert set(doc) == TOP_KEYS
    assert doc["summary"] == {"cases": 2, "assessed": 1, "invalid": 1, "inputErrors": 1}
    by_status = {r["status"]: r for r in doc["results"]}
    assert set(by_status) == {"assessed", "invalid"}
    assert set(by_status["assessed"]) == ASSESSED_KEYS
    invalid = by_status["invalid"]
    assert set(invalid) == INVALID_KEYS
    assert invalid["case"] == "https://example.org/case/bad-age-130"
    assert invalid["disclaimer"] == DISCLAIMER
    assert invalid["errors"]
    for e in invalid["errors"]:
        assert set(e) == ERROR_KEYS
    assert invalid["errors"][0]["field"] == "age in years"
    assert invalid["errors"][0]["path"] == str(LBP.ageInYears)
    assert invalid["errors"][0]["constraint"] == "MaxInclusiveConstraintComponent"
    assert [set(e) for e in doc["inputErrors"]] == [{"path", "message"}]
    assert doc["inputErrors"][0]["path"].endswith("no-such-file.ttl")


def _quoted_statements(doc: dict) -> list[dict]:
    cited = set()
    for r in doc["results"]:
        cited.update(r["sources"], r["outcome"]["sources"])
        for c in r["criteria"]:
            cited.update(doc["criteria"][c["iri"]]["sources"])
    assert cited == set(doc["statements"])
    return [doc["statements"][iri] for iri in sorted(cited)]


def test_every_quoted_source_statement_is_verbatim_in_its_local_document(doc, kb, onto):
    statements = _quoted_statements(doc)
    assert len({s["iri"] for s in statements}) >= 20
    texts: dict[str, str] = {}
    for s in statements:
        assert s["quote"] and s["quote"].strip(), s["iri"]
        document = s["document"]["iri"]
        if document not in texts:
            local = onto.value(URIRef(document), LBP.localFile)
            assert local is not None, document
            path = kb.ontology_dir / str(local)
            assert path.parent == kb.ontology_dir / "sources"
            texts[document] = normalise(path.read_text(encoding="utf-8"))
        assert normalise(s["quote"]) in texts[document], (s["iri"], s["quote"])
    assert len(texts) == 2


def test_json_cauda_equina_result(doc):
    ces = next(r for r in doc["results"] if r["case"] == CES)
    assert ces["outcome"]["iri"] == str(LBP.OutcomeImagingIndicated)
    assert ces["recommendation"]["procedure"]["label"] == "MRI lumbar spine without IV contrast"
    assert ces["recommendation"]["urgency"]["label"] == "emergent"
    selected = [c for c in ces["criteria"] if c["selected"]]
    assert [c["label"] for c in selected] == ["suspected cauda equina syndrome"]
    assert {f["value"]["iri"] for f in selected[0]["facts"]} == {
        str(LBP.SaddleAnaesthesia),
        str(LBP.NewUrinaryDysfunction),
    }
    assert "Saddle anesthesia or perianal numbness" in [doc["statements"][s]["quote"] for s in ces["sources"]]


# -- CSV --------------------------------------------------------------------------------
def test_csv_has_the_documented_columns_and_one_row_per_case(run, doc):
    text = render.to_csv(run)
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == list(render.CSV_COLUMNS)
    rows = list(reader)
    assert len(rows) == len(run.results)
    assert [row["case"] for row in rows] == [r["case"] for r in doc["results"]]
    by_case = {r["case"]: r for r in doc["results"]}
    for row in rows:
        r = by_case[row["case"]]
        assert row["status"] == "assessed"
        assert row["outcome"] == r["outcome"]["label"]
        assert row["procedure"] == ((r["recommendation"]["procedure"] or {}).get("label") or "")
        assert row["source_statements"].split() == r["sources"]
    ces = next(row for row in rows if row["case"] == CES)
    assert ces["procedure_codes"].split() == [
        "http://loinc.org|30679-5",
        "http://www.ama-assn.org/go/cpt|72148",
        "http://www.radlex.org|RPID541",
    ]
    assert ces["urgency"] == "emergent"


def test_csv_reports_invalid_cases_and_unreadable_files(mixed_run):
    rows = list(csv.DictReader(io.StringIO(render.to_csv(mixed_run))))
    assert sorted(row["status"] for row in rows) == ["assessed", "error", "invalid"]
    invalid = next(row for row in rows if row["status"] == "invalid")
    assert invalid["errors"].startswith("age in years: Age must be a whole number")
    error = next(row for row in rows if row["status"] == "error")
    assert error["source"].endswith("no-such-file.ttl") and error["errors"]


# -- the disclaimer, in every format ---------------------------------------------------
def test_disclaimer_in_the_table(run):
    out = io.StringIO()
    render.print_table(run, Console(file=out, width=300, color_system=None))
    assert NOT_DIAGNOSIS in " ".join(out.getvalue().split())


def test_disclaimer_in_json(doc):
    assert NOT_DIAGNOSIS in doc["disclaimer"]
    assert all(NOT_DIAGNOSIS in r["disclaimer"] for r in doc["results"])


def test_disclaimer_in_csv(run):
    text = render.to_csv(run)
    assert DISCLAIMER in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert all(DISCLAIMER in row.values() for row in rows)


@pytest.mark.parametrize("fmt", ["turtle", "json-ld"])
def test_disclaimer_in_prov(fmt, prov):
    assert NOT_DIAGNOSIS in prov.serialize(format=fmt)
    recs = set(prov.subjects(RDF.type, LBP.Recommendation))
    assert recs
    for rec in recs:
        assert NOT_DIAGNOSIS in str(prov.value(rec, LBP.disclaimer))


def test_prov_fact_values_keep_the_datatype_of_the_case(prov):
    data = Graph()
    for path in sorted((CASES_DIR / "valid").glob("*.ttl")):
        data.parse(path)
    checked = 0
    for rec in prov.subjects(RDF.type, LBP.Recommendation):
        case = prov.value(rec, LBP.forCase)
        for match in prov.objects(rec, LBP.hasCriterionMatch):
            for fact in prov.objects(match, LBP.matchedFact):
                value = prov.value(fact, LBP.factValue)
                recorded = list(data.objects(case, prov.value(fact, LBP.factProperty)))
                if not isinstance(value, Literal) or not recorded:
                    continue
                checked += 1
                assert any(v.datatype == value.datatype and v.eq(value) for v in recorded), (
                    case,
                    value,
                    recorded,
                )
    assert checked >= 3


def test_prov_has_no_blank_node_recommendations_or_assessments(prov):
    for cls in (LBP.Recommendation, LBP.Assessment):
        assert not any(isinstance(s, BNode) for s in prov.subjects(RDF.type, cls))


# -- undetermined criteria and questions, in every text rendering ------------------------
def _result(run: AssessmentRun, case: str):
    return next(r for r in run.results if r.case == case)


def _label(onto: Graph, iri: URIRef) -> str:
    return str(onto.value(iri, RDFS.label))


def test_csv_keeps_the_earlier_columns_in_place_and_appends_the_new_ones():
    assert list(render.CSV_COLUMNS) == [*ORIGINAL_CSV_COLUMNS, "undetermined_criteria", "questions"]


def test_csv_lists_the_undetermined_criteria_that_matter_and_the_questions(run, doc):
    rows = {row["case"]: row for row in csv.DictReader(io.StringIO(render.to_csv(run)))}
    for r in doc["results"]:
        row = rows[r["case"]]
        assert row["questions"] == " | ".join(q["about"]["label"] for q in r["questions"])
        labels = {c["label"]: c["iri"] for q in r["questions"] for c in q["criteria"]}
        listed = row["undetermined_criteria"].split(" | ") if row["undetermined_criteria"] else []
        assert set(listed) == set(labels), r["case"]  # every criterion a question could meet, once
        order = list(r["criterionStates"])
        assert [order.index(labels[x]) for x in listed] == sorted(order.index(labels[x]) for x in listed)
        assert all(r["criterionStates"][labels[x]] == "undetermined" for x in listed)
    # The more-information-needed example asks about the facts its expectation names; the
    # contrast rules it leaves undetermined cannot change the decision and are not listed.
    expected = json.loads((EXAMPLES_DIR / "40-screening-incomplete.expected.json").read_text())
    row = rows[CASE_40]
    assert len(row["questions"].split(" | ")) == len(expected["questions"])
    assert "suspected spinal infection" in row["undetermined_criteria"].split(" | ")
    assert "contrast" not in row["undetermined_criteria"].lower()
    assert rows[CASE_39]["questions"] == rows[CASE_39]["undetermined_criteria"] == ""
    assert rows[CASE_46]["undetermined_criteria"].split(" | ")[0] == "suspected cauda equina syndrome"


def test_the_table_says_no_imaging_only_for_that_outcome_and_counts_the_questions(run, onto):
    no_imaging = _label(onto, LBP.OutcomeNoImaging)
    more = _label(onto, LBP.OutcomeMoreInformationNeeded)
    rows = list(render._table_rows(run.results))
    assert len(rows) == len(run.results)
    for r, (_, outcome, recommendation, _, _, questions) in zip(run.results, rows, strict=True):
        assert outcome == r.outcome["label"]
        if outcome != no_imaging:
            assert "no imaging" not in recommendation.lower(), (r.case, recommendation)
        assert questions == (str(len(r.questions)) if r.questions else "")
        if r.recommendation["procedure"]:
            assert recommendation == r.recommendation["procedure"]["label"]
        elif outcome == more:
            n = len(r.questions)
            assert n and recommendation == f"{more} ({n} question{'s' if n > 1 else ''})"
        else:
            assert recommendation == outcome
    assert {row[1] for row in rows} >= {no_imaging, more}
    out = io.StringIO()
    render.print_table(run, Console(file=out, width=400, color_system=None))
    text = " ".join(out.getvalue().split())
    assert "questions" in text and "red flags not assessed" not in text
    expected = json.loads((EXAMPLES_DIR / "40-screening-incomplete.expected.json").read_text())
    assert f"{more} ({len(expected['questions'])} questions)" in text


def _text(node) -> str:
    return "".join(span.text for span in node.spans)


def _branch(root, title: str):
    return next((child for child in root.children if child.spans[0].text == title), None)


def _all_text(node) -> str:
    return " ".join([_text(node), *(_all_text(child) for child in node.children)])


def test_explain_asks_the_questions_grouped_by_what_they_suggest(run, assessor):
    from reasoner.pipeline.tree import explanation_nodes

    r = _result(run, CASE_40)
    root = explanation_nodes(r, run.statements, assessor.vocab.effect_label)
    assert _text(_branch(root, "recommendation")) == f"recommendation: {r.outcome['label']}"
    ask = _branch(root, "to settle this, ask")
    assert ask is not None
    groups = [_text(group) for group in ask.children]
    assert groups == list(dict.fromkeys(q["suggests"]["label"] for q in r.questions))
    assert len(groups) > 1
    shown = [question for group in ask.children for question in group.children]
    assert len(shown) == len(r.questions)
    for node, q in zip(shown, r.questions, strict=True):
        line = _all_text(node)
        assert line.startswith(f"{q['about']['label']}: ") or _text(node) == q["about"]["label"]
        for c in q["criteria"]:
            assert c["label"] in line and assessor.vocab.effect_label(c["effect"]) in line
    lines = [_all_text(node) for node in shown]
    assert any(line.startswith("intravenous drug use: present") for line in lines)
    assert "could indicate imaging" in " ".join(lines)
    # Only the undetermined criteria a question could meet are named; the rest are counted.
    undetermined = [_text(node) for node in _branch(root, "criteria undetermined").children]
    named = {c["label"] for q in r.questions for c in q["criteria"]}
    assert {line.split(" (")[0] for line in undetermined[:-1]} == named
    assert "suspected spinal infection (prompt)" in undetermined
    assert undetermined[-1].endswith("cannot change the decision, not asked about")
    # The red flags not recorded are information, not a warning.
    flags = _branch(root, "red flags")
    assert [s.style for child in flags.children[1:] for s in child.spans] == ["dim"]
    assert not any("not assessed" in w for w in r.warnings)


def test_explain_shows_a_numeric_question_as_its_bound_and_unit(run):
    from reasoner.pipeline.tree import explanation_nodes

    checked = 0
    for r in run.results:
        ranged = [q for q in r.questions if all(c["needs"].get("range") for c in q["criteria"])]
        if not ranged:
            continue
        ask = _branch(explanation_nodes(r, run.statements), "to settle this, ask")
        lines = [_all_text(node) for group in ask.children for node in group.children]
        for q in ranged:
            for c in q["criteria"]:
                bound = c["needs"]["range"][0]
                shown = f"{bound['op']} {bound['value']:g}" + (f" {q['unit']}" if q["unit"] else "")
                assert any(line.startswith(q["about"]["label"]) and shown in line for line in lines), shown
                checked += 1
    assert checked  # the examples ask for some number


def test_explain_of_a_determined_case_asks_nothing(run, assessor):
    from reasoner.pipeline.tree import explanation_nodes

    r = _result(run, CASE_39)
    root = explanation_nodes(r, run.statements, assessor.vocab.effect_label)
    assert _branch(root, "to settle this, ask") is None
    assert _text(_branch(root, "recommendation")) == "recommendation: no imaging indicated"
    imaging = _result(run, CASE_46)
    tree = _all_text(explanation_nodes(imaging, run.statements, assessor.vocab.effect_label))
    assert "suspected cauda equina syndrome (emergent) could raise the urgency" in tree
    assert f"recommendation: imaging indicated: {imaging.recommendation['procedure']['label']}" in tree


def test_explain_without_a_vocabulary_shows_the_effect_notation(run):
    from reasoner.pipeline.tree import explanation_nodes

    tree = _all_text(explanation_nodes(_result(run, CASE_40), run.statements))
    assert "indicate-imaging" in tree and "to settle this, ask" in tree


def test_explain_of_an_invalid_case_shows_its_errors_only(mixed_run):
    from reasoner.pipeline.tree import explanation_nodes

    r = next(r for r in mixed_run.results if r.status == "invalid")
    root = explanation_nodes(r, mixed_run.statements)
    assert [_text(child) for child in root.children] == ["invalid case"]


@pytest.mark.parametrize(
    ("needs", "unit", "text"),
    [
        ({"present": True}, None, "present"),
        ({"equals": True}, None, "yes"),
        ({"equals": False}, None, "no"),
        ({"equals": 3}, "wk", "= 3 wk"),
        ({"equals": {"iri": "urn:x", "label": "a value"}}, None, "a value"),
        ({"range": [{"op": ">=", "value": 6.0}]}, "wk", ">= 6 wk"),
        ({"range": [{"op": ">", "value": 0.5}, {"op": "<", "value": 2.0}]}, None, "> 0.5 and < 2"),
        ({"range": []}, "wk", "any value"),
        ({"inClass": {"iri": "urn:x", "label": "kind"}}, None, "any kind"),
        ({"isA": {"iri": "urn:x", "label": "kind"}}, None, "is a kind"),
        ({"any": True}, None, "any value"),
    ],
)
def test_each_form_of_what_a_question_needs_reads_as_words(needs, unit, text):
    from reasoner.pipeline.tree import needs_text

    assert needs_text(needs, unit) == text
