"""The SPARQL 1.1 Protocol endpoint at ``/sparql``: queries, updates, service description.

This module only routes: reading the request (``protocol``), who may update (``auth``),
what an operation may do (``policy``), running it off the event loop (``executor``)
under the limits (``query``), keeping answers until the next write (``answer_cache``),
and turning each failure into its status with a text/plain message. Methods other than
GET and POST get 405 from the router itself.
"""

from __future__ import annotations

import time
from functools import partial

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from ..http.auth import authorize_update
from ..http.negotiation import GRAPH_FORMATS, choose
from ..settings import ServerSettings
from ..state import ServerState, State
from . import service_description
from .answer_cache import UNCACHEABLE
from .policy import check_operation
from .protocol import Operation, ProtocolError, read_operation
from .query import Answer, NotAcceptable, QueryTimeout, TooManyRows, dataset_options
from .query_pool import QueryProcessFailed, QueryTooLarge
from .text import scan, with_using

router = APIRouter(tags=["SPARQL"])


def _response(answer: Answer) -> Response:
    media = answer.media_type + ("; charset=utf-8" if answer.media_type.startswith("text/") else "")
    return Response(answer.body, media_type=media, headers={"Vary": "Accept"})


def _timeout(state: ServerState) -> ProtocolError:
    return ProtocolError(
        503,
        f"the query did not finish within this server's limit of {state.settings.timeout:g} s: "
        "narrow it (more specific patterns, LIMIT) and try again",
    )


def too_large(settings: ServerSettings) -> ProtocolError:
    """503 for a query that needed more memory than one query may use."""
    return ProtocolError(
        503,
        f"the query needed more memory than this server allows one query "
        f"({settings.max_query_memory_mb} MiB): narrow it (more specific patterns, LIMIT) and try again",
    )


def process_failed(exc: QueryProcessFailed) -> ProtocolError:
    """503 for a query whose process stopped (it is replaced; the server is unaffected)."""
    return ProtocolError(
        503,
        f"the process evaluating this query stopped ({exc.how}); a new one has started and the server "
        "is unaffected: this query cannot be answered as written",
    )


def _description(request: Request, state: ServerState, endpoint: str) -> Response:
    media = choose(request.headers.get("accept"), list(GRAPH_FORMATS))
    if media is None:
        raise ProtocolError(406, f"the service description is available as {', '.join(GRAPH_FORMATS)}")
    triples = service_description.describe(endpoint, state.settings, state.knowledge_graphs)
    return _response(Answer(service_description.serialize(triples, GRAPH_FORMATS[media]), media))


async def _query(operation: Operation, request: Request, state: ServerState, endpoint: str) -> Response:
    found = scan(operation.text)
    check_operation(operation, found, state.settings)
    settings = state.settings
    deadline = time.monotonic() + settings.timeout
    options = dataset_options(
        list(operation.default_graphs), list(operation.named_graphs), names_own_dataset=found.has("FROM")
    )
    accept = request.headers.get("accept")
    job = partial(
        state.queries.run,
        operation.text,
        accept,
        deadline,
        settings.max_rows,
        {**options, "base_iri": endpoint},
    )
    key = None
    if not found.has(*UNCACHEABLE):
        key = ("sparql", operation.text, operation.default_graphs, operation.named_graphs, endpoint, accept)
    try:
        return _response(await state.answers.answer(key, job))
    except SyntaxError as exc:
        raise ProtocolError(400, f"malformed query: {exc}") from None
    except NotAcceptable as exc:
        raise ProtocolError(406, str(exc)) from None
    except QueryTimeout:
        raise _timeout(state) from None
    except QueryTooLarge:
        raise too_large(settings) from None
    except QueryProcessFailed as exc:
        raise process_failed(exc) from None
    except TooManyRows:
        raise ProtocolError(
            400,
            f"the answer has more than this server's limit of {settings.max_rows} rows: "
            "add LIMIT (and OFFSET to page through it) or narrow the query",
        ) from None
    except OSError as exc:
        raise ProtocolError(500, f"the query failed: {exc}") from None


async def _update(operation: Operation, request: Request, state: ServerState, endpoint: str) -> Response:
    authorize_update(state.settings, request.headers.get("authorization"))
    check_operation(operation, scan(operation.text), state.settings)
    text = operation.text
    if operation.default_graphs or operation.named_graphs:
        text = with_using(text, list(operation.default_graphs), list(operation.named_graphs))
    # No timeout: an update cannot be abandoned without leaving the client unsure whether
    # it was applied (it may still commit after the answer).
    try:
        await state.write(partial(state.store.update, text, base_iri=endpoint))
    except SyntaxError as exc:
        raise ProtocolError(400, f"malformed update: {exc}") from None
    except OSError as exc:
        raise ProtocolError(500, f"the update failed: {exc}") from None
    return Response(status_code=204)


@router.api_route(
    "/sparql",
    methods=["GET", "POST"],
    name="sparql",
    operation_id="sparql",
    summary="SPARQL 1.1 Protocol endpoint",
    description="Query by GET or POST (form or application/sparql-query); update by POST with a bearer "
    "token when the server allows updates; without a query, GET returns the SPARQL 1.1 Service "
    "Description. The default graph is the union of all graphs.",
    response_class=Response,
)
async def sparql(request: Request, state: State) -> Response:
    method = "GET" if request.method == "HEAD" else request.method
    endpoint = str(request.url.replace(query="", fragment=""))
    try:
        operation = read_operation(
            method,
            request.query_params.multi_items(),
            request.headers.get("content-type"),
            await request.body(),
        )
        if operation is None:
            return _description(request, state, endpoint)
        if operation.kind == "update":
            return await _update(operation, request, state, endpoint)
        return await _query(operation, request, state, endpoint)
    except ProtocolError as exc:
        return PlainTextResponse(exc.message, exc.status, headers=exc.headers)
