"""Ontology hygiene in the spirit of ROBOT's default report (``robot report``).

Rule ids and levels follow ROBOT's ``report_profile.txt`` where ROBOT has the rule
(missing_label ERROR, missing_definition WARN, duplicate_label ERROR, ...), with the
project's annotation properties in place of OBO's (``skos:definition`` for IAO's
definition). Three deliberate departures, each stated where it is made: a label shared by
terms of *different* kinds (a class and a property) is a WARN, not an ERROR; the verbatim
text of Web Annotation selectors is exempt from the whitespace rule; and references to
undeclared terms, which ROBOT leaves to other commands, are an ERROR here, because a
misspelt class in a definition makes a criterion silently never fire.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from rdflib import OWL, RDF, RDFS, BNode, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection
from rdflib.namespace import DCTERMS, SKOS
from rdflib.term import Node

from .axioms import is_builtin
from .report import Level, Result

OA = Namespace("http://www.w3.org/ns/oa#")
VANN = Namespace("http://purl.org/vocab/vann/")
# Values quoted verbatim from a document: their whitespace is part of the quote.
VERBATIM = {OA.exact, OA.prefix, OA.suffix}
# Objects of these are not terms of the ontology: concepts of other terminologies, other
# ontology documents, and the parts of a reified axiom (stated again as a plain triple).
NOT_TERMS = {SKOS.exactMatch, SKOS.closeMatch, SKOS.broadMatch, SKOS.narrowMatch, SKOS.relatedMatch}
NOT_TERMS |= {OWL.imports, OWL.versionIRI, OWL.priorVersion, OWL.backwardCompatibleWith, OWL.incompatibleWith}
NOT_TERMS |= {OWL.annotatedSource, OWL.annotatedProperty, OWL.annotatedTarget}
# Where an IRI is used with a logical meaning (OWL 2 mapping to RDF).
LOGICAL_OBJECTS = {
    RDFS.subClassOf,
    OWL.equivalentClass,
    OWL.disjointWith,
    OWL.someValuesFrom,
    OWL.allValuesFrom,
    OWL.onClass,
    OWL.complementOf,
    RDFS.domain,
    RDFS.range,
    OWL.onProperty,
    RDFS.subPropertyOf,
    OWL.inverseOf,
    OWL.equivalentProperty,
    OWL.propertyDisjointWith,
    OWL.hasValue,
    OWL.onDatatype,
    OWL.sameAs,
    OWL.differentFrom,
    RDF.type,
}
LOGICAL_LISTS = {
    OWL.intersectionOf,
    OWL.unionOf,
    OWL.oneOf,
    OWL.distinctMembers,
    OWL.members,
    OWL.propertyChainAxiom,
    OWL.hasKey,
    OWL.disjointUnionOf,
}
KINDS = {
    OWL.Class: "class",
    RDFS.Class: "class",
    OWL.ObjectProperty: "object property",
    OWL.DatatypeProperty: "data property",
    OWL.AnnotationProperty: "annotation property",
    OWL.Ontology: "ontology",
}
STRUCTURAL = {
    RDF.type,
    OWL.equivalentClass,
    OWL.disjointWith,
    OWL.equivalentProperty,
    OWL.sameAs,
    OWL.differentFrom,
    OWL.inverseOf,
}


class Hygiene:
    """The rules over one merged ontology graph; ``results()`` runs them all."""

    def __init__(self, graph: Graph):
        self.g = graph
        self.deprecated = {s for s, o in graph.subject_objects(OWL.deprecated) if str(o).lower() == "true"}
        self.typed = set(graph.subjects(RDF.type, None))
        self.ontologies = set(graph.subjects(RDF.type, OWL.Ontology))

    def name(self, term: Node) -> str:
        return self.g.namespace_manager.normalizeUri(term) if isinstance(term, URIRef) else str(term)

    def kind(self, term: Node) -> str:
        for t in self.g.objects(term, RDF.type):
            if t in KINDS:
                return KINDS[t]
        if (term, RDFS.subClassOf, None) in self.g or (term, OWL.equivalentClass, None) in self.g:
            return "class"
        return "individual"

    def _entities(self) -> Iterator[URIRef]:
        """Named subjects that say something beyond their type (as ROBOT's queries do),
        other than ontologies and deprecated terms."""
        for s in sorted({s for s in self.g.subjects() if isinstance(s, URIRef)}):
            if s in self.ontologies or s in self.deprecated:
                continue
            yield s

    def results(self) -> list[Result]:
        return [
            *self.labels(),
            *self.definitions(),
            *self.whitespace(),
            *self.ontology_metadata(),
            *self.references(),
            *self.equivalent_classes(),
        ]

    # -- labels -----------------------------------------------------------------------
    def labels(self) -> Iterator[Result]:
        g = self.g
        for s in self._entities():
            if g.value(s, RDFS.label) is None and any(p != RDF.type for p in g.predicates(s)):
                yield Result(Level.ERROR, "missing_label", self.name(s), "has no rdfs:label")
            per_language: dict[str | None, int] = defaultdict(int)
            for label in g.objects(s, RDFS.label):
                per_language[getattr(label, "language", None)] += 1
            for language, n in per_language.items():
                if n > 1:
                    yield Result(
                        Level.ERROR,
                        "multiple_labels",
                        self.name(s),
                        f"has {n} rdfs:label values in {language}",
                    )
        holders: dict[Literal, set[URIRef]] = defaultdict(set)
        for s, label in g.subject_objects(RDFS.label):
            if isinstance(s, URIRef):
                holders[label].add(s)
        for label, terms in sorted(holders.items()):
            if len(terms) < 2:
                continue
            by_kind: dict[str, list[URIRef]] = defaultdict(list)
            for t in sorted(terms):
                by_kind[self.kind(t)].append(t)
            names = ", ".join(self.name(t) for t in sorted(terms))
            text = f'"{label}"@{label.language}' if label.language else f'"{label}"'
            if any(len(same) > 1 for same in by_kind.values()):
                yield Result(Level.ERROR, "duplicate_label", names, f"share the label {text}")
            else:  # a class and a property may share a word: position tells them apart
                kinds = ", ".join(sorted(by_kind))
                yield Result(
                    Level.WARN,
                    "shared_label",
                    names,
                    f"terms of different kinds ({kinds}) share the label {text}",
                )

    # -- definitions --------------------------------------------------------------------
    def definitions(self) -> Iterator[Result]:
        g = self.g
        holders: dict[Literal, set[URIRef]] = defaultdict(set)
        for s in self._entities():
            definitions = list(g.objects(s, SKOS.definition))
            for d in definitions:
                holders[d].add(s)
                if str(d)[:1].islower():
                    yield Result(
                        Level.INFO, "lowercase_definition", self.name(s), "definition starts in lower case"
                    )
            languages = [getattr(d, "language", None) for d in definitions]
            for language in sorted({lang for lang in languages if languages.count(lang) > 1}, key=str):
                yield Result(
                    Level.ERROR,
                    "multiple_definitions",
                    self.name(s),
                    f"has several definitions in {language}",
                )
            individual = (s, RDF.type, OWL.NamedIndividual) in g
            describes = any(p not in STRUCTURAL for p in g.predicates(s))
            if not definitions and not individual and describes:
                yield Result(Level.WARN, "missing_definition", self.name(s), "has no skos:definition")
        for definition, terms in sorted(holders.items()):
            if len(terms) > 1:
                names = ", ".join(self.name(t) for t in sorted(terms))
                yield Result(
                    Level.ERROR,
                    "duplicate_definition",
                    names,
                    f"share the definition {str(definition)[:80]!r}",
                )

    # -- whitespace ---------------------------------------------------------------------
    def whitespace(self) -> Iterator[Result]:
        for s, p, o in sorted(self.g, key=lambda t: (str(t[0]), str(t[1]), str(t[2]))):
            if not isinstance(o, Literal) or p in VERBATIM or not isinstance(o.value, str | None):
                continue
            text = str(o)
            if p == RDFS.label and (text != text.strip() or "  " in text or any(c in text for c in "\n\r\t")):
                yield Result(
                    Level.ERROR,
                    "label_whitespace",
                    self.name(s),
                    f"label {text!r} has leading, trailing, doubled or non-space whitespace",
                )
            elif p != RDFS.label and text != text.strip():
                yield Result(
                    Level.WARN,
                    "annotation_whitespace",
                    self.name(s),
                    f"{self.name(p)} has leading or trailing whitespace",
                )

    # -- ontology metadata ----------------------------------------------------------------
    def ontology_metadata(self) -> Iterator[Result]:
        required = (
            (DCTERMS.title, "missing_ontology_title", "dcterms:title"),
            (DCTERMS.description, "missing_ontology_description", "dcterms:description"),
            (DCTERMS.license, "missing_ontology_license", "dcterms:license"),
        )
        for ontology in sorted(self.ontologies):
            for prop, rule, label in required:
                if self.g.value(ontology, prop) is None:
                    yield Result(Level.ERROR, rule, self.name(ontology), f"the ontology has no {label}")

    # -- references -----------------------------------------------------------------------
    def _logical_uses(self) -> Iterator[tuple[Node, Node, URIRef]]:
        """(subject, predicate, term) for every IRI used with a logical meaning."""
        g = self.g
        for s, p, o in g:
            if p in LOGICAL_OBJECTS and isinstance(o, URIRef):
                yield s, p, o
            elif p in LOGICAL_LISTS and isinstance(o, BNode):
                for item in Collection(g, o):
                    if isinstance(item, URIRef):
                        yield s, p, item

    def _owner(self, node: Node) -> Node:
        """The named term a blank node (a restriction, a list) belongs to."""
        seen = set()
        while isinstance(node, BNode) and node not in seen:
            seen.add(node)
            parent = next(self.g.subjects(None, node), None)
            if parent is None:
                break
            node = parent
        return node

    def references(self) -> Iterator[Result]:
        g = self.g
        project = next(g.objects(None, VANN.preferredNamespaceUri), None)  # the ontology's own namespace
        uses = list(self._logical_uses())
        for s, p, o in g:
            in_project = project is not None and isinstance(o, URIRef) and str(o).startswith(str(project))
            if in_project and p not in NOT_TERMS and p not in LOGICAL_OBJECTS:
                uses.append((s, p, o))
            if project is not None and str(p).startswith(str(project)):
                uses.append((s, RDF.predicate, p))
        reported = set()
        for s, p, term in uses:
            if is_builtin(term):
                continue
            owner = self._owner(s)
            key = (owner, term)
            if key in reported:
                continue
            where = "as a property" if p == RDF.predicate else f"in {self.name(p)}"
            if term not in self.typed:
                reported.add(key)
                yield Result(
                    Level.ERROR,
                    "undeclared_reference",
                    self.name(owner),
                    f"refers to {self.name(term)} ({where}), which is not declared (it has no rdf:type)",
                )
            elif term in self.deprecated and owner not in self.deprecated and p != OWL.deprecated:
                reported.add(key)
                yield Result(
                    Level.ERROR,
                    "deprecated_reference",
                    self.name(owner),
                    f"refers to the deprecated term {self.name(term)} ({where})",
                )

    # -- equivalent classes -----------------------------------------------------------------
    def equivalent_classes(self) -> Iterator[Result]:
        g = self.g
        for cls in sorted({s for s in g.subjects(OWL.equivalentClass, None) if isinstance(s, URIRef)}):
            definitions = [d for d in g.objects(cls, OWL.equivalentClass) if g.value(d, OWL.unionOf) is None]
            if len(definitions) > 1:
                yield Result(
                    Level.ERROR,
                    "multiple_equivalent_classes",
                    self.name(cls),
                    f"has {len(definitions)} owl:equivalentClass definitions: combine them into one",
                )
