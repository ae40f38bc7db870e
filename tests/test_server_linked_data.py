"""Dereferencing the knowledge base's IRIs (reasoner/server/pages/linked_data_router.py),
against a real server: ``https://w3id.org/lbp-imaging/X`` is served at ``/lbp-imaging/X`` with a
303 to the document in the format ``Accept`` asks for (W3C recipe 5 for RDF
vocabularies), HTML for browsers, RDF in four syntaxes, 404 for unknown terms."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pyoxigraph as ox
import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from rdflib import RDF, RDFS, Graph, Literal, Namespace, URIRef
from rdflib.namespace import OWL, PROV, SKOS
from sparql_server import EXAMPLES, ROOT, running

from reasoner.server.graphs import knowledge_base_files

LBP = Namespace("https://w3id.org/lbp-imaging/")
OA = Namespace("http://www.w3.org/ns/oa#")
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
RDF_FORMATS = {
    "text/turtle": (".ttl", "turtle"),
    "application/ld+json": (".jsonld", "json-ld"),
    "application/rdf+xml": (".rdf", "xml"),
    "application/n-triples": (".nt", "nt"),
}
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    case = EXAMPLES / "30-infection-with-cauda-equina.ttl"
    with running(["--cases", str(case)], tmp_path_factory.mktemp("logs")) as server:
        yield server


def get(server, path: str, accept: str | None = None) -> httpx.Response:
    headers = {"accept": accept} if accept else {}
    return httpx.get(server.url + path, headers=headers, timeout=30)


def rdf(server, term: str, media: str) -> Graph:
    extension, syntax = RDF_FORMATS[media]
    response = get(server, f"/lbp-imaging/{term}{extension}")
    assert response.status_code == 200 and response.headers["content-type"].startswith(media)
    return Graph().parse(data=response.content, format=syntax)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"])

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.parametrize(
    ("accept", "extension"),
    [(BROWSER, ".html"), (None, ".html"), ("*/*", ".html")] + [(m, e) for m, (e, _) in RDF_FORMATS.items()],
)
def test_a_term_answers_303_to_its_document_by_accept(server, accept, extension):
    response = get(server, "/lbp-imaging/Fever", accept)
    assert response.status_code == 303
    assert response.headers["location"] == f"/lbp-imaging/Fever{extension}"
    assert response.headers["vary"] == "Accept"


def test_no_acceptable_format_is_406(server):
    response = get(server, "/lbp-imaging/Fever", "image/png")
    assert response.status_code == 406 and response.headers["vary"] == "Accept"


@pytest.mark.parametrize("media", list(RDF_FORMATS))
def test_a_term_is_described_in_each_rdf_syntax(server, media):
    graph = rdf(server, "Fever", media)
    assert (LBP.Fever, RDF.type, LBP.InfectionRiskFactor) in graph
    assert (LBP.Fever, RDFS.label, Literal("fever", lang="en")) in graph
    assert (LBP.Fever, SKOS.exactMatch, URIRef("http://snomed.info/id/386661006")) in graph
    assert (
        LBP.InfectionRiskFactor,
        RDFS.label,
        Literal("infection red flag", lang="en"),
    ) in graph  # linked term
    (axiom,) = graph.subjects(OWL.annotatedSource, LBP.Fever)  # the mapping's confidence
    assert graph.value(axiom, LBP.mappingConfidence)


def test_a_statement_comes_with_its_quote_and_what_cites_it(server):
    graph = rdf(server, "statement/art-30", "text/turtle")
    statement = LBP["statement/art-30"]
    quotes = [str(graph.value(s, OA.exact)) for s in graph.objects(statement, OA.hasSelector)]
    assert "fever, general weakness or suspicion of infection" in quotes
    assert (LBP.SuspectedSpinalInfection, PROV.wasDerivedFrom, statement) in graph


def test_only_the_knowledge_base_describes_a_term_never_a_case(server):
    graph = rdf(server, "Fever", "application/n-triples")
    assert not any(str(s).startswith("https://example.org/") for s in graph.subjects())


def test_an_ontology_module_is_its_whole_graph(server, kb):
    core = str(LBP) + "ontology/core"
    graph = rdf(server, "ontology/core", "text/turtle")
    assert len(graph) == len(list(ox.parse(path=knowledge_base_files(kb)[core])))
    root = rdf(server, "ontology", "application/rdf+xml")
    assert set(root.objects(URIRef(str(LBP) + "ontology"), OWL.imports)) >= {URIRef(core)}


def test_the_html_page_shows_label_definition_types_and_links(server):
    response = get(server, "/lbp-imaging/Fever.html")
    assert response.status_code == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
    page = _Links()
    page.feed(response.text)
    text = " ".join(page.text)
    assert "fever" in text and "Body temperature above normal with back pain." in text
    assert "/lbp-imaging/InfectionRiskFactor" in page.hrefs  # its type, on this server
    assert "/lbp-imaging/statement/art-30" in page.hrefs  # its sources
    assert {f"/lbp-imaging/Fever{e}" for e, _ in RDF_FORMATS.values()} <= set(page.hrefs)
    assert "Decision support, not diagnosis" in text


def test_a_module_page_lists_its_terms(server):
    page = _Links()
    page.feed(get(server, "/lbp-imaging/ontology/findings.html").text)
    assert "/lbp-imaging/Fever" in page.hrefs and "/lbp-imaging/CaudaEquinaSign" in page.hrefs


def test_unknown_terms_are_404(server):
    assert get(server, "/lbp-imaging/NoSuchFinding").status_code == 404
    assert get(server, "/lbp-imaging/NoSuchFinding.ttl").status_code == 404
    assert get(server, "/lbp-imaging/Fever.xyz").status_code == 404


def test_the_namespace_redirects_to_the_ontology_and_published_files_are_served(server):
    root = get(server, "/lbp-imaging/")
    assert root.status_code == 303 and root.headers["location"] == "/lbp-imaging/ontology"
    context = get(server, "/lbp-imaging/context.jsonld")
    assert context.headers["content-type"] == "application/ld+json"
    assert context.json() == json.loads((ROOT / "ontology" / "context.jsonld").read_text())
    codes = get(server, "/lbp-imaging/CodeSystem/lbp-imaging")
    assert codes.headers["content-type"] == "application/fhir+json"
    assert codes.json()["resourceType"] == "CodeSystem"


def test_version_iris_and_project_codes_dereference(server):
    assert get(server, "/lbp-imaging/ontology/0.1.0", "text/turtle").status_code == 303
    graph = rdf(server, "code/saddle-anaesthesia", "text/turtle")
    assert (LBP.SaddleAnaesthesia, SKOS.exactMatch, LBP["code/saddle-anaesthesia"]) in graph


# -- the FHIR artefacts of ontology/fhir/ at their canonical URLs ------------------------------
QUESTIONNAIRE_URL = "https://w3id.org/lbp-imaging/fhir/Questionnaire/lbp-PatientCase"
QUESTIONNAIRE_PATH = "/lbp-imaging/fhir/Questionnaire/lbp-PatientCase"
FHIR_FILES = sorted((ROOT / "ontology" / "fhir").glob("*.json"))


def fhir_get(server, path: str, accept: str | None = None, **params: str) -> httpx.Response:
    headers = {"accept": accept} if accept else {}
    return httpx.get(server.url + path, headers=headers, params=params, timeout=30)


@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/fhir+json", "application/json", "application/fhir+json; fhirVersion=4.0"],
)
def test_the_questionnaire_is_served_as_fhir_json_at_its_canonical_url(server, accept):
    response = fhir_get(server, QUESTIONNAIRE_PATH, accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.headers["vary"] == "Accept"
    assert response.content == (ROOT / "ontology/fhir/Questionnaire-lbp-PatientCase.json").read_bytes()
    resource = Questionnaire.model_validate(response.json())
    assert resource.url == QUESTIONNAIRE_URL


@pytest.mark.parametrize("fmt", ["json", "application/fhir+json", "application/json"])
def test_format_json_overrides_a_browsers_accept(server, fmt):
    response = fhir_get(server, QUESTIONNAIRE_PATH, BROWSER, _format=fmt)
    assert response.status_code == 200 and response.headers["content-type"] == "application/fhir+json"
    assert Questionnaire.model_validate(response.json()).url == QUESTIONNAIRE_URL


@pytest.mark.parametrize(
    ("accept", "fmt"),
    [("application/fhir+xml", None), ("application/xml", None), ("text/turtle", None), (None, "xml")],
)
def test_fhir_xml_is_not_offered(server, accept, fmt):
    response = fhir_get(server, QUESTIONNAIRE_PATH, accept, **({"_format": fmt} if fmt else {}))
    assert response.status_code == 406 and response.headers["vary"] == "Accept"
    assert "application/fhir+json" in response.text and "XML" in response.text


@pytest.mark.parametrize(("accept", "fmt"), [(BROWSER, None), ("text/html", None), (None, "html")])
def test_a_browser_is_sent_to_the_case_form(server, accept, fmt):
    response = fhir_get(server, QUESTIONNAIRE_PATH, accept, **({"_format": fmt} if fmt else {}))
    assert response.status_code == 303 and response.headers["vary"] == "Accept"
    assert response.headers["location"] == "/case"
    form = fhir_get(server, response.headers["location"], accept)
    assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("file", FHIR_FILES, ids=lambda f: f.name)
def test_every_fhir_artefact_is_served_where_its_url_says(server, file):
    resource = json.loads(file.read_text(encoding="utf-8"))
    assert file.name == f"{resource['resourceType']}-{resource['id']}.json"
    path = urlsplit(resource["url"]).path
    assert path.endswith(f"/{resource['resourceType']}/{resource['id']}")
    response = fhir_get(server, path, BROWSER if resource["resourceType"] != "Questionnaire" else None)
    assert response.status_code == 200 and response.content == file.read_bytes()
    assert response.headers["content-type"] == "application/fhir+json"
    assert fhir_get(server, path, "application/fhir+xml").status_code == 406


def test_only_canonical_urls_of_artefacts_are_served(server):
    assert {f.name for f in FHIR_FILES} >= {
        "CodeSystem-lbp-imaging.json",
        "Questionnaire-lbp-PatientCase.json",
    }
    assert fhir_get(server, "/lbp-imaging/Questionnaire/lbp-PatientCase").status_code == 404  # not its url
    assert fhir_get(server, "/lbp-imaging/fhir/CodeSystem/lbp-imaging").status_code == 404  # nor this
    assert fhir_get(server, "/lbp-imaging/fhir/Questionnaire/lbp-Other").status_code == 404
