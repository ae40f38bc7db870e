"""Source statements: verbatim quotes that a check finds in the source documents, and
coverage of every statement of the documents that carries a criterion."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import RDF, RDFS, URIRef
from rdflib.namespace import PROV

from reasoner.knowledge import LBP
from reasoner.pipeline.sources import OA, Quote, check_quote, check_quotes, read_quotes

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT.parent / "shared" / "seeds"
STMT = str(LBP) + "statement/"


def test_every_quote_is_verbatim_in_its_document_and_positions_point_at_it(kb, onto):
    problems = check_quotes(onto, kb.ontology_dir)
    assert problems == [], "\n".join(map(str, problems))


def test_at_least_60_statements_covering_both_documents(onto):
    quotes = read_quotes(onto)
    assert len(quotes) >= 60
    by_doc = {q.document for q in quotes}
    assert by_doc == {
        URIRef(str(LBP) + "source/clinic-article"),
        URIRef(str(LBP) + "source/clinician-summary"),
    }
    for doc in by_doc:
        assert sum(q.document == doc for q in quotes) >= 30


@pytest.mark.skipif(not SEEDS.is_dir(), reason="shared/seeds not beside the repository")
def test_local_copies_are_the_seed_documents_byte_for_byte(kb):
    local = sorted(p.read_bytes() for p in (kb.ontology_dir / "sources").glob("*.txt"))
    seeds = sorted(p.read_bytes() for p in SEEDS.glob("*.txt"))
    assert local == seeds


def test_every_statement_is_a_typed_specific_resource_with_a_label(onto):
    for quote in read_quotes(onto):
        types = set(onto.objects(quote.statement, RDF.type))
        assert any((t, RDFS.subClassOf, LBP.SourceStatement) in onto for t in types), quote.statement
        assert onto.value(quote.statement, RDFS.label) is not None
        assert onto.value(quote.statement, PROV.wasQuotedFrom) == quote.document


def test_coverage_every_criterion_bearing_statement_is_linked_from_the_ontology(onto):
    listed = [
        ln.strip()
        for ln in (Path(__file__).parent / "data" / "criterion-statements.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    linked = {str(s) for s in onto.objects(None, PROV.wasDerivedFrom)}
    missing = [sid for sid in listed if STMT + sid not in linked]
    assert missing == [], f"criterion-bearing statements no concept derives from: {missing}"
    # The list must name every statement of the kinds that state criteria.
    kinds = {
        "IndicationStatement",
        "RedFlagStatement",
        "UrgencyStatement",
        "ContrastStatement",
        "AlternativePathwayStatement",
        "ModalityStatement",
        "AgainstRoutineImagingStatement",
    }
    of_kind = {
        str(q.statement)[len(STMT) :]
        for q in read_quotes(onto)
        if any(str(t)[len(str(LBP)) :] in kinds for t in onto.objects(q.statement, RDF.type))
    }
    assert of_kind <= set(listed), f"not in the coverage list: {sorted(of_kind - set(listed))}"


def test_every_statement_is_cited_or_qualifies_something(onto):
    cited = set(onto.objects(None, PROV.wasDerivedFrom)) | set(onto.objects(None, LBP.qualifiedBy))
    uncited = [str(q.statement) for q in read_quotes(onto) if q.statement not in cited]
    assert uncited == []


# The checker itself must fail on bad quotes, or the tests above prove nothing.
TEXT = "Red flags: fever. Back pain is common. Back pain can last."


@pytest.mark.parametrize(
    ("quote", "problem"),
    [
        (Quote(URIRef("s"), URIRef("d"), "fever", None, None, 11, 16), None),
        (Quote(URIRef("s"), URIRef("d"), "fevers", None, None, None, None), "not found"),
        (Quote(URIRef("s"), URIRef("d"), "Back pain", None, None, None, None), "occurs 2 times"),
        (Quote(URIRef("s"), URIRef("d"), "Back pain", "common. ", " can", None, None), None),
        (Quote(URIRef("s"), URIRef("d"), "fever", None, None, 0, 5), "points at"),
        (Quote(URIRef("s"), URIRef("d"), "Red  flags:\nfever", None, None, None, None), None),
    ],
)
def test_quote_checker_detects_each_kind_of_problem(quote, problem):
    found = check_quote(quote, TEXT)
    if problem is None:
        assert found == []
    else:
        assert any(problem in p for p in found), found


def test_quote_checker_reads_selectors_from_rdf(onto):
    quotes = {str(q.statement): q for q in read_quotes(onto)}
    cancer = quotes[STMT + "art-11"]
    assert cancer.exact == "cancer" and cancer.prefix and cancer.suffix
    assert (URIRef(STMT + "art-11"), OA.hasSource, cancer.document) in onto
