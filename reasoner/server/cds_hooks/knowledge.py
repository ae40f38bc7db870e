"""What the CDS Hooks cards take from the ontology: per urgency its card indicator and FHIR
request priority, per outcome its PAMA ratings, and the override reasons a card offers.

Read once per knowledge base. The service's Python knows CDS Hooks, FHIR and the Argonaut
PAMA extension (field names, the order of indicators); which urgency makes a card
critical, which priority an order of an urgency carries, and which outcome rates an order
appropriate are ontology data (``lbp:cdsHooksIndicator`` and ``lbp:fhirRequestPriority`` on
the urgencies in ``core.ttl``; ``lbp:pamaRatingForIndicatedOrder`` and
``lbp:pamaRatingForOtherOrder`` on the outcomes and the ``lbp:CdsOverrideReason``
individuals in ``results.ttl``), so an author changes the cards without a code change.
An outcome without a rating property gives its orders no rating: "more information needed"
has none on purpose (the Argonaut guide lets a service without enough information not rate).
"""

from __future__ import annotations

from dataclasses import dataclass

from rdflib import RDF, RDFS, Graph, URIRef
from rdflib.namespace import SKOS

from ...knowledge import LBP


@dataclass(frozen=True)
class CdsKnowledge:
    """The ontology's CDS Hooks data, by IRI of the urgency or outcome it is stated on."""

    indicators: dict[str, str]
    priorities: dict[str, str]
    indicated_order_ratings: dict[str, str]
    other_order_ratings: dict[str, str]
    override_reasons: tuple[dict, ...]

    @classmethod
    def from_ontology(cls, graph: Graph) -> CdsKnowledge:
        return cls(
            indicators=_values(graph, LBP.cdsHooksIndicator),
            priorities=_values(graph, LBP.fhirRequestPriority),
            indicated_order_ratings=_values(graph, LBP.pamaRatingForIndicatedOrder),
            other_order_ratings=_values(graph, LBP.pamaRatingForOtherOrder),
            override_reasons=_override_reasons(graph),
        )

    def rating(self, outcome: str | None, indicated: bool) -> str | None:
        """The PAMA rating code of an order under ``outcome``: for an order of a procedure the
        assessment recommends (``indicated``) or of another one; ``None`` when the outcome
        states none (then the order gets no rating, as the Argonaut guide asks)."""
        ratings = self.indicated_order_ratings if indicated else self.other_order_ratings
        return ratings.get(outcome) if outcome else None


def _values(graph: Graph, prop: URIRef) -> dict[str, str]:
    return {str(s): str(o) for s, o in graph.subject_objects(prop) if isinstance(s, URIRef)}


def _override_reasons(graph: Graph) -> tuple[dict, ...]:
    """Each ``lbp:CdsOverrideReason`` as a CDS Hooks Coding (code, system, display), by code."""
    system = graph.value(LBP.CdsOverrideReason, LBP.fhirSystem)
    reasons = [
        {
            "system": str(system),
            "code": str(graph.value(r, SKOS.notation)),
            "display": str(graph.value(r, RDFS.label)),
        }
        for r in graph.subjects(RDF.type, LBP.CdsOverrideReason)
        if graph.value(r, SKOS.notation) is not None
    ]
    return tuple(sorted(reasons, key=lambda r: r["code"]))
