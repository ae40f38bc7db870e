"""Loading the knowledge base: the modules parsed by pyoxigraph give the graph rdflib's
own parser gives (the fast path of start-up), and a module that does not parse is an
error naming its file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from rdflib import BNode, Literal, URIRef

from reasoner.knowledge import KnowledgeBase, KnowledgeBaseError, catalog_entries, graph_quads

ROOT = Path(__file__).resolve().parents[1]


def rdflib_parsed(ontology_dir: Path) -> rdflib.Graph:
    graph = rdflib.Graph()
    for path in catalog_entries(ontology_dir).values():
        graph.parse(path)
    return graph


def ground(graph: rdflib.Graph) -> set:
    return {t for t in graph if not any(isinstance(x, BNode) for x in t)}


def test_the_ontology_is_the_graph_rdflib_parses() -> None:
    kb = KnowledgeBase.load(ROOT)
    reference = rdflib_parsed(kb.ontology_dir)
    assert len(kb.ontology) == len(reference)
    assert ground(kb.ontology) == ground(reference)
    # The blank nodes (restrictions, lists) have the same shapes: per predicate, as many.
    shape = lambda g: sorted((str(p), type(o).__name__) for s, p, o in g if isinstance(s, BNode))  # noqa: E731
    assert shape(kb.ontology) == shape(reference)
    assert dict(kb.ontology.namespaces()) == dict(reference.namespaces())
    # And the fast engine's quads are that graph's triples.
    plain = lambda quads: {q for q in quads if not isinstance(q.subject, ox.BlankNode)}  # noqa: E731
    assert plain(kb.ontology_quads) == plain(graph_quads(kb.ontology))


def test_literals_keep_their_kinds(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    shutil.copytree(ROOT / "ontology", root / "ontology")
    for folder in ("shapes", "queries"):
        shutil.copytree(ROOT / folder, root / folder)
    extra = root / "ontology" / "core.ttl"
    extra.write_text(
        extra.read_text(encoding="utf-8")
        + '\n<urn:x:s> <urn:x:p> "plain", "tagged"@en, "typed"^^<urn:x:dt>, 7, 2.50, false, "é\\u00e9" .\n',
        encoding="utf-8",
    )
    ours = {o for o in KnowledgeBase.load(root).ontology.objects(URIRef("urn:x:s"), URIRef("urn:x:p"))}
    theirs = set(rdflib.Graph().parse(extra).objects(URIRef("urn:x:s"), URIRef("urn:x:p")))
    assert ours == theirs
    assert Literal("plain") in ours and Literal("tagged", lang="en") in ours


def test_a_module_that_does_not_parse_is_named(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    for folder in ("ontology", "shapes", "queries"):
        shutil.copytree(ROOT / folder, root / folder)
    broken = root / "ontology" / "findings.ttl"
    broken.write_text(broken.read_text(encoding="utf-8") + "\nlbp:Oops a \n", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match=r"findings\.ttl"):
        KnowledgeBase.load(root)
