"""Fast engine: criterion membership by leaf tests on each fact and per-case formulas.

The defined classes of the ontology are compiled (``definitions``) into formulas over
leaves. A leaf is a condition on one fact of a case (a told type, a property value, a
value in a class, a number within datatype facets), so whether a fact satisfies a leaf
depends only on the fact: each distinct (property, value) pair of a batch is tested once
and the answer reused for every case that has it. A case is a member of a class when the
class's formula holds over the leaves true for it, computed by set algebra over the
cases of each leaf.

OWL's semantics are kept, not SPARQL's or Python's: numbers compare by value across
xsd:decimal and its integer subtypes, never with xsd:double or xsd:float, an ill-formed
literal satisfies nothing, and a facet on xsd:integer only admits integral values. Told
types go through rdfs:subClassOf as stated in the knowledge base and in the batch.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pyoxigraph as ox
from rdflib import RDF, RDFS, XSD, Graph, Literal, URIRef

from .cases import Fact, term_key
from .definitions import DECIMAL_FAMILY, INTEGER_FAMILY, And, Formula, Leaf, UnsupportedConstruct, leaves

RDF_TYPE = str(RDF.type)
SUBCLASS = str(RDFS.subClassOf)
_DECIMALS = frozenset(str(d) for d in DECIMAL_FAMILY)
_INTEGERS = frozenset(str(d) for d in INTEGER_FAMILY)
_INTEGER_LEXICAL = re.compile(r"[+-]?[0-9]+")
_DECIMAL_LEXICAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_BOOLEAN_VALUES = {"true": True, "1": True, "false": False, "0": False}
# Literal datatypes whose value equality is exact here; a hasValue on any other is refused.
_EQUALITY_DATATYPES = {str(XSD.boolean), str(XSD.string), str(RDF.langString)}
_OPERATORS = {
    ">=": Decimal.__ge__,
    ">": Decimal.__gt__,
    "<=": Decimal.__le__,
    "<": Decimal.__lt__,
}


def _number(term) -> Decimal | None:
    """The value of a literal in the xsd:decimal family, None for anything else
    (another datatype, an IRI, or an ill-formed lexical form)."""
    if not isinstance(term, ox.Literal):
        return None
    datatype = term.datatype.value
    if datatype not in _DECIMALS:
        return None
    lexical = _INTEGER_LEXICAL if datatype in _INTEGERS else _DECIMAL_LEXICAL
    if not lexical.fullmatch(term.value):
        return None
    try:
        return Decimal(term.value)
    except InvalidOperation:
        return None


def _same_value(term, value: Literal) -> bool:
    """OWL data value equality between a fact's literal and a hasValue literal."""
    if not isinstance(term, ox.Literal):
        return False
    datatype = str(value.datatype) if value.datatype else str(XSD.string)
    if value.language:
        datatype = str(RDF.langString)
    if datatype in _DECIMALS:
        number = _number(term)
        return number is not None and number == Decimal(str(value))
    if term.datatype.value != datatype:
        return False
    if datatype == str(XSD.boolean):
        found = _BOOLEAN_VALUES.get(term.value)
        return found is not None and found == _BOOLEAN_VALUES.get(str(value))
    if datatype == str(RDF.langString):
        return term.value == str(value) and (term.language or "").lower() == value.language.lower()
    return term.value == str(value)


