"""The SPARQL 1.1 Protocol and Service Description test suites, run against the server.

The tests are read from the W3C manifests in ``shared/reference/w3c-sparql11-protocol``
(beside the repository): every ``mf:entries`` item becomes one pytest case named by its
manifest IRI, so a test added to or missing from the manifest shows up here. A protocol
test is a list of HTTP requests with expected statuses and result kinds; each request is
sent as written, to a real server process, with ``/sparql/`` rewritten to the endpoint.

* Query tests (and malformed-query tests) run on a read-only server whose on-disk store
  was preloaded with the data files the manifest names (``ut:graphData``), each in the
  graph its ``rdfs:label`` gives, plus the example cases.
* Update tests need a server started with ``--allow-update``; they run on a second
  server and send its bearer token (without it they would be refused, which is tested
  in test_server_safety.py).
* The three service-description tests have no action in their manifest, only a name;
  each name maps to a check here, and a test with no check fails instead of passing.

The pass count is printed at the end of the module (run with ``-v`` to see each test).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pyoxigraph as ox
import pytest
from pyshacl import validate
from rdflib import RDF, RDFS, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection
from sparql_server import EXAMPLES, ROOT, TOKEN, running

W3C = ROOT.parent / "shared" / "reference" / "w3c-sparql11-protocol"
SD_SHAPES = Path(__file__).parent / "data" / "service-description-shapes.ttl"
MF = Namespace("http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#")
HT = Namespace("http://www.w3.org/2011/http#")
CNT = Namespace("http://www.w3.org/2011/content#")
UT = Namespace("http://www.w3.org/2009/sparql/tests/test-update#")
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
RDF_MEDIA_TYPES = ("text/turtle", "application/n-triples", "application/rdf+xml", "application/ld+json")
UPDATE_REQUEST = re.compile(r"(^|[?&])(update|using-graph-uri|using-named-graph-uri)=")
OUTCOMES: dict[str, str] = {}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    statuses: frozenset[int]  # expected status classes: 2 for 2xx, ...
    result_kind: str | None  # "boolean", "tabular", "RDF" or None
    boolean: bool | None

    @property
    def is_update(self) -> bool:
        content_type = self.headers.get("content-type", "")
        text = self.path.partition("?")[2] + "&" + (self.body or b"").decode("utf-8", "replace")
        return content_type.startswith("application/sparql-update") or bool(UPDATE_REQUEST.search(text))


@dataclass(frozen=True)
class ManifestTest:
    iri: str
    manifest: str
    name: str
    kind: str  # local name of the test type
    requests: tuple[Request, ...] = ()
    graph_data: tuple[tuple[str, Path], ...] = ()  # (graph name, data file)
    needs_update: bool = field(default=False)

    @property
    def id(self) -> str:
        return f"{self.manifest}:{self.iri.rsplit('#', 1)[-1]}"


def _items(graph: Graph, head) -> list:
    return list(Collection(graph, head)) if head is not None else []


def _request(graph: Graph, node) -> Request:
    headers = {
        str(graph.value(h, HT.fieldName)).lower(): str(graph.value(h, HT.fieldValue))
        for h in _items(graph, graph.value(node, HT.headers))
    }
    body_node = graph.value(node, HT.body)
    body = None
    if body_node is not None:
        encoding = str(graph.value(body_node, CNT.characterEncoding) or "UTF-8")
        body = str(graph.value(body_node, CNT.chars)).encode(encoding)
    response = graph.value(node, HT.resp)
    boolean = graph.value(response, MF.expectedBoolean)
    kind = graph.value(response, MF.expectedFormat)
    return Request(
        method=str(graph.value(node, HT.methodName)),
        path=str(graph.value(node, HT.absolutePath)),
        headers=headers,
        body=body,
        statuses=frozenset(
            int(re.search(r"StatusCode(\d)xx$", str(s)).group(1))
            for s in graph.objects(response, MF.expectedStatus)
        ),
        result_kind=str(kind) if kind is not None else None,
        boolean=boolean.toPython() if isinstance(boolean, Literal) else None,
    )


def _data_file(iri: URIRef, manifest: str) -> Path:
    """The local copy of a data file the manifest names (renamed by folder: see README)."""
    return W3C / f"{manifest}-{Path(urlparse(str(iri)).path).name}"


def read_manifest(path: Path, manifest: str) -> list[ManifestTest]:
    graph = Graph().parse(path, format="turtle")
    root = next(graph.subjects(RDF.type, MF.Manifest))
    tests = []
    for entry in _items(graph, graph.value(root, MF.entries)):
        action = graph.value(entry, MF.action)
        requests = tuple(
            _request(graph, r) for r in (_items(graph, graph.value(action, HT.requests)) if action else [])
        )
        graph_data = tuple(
            (str(graph.value(d, RDFS.label)), _data_file(graph.value(d, UT.graph), manifest))
            for d in graph.objects(entry, UT.graphData)
        )
        tests.append(
            ManifestTest(
                iri=str(entry),
                manifest=manifest,
                name=str(graph.value(entry, MF.name)),
                kind=str(graph.value(entry, RDF.type)).rsplit("#", 1)[-1],
                requests=requests,
                graph_data=graph_data,
                needs_update="update" in str(entry).rsplit("#", 1)[-1] or any(r.is_update for r in requests),
            )
        )
    return tests


MANIFESTS = {
    "protocol": W3C / "protocol-manifest.ttl",
    "service-description": W3C / "service-description-manifest.ttl",
}
TESTS = [t for name, path in MANIFESTS.items() if path.is_file() for t in read_manifest(path, name)]
MISSING = [str(path) for path in MANIFESTS.values() if not path.is_file()]


# -- servers ------------------------------------------------------------------------------
def _preload(store_dir: Path) -> None:
    """The manifest's data files into an on-disk store, each in its graph; released
    before the server opens the store."""
    store = ox.Store(str(store_dir))
    for name, path in {d for t in TESTS for d in t.graph_data}:
        store.load(path=path, format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(name))
    store.flush()
    del store


@pytest.fixture(scope="module")
def query_server(tmp_path_factory):
    store_dir = tmp_path_factory.mktemp("w3c-store")
    _preload(store_dir)
    logs = tmp_path_factory.mktemp("logs")
    with running(["--store", str(store_dir), "--cases", str(EXAMPLES)], logs) as server:
        yield server


@pytest.fixture(scope="module")
def update_server(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    with running(["--allow-update"], logs, env={"LBP_IMAGING_TOKEN": TOKEN}) as server:
        yield server


@pytest.fixture(scope="module", autouse=True)
def pass_count(request):
    """Print how many manifest tests passed, by manifest, when the module is done."""
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    for manifest in MANIFESTS:
        ran = [t for t in TESTS if t.manifest == manifest]
        passed = [t for t in ran if OUTCOMES.get(t.id) == "passed"]
        line = f"W3C SPARQL 1.1 {manifest} manifest: {len(passed)} of {len(ran)} tests passed"
        if manifest == "protocol":
            queries = [t for t in ran if not t.needs_update]
            line += (
                f" ({sum(OUTCOMES.get(t.id) == 'passed' for t in queries)} of {len(queries)} query tests, "
                f"{sum(OUTCOMES.get(t.id) == 'passed' for t in ran if t.needs_update)} of "
                f"{len(ran) - len(queries)} update tests)"
            )
        with capture.global_and_fixture_disabled():
            print(f"\n{line}", end="")


# -- checks -------------------------------------------------------------------------------
def _check_result(request: Request, response: httpx.Response) -> None:
    media = response.headers.get("content-type", "").split(";")[0].strip()
    if request.result_kind in ("boolean", "tabular"):
        fmt = ox.QueryResultsFormat.from_media_type(media)
        assert fmt is not None, f"not a SPARQL results media type: {media!r}"
        parsed = ox.parse_query_results(response.content, format=fmt)
        if request.result_kind == "boolean":
            assert isinstance(parsed, ox.QueryBoolean)
            if request.boolean is not None:
                assert bool(parsed) is request.boolean
        else:
            assert isinstance(parsed, ox.QuerySolutions)
            list(parsed)
    elif request.result_kind == "RDF":
        fmt = ox.RdfFormat.from_media_type(media)
        assert fmt is not None, f"not an RDF media type: {media!r}"
        list(ox.parse(response.content, format=fmt))


def _run_protocol_test(test: ManifestTest, server) -> None:
    for request in test.requests:
        path = re.sub(r"^/sparql/?", "/sparql", request.path)
        headers = dict(request.headers)
        if test.needs_update:
            headers["authorization"] = f"Bearer {TOKEN}"
        response = httpx.request(
            request.method, server.url + path, headers=headers, content=request.body, timeout=30
        )
        assert response.status_code // 100 in request.statuses, (
            f"{request.method} {path}: status {response.status_code}, expected "
            f"{' or '.join(f'{s}xx' for s in sorted(request.statuses))}: {response.text[:300]}"
        )
        _check_result(request, response)


def _service_description(server, accept: str | None = None) -> tuple[httpx.Response, Graph]:
    """The description in the format the server chose, parsed by pyoxigraph, as a graph."""
    response = httpx.get(server.endpoint, headers={"accept": accept} if accept else {})
    assert response.status_code == 200, response.text
    fmt = ox.RdfFormat.from_media_type(response.headers["content-type"].split(";")[0])
    assert fmt is not None, response.headers["content-type"]
    triples = ox.parse(response.content, format=fmt)
    return response, Graph().parse(data=ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES), format="nt")


def _sd_returns_rdf(server) -> None:
    for accept in (
        None,
        "text/turtle",
        "application/n-triples",
        "application/rdf+xml",
        "application/ld+json",
    ):
        response, graph = _service_description(server, accept)
        assert accept is None or response.headers["content-type"].startswith(accept)
        assert (None, RDF.type, SD.Service) in graph


def _sd_has_endpoint_triple(server) -> None:
    _, graph = _service_description(server)
    assert (None, SD.endpoint, URIRef(server.endpoint)) in graph


def _sd_conforms_to_schema(server) -> None:
    _, graph = _service_description(server)
    conforms, _, text = validate(graph, shacl_graph=str(SD_SHAPES), inference="none")
    assert conforms, text


SERVICE_DESCRIPTION_CHECKS = {
    "returns-rdf": _sd_returns_rdf,
    "has-endpoint-triple": _sd_has_endpoint_triple,
    "conforms-to-schema": _sd_conforms_to_schema,
}


needs_manifests = pytest.mark.skipif(bool(MISSING), reason=f"W3C manifests not found: {', '.join(MISSING)}")


@needs_manifests
@pytest.mark.parametrize("test", TESTS, ids=[t.id for t in TESTS])
@pytest.mark.filterwarnings("ignore:Dataset.default_context is deprecated:DeprecationWarning")  # pyshacl
def test_w3c_manifest(test: ManifestTest, request) -> None:
    OUTCOMES[test.id] = "failed"
    if test.kind == "ProtocolTest":
        server = request.getfixturevalue("update_server" if test.needs_update else "query_server")
        _run_protocol_test(test, server)
    elif test.kind == "ServiceDescriptionTest":
        check = SERVICE_DESCRIPTION_CHECKS.get(test.iri.rsplit("#", 1)[-1])
        assert check is not None, f"no check written for service-description test {test.iri} ({test.name})"
        check(request.getfixturevalue("query_server"))
    else:
        pytest.fail(f"unknown manifest test type {test.kind} for {test.iri}")
    OUTCOMES[test.id] = "passed"


@needs_manifests
def test_the_manifests_list_what_their_readme_says() -> None:
    """37 tests: 34 protocol tests (14 of them updates, 7 of those malformed) and 3
    service-description tests, with the data files they name. A manifest that reads
    differently is noticed here rather than run partly."""
    assert len([t for t in TESTS if t.manifest == "protocol"]) == 34
    assert len([t for t in TESTS if t.manifest == "service-description"]) == 3
    assert all(t.requests for t in TESTS if t.kind == "ProtocolTest")
    assert sum(t.needs_update for t in TESTS) == 14
    assert all(path.is_file() for t in TESTS for _, path in t.graph_data)


# -- beyond the manifest: exact statuses, formats, the dataset ------------------------------
CASE = "https://example.org/case/30-infection-with-cauda-equina"
LBP = "https://w3id.org/lbp-imaging/"


def _post_query(server, query: str, accept: str | None = None, **params: str) -> httpx.Response:
    headers = {"content-type": "application/sparql-query"} | ({"accept": accept} if accept else {})
    return httpx.post(server.endpoint, params=params, content=query.encode(), headers=headers)


@pytest.mark.parametrize(
    ("method", "content_type", "body", "status"),
    [
        ("PUT", "application/sparql-query", "ASK {}", 405),
        ("DELETE", None, None, 405),
        ("POST", "text/plain", "ASK {}", 415),
        ("POST", None, "query=ASK%20%7B%7D", 415),
        ("POST", "application/sparql-query; charset=UTF-16", "ASK {}", 415),
        ("POST", "application/x-www-form-urlencoded", "query=ASK%20%7B%7D&update=CLEAR%20ALL", 400),
        ("POST", "application/x-www-form-urlencoded", "query=ASK%20%7B%7D&query=ASK%20%7B%7D", 400),
        ("POST", "application/x-www-form-urlencoded", "default-graph-uri=urn%3Ag", 400),
        ("POST", "application/sparql-query", "ASK {", 400),
        ("POST", "application/sparql-query", b'ASK { FILTER("\xff") }', 400),
    ],
)
def test_protocol_errors_get_their_exact_status_and_a_message(
    query_server, method, content_type, body, status
):
    headers = {"content-type": content_type} if content_type else {}
    content = body.encode() if isinstance(body, str) else body
    response = httpx.request(method, query_server.endpoint, headers=headers, content=content)
    assert response.status_code == status, response.text
    if status == 405:
        assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    else:
        assert response.headers["content-type"].startswith("text/plain") and response.text


def test_a_malformed_query_is_400_with_the_parser_message(query_server):
    response = httpx.get(query_server.endpoint, params={"query": "SELECT ?x WHERE { ?x"})
    assert response.status_code == 400
    assert response.text.startswith("malformed query: ") and "1:" in response.text


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        ("SELECT * { ?s ?p ?o } LIMIT 1", "image/png"),
        ("ASK {}", "text/csv"),  # SPARQL CSV/TSV define no boolean form
        ("CONSTRUCT WHERE { ?s ?p ?o } LIMIT 1", "application/sparql-results+json"),
    ],
)
def test_an_answer_no_accepted_format_can_carry_is_406(query_server, query, accept):
    response = _post_query(query_server, query, accept)
    assert response.status_code == 406
    assert "Accept" in response.text


def test_each_results_format_carries_the_same_solutions(query_server):
    query = f"SELECT ?p ?o WHERE {{ GRAPH <{CASE}> {{ <{CASE}> ?p ?o }} }} ORDER BY ?p ?o"
    answers = {}
    tsv = "text/tab-separated-values"
    for media in ("application/sparql-results+json", "application/sparql-results+xml", tsv):
        response = _post_query(query_server, query, media)
        assert response.headers["content-type"].split(";")[0] == media
        parsed = ox.parse_query_results(response.content, format=ox.QueryResultsFormat.from_media_type(media))
        answers[media] = [(s["p"], s["o"]) for s in parsed]
    assert len(answers[tsv]) > 10
    assert len({tuple(a) for a in answers.values()}) == 1
    csv = _post_query(query_server, query, "text/csv").text.splitlines()
    assert csv[0] == "p,o" and len(csv) == len(answers[tsv]) + 1


def test_accept_quality_values_decide_the_format(query_server):
    accept = "application/sparql-results+json;q=0.5, text/csv;q=0.9, */*;q=0.1"
    assert (
        _post_query(query_server, "SELECT (1 AS ?x) {}", accept)
        .headers["content-type"]
        .startswith("text/csv")
    )
    accept = "text/turtle;q=0, application/*"
    response = _post_query(query_server, "CONSTRUCT WHERE { ?s ?p ?o } LIMIT 3", accept)
    assert response.headers["content-type"] == "application/n-triples"


@pytest.mark.parametrize("media", RDF_MEDIA_TYPES)
def test_each_rdf_format_carries_the_same_graph(query_server, media):
    query = f"CONSTRUCT {{ <{CASE}> ?p ?o }} WHERE {{ GRAPH <{CASE}> {{ <{CASE}> ?p ?o }} }}"
    response = _post_query(query_server, query, media)
    assert response.headers["content-type"].split(";")[0] == media
    triples = set(ox.parse(response.content, format=ox.RdfFormat.from_media_type(media)))
    reference = _post_query(query_server, query, "application/n-triples").content
    assert triples == set(ox.parse(reference, format=ox.RdfFormat.N_TRIPLES)) and len(triples) > 10


def _ask(server, query: str, **params: str) -> bool:
    response = _post_query(server, query, "application/sparql-results+json", **params)
    assert response.status_code == 200, response.text
    return response.json()["boolean"]


def test_the_default_graph_is_the_union_of_the_knowledge_base_and_the_cases(query_server):
    both = f"ASK {{ <{CASE}> <{LBP}hasFinding> ?f . ?f a <{LBP}CaudaEquinaSign> }}"
    assert _ask(query_server, both)
    assert not _ask(query_server, both, **{"default-graph-uri": CASE})  # the case graph alone
    assert not _ask(query_server, both.replace("ASK", f"ASK FROM <{LBP}ontology/findings>"))  # its own FROM
    assert _ask(query_server, both.replace("ASK", f"ASK FROM <{CASE}> FROM <{LBP}ontology/findings>"))


def test_named_graph_uri_alone_leaves_the_default_graph_empty(query_server):
    assert not _ask(query_server, "ASK { ?s ?p ?o }", **{"named-graph-uri": CASE})
    assert _ask(query_server, f"ASK {{ GRAPH <{CASE}> {{ ?s ?p ?o }} }}", **{"named-graph-uri": CASE})
    assert not _ask(
        query_server, f"ASK {{ GRAPH <{LBP}ontology/core> {{ ?s ?p ?o }} }}", **{"named-graph-uri": CASE}
    )


def test_relative_iris_resolve_against_the_endpoint(query_server):
    response = _post_query(query_server, "SELECT (<x> AS ?iri) {}", "application/sparql-results+json")
    assert response.json()["results"]["bindings"][0]["iri"]["value"] == query_server.url + "/x"
