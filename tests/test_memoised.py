"""Selection once per signature gives the answers of selection per case.

``Selector`` runs each closed-world query of ``queries/`` once per distinct signature (what
the query can read of a case) and hands every case its representative's rows; with
``memoise=False`` every query runs over every case as written. These tests assess the same
batches both ways and compare the selections and the whole results: generated cases
(several seeds and rates of unrecorded findings, so that undetermined criteria and
questions occur), every example case, cases repeated under other IRIs (so that every
query answers from representatives and from answers kept across batches), and batches
where memoisation must step aside (a case that is the object of a triple) or keep its
answers to one batch (subjects that are no case).
"""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import RDF, RDFS, URIRef

from reasoner.knowledge import LBP, KnowledgeBase
from reasoner.pipeline import cases as case_input
from reasoner.pipeline.assess import Assessor
from reasoner.pipeline.cases import CaseBatch, group_by_subject
from reasoner.pipeline.select import SELECTION_QUERIES, Selection, Selector, case_reads, selections
from reasoner.synthetic import CaseGenerator

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [ROOT / "examples" / "cases", ROOT / "examples" / "fhir"]


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


@pytest.fixture(scope="module")
def assessors(kb: KnowledgeBase) -> tuple[Assessor, Assessor]:
    """One assessor that memoises the selection and one that does not."""
    return Assessor(kb, memoise=True), Assessor(kb, memoise=False)


def batches(quads: list[ox.Quad], size: int) -> list[CaseBatch]:
    """The quads' subjects in batches of ``size``, each subject's quads in one batch."""
    by_subject = group_by_subject(iter(quads))
    keys = list(by_subject)
    return [
        CaseBatch.from_quads({k: by_subject[k] for k in keys[i : i + size]})
        for i in range(0, len(keys), size)
    ]


def generated(kb: KnowledgeBase, seed: int, p_absent: float, n: int) -> list[ox.Quad]:
    text = CaseGenerator(kb, seed=seed, p_absent=p_absent).ntriples(n)
    return list(ox.parse(text, format=ox.RdfFormat.N_TRIPLES))


def renamed(quads: list[ox.Quad], copy: int) -> list[ox.Quad]:
    """The same cases under other IRIs (the same triples, so the same signatures)."""
    return [ox.Quad(ox.NamedNode(f"{q.subject.value}/copy-{copy}"), q.predicate, q.object) for q in quads]


def selected(assessor: Assessor, batch: CaseBatch) -> dict[str, Selection]:
    """The selection step of ``Assessor._assess_batch`` on a batch of valid cases."""
    store = ox.Store()
    store.bulk_extend(assessor.kb_quads)
    store.bulk_extend(batch.all_quads())
    cases = assessor._cases(store, assessor._validate(store, []))
    assert cases, "the batch holds cases"
    taxonomy = assessor.classifier.batch_taxonomy(batch.facts)
    memberships, _ = assessor._classify(batch, [], cases, taxonomy)
    states = assessor._states(batch, cases, memberships, taxonomy)
    found = set(cases)
    return assessor.selector.select(
        store,
        {c: batch.facts[c] for c in cases},
        memberships,
        {c: states[c].undetermined() for c in cases},
        context=[q for s, quads in batch.quads.items() if s not in found for q in quads],
    )


def both(assessors: tuple[Assessor, Assessor], batch_list: list[CaseBatch]) -> None:
    """Memoised and unmemoised selections and whole results are equal, batch by batch."""
    memoised, plain = assessors
    for batch in batch_list:
        assert selected(memoised, batch) == selected(plain, batch)
        mine = [r.to_dict() for r in memoised._assess_batch(batch, {})]
        theirs = [r.to_dict() for r in plain._assess_batch(batch, {})]
        assert mine == theirs


def test_the_selection_queries_are_memoised(assessors: tuple[Assessor, Assessor]) -> None:
    memoised, plain = assessors
    assert set(memoised.selector.reads) == set(SELECTION_QUERIES)
    assert plain.selector.reads == {}
    assert str(RDF.type) in memoised.selector.reads["recommended-procedure"]


@pytest.mark.parametrize(("seed", "p_absent", "n"), [(1, 0.15, 1200), (2, 0.45, 800), (3, 0.9, 600)])
def test_generated_cases(kb: KnowledgeBase, assessors, seed: int, p_absent: float, n: int) -> None:
    both(assessors, batches(generated(kb, seed, p_absent, n), 200))


def test_repeated_cases_answer_from_representatives_and_kept_answers(kb: KnowledgeBase, assessors) -> None:
    """Cases repeated under other IRIs: every query answers from representatives (half of
    the first batch is new to it, a quarter of the second) and from the answers kept."""
    memoised, _ = assessors
    quads = generated(kb, 4, 0.3, 40)
    subjects = list(dict.fromkeys(q.subject for q in quads))
    first, later = set(subjects[:30]), set(subjects[30:])
    original = [q for q in quads if q.subject in first]
    batch_list = [
        *batches(original + renamed(original, 1), 60),
        *batches(renamed(original, 2) + [q for q in quads if q.subject in later], 40),
    ]
    memoised.selector.skip = dict.fromkeys(memoised.selector.skip, 0)
    before = {name: len(kept) for name, kept in memoised.selector.kept.items()}
    both(assessors, batch_list)
    assert all(len(memoised.selector.kept[name]) > before[name] for name in SELECTION_QUERIES)
    assert memoised.selector.skip == dict.fromkeys(SELECTION_QUERIES, 0)  # no batch ran as written


