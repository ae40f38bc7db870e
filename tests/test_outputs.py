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

import pytest
from pyshacl import validate
from rdflib import RDF, XSD, BNode, Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import PROV, SH
from rich.console import Console

from reasoner import DISCLAIMER, render
from reasoner import cases as case_input
from reasoner.assess import AssessmentRun
from reasoner.knowledge import LBP
from reasoner.sources import normalise

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
    "redFlags",
    "sources",
    "warnings",
    "disclaimer",
}
INVALID_KEYS = {"case", "source", "engine", "status", "errors", "disclaimer"}
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
    from reasoner.cli import _kb_info

    return json.loads(render.to_json(run, _kb_info(kb)))


@pytest.fixture(scope="module")
def prov(run) -> Graph:
    return render.to_prov(run)


@pytest.fixture(scope="module")
def result_shapes() -> Graph:
    return Graph().parse(RESULT_SHAPES)


def _canonical(graph: Graph) -> Graph:
    """The graph with every xsd:decimal literal in one lexical form.

    rdflib's Turtle writer rewrites the lexical form of a decimal (``"7"^^xsd:decimal`` is
    written ``7.0``): the same value, but not the same RDF term.
    """
    out = Graph()
    for s, p, o in graph:
        if isinstance(o, Literal) and o.datatype == XSD.decimal and isinstance(o.value, Decimal):
            o = Literal(format(o.value.normalize(), "f"), datatype=XSD.decimal)
        out.add((s, p, o))
    return out


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
    assert isomorphic(_canonical(reparsed), _canonical(prov))
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
    for outcome in (LBP.OutcomeNoImaging, LBP.OutcomeScreeningIncomplete):
        for rec in prov.subjects(LBP.outcome, outcome):
            assert prov.value(rec, LBP.recommendedProcedure) is None
    # ...and the valid graph (checked above) holds such recommendations.
    assert set(prov.objects(None, LBP.outcome)) >= {
        LBP.OutcomeImagingIndicated,
        LBP.OutcomeNoImaging,
        LBP.OutcomeScreeningIncomplete,
    }


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
        assert set(r["redFlags"]) == {"present", "unassessed", "screeningComplete"}
        for c in r["redFlags"]["present"] + r["redFlags"]["unassessed"]:
            assert set(c) == {"iri", "label"}
        assert r["redFlags"]["screeningComplete"] is (not r["redFlags"]["unassessed"])
        for s in r["sources"]:
            _statement(doc["statements"][s])
        assert all(isinstance(w, str) for w in r["warnings"])


def test_json_invalid_result_and_input_error_keys(mixed_run, kb):
    from reasoner.cli import _kb_info

    doc = json.loads(render.to_json(mixed_run, _kb_info(kb)))
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
