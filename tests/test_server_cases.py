"""Cases over HTTP (reasoner/server/cases/router.py), against real server processes: a
case posted in each format is assessed, stored and read back in each answer format;
replacing a stored case and DELETE need the token (more in test_server_case_versions.py);
bad requests get their status; an on-disk store keeps an acknowledged case through
``kill -9`` and a restart."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pyoxigraph as ox
import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import PROV, RDF
from sparql_server import EXAMPLES, ROOT, TOKEN, running, start, stop

from reasoner.fhir.questionnaire import questionnaire
from reasoner.knowledge import KnowledgeBase

LBP = Namespace("https://w3id.org/lbp-imaging/")
FHIR_EXAMPLES = ROOT / "examples" / "fhir"
RDF_FORMATS = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/rdf+xml": "xml",
    "application/ld+json": "json-ld",
}
BAD_AGE = b"""@prefix lbp: <https://w3id.org/lbp-imaging/> .
<https://example.org/case/age-200> a lbp:PatientCase ; lbp:ageInYears 200 .
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running(["--allow-update", "--token", TOKEN], tmp_path_factory.mktemp("logs")) as server:
        yield server


def post(
    server, body: bytes, content_type: str, accept: str = "application/json", token: bool = False, **params
) -> httpx.Response:
    """POST a case; ``token``: with the bearer token, which replacing a stored case needs."""
    headers = {"content-type": content_type, "accept": accept}
    if token:
        headers["authorization"] = f"Bearer {TOKEN}"
    return httpx.post(server.url + "/cases", content=body, headers=headers, params=params, timeout=30)


def case_path(iri: str) -> str:
    return "/cases/" + quote(iri, safe="")


def ntriples(path: Path) -> bytes:
    return ox.serialize(ox.parse(path=path), format=ox.RdfFormat.N_TRIPLES)


def expected(path: Path) -> dict:
    return json.loads(path.with_name(path.name.split(".")[0] + ".expected.json").read_text())


def ask(server, query: str) -> bool:
    response = httpx.post(server.endpoint, data={"query": query}, timeout=30)
    return response.json()["boolean"]


def _local(concept: dict | None) -> str | None:
    return concept["iri"].removeprefix(str(LBP)) if concept else None


SUBMISSIONS = [
    (EXAMPLES / "30-infection-with-cauda-equina.ttl", "text/turtle", None),
    (EXAMPLES / "02-cauda-equina-bilateral-leg-signs.jsonld", "application/ld+json", None),
    (EXAMPLES / "18-radiculopathy-surgical-candidate.ttl", "application/n-triples", None),
    (FHIR_EXAMPLES / "13-infection-with-cauda-equina.json", "application/fhir+json", "asOf"),
]


@pytest.mark.parametrize(("path", "content_type", "as_of"), SUBMISSIONS, ids=lambda v: getattr(v, "name", v))
def test_a_posted_case_is_assessed_stored_and_read_back(server, path, content_type, as_of):
    want = expected(path)
    body = ntriples(path) if content_type == "application/n-triples" else path.read_bytes()
    params = {"as-of": want[as_of]} if as_of else {}
    response = post(server, body, content_type, **params)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == case_path(want["case"])
    assert response.headers["content-type"] == "application/json"
    doc = response.json()
    (result,) = doc["results"]
    assert (result["case"], result["status"], result["source"]) == (want["case"], "assessed", None)
    recommendation = result["recommendation"]
    got = (_local(result["outcome"]), _local(recommendation["procedure"]), _local(recommendation["urgency"]))
    assert got == (want["outcome"], want["procedure"], want["urgency"])
    assert sorted(_local(c) for c in result["criteria"]) == want["criteria"]
    # Provenance: every statement the result cites is spelt out, with its verbatim quote.
    assert result["sources"] and set(result["sources"]) <= set(doc["statements"])
    assert all(doc["statements"][s]["quote"] for s in result["sources"])
    back = httpx.get(server.url + response.headers["location"], timeout=30)
    assert back.status_code == 200 and back.json() == doc


