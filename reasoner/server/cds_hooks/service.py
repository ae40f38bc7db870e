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
from dataclasses import dataclass

from ... import DISCLAIMER
from ...fhir.ordering import CdsKnowledge
from ...fhir.read import FhirInputError, bundle_to_case
from ...pipeline.assess import Assessor
from ...pipeline.cases import LoadedInput
from ...pipeline.explain import CaseResult
from .cards import CardWriter
from .form_links import PendingOrder
from .orders import ImagingProcedures
from .prefetch import PatientData, gather, templates
from .request import HookError, HookRequest, parse_request


@dataclass(frozen=True)
class Answered:
    """A pending order assessed again: the result, its statements, the CDS Hooks response."""

    result: CaseResult
    statements: dict[str, dict]
    cards: dict


FormLink = Callable[[str, HookRequest, dict], str]
"""Makes the URL of the form an undetermined order's card links to (``form_links``)."""

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

    def discovery(self) -> dict:
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
                    "prefetch": templates(self.mapping.form),
                }
                for service_id, hook in SERVICES.items()
            ]
        }

    def call(
        self,
        service_id: str,
        body: bytes,
        decided: Callable[[HookRequest, CaseResult], None] | None = None,
        form_link: FormLink | None = None,
    ) -> dict:
        """The response to a hook call; raises ``HookError`` (400, 404, 412). ``decided`` is
        told each assessment the cards are made from (the audit log: ``cds_audit``);
        ``form_link`` makes the URL of the pre-filled form an undetermined order's card
        links to (given the service, the request and the patient data), only when needed."""
        hook = SERVICES.get(service_id)
        if hook is None:
            raise HookError(404, f"no CDS service {service_id!r}: see GET /cds-services", code="not-found")
        request = parse_request(body, hook)
        orders = self.procedures.lumbar_orders(request.orders)
        if not orders:
            return {"cards": []}
        data = gather(request, self.fhir_servers)
        result = self.assess(data, request)
        if decided is not None:
            decided(request, result)
        link = (lambda: form_link(service_id, request, data.bundle)) if form_link else None
        return self.cards.response(result, orders, request.hook_instance, link)

    def answered(
        self, pending: PendingOrder, response: dict | None, form_link: Callable[[], str] | None = None
    ) -> Answered:
        """A pending order assessed again with the patient data of its call and, if given,
        the clinician's ``QuestionnaireResponse`` (about the call's Patient): the result, the
        statements it cites and the cards the call would now give. Raises ``HookError``
        (400) for a response the FHIR input refuses, naming the response and the item."""
        entries = pending.bundle["entry"] + ([{"resource": response}] if response else [])
        orders = self.procedures.lumbar_orders(pending.request.orders)
        result, statements = self.assessed(
            PatientData({**pending.bundle, "entry": entries}, ()), pending.request
        )
        cards = self.cards.response(result, orders, pending.request.hook_instance, form_link)
        return Answered(result, statements, cards)

    def assess(self, data: PatientData, request: HookRequest) -> CaseResult:
        """The patient's bundle assessed as of the request's reference date (``assessed``)."""
        return self.assessed(data, request)[0]

    def assessed(self, data: PatientData, request: HookRequest) -> tuple[CaseResult, dict[str, dict]]:
        """The patient's bundle assessed as of the request's reference date, with the source
        statements the result cites. A bundle the FHIR input refuses is the client's error
        when it came from the prefetch (400), and data the service could not use when it
        was fetched (412)."""
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
        return next(r for r in run.results if r.case == case.case_iri), run.statements
