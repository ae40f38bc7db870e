"""What an order for imaging takes from the ontology, for the CDS Hooks cards and the FHIR
output alike: per urgency its card indicator and FHIR request priority, per outcome its
PAMA ratings, and the override reasons a card offers; and the Argonaut PAMA extensions
that carry a rating.

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

from ..knowledge import LBP

PAMA_RATING = "http://fhir.org/argonaut/Extension/pama-rating"
PAMA_RATING_SYSTEM = "http://fhir.org/argonaut/CodeSystem/pama-rating"
PAMA_CONSULT_ID = "http://fhir.org/argonaut/Extension/pama-rating-consult-id"
PAMA_AUC_APPLIED = "http://fhir.org/argonaut/Extension/pama-rating-auc-applied"
PAMA_EXTENSIONS = (PAMA_RATING, PAMA_CONSULT_ID, PAMA_AUC_APPLIED)


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


def pama_extensions(rating: str, consult: str, criteria: list[dict]) -> list[dict]:
    """The Argonaut PAMA extensions of a rated order: the ``rating``, the ``consult``
    (a URI naming the consultation, for audit) and the first selected criterion that is
    not a rule among a result's ``criteria`` (the appropriate use criterion applied)."""
    extensions = [
        {
            "url": PAMA_RATING,
            "valueCodeableConcept": {"coding": [{"system": PAMA_RATING_SYSTEM, "code": rating}]},
        },
        {"url": PAMA_CONSULT_ID, "valueUri": consult},
    ]
    applied = next((c["iri"] for c in criteria if c["selected"] and c["kind"] != "rule"), None)
    if applied:
        extensions.append({"url": PAMA_AUC_APPLIED, "valueUri": applied})
    return extensions