def test_a_posted_questionnaire_response_is_a_case_read_from_its_answers(server):
    """A QuestionnaireResponse to the generated questionnaire, alone, is read like a bundle:
    its subject names the case, its answers are the facts; a bad answer is 422 naming it."""
    full = questionnaire(KnowledgeBase.load())
    yes = {"valueCoding": {"system": "http://terminology.hl7.org/CodeSystem/v2-0136", "code": "Y"}}
    answers = [
        {"linkId": "SaddleAnaesthesia", "answer": [yes]},
        {"linkId": "ageInYears", "answer": [{"valueInteger": 61}]},
    ]
    qr = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{full['url']}|{full['version']}",
        "status": "completed",
        "subject": {"reference": "https://example.org/case/answered-on-a-form"},
        "item": answers,
    }
    response = post(server, json.dumps(qr).encode(), "application/fhir+json")
    assert response.status_code == 201, response.text
    (result,) = response.json()["results"]
    assert result["case"] == "https://example.org/case/answered-on-a-form"
    assert _local(result["recommendation"]["urgency"]) == "Emergent"
    answers[1]["answer"] = [{"valueString": "sixty-one"}]
    refused = post(server, json.dumps(qr).encode(), "application/fhir+json")
    assert refused.status_code == 400 and "item ageInYears takes valueInteger" in refused.text


def test_fhir_warnings_name_the_request_body_not_a_temporary_file(server):
    path = FHIR_EXAMPLES / "17-unknown-code-pacemaker.json"
    response = post(server, path.read_bytes(), "application/fhir+json", **{"as-of": expected(path)["asOf"]})
    assert response.status_code == 201, response.text
    warnings = response.json()["results"][0]["warnings"]
    assert any(w.startswith("request-body: Condition/") for w in warnings), warnings
    assert not any("/tmp" in w or "lbp-imaging-case-" in w for w in warnings)


@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")  # rdflib JSON-LD
@pytest.mark.parametrize("media", list(RDF_FORMATS))
def test_the_record_is_given_as_prov_in_each_rdf_syntax(server, media):
    path = EXAMPLES / "05-known-cancer.ttl"
    case = URIRef(expected(path)["case"])
    posted = post(server, path.read_bytes(), "text/turtle", accept=media, token=True)  # may replace
    assert posted.status_code in (200, 201) and posted.headers["content-type"].startswith(media)
    fetched = httpx.get(server.url + case_path(case), headers={"accept": media}, timeout=30)
    assert fetched.status_code == 200 and fetched.headers["vary"] == "Accept"
    for response in (posted, fetched):
        graph = Graph().parse(data=response.content, format=RDF_FORMATS[media])
        (recommendation,) = graph.subjects(LBP.forCase, case)
        assert (recommendation, RDF.type, PROV.Entity) in graph
        assert (case, LBP.ageInYears, Literal(62)) in graph  # the case as submitted
        activity = graph.value(recommendation, PROV.wasGeneratedBy)
        agent = graph.value(activity, PROV.wasAssociatedWith)
        assert (agent, RDF.type, PROV.SoftwareAgent) in graph  # the engine, from its own graph
        assert any(
            str(s).startswith(f"{LBP}statement/") for s in graph.objects(recommendation, PROV.wasDerivedFrom)
        )


def test_posting_a_case_again_replaces_its_record(server):
    body = (EXAMPLES / "06-night-pain-first-line.ttl").read_bytes()
    case = expected(EXAMPLES / "06-night-pain-first-line.ttl")["case"]
    assert post(server, body, "text/turtle").status_code == 201
    assert post(server, body, "text/turtle", token=True).status_code == 200
    count = httpx.post(
        server.endpoint,
        data={"query": f"SELECT (COUNT(*) AS ?n) {{ GRAPH <{case}> {{ ?r <{LBP}forCase> <{case}> }} }}"},
        timeout=30,
    )
    assert count.json()["results"]["bindings"][0]["n"]["value"] == "1"


