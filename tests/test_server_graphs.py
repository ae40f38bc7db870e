"""What the server's store holds and where (reasoner/server/graphs.py, cases/graphs.py),
read back over HTTP: each knowledge-base file in the graph named by its ontology IRI,
each assessed case with its recommendation in the graph named by the case IRI, the
engine's agent once in its own graph; and an on-disk store that keeps its cases through
a ``kill -9`` and a restart."""

from __future__ import annotations

import json
import signal

import httpx
import pyoxigraph as ox
import pytest
from pyshacl import validate
from rdflib import Graph
from sparql_server import EXAMPLES, ROOT, running, start, stop

from reasoner.server.graphs import knowledge_base_files

LBP = "https://w3id.org/lbp-imaging/"
PREFIX = f"PREFIX lbp: <{LBP}> PREFIX prov: <http://www.w3.org/ns/prov#>\n"
CASE = "https://example.org/case/30-infection-with-cauda-equina"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Every example case graph is read back in one answer: allow more triples than the default.
    with running(
        ["--cases", str(EXAMPLES), "--max-rows", "50000"], tmp_path_factory.mktemp("logs")
    ) as server:
        yield server


def select(server, query: str, **params: str) -> list[dict[str, str]]:
    response = httpx.post(server.endpoint, data={"query": PREFIX + query, **params}, timeout=30)
    assert response.status_code == 200, response.text
    return [{k: v["value"] for k, v in b.items()} for b in response.json()["results"]["bindings"]]


