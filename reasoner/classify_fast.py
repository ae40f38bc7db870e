"""Fast engine: criterion membership by SPARQL leaves and per-case formulas.

The defined classes of the ontology are compiled (``definitions``) into formulas over
leaves. Each distinct leaf becomes one SPARQL SELECT run by pyoxigraph over the store
that holds the knowledge base and the cases; a case is a member of a class when the
class's formula holds over the leaves true for it. OWL's datatype semantics are kept:
numbers compare by value across xsd:decimal and its integer subtypes, never with
xsd:double or xsd:float, and a facet on xsd:integer only admits integral values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import pyoxigraph as ox
from rdflib import Literal, URIRef

from .cases import term_key
from .definitions import DECIMAL_FAMILY, INTEGER_FAMILY, And, Formula, Leaf, leaves

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
SUBCLASS = "http://www.w3.org/2000/01/rdf-schema#subClassOf"


class Fact(NamedTuple):
    """One patient fact: the case has ``value`` for ``prop``."""

    prop: str
    value: ox.NamedNode | ox.Literal | ox.BlankNode


def _iri(term) -> str:
    return f"<{term}>"


def _literal_sparql(value: Literal) -> str:
    """An rdflib literal in SPARQL syntax (pyoxigraph writes it in N-Triples form)."""
    datatype = ox.NamedNode(str(value.datatype)) if value.datatype else None
    return str(ox.Literal(str(value), datatype=datatype, language=value.language))


def _in(var: str, iris: Iterable[str]) -> str:
    return f"{var} IN ({', '.join(_iri(i) for i in iris)})"


def leaf_query(leaf: Leaf) -> str:
    """The SPARQL SELECT (?case, ?p, ?o) that finds the cases for which ``leaf`` holds."""
    props = f"VALUES ?p {{ {' '.join(_iri(p) for p in leaf.properties)} }}" if leaf.properties else ""
    if leaf.kind == "type":
        return f"SELECT ?case WHERE {{ ?case <{RDF_TYPE}>/<{SUBCLASS}>* {_iri(leaf.cls)} }}"
    if leaf.kind == "value":
        if isinstance(leaf.value, URIRef):
            return f"SELECT ?case ?p ?o WHERE {{ {props} ?case ?p ?o . FILTER(?o = {_iri(leaf.value)}) }}"
        value = leaf.value
        family = ""
        if value.datatype in DECIMAL_FAMILY:
            family = f" && isLiteral(?o) && {_in('datatype(?o)', DECIMAL_FAMILY)}"
        return (
            f"SELECT ?case ?p ?o WHERE {{ {props} ?case ?p ?o . "
            f"FILTER(isLiteral(?o) && ?o = {_literal_sparql(value)}{family}) }}"
        )
    if leaf.kind == "some":
        # Members of the class first (few), then the cases pointing at them.
        return (
            f"SELECT ?case ?p ?o WHERE {{ {{ SELECT DISTINCT ?o WHERE {{ ?o <{RDF_TYPE}>/<{SUBCLASS}>* "
            f"{_iri(leaf.cls)} }} }} {props} ?case ?p ?o }}"
        )
    if leaf.kind == "any":
        return f"SELECT ?case ?p ?o WHERE {{ {props} ?case ?p ?o }}"
    # facets: a value of the right datatype family within the bounds
    if leaf.datatype in DECIMAL_FAMILY:
        family = INTEGER_FAMILY if leaf.datatype in INTEGER_FAMILY else DECIMAL_FAMILY
        conditions = ["isLiteral(?o)", _in("datatype(?o)", DECIMAL_FAMILY)]
        if family is INTEGER_FAMILY:
            conditions.append("?o = FLOOR(?o)")
        conditions += [f"?o {op} {bound}" for op, bound in leaf.facets]
    else:
        conditions = ["isLiteral(?o)", f"datatype(?o) = {_iri(leaf.datatype)}"]
    return f"SELECT ?case ?p ?o WHERE {{ {props} ?case ?p ?o . FILTER({' && '.join(conditions)}) }}"


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


def classify(store: ox.Store, formulas: dict[URIRef, Formula], cases: Iterable[str]) -> dict[str, Membership]:
    """Membership of each case in every defined class, with the facts behind it."""
    wanted = set(cases)
    distinct = {leaf for formula in formulas.values() for leaf in leaves(formula)}
    leaf_cases: dict[Leaf, set[str]] = {}
    facts: dict[Leaf, dict[str, list[Fact]]] = {}
    for leaf in distinct:
        holding: set[str] = set()
        leaf_facts: dict[str, list[Fact]] = defaultdict(list)
        with_facts = leaf.kind != "type"
        rows = store.query(leaf_query(leaf))
        if not with_facts:
            holding = {term_key(row[0]) for row in rows}
        else:
            for case, prop, value in rows:
                key = term_key(case)
                holding.add(key)
                leaf_facts[key].append(Fact(prop.value, value))
        leaf_cases[leaf] = holding & wanted
        facts[leaf] = leaf_facts
    result = {case: Membership({}) for case in wanted}
    memo: dict = {}
    for cls, formula in formulas.items():
        for case in _members(formula, leaf_cases, memo):
            met: list[Fact] = []
            for leaf in _met_leaves(formula, case, leaf_cases, memo):
                for fact in facts[leaf].get(case, ()):
                    if fact not in met:
                        met.append(fact)
            result[case].classes[str(cls)] = sorted(met, key=_fact_order)  # stable across batches
    return result