def test_an_invalid_case_is_422_with_the_shape_messages_and_is_not_stored(server):
    response = post(server, BAD_AGE, "text/turtle")
    assert response.status_code == 422
    (result,) = response.json()["results"]
    assert result["case"] == "https://example.org/case/age-200" and result["status"] == "invalid"
    assert [e["field"] for e in result["errors"]] == ["age in years"]
    assert "between 0 and 120" in result["errors"][0]["message"]
    assert httpx.get(server.url + case_path(result["case"])).status_code == 404


def test_a_case_without_an_iri_is_422(server):
    body = b"@prefix lbp: <https://w3id.org/lbp-imaging/> .\n[] a lbp:PatientCase ; lbp:ageInYears 40 .\n"
    response = post(server, body, "text/turtle")
    assert response.status_code == 422
    assert "identifier" in response.json()["results"][0]["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"this is <not> turtle", "text/turtle"),
        (b'{"@context": ', "application/ld+json"),
        (b"<https://example.org/a> <https://example.org/b> .\n", "application/n-triples"),
        (b"", "text/turtle"),
        (b'{"resourceType": "Patient", "id": "p"}', "application/fhir+json"),
    ],
    ids=["turtle", "json-ld", "n-triples", "empty", "fhir-not-a-bundle"],
)
def test_a_malformed_body_is_400(server, body, content_type):
    response = post(server, body, content_type)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/json", "text/turtle; charset=latin-1"]
)
def test_an_unsupported_content_type_is_415(server, content_type):
    headers = {"content-type": content_type} if content_type else {}
    body = (EXAMPLES / "05-known-cancer.ttl").read_bytes()
    response = httpx.post(server.url + "/cases", content=body, headers=headers, timeout=30)
    assert response.status_code == 415, response.text


def test_a_body_with_two_cases_or_none_is_422(server):
    two = post(server, (EXAMPLES / "41-two-cases.ttl").read_bytes(), "text/turtle")
    assert two.status_code == 422 and "2 cases" in two.text
    none = post(server, b"<https://example.org/x> <https://example.org/p> 1 .", "text/turtle")
    assert none.status_code == 422 and "no patient case" in none.text


@pytest.mark.parametrize("iri", [f"{LBP}Fever", f"{LBP}ontology/core"])
def test_a_case_named_like_the_knowledge_base_is_refused_409(server, iri):
    body = f"<{iri}> a <{LBP}PatientCase> ; <{LBP}ageInYears> 40 .".encode()
    response = post(server, body, "text/turtle")
    assert response.status_code == 409, response.text
    assert ask(server, f"ASK {{ GRAPH <{LBP}ontology/core> {{ <{LBP}ontology/core> ?p ?o }} }}")
    assert not ask(server, f"ASK {{ <{iri}> a <{LBP}PatientCase> }}")


def test_an_oversized_body_is_413(server):
    response = post(server, b"#" * 1_100_000, "text/turtle")
    assert response.status_code == 413


def test_unknown_cases_are_404_and_unacceptable_formats_406(server):
    assert httpx.get(server.url + case_path("https://example.org/case/nobody")).status_code == 404
    assert httpx.get(server.url + "/cases/not%20an%20iri").status_code == 404
    stored = post(server, (EXAMPLES / "05-known-cancer.ttl").read_bytes(), "text/turtle", token=True)
    response = httpx.get(server.url + stored.headers["location"], headers={"accept": "image/png"})
    assert response.status_code == 406


def test_the_case_path_also_takes_the_iri_with_its_slashes(server):
    stored = post(server, (EXAMPLES / "05-known-cancer.ttl").read_bytes(), "text/turtle", token=True)
    iri = stored.json()["results"][0]["case"]
    assert httpx.get(f"{server.url}/cases/{iri}").json() == stored.json()


