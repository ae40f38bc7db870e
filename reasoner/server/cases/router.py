"""Cases over HTTP: ``POST /cases`` validates, assesses and stores a case (replacing a
stored one needs the bearer token), ``GET /cases/{id}`` returns it with its version as
``ETag``, ``DELETE /cases/{id}`` (with the bearer token) removes it. Writes honour
``If-Match`` and ``If-None-Match`` (``conditional_requests``), tested against the case the
body names: ``POST /cases`` of a case acts on ``/cases/{its IRI}``, as a ``PUT`` there would.

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
The right to replace or delete is worked out here from the request (``Write``) and tested
by ``case_service`` together with the stored version, under one lock.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Annotated
from urllib.parse import quote

import pyoxigraph as ox
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse

from ...pipeline.assess import AssessmentRun
from ...pipeline.documents import MEDIA_TYPES
from ...pipeline.render import to_json
from ..http.audit_log import ANONYMOUS, BEARER_TOKEN, Actor
from ..http.auth import authorize_update
from ..http.negotiation import GRAPH_FORMATS, choose
from ..http.rdf_output import content_type, serialize
from ..sparql.protocol import ProtocolError
from ..state import ServerState, State
from .conditional_requests import Preconditions, entity_tag
from .service import Stored, Write, delete, read, read_record, store
from .upload import MAX_BODY_BYTES, body_suffix
from .workers import Assessed

router = APIRouter(tags=["cases"])
JSON = "application/json"
RECORD_FORMATS = [JSON, *GRAPH_FORMATS]
CONDITIONS = [
    {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }
    for name, description in (
        ("If-Match", 'Write only if the stored case is at this version: its ETag ("…"), or * for any.'),
        ("If-None-Match", "*: write only if no case is stored under the IRI."),
    )
]
"""The conditional request fields of the writes, for the OpenAPI description."""
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


def _as_of(text: str | None) -> dt.date:
    if text is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ProtocolError(400, f"as-of {text!r} is not a date (YYYY-MM-DD)") from None


def _write(request: Request, state: ServerState, action: str) -> Write:
    """Who asks (the server's bearer token or nobody known), whether they may replace or
    delete a stored case (the same rule as SPARQL Update: ``auth``), and the request's
    conditions (400 when malformed)."""
    try:
        authorize_update(state.settings, request.headers.get("authorization"), action)
    except ProtocolError as refusal:
        return Write(Actor.of(request, ANONYMOUS), refusal, Preconditions.of(request.headers))
    return Write(Actor.of(request, BEARER_TOKEN), None, Preconditions.of(request.headers))


def _stored(state: ServerState, assessed: Assessed, media: str, write: Write) -> tuple[Stored, bytes]:
    stored = store(state, assessed, write, with_record=media != JSON)
    return stored, assessed.answer if stored.record is None else serialize(stored.record, media)


def _fetched(state: ServerState, iri: str, media: str) -> tuple[bytes, str] | None:
    """The stored case in ``media``, and its version."""
    if media == JSON:
        found = read(state, iri)
        return None if found is None else (_json(state, found[0]), found[1])
    record = read_record(state, iri)
    return None if record is None else (serialize(record[0], media), record[1])


def _error(exc: ProtocolError) -> Response:
    return PlainTextResponse(exc.message, exc.status, headers=exc.headers)


@router.post(
    "/cases",
    name="post_case",
    summary="Assess a case and store it with its recommendation",
    description="The body is one patient case in Turtle, JSON-LD (with the project context "
    "https://w3id.org/lbp-imaging/context.jsonld), N-Triples or a FHIR R4 Bundle. It is validated "
    "with the case shapes, assessed by the fast engine and stored in the named graph named by the case "
    "IRI. 201 with Location /cases/{percent-encoded IRI} for a new case; replacing the stored case of the "
    'same IRI (200) needs `Authorization: Bearer <token>` as DELETE does. `If-Match: "<ETag>"` replaces '
    "only that version, `If-None-Match: *` only creates (412 otherwise), tested against /cases/{IRI}. "
    "The answer carries the case's new ETag and is the recommendation as JSON (the schema of "
    "`lbp-imaging assess --format json`) or, by Accept, the stored record in PROV-O.",
    response_class=Response,
    status_code=201,
    responses={
        201: {"description": "The case is stored.", "headers": {"ETag": {"schema": {"type": "string"}}}},
        200: {"description": "The case replaced an earlier record of the same IRI."},
        400: {
            "description": "The body is empty or cannot be parsed, or If-Match/If-None-Match is malformed."
        },
        401: {
            "description": "A case is stored under this IRI and no bearer token came, or not the server's."
        },
        403: {"description": "A case is stored under this IRI and the server is read-only."},
        406: {"description": "The Accept header allows none of the answer's formats."},
        409: {"description": "The case IRI names a graph or a term of the knowledge base."},
        412: {"description": "If-Match or If-None-Match does not hold for the stored case."},
        413: {"description": "The body is too large for one case."},
        415: {"description": "The Content-Type is not one of the case formats."},
        422: {
            "description": "The case breaks the case shapes (JSON: the errors name case and field), "
            "or the body holds no case or more than one."
        },
    },
    openapi_extra={
        "parameters": CONDITIONS,
        "requestBody": {
            "required": True,
            "content": {media: {"schema": {"type": "string"}} for media in MEDIA_TYPES},
        },
    },
)
async def post_case(request: Request, state: State, as_of: AsOf = None) -> Response:
    try:
        suffix = body_suffix(request.headers.get("content-type"))
        day = _as_of(as_of)
        media = _media(request)
        write = _write(request, state, "replacing a stored case")
        body = await _body(request)
        assessed = await state.case_workers.assess(body, suffix, day)
        if assessed.error is not None:
            raise ProtocolError(*assessed.error)
        if not assessed.valid:
            return Response(assessed.answer, 422, media_type=JSON)
        stored, answer = await state.write(partial(_stored, state, assessed, media, write))
    except ProtocolError as exc:
        return _error(exc)
    location = case_location(assessed.case)
    # Content-Location: the answer is the representation of the stored case, which the
    # ETag then describes (RFC 9110 §8.7, §15.3.2).
    headers = {
        "Location": location,
        "Content-Location": location,
        "ETag": entity_tag(stored.version),
        "Vary": "Accept",
    }
    return Response(answer, 201 if stored.created else 200, headers=headers, media_type=content_type(media))


@router.get(
    "/cases/{case_id:path}",
    name="get_case",
    summary="A stored case with its recommendation",
    description="`case_id` is the case IRI, percent-encoded. JSON (default): the recommendation in the "
    "schema of `lbp-imaging assess --format json`; Turtle, N-Triples, RDF/XML or JSON-LD by Accept: the "
    "case's named graph (the case, its criterion memberships, its recommendation in PROV-O) with the "
    "engine's description. `ETag` is the stored version, which changes with every write of the case.",
    response_class=Response,
    responses={
        200: {"description": "The stored case.", "headers": {"ETag": {"schema": {"type": "string"}}}},
        404: {"description": "No case is stored under this IRI."},
    },
)
async def get_case(case_id: str, request: Request, state: State) -> Response:
    try:
        media = _media(request)
        iri = _case_iri(case_id)
        found = await state.executor.run(partial(_fetched, state, iri, media))
        if found is None:
            raise ProtocolError(404, f"no case is stored under {iri}")
    except ProtocolError as exc:
        return _error(exc)
    answer, version = found
    headers = {"ETag": entity_tag(version), "Vary": "Accept"}
    return Response(answer, headers=headers, media_type=content_type(media))


@router.delete(
    "/cases/{case_id:path}",
    name="delete_case",
    summary="Remove a stored case (needs the bearer token)",
    description="Drops the case's named graph. Needs `Authorization: Bearer <token>` on a server "
    "started with --allow-update and --token: 403 on a read-only server, 401 without a valid token. "
    '`If-Match: "<ETag>"` deletes only that version (412 otherwise).',
    response_class=Response,
    status_code=204,
    responses={
        401: {"description": "No bearer token, or not the server's."},
        403: {"description": "The server is read-only."},
        404: {"description": "No case is stored under this IRI."},
        412: {"description": "If-Match or If-None-Match does not hold for the stored case."},
    },
    openapi_extra={"parameters": CONDITIONS},
)
async def delete_case(case_id: str, request: Request, state: State) -> Response:
    try:
        iri = _case_iri(case_id)
        await state.write(partial(delete, state, iri, _write(request, state, "deleting a case")))
    except ProtocolError as exc:
        return _error(exc)
    return Response(status_code=204)
