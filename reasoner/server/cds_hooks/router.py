"""CDS Hooks 2.0 over HTTP: ``GET /cds-services`` (discovery), ``POST /cds-services/{id}``
and its feedback endpoint ``POST /cds-services/{id}/feedback``.

HTTP only: the service (``cds_service``) is built once per application from its assessor,
the call runs on a worker thread (it may wait for the client's FHIR server and for the
assessor), and a ``HookError`` becomes its status with a FHIR OperationOutcome body. When
the server was started with ``--cds-trust``, both POSTs first check the caller's JWT
(``cds_auth``, on the event loop: fetching a JWK Set never holds a thread), and the
verified caller goes to the audit.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..http.audit_log import ANONYMOUS, Actor
from ..state import server_state
from .audit import BEARER_JWT, decision_audit
from .auth import CdsClient, ClientAuthError, ClientVerifier
from .feedback import log_feedback, parse_feedback
from .request import HookError, HookRequest
from .schemas import CdsDiscovery, CdsFeedbackRequest, CdsHookRequest, CdsHookResponse, errors, request_body
from .service import SERVICES, CdsHooksService, FormLink

router = APIRouter(tags=["CDS Hooks"])
_building = threading.Lock()
FHIR_JSON = "application/fhir+json"


def cds_service(request: Request) -> CdsHooksService:
    """The application's CDS Hooks service, built on first use from the shared assessor."""
    app_state = request.app.state
    with _building:
        if getattr(app_state, "cds_hooks", None) is None:
            state = server_state(request)
            app_state.cds_hooks = CdsHooksService(
                state.assessor, state.case_lock, state.settings.fhir_servers
            )
    return app_state.cds_hooks


Service = Annotated[CdsHooksService, Depends(cds_service)]


async def cds_client(request: Request, paths: tuple[str, ...]) -> CdsClient | None:
    """The CDS client calling, from its JWT for one of the endpoint ``paths``, when the
    server checks JWTs; None when it does not. Raises ``ClientAuthError``."""
    trust = server_state(request).settings.cds_trust
    if trust is None:
        return None
    app_state = request.app.state
    if getattr(app_state, "cds_verifier", None) is None:  # on the event loop: no lock needed
        app_state.cds_verifier = ClientVerifier(trust)
    return await app_state.cds_verifier.verify(request.headers.get("authorization"), paths)


ORDER_FORM_PATH = "/case/order/"
"""Where the pre-filled form of a pending order is (``order_form_router``), by its key."""


def form_link(request: Request) -> FormLink:
    """Keeps a pending order's data under a new short-lived key (``form_links``) and gives
    the URL of its form on this server (``--public-url``, else the URL called)."""
    state = server_state(request)
    base = (state.settings.public_url or str(request.base_url)).rstrip("/")

    def link(service_id: str, hook: HookRequest, bundle: dict) -> str:
        return f"{base}{ORDER_FORM_PATH}{state.form_links.add(service_id, hook, bundle)}"

    return link


@router.get("/cds-services", responses={200: {"model": CdsDiscovery, "description": "The CDS services."}})
def discovery(service: Service) -> JSONResponse:
    return JSONResponse(service.discovery())


@router.post(
    "/cds-services/{service_id}",
    responses={200: {"model": CdsHookResponse, "description": "The cards."}, **errors(400, 401, 404, 412)},
    openapi_extra=request_body(CdsHookRequest),
)
async def call(service_id: str, request: Request, service: Service) -> JSONResponse:
    try:
        client = await cds_client(request, (f"/cds-services/{service_id}",))
    except ClientAuthError as exc:
        return exc.response()
    body = await request.body()
    decided = decision_audit(request, service_id, client.as_log() if client else None)
    try:
        answer = await run_in_threadpool(service.call, service_id, body, decided, form_link(request))
    except HookError as exc:
        return JSONResponse(exc.outcome(), status_code=exc.status, media_type=FHIR_JSON)
    return JSONResponse(answer)


@router.post(
    "/cds-services/{service_id}/feedback",
    responses={200: {"description": "Every entry is logged (no body)."}, **errors(400, 401, 404)},
    openapi_extra=request_body(CdsFeedbackRequest),
)
async def feedback(service_id: str, request: Request) -> Response:
    """CDS Hooks 2.0 feedback: 200 with no body once every entry is logged (``cds_feedback``).
    A token for the service's own URL is accepted too: clients read "the CDS Service
    endpoint" of the audience rule either way."""
    service_url = f"/cds-services/{service_id}"
    try:
        client = await cds_client(request, (f"{service_url}/feedback", service_url))
    except ClientAuthError as exc:
        return exc.response()
    try:
        if service_id not in SERVICES:
            raise HookError(404, f"no CDS service {service_id!r}: see GET /cds-services", code="not-found")
        entries = parse_feedback(await request.body())
    except HookError as exc:
        return JSONResponse(exc.outcome(), status_code=exc.status, media_type=FHIR_JSON)
    # off the event loop: the audit log's handler writes to a file
    actor = Actor.of(
        request, ANONYMOUS if client is None else BEARER_JWT, client.as_log() if client else None
    )
    await run_in_threadpool(log_feedback, service_id, entries, actor)
    return Response(status_code=200)