class Taxonomy:
    """Told types and rdfs:subClassOf edges, with the superclasses of a class memoised.
    A batch's own statements are layered over the knowledge base's, which stay shared."""

    def __init__(
        self,
        edges: Mapping[str, set[str]],
        types: Mapping[str, set[str]],
        batch_types: Mapping[str, set[str]] | None = None,
        supers: dict[str, frozenset[str]] | None = None,
    ):
        self.edges = edges
        self.types = types
        self.batch_types = batch_types or {}
        self._supers = {} if supers is None else supers

    @classmethod
    def from_graph(cls, graph: Graph) -> Taxonomy:
        edges: dict[str, set[str]] = defaultdict(set)
        for sub, sup in graph.subject_objects(RDFS.subClassOf):
            edges[str(sub)].add(str(sup))
        types: dict[str, set[str]] = defaultdict(set)
        for node, cls_ in graph.subject_objects(RDF.type):
            types[str(node)].add(str(cls_))
        return cls(dict(edges), dict(types))

    def with_batch(self, stated: Iterable[tuple[str, Fact]]) -> Taxonomy:
        """This taxonomy plus the types and subclass edges stated in a batch (subject
        and fact)."""
        batch_types: dict[str, set[str]] = defaultdict(set)
        batch_edges: dict[str, set[str]] = defaultdict(set)
        for subject, fact in stated:
            target = batch_edges if fact.prop == SUBCLASS else batch_types
            target[subject].add(term_key(fact.value))
        if not batch_edges:  # the same hierarchy: share the memoised superclasses
            return Taxonomy(self.edges, self.types, batch_types, self._supers)
        edges = {k: set(v) for k, v in self.edges.items()}
        for sub, sups in batch_edges.items():
            edges.setdefault(sub, set()).update(sups)
        return Taxonomy(edges, self.types, batch_types)

    def supers(self, cls: str) -> frozenset[str]:
        """The class and everything it is a subclass of (rdfs:subClassOf*)."""
        found = self._supers.get(cls)
        if found is None:
            seen, todo = {cls}, [cls]
            while todo:
                for sup in self.edges.get(todo.pop(), ()):
                    if sup not in seen:
                        seen.add(sup)
                        todo.append(sup)
            found = self._supers[cls] = frozenset(seen)
        return found

    def is_a(self, node: str, cls: str) -> bool:
        """Whether a told type of ``node`` is ``cls`` or one of its subclasses."""
        return any(
            cls in self.supers(t) for told in (self.types, self.batch_types) for t in told.get(node, ())
        )


@dataclass(frozen=True)
class _Test:
    """A leaf ready to test a fact's value."""

    leaf: Leaf
    iri: ox.NamedNode | None = None

    @classmethod
    def of(cls, leaf: Leaf) -> _Test:
        if leaf.kind == "value" and isinstance(leaf.value, Literal):
            datatype = str(leaf.value.datatype or XSD.string)
            if leaf.value.language:
                datatype = str(RDF.langString)
            if datatype not in _DECIMALS and datatype not in _EQUALITY_DATATYPES:
                raise UnsupportedConstruct(f"owl:hasValue with a literal of datatype <{datatype}>")
        iri = ox.NamedNode(str(leaf.value)) if isinstance(leaf.value, URIRef) else None
        return cls(leaf, iri)

    def holds(self, value, taxonomy: Taxonomy) -> bool:
        leaf = self.leaf
        if leaf.kind == "any":
            return True
        if leaf.kind == "value":
            return value == self.iri if self.iri is not None else _same_value(value, leaf.value)
        if leaf.kind == "some":
            return not isinstance(value, ox.Literal) and taxonomy.is_a(term_key(value), str(leaf.cls))
        # facets: a value of the right datatype family within the bounds
        if str(leaf.datatype) not in _DECIMALS:
            return isinstance(value, ox.Literal) and value.datatype.value == str(leaf.datatype)
        number = _number(value)
        if number is None:
            return False
        if str(leaf.datatype) in _INTEGERS and number != number.to_integral_value():
            return False
        return all(_OPERATORS[op](number, bound) for op, bound in leaf.facets)


@dataclass
class Membership:
    """The classes a case belongs to, with the facts that met each."""

    classes: dict[str, list[Fact]]


def _fact_order(fact: Fact) -> tuple[str, str]:
    return (fact.prop, str(fact.value))


def _members(formula: Formula, leaf_cases: dict[Leaf, set[str]], memo: dict) -> set[str]:
    """The cases satisfying a formula, by set algebra over the leaves' case sets."""
    key = id(formula)
    if key not in memo:
        if isinstance(formula, Leaf):
            memo[key] = leaf_cases.get(formula, set())
        else:
            parts = [_members(p, leaf_cases, memo) for p in formula.parts]
            memo[key] = set.intersection(*parts) if isinstance(formula, And) else set.union(*parts)
    return memo[key]


