"""Read a stored case back from its named graph, tell case graphs from the others, and
remove a case (the graphs are written by ``case_graphs``).

A graph is a case record when its recommendation says which case it is for
(``?recommendation lbp:forCase <graph name>`` inside it). The knowledge-base graphs and
the engine's agent graph never say so, which is how the case endpoints keep away from
them: they can neither show nor delete those graphs, nor store a case over them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyoxigraph as ox

from ...knowledge import LBP
from ...pipeline.explain import CaseResult
from ...pipeline.select import UNDETERMINED

PROV = "http://www.w3.org/ns/prov#"
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
FOR_CASE = ox.NamedNode(f"{LBP}forCase")
OUTCOME = ox.NamedNode(f"{LBP}outcome")
PROCEDURE = ox.NamedNode(f"{LBP}recommendedProcedure")
URGENCY = ox.NamedNode(f"{LBP}urgency")
WARNING = ox.NamedNode(f"{LBP}warning")
USED = ox.NamedNode(f"{PROV}used")
STARTED = ox.NamedNode(f"{PROV}startedAtTime")
ENDED = ox.NamedNode(f"{PROV}endedAtTime")
ASSOCIATED_WITH = ox.NamedNode(f"{PROV}wasAssociatedWith")

Recommendation = tuple[str | None, str | None, str | None]
"""Outcome, procedure and urgency IRIs: what a recommendation says, for comparing two."""


@dataclass(frozen=True)
class StoredAssessment:
    """What a case graph keeps of an assessment: the case as submitted, the run's times,
    the recommendation and its warnings."""

    facts: list[ox.Quad]
    started: str
    ended: str
    recommendation: Recommendation
    warnings: list[str]


def is_case(store: ox.Store, case: ox.NamedNode) -> bool:
    return next(store.quads_for_pattern(None, FOR_CASE, case, case), None) is not None


def is_reserved(store: ox.Store, case: ox.NamedNode, knowledge_graphs: list[str]) -> bool:
    """Whether ``case`` names something other than a case: a graph that is not a case
    record (a knowledge-base module, the engine's agent), which storing the case would
    replace, or a term of the knowledge base, whose description would take in the case's
    facts."""
    if store.contains_named_graph(case) and not is_case(store, case):
        return True
    graphs = {ox.NamedNode(g) for g in knowledge_graphs}
    return any(q.graph_name in graphs for q in store.quads_for_pattern(case, None, None, None))


def _value(store: ox.Store, subject, predicate: ox.NamedNode, graph: ox.NamedNode):
    quad = next(store.quads_for_pattern(subject, predicate, None, graph), None)
    return quad.object if quad else None


def _iri(term) -> str | None:
    return term.value if isinstance(term, ox.NamedNode) else None


def _time(term) -> str:
    """A stored ``xsd:dateTime`` as the run wrote it (the store keeps it canonical: ``Z``)."""
    return dt.datetime.fromisoformat(term.value).isoformat(timespec="seconds")


def stored_recommendation(store: ox.Store, case: ox.NamedNode) -> Recommendation:
    """What the recommendation stored for a case record (``is_case``) says."""
    recommendation = next(store.quads_for_pattern(None, FOR_CASE, case, case)).subject
    return (
        _iri(_value(store, recommendation, OUTCOME, case)),
        _iri(_value(store, recommendation, PROCEDURE, case)),
        _iri(_value(store, recommendation, URGENCY, case)),
    )


def result_recommendation(result: CaseResult) -> Recommendation:
    """What an assessment's recommendation says, to compare with a stored one or to log."""
    rec = result.recommendation or {}
    return (
        (result.outcome or {}).get("iri"),
        (rec.get("procedure") or {}).get("iri"),
        (rec.get("urgency") or {}).get("iri"),
    )


def stored_assessment(store: ox.Store, case: ox.NamedNode, derived_classes: set[str]) -> StoredAssessment:
    """The stored assessment of a case record (``is_case``). The case's own triples are
    its graph's triples about it, less what the engine added (the memberships of defined
    classes, the undetermined criteria); they come back in N-Triples order, as
    ``case_upload`` ordered them."""
    facts = [
        ox.Quad(q.subject, q.predicate, q.object)
        for q in store.quads_for_pattern(case, None, None, case)
        if not (q.predicate == RDF_TYPE and q.object.value in derived_classes) and q.predicate != UNDETERMINED
    ]
    recommendation = next(store.quads_for_pattern(None, FOR_CASE, case, case)).subject
    activity = next(store.quads_for_pattern(None, USED, case, case)).subject
    return StoredAssessment(
        facts=sorted(facts, key=str),
        started=_time(_value(store, activity, STARTED, case)),
        ended=_time(_value(store, activity, ENDED, case)),
        recommendation=stored_recommendation(store, case),
        warnings=[q.object.value for q in store.quads_for_pattern(recommendation, WARNING, None, case)],
    )


def record(store: ox.Store, case: ox.NamedNode) -> list[ox.Triple]:
    """The case's graph with the description of the engine that assessed it (kept once,
    in the agent's own graph): a self-contained PROV-O document."""
    triples = [q.triple for q in store.quads_for_pattern(None, None, None, case)]
    agents = {q.object for q in store.quads_for_pattern(None, ASSOCIATED_WITH, None, case)}
    for agent in agents:
        if isinstance(agent, ox.NamedNode):
            triples += [q.triple for q in store.quads_for_pattern(agent, None, None, agent)]
    return triples


def remove(store: ox.Store, case: ox.NamedNode) -> None:
    """Drop the case's graph in one transaction (the agent's graph stays: it is shared)."""
    store.update(f"DROP GRAPH {case}")
