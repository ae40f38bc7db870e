"""The fast engine gives the same answers as the reference: HermiT (OWL 2 DL) for
criterion membership and indicated procedures, pyshacl for case validation, on seeded
generated cases that probe the criteria's numeric boundaries."""

from __future__ import annotations

import random
from decimal import Decimal, InvalidOperation

import pyoxigraph as ox
import pytest
from rdflib import Graph, URIRef

from reasoner import classify_fast, classify_hermit
from reasoner.cases import CaseBatch, group_by_subject, to_rdflib
from reasoner.definitions import compile_definitions
from reasoner.explain import Vocabulary
from reasoner.knowledge import LBP
from reasoner.synthetic import CASE_NS, CaseGenerator
from reasoner.validate import FastValidator, validate_reference

N_CASES = 2000


def _store(kb, ntriples: str) -> ox.Store:
    store = ox.Store()
    store.bulk_extend(
        ox.parse(kb.ontology.serialize(format="nt", encoding="utf-8"), format=ox.RdfFormat.N_TRIPLES)
    )
    store.bulk_extend(ox.parse(ntriples, format=ox.RdfFormat.N_TRIPLES))
    return store


@pytest.mark.hermit
def test_fast_engine_matches_hermit_on_2000_generated_cases(kb):
    ntriples = CaseGenerator(kb, seed=2026).ntriples(N_CASES)
    cases = [f"{CASE_NS}{i}" for i in range(N_CASES)]
    formulas = compile_definitions(kb.ontology)
    batch = CaseBatch.from_quads(group_by_subject(ox.parse(ntriples, format=ox.RdfFormat.N_TRIPLES))).facts
    fast = classify_fast.FastClassifier(formulas, kb.ontology).classify(batch, cases)

    graph = Graph().parse(data=ntriples, format="nt")
    per_case: dict[URIRef, Graph] = {URIRef(c): Graph() for c in cases}
    for triple in graph:
        per_case[triple[0]].add(triple)
    reference = classify_hermit.classify(kb.ontology, per_case)
    assert reference.inconsistent == []

    vocab = Vocabulary(kb.ontology)
    defined = {str(c) for c in formulas}
    mismatches = []
    for case in cases:
        ref = reference.classified[URIRef(case)]
        ref_classes = {str(c) for c in ref.classes} & defined
        fast_classes = set(fast[case].classes)
        ref_procedures = {str(p) for p in ref.values.get(LBP.indicatesProcedure, ())}
        fast_procedures = {
            str(vocab.restrictions(c)[str(LBP.indicatesProcedure)])
            for c in fast_classes
            if str(LBP.indicatesProcedure) in vocab.restrictions(c)
        }
        if ref_classes != fast_classes or ref_procedures != fast_procedures:
            mismatches.append((case, ref_classes ^ fast_classes, ref_procedures ^ fast_procedures))
    assert mismatches == [], mismatches[:5]
    # The generated cases exercise every defined class and leave some cases in none.
    hits = {c for case in cases for c in fast[case].classes}
    assert hits == defined
    assert any(not fast[c].classes for c in cases)


MUTATIONS = {
    "age-decimal": lambda case: [
        f'<{case}> <{LBP.ageInYears}> "51.5"^^<http://www.w3.org/2001/XMLSchema#decimal> .'
    ],
    "age-too-high": lambda case: [
        f'<{case}> <{LBP.ageInYears}> "130"^^<http://www.w3.org/2001/XMLSchema#integer> .'
    ],
    "age-ill-typed": lambda case: [
        f'<{case}> <{LBP.ageInYears}> "fifty"^^<http://www.w3.org/2001/XMLSchema#integer> .'
    ],
    "negative-weeks": lambda case: [
        f'<{case}> <{LBP.symptomDurationWeeks}> "-1.0"^^<http://www.w3.org/2001/XMLSchema#decimal> .'
    ],
    "integer-weeks": lambda case: [
        f'<{case}> <{LBP.conservativeTreatmentWeeks}> "6"^^<http://www.w3.org/2001/XMLSchema#integer> .'
    ],
    "unknown-finding": lambda case: [f"<{case}> <{LBP.hasFinding}> <{LBP}NotAFinding> ."],
    "present-and-absent": lambda case: [
        f"<{case}> <{LBP.hasFinding}> <{LBP.Fever}> .",
        f"<{case}> <{LBP.hasAbsentFinding}> <{LBP.Fever}> .",
    ],
    "bad-boolean": lambda case: [
        f'<{case}> <{LBP.surgicalCandidate}> "maybe"^^<http://www.w3.org/2001/XMLSchema#boolean> .'
    ],
    "bad-sex": lambda case: [f"<{case}> <{LBP.administrativeSex}> <{LBP.Fever}> ."],
    "untyped": lambda case: [
        f'<{case}-untyped> <{LBP.ageInYears}> "40"^^<http://www.w3.org/2001/XMLSchema#integer> .'
    ],
}


def test_fast_validator_matches_pyshacl_on_valid_and_mutated_cases(kb):
    rng = random.Random(11)
    gen = CaseGenerator(kb, seed=11)
    lines = []
    for i in range(300):
        lines += list(gen.triples(i))
        if rng.random() < 0.5:
            lines += rng.choice(list(MUTATIONS.values()))(f"{CASE_NS}{i}")
    ntriples = "\n".join(lines) + "\n"
    shapes = kb.shapes("case-shapes")
    fast = FastValidator(shapes).validate(_store(kb, ntriples))
    reference = validate_reference(kb.ontology + to_rdflib(ntriples), shapes)

    def key(r):
        # pyoxigraph stores numbers in canonical form ("-1.0" as "-1"): compare values.
        value = r.value
        if value and value.startswith('"') and "^^" in value:
            lexical, datatype = value[1:].split('"^^', 1)
            try:
                value = (datatype, Decimal(lexical).normalize())
            except InvalidOperation:
                value = (datatype, lexical)
        return (r.focus, r.path, r.component, str(value), r.message)

    assert sorted(map(key, fast)) == sorted(map(key, reference))
    assert len({r.focus for r in fast}) > 100  # the mutations were caught


def test_generated_cases_are_valid(kb):
    ntriples = CaseGenerator(kb, seed=3).ntriples(500)
    assert FastValidator(kb.shapes("case-shapes")).validate(_store(kb, ntriples)) == []