def ask(server, query: str) -> bool:
    response = httpx.post(server.endpoint, data={"query": PREFIX + query}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["boolean"]


def _expected() -> dict[str, dict]:
    found = {}
    for path in EXAMPLES.glob("*.expected.json"):
        data = json.loads(path.read_text())
        for entry in data if isinstance(data, list) else [data]:
            found[entry["case"]] = entry
    return found


def _local(iri: str | None) -> str | None:
    return iri.removeprefix(LBP) if iri else None


def test_each_knowledge_base_file_is_in_the_graph_named_by_its_ontology_iri(server, kb):
    counts = {
        r["g"]: int(r["n"])
        for r in select(server, "SELECT ?g (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
    }
    files = knowledge_base_files(kb)
    assert {f"{LBP}ontology", f"{LBP}ontology/sources", f"{LBP}shapes/case-shapes"} <= set(files)
    for name, path in files.items():
        assert counts[name] == len(list(ox.parse(path=path))), name
        assert ask(
            server, f"ASK {{ GRAPH <{name}> {{ <{name}> a <http://www.w3.org/2002/07/owl#Ontology> }} }}"
        )


def _by_case(rows: list[dict[str, str]], key: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["case"], []).append(_local(row[key]))
    return {case: sorted(values) for case, values in found.items()}


def test_each_example_case_graph_holds_its_expected_recommendation(server):
    """Every example case, read back from its graph, against *.expected.json: outcome,
    procedure, urgency, the criteria met, the criteria left undetermined (on the case and
    on its recommendation) and what the questions ask about."""
    rows = select(
        server,
        """SELECT ?case ?outcome ?procedure ?urgency WHERE {
             GRAPH ?case { ?r lbp:forCase ?case ; lbp:outcome ?outcome .
                           OPTIONAL { ?r lbp:recommendedProcedure ?procedure }
                           OPTIONAL { ?r lbp:urgency ?urgency } } }""",
    )
    memberships = _by_case(
        select(
            server,
            "SELECT ?case ?class WHERE { GRAPH ?case { ?case a ?class } FILTER(?class != lbp:PatientCase) }",
        ),
        "class",
    )
    on_case = _by_case(
        select(server, "SELECT ?case ?c WHERE { GRAPH ?case { ?case lbp:undeterminedCriterion ?c } }"), "c"
    )
    on_recommendation = _by_case(
        select(
            server,
            "SELECT ?case ?c WHERE { GRAPH ?case { ?r lbp:forCase ?case ; lbp:undeterminedCriterion ?c } }",
        ),
        "c",
    )
    asked = _by_case(
        select(
            server,
            """SELECT ?case ?about WHERE {
                 GRAPH ?case { ?r lbp:forCase ?case ; lbp:hasQuestion/lbp:asksAbout ?about } }""",
        ),
        "about",
    )
    expected = _expected()
    files = {p.name.removesuffix(".expected.json") for p in EXAMPLES.glob("*.expected.json")}
    assert len(expected) > len(files)  # one file holds two cases
    assert {r["case"] for r in rows} == set(expected)
    for row in rows:
        case, want = row["case"], expected[row["case"]]
        got = (_local(row["outcome"]), _local(row.get("procedure")), _local(row.get("urgency")))
        assert got == (want["outcome"], want["procedure"], want["urgency"]), case
        assert memberships.get(case, []) == want["criteria"], case
        assert on_case.get(case, []) == on_recommendation.get(case, []) == want["undetermined"], case
        assert asked.get(case, []) == want["questions"], case


def test_a_case_graph_holds_the_submitted_facts_and_cites_source_statements(server):
    assert ask(
        server, f"ASK {{ GRAPH <{CASE}> {{ <{CASE}> lbp:ageInYears 61 ; lbp:hasFinding lbp:Fever }} }}"
    )
    statements = select(
        server,
        f"""SELECT DISTINCT ?statement ?graph WHERE {{
              GRAPH <{CASE}> {{ ?r lbp:forCase <{CASE}> ; prov:wasDerivedFrom ?statement }}
              GRAPH ?graph {{ ?statement a ?type }} }}""",
    )
    assert statements and {s["graph"] for s in statements} == {f"{LBP}ontology/sources"}


def test_the_engine_agent_is_described_once_in_its_own_graph(server):
    agents = select(server, "SELECT ?g ?agent WHERE { GRAPH ?g { ?agent a prov:SoftwareAgent } }")
    assert len(agents) == 1 and agents[0]["g"] == agents[0]["agent"]
    assert ask(server, f"ASK {{ GRAPH <{CASE}> {{ ?act prov:wasAssociatedWith <{agents[0]['agent']}> }} }}")


@pytest.mark.filterwarnings("ignore:Dataset.default_context is deprecated:DeprecationWarning")  # pyshacl
def test_the_provenance_in_the_case_graphs_conforms_to_the_result_shapes(server, onto):
    response = httpx.post(
        server.endpoint,
        data={
            "query": """CONSTRUCT { ?s ?p ?o } WHERE { GRAPH ?g { ?s ?p ?o }
                FILTER(STRSTARTS(STR(?g), "https://example.org/case/")
                       || STRSTARTS(STR(?g), "urn:lbp-imaging:engine:")) }"""
        },
        headers={"accept": "application/n-triples"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    graph = Graph().parse(data=response.content, format="nt")
    conforms, _, text = validate(
        graph + onto, shacl_graph=str(ROOT / "shapes" / "result-shapes.ttl"), inference="none"
    )
    assert conforms, text


def test_an_on_disk_store_keeps_its_cases_through_kill_9_and_a_restart(tmp_path, kb):
    store = tmp_path / "store"
    first = start(
        ["--store", str(store), "--cases", str(EXAMPLES / "30-infection-with-cauda-equina.ttl")], tmp_path
    )
    try:
        assert ask(first, f"ASK {{ GRAPH <{CASE}> {{ ?r lbp:forCase <{CASE}> }} }}")
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
    second = start(["--store", str(store)], tmp_path)
    try:
        assert ask(
            second, f"ASK {{ GRAPH <{CASE}> {{ ?r lbp:forCase <{CASE}> ; lbp:recommendedProcedure ?p }} }}"
        )
        core = f"{LBP}ontology/core"
        count = select(second, f"SELECT (COUNT(*) AS ?n) {{ GRAPH <{core}> {{ ?s ?p ?o }} }}")[0]["n"]
        assert int(count) == len(list(ox.parse(path=knowledge_base_files(kb)[core])))  # replaced, not added
    finally:
        stop(second)