def _met_leaves(formula: Formula, case: str, leaf_cases: dict[Leaf, set[str]], memo: dict) -> list[Leaf]:
    """The leaves that make the formula true for a member case (every conjunct, every
    true disjunct)."""
    if isinstance(formula, Leaf):
        return [formula]
    return [
        leaf
        for part in formula.parts
        if case in _members(part, leaf_cases, memo)
        for leaf in _met_leaves(part, case, leaf_cases, memo)
    ]


class FastClassifier:
    """The formulas of the defined classes, with their leaves indexed by property."""

    def __init__(self, formulas: dict[URIRef, Formula], knowledge: Graph):
        self.formulas = formulas
        self.taxonomy = Taxonomy.from_graph(knowledge)
        # Leaves are numbered: the per-fact loop indexes lists instead of hashing leaves.
        self.leaves = sorted({leaf for formula in formulas.values() for leaf in leaves(formula)}, key=repr)
        self.type_leaves = [(i, str(leaf.cls)) for i, leaf in enumerate(self.leaves) if leaf.kind == "type"]
        self.by_property: dict[str, list[tuple[int, _Test]]] = defaultdict(list)
        for i, leaf in enumerate(self.leaves):
            if leaf.kind != "type":
                test = _Test.of(leaf)
                for prop in leaf.properties:
                    self.by_property[str(prop)].append((i, test))

    def batch_taxonomy(self, batch: Mapping[str, list[Fact]]) -> Taxonomy:
        """The knowledge base's taxonomy with the types and subclass edges a batch states."""
        return self.taxonomy.with_batch(
            (s, f) for s, facts in batch.items() for f in facts if f.prop in (RDF_TYPE, SUBCLASS)
        )

    def classify(
        self, batch: Mapping[str, list[Fact]], cases: Iterable[str], taxonomy: Taxonomy | None = None
    ) -> dict[str, Membership]:
        """Membership of each case in every defined class, with the facts behind it.
        ``batch`` holds the facts of every subject in the batch, by subject key;
        ``taxonomy`` is its ``batch_taxonomy``, when the caller has it already."""
        wanted = list(cases)
        taxonomy = taxonomy or self.batch_taxonomy(batch)
        holding: list[set[str]] = [set() for _ in self.leaves]
        facts: list[dict[str, list[Fact]]] = [{} for _ in self.leaves]
        # The leaves each fact meets. Keyed by identity: equal facts of a batch are one
        # object (``cases.CaseBatch``), so this tests each distinct fact once without
        # hashing its term; a fact that is not shared is merely tested again.
        tested: dict[int, list[int]] = {}
        by_property = self.by_property
        for case in wanted:
            for fact in batch.get(case, ()):
                met = tested.get(id(fact))
                if met is None:
                    tests = by_property.get(fact.prop, ())
                    met = tested[id(fact)] = [i for i, t in tests if t.holds(fact.value, taxonomy)]
                for i in met:
                    holding[i].add(case)
                    facts[i].setdefault(case, []).append(fact)
            for i, cls in self.type_leaves:
                if taxonomy.is_a(case, cls):
                    holding[i].add(case)
        leaf_cases = dict(zip(self.leaves, holding, strict=True))
        leaf_facts = dict(zip(self.leaves, facts, strict=True))
        result = {case: Membership({}) for case in wanted}
        memo: dict = {}
        for cls, formula in self.formulas.items():
            for case in _members(formula, leaf_cases, memo):
                met_facts: list[Fact] = []
                for leaf in _met_leaves(formula, case, leaf_cases, memo):
                    for fact in leaf_facts[leaf].get(case, ()):
                        if fact not in met_facts:
                            met_facts.append(fact)
                result[case].classes[str(cls)] = sorted(met_facts, key=_fact_order)  # stable across batches
        return result
