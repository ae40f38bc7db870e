"""Read the body of ``POST /cases`` into case quads, through the same reader as the command
line (``reasoner.pipeline.cases.load``) and the Python API (``pipeline.documents``).

The reader takes files and chooses the syntax by extension, so the body is read as a
document whose extension says what its Content-Type says; JSON-LD documents get
the project's published context locally, exactly as case files do. A FHIR R4 Bundle is
written as ``.json``: ``cases.load`` reads a JSON file that names a ``resourceType`` as
FHIR (ages and durations counted to the reference date of the ``InputOptions``) and
any other as JSON-LD.

The quads are put in N-Triples order, the order ``GET /cases/{id}`` reads them back in,
so that the facts of a stored case are listed the same way in both answers.
"""

from __future__ import annotations

from email.message import Message

from ...pipeline import cases as case_input
from ...pipeline.documents import MEDIA_TYPES, Document, load_documents
from ..sparql.protocol import ProtocolError

BODY_NAME = "request-body"
"""What messages call the body (the name of its temporary file, without the folder)."""

MAX_BODY_BYTES = 1_000_000
"""The largest body accepted: one case is a few kilobytes, a FHIR Bundle some tens."""


def body_suffix(content_type: str | None) -> str:
    """The file extension for a body of this Content-Type; 415 for any other type, or for
    a charset other than UTF-8."""
    expected = ", ".join(MEDIA_TYPES)
    if not content_type or not content_type.strip():
        raise ProtocolError(415, f"a case needs a Content-Type header: {expected}")
    header = Message()
    header["content-type"] = content_type
    media, charset = header.get_content_type(), header.get_param("charset")
    if media not in MEDIA_TYPES:
        raise ProtocolError(415, f"Content-Type {media} is not supported for a case: use {expected}")
    if isinstance(charset, str) and charset.lower() not in ("utf-8", "utf8"):
        raise ProtocolError(415, f"charset {charset} is not supported: send the case in UTF-8")
    return MEDIA_TYPES[media]


def read_body(body: bytes, suffix: str, options: case_input.InputOptions) -> case_input.LoadedInput:
    """The quads of the case(s) in ``body``, in N-Triples order and with no source file
    named (the body has none: a FHIR Bundle's warnings, and those about terms the ontology
    does not define, call it the request body); 400 when the body is empty or cannot be
    parsed."""
    if not body.strip():
        raise ProtocolError(400, "the request body is empty: send the case")
    # Read as a file named after the body; relative IRIs resolve against that name.
    loaded = load_documents([Document(body, suffix, BODY_NAME, BODY_NAME)], options)
    if loaded.errors:
        raise ProtocolError(400, "; ".join(f"cannot read the case: {e.message}" for e in loaded.errors))
    loaded.quads.sort(key=str)
    loaded.source_of.clear()
    return loaded
