"""Run one SPARQL query under the server's limits and serialize its answer.

It runs in a query process (``query_process``), which the server kills at the deadline;
what this module adds is an orderly end where one is possible. pyoxigraph cannot stop a
query it is evaluating, but it can stop pulling the answer: it takes the answer one
solution (or triple) at a time and checks, before taking the next, that the deadline has
not passed and the row cap is not exceeded, which ends the evaluation and keeps the
process for the next query. A query that computes for a long time before its first
solution (a big aggregate or sort) is not stopped this way: its process is killed.

Solutions are written as SPARQL JSON by pyoxigraph's own serializer, which works without
holding the GIL, when the row cap can be put into the query itself (``with_row_cap``:
the query asks for one solution more than the cap, so that an answer too large is still
recognised); the serializer writes into ``_Output``, which checks the deadline at each
chunk. Otherwise (a query the scanner cannot follow) they are written here one at a
time, checking before each. The other results formats are pyoxigraph's serializers,
converting that JSON.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pyoxigraph as ox

from ..http.negotiation import BOOLEAN_FORMATS, GRAPH_FORMATS, RESULTS_FORMATS, choose
from .text import with_row_cap

XSD_STRING = ox.NamedNode("http://www.w3.org/2001/XMLSchema#string")


class QueryTimeout(Exception):
    """The query ran past its deadline."""


class TooManyRows(Exception):
    """The answer would hold more solutions or triples than the cap."""


class NotAcceptable(Exception):
    """The client accepts none of the formats this kind of answer can take."""


@dataclass(frozen=True)
class Limits:
    """How long (until ``deadline``, a ``time.monotonic()`` value) and how large (``max_rows``
    None: no cap, as on the command line)."""

    deadline: float
    max_rows: int | None

    def check(self, rows: int) -> None:
        """Called with the number of rows taken so far, before taking another."""
        if self.max_rows is not None and rows > self.max_rows:
            raise TooManyRows
        if time.monotonic() > self.deadline:
            raise QueryTimeout


@dataclass(frozen=True)
class Answer:
    body: bytes
    media_type: str


def dataset_options(default_graphs: list[str], named_graphs: list[str], names_own_dataset: bool) -> dict:
    """The dataset of a query, as plain data (it is sent to a query process): the graphs
    ``default_graph`` and ``named_graphs``, or ``union`` (see ``pyoxigraph_options``).

    A dataset given by the protocol (``default-graph-uri``, ``named-graph-uri``) is used
    exactly: graphs not listed are not visible, an empty list stays empty. Otherwise a
    query with its own ``FROM``/``FROM NAMED`` uses that. Otherwise the default graph is the
    union of all graphs of the store (knowledge base and cases) and every graph is a
    named graph. The union is a bag, as in pyoxigraph: a triple held in two graphs
    matches twice (use ``DISTINCT``); the server keeps shared triples in one graph.
    """
    if default_graphs or named_graphs:
        return {"default_graph": default_graphs, "named_graphs": named_graphs}
    return {} if names_own_dataset else {"union": True}


def pyoxigraph_options(options: dict) -> dict:
    """pyoxigraph's ``Store.query`` arguments for ``dataset_options`` (and ``base_iri``)."""
    arguments: dict = {}
    if options.get("union"):
        arguments["use_default_graph_as_union"] = True
    if "default_graph" in options:
        arguments["default_graph"] = [ox.NamedNode(g) for g in options["default_graph"]]
        arguments["named_graphs"] = [ox.NamedNode(g) for g in options["named_graphs"]]
    if options.get("base_iri"):
        arguments["base_iri"] = options["base_iri"]
    return arguments


def _term(term: ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple) -> dict:
    """A term in the SPARQL 1.1 (and 1.2, for triple terms) JSON results format."""
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Triple):
        return {
            "type": "triple",
            "value": {
                "subject": _term(term.subject),
                "predicate": _term(term.predicate),
                "object": _term(term.object),
            },
        }
    out = {"type": "literal", "value": term.value}
    if term.language:
        out["xml:lang"] = term.language
        if term.direction is not None:
            out["its:dir"] = str(term.direction)
    elif term.datatype != XSD_STRING:
        out["datatype"] = term.datatype.value
    return out


