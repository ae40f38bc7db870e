"""The named queries of ``queries/`` as a web API: ``GET /api/{name}`` (and ``POST`` when
the query's header says ``method: POST``), one route per query, made when the
application is created so that each appears in the OpenAPI document with its summary,
tags and typed parameters (see ``named_query_spec`` for the header and the binding).

Parameters come from the URL's query string and, for POST, from an
``application/x-www-form-urlencoded`` body; a parameter given twice, an unknown one or a
missing required one is refused (400) rather than guessed at. A bound query runs like a
query sent to ``/sparql``: over the union of all graphs, in a query process, under the
server's timeout and row cap, answered in the results format the client's ``Accept``
prefers, and its answer is kept until the next write (``answer_cache``), keyed by the
bound text and ``Accept``. ``limit`` and ``offset`` page a SELECT query's rows
(``paging``), with ``Link`` headers to the next and previous pages.
"""

from __future__ import annotations

import time
from functools import partial
from urllib.parse import parse_qsl

import orjson
import pyoxigraph as ox
from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from ...knowledge import NamedQuery
from ..http.negotiation import GRAPH_FORMATS, RESULTS_FORMATS, SPARQL_JSON, choose
from ..http.rdf_output import content_type
from ..sparql.answer_cache import UNCACHEABLE
from ..sparql.protocol import FORM, ProtocolError
from ..sparql.query import Answer, NotAcceptable, QueryTimeout, TooManyRows
from ..sparql.query_pool import QueryProcessFailed, QueryTooLarge
from ..sparql.router import process_failed, too_large
from ..sparql.text import scan
from ..state import ServerState, State
from .paging import PAGING, Page
from .spec import ApiQuery, api_query


async def _values(request: Request) -> dict[str, str]:
    """The parameter values of a request: its query string and, for POST, its form body."""
    fields = request.query_params.multi_items()
    if request.method == "POST":
        body = await request.body()
        media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if body and media != FORM:
            raise ProtocolError(415, f"send the parameters as {FORM} (or in the URL)")
        try:
            fields += parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise ProtocolError(400, "the form is not valid UTF-8") from None
    values: dict[str, str] = {}
    for name, value in fields:
        if name in values:
            raise ProtocolError(400, f"parameter {name!r} is given more than once")
        values[name] = value
    return values


async def _answer(
    state: ServerState, text: str, accept: str | None, cacheable: bool, max_rows: int | None = None
) -> Answer:
    settings = state.settings
    deadline = time.monotonic() + settings.timeout
    cap = max_rows or settings.max_rows
    job = partial(state.queries.run, text, accept, deadline, cap, {"union": True})
    key = ("api", text, accept) if cacheable else None
    try:
        return await state.answers.answer(key, job)
    except NotAcceptable as exc:
        raise ProtocolError(406, str(exc)) from None
    except QueryTimeout:
        raise ProtocolError(503, f"the query did not finish within {settings.timeout:g} s") from None
    except TooManyRows:
        raise ProtocolError(
            400, f"the answer has more than {settings.max_rows} rows: narrow it with the parameters"
        ) from None
    except QueryTooLarge:
        raise too_large(settings) from None
    except QueryProcessFailed as exc:
        raise process_failed(exc) from None


async def _page(
    state: ServerState, text: str, columns: tuple[str, ...], page: Page, accept: str | None, cacheable: bool
) -> tuple[Answer, bool]:
    """One page of a SELECT query's answer in the format ``accept`` prefers, and whether more
    rows follow. The page and one row more are asked for as SPARQL JSON, where rows can be
    counted and the extra one dropped, then written in the client's format."""
    media = choose(accept, list(RESULTS_FORMATS))
    if media is None:
        raise ProtocolError(406, f"the answer can be given as {', '.join(RESULTS_FORMATS)}")
    answer = await _answer(state, page.text(text, columns), SPARQL_JSON, cacheable, page.limit + 1)
    results = orjson.loads(answer.body)
    bindings = results["results"]["bindings"]
    more = len(bindings) > page.limit
    del bindings[page.limit :]
    body = orjson.dumps(results)
    if RESULTS_FORMATS[media] != ox.QueryResultsFormat.JSON:
        parsed = ox.parse_query_results(body, format=ox.QueryResultsFormat.JSON)
        body = parsed.serialize(format=RESULTS_FORMATS[media])
    return Answer(body, media), more


