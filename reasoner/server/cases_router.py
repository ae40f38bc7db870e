"""Cases over HTTP: ``POST /cases`` validates, assesses and stores a case, ``GET
/cases/{id}`` returns it, ``DELETE /cases/{id}`` (with the bearer token) removes it.

``{id}`` is the case IRI itself, percent-encoded as one path segment
(``/cases/https%3A%2F%2Fexample.org%2Fcase%2F1``); the route takes it with its slashes
unencoded too. A case keeps the IRI its sender gave it, because its recommendation and
provenance, and the sender's own records, refer to it by that IRI: the server mints no
IRIs and keeps no second name. A case without an IRI (a blank node) is invalid, as on
the command line (422).

Answers are JSON by default (the document ``lbp-imaging assess --format json`` writes,
for the one case) or, by ``Accept``, the case's record as RDF: its named graph (the case,
the defined classes it was found a member of, its recommendation in PROV-O) with the
engine's agent description. This module only maps HTTP; ``case_workers`` assesses a
posted case in a worker process and ``case_service`` does the rest. Every route that
writes goes through ``ServerState.write``, which invalidates the cached query answers.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Annotated
from urllib.parse import quote

import pyoxigraph as ox
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse

from ..assess import AssessmentRun
from ..render import to_json
from .auth import authorize_update
from .case_records import is_case, record
from .case_service import delete, read, store
from .case_upload import BODY_SUFFIXES, MAX_BODY_BYTES, body_suffix
from .case_workers import Assessed
from .negotiation import GRAPH_FORMATS, choose
from .protocol import ProtocolError
from .rdf_output import content_type, serialize
from .state import ServerState, State

router = APIRouter(tags=["cases"])
JSON = "application/json"
RECORD_FORMATS = [JSON, *GRAPH_FORMATS]
AsOf = Annotated[
    str | None,
    Query(
        alias="as-of",
        description="The date (YYYY-MM-DD) a FHIR Bundle's ages and durations are counted to; today "
        "by default (as the command line's --as-of).",
    ),
]


def case_location(iri: str) -> str:
    """The path of a stored case: ``/cases/`` and the percent-encoded case IRI."""
    return "/cases/" + quote(iri, safe="")


def _media(request: Request) -> str:
    media = choose(request.headers.get("accept"), RECORD_FORMATS)
    if media is None:
        raise ProtocolError(406, f"a case is available as {', '.join(RECORD_FORMATS)}")
    return media


def _case_iri(case_id: str) -> str:
    try:
        return ox.NamedNode(case_id).value
    except ValueError:
        message = f"{case_id!r} is not a case IRI: use /cases/ and the percent-encoded IRI"
        raise ProtocolError(404, message) from None


async def _body(request: Request) -> bytes:
    too_large = ProtocolError(413, f"a case may be at most {MAX_BODY_BYTES:,} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _json(state: ServerState, run: AssessmentRun) -> bytes:
    return to_json(run, state.assessor.kb.identity).encode("utf-8")


def _record(state: ServerState, iri: str, media: str) -> bytes:
    return serialize(record(state.store, ox.NamedNode(iri)), media)


def _as_of(text: str | None) -> dt.date:
    if text is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ProtocolError(400, f"as-of {text!r} is not a date (YYYY-MM-DD)") from None


def _stored(state: ServerState, assessed: Assessed, media: str) -> tuple[int, bytes]:
    created = store(state, assessed)
    answer = assessed.answer if media == JSON else _record(state, assessed.case, media)
    return 201 if created else 200, answer


def _fetched(state: ServerState, iri: str, media: str) -> bytes | None:
    if media == JSON:
        run = read(state, iri)
        return None if run is None else _json(state, run)
    return _record(state, iri, media) if is_case(state.store, ox.NamedNode(iri)) else None


def _error(exc: ProtocolError) -> Response:
    return PlainTextResponse(exc.message, exc.status, headers=exc.headers)


@router.post(
    "/cases",
    name="post_case",
    summary="Assess a case and store it with its recommendation",
    description="The body is one patient case in Turtle, JSON-LD (with the project context "
    "https://w3id.org/lbp-imaging/context.jsonld), N-Triples or a FHIR R4 Bundle. It is validated "
    "with the case shapes, assessed by the fast engine and stored in the named graph named by the case "
    "IRI. 201 with Location /cases/{percent-encoded IRI} for a new case, 200 when it replaced the stored "
    "case of the same IRI. The answer is the recommendation as JSON (the schema of `lbp-imaging assess "
    "--format json`) or, by Accept, the stored record in PROV-O.",
    response_class=Response,
    status_code=201,
    responses={
        200: {"description": "The case replaced an earlier record of the same IRI."},
        400: {"description": "The body is empty or cannot be parsed."},
        406: {"description": "The Accept header allows none of the answer's formats."},
        409: {"description": "The case IRI names a graph or a term of the knowledge base."},
        413: {"description": "The body is too large for one case."},
        415: {"description": "The Content-Type is not one of the case formats."},
        422: {
            "description": "The case breaks the case shapes (JSON: the errors name case and field), "
            "or the body holds no case or more than one."
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {media: {"schema": {"type": "string"}} for media in BODY_SUFFIXES},
        }
    },
)
async def post_case(request: Request, state: State, as_of: AsOf = None) -> Response:
    try:
        suffix = body_suffix(request.headers.get("content-type"))
        day = _as_of(as_of)
        media = _media(request)
        body = await _body(request)
        assessed = await state.case_workers.assess(body, suffix, day)
        if assessed.error is not None:
            raise ProtocolError(*assessed.error)
        if not assessed.valid:
            return Response(assessed.answer, 422, media_type=JSON)
        status, answer = await state.write(partial(_stored, state, assessed, media))
    except ProtocolError as exc:
        return _error(exc)
    headers = {"Location": case_location(assessed.case), "Vary": "Accept"}
    return Response(answer, status, headers=headers, media_type=content_type(media))


@router.get(
    "/cases/{case_id:path}",
    name="get_case",
    summary="A stored case with its recommendation",
    description="`case_id` is the case IRI, percent-encoded. JSON (default): the recommendation in the "
    "schema of `lbp-imaging assess --format json`; Turtle, N-Triples, RDF/XML or JSON-LD by Accept: the "
    "case's named graph (the case, its criterion memberships, its recommendation in PROV-O) with the "
    "engine's description.",
    response_class=Response,
    responses={404: {"description": "No case is stored under this IRI."}},
)
async def get_case(case_id: str, request: Request, state: State) -> Response:
    try:
        media = _media(request)
        iri = _case_iri(case_id)
        answer = await state.executor.run(partial(_fetched, state, iri, media))
        if answer is None:
            raise ProtocolError(404, f"no case is stored under {iri}")
    except ProtocolError as exc:
        return _error(exc)
    return Response(answer, headers={"Vary": "Accept"}, media_type=content_type(media))


@router.delete(
    "/cases/{case_id:path}",
    name="delete_case",
    summary="Remove a stored case (needs the bearer token)",
    description="Drops the case's named graph. Needs `Authorization: Bearer <token>` on a server "
    "started with --allow-update and --token: 403 on a read-only server, 401 without a valid token.",
    response_class=Response,
    status_code=204,
    responses={
        401: {"description": "No bearer token, or not the server's."},
        403: {"description": "The server is read-only."},
        404: {"description": "No case is stored under this IRI."},
    },
)
async def delete_case(case_id: str, request: Request, state: State) -> Response:
    try:
        authorize_update(state.settings, request.headers.get("authorization"), "deleting a case")
        iri = _case_iri(case_id)
        if not await state.write(partial(delete, state, iri)):
            raise ProtocolError(404, f"no case is stored under {iri}")
    except ProtocolError as exc:
        return _error(exc)
    return Response(status_code=204)