def _solutions_json(solutions: ox.QuerySolutions, limits: Limits) -> bytes:
    names = [v.value for v in solutions.variables]
    bindings = []
    for solution in solutions:
        limits.check(len(bindings) + 1)
        bindings.append({name: _term(solution[name]) for name in names if solution[name] is not None})
    return orjson.dumps({"head": {"vars": names}, "results": {"bindings": bindings}})


class _Output:
    """Where pyoxigraph writes a JSON answer: the chunks, with the deadline checked at each
    (raising from ``write`` stops the serializer, and so the evaluation)."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.chunks: list[bytes] = []

    def write(self, chunk: bytes) -> int:
        self.limits.check(0)
        self.chunks.append(bytes(chunk))
        return len(chunk)

    def flush(self) -> None:
        """Nothing to do: the chunks are joined once the serializer is done."""


def _rows_at_most(body: bytes, rows: int) -> bool:
    """Whether the SPARQL JSON ``body`` holds at most ``rows`` solutions. pyoxigraph writes
    ``},{`` between two solutions and nowhere else but inside string values, so one more
    than its count is an upper bound, exact enough unless the answer is near the cap; there
    the bindings are counted."""
    if body.count(b"},{") + 1 <= rows:
        return True
    return len(orjson.loads(body)["results"]["bindings"]) <= rows


def _native_json(solutions: ox.QuerySolutions, limits: Limits) -> bytes:
    output = _Output(limits)
    solutions.serialize(output, format=ox.QueryResultsFormat.JSON)
    body = b"".join(output.chunks)
    if limits.max_rows is not None and not _rows_at_most(body, limits.max_rows):
        raise TooManyRows
    return body


def _triples(triples: ox.QueryTriples, limits: Limits) -> Iterator[ox.Triple]:
    for count, triple in enumerate(triples, start=1):
        limits.check(count)
        yield triple


def _choose(accept: str | None, formats: dict) -> str:
    media = choose(accept, list(formats))
    if media is None:
        offered = ", ".join(formats)
        raise NotAcceptable(f"the answer can be given as {offered}; the Accept header allows none")
    return media


def run_query(store: ox.Store, text: str, accept: str | None, limits: Limits, **options) -> Answer:
    """Evaluate ``text`` (``options`` are pyoxigraph's: dataset, ``base_iri``) and return the
    answer in the format the client prefers. Raises ``SyntaxError`` for a malformed query,
    ``NotAcceptable``, ``QueryTimeout`` or ``TooManyRows``."""
    limits.check(0)  # the deadline may have passed while the query waited for a thread
    capped = None if limits.max_rows is None else with_row_cap(text, limits.max_rows + 1)
    try:
        result = store.query(capped or text, **options)
    except SyntaxError:
        if capped is None:
            raise
        capped, result = None, store.query(text, **options)  # the error as the client wrote it
    if isinstance(result, ox.QueryBoolean):
        media = _choose(accept, BOOLEAN_FORMATS)
        return Answer(result.serialize(format=BOOLEAN_FORMATS[media]), media)
    if isinstance(result, ox.QuerySolutions):
        media = _choose(accept, RESULTS_FORMATS)
        native = capped is not None or limits.max_rows is None
        body = _native_json(result, limits) if native else _solutions_json(result, limits)
        if RESULTS_FORMATS[media] != ox.QueryResultsFormat.JSON:
            parsed = ox.parse_query_results(body, format=ox.QueryResultsFormat.JSON)
            body = parsed.serialize(format=RESULTS_FORMATS[media])
        return Answer(body, media)
    media = _choose(accept, GRAPH_FORMATS)
    return Answer(ox.serialize(_triples(result, limits), format=GRAPH_FORMATS[media]), media)
