"""The FHIR changes the CDS Hooks service proposes for a draft order: the Argonaut PAMA
rating attached to it (a ``systemActions`` update must not change the order otherwise), and
the suggestion that replaces it by an order for the recommended study.

The replacement copies the draft (status, intent, subject, requester, reasons, …) but not
its id, meta, narrative, code or priority: the code is the recommended procedure's, from the
ontology's mappings, and the priority the recommended urgency's ``lbp:fhirRequestPriority``.
Ids are UUIDs derived from the hook instance, so that a replayed call proposes the same.
"""

from __future__ import annotations

import uuid

from ...fhir.ordering import (
    PAMA_EXTENSIONS,
    CdsKnowledge,
    pama_extensions,
)
from ...pipeline.explain import CaseResult, Vocabulary
from .orders import DraftOrder, ImagingProcedures

NOT_COPIED = ("id", "meta", "text", "code", "priority")


class OrderActions:
    """Builds rating updates and replacement suggestions for one knowledge base."""

    def __init__(self, vocab: Vocabulary, knowledge: CdsKnowledge, procedures: ImagingProcedures):
        self.vocab, self.knowledge, self.procedures = vocab, knowledge, procedures

    def replacement(
        self, result: CaseResult, order: DraftOrder, procedure: str, priority: str | None, hook_instance: str
    ) -> dict:
        """The suggestion that replaces the draft order by one for ``procedure`` at
        ``priority`` (the recommended one; the draft's when the ontology gives none), carrying
        the outcome's PAMA rating for an order of a recommended procedure when it is an
        imaging study (PAMA rates advanced imaging: a specialist referral is not rated)."""
        priority = priority or order.priority
        label = self.vocab.label(procedure)
        keep = {k: v for k, v in order.resource.items() if k not in NOT_COPIED}
        new_id = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"{hook_instance}|{order.reference}|{procedure}|{priority}")
        )
        created = {**keep, "id": new_id, "code": self.procedures.code(procedure), "priority": priority}
        rating = self.knowledge.rating((result.outcome or {}).get("iri"), indicated=True)
        if rating and procedure in self.procedures.iris:
            created = self.rated(result, created, rating, hook_instance)
        return {
            "label": f"Replace with {label} (priority {priority})",
            "uuid": str(uuid.uuid4()),
            "isRecommended": True,
            "actions": [
                {
                    "type": "delete",
                    "description": f"Remove the draft order for {self.vocab.label(order.procedure)}",
                    "resourceId": order.reference,
                },
                {
                    "type": "create",
                    "description": f"Order {label}, priority {priority}",
                    "resource": created,
                },
            ],
        }

    def rated(self, result: CaseResult, resource: dict, rating: str, hook_instance: str) -> dict:
        """``resource`` with the Argonaut PAMA extensions (any earlier ones replaced): the
        rating, a consultation id for audit, and the criterion applied when there is one."""
        extensions = [e for e in resource.get("extension") or [] if e.get("url") not in PAMA_EXTENSIONS]
        consult = uuid.uuid5(uuid.NAMESPACE_URL, f"{hook_instance}|{resource['id']}")
        extensions += pama_extensions(rating, f"urn:uuid:{consult}", result.criteria)
        return {**resource, "extension": extensions}
