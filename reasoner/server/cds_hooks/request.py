"""Read and check a CDS Hooks 2.0 request for one of the ordering hooks.

A request is refused as a whole, with the field at fault, rather than half-read: advice
computed from a request the service misunderstood would look as trustworthy as any other.
``HookError`` carries the HTTP status and becomes a FHIR OperationOutcome whose issue names
the field (``expression``), such as ``context.draftOrders`` or ``prefetch.patient``.

Checked here: the body is a JSON object; ``hook`` is the service's hook; ``hookInstance``,
``context.userId`` and ``context.patientId`` are non-empty strings; ``context.draftOrders`` is
a Bundle whose ServiceRequests are valid FHIR R4 (the ``fhir.resources`` R4B model, as for
bundles) with an ``id``, so that the advice can name them; for ``order-select``,
``context.selections`` lists references to draft orders; ``fhirServer`` is an http(s) URL when
given and required with ``fhirAuthorization``, which needs an ``access_token``. The
reference date for ages and durations is today unless the request's ``extension`` gives
``org.w3id.lbp-imaging.asOf`` (a date), so that a test or a replay gets the same answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pydantic import ValidationError

from ...fhir.validation import FhirInputError, check_resource_types, problems
from ...pipeline.input_text import TextError, json_document

ORDER_SELECT = "order-select"
AS_OF_EXTENSION = "org.w3id.lbp-imaging.asOf"


class HookError(Exception):
    """A request the service cannot answer with cards: the HTTP status, the FHIR issue code,
    the problem, and the request field at fault (a FHIRPath-like name) when there is one."""

    def __init__(self, status: int, problem: str, field: str | None = None, code: str = "invalid"):
        self.status, self.problem, self.field, self.code = status, problem, field, code
        super().__init__(f"{field}: {problem}" if field else problem)

    def outcome(self) -> dict:
        """The error as a FHIR OperationOutcome, the body of the error response."""
        issue = {"severity": "error", "code": self.code, "diagnostics": str(self)}
        if self.field:
            issue["expression"] = [self.field]
        return {"resourceType": "OperationOutcome", "issue": [issue]}


@dataclass(frozen=True)
class HookRequest:
    """A checked request: what the service reads from it."""

    hook_instance: str
    patient_id: str
    orders: list[dict]
    """The draft ServiceRequests to advise on: for order-select the selected ones only."""
    prefetch: dict[str, object]
    """The prefetch keys the client sent (a value may be null: the client has no data)."""
    fhir_server: str | None
    access_token: str | None
    as_of: dt.date


def parse_request(body: bytes, hook: str) -> HookRequest:
    """The request in ``body`` for a service of ``hook``; raises ``HookError`` (400)."""
    try:
        doc = json_document(body)  # nesting and numbers checked: it cannot crash the reader
    except TextError as exc:
        raise HookError(400, f"the request body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise HookError(400, "the request body is not a JSON object")
    if doc.get("hook") != hook:
        raise HookError(400, f"is {doc.get('hook')!r}, but this service answers the {hook!r} hook", "hook")
    _text(doc, "hookInstance", "hookInstance")
    context = doc.get("context")
    if not isinstance(context, dict):
        raise HookError(400, "is required: an object", "context")
    _text(context, "userId", "context.userId")
    patient_id = _text(context, "patientId", "context.patientId")
    drafts = _draft_orders(context.get("draftOrders"))
    orders = _selected(drafts, context.get("selections")) if hook == ORDER_SELECT else drafts
    prefetch = doc.get("prefetch", {})
    if not isinstance(prefetch, dict):
        raise HookError(400, "must be an object of prefetch keys", "prefetch")
    server, token = _fhir_access(doc)
    return HookRequest(
        doc["hookInstance"], patient_id, orders, prefetch, server, token, _as_of(doc.get("extension"))
    )


def _text(obj: dict, key: str, field: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise HookError(400, "is required: a non-empty string", field)
    return value


def _draft_orders(bundle: object) -> list[dict]:
    """The ServiceRequests of the draftOrders Bundle, each validated; other resource types
    (medication orders, say) are left alone: no advice is given on them."""
    field = "context.draftOrders"
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise HookError(400, "must be a FHIR Bundle of draft orders", field)
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise HookError(400, "must be a list", f"{field}.entry")
    orders = []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        where = f"{field}.entry[{i}].resource"
        if not isinstance(resource, dict):
            raise HookError(400, "is required: a FHIR resource", where)
        if resource.get("resourceType") == "ServiceRequest":
            _valid_service_request(resource, where)
            orders.append(resource)
    return orders


def _valid_service_request(resource: dict, where: str) -> None:
    from fhir.resources.R4B.servicerequest import ServiceRequest  # deferred: a large import

    try:
        check_resource_types(resource, where, "context.draftOrders")
    except FhirInputError as exc:
        raise HookError(400, exc.problem, exc.resource) from None
    try:
        ServiceRequest.model_validate(resource)
    except ValidationError as exc:
        said = "; ".join(problems(exc))
        raise HookError(400, f"invalid FHIR R4 ServiceRequest: {said}", where) from None
    except (TypeError, KeyError, AttributeError, ValueError, RecursionError):
        # what fhir.resources raises, instead of a ValidationError, for some malformed
        # resources (a contained resource with an unknown or non-string resourceType)
        raise HookError(
            400, "invalid FHIR R4 ServiceRequest: an element holds a value of the wrong type", where
        ) from None
    if not isinstance(resource.get("id"), str):
        raise HookError(400, "is required: the advice and its actions name the order by id", f"{where}.id")


def _selected(orders: list[dict], selections: object) -> list[dict]:
    """The draft ServiceRequests that order-select's ``selections`` name (``ServiceRequest/id``)."""
    field = "context.selections"
    if not isinstance(selections, list) or not selections:
        raise HookError(400, "is required for order-select: a list of references to draft orders", field)
    by_reference = {f"ServiceRequest/{o['id']}": o for o in orders}
    chosen = []
    for i, ref in enumerate(selections):
        if not isinstance(ref, str):
            raise HookError(400, "must be a reference such as 'ServiceRequest/123'", f"{field}[{i}]")
        if ref in by_reference:
            chosen.append(by_reference[ref])
        elif not ref.startswith("ServiceRequest/"):
            continue  # a selected medication or other order: not imaging, no advice
        else:
            raise HookError(400, f"{ref!r} is not a ServiceRequest of context.draftOrders", f"{field}[{i}]")
    return chosen


def _fhir_access(doc: dict) -> tuple[str | None, str | None]:
    server, auth = doc.get("fhirServer"), doc.get("fhirAuthorization")
    if server is not None and (not isinstance(server, str) or not server.startswith(("http://", "https://"))):
        raise HookError(400, "must be the http(s) base URL of a FHIR server", "fhirServer")
    if auth is None:
        return server, None
    if server is None:
        raise HookError(400, "is required when fhirAuthorization is given", "fhirServer")
    if not isinstance(auth, dict):
        raise HookError(400, "must be an object", "fhirAuthorization")
    return server, _text(auth, "access_token", "fhirAuthorization.access_token")


def _as_of(extension: object) -> dt.date:
    if not isinstance(extension, dict) or AS_OF_EXTENSION not in extension:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(str(extension[AS_OF_EXTENSION]))
    except ValueError:
        raise HookError(400, "must be a date (YYYY-MM-DD)", f"extension.{AS_OF_EXTENSION}") from None
