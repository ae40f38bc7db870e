"""The HTML page of a described IRI, for people following an ontology IRI in a browser.

Deliberately plain and generic, so that it shows whatever the ontology says without
knowing its vocabulary: the label, the definition, the types, every other property
(blank nodes such as OWL restrictions and quote selectors nested in place), what refers
to it, the annotations on its axioms, and links to the same description as RDF. A
module's page lists the terms it defines. Every IRI under the namespace links to its
page on this server; other IRIs link to themselves. Nicer pages can be built on the
same descriptions later.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape

import pyoxigraph as ox

from ... import DISCLAIMER
from .linked_data import AXIOM_LINKS, LABELS, Description, local_path

RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
DEFINITIONS = (
    ox.NamedNode("http://www.w3.org/2004/02/skos/core#definition"),
    ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#comment"),
    ox.NamedNode("http://purl.org/dc/terms/description"),
)
FORMAT_NAMES = {
    "text/turtle": "Turtle",
    "application/ld+json": "JSON-LD",
    "application/rdf+xml": "RDF/XML",
    "application/n-triples": "N-Triples",
}
STYLESHEET = "/static/term.css"
"""The pages' stylesheet, a file (``assets``): the pages' policy allows no inline style."""


class _Page:
    def __init__(self, description: Description):
        self.term = ox.NamedNode(description.iri)
        self.outgoing: dict = defaultdict(list)
        for t in description.triples:
            self.outgoing[t.subject].append(t)
        # The first label predicate a resource has (rdfs:label before skos:prefLabel and
        # dcterms:title), in English if there is one.
        ranked: dict = {}
        for t in description.triples:
            if t.predicate in LABELS and isinstance(t.object, ox.Literal):
                rank = (LABELS.index(t.predicate), t.object.language not in ("en", None))
                if t.subject not in ranked or rank < ranked[t.subject][0]:
                    ranked[t.subject] = (rank, t.object.value)
        self.labels: dict[ox.NamedNode, str] = {s: value for s, (_, value) in ranked.items()}

    def name(self, term) -> str:
        if term in self.labels:
            return self.labels[term]
        value = term.value
        return value.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1] or value

    def link(self, term: ox.NamedNode) -> str:
        href = local_path(term.value) or term.value
        return f'<a href="{escape(href)}" title="{escape(term.value)}">{escape(self.name(term))}</a>'

    def value(self, term, seen: frozenset) -> str:
        if isinstance(term, ox.NamedNode):
            return self.link(term)
        if isinstance(term, ox.BlankNode):
            return self.properties(term, seen | {term}) if term not in seen else "…"
        if isinstance(term, ox.Literal):
            lang = f' lang="{escape(term.language)}"' if term.language else ""
            return f"<span{lang}>{escape(term.value)}</span>"
        return escape(str(term))

    def properties(self, subject, seen: frozenset, skip: frozenset = frozenset()) -> str:
        by_predicate: dict = defaultdict(list)
        for t in self.outgoing.get(subject, ()):
            if t not in skip:
                by_predicate[t.predicate].append(t.object)
        rows = "".join(
            f"<dt>{self.link(p)}</dt>" + "".join(f"<dd>{self.value(o, seen)}</dd>" for o in objects)
            for p, objects in by_predicate.items()
        )
        return f"<dl>{rows}</dl>" if rows else ""

    def first(self, predicates: tuple) -> ox.Triple | None:
        own = self.outgoing.get(self.term, ())
        return next((t for p in predicates for t in own if t.predicate == p), None)

    def heading(self) -> list[str]:
        """Title, IRI, definition, types and the other properties of the term itself."""
        definition, label = self.first(DEFINITIONS), self.first(LABELS)
        types = [t for t in self.outgoing.get(self.term, ()) if t.predicate == RDF_TYPE]
        parts = [f"<h1>{escape(self.name(self.term))}</h1>", f"<p><code>{escape(self.term.value)}</code></p>"]
        if definition is not None:
            parts.append(f"<p>{escape(definition.object.value)}</p>")
        if types:
            parts.append("<p>Type: " + ", ".join(self.value(t.object, frozenset()) for t in types) + "</p>")
        shown = frozenset(t for t in (definition, label, *types) if t is not None)
        if own := self.properties(self.term, frozenset(), shown):
            parts += ["<h2>Properties</h2>", own]
        return parts

    def references(self) -> list[str]:
        """Named resources pointing at the term, and the annotations of its axioms."""
        inbound = [t for ts in self.outgoing.values() for t in ts if t.object == self.term]
        parts = []
        if refs := [t for t in inbound if isinstance(t.subject, ox.NamedNode)]:
            items = (
                f"<li>{self.link(t.subject)} <em>{escape(self.name(t.predicate))}</em></li>" for t in refs
            )
            parts += ["<h2>Referenced by</h2>", "<ul>" + "".join(items) + "</ul>"]
        if axioms := [t.subject for t in inbound if t.predicate in AXIOM_LINKS]:
            parts.append("<h2>Annotations on its axioms</h2>")
            parts += [self.properties(a, frozenset({a})) for a in axioms]
        return parts

    def terms(self) -> list[str]:
        """A module's terms: every named subject of its graph but the module itself."""
        named = (s for s in self.outgoing if isinstance(s, ox.NamedNode) and s != self.term)
        items = "".join(f"<li>{self.link(s)}</li>" for s in sorted(named, key=self.name))
        return ["<h2>Terms</h2>", f"<ul>{items}</ul>"]


def page(description: Description, alternates: dict[str, str]) -> str:
    """The page of ``description``; ``alternates`` maps each RDF media type to the URL of
    the same description in that syntax."""
    view = _Page(description)
    title = escape(view.name(view.term))
    links = "".join(
        f'<link rel="alternate" type="{escape(media)}" href="{escape(url)}">'
        for media, url in alternates.items()
    )
    formats = " · ".join(f'<a href="{escape(url)}">{FORMAT_NAMES[m]}</a>' for m, url in alternates.items())
    sections = view.heading() + (view.terms() if description.is_document else view.references())
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<title>{title} · lbp-imaging</title>{links}<link rel="stylesheet" href="{STYLESHEET}">'
        "</head>\n<body>\n"
        + "\n".join(sections)
        + f"\n<footer><p>As RDF: {formats}</p><p>{escape(DISCLAIMER)}</p></footer>\n</body></html>\n"
    )
