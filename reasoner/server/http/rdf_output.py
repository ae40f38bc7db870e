"""Write RDF for the server's documents (case records, term descriptions) in the syntax a
client asked for, with the knowledge base's prefixes where the syntax has prefixes."""

from __future__ import annotations

import pyoxigraph as ox

from ...knowledge import LBP
from .negotiation import GRAPH_FORMATS

PREFIXES = {
    "lbp": str(LBP),
    "stmt": f"{LBP}statement/",
    "src": f"{LBP}source/",
    "lbpsh": f"{LBP}shapes/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dcterms": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#",
    "oa": "http://www.w3.org/ns/oa#",
    "sh": "http://www.w3.org/ns/shacl#",
    "vann": "http://purl.org/vocab/vann/",
}


def serialize(triples: list[ox.Triple], media_type: str) -> bytes:
    """``triples`` in the RDF syntax of ``media_type`` (one of ``GRAPH_FORMATS``), declaring
    the prefixes it uses, sorted so that each subject's triples are written together."""
    fmt = GRAPH_FORMATS[media_type]
    triples = sorted(triples, key=lambda t: (str(t.subject), str(t.predicate), str(t.object)))
    if fmt not in (ox.RdfFormat.TURTLE, ox.RdfFormat.RDF_XML):
        return ox.serialize(triples, format=fmt)
    terms = [t for triple in triples for t in triple]
    iris = {t.value for t in terms if isinstance(t, ox.NamedNode)}
    iris |= {t.datatype.value for t in terms if isinstance(t, ox.Literal)}
    used = {p: ns for p, ns in PREFIXES.items() if any(iri.startswith(ns) for iri in iris)}
    return ox.serialize(triples, format=fmt, prefixes=used)


def content_type(media_type: str) -> str:
    """The Content-Type header for ``media_type``: text types say their charset."""
    return media_type + ("; charset=utf-8" if media_type.startswith("text/") else "")