def test_example_cases(assessors) -> None:
    memoised, _ = assessors
    loaded = case_input.load(EXAMPLES, memoised.inputs)
    assert not loaded.errors
    for size in (7, 1000):
        both(assessors, batches(loaded.quads, size))


def test_a_case_read_through_another_is_not_memoised(kb: KnowledgeBase, assessors) -> None:
    """A case that is the object of another's triple: the queries run as written."""
    memoised, _ = assessors
    quads = generated(kb, 5, 0.15, 40)
    first, second = quads[0].subject, quads[-1].subject
    quads.append(ox.Quad(first, ox.NamedNode("urn:example:relatedCase"), second))
    kept = {name: dict(k) for name, k in memoised.selector.kept.items()}
    (batch,) = batches(quads, 40)
    assert len(selected(memoised, batch)) == 40
    both(assessors, [batch])
    assert {name: dict(k) for name, k in memoised.selector.kept.items()} == kept


def test_subjects_that_are_no_case_are_read_for_their_batch(kb: KnowledgeBase, assessors) -> None:
    """A finding typed in the case file itself (a subject that is no case) is a red flag
    for its batch; answers that depend on it are not kept for other batches."""
    memoised, _ = assessors
    flag_class = next(
        c
        for c in kb.ontology.transitive_subjects(RDFS.subClassOf, LBP.RedFlag)
        if isinstance(c, URIRef) and c != LBP.RedFlag
    )
    quads = generated(kb, 6, 0.15, 30)
    finding = ox.NamedNode("urn:example:finding-recorded-in-the-file")
    quads.append(ox.Quad(finding, ox.NamedNode(str(RDF.type)), ox.NamedNode(str(flag_class))))
    quads += [ox.Quad(s, ox.NamedNode(str(LBP.hasFinding)), finding) for s in {q.subject for q in quads[:5]}]
    kept = {name: dict(k) for name, k in memoised.selector.kept.items()}
    (batch,) = batches(quads, 100)
    chosen = selected(memoised, batch)
    assert any(finding.value in s.present_red_flags for s in chosen.values())
    both(assessors, [batch])
    assert {name: dict(k) for name, k in memoised.selector.kept.items()} == kept


@pytest.mark.parametrize(
    "query",
    [
        "SELECT ?case WHERE { ?case ?p ?o }",
        "SELECT ?case WHERE { ?case !<urn:p> ?o }",
        "SELECT ?case WHERE { GRAPH ?g { ?case <urn:p> ?o } }",
        "SELECT ?case ?x WHERE { ?case <urn:p> ?o BIND(STR(?case) AS ?x) }",
        "SELECT ?case ?x WHERE { ?case <urn:p> ?o BIND(?case AS ?x) }",
        "SELECT ?case WHERE { ?case <urn:p> ?o FILTER(CONTAINS(STR(?case), 'a')) }",
        "SELECT ?case FROM <urn:g> WHERE { ?case <urn:p> ?o }",
        "SELECT ?case WHERE { ?case <urn:p> ",
    ],
)
def test_queries_whose_reads_cannot_be_bounded_are_refused(query: str) -> None:
    assert case_reads(query) is None


def test_predicates_read_include_property_paths() -> None:
    query = "SELECT ?case WHERE { ?case <urn:a>/(<urn:b>|^<urn:c>)* ?x . ?x <urn:d> ?y FILTER(?y > 1) }"
    assert case_reads(query) == {"urn:a", "urn:b", "urn:c", "urn:d"}


def test_memoise_off_runs_every_query_as_written(kb: KnowledgeBase) -> None:
    selector = Selector(kb, [], memoise=False)
    assert selector.reads == {}
    assert len(selector.store) == 0


def test_selections_do_not_depend_on_the_order_of_rows() -> None:
    """pyoxigraph's row order differs between stores and processes: where rows give one
    value several candidates, and in every list, the answer is the same in any order."""
    recommended = [
        (
            "urn:case",
            "urn:indicated",
            f"urn:procedure-{i}",
            "urn:p",
            f"urn:criterion-{i}",
            "urn:urgent",
            a,
            None,
            None,
            None,
        )
        for i, a in enumerate(["urn:usually", "urn:may", None])
    ]
    open_criteria = [
        ("urn:case", "urn:c1", "urn:raise"),
        ("urn:case", "urn:c1", "urn:change"),
        ("urn:case", "urn:c0", "urn:x"),
    ]
    no_imaging = [("urn:case", None, None, "urn:rule-b"), ("urn:case", None, None, "urn:rule-a")]
    tables = {"recommended-procedure": recommended, "open-criteria": open_criteria, "no-imaging": no_imaging}

    def answer(order) -> Selection:
        return selections(["urn:case"], lambda name, *_: order(tables.get(name, [])))["urn:case"]

    forward, backward = answer(list), answer(lambda rows: rows[::-1])
    assert forward == backward
    assert list(forward.open_criteria) == ["urn:c0", "urn:c1"]
