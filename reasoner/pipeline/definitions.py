"""Read the OWL class definitions of the knowledge base into boolean formulas.

Every named class with an ``owl:equivalentClass`` definition is turned into a formula
over *leaves*: conditions on one fact of a patient case (a told type, a property value,
a value in a class, a number within datatype facets). The fast engine tests each fact
against the leaves and evaluates the formulas per case; explanations use the leaves that
held.

The compiler handles the fragment the criteria use (intersection, union, someValuesFrom
and hasValue on object and data properties, datatype facets, named-class references) and
refuses anything else with an error naming the construct and the class, so that a
criterion it cannot evaluate exactly is never answered wrongly.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property

from rdflib import OWL, RDF, RDFS, XSD, BNode, Graph, Literal, URIRef
from rdflib.collection import Collection

FACETS = {
    XSD.minInclusive: ">=",
    XSD.minExclusive: ">",
    XSD.maxInclusive: "<=",
    XSD.maxExclusive: "<",
}
# OWL 2 numeric datatypes whose value spaces nest inside xsd:decimal (OWL compares them
# by value); xsd:double and xsd:float are disjoint from these.
DECIMAL_FAMILY = (
    XSD.decimal,
    XSD.integer,
    XSD.nonNegativeInteger,
    XSD.nonPositiveInteger,
    XSD.positiveInteger,
    XSD.negativeInteger,
    XSD.long,
    XSD.int,
    XSD.short,
    XSD.byte,
    XSD.unsignedLong,
    XSD.unsignedInt,
    XSD.unsignedShort,
    XSD.unsignedByte,
)
INTEGER_FAMILY = DECIMAL_FAMILY[1:]
DECIMAL_TYPES = frozenset(map(str, DECIMAL_FAMILY))
"""The datatype IRIs of the xsd:decimal family, as strings."""


def stated_numbers(ontology: Graph) -> list[Decimal]:
    """Every number of the xsd:decimal family the ontology states (facet bounds, values),
    in order: all that a case's number can be compared with."""
    found = set()
    for value in ontology.objects():
        if isinstance(value, Literal) and str(value.datatype) in DECIMAL_TYPES:
            try:
                found.add(Decimal(str(value)))
            except InvalidOperation:
                continue
    return sorted(found)


def same_side(a: Decimal, b: Decimal, numbers: Sequence[Decimal]) -> bool:
    """Whether ``a`` and ``b`` compare alike (less, equal, greater) with every one of the
    sorted ``numbers``: then no definition tells them apart."""
    return bisect_left(numbers, a) == bisect_left(numbers, b) and bisect_right(numbers, a) == bisect_right(
        numbers, b
    )


UNSUPPORTED_CLASS_CONSTRUCTS = {
    OWL.complementOf: "owl:complementOf (negation is closed-world: use a SPARQL step)",
    OWL.allValuesFrom: "owl:allValuesFrom",
    OWL.minCardinality: "owl:minCardinality",
    OWL.maxCardinality: "owl:maxCardinality",
    OWL.cardinality: "owl:cardinality",
    OWL.minQualifiedCardinality: "owl:minQualifiedCardinality",
    OWL.maxQualifiedCardinality: "owl:maxQualifiedCardinality",
    OWL.qualifiedCardinality: "owl:qualifiedCardinality",
    OWL.hasSelf: "owl:hasSelf",
    OWL.oneOf: "owl:oneOf as a case class",
    OWL.disjointUnionOf: "owl:disjointUnionOf",
}


class UnsupportedConstruct(Exception):
    """The fast engine cannot evaluate this construct exactly; it refuses instead."""


@dataclass(frozen=True)
class Leaf:
    """One condition on a case, testable on a single fact of it.

    kind: ``type`` (told rdf:type, through rdfs:subClassOf), ``value`` (the property has
    this value), ``some`` (a value of the property is in ``cls``), ``facets`` (a numeric
    value of the property within the facets), ``any`` (the property has some value).
    ``on`` is the property the restriction names; ``properties`` adds its sub- and
    equivalent properties, whose values are values of it too.
    """

    kind: str
    properties: tuple[URIRef, ...] = ()
    on: URIRef | None = None
    cls: URIRef | None = None
    value: URIRef | Literal | None = None
    datatype: URIRef | None = None
    facets: tuple[tuple[str, Decimal], ...] = ()

    @property
    def key(self) -> str:
        return repr(self)

    @cached_property
    def _hash(self) -> int:
        return hash((self.kind, self.properties, self.on, self.cls, self.value, self.datatype, self.facets))

    def __hash__(self) -> int:
        """Computed once: leaves are set members and dictionary keys in every case's
        evaluation, and the generated hash would rebuild the tuple of fields each time."""
        return self._hash


