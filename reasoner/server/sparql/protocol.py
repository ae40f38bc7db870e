"""Read a SPARQL 1.1 Protocol request: which operation, its text and its dataset.

The three ways to send an operation (SPARQL 1.1 Protocol §2.1, §2.2): GET with the
query in the URL; POST of an HTML form (``application/x-www-form-urlencoded``, its
fields merged with the URL's); POST of the text itself (``application/sparql-query`` or
``application/sparql-update``, the dataset in the URL). Anything else a client can get
wrong is a ``ProtocolError`` carrying the HTTP status and a message for a person: 415
for a missing, unknown or non-UTF-8 content type, 400 for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

import pyoxigraph as ox

FORM = "application/x-www-form-urlencoded"
DIRECT_QUERY = "application/sparql-query"
DIRECT_UPDATE = "application/sparql-update"


class ProtocolError(Exception):
    """A request the server answers with ``status`` and ``message`` (text/plain)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class Operation:
    """One query or update with the dataset the request gave for it: ``default-graph-uri``
    and ``named-graph-uri`` for a query, ``using-graph-uri`` and ``using-named-graph-uri``
    for an update."""

    kind: str  # "query" or "update"
    text: str
    default_graphs: tuple[str, ...] = ()
    named_graphs: tuple[str, ...] = ()


def _content_type(header: str | None) -> tuple[str | None, str | None]:
    """The media type and charset of a Content-Type header, lower-cased."""
    if not header or not header.strip():
        return None, None
    media, *params = (part.strip() for part in header.split(";"))
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.lower(), charset


def _text(body: bytes, charset: str | None) -> str:
    if charset not in (None, "utf-8", "utf8"):
        raise ProtocolError(415, f"charset {charset} is not supported: send the request body in UTF-8")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(400, f"the request body is not valid UTF-8: {_where(exc)}") from None


def _where(exc: UnicodeDecodeError) -> str:
    """Where the first byte that is not UTF-8 is, in the client's own terms."""
    return f"byte 0x{exc.object[exc.start]:02x} at offset {exc.start} (counted from 0)"


def _fields(method: str, url_fields: list[tuple[str, str]], content_type: str | None, body: bytes):
    if method != "POST":
        return list(url_fields)
    media, charset = _content_type(content_type)
    expected = f"{FORM}, {DIRECT_QUERY} or {DIRECT_UPDATE}"
    if media is None:
        raise ProtocolError(415, f"a POST needs a Content-Type header: {expected}")
    if media == FORM:
        try:
            form = parse_qsl(_text(body, charset), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError as exc:
            raise ProtocolError(400, f"the form is not valid UTF-8: {_where(exc)}") from None
        return [*url_fields, *form]
    if media == DIRECT_QUERY:
        return [*url_fields, ("query", _text(body, charset))]
    if media == DIRECT_UPDATE:
        return [*url_fields, ("update", _text(body, charset))]
    raise ProtocolError(415, f"Content-Type {media} is not supported: use {expected}")


def _iris(fields: list[tuple[str, str]], name: str) -> tuple[str, ...]:
    iris = tuple(value for key, value in fields if key == name)
    for iri in iris:
        try:
            ox.NamedNode(iri)
        except ValueError:
            raise ProtocolError(400, f"{name} {iri!r} is not an absolute IRI") from None
    return iris


def read_operation(
    method: str, url_fields: list[tuple[str, str]], content_type: str | None, body: bytes
) -> Operation | None:
    """The operation of a request to the endpoint, or None for a GET that carries neither
    a query nor an update: a request for the service description."""
    fields = _fields(method, url_fields, content_type, body)
    queries = [value for key, value in fields if key == "query"]
    updates = [value for key, value in fields if key == "update"]
    if updates and method != "POST":
        raise ProtocolError(400, "an update must be sent by POST (SPARQL 1.1 Protocol §2.2)")
    if queries and updates:
        raise ProtocolError(400, "the request holds both a query and an update: send one operation")
    if len(queries) > 1 or len(updates) > 1:
        raise ProtocolError(400, "the request holds more than one query or update: send one")
    if queries:
        return Operation(
            "query", queries[0], _iris(fields, "default-graph-uri"), _iris(fields, "named-graph-uri")
        )
    if updates:
        return Operation(
            "update", updates[0], _iris(fields, "using-graph-uri"), _iris(fields, "using-named-graph-uri")
        )
    if method == "GET":
        return None
    raise ProtocolError(400, "the request holds no query and no update")
