"""Real SPARQL clients against a running server: SPARQLWrapper and rdflib's SPARQLStore.

These are what other systems use to talk to an endpoint; each sends its own Accept
headers, methods and dataset parameters, so they catch what a hand-written request
would not (a result format a client cannot parse, a content type it does not expect).
"""

from __future__ import annotations

import json

import pytest
from rdflib import Graph, Namespace, URIRef
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from sparql_server import EXAMPLES, TOKEN, running
from SPARQLWrapper import CSV, JSON, JSONLD, POST, POSTDIRECTLY, RDFXML, TURTLE, XML, SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import Unauthorized

LBP = Namespace("https://w3id.org/lbp-imaging/")
CASE = URIRef("https://example.org/case/30-infection-with-cauda-equina")
RECOMMENDATION = f"""PREFIX lbp: <{LBP}>
SELECT ?procedure ?urgency WHERE {{
  GRAPH <{CASE}> {{ ?r lbp:forCase <{CASE}> ; lbp:recommendedProcedure ?procedure ; lbp:urgency ?urgency }}
}}"""
CASES = f"CONSTRUCT WHERE {{ ?case a <{LBP.PatientCase}> }}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    args = ["--cases", str(EXAMPLES), "--allow-update"]
    with running(args, tmp_path_factory.mktemp("logs"), env={"LBP_IMAGING_TOKEN": TOKEN}) as server:
        yield server


def _example_cases() -> set[str]:
    """The case IRIs the examples' expectations name (one file may hold several cases)."""
    found = set()
    for path in EXAMPLES.glob("*.expected.json"):
        data = json.loads(path.read_text())
        found.update(entry["case"] for entry in (data if isinstance(data, list) else [data]))
    return found


def _wrapper(server, fmt: str, query: str) -> SPARQLWrapper:
    client = SPARQLWrapper(server.endpoint, returnFormat=fmt)
    client.setQuery(query)
    return client


def test_sparqlwrapper_reads_a_case_recommendation_as_json(server):
    bindings = _wrapper(server, JSON, RECOMMENDATION).queryAndConvert()["results"]["bindings"]
    assert [(b["procedure"]["value"], b["urgency"]["value"]) for b in bindings] == [
        (str(LBP.MRILumbarSpineWithoutAndWithContrast), str(LBP.Emergent))
    ]


def test_sparqlwrapper_reads_xml_and_csv_and_posts_directly(server):
    document = _wrapper(server, XML, f"ASK {{ <{CASE}> a <{LBP.PatientCase}> }}").queryAndConvert()
    assert document.getElementsByTagName("boolean")[0].firstChild.data == "true"
    client = _wrapper(server, CSV, RECOMMENDATION)
    client.setMethod(POST)
    client.setRequestMethod(POSTDIRECTLY)
    assert client.queryAndConvert().decode().splitlines() == [
        "procedure,urgency",
        f"{LBP.MRILumbarSpineWithoutAndWithContrast},{LBP.Emergent}",
    ]


@pytest.mark.parametrize("fmt", [JSONLD, RDFXML, TURTLE])
@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")  # inside the clients
def test_sparqlwrapper_gets_a_construct_in_each_rdf_format(server, fmt):
    result = _wrapper(server, fmt, CASES).queryAndConvert()
    graph = result if isinstance(result, Graph) else Graph().parse(data=result, format="turtle")
    assert len(set(graph.subjects())) == len(_example_cases())  # 41-two-cases.ttl holds two


def test_sparqlwrapper_updates_only_with_the_token(server):
    update = SPARQLWrapper(server.endpoint)
    update.setMethod(POST)
    update.setQuery("INSERT DATA { GRAPH <urn:client> { <urn:s> <urn:p> <urn:wrapper> } }")
    with pytest.raises(Unauthorized):
        update.query()
    update.addCustomHttpHeader("Authorization", f"Bearer {TOKEN}")
    assert update.query().response.status == 204
    ask = _wrapper(server, JSON, "ASK { GRAPH <urn:client> { <urn:s> <urn:p> <urn:wrapper> } }")
    assert ask.queryAndConvert()["boolean"] is True


def test_rdflib_sparqlstore_reads_facts_and_queries(server):
    graph = Graph(store=SPARQLStore(server.endpoint))
    assert graph.value(CASE, LBP.ageInYears).toPython() == 61
    assert (CASE, LBP.hasFinding, LBP.SaddleAnaesthesia) in graph
    rows = graph.query(
        f"PREFIX lbp: <{LBP}> SELECT ?p WHERE {{ ?r lbp:forCase ?c ; lbp:recommendedProcedure ?p }}",
        initBindings={"c": CASE},
    )
    assert [row.p for row in rows] == [LBP.MRILumbarSpineWithoutAndWithContrast]


def test_rdflib_sparqlstore_sees_each_case_as_a_named_graph(server):
    store = SPARQLStore(server.endpoint)
    assert {CASE, URIRef(LBP) + "ontology/criteria"} <= set(store.contexts())
    case_graph = Graph(store=SPARQLStore(server.endpoint), identifier=CASE)  # sent as default-graph-uri
    subjects = set(case_graph.subjects())
    assert CASE in subjects
    assert LBP.SuspectedCaudaEquinaSyndrome not in subjects  # the ontology is not in the case graph
