"""Which draft orders are lumbar spine imaging, and for which procedure: read from the ontology.

A draft ServiceRequest's ``code`` codings are looked up in the ontology's SKOS mappings with
the same index the FHIR input uses (``FhirMapping.terms``: exact, close and narrow matches
of LOINC, RadLex Playbook, CPT, …). The order is a lumbar spine imaging order when a coding
maps to an individual of ``lbp:ImagingProcedure`` (the ontology defines these as studies of
the lumbar spine); an order for anything else, a laboratory test included, gets no advice.
No code is written here: mapping a new code in ``mappings.ttl`` makes its orders recognised.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...fhir.mapping import FhirMapping
from ...pipeline.explain import Vocabulary

ROUTINE = "routine"  # FHIR ServiceRequest.priority: "if missing, normal priority"


@dataclass(frozen=True)
class DraftOrder:
    """A draft lumbar imaging order: the ServiceRequest as sent, and the imaging procedures
    its codings name (one, unless the codings disagree)."""

    resource: dict
    procedures: tuple[str, ...]

    @property
    def reference(self) -> str:
        return f"ServiceRequest/{self.resource['id']}"

    @property
    def priority(self) -> str:
        return self.resource.get("priority") or ROUTINE

    @property
    def procedure(self) -> str | None:
        """The one procedure ordered, or ``None`` when the codings name several."""
        return self.procedures[0] if len(self.procedures) == 1 else None


class ImagingProcedures:
    """The ontology's imaging procedures with the codes that name them."""

    def __init__(self, vocab: Vocabulary, mapping: FhirMapping):
        self.iris = mapping.imaging_procedures
        self.vocab, self.mapping = vocab, mapping

    def procedures_of(self, order: dict) -> tuple[str, ...]:
        """The imaging procedures that the order's ``code`` codings name, in coding order."""
        found: dict[str, None] = {}
        for coding in (order.get("code") or {}).get("coding") or []:
            for term in self.mapping.terms.get((coding.get("system"), coding.get("code")), ()):
                if term in self.iris:
                    found[term] = None
        return tuple(found)

    def lumbar_orders(self, orders: list[dict]) -> list[DraftOrder]:
        """The orders that are lumbar spine imaging orders, in request order."""
        return [DraftOrder(o, found) for o in orders if (found := self.procedures_of(o))]

    def code(self, procedure: str) -> dict:
        """A FHIR CodeableConcept for ordering ``procedure``: its exact and close matches
        (none for a procedure without a verified code) and its label as text."""
        concept: dict = {"text": self.vocab.label(procedure)}
        codings = [dict(c) for c in self.mapping.codings.get(procedure, ())]
        return {"coding": codings, **concept} if codings else concept
