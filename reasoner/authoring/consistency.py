"""The HermiT step of ``check``: one JVM run for consistency, unsatisfiable classes and
equivalences between criteria.

Starting the JVM and loading the ontology cost more than the reasoning itself, so every
conclusion ``check`` needs is read from a single classification (through owlready2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rdflib import Graph, URIRef


@dataclass(frozen=True)
class Reasoning:
    consistent: bool
    unsatisfiable: tuple[URIRef, ...] = ()
    equivalent: tuple[tuple[URIRef, ...], ...] = ()
    error: str | None = None


def reason(ontology: Graph, criteria: Iterable[URIRef]) -> Reasoning:
    """Classify once; report unsatisfiable named classes and groups of ``criteria`` that
    HermiT finds equivalent (unsatisfiable ones aside, which are all equivalent to
    owl:Nothing and are reported as such)."""
    import owlready2

    from ..pipeline.classify_hermit import reasoned_world

    try:
        world = reasoned_world(ontology)
    except owlready2.OwlReadyInconsistentOntologyError as exc:
        return Reasoning(consistent=False, error=str(exc) or "HermiT found the ontology inconsistent")
    unsat = tuple(sorted(URIRef(c.iri) for c in world.inconsistent_classes() if getattr(c, "iri", None)))
    unsat = tuple(c for c in unsat if c != URIRef(str(owlready2.Nothing.iri)))
    wanted = {str(c) for c in criteria} - {str(c) for c in unsat}
    groups: set[tuple[URIRef, ...]] = set()
    for iri in wanted:
        cls = world[iri]
        if cls is None:
            continue
        same = {iri} | {c.iri for c in cls.INDIRECT_equivalent_to if getattr(c, "iri", None) in wanted}
        if len(same) > 1:
            groups.add(tuple(sorted(URIRef(c) for c in same)))
    return Reasoning(consistent=True, unsatisfiable=unsat, equivalent=tuple(sorted(groups)))
