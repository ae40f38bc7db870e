"""The ontology's own description (its ``owl:Ontology`` header), for the landing page.

Read from the root ontology and its modules rather than written into the page, so that
a new version, licence or module shows up as soon as the Turtle says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdflib import DCTERMS, OWL, RDF, Graph, URIRef

from ...pipeline.explain import Vocabulary
from ..graphs import ONTOLOGY_GRAPHS
from .labels import property_label


@dataclass(frozen=True)
class Field:
    """One annotation of the header: its property's label and its value (a link if an IRI)."""

    label: str
    value: str
    link: bool


@dataclass(frozen=True)
class Module:
    iri: str
    title: str
    version_iri: str | None


@dataclass(frozen=True)
class OntologyHeader:
    iri: str
    title: str
    description: str | None
    version: str | None
    fields: tuple[Field, ...]
    modules: tuple[Module, ...]
    triples: int


def _is_web_link(term: object) -> bool:
    """Shown as a link only when it is an http(s) IRI (never, say, a ``javascript:`` one)."""
    return isinstance(term, URIRef) and str(term).startswith(("https://", "http://"))


def _text(graph: Graph, node: URIRef, prop: URIRef) -> str | None:
    value = graph.value(node, prop)
    return str(value) if value is not None else None


def read_header(graph: Graph, vocab: Vocabulary) -> OntologyHeader:
    """The root ontology's annotations and its imported modules, from ``graph``."""
    root = URIRef(ONTOLOGY_GRAPHS)
    shown = [
        (p, o)
        for p, o in graph.predicate_objects(root)
        if p not in (RDF.type, OWL.imports, DCTERMS.title, DCTERMS.description)
    ]
    fields = sorted(
        (Field(property_label(vocab, str(p)), str(o), _is_web_link(o)) for p, o in shown),
        key=lambda f: (f.label.lower(), f.value),
    )
    modules = tuple(
        Module(str(m), _text(graph, m, DCTERMS.title) or str(m), _text(graph, m, OWL.versionIRI))
        for m in sorted(graph.objects(root, OWL.imports))
        if isinstance(m, URIRef)
    )
    return OntologyHeader(
        iri=str(root),
        title=_text(graph, root, DCTERMS.title) or str(root),
        description=_text(graph, root, DCTERMS.description),
        version=_text(graph, root, OWL.versionInfo) or _text(graph, root, OWL.versionIRI),
        fields=tuple(fields),
        modules=modules,
        triples=len(graph),
    )
