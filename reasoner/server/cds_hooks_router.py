"""CDS Hooks 2.0 over HTTP: ``GET /cds-services`` (discovery) and ``POST /cds-services/{id}``.

HTTP only: the service (``cds_service``) is built once per application from its assessor,
the call runs on a worker thread (it may wait for the client's FHIR server and for the
assessor), and a ``HookError`` becomes its status with a FHIR OperationOutcome body.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .cds_request import HookError
from .cds_service import CdsHooksService
from .state import server_state

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


@router.get("/cds-services")
def discovery(service: Service) -> JSONResponse:
    return JSONResponse(service.discovery())


@router.post("/cds-services/{service_id}")
async def call(service_id: str, request: Request, service: Service) -> JSONResponse:
    body = await request.body()
    try:
        answer = await run_in_threadpool(service.call, service_id, body)
    except HookError as exc:
        return JSONResponse(exc.outcome(), status_code=exc.status, media_type=FHIR_JSON)
    return JSONResponse(answer)
