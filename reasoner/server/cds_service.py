"""The CDS Hooks service: discovery, and a hook call from request to response.

Two services, one per ordering hook (``order-select`` while an order is chosen,
``order-sign`` before it is signed), give the same advice. A call reads the draft orders;
when none is a lumbar spine imaging order the answer is ``{"cards": []}`` without reading
any patient data. Otherwise the patient's data (prefetch, or the client's FHIR server) is
made one FHIR Bundle and assessed by the same engine as ``lbp-imaging assess`` on a bundle
file (``bundle_to_case`` with the ontology's ``FhirMapping``, then ``Assessor.assess_loaded``),
and the result becomes one card per order. See docs/cds-hooks.md.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .. import DISCLAIMER
from ..assess import Assessor
from ..cases import LoadedInput
from ..explain import CaseResult
from ..fhir_input import FhirInputError, bundle_to_case
from .cds_cards import CardWriter
from .cds_knowledge import CdsKnowledge
from .cds_orders import ImagingProcedures
from .cds_prefetch import TEMPLATES, PatientData, gather
from .cds_request import HookError, HookRequest, parse_request

SERVICES = {
    "lbp-imaging-order-select": "order-select",
    "lbp-imaging-order-sign": "order-sign",
}
SOURCE = "patient data"  # how input warnings and errors name the bundle


class CdsHooksService:
    """Answers hook calls with the application's assessor (one assessment at a time, under
    the application's case lock: the assessor's caches are not made for concurrent use),
    fetching missing patient data only from a FHIR server within ``fhir_servers``."""

    def __init__(self, assessor: Assessor, lock: threading.Lock, fhir_servers: tuple[str, ...] = ()):
        if assessor.inputs.fhir is None:
            raise ValueError("the assessor reads no FHIR: it was built without the ontology's FHIR mapping")
        self.assessor, self.lock, self.mapping = assessor, lock, assessor.inputs.fhir
        self.fhir_servers = fhir_servers
        self.procedures = ImagingProcedures(assessor.vocab, self.mapping)
        self.cards = CardWriter(
            assessor.vocab, CdsKnowledge.from_ontology(assessor.kb.ontology), self.procedures
        )

    @staticmethod
    def discovery() -> dict:
        return {
            "services": [
                {
                    "hook": hook,
                    "id": service_id,
                    "title": f"Lumbar spine imaging for low back pain ({hook})",
                    "description": "Checks draft lumbar spine imaging orders against the lbp-imaging "
                    "criteria for low back pain: whether imaging is indicated, which study and how urgently, "
                    "with the criteria, patient facts and verbatim source statements behind the advice, and "
                    "an Argonaut PAMA rating for each order that can be rated; when the recorded data cannot "
                    f"decide, the questions that would settle it. {DISCLAIMER}",
                    "prefetch": dict(TEMPLATES),
                }
                for service_id, hook in SERVICES.items()
            ]
        }

    def call(
        self, service_id: str, body: bytes, decided: Callable[[HookRequest, CaseResult], None] | None = None
    ) -> dict:
        """The response to a hook call; raises ``HookError`` (400, 404, 412). ``decided`` is
        told each assessment the cards are made from (the audit log: ``cds_audit``)."""
        hook = SERVICES.get(service_id)
        if hook is None:
            raise HookError(404, f"no CDS service {service_id!r}: see GET /cds-services", code="not-found")
        request = parse_request(body, hook)
        orders = self.procedures.lumbar_orders(request.orders)
        if not orders:
            return {"cards": []}
        result = self.assess(gather(request, self.fhir_servers), request)
        if decided is not None:
            decided(request, result)
        return self.cards.response(result, orders, request.hook_instance)

    def assess(self, data: PatientData, request: HookRequest) -> CaseResult:
        """The patient's bundle assessed as of the request's reference date. A bundle the
        FHIR input refuses is the client's error when it came from the prefetch (400), and
        data the service could not use when it was fetched (412)."""
        try:
            case = bundle_to_case(data.bundle, SOURCE, request.as_of, self.mapping)
        except FhirInputError as exc:
            status, field = (412, "fhirServer") if data.fetched else (400, "prefetch")
            raise HookError(status, exc.detail, field) from None
        loaded = LoadedInput(
            quads=case.quads(),
            source_of={case.case_iri: SOURCE},
            files=[SOURCE],
            fhir_cases={case.case_iri: case},
        )
        with self.lock:
            run = self.assessor.assess_loaded(loaded)
        return next(r for r in run.results if r.case == case.case_iri)