def _endpoint(query: ApiQuery):
    cacheable = not scan(query.text).has(*UNCACHEABLE)

    async def run_named_query(request: Request, state: State) -> Response:
        accept = request.headers.get("accept")
        headers = {"Vary": "Accept"}
        try:
            values = await _values(request)
            page = None if query.columns is None else Page.of(values, state.settings.max_rows)
            if page is None:
                answer = await _answer(state, query.bind(values), accept, cacheable)
            else:
                rest = {k: v for k, v in values.items() if k not in PAGING}
                answer, more = await _page(state, query.bind(rest), query.columns, page, accept, cacheable)
                base = (state.settings.public_url or str(request.base_url)).rstrip("/")
                if links := page.links(base + request.url.path, rest, more):
                    headers["Link"] = links
        except ValueError as exc:
            return PlainTextResponse(str(exc), 400)
        except ProtocolError as exc:
            return PlainTextResponse(exc.message, exc.status)
        return Response(answer.body, media_type=content_type(answer.media_type), headers=headers)

    return run_named_query


def _paging_parameters(query: ApiQuery, max_rows: int) -> list[dict]:
    """``limit`` and ``offset`` (see ``paging``), for a SELECT query."""
    if query.columns is None:
        return []
    limit = (
        f"Send at most this many rows (0 to {max_rows}, this server's row limit; {max_rows} when only "
        "offset is given). With limit or offset, the Link header gives the next and previous pages."
    )
    return [
        {
            "name": "limit",
            "schema": {"type": "integer", "minimum": 0, "maximum": max_rows},
            "description": limit,
        },
        {
            "name": "offset",
            "schema": {"type": "integer", "minimum": 0},
            "description": "Skip this many rows.",
        },
    ]


def _openapi(query: ApiQuery, method: str, max_rows: int) -> dict:
    """The parameters in the OpenAPI document: in the query string for GET, as form fields
    for POST (which also takes them in the query string)."""
    fields = [
        {"name": p.name, "required": p.required, "schema": p.schema, "description": p.description}
        for p in query.parameters
    ] + [{**p, "required": False} for p in _paging_parameters(query, max_rows)]
    if method == "GET":
        return {"parameters": [{**field, "in": "query"} for field in fields]}
    schema = {
        "type": "object",
        "properties": {f["name"]: {**f["schema"], "description": f["description"]} for f in fields},
        "required": [f["name"] for f in fields if f["required"]],
    }
    return {"requestBody": {"content": {FORM: {"schema": schema}}}}


def _description(query: ApiQuery) -> str:
    text = query.text.strip()
    lead = f"{query.description}\n\n" if query.description else ""
    return f"{lead}Runs `queries/{query.name}.rq`:\n\n```sparql\n{text}\n```"


LINK_HEADER = {
    "description": 'With limit or offset: the next page (rel="next") when more rows follow and the previous '
    'one (rel="prev") unless the page starts at the first row (RFC 8288).',
    "schema": {"type": "string"},
}


def named_query_router(queries: dict[str, NamedQuery], max_rows: int) -> APIRouter:
    """One route per named query (``max_rows``: the server's row limit, the largest
    ``limit``); ``KnowledgeBaseError`` for a query whose header or parameters the server
    cannot honour."""
    router = APIRouter(prefix="/api")
    answers = {"content": {media: {} for media in (*RESULTS_FORMATS, *GRAPH_FORMATS)}}
    for named in queries.values():
        query = api_query(named)
        for method in query.methods:
            router.add_api_route(
                f"/{query.name}",
                _endpoint(query),
                methods=[method],
                name=f"api_{query.name}" + ("" if method == "GET" else "_post"),
                operation_id=f"api_{query.name.replace('-', '_')}" + ("" if method == "GET" else "_post"),
                summary=query.summary,
                description=_description(query),
                tags=list(query.tags) or ["named queries"],
                response_class=Response,
                responses={
                    200: {
                        "description": "The query's answer, in the format Accept asks for.",
                        **answers,
                        **({"headers": {"Link": LINK_HEADER}} if query.columns is not None else {}),
                    },
                    400: {
                        "description": "A parameter is missing, unknown, given twice or not of its type, "
                        "or limit is above the server's row limit."
                    },
                    406: {"description": "The Accept header allows none of the answer's formats."},
                    503: {"description": "The query ran past the server's timeout."},
                },
                openapi_extra=_openapi(query, method, max_rows),
            )
    return router
