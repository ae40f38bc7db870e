"""Choose a response media type from the client's ``Accept`` header (RFC 9110 §12.5.1).

The formats a SPARQL answer can take depend on the query form: solutions and booleans
(SELECT, ASK) in the SPARQL results formats, graphs (CONSTRUCT, DESCRIBE, the service
description) in RDF syntaxes. Each table lists the server's preference first; the first
entry is the answer to a client that sends no ``Accept`` header or ``*/*``.
"""

from __future__ import annotations

import pyoxigraph as ox

SPARQL_JSON = "application/sparql-results+json"

RESULTS_FORMATS: dict[str, ox.QueryResultsFormat] = {
    SPARQL_JSON: ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "text/csv": ox.QueryResultsFormat.CSV,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
    "application/json": ox.QueryResultsFormat.JSON,
    "application/xml": ox.QueryResultsFormat.XML,
}
"""SPARQL results media types; the generic JSON and XML types are answered in the
SPARQL results formats, which is what clients that send them want."""

BOOLEAN_FORMATS: dict[str, ox.QueryResultsFormat] = {
    k: v for k, v in RESULTS_FORMATS.items() if v in (ox.QueryResultsFormat.JSON, ox.QueryResultsFormat.XML)
}
"""ASK answers: CSV and TSV define no boolean form (SPARQL 1.1 CSV/TSV §1)."""

GRAPH_FORMATS: dict[str, ox.RdfFormat] = {
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
    "application/ld+json": ox.RdfFormat.JSON_LD,
}


def _ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an ``Accept`` header with their quality (malformed q is 0)."""
    ranges = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media.lower(), quality))
    return ranges


def _quality(offered: str, ranges: list[tuple[str, float]]) -> float:
    """The quality of the most specific range matching ``offered`` (0 when none does)."""
    kind = offered.split("/")[0]
    best, specificity = 0.0, -1
    for media, quality in ranges:
        rank = 2 if media == offered else 1 if media == f"{kind}/*" else 0 if media == "*/*" else -1
        if rank > specificity:
            best, specificity = quality, rank
    return best


def choose(accept: str | None, offered: list[str]) -> str | None:
    """The offered media type the client prefers (ties go to the server's order), or None
    when it accepts none of them (the caller answers 406)."""
    ranges = _ranges(accept or "")
    if not ranges:
        return offered[0]
    scored = [(_quality(media, ranges), -i, media) for i, media in enumerate(offered)]
    quality, _, media = max(scored)
    return media if quality > 0 else None
