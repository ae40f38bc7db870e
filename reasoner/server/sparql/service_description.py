"""The SPARQL 1.1 Service Description of the endpoint (what GET /sparql returns).

It tells a client, in RDF, what it can rely on: the endpoint's URL, the languages and
result formats, that the default graph is the union of all graphs
(``sd:UnionDefaultGraph``), whether federation is on, and the named graphs of the
knowledge base. Case graphs are not listed (there may be very many); the description
says how they are named.
"""

from __future__ import annotations

import pyoxigraph as ox

from ..settings import ServerSettings

SD = "http://www.w3.org/ns/sparql-service-description#"
FORMATS = "http://www.w3.org/ns/formats/"
RESULT_FORMATS = (
    "SPARQL_Results_JSON",
    "SPARQL_Results_XML",
    "SPARQL_Results_CSV",
    "SPARQL_Results_TSV",
    "Turtle",
    "N-Triples",
    "RDF_XML",
    "JSON-LD",
)
PREFIXES = {
    "sd": SD,
    "formats": FORMATS,
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "dcterms": "http://purl.org/dc/terms/",
}
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
RDFS_COMMENT = ox.NamedNode(PREFIXES["rdfs"] + "comment")
TITLE = ox.NamedNode(PREFIXES["dcterms"] + "title")


def _sd(name: str) -> ox.NamedNode:
    return ox.NamedNode(SD + name)


def describe(endpoint: str, settings: ServerSettings, knowledge_graphs: list[str]) -> list[ox.Triple]:
    """The service description of the endpoint at ``endpoint`` as triples."""
    service, dataset, default = ox.BlankNode(), ox.BlankNode(), ox.BlankNode()
    triples = [
        ox.Triple(service, RDF_TYPE, _sd("Service")),
        ox.Triple(service, _sd("endpoint"), ox.NamedNode(endpoint)),
        ox.Triple(service, TITLE, ox.Literal("lbp-imaging knowledge graph", language="en")),
        ox.Triple(
            service,
            RDFS_COMMENT,
            ox.Literal(
                "Imaging criteria for low back pain (ontology, source statements, shapes) and the "
                "assessed cases, each case in a named graph named by the case IRI. The default "
                "graph is the union of all graphs. Decision support, not diagnosis.",
                language="en",
            ),
        ),
        ox.Triple(service, _sd("supportedLanguage"), _sd("SPARQL11Query")),
        ox.Triple(service, _sd("feature"), _sd("UnionDefaultGraph")),
        ox.Triple(
            service, _sd("defaultEntailmentRegime"), ox.NamedNode("http://www.w3.org/ns/entailment/Simple")
        ),
        ox.Triple(service, _sd("defaultDataset"), dataset),
        ox.Triple(dataset, RDF_TYPE, _sd("Dataset")),
        ox.Triple(dataset, _sd("defaultGraph"), default),
        ox.Triple(default, RDF_TYPE, _sd("Graph")),
    ]
    triples += [ox.Triple(service, _sd("resultFormat"), ox.NamedNode(FORMATS + f)) for f in RESULT_FORMATS]
    if settings.allow_update:
        triples.append(ox.Triple(service, _sd("supportedLanguage"), _sd("SPARQL11Update")))
    if settings.allow_service:
        triples.append(ox.Triple(service, _sd("feature"), _sd("BasicFederatedQuery")))
    for name in knowledge_graphs:
        named = ox.BlankNode()
        triples += [
            ox.Triple(dataset, _sd("namedGraph"), named),
            ox.Triple(named, RDF_TYPE, _sd("NamedGraph")),
            ox.Triple(named, _sd("name"), ox.NamedNode(name)),
        ]
    return triples


def serialize(triples: list[ox.Triple], fmt: ox.RdfFormat) -> bytes:
    """The description in ``fmt``, with readable prefixes where the syntax has them."""
    if fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.RDF_XML):
        return ox.serialize(triples, format=fmt, prefixes=PREFIXES)
    return ox.serialize(triples, format=fmt)
