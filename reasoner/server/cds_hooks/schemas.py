"""The CDS Hooks 2.0 messages as pydantic models, for the OpenAPI document only.

They describe what ``/cds-services`` accepts and returns (discovery, a hook call and its
cards, feedback) as the CDS Hooks 2.0 specification defines it, so that a client's code
generator gets the types. The endpoints do not validate against them: ``request`` and
``feedback`` check a request field by field and answer a FHIR OperationOutcome naming
the field at fault, which a generic 422 would not. Objects allow further members, as
the specification's ``extension`` and a client's own fields may appear anywhere.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Resource = dict[str, Any]
"""A FHIR resource (R4 JSON), checked by the service where it reads one."""


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Coding(_Open):
    code: str
    system: str | None = None
    display: str | None = None


class CdsService(_Open):
    hook: str = Field(description="The hook this service is invoked on.")
    id: str = Field(description="The {id} of POST /cds-services/{id}.")
    title: str | None = None
    description: str
    prefetch: dict[str, str] | None = Field(None, description="Prefetch templates, by key (FHIR queries).")


class CdsDiscovery(_Open):
    """GET /cds-services."""

    services: list[CdsService]


class FhirAuthorization(_Open):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None


class OrderContext(_Open):
    """The context of the ``order-select`` and ``order-sign`` hooks."""

    userId: str
    patientId: str
    encounterId: str | None = None
    selections: list[str] | None = Field(None, description="order-select: the draft orders selected.")
    draftOrders: Resource = Field(description="A FHIR Bundle of the draft orders.")


class CdsHookRequest(_Open):
    """POST /cds-services/{id}."""

    hook: str
    hookInstance: str
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: OrderContext
    prefetch: dict[str, Resource | None] | None = Field(
        None, description="The data of the discovery's prefetch templates, by key (null: none)."
    )


class Source(_Open):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(_Open):
    type: Literal["create", "update", "delete"]
    description: str
    resource: Resource | None = None
    resourceId: list[str] | None = None


class Suggestion(_Open):
    label: str
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(_Open):
    label: str
    url: str
    type: Literal["absolute", "smart"]
    appContext: str | None = None


class Card(_Open):
    uuid: str | None = None
    summary: str = Field(max_length=140)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None


class CdsHookResponse(_Open):
    """The answer to POST /cds-services/{id}: cards, and actions applied without a card."""

    cards: list[Card]
    systemActions: list[Action] | None = None


class OverrideReason(_Open):
    reason: Coding | None = None
    userComment: str | None = None


class AcceptedSuggestion(_Open):
    id: str


class Feedback(_Open):
    card: str = Field(description="The uuid of the card.")
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str


class CdsFeedbackRequest(_Open):
    """POST /cds-services/{id}/feedback."""

    feedback: list[Feedback]


class OperationOutcome(_Open):
    """The body of an error answer (application/fhir+json)."""

    resourceType: Literal["OperationOutcome"]
    issue: list[dict[str, Any]]


COMPONENT_MODELS = (CdsHookRequest, CdsFeedbackRequest, OperationOutcome)
"""The models FastAPI does not put into the document itself (the endpoints read the body
as bytes; errors are application/fhir+json): ``http.openapi`` adds them to its components."""


def _ref(model: type[BaseModel]) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def request_body(model: type[BaseModel]) -> dict:
    """The OpenAPI ``requestBody`` of a JSON body described by ``model``."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": _ref(model)}}}}


def errors(*statuses: int) -> dict:
    """The OpenAPI ``responses`` of error answers: a FHIR OperationOutcome naming the problem."""
    what = {
        400: "The request is malformed: the OperationOutcome names the field at fault.",
        401: "The JWT is missing or not valid (servers started with --cds-trust).",
        404: "No such CDS service.",
        412: "The client's FHIR server could not be read, or is not one this server may call.",
    }
    content = {"application/fhir+json": {"schema": _ref(OperationOutcome)}}
    return {status: {"description": what[status], "content": content} for status in statuses}
