"""Reference engine: full OWL 2 DL classification with HermiT (through owlready2).

Used by authors and to verify the fast engine. Every call builds a fresh owlready2
world from the ontology graph plus the cases, so runs never leak into each other. HermiT
is a JVM process per call, so cases are classified in batches; a batch that turns out
inconsistent (one contradictory case makes the whole ABox inconsistent) is split in
halves until the offending cases are isolated, and the others are still classified.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import OWL, RDF, Graph, URIRef

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsistencyReport:
    consistent: bool
    unsatisfiable: tuple[str, ...] = ()
    error: str | None = None


@dataclass
class Classification:
    """What the reasoner concluded about one case."""

    case: URIRef
    classes: frozenset[URIRef]
    values: dict[URIRef, frozenset[URIRef]] = field(default_factory=dict)


def _owlready():
    # Imported lazily: owlready2 is slow to import and only this engine needs it.
    import owlready2

    return owlready2


def _world_from(graph: Graph):
    """An owlready2 world holding ``graph`` (imports removed: the graph is already merged)."""
    owlready2 = _owlready()
    data = Graph()
    for triple in graph:
        if triple[1] != OWL.imports:
            data.add(triple)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kb.nt"
        data.serialize(path, format="nt", encoding="utf-8")
        world = owlready2.World()
        world.get_ontology(path.as_uri()).load()
    return world


def _run_hermit(world, infer_property_values: bool) -> None:
    owlready2 = _owlready()
    with world.get_ontology("http://lbp-imaging.invalid/inferred/"):
        owlready2.sync_reasoner_hermit(world, infer_property_values=infer_property_values, debug=0)


def check_consistency(ontology: Graph) -> ConsistencyReport:
    """Is the ontology consistent, and which named classes are unsatisfiable?"""
    owlready2 = _owlready()
    world = _world_from(ontology)
    try:
        _run_hermit(world, infer_property_values=False)
    except owlready2.OwlReadyInconsistentOntologyError as exc:
        return ConsistencyReport(consistent=False, error=str(exc))
    unsat = tuple(sorted(c.iri for c in world.inconsistent_classes() if getattr(c, "iri", None)))
    return ConsistencyReport(consistent=True, unsatisfiable=unsat)


def _typed_case_graph(cases: Graph, case_iris: Iterable[URIRef]) -> Graph:
    graph = Graph()
    for triple in cases:
        graph.add(triple)
    for case in case_iris:  # owlready2 needs the individual declared to expose it
        graph.add((case, RDF.type, OWL.NamedIndividual))
    return graph


def _classify_batch(
    ontology: Graph, cases: Graph, case_iris: Sequence[URIRef]
) -> dict[URIRef, Classification]:
    owlready2 = _owlready()
    world = _world_from(ontology + _typed_case_graph(cases, case_iris))
    _run_hermit(world, infer_property_values=True)
    results = {}
    for case in case_iris:
        individual = world[str(case)]
        classes = frozenset(
            URIRef(c.iri)
            for c in individual.INDIRECT_is_a
            if isinstance(c, owlready2.ThingClass) and c is not owlready2.Thing
        )
        values: dict[URIRef, frozenset[URIRef]] = {}
        for prop in individual.get_properties():
            if isinstance(prop, owlready2.ObjectPropertyClass):
                objs = frozenset(URIRef(o.iri) for o in prop[individual] if hasattr(o, "iri"))
                if objs:
                    values[URIRef(prop.iri)] = objs
        results[case] = Classification(case, classes, values)
    return results


@dataclass
class HermitResult:
    classified: dict[URIRef, Classification]
    inconsistent: list[URIRef]


def classify(
    ontology: Graph,
    cases: Graph,
    case_iris: Sequence[URIRef],
    batch_size: int = 1000,
    case_graphs: dict[URIRef, Graph] | None = None,
) -> HermitResult:
    """Classify cases in batches; isolate cases that make a batch inconsistent.

    ``case_graphs`` (one graph per case) lets an inconsistent batch be split; without it
    the whole ``cases`` graph is used for every batch.
    """
    owlready2 = _owlready()
    classified: dict[URIRef, Classification] = {}
    inconsistent: list[URIRef] = []

    def graph_for(batch: Sequence[URIRef]) -> Graph:
        if case_graphs is None:
            return cases
        merged = Graph()
        for case in batch:
            for triple in case_graphs[case]:
                merged.add(triple)
        return merged

    def run(batch: Sequence[URIRef]) -> None:
        try:
            classified.update(_classify_batch(ontology, graph_for(batch), batch))
        except owlready2.OwlReadyInconsistentOntologyError:
            if len(batch) == 1 or case_graphs is None:
                inconsistent.extend(batch)
                return
            mid = len(batch) // 2
            run(batch[:mid])
            run(batch[mid:])

    for i in range(0, len(case_iris), batch_size):
        run(case_iris[i : i + batch_size])
    return HermitResult(classified, inconsistent)
