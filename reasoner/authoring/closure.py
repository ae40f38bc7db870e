"""Closed categories: ``check``'s closures step.

A category is *closed* by a closure axiom, an ``owl:oneOf`` superclass ("every member of
this category is one of these individuals"). Three-valued evaluation reads the list: a
criterion that asks for ``some`` member of a closed category is *not met* once every
listed member is recorded absent, while over an open category it can only be met or
undetermined. Classification reads the types. The list and the types must therefore say
the same thing, and the rules here check that they do:

closure_missing_member (ERROR)
    an individual typed with a closed category (directly or through a subclass) that its
    ``owl:oneOf`` list omits. OWL has no unique-name assumption, so HermiT infers that it
    is the same individual as one of the listed ones: a case that records it present and
    the listed ones absent is inconsistent under HermiT, while the fast engine counts it
    as a member of the category. The engines disagree.
closure_member_untyped (ERROR)
    a listed individual not typed with the category (nor a subclass). Three-valued
    evaluation asks about it for every criterion that names the category, but recording
    it present meets none of them, because classification reads types: the criterion is
    left undetermined with nothing to ask. A wrong question is worse than none, so this is
    an error, not a warning.
open_category (WARN)
    a criterion's definition asks for ``some`` member of a named class that no closure
    axiom closes: that condition is never ruled out, so the criterion stays undetermined
    until a member is recorded present (unless another of its conditions rules it out).
    Intended for a category whose members the sources do not enumerate; a warning, so
    that it is a decision and not an oversight.

Everything is read from the ontology; no category or finding is named here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rdflib import OWL, RDF, RDFS, BNode, Graph, URIRef
from rdflib.collection import Collection
from rdflib.term import Node

from .axioms import is_builtin
from .guideline import criteria
from .report import Level, Result, plural


@dataclass(frozen=True)
class Closure:
    """One closure axiom: the category and the individuals its ``owl:oneOf`` lists."""

    category: URIRef
    listed: tuple[URIRef, ...]


def closures(graph: Graph) -> list[Closure]:
    """Every ``C rdfs:subClassOf [ owl:oneOf ( … ) ]`` on a named class C, sorted by C."""
    found = []
    for cls, sup in graph.subject_objects(RDFS.subClassOf):
        items = graph.value(sup, OWL.oneOf) if isinstance(cls, URIRef) else None
        if items is not None:
            listed = tuple(m for m in Collection(graph, items) if isinstance(m, URIRef))
            found.append(Closure(cls, listed))
    return sorted(found, key=lambda c: (str(c.category), c.listed))


def typed_members(graph: Graph, cls: URIRef) -> dict[URIRef, URIRef]:
    """Each named individual typed with ``cls`` or a subclass of it, with that type."""
    members: dict[URIRef, URIRef] = {}
    for sub in sorted(c for c in graph.transitive_subjects(RDFS.subClassOf, cls) if isinstance(c, URIRef)):
        for member in sorted(m for m in graph.subjects(RDF.type, sub) if isinstance(m, URIRef)):
            members.setdefault(member, sub)
    return members


def _some_fillers(graph: Graph, node: Node, seen: set[Node]) -> Iterator[tuple[Node, URIRef]]:
    """(property, named class) for each ``someValuesFrom`` a class expression holds,
    through intersections, unions, complements and nested restrictions."""
    if node in seen or not isinstance(node, BNode):
        return
    seen.add(node)
    for connective in (OWL.intersectionOf, OWL.unionOf):
        if (items := graph.value(node, connective)) is not None:
            for item in Collection(graph, items):
                yield from _some_fillers(graph, item, seen)
    yield from _some_fillers(graph, graph.value(node, OWL.complementOf), seen)
    filler = graph.value(node, OWL.someValuesFrom)
    if isinstance(filler, URIRef):
        yield graph.value(node, OWL.onProperty), filler
    elif filler is not None:
        yield from _some_fillers(graph, filler, seen)


class _Closures:
    def __init__(self, graph: Graph):
        self.g = graph
        self.closures = closures(graph)
        self.closed = {c.category for c in self.closures}

    def name(self, term: Node) -> str:
        return self.g.namespace_manager.normalizeUri(term) if isinstance(term, URIRef) else str(term)

    def missing_and_untyped(self) -> Iterator[Result]:
        for closure in self.closures:
            category = self.name(closure.category)
            members = typed_members(self.g, closure.category)
            for member, via in sorted(members.items()):
                if member in closure.listed:
                    continue
                typed = category if via == closure.category else f"{self.name(via)}, a subclass of {category}"
                yield Result(
                    Level.ERROR,
                    "closure_missing_member",
                    self.name(member),
                    f"is typed {typed}, whose owl:oneOf closure omits it: add it to the list. HermiT "
                    "would infer it is the same individual as one of the listed ones (no unique-name "
                    "assumption): a case recording it present and those absent is inconsistent under "
                    "HermiT, while the fast engine counts it as a member",
                )
            for member in closure.listed:
                if member not in members:
                    yield Result(
                        Level.ERROR,
                        "closure_member_untyped",
                        self.name(member),
                        f"is in the owl:oneOf closure of {category} but not typed with it (or a subclass): "
                        "type it, or take it off the list. Three-valued evaluation reads the list and asks "
                        "about it, but recording it present meets no criterion (classification reads "
                        "types), leaving the criterion undetermined",
                    )

    def open_uses(self) -> list[tuple[URIRef, Node, URIRef]]:
        """(criterion, property, category) for each ``some`` over a category no closure
        axiom closes, once per criterion and category."""
        defined = set(criteria(self.g))
        uses = []
        for criterion in sorted(defined):
            named: dict[URIRef, Node] = {}
            seen: set[Node] = set()
            for definition in self.g.objects(criterion, OWL.equivalentClass):
                for prop, filler in _some_fillers(self.g, definition, seen):
                    if filler not in defined | self.closed and self._is_category(prop, filler):
                        named.setdefault(filler, prop)
            uses += [(criterion, prop, filler) for filler, prop in sorted(named.items())]
        return uses

    def open_categories(self, uses: list[tuple[URIRef, Node, URIRef]]) -> Iterator[Result]:
        for criterion, prop, filler in uses:
            category = self.name(filler)
            yield Result(
                Level.WARN,
                "open_category",
                self.name(criterion),
                f"{self.name(prop)} some {category}: {category} has no owl:oneOf closure, so this "
                "condition is never ruled out: the criterion stays undetermined until some member is "
                "recorded present. Close the category if the sources enumerate its members",
            )

    def _is_category(self, prop: Node, filler: URIRef) -> bool:
        """A named class of individuals, not a datatype read by a data property."""
        if is_builtin(filler) or (filler, RDF.type, RDFS.Datatype) in self.g:
            return False
        return (prop, RDF.type, OWL.DatatypeProperty) not in self.g


def closure_results(graph: Graph) -> tuple[list[Result], str]:
    """The closures step: its results and its summary line."""
    found = _Closures(graph)
    uses = found.open_uses()
    results = [*found.missing_and_untyped(), *found.open_categories(uses)]
    listed = sum(len(c.listed) for c in found.closures)
    opened = len({filler for _, _, filler in uses})
    summary = (
        f"{plural(len(found.closed), 'closed category', 'closed categories')} listing "
        f"{plural(listed, 'member')}, {plural(opened, 'open category', 'open categories')} named by criteria"
    )
    return results, summary
