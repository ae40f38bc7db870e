"""SHACL shapes: the governance shapes hold on the ontology and catch broken copies of it;
the case shapes accept the valid example cases and reject each invalid one with the
message its ``# expect:`` line names, and take every type of the xsd:decimal family
wherever the range is xsd:decimal (both validators are compared in test_differential).

Uses rdflib and pyshacl directly: every ``ontology/*.ttl`` is parsed into one graph
(owl:imports are not followed; every module is parsed anyway), once per module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyshacl import validate
from rdflib import OWL, RDF, RDFS, XSD, BNode, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection
from rdflib.namespace import DCTERMS, PROV, SH, SKOS
from rdflib.term import Node

from reasoner.pipeline.definitions import DECIMAL_FAMILY

ROOT = Path(__file__).resolve().parent.parent
ONTOLOGY_DIR = ROOT / "ontology"
SHAPES_DIR = ROOT / "shapes"
CASES_DIR = Path(__file__).resolve().parent / "data" / "cases"

LBP = Namespace("https://w3id.org/lbp-imaging/")
LBPSH = Namespace("https://w3id.org/lbp-imaging/shapes/")
STMT = Namespace("https://w3id.org/lbp-imaging/statement/")
SRC = Namespace("https://w3id.org/lbp-imaging/source/")
OA = Namespace("http://www.w3.org/ns/oa#")


@dataclass(frozen=True)
class Result:
    focus: Node
    shape: Node
    messages: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    conforms: bool
    results: tuple[Result, ...]
    text: str

    @property
    def messages(self) -> list[str]:
        return [m for r in self.results for m in r.messages]


def run_shacl(data: Graph, shapes: Graph) -> Report:
    conforms, graph, text = validate(
        data, shacl_graph=shapes, inference="none", allow_warnings=True, advanced=False
    )
    results = []
    for report in graph.subjects(RDF.type, SH.ValidationReport):
        # Top-level results only; nested sh:detail results explain them.
        for res in graph.objects(report, SH.result):
            results.append(
                Result(
                    focus=graph.value(res, SH.focusNode),
                    shape=graph.value(res, SH.sourceShape),
                    messages=tuple(str(m) for m in graph.objects(res, SH.resultMessage)),
                )
            )
    return Report(bool(conforms), tuple(results), text)


def load_ontology() -> Graph:
    graph = Graph()
    modules = sorted(ONTOLOGY_DIR.glob("*.ttl"))
    assert modules, f"no ontology modules in {ONTOLOGY_DIR}"
    for path in modules:
        graph.parse(path)
    return graph


def copy_of(graph: Graph) -> Graph:
    copy = Graph()
    for triple in graph:
        copy.add(triple)
    return copy


@pytest.fixture(scope="module")
def ontology() -> Graph:
    return load_ontology()


@pytest.fixture(scope="module")
def governance_shapes() -> Graph:
    return Graph().parse(SHAPES_DIR / "governance-shapes.ttl")


@pytest.fixture(scope="module")
def case_shapes() -> Graph:
    return Graph().parse(SHAPES_DIR / "case-shapes.ttl")


@pytest.fixture(scope="module")
def governance_report(ontology: Graph, governance_shapes: Graph) -> Report:
    return run_shacl(ontology, governance_shapes)


#################################################################
# The shapes files themselves
#################################################################
SHAPES_FILES = ["case-shapes.ttl", "governance-shapes.ttl", "result-shapes.ttl"]
TARGETS = (SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf)


@pytest.mark.parametrize("name", SHAPES_FILES)
def test_shapes_file_is_valid_shacl_core(name):
    shapes = Graph().parse(SHAPES_DIR / name)
    # meta_shacl checks the shapes graph against the SHACL-SHACL shapes (raises if invalid).
    conforms, _, text = validate(Graph(), shacl_graph=shapes, meta_shacl=True, inference="none")
    assert conforms, text
    # SHACL Core only: no SPARQL constraints, SPARQL targets or other SHACL-AF features.
    for pred in (SH.sparql, SH.select, SH.ask, SH.target, SH.rule):
        assert not list(shapes.subject_objects(pred)), f"{name} uses {pred} (not SHACL Core)"


@pytest.mark.parametrize("name", SHAPES_FILES)
def test_every_shape_has_an_english_message_and_violation_severity(name):
    shapes = Graph().parse(SHAPES_DIR / name)
    targeted = {s for p in TARGETS for s in shapes.subjects(p, None)}
    declared = {s for kind in (SH.NodeShape, SH.PropertyShape) for s in shapes.subjects(RDF.type, kind)}
    property_shapes = set(shapes.objects(None, SH.property))
    assert targeted, f"{name} has no targeted shape"
    for shape in targeted | declared | property_shapes:
        messages = [m for m in shapes.objects(shape, SH.message) if isinstance(m, Literal)]
        assert any(m.language == "en" for m in messages), f"{shape} in {name} has no English sh:message"
    for shape in targeted | {p for s in targeted for p in shapes.objects(s, SH.property)}:
        assert shapes.value(shape, SH.severity) == SH.Violation, f"{shape} is not sh:Violation"
    for shape in declared:
        assert isinstance(shape, URIRef) and str(shape).startswith(str(LBPSH)), shape


#################################################################
# Governance shapes on the ontology
#################################################################
def test_governance_shapes_conform_on_the_ontology(governance_report):
    assert governance_report.conforms, governance_report.text


def _remove_restriction(cls: URIRef, prop: URIRef) -> Callable[[Graph], None]:
    def mutate(graph: Graph) -> None:
        removed = 0
        for sup in list(graph.objects(cls, RDFS.subClassOf)):
            if isinstance(sup, BNode) and graph.value(sup, OWL.onProperty) == prop:
                graph.remove((cls, RDFS.subClassOf, sup))
                graph.remove((sup, None, None))
                removed += 1
        assert removed == 1, f"{cls} has {removed} restrictions on {prop}"

    return mutate


def _remove(subject: URIRef, predicate: URIRef) -> Callable[[Graph], None]:
    def mutate(graph: Graph) -> None:
        assert (subject, predicate, None) in graph, f"{subject} has no {predicate} to remove"
        graph.remove((subject, predicate, None))

    return mutate


def _selector(graph: Graph, statement: URIRef, kind: URIRef) -> Node:
    selectors = [s for s in graph.objects(statement, OA.hasSelector) if (s, RDF.type, kind) in graph]
    assert len(selectors) == 1, f"{statement} has {len(selectors)} {kind}"
    return selectors[0]


def _remove_exact(statement: URIRef) -> Callable[[Graph], None]:
    def mutate(graph: Graph) -> None:
        selector = _selector(graph, statement, OA.TextQuoteSelector)
        assert (selector, OA.exact, None) in graph
        graph.remove((selector, OA.exact, None))

    return mutate


def _start_after_end(statement: URIRef) -> Callable[[Graph], None]:
    def mutate(graph: Graph) -> None:
        selector = _selector(graph, statement, OA.TextPositionSelector)
        end = graph.value(selector, OA.end).toPython()
        graph.set((selector, OA.start, Literal(end + 5)))

    return mutate


def _add(triple: tuple[Node, Node, Node]) -> Callable[[Graph], None]:
    def mutate(graph: Graph) -> None:
        graph.add(triple)

    return mutate


BROKEN_VARIANTS = {
    # id: (mutation, focus node of the expected result, substring of its message)
    "criterion-without-source": (
        _remove(LBP.SuspectedCaudaEquinaSyndrome, PROV.wasDerivedFrom),
        LBP.SuspectedCaudaEquinaSyndrome,
        "This imaging criterion cites no source statement",
    ),
    "criterion-without-urgency": (
        _remove_restriction(LBP.SuspectedSpinalInfection, LBP.hasUrgency),
        LBP.SuspectedSpinalInfection,
        "This imaging criterion must state exactly one urgency",
    ),
    "criterion-without-procedure": (
        _remove_restriction(LBP.PersistentRadiculopathyInCandidate, LBP.indicatesProcedure),
        LBP.PersistentRadiculopathyInCandidate,
        "This imaging criterion must state exactly one indicated procedure",
    ),
    "finding-without-label": (
        _remove(LBP.Fever, RDFS.label),
        LBP.Fever,
        "This clinical finding needs exactly one English rdfs:label",
    ),
    "finding-without-synonym": (
        _remove(LBP.MinorTrauma, SKOS.altLabel),
        LBP.MinorTrauma,
        "This clinical finding needs at least one English synonym (skos:altLabel)",
    ),
    "statement-without-exact": (
        _remove_exact(STMT["art-01"]),
        STMT["art-01"],
        "text quote selector needs exactly one non-empty oa:exact string",
    ),
    "statement-start-after-end": (
        _start_after_end(STMT["sum-37"]),
        STMT["sum-37"],
        "needs exactly one oa:start and one oa:end, non-negative integers with start < end",
    ),
    "citation-of-missing-statement": (
        _add((LBP.Osteoporosis, PROV.wasDerivedFrom, STMT["art-999"])),
        STMT["art-999"],
        "is cited with prov:wasDerivedFrom but is not a source statement",
    ),
    "rule-without-effect": (
        _remove_restriction(LBP.MRIContraindicatedCase, LBP.mriContraindicated),
        LBP.MRIContraindicatedCase,
        "This procedure modifier rule must state its effect",
    ),
    "class-without-definition": (
        _remove(LBP.CaudaEquinaSign, SKOS.definition),
        LBP.CaudaEquinaSign,
        "needs at least one English skos:definition",
    ),
    "procedure-without-modality": (
        _remove(LBP.ESRTest, LBP.modality),
        LBP.ESRTest,
        "needs exactly one lbp:modality",
    ),
    "document-without-checksum": (
        _remove(SRC["clinic-article"], LBP.sha256),
        SRC["clinic-article"],
        "needs exactly one lbp:sha256",
    ),
    "document-without-title": (
        _remove(SRC["clinician-summary"], DCTERMS.title),
        SRC["clinician-summary"],
        "This source document needs a dcterms:title",
    ),
}


@pytest.mark.parametrize("variant", sorted(BROKEN_VARIANTS))
def test_governance_shapes_catch_a_broken_ontology(ontology, governance_shapes, variant):
    mutate, focus, expected = BROKEN_VARIANTS[variant]
    broken = copy_of(ontology)
    mutate(broken)
    report = run_shacl(broken, governance_shapes)
    assert not report.conforms
    # The breakage is reported on the node that was broken, and only there.
    assert {r.focus for r in report.results} == {focus}, report.text
    assert any(expected in m for m in report.messages), (
        f"{variant}: no message contains {expected!r}\n{report.text}"
    )


#################################################################
# Case shapes on example cases
#################################################################
VALID_CASES = sorted((CASES_DIR / "valid").glob("*.ttl"))
INVALID_CASES = sorted((CASES_DIR / "invalid").glob("*.ttl"))


def _expectations(path: Path) -> list[str]:
    expected = [
        line.removeprefix("# expect:").strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("# expect:")
    ]
    assert expected and all(expected), f"{path.name} has no '# expect: <message>' line"
    return expected


def _validate_case(path: Path, ontology: Graph, case_shapes: Graph) -> tuple[Graph, Report]:
    case = Graph().parse(path)
    assert len(case) > 0, f"{path.name} is empty"
    return case, run_shacl(case + ontology, case_shapes)


def test_there_are_enough_example_cases():
    assert len(VALID_CASES) >= 4
    names = {p.stem for p in INVALID_CASES}
    for required in (
        "age-not-integer",
        "age-too-high",
        "negative-symptom-duration",
        "unknown-finding",
        "finding-present-and-absent",
        "missing-age",
        "untyped-case",
        "unknown-sex",
        "two-ages",
    ):
        assert required in names, f"missing invalid case {required}.ttl"


@pytest.mark.parametrize("path", VALID_CASES, ids=lambda p: p.stem)
def test_valid_case_conforms(ontology, case_shapes, path):
    case, report = _validate_case(path, ontology, case_shapes)
    assert list(case.subjects(RDF.type, LBP.PatientCase)), f"{path.name} declares no case"
    assert report.conforms, report.text


@pytest.mark.parametrize("path", INVALID_CASES, ids=lambda p: p.stem)
def test_invalid_case_is_rejected_with_its_message(ontology, case_shapes, path):
    _, report = _validate_case(path, ontology, case_shapes)
    assert not report.conforms, f"{path.name} conforms but should not"
    for expected in _expectations(path):
        assert any(expected in m for m in report.messages), (
            f"{path.name}: no message contains {expected!r}\n{report.text}"
        )
    # One file, one problem: every result is the expected one.
    stray = [r for r in report.results if not any(e in m for e in _expectations(path) for m in r.messages)]
    assert not stray, f"{path.name} has other problems too\n{report.text}"


def test_red_flag_screened_case_assesses_every_red_flag(ontology):
    """The screened-negative example really lists every red flag of the ontology as absent."""
    case = Graph().parse(CASES_DIR / "valid" / "red-flags-screened-negative.ttl")
    red_flag_classes = {LBP.RedFlag, *ontology.transitive_subjects(RDFS.subClassOf, LBP.RedFlag)}
    red_flags = {f for c in red_flag_classes for f in ontology.subjects(RDF.type, c)}
    absent = set(case.objects(None, LBP.hasAbsentFinding))
    assert red_flags and red_flags <= absent, sorted(red_flags - absent)
    assert not list(case.objects(None, LBP.hasFinding))


#################################################################
# Numbers: the xsd:decimal family
#################################################################
def _decimal_case_properties(ontology: Graph) -> list[URIRef]:
    return sorted(
        p for p in ontology.subjects(RDFS.range, XSD.decimal) if (p, RDFS.domain, LBP.PatientCase) in ontology
    )


def test_every_decimal_case_property_accepts_exactly_the_decimal_family(ontology, case_shapes):
    """In Turtle ``6`` is an xsd:integer, a type derived from xsd:decimal. sh:datatype compares
    datatype IRIs, so a property whose range is xsd:decimal lists xsd:decimal and every XSD
    type derived from it in one sh:or, and has no sh:datatype of its own (which would
    reject the others)."""
    properties = _decimal_case_properties(ontology)
    assert {LBP.symptomDurationWeeks, LBP.esrMmPerHour, LBP.labValue} <= set(properties)
    checked = set(case_shapes.objects(None, SH.property))
    for prop in properties:
        shapes = [s for s in case_shapes.subjects(SH.path, prop) if s in checked]
        ors = [(s, o) for s in shapes for o in case_shapes.objects(s, SH["or"])]
        assert len(ors) == 1, f"{prop}: expected one sh:or over the decimal family, found {len(ors)}"
        members = list(Collection(case_shapes, ors[0][1]))
        assert {case_shapes.value(m, SH.datatype) for m in members} == set(DECIMAL_FAMILY), prop
        assert all(set(case_shapes.predicates(m)) == {SH.datatype} for m in members), prop
        assert not [s for s in shapes if (s, SH.datatype, None) in case_shapes], prop
