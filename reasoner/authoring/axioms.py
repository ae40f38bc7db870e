"""Split an RDF graph of an OWL ontology into axioms, each rendered in a Manchester-like line.

RDF spreads one OWL axiom over several triples, most of them on blank nodes (a
restriction, an RDF list, a reified annotation). Comparing triples between two versions
would report every blank node as changed, so each axiom is taken as one triple on a named
subject plus everything its blank nodes hold (or, for a blank node nothing points at, such
as ``owl:AllDifferent``, that whole structure), and is identified by its rendering: two
axioms are the same when they render the same, whatever their blank-node ids. Operands of
``and``/``or``/``{…}`` are sorted, as the OWL API treats them as sets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from rdflib import OWL, RDF, RDFS, XSD, BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.term import Node

BUILTIN = (str(RDF), str(RDFS), str(OWL), str(XSD))
DECLARATION_TYPES = {
    OWL.Class: "Class",
    RDFS.Class: "Class",
    OWL.ObjectProperty: "ObjectProperty",
    OWL.DatatypeProperty: "DataProperty",
    OWL.AnnotationProperty: "AnnotationProperty",
    OWL.NamedIndividual: "Individual",
    RDFS.Datatype: "Datatype",
    OWL.Ontology: "Ontology",
}
CHARACTERISTICS = {
    OWL.FunctionalProperty: "Functional",
    OWL.InverseFunctionalProperty: "InverseFunctional",
    OWL.TransitiveProperty: "Transitive",
    OWL.SymmetricProperty: "Symmetric",
    OWL.AsymmetricProperty: "Asymmetric",
    OWL.ReflexiveProperty: "Reflexive",
    OWL.IrreflexiveProperty: "Irreflexive",
}
LOGICAL_KEYWORDS = {
    RDFS.subClassOf: "SubClassOf",
    OWL.equivalentClass: "EquivalentTo",
    OWL.disjointWith: "DisjointWith",
    OWL.disjointUnionOf: "DisjointUnionOf",
    RDFS.domain: "Domain",
    RDFS.range: "Range",
    RDFS.subPropertyOf: "SubPropertyOf",
    OWL.inverseOf: "InverseOf",
    OWL.equivalentProperty: "EquivalentTo",
    OWL.propertyDisjointWith: "DisjointWith",
    OWL.propertyChainAxiom: "SubPropertyChain",
    OWL.hasKey: "HasKey",
    OWL.sameAs: "SameAs",
    OWL.differentFrom: "DifferentFrom",
}
# Axioms whose two sides play the same part: the axiom is about both.
SYMMETRIC = {OWL.equivalentClass, OWL.disjointWith, OWL.equivalentProperty, OWL.propertyDisjointWith}
SYMMETRIC |= {OWL.sameAs, OWL.differentFrom, OWL.inverseOf}
NARY = {
    OWL.AllDifferent: ("DifferentIndividuals", OWL.distinctMembers),
    OWL.AllDisjointClasses: ("DisjointClasses", OWL.members),
    OWL.AllDisjointProperties: ("DisjointProperties", OWL.members),
}
FACETS = {
    XSD.minInclusive: ">=",
    XSD.minExclusive: ">",
    XSD.maxInclusive: "<=",
    XSD.maxExclusive: "<",
    XSD.length: "length",
    XSD.minLength: "minLength",
    XSD.maxLength: "maxLength",
    XSD.pattern: "pattern",
}
CARDINALITIES = {
    OWL.minCardinality: "min",
    OWL.maxCardinality: "max",
    OWL.cardinality: "exactly",
    OWL.minQualifiedCardinality: "min",
    OWL.maxQualifiedCardinality: "max",
    OWL.qualifiedCardinality: "exactly",
}
PLAIN_NUMBERS = (XSD.integer, XSD.decimal, XSD.boolean)


def is_builtin(term: Node) -> bool:
    """A term of the RDF, RDFS, OWL or XSD vocabulary (never an entity of the ontology)."""
    return isinstance(term, URIRef) and str(term).startswith(BUILTIN)


@dataclass(frozen=True)
class Axiom:
    """One axiom: its rendering (its identity), its triples, and what it is about.

    ``about`` holds the named entities the axiom states something of (its subject, and
    both sides of a symmetric axiom); ``signature`` every entity it mentions. ``kind`` is
    ``declaration``, ``logical`` or ``annotation``; ``predicate`` the RDF property that
    states it (``rdf:type`` for the n-ary axioms held by a blank node).
    """

    text: str
    kind: str
    predicate: URIRef
    triples: frozenset[tuple[Node, Node, Node]]
    about: frozenset[URIRef]
    signature: frozenset[URIRef]


class Renderer:
    """Renders terms and class expressions of one graph in Manchester-like syntax.

    Names are shortened with the prefixes given (the longest namespace wins); the
    ``default`` namespace is dropped altogether, so ``lbp:PatientCase`` reads
    ``PatientCase``.
    """

    def __init__(self, graph: Graph, prefixes: dict[str, str], default: str | None = None):
        self.g = graph
        self.namespaces = sorted(((ns, p) for p, ns in prefixes.items()), key=lambda x: -len(x[0]))
        self.default = default

    # -- terms ----------------------------------------------------------------------
    def name(self, term: Node) -> str:
        if isinstance(term, Literal):
            return self.literal(term)
        if isinstance(term, BNode):
            return self.expression(term)
        iri = str(term)
        if self.default and iri.startswith(self.default) and "/" not in iri[len(self.default) :]:
            return iri[len(self.default) :]
        for ns, prefix in self.namespaces:
            local = iri[len(ns) :]
            if iri.startswith(ns) and local and all(c.isalnum() or c in "-_." for c in local):
                return f"{prefix}:{local}"
        return f"<{iri}>"

    def literal(self, value: Literal) -> str:
        if value.datatype in PLAIN_NUMBERS:
            return str(value)
        text = json.dumps(str(value), ensure_ascii=False)
        if value.language:
            return f"{text}@{value.language}"
        if value.datatype and value.datatype != XSD.string:
            return f"{text}^^{self.name(value.datatype)}"
        return text

    # -- class expressions and other blank-node structures ------------------------------
    def expression(self, node: Node, nested: bool = False) -> str:
        """A class expression or data range; other blank nodes in a generic ``[ … ]`` form.
        A compound expression inside another is parenthesised."""
        if not isinstance(node, BNode):
            return self.name(node)
        built = self._construct(node)
        if built is None:
            return self._generic(node)
        text, atomic = built
        return f"({text})" if nested and not atomic else text

    def _items(self, head: Node) -> list[Node]:
        return list(Collection(self.g, head)) if head != RDF.nil else []

    def _construct(self, node: BNode) -> tuple[str, bool] | None:
        """The Manchester form of a known construct and whether it is atomic (needs no
        parentheses), or None when the node holds anything else, so that nothing it says
        is left out of the rendering."""
        g = self.g
        preds = {p for p in g.predicates(node) if p != RDF.type}
        if set(g.objects(node, RDF.type)) - {OWL.Class, OWL.Restriction, RDFS.Datatype}:
            return None
        if preds == {OWL.intersectionOf} or preds == {OWL.unionOf}:
            op = " and " if OWL.intersectionOf in preds else " or "
            items = self._items(g.value(node, next(iter(preds))))
            # Named operands first, as Protégé shows them; then by text.
            ordered = sorted((isinstance(i, BNode), self.expression(i, nested=True)) for i in items)
            return op.join(text for _, text in ordered), False
        if preds == {OWL.complementOf} or preds == {OWL.datatypeComplementOf}:
            return "not " + self.expression(g.value(node, next(iter(preds))), nested=True), False
        if preds == {OWL.oneOf}:
            names = sorted(self.name(i) for i in self._items(g.value(node, OWL.oneOf)))
            return "{" + ", ".join(names) + "}", True
        if preds == {OWL.onDatatype, OWL.withRestrictions}:
            facets = []
            for facet in self._items(g.value(node, OWL.withRestrictions)):
                pairs = list(g.predicate_objects(facet))
                if len(pairs) != 1 or pairs[0][0] not in FACETS:
                    return None
                facets.append(f"{FACETS[pairs[0][0]]} {self.name(pairs[0][1])}")
            return f"{self.name(g.value(node, OWL.onDatatype))}[{', '.join(facets)}]", True
        if OWL.onProperty in preds and (text := self._restriction(node, preds)) is not None:
            return text, False
        return None

    def _restriction(self, node: BNode, preds: set[Node]) -> str | None:
        g = self.g
        prop = self.name(g.value(node, OWL.onProperty))
        rest = preds - {OWL.onProperty}
        simple = {OWL.someValuesFrom: "some", OWL.allValuesFrom: "only", OWL.hasValue: "value"}
        if len(rest) == 1 and (kind := next(iter(rest))) in simple:
            return f"{prop} {simple[kind]} {self.expression(g.value(node, kind), nested=True)}"
        if rest == {OWL.hasSelf}:
            return f"{prop} Self"
        for card, word in CARDINALITIES.items():
            qualifier = rest - {card}
            if card in rest and qualifier <= {OWL.onClass, OWL.onDataRange}:
                filler = (
                    f" {self.expression(g.value(node, q), nested=True)}"
                    if (q := next(iter(qualifier), None))
                    else ""
                )
                return f"{prop} {word} {g.value(node, card)}{filler}"
        return None

    def _generic(self, node: BNode) -> str:
        if (node, RDF.first, None) in self.g or node == RDF.nil:
            return "(" + " ".join(self.name(i) for i in self._items(node)) + ")"
        parts = sorted(f"{self.name(p)} {self.name(o)}" for p, o in self.g.predicate_objects(node))
        return "[" + " ; ".join(parts) + "]"


def _closure(graph: Graph, node: Node, seen: set[Node]) -> Iterator[tuple[Node, Node, Node]]:
    """Every triple reachable from a blank node through blank nodes."""
    if not isinstance(node, BNode) or node in seen:
        return
    seen.add(node)
    for p, o in graph.predicate_objects(node):
        yield node, p, o
        yield from _closure(graph, o, seen)


class _Splitter:
    def __init__(self, graph: Graph, renderer: Renderer):
        self.g = graph
        self.r = renderer
        self.assertion_props = set(graph.subjects(RDF.type, OWL.ObjectProperty))
        self.assertion_props |= set(graph.subjects(RDF.type, OWL.DatatypeProperty))

    def axiom(
        self,
        triples: Iterable[tuple[Node, Node, Node]],
        head: tuple[Node, Node, Node],
        rendered: tuple[str, str] | None = None,
    ) -> Axiom:
        """The axiom of ``triples``, stated by the ``head`` triple; rendered from the head
        unless ``rendered`` gives its kind and text."""
        triples = frozenset(triples)
        signature = frozenset(
            t for triple in triples for t in triple if isinstance(t, URIRef) and not is_builtin(t)
        )
        s, p, o = head
        kind, text = rendered or self._render(s, p, o)
        if isinstance(s, BNode):
            about = signature
        elif p in SYMMETRIC:
            about = frozenset(x for x in (s, o) if isinstance(x, URIRef) and not is_builtin(x))
        else:
            about = frozenset({s})
        return Axiom(text, kind, p, triples, about, signature)

    def _render(self, s: Node, p: Node, o: Node) -> tuple[str, str]:
        r = self.r
        subject = r.expression(s)
        if p == RDF.type and o in DECLARATION_TYPES:
            return "declaration", f"{DECLARATION_TYPES[o]}: {subject}"
        if p == RDF.type and o in CHARACTERISTICS:
            return "logical", f"{subject} Characteristics: {CHARACTERISTICS[o]}"
        if p == RDF.type:
            return "logical", f"{subject} Types: {r.expression(o)}"
        if p in (OWL.propertyChainAxiom, OWL.hasKey, OWL.disjointUnionOf):
            items = Collection(self.g, o)
            joiner = " o " if p == OWL.propertyChainAxiom else ", "
            return "logical", f"{subject} {LOGICAL_KEYWORDS[p]}: {joiner.join(r.name(i) for i in items)}"
        if p in LOGICAL_KEYWORDS:
            return "logical", f"{subject} {LOGICAL_KEYWORDS[p]}: {r.expression(o)}"
        if p in self.assertion_props:
            return "logical", f"{subject} Facts: {r.name(p)} {r.expression(o)}"
        return "annotation", f"{subject} Annotations: {r.name(p)} {r.expression(o)}"

    def root(self, node: BNode) -> Axiom:
        """An axiom held by a blank node that nothing points at: an n-ary axiom, an
        annotated (reified) axiom, a general class axiom, or anything else as it is."""
        g = self.g
        triples = list(_closure(g, node, set()))
        for kind, (keyword, members) in NARY.items():
            if (node, RDF.type, kind) in g and (head := g.value(node, members)) is not None:
                names = ", ".join(sorted(self.r.name(m) for m in Collection(g, head)))
                return self.axiom(triples, (node, RDF.type, kind), ("logical", f"{keyword}: {names}"))
        if (node, RDF.type, OWL.Axiom) in g:
            source = (g.value(node, OWL.annotatedSource), g.value(node, OWL.annotatedProperty))
            _, base = self._render(*source, g.value(node, OWL.annotatedTarget))
            notes = sorted(
                f"{self.r.name(p)} {self.r.name(o)}"
                for p, o in g.predicate_objects(node)
                if p not in (RDF.type, OWL.annotatedSource, OWL.annotatedProperty, OWL.annotatedTarget)
            )
            text = f"({base}) Annotations: {', '.join(notes)}"
            return self.axiom(triples, (node, RDF.type, OWL.Axiom), ("annotation", text))
        for p, o in g.predicate_objects(node):
            if p in LOGICAL_KEYWORDS:  # a general class axiom
                return self.axiom(triples, (node, p, o))
        return self.axiom(triples, (node, RDF.type, OWL.Thing), ("annotation", self.r.expression(node)))


def split(graph: Graph, renderer: Renderer) -> list[Axiom]:
    """Every axiom of the graph, once each (the same rendering twice is one axiom)."""
    splitter = _Splitter(graph, renderer)
    found: dict[str, Axiom] = {}
    for s, p, o in graph:
        if isinstance(s, URIRef) and p != OWL.imports:
            ax = splitter.axiom([(s, p, o), *_closure(graph, o, set())], (s, p, o))
            found.setdefault(ax.text, ax)
    referenced = {o for o in graph.objects() if isinstance(o, BNode)}
    for s in {s for s in graph.subjects() if isinstance(s, BNode)} - referenced:
        ax = splitter.root(s)
        found.setdefault(ax.text, ax)
    return sorted(found.values(), key=lambda a: a.text)


def prefixes_of(*graphs: Graph) -> dict[str, str]:
    """The prefixes bound in all the graphs (the first binding of a prefix wins), so that
    renderers of two versions of an ontology name every term the same way."""
    prefixes: dict[str, str] = {}
    for graph in graphs:
        for prefix, ns in graph.namespaces():
            if prefix and str(ns) not in prefixes.values():
                prefixes.setdefault(prefix, str(ns))
    return prefixes
