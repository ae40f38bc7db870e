"""Reference engine: full OWL 2 DL classification with HermiT (through owlready2).

Used by authors and to verify the fast engine. Every call builds a fresh owlready2
world from the ontology graph plus the cases, so runs never leak into each other. HermiT
is a JVM process per call, so cases are classified in batches; a batch that turns out
inconsistent (one contradictory case makes the whole ABox inconsistent) is split in
halves until the offending cases are isolated, and the others are still classified.
"""

from __future__ import annotations

import math
import multiprocessing
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from rdflib import OWL, RDF, XSD, Graph, Literal, URIRef

from .definitions import same_side, stated_numbers

XSD_DECIMAL = XSD.decimal


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


def _world_from(graph: Graph | str):
    """An owlready2 world holding the graph (imports removed: the graph is already merged)."""
    owlready2 = _owlready()
    if isinstance(graph, Graph):
        graph = _ntriples(graph)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kb.nt"
        path.write_text(graph, encoding="utf-8")
        world = owlready2.World()
        world.get_ontology(path.as_uri()).load()
    return world


def _ntriples(graph: Graph) -> str:
    data = Graph()
    for triple in graph:
        if triple[1] != OWL.imports:
            data.add(triple)
    return data.serialize(format="nt", encoding="utf-8").decode("utf-8")


def _as_hermit_compares(value: object, bounds: list[Decimal]) -> object:
    """``value`` as HermiT must see it to compare it exactly. owlready2 keeps an xsd:decimal
    as a Python float and gives HermiT its shortest text, so 5.99999999999999999999 weeks
    would reach HermiT as 6.0 and meet "at least 6 weeks". A decimal whose float's text
    compares with some number of the ontology otherwise than the decimal does is replaced
    by the nearest float on its side, as a decimal (5.999999999999999): every comparison
    with the ontology's numbers, all that classification reads of it, is then the
    decimal's own. Any other value is returned as it is."""
    if not (isinstance(value, Literal) and value.datatype == XSD_DECIMAL):
        return value
    try:
        exact = Decimal(str(value))
        near = float(exact)
    except (InvalidOperation, ValueError, OverflowError):
        return value
    for step in range(8):  # the float's neighbours: a step or two at most
        if not math.isfinite(near):
            return value
        text = Decimal(repr(near))
        if same_side(text, exact, bounds):  # owlready2's own float compares alike: as it is
            return Literal(format(text, "f"), datatype=XSD_DECIMAL) if step else value
        near = math.nextafter(near, math.inf if exact > text else -math.inf)
    return value


def _case_ntriples(graph: Graph, bounds: list[Decimal]) -> str:
    data = Graph()
    for subject, predicate, value in graph:
        data.add((subject, predicate, _as_hermit_compares(value, bounds)))
    return data.serialize(format="nt", encoding="utf-8").decode("utf-8")


def _run_hermit(world, infer_property_values: bool) -> None:
    owlready2 = _owlready()
    with world.get_ontology("http://lbp-imaging.invalid/inferred/"):
        owlready2.sync_reasoner_hermit(world, infer_property_values=infer_property_values, debug=0)


def reasoned_world(graph: Graph | str):
    """An owlready2 world holding the graph after one HermiT classification, so that a
    caller reads every conclusion it needs (unsatisfiable classes, inferred equivalences)
    from a single JVM run. Raises ``owlready2.OwlReadyInconsistentOntologyError`` when the
    graph is inconsistent."""
    world = _world_from(graph)
    _run_hermit(world, infer_property_values=False)
    return world


def check_consistency(ontology: Graph) -> ConsistencyReport:
    """Is the ontology consistent, and which named classes are unsatisfiable?"""
    owlready2 = _owlready()
    try:
        world = reasoned_world(ontology)
    except owlready2.OwlReadyInconsistentOntologyError as exc:
        return ConsistencyReport(consistent=False, error=str(exc))
    unsat = tuple(sorted(c.iri for c in world.inconsistent_classes() if getattr(c, "iri", None)))
    return ConsistencyReport(consistent=True, unsatisfiable=unsat)


def _classify_batch(ontology_nt: str, cases_nt: str, case_iris: Sequence[str]) -> dict[str, Classification]:
    """One HermiT run over the ontology plus one batch of cases (all arguments text, so
    that batches can run in worker processes)."""
    owlready2 = _owlready()
    declarations = "".join(f"<{c}> <{RDF.type}> <{OWL.NamedIndividual}> .\n" for c in case_iris)
    world = _world_from(ontology_nt + cases_nt + declarations)
    _run_hermit(world, infer_property_values=True)
    results = {}
    for case in case_iris:
        individual = world[case]
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
        results[case] = Classification(URIRef(case), classes, values)
    return results


def _classify_isolating(
    ontology_nt: str, case_nts: dict[str, str], batch: list[str]
) -> tuple[dict[str, Classification], list[str]]:
    """Classify a batch; if it is inconsistent, split it until the culprits are isolated."""
    owlready2 = _owlready()
    try:
        return _classify_batch(ontology_nt, "".join(case_nts[c] for c in batch), batch), []
    except owlready2.OwlReadyInconsistentOntologyError:
        if len(batch) == 1:
            return {}, list(batch)
        mid = len(batch) // 2
        left, bad_left = _classify_isolating(ontology_nt, case_nts, batch[:mid])
        right, bad_right = _classify_isolating(ontology_nt, case_nts, batch[mid:])
        return {**left, **right}, bad_left + bad_right


@dataclass
class HermitResult:
    classified: dict[URIRef, Classification]
    inconsistent: list[URIRef]


def classify(
    ontology: Graph,
    case_graphs: dict[URIRef, Graph],
    batch_size: int = 75,
    workers: int = 2,
) -> HermitResult:
    """Classify cases (one graph each) in batches, ``workers`` HermiT processes at a time.

    HermiT's time grows faster than linearly with the batch here (the criteria's
    nominals tie the cases together), so small batches in parallel are fastest, down to
    where starting a JVM per batch costs more than it saves (600 generated cases in two
    workers: 65.7 s in batches of 150, 52.6 s of 75, 53.6 s of 50); a batch that is
    inconsistent is split until the offending cases are isolated.
    """
    ontology_nt = _ntriples(ontology)
    bounds = stated_numbers(ontology)
    case_nts = {str(c): _case_ntriples(g, bounds) for c, g in case_graphs.items()}
    order = [str(c) for c in case_graphs]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    classified: dict[URIRef, Classification] = {}
    inconsistent: list[URIRef] = []
    if workers > 1 and len(batches) > 1:
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            outcomes = list(
                pool.map(
                    _classify_isolating,
                    [ontology_nt] * len(batches),
                    [{c: case_nts[c] for c in b} for b in batches],
                    batches,
                )
            )
    else:
        outcomes = [_classify_isolating(ontology_nt, case_nts, b) for b in batches]
    for done, bad in outcomes:
        classified.update({URIRef(k): v for k, v in done.items()})
        inconsistent += [URIRef(c) for c in bad]
    return HermitResult(classified, inconsistent)
