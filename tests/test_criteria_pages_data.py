"""What the criteria browser shows, without a browser: the logic in words generated from
the compiled definitions, quotes located in their source documents, the documents cut
into highlighted segments, and the ontology header of the landing page."""

from __future__ import annotations

import dataclasses

import pytest
from rdflib import OWL, Graph, Literal, URIRef

from reasoner.knowledge import LBP
from reasoner.pipeline.definitions import Leaf, compile_definitions, leaves
from reasoner.pipeline.explain import Vocabulary
from reasoner.pipeline.sources import Quote, document_text, locate, normalise, read_quotes
from reasoner.server.pages.criteria_catalogue import CriteriaCatalogue, segments
from reasoner.server.pages.definition_words import DefinitionWords, text_of
from reasoner.server.pages.ontology_header import read_header


@pytest.fixture(scope="module")
def vocab(onto: Graph) -> Vocabulary:
    return Vocabulary(onto)


@pytest.fixture(scope="module")
def catalogue(kb, vocab) -> CriteriaCatalogue:
    return CriteriaCatalogue(kb, vocab)


def _leaf_texts(vocab: Vocabulary, leaf: Leaf) -> list[str]:
    """What the words must say for a leaf: its class or value label and its bounds."""
    found = [str(value) for _, value in leaf.facets]
    for term in (leaf.cls, leaf.value):
        if isinstance(term, URIRef):
            found.append(vocab.label(str(term)))
        elif isinstance(term, Literal):
            found.append(str(term))
    return found


def test_every_defined_class_is_said_with_each_condition_of_its_definition(onto, vocab):
    formulas = compile_definitions(onto)
    words = DefinitionWords(onto, formulas, vocab.label)
    for cls, formula in formulas.items():
        said = words.words(cls)
        text = text_of(said)
        refs = {URIRef(w.ref) for w in said if w.ref}
        assert cls not in refs, f"{cls} is said in terms of itself"
        # A condition is said in words, or folded into "meets <class>" naming a class that has it.
        folded = {leaf for named in refs & set(formulas) for leaf in leaves(formulas[named])}
        for leaf in leaves(formula):
            if any(t not in text for t in _leaf_texts(vocab, leaf)):
                assert leaf in folded, f"{cls}: {leaf} missing from {text!r}"
        assert text.count("(") == text.count(")"), text


def test_words_follow_an_edited_threshold_with_no_code_change(onto, vocab):
    formulas = compile_definitions(onto)
    cls, leaf = next((c, leaf) for c, f in sorted(formulas.items()) for leaf in leaves(f) if leaf.facets)
    op, value = leaf.facets[0]
    edited = dataclasses.replace(leaf, facets=((op, value + 7), *leaf.facets[1:]))

    def swap(node):
        if node == leaf:
            return edited
        if isinstance(node, Leaf):
            return node
        return type(node)(tuple(swap(p) for p in node.parts))

    words = DefinitionWords(onto, {**formulas, cls: swap(formulas[cls])}, vocab.label)
    said = text_of(words.words(cls))
    assert str(value + 7) in said and f" {value}" not in said.replace(str(value + 7), "")


def test_a_part_that_is_another_defined_class_is_named_and_linked(onto, vocab):
    formulas = compile_definitions(onto)
    words = DefinitionWords(onto, formulas, vocab.label)
    named = {w.ref for cls in formulas for w in words.words(cls) if w.ref and URIRef(w.ref) in formulas}
    assert named, "no definition refers to another defined class"
    for ref in named:
        assert vocab.label(ref) != ref


def test_every_quote_is_located_at_its_position_selector(kb, onto):
    for quote in read_quotes(onto):
        text = document_text(onto, quote.document, kb.ontology_dir)
        assert locate(quote, text) == (quote.start, quote.end), quote.statement


def test_a_quote_whose_positions_are_stale_is_found_by_its_text(kb, onto):
    quote = next(q for q in read_quotes(onto) if len(q.exact.split()) > 3)
    text = document_text(onto, quote.document, kb.ontology_dir)
    shifted = "preface\n\n" + text.replace(quote.exact, quote.exact.replace(" ", "\n  ", 2))
    start, end = locate(quote, shifted)  # its position selector now points elsewhere
    assert normalise(shifted[start:end]) == normalise(quote.exact)
    assert locate(dataclasses.replace(quote, exact="words that are not in it"), text) is None


def test_a_repeated_quote_is_found_where_its_prefix_says():
    text = "alpha beta. gamma beta. delta"
    quote = Quote(URIRef("urn:s"), URIRef("urn:d"), "beta", "gamma ", ". delta", None, None)
    assert locate(quote, text) == (18, 22)


def test_segments_mark_each_statement_and_anchor_where_it_starts():
    cut = segments("0123456789", {"a": (2, 5), "b": (4, 8)})
    assert "".join(s.text for s in cut) == "0123456789"
    assert [(s.text, s.marked, s.anchors) for s in cut] == [
        ("01", False, ()),
        ("23", True, ("a",)),
        ("4", True, ("b",)),
        ("567", True, ()),
        ("89", False, ()),
    ]


def test_catalogue_lists_every_defined_class_and_closed_world_concept(onto, catalogue):
    defined = set(compile_definitions(onto))
    closed = set(onto.subjects(LBP.closedWorldQuery, None))
    assert {URIRef(c.iri) for c in catalogue} == defined | closed
    for criterion in catalogue:
        assert criterion.statements, f"{criterion.name} cites no statement"
        assert all(s.located for s in criterion.statements), criterion.name
        marked = {a for d in criterion.documents for s in d.segments for a in s.anchors}
        assert marked == {s.anchor for s in criterion.statements}, criterion.name
        assert criterion.logic or criterion.closed_world_query, criterion.name


def test_header_comes_from_the_root_ontology(onto, vocab):
    header = read_header(onto, vocab)
    root = URIRef(header.iri)
    assert header.version == str(onto.value(root, OWL.versionInfo))
    assert len(header.modules) == len(set(onto.objects(root, OWL.imports)))
    assert header.triples == len(onto)
