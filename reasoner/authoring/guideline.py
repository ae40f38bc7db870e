"""Checks specific to a guideline knowledge base: criteria, their sources, their overlap.

A *criterion* here is what the engines decide membership of: a named class with an
``owl:equivalentClass`` definition (imaging criteria and rules alike).
A *source statement* is a node with a Web Annotation text quote selector. Both notions
are read from the graph, so no criterion or statement is named in this module.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from rdflib import OWL, RDFS, Graph, URIRef
from rdflib.namespace import PROV

from ..pipeline.definitions import And, Formula, Leaf
from ..pipeline.sources import read_quotes
from .report import Level, Result


def criteria(graph: Graph) -> list[URIRef]:
    return sorted({c for c in graph.subjects(OWL.equivalentClass, None) if isinstance(c, URIRef)})


def citing_properties(graph: Graph) -> set[URIRef]:
    """``prov:wasDerivedFrom`` and every property declared below it or below
    ``prov:wasInfluencedBy`` (such as a "qualified by" caveat link)."""
    found = {PROV.wasDerivedFrom}
    for top in (PROV.wasDerivedFrom, PROV.wasInfluencedBy):
        found |= {p for p in graph.transitive_subjects(RDFS.subPropertyOf, top) if isinstance(p, URIRef)}
    return found


def _name(graph: Graph, term) -> str:
    return graph.namespace_manager.normalizeUri(term)


def source_results(graph: Graph) -> list[Result]:
    """criterion_without_source (ERROR): a criterion derived from no source statement;
    uncited_statement (WARN): a statement that no term derives from or is qualified by."""
    statements = {q.statement for q in read_quotes(graph)}
    results = []
    for cls in criteria(graph):
        if not statements & set(graph.objects(cls, PROV.wasDerivedFrom)):
            results.append(
                Result(
                    Level.ERROR,
                    "criterion_without_source",
                    _name(graph, cls),
                    "the criterion cites no source statement: add prov:wasDerivedFrom <a statement>",
                )
            )
    cited = {o for p in citing_properties(graph) for o in graph.objects(None, p)}
    for statement in sorted(statements - cited):
        results.append(
            Result(
                Level.WARN,
                "uncited_statement",
                _name(graph, statement),
                "no term cites this source statement (prov:wasDerivedFrom or a qualifying link)",
            )
        )
    return results


def _canonical(formula: Formula):
    """A formula with the order of its operands forgotten, so equal formulas compare equal."""
    if isinstance(formula, Leaf):
        return formula
    return (type(formula) is And, frozenset(_canonical(p) for p in formula.parts))


def equivalent_results(graph: Graph, groups: Iterable[Iterable[URIRef]], how: str) -> list[Result]:
    """equivalent_criteria (WARN): criteria that can never differ, as ``how`` found them."""
    return [
        Result(
            Level.WARN,
            "equivalent_criteria",
            ", ".join(_name(graph, c) for c in sorted(group)),
            f"these criteria can never differ ({how}): merge them, or make the intended difference explicit",
        )
        for group in groups
    ]


def identical_formulas(formulas: dict[URIRef, Formula]) -> list[tuple[URIRef, ...]]:
    """Groups of criteria whose compiled membership formulas are the same."""
    by_formula: dict[object, list[URIRef]] = defaultdict(list)
    for cls, formula in formulas.items():
        by_formula[_canonical(formula)].append(cls)
    return sorted(tuple(sorted(group)) for group in by_formula.values() if len(group) > 1)
