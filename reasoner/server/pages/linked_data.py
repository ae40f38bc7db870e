"""Describe an IRI of the knowledge base, for dereferencing: what ``GET`` on an ontology
IRI returns, read from the knowledge-base graphs of the store (never from case graphs).

An IRI ``https://w3id.org/lbp-imaging/X`` is served at the path part of the namespace,
``/lbp-imaging/X`` (``local_path``), so that a w3id.org redirect needs only to swap the
host.

* An ontology module or a shapes file (an IRI that names a knowledge-base graph) is a
  document: its description is the whole graph, so that ``owl:imports`` followed over
  the web loads the same ontology the catalog loads locally.
* Any other IRI (a class, property, individual, source statement, source document,
  code) is described by its concise bounded description (its triples, following blank
  nodes, so an OWL restriction or a quote selector comes whole), the triples of named
  resources that point at it (which criteria cite a statement; which classes are
  subclasses), the OWL axiom annotations about it (a mapping's confidence), and the
  labels of every resource these name, so that a client can show them without asking
  again. An IRI with no such triple is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pyoxigraph as ox

from ...knowledge import LBP

OWL = "http://www.w3.org/2002/07/owl#"
RDFS_LABEL = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label")
SKOS_PREF_LABEL = ox.NamedNode("http://www.w3.org/2004/02/skos/core#prefLabel")
DCTERMS_TITLE = ox.NamedNode("http://purl.org/dc/terms/title")
LABELS = (RDFS_LABEL, SKOS_PREF_LABEL, DCTERMS_TITLE)
AXIOM_LINKS = (ox.NamedNode(OWL + "annotatedSource"), ox.NamedNode(OWL + "annotatedTarget"))
NAMESPACE = str(LBP)
PATH_PREFIX = urlsplit(NAMESPACE).path


@dataclass(frozen=True)
class Description:
    """What the server says about ``iri``: its triples, and whether they are a whole
    document (an ontology module or shapes file) or a term's description."""

    iri: str
    triples: list[ox.Triple]
    is_document: bool


def local_path(iri: str) -> str | None:
    """The path on this server where ``iri`` dereferences; None outside the namespace."""
    return PATH_PREFIX + quote(iri[len(NAMESPACE) :], safe="/") if iri.startswith(NAMESPACE) else None


class _Graphs:
    """Lookups restricted to the knowledge-base graphs."""

    def __init__(self, store: ox.Store, names: list[str]):
        self.store = store
        self.names = [ox.NamedNode(n) for n in names]
        self.name_set = set(self.names)

    def about(self, subject, predicate=None) -> list[ox.Triple]:
        # Subject-bound: one lookup over every graph, then keep the knowledge base's.
        quads = self.store.quads_for_pattern(subject, predicate, None, None)
        return [q.triple for q in quads if q.graph_name in self.name_set]

    def pointing_at(self, term: ox.NamedNode) -> list[ox.Triple]:
        # Object-bound: graph by graph, so that the case graphs (which point at findings
        # and procedures many times over) are never scanned.
        return [q.triple for g in self.names for q in self.store.quads_for_pattern(None, None, term, g)]

    def closure(self, start) -> list[ox.Triple]:
        """The triples about ``start`` and, recursively, about the blank nodes they reach."""
        found, todo, seen = [], [start], {start}
        while todo:
            for triple in self.about(todo.pop()):
                found.append(triple)
                if isinstance(triple.object, ox.BlankNode) and triple.object not in seen:
                    seen.add(triple.object)
                    todo.append(triple.object)
        return found


def _term_description(graphs: _Graphs, term: ox.NamedNode) -> list[ox.Triple]:
    triples = graphs.closure(term)
    for triple in graphs.pointing_at(term):
        if isinstance(triple.subject, ox.NamedNode):
            triples.append(triple)
        elif triple.predicate in AXIOM_LINKS:
            triples += graphs.closure(triple.subject)
    if not triples:
        return []
    named = {t for triple in triples for t in (triple.subject, triple.predicate, triple.object)}
    for resource in named - {term}:
        if isinstance(resource, ox.NamedNode):
            for label in LABELS:
                triples += graphs.about(resource, label)
    return list(dict.fromkeys(triples))


def _node(iri: str) -> ox.NamedNode | None:
    try:
        return ox.NamedNode(iri)
    except ValueError:
        return None


def is_described(store: ox.Store, knowledge_graphs: list[str], iri: str) -> bool:
    """Whether ``describe`` has something to say about ``iri``, without building it."""
    term = _node(iri)
    if term is None:
        return False
    graphs = _Graphs(store, knowledge_graphs)
    return iri in knowledge_graphs or bool(graphs.about(term)) or bool(graphs.pointing_at(term))


def describe(store: ox.Store, knowledge_graphs: list[str], iri: str) -> Description | None:
    """The description of ``iri`` (see the module docstring), or None when the knowledge
    base says nothing about it."""
    term = _node(iri)
    if term is None:
        return None
    if iri in knowledge_graphs:
        return Description(iri, [q.triple for q in store.quads_for_pattern(None, None, None, term)], True)
    triples = _term_description(_Graphs(store, knowledge_graphs), term)
    return Description(iri, triples, False) if triples else None