def test_delete_needs_the_bearer_token(server):
    path = EXAMPLES / "13-fracture-osteoporosis.ttl"
    location = post(server, path.read_bytes(), "text/turtle").headers["location"]
    url = server.url + location
    missing = httpx.delete(url)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert httpx.delete(url, headers={"authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(url).status_code == 200
    authorized = {"authorization": f"Bearer {TOKEN}"}
    assert httpx.delete(url, headers=authorized).status_code == 204
    assert httpx.get(url).status_code == 404
    assert httpx.delete(url, headers=authorized).status_code == 404


def test_delete_cannot_remove_a_knowledge_base_graph(server):
    core = f"{LBP}ontology/core"
    response = httpx.delete(server.url + case_path(core), headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404
    assert ask(server, f"ASK {{ GRAPH <{core}> {{ <{core}> ?p ?o }} }}")


def test_an_acknowledged_case_survives_kill_9_and_a_restart(tmp_path):
    """Read-only server (no --allow-update): posting is allowed, deleting is 403."""
    store = tmp_path / "store"
    first = start(["--store", str(store)], tmp_path)
    try:
        posted = post(first, (EXAMPLES / "30-infection-with-cauda-equina.ttl").read_bytes(), "text/turtle")
        assert posted.status_code == 201
    finally:  # killed as soon as the answer is in: the write must already be on disk
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
    second = start(["--store", str(store)], tmp_path)
    try:
        url = second.url + posted.headers["location"]
        assert httpx.get(url, timeout=30).json() == posted.json()
        refused = httpx.delete(url, headers={"authorization": f"Bearer {TOKEN}"})
        assert refused.status_code == 403 and "read-only" in refused.text
    finally:
        stop(second)


def _children(parent_pid: int) -> dict[int, bytes]:
    """pid -> command line of the child processes of ``parent_pid`` (Linux ``/proc``)."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == parent_pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue  # not a process, or one that ended meanwhile
    return found


def _workers(server) -> list[int]:
    """The server's case workers: its child processes, but multiprocessing's resource
    tracker (which spawned workers need) and the query processes' template."""
    return [
        pid
        for pid, cmdline in _children(server.process.pid).items()
        if b"resource_tracker" not in cmdline and b"query_process" not in cmdline
    ]


def _query_processes(server) -> list[int]:
    """The template of the query processes and the query processes it forked."""
    templates = [p for p, cmdline in _children(server.process.pid).items() if b"query_process" in cmdline]
    return templates + [p for t in templates for p in _children(t)]


def _alive(pids: list[int]) -> list[int]:
    return [
        p for p in pids if Path(f"/proc/{p}").exists() and b" Z " not in Path(f"/proc/{p}/stat").read_bytes()
    ]


def test_cases_are_assessed_in_a_worker_process_which_is_replaced_if_it_dies(tmp_path):
    body = (EXAMPLES / "30-infection-with-cauda-equina.ttl").read_bytes()
    with running([], tmp_path) as server:
        workers = _workers(server)
        assert len(workers) == 1, "one case worker by default"
        os.kill(workers[0], signal.SIGKILL)
        lost = post(server, body, "text/turtle")
        assert lost.status_code == 503 and "post the case again" in lost.text
        again = post(server, body, "text/turtle")
        assert again.status_code == 201, again.text
        assert _workers(server) and workers[0] not in _workers(server)
        queries = _query_processes(server)
        assert queries, "the query processes' template runs beside the case workers"
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        deadline = time.monotonic() + 5
        while (_workers(server) or _alive(queries)) and time.monotonic() < deadline:  # they end with it
            time.sleep(0.1)
        assert not _workers(server)
        assert not _alive(queries), "query processes outlived their killed server"