@dataclass(frozen=True)
class And:
    parts: tuple[Formula, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Formula, ...]


Formula = Leaf | And | Or


def leaves(formula: Formula) -> list[Leaf]:
    if isinstance(formula, Leaf):
        return [formula]
    return [leaf for part in formula.parts for leaf in leaves(part)]


def _flatten(formula: Formula) -> Formula:
    if isinstance(formula, Leaf):
        return formula
    kind = type(formula)
    parts: list[Formula] = []
    for part in map(_flatten, formula.parts):
        parts.extend(part.parts if isinstance(part, kind) else [part])
    return parts[0] if len(parts) == 1 else kind(tuple(parts))


def _name(graph: Graph, node) -> str:
    if isinstance(node, URIRef):
        return graph.namespace_manager.normalizeUri(node)
    return "an anonymous class expression"


class DefinitionCompiler:
    """Compiles the defined classes of an ontology graph into formulas."""

    def __init__(self, ontology: Graph):
        self.g = ontology
        self._refuse_global_constructs()
        self.defined: dict[URIRef, BNode | URIRef] = {}
        for cls, definition in ontology.subject_objects(OWL.equivalentClass):
            if isinstance(cls, URIRef):
                if cls in self.defined:
                    raise UnsupportedConstruct(
                        f"{_name(ontology, cls)} has more than one owl:equivalentClass definition"
                    )
                self.defined[cls] = definition
        self._cache: dict[URIRef, Formula] = {}

    # -- checks on the whole ontology -------------------------------------------------
    def _refuse_global_constructs(self) -> None:
        for sub, sup in self.g.subject_objects(RDFS.subClassOf):
            if isinstance(sub, BNode) and (sub, RDF.type, OWL.Class) in self.g:
                raise UnsupportedConstruct(
                    f"a general class axiom (anonymous subclass of {_name(self.g, sup)})"
                )

    def _properties(self, prop, owner: URIRef) -> tuple[URIRef, ...]:
        """A property and all its sub- and equivalent properties, refusing the rest."""
        if not isinstance(prop, URIRef):
            raise UnsupportedConstruct(f"{_name(self.g, owner)}: an inverse or anonymous property expression")
        found, todo = {prop}, [prop]
        while todo:
            p = todo.pop()
            if self.g.value(p, OWL.inverseOf) is not None or (None, OWL.inverseOf, p) in self.g:
                raise UnsupportedConstruct(f"{_name(self.g, owner)}: {_name(self.g, p)} has an owl:inverseOf")
            if (p, RDF.type, OWL.TransitiveProperty) in self.g:
                raise UnsupportedConstruct(f"{_name(self.g, owner)}: {_name(self.g, p)} is transitive")
            if self.g.value(p, OWL.propertyChainAxiom) is not None:
                raise UnsupportedConstruct(
                    f"{_name(self.g, owner)}: {_name(self.g, p)} has an owl:propertyChainAxiom"
                )
            related = [
                *self.g.subjects(RDFS.subPropertyOf, p),
                *self.g.objects(p, OWL.equivalentProperty),
                *self.g.subjects(OWL.equivalentProperty, p),
            ]
            for q in related:
                if q not in found:
                    found.add(q)
                    todo.append(q)
        return tuple(sorted(found))

    # -- class expressions ------------------------------------------------------------
    def formula(self, cls: URIRef) -> Formula:
        """The membership formula of a named class (its definition, or a told type)."""
        return self._named(cls, owner=cls, stack=())

    def _named(self, cls: URIRef, owner: URIRef, stack: tuple[URIRef, ...]) -> Formula:
        if cls in stack:
            raise UnsupportedConstruct(
                f"{_name(self.g, owner)}: cyclic definition through {_name(self.g, cls)}"
            )
        if cls in self._cache:
            return self._cache[cls]
        if cls in self.defined:
            own = self._expr(self.defined[cls], cls, (*stack, cls))
            # A defined class also has every member of a defined class told to be its subclass.
            subs = [s for s in self.g.subjects(RDFS.subClassOf, cls) if s in self.defined and s not in stack]
            formula = (
                _flatten(Or((own, *(self._named(s, owner, (*stack, cls)) for s in subs)))) if subs else own
            )
        else:
            self._check_told_type_is_exact(cls, owner)
            formula = Leaf("type", cls=cls)
        self._cache[cls] = formula
        return formula

    def _check_told_type_is_exact(self, cls: URIRef, owner: URIRef) -> None:
        """A primitive class is tested by told type; that is exact only if every defined
        subclass's definition itself requires the told type as a conjunct."""
        for sub in self.g.transitive_subjects(RDFS.subClassOf, cls):
            if sub != cls and sub in self.defined and not self._requires(sub, cls, ()):
                raise UnsupportedConstruct(
                    f"{_name(self.g, owner)}: {_name(self.g, cls)} is used as a class but its "
                    f"defined subclass {_name(self.g, sub)} does not require it explicitly"
                )

    def _requires(self, defined: URIRef, cls: URIRef, seen: tuple[URIRef, ...]) -> bool:
        """Does the definition of ``defined`` have ``cls`` among its top-level conjuncts
        (directly, or through a named defined class that does)?"""
        if defined in seen:
            return False
        definition = self.defined[defined]
        if isinstance(definition, URIRef):
            conjuncts = [definition]
        elif (members := self.g.value(definition, OWL.intersectionOf)) is not None:
            conjuncts = list(Collection(self.g, members))
        else:
            return False
        return any(
            c == cls or (c in self.defined and self._requires(c, cls, (*seen, defined))) for c in conjuncts
        )

    def _expr(self, node, owner: URIRef, stack: tuple[URIRef, ...]) -> Formula:
        g = self.g
        if isinstance(node, URIRef):
            return self._named(node, owner, stack)
        for construct, label in UNSUPPORTED_CLASS_CONSTRUCTS.items():
            if g.value(node, construct) is not None:
                raise UnsupportedConstruct(f"{_name(g, owner)}: {label}")
        if (members := g.value(node, OWL.intersectionOf)) is not None:
            return _flatten(And(tuple(self._expr(m, owner, stack) for m in Collection(g, members))))
        if (members := g.value(node, OWL.unionOf)) is not None:
            return _flatten(Or(tuple(self._expr(m, owner, stack) for m in Collection(g, members))))
        prop = g.value(node, OWL.onProperty)
        if prop is None:
            raise UnsupportedConstruct(f"{_name(g, owner)}: a class expression of unknown form")
        props = self._properties(prop, owner)
        if (value := g.value(node, OWL.hasValue)) is not None:
            return Leaf("value", props, prop, value=value)
        filler = g.value(node, OWL.someValuesFrom)
        if filler is None:
            raise UnsupportedConstruct(
                f"{_name(g, owner)}: a restriction on {_name(g, prop)} of unsupported kind"
            )
        if filler in (OWL.Thing, RDFS.Literal):
            return Leaf("any", props, prop)
        if (prop, RDF.type, OWL.DatatypeProperty) in g or (filler, RDF.type, RDFS.Datatype) in g:
            return self._data_filler(props, prop, filler, owner)
        if isinstance(filler, URIRef):
            if filler in self.defined:
                raise UnsupportedConstruct(
                    f"{_name(g, owner)}: someValuesFrom a defined class ({_name(g, filler)}) "
                    f"on {_name(g, prop)}"
                )
            return Leaf("some", props, prop, cls=filler)
        raise UnsupportedConstruct(
            f"{_name(g, owner)}: someValuesFrom a complex class expression on {_name(g, prop)}"
        )

    def _data_filler(self, props: tuple[URIRef, ...], prop: URIRef, filler, owner: URIRef) -> Leaf:
        g = self.g
        if isinstance(filler, URIRef):
            return Leaf("facets", props, prop, datatype=filler)
        datatype = g.value(filler, OWL.onDatatype)
        restrictions = g.value(filler, OWL.withRestrictions)
        if datatype is None or restrictions is None:
            raise UnsupportedConstruct(f"{_name(g, owner)}: a data range other than a datatype restriction")
        if datatype not in DECIMAL_FAMILY:
            raise UnsupportedConstruct(f"{_name(g, owner)}: facets on {_name(g, datatype)}")
        facets = []
        for facet_node in Collection(g, restrictions):
            for facet, value in g.predicate_objects(facet_node):
                if facet not in FACETS:
                    raise UnsupportedConstruct(f"{_name(g, owner)}: the facet {_name(g, facet)}")
                try:
                    facets.append((FACETS[facet], Decimal(str(value))))
                except InvalidOperation:
                    raise UnsupportedConstruct(
                        f"{_name(g, owner)}: a non-numeric facet value {value}"
                    ) from None
        return Leaf("facets", props, prop, datatype=datatype, facets=tuple(facets))


def compile_definitions(ontology: Graph) -> dict[URIRef, Formula]:
    """Formulas for every defined class of the ontology."""
    compiler = DefinitionCompiler(ontology)
    return {cls: compiler.formula(cls) for cls in sorted(compiler.defined)}
