"""The named queries as a web API (reasoner/server/named_queries/router.py and
spec.py): every ``queries/*.rq`` has its route at ``/api/{name}``, listed in
the OpenAPI document with its typed parameters, answering over a server holding the
example cases; parameters are bound as escaped SPARQL terms and bad ones are refused;
headers the server cannot honour stop it from starting."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
from sparql_server import EXAMPLES, ROOT, free_port, running

from reasoner.knowledge import KnowledgeBaseError, NamedQuery
from reasoner.server.named_queries.spec import api_query

LBP = "https://w3id.org/lbp-imaging/"
CASE = "https://example.org/case/30-infection-with-cauda-equina"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running(["--cases", str(EXAMPLES)], tmp_path_factory.mktemp("logs")) as server:
        yield server


def rows(server, name: str, **params: str) -> list[dict[str, str]]:
    response = httpx.get(f"{server.url}/api/{name}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return [{k: v["value"] for k, v in b.items()} for b in response.json()["results"]["bindings"]]


def count(kb, where: str) -> int:
    """How many distinct ?x the knowledge base itself has for ``where`` (so that the
    expected numbers follow the ontology, not a copy of them)."""
    query = f"""PREFIX lbp: <{LBP}> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
        PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
        SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ {where} }}"""
    return int(next(iter(kb.ontology.query(query)))[0])


def expected_cases() -> dict[str, dict]:
    found = {}
    for path in EXAMPLES.glob("*.expected.json"):
        data = json.loads(path.read_text())
        for entry in data if isinstance(data, list) else [data]:
            found[entry["case"]] = entry
    return found


# -- every query: a route, in the OpenAPI document, answering ----------------------------------
def test_every_named_query_is_an_operation_of_the_openapi_document(server, kb):
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    for name, named in kb.queries.items():
        operation = paths[f"/api/{name}"]["get"]
        assert operation["summary"] == named.summary
        assert operation["tags"] and f"queries/{name}.rq" in operation["description"]
        documented = {p["name"]: p for p in operation.get("parameters", [])}
        paging = {"limit", "offset"} if api_query(named).columns is not None else set()
        assert set(documented) == {p.name for p in api_query(named).parameters} | paging, name
    case = paths["/api/case-indication"]["get"]["parameters"][0]
    assert (case["name"], case["required"], case["schema"]) == (
        "case",
        True,
        {"type": "string", "format": "iri"},
    )
    optional = paths["/api/terminology-mappings"]["get"]["parameters"]
    assert {p["name"]: p["required"] for p in optional} == {
        "concept": False,
        "system": False,
        "limit": False,
        "offset": False,
    }


@pytest.mark.parametrize(
    "name",
    sorted(p.stem for p in (ROOT / "queries").glob("*.rq")),
)
def test_each_named_query_answers_in_each_results_format(server, name):
    params = {"case": CASE} if name.startswith("case-") else {}
    assert rows(server, name, **params), name
    for media in ("application/sparql-results+xml", "text/csv", "text/tab-separated-values"):
        response = httpx.get(f"{server.url}/api/{name}", params=params, headers={"accept": media}, timeout=30)
        assert response.status_code == 200 and response.headers["content-type"].startswith(media)
        assert response.headers["vary"] == "Accept"


def test_a_query_without_parameters_answers_as_it_does_at_the_sparql_endpoint(server, kb):
    direct = httpx.post(server.endpoint, data={"query": kb.query("recommended-procedure").text}, timeout=30)
    named = httpx.get(server.url + "/api/recommended-procedure", timeout=30)
    key = lambda b: json.dumps(b, sort_keys=True)  # noqa: E731
    assert sorted(named.json()["results"]["bindings"], key=key) == sorted(
        direct.json()["results"]["bindings"], key=key
    )


# -- the queries the issue asks for, with their parameters -------------------------------------
def test_case_indication_gives_the_stored_recommendation(server):
    (row,) = rows(server, "case-indication", case=CASE)
    want = expected_cases()[CASE]
    got = (row["case"], row["outcome"], row["procedure"], row["urgency"])
    assert got == (CASE, LBP + want["outcome"], LBP + want["procedure"], LBP + want["urgency"])
    assert row["procedureLabel"] and row["assessedAt"]


def test_case_explanation_lists_facts_criteria_quotes_questions_and_red_flags(server):
    found = rows(server, "case-explanation", case=CASE)
    parts = {r["part"] for r in found}
    assert {
        "fact",
        "criterion fact",
        "criterion source",
        "criterion undetermined",
        "question",
        "red flag present",
        "warning",
    } == parts
    want = expected_cases()[CASE]
    met = {r["criterion"].removeprefix(LBP) for r in found if r["part"].startswith("criterion ")}
    met -= {r["criterion"].removeprefix(LBP) for r in found if r["part"] == "criterion undetermined"}
    assert met == set(want["criteria"])
    open_ = {r["criterion"].removeprefix(LBP) for r in found if r["part"] == "criterion undetermined"}
    assert open_ and open_ <= set(want["undetermined"])
    questions = [r for r in found if r["part"] == "question"]
    assert sorted({r["value"].removeprefix(LBP) for r in questions}) == want["questions"]
    assert {r["criterion"].removeprefix(LBP) for r in questions} == open_
    assert all(r["valueLabel"] and r["text"].startswith("could ") for r in questions)
    # The criteria left undetermined are stored on the case, but are not facts of it.
    assert not any(r["property"] == LBP + "undeterminedCriterion" for r in found if r["part"] == "fact")
    sources = [r for r in found if r["part"] == "criterion source"]
    assert all(
        r["quote"] and r["document"] and r["statement"].startswith(LBP + "statement/") for r in sources
    )
    facts = {(r["property"], r["value"]) for r in found if r["part"] == "fact"}
    assert (LBP + "hasFinding", LBP + "Fever") in facts


@pytest.mark.parametrize(
    "case",
    [
        CASE,
        "https://example.org/case/40-screening-incomplete",
        "https://example.org/case/39-screened-negative",
    ],
)
def test_case_questions_are_those_of_the_case_expectation(server, case):
    found = rows(server, "case-questions", case=case)
    want = expected_cases()[case]
    assert sorted({r["about"].removeprefix(LBP) for r in found}) == want["questions"]
    assert {r["criterion"].removeprefix(LBP) for r in found} <= set(want["undetermined"])
    assert all(r["case"] == case and r["aboutLabel"] and r["criterionLabel"] for r in found)
    assert all(r["effects"].startswith("could ") for r in found)
    # Most urgent criterion first: a criterion with an urgency comes before a rule without.
    ranked = [bool(r.get("urgency")) for r in found]
    assert ranked == sorted(ranked, reverse=True)


def test_criteria_sources_quote_every_criterion_and_narrow_to_one(server):
    found = rows(server, "criteria-sources")
    criteria = {r["criterion"] for r in found}
    assert (
        LBP + "SuspectedCaudaEquinaSyndrome" in criteria
        and LBP + "NonspecificLowBackPainWithoutRedFlags" in criteria
    )
    assert all(r["quote"] and int(r["end"]) > int(r["start"]) for r in found)
    one = rows(server, "criteria-sources", criterion=LBP + "SuspectedSpinalInfection")
    assert one and {r["criterion"] for r in one} == {LBP + "SuspectedSpinalInfection"}
    assert {r["procedure"] for r in one} == {LBP + "MRILumbarSpineWithoutContrast"}


def test_red_flags_by_category(server, kb):
    found = rows(server, "red-flags")
    assert len({r["redFlag"] for r in found}) == count(kb, "?x a/rdfs:subClassOf* lbp:RedFlag")
    fracture = rows(server, "red-flags", category=LBP + "FractureRiskFactor")
    assert {r["redFlag"].removeprefix(LBP) for r in fracture} == {
        "Osteoporosis",
        "ProlongedCorticosteroidUse",
        "SignificantTrauma",
    }
    assert {r["condition"] for r in fracture} == {LBP + "VertebralFracture"}


@pytest.mark.parametrize("recommendation", ["Emergent", "MRILumbarSpineWithoutContrast", "OutcomeNoImaging"])
def test_cases_by_recommendation(server, recommendation):
    found = rows(server, "cases-by-recommendation", recommendation=LBP + recommendation)
    want = {
        case
        for case, e in expected_cases().items()
        if recommendation in (e["outcome"], e["procedure"], e["urgency"])
    }
    assert want and {r["case"] for r in found} == want
    assert len(rows(server, "cases-by-recommendation")) == len(expected_cases())


def test_procedures_and_modifier_rules(server, kb):
    procedures = {r["procedure"].removeprefix(LBP): r for r in rows(server, "procedures")}
    assert len(procedures) == count(kb, "?x a/rdfs:subClassOf* lbp:DiagnosticProcedure")
    mri = procedures["MRILumbarSpineWithoutContrast"]
    assert mri["contrastEnhancedVariant"] == LBP + "MRILumbarSpineWithoutAndWithContrast"
    assert set(mri["supersedes"].split()) == {LBP + "LumbarSpineRadiography", LBP + "ESRTest"}
    swaps = {
        (r["rule"].removeprefix(LBP), r["from"].removeprefix(LBP), r["to"].removeprefix(LBP))
        for r in rows(server, "procedure-modifier-rules")
    }
    assert ("MRIContraindicatedCase", "MRILumbarSpineWithoutContrast", "CTMyelographyLumbar") in swaps
    assert (
        "ContrastForPostoperativeSpine",
        "MRILumbarSpineWithoutContrast",
        "MRILumbarSpineWithoutAndWithContrast",
    ) in swaps


def test_terminology_mappings_by_concept_and_system(server, kb):
    every = rows(server, "terminology-mappings")
    mappings = "?s skos:exactMatch|skos:closeMatch|skos:broadMatch|skos:narrowMatch|skos:relatedMatch ?o "
    mappings += 'BIND(CONCAT(STR(?s), " ", STR(?o)) AS ?x)'
    assert len(every) == count(kb, mappings) and all(r["code"] and r["fhirSystem"] for r in every)
    fever = rows(server, "terminology-mappings", concept=LBP + "Fever")
    assert [(r["code"], r["fhirSystem"]) for r in fever] == [("386661006", "http://snomed.info/sct")]
    loinc = rows(server, "terminology-mappings", system=LBP + "LOINC")
    assert loinc and {r["system"] for r in loinc} == {LBP + "LOINC"}


# -- parameters: refused or escaped, never pasted ---------------------------------------------
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "missing required parameter"),
        ({"case": CASE, "page": "1"}, "unknown parameter"),
        ({"case": CASE, "limit": "-1"}, "parameter 'limit' must be a non-negative integer"),
        ({"case": "not an iri"}, "absolute IRI"),
        ({"case": f"{CASE}> }} UNION {{ ?s ?p ?o }} #"}, "absolute IRI"),
        ({"case": "https://x/a\\u003E"}, "absolute IRI"),
    ],
)
def test_bad_parameters_are_refused(server, params, message):
    response = httpx.get(server.url + "/api/case-indication", params=params, timeout=30)
    assert response.status_code == 400 and message in response.text


def test_a_parameter_given_twice_is_refused(server):
    response = httpx.get(f"{server.url}/api/case-indication?case={CASE}&case={CASE}", timeout=30)
    assert response.status_code == 400 and "more than once" in response.text


def test_an_unacceptable_format_is_406(server):
    response = httpx.get(server.url + "/api/procedures", headers={"accept": "image/png"})
    assert response.status_code == 406


def _named(text: str, name: str = "probe") -> NamedQuery:
    return NamedQuery(name, Path(f"{name}.rq"), text, "")


HEADER = "#+ summary: a probe\n"


@pytest.mark.parametrize(
    "value",
    ['say "hi"', "back\\slash", "\\u0022 } ; DROP ALL #", "line\nbreak\ttab", '}"\'\'\'"""', "é 日本"],
)
def test_a_string_value_is_bound_as_one_escaped_literal(value):
    query = api_query(_named(HEADER + "SELECT ?x WHERE { BIND(?_text AS ?x) }"))
    (solution,) = ox.Store().query(query.bind({"text": value}))
    assert solution["x"] == ox.Literal(value)


@pytest.mark.parametrize(
    ("variable", "value", "term"),
    [
        (
            "?_n_number",
            "7",
            ox.Literal("7", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")),
        ),
        (
            "?_n_number",
            "-2.5",
            ox.Literal("-2.5", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#decimal")),
        ),
        (
            "?_n_integer",
            "42",
            ox.Literal("42", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")),
        ),
        (
            "?_n_date",
            "2026-11-23",
            ox.Literal("2026-11-23", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#date")),
        ),
        ("?_n_en", "fever", ox.Literal("fever", language="en")),
        ("?_n_iri", "urn:example:x", ox.NamedNode("urn:example:x")),
    ],
)
def test_typed_parameters_follow_grlc_conventions(variable, value, term):
    query = api_query(_named(HEADER + f"SELECT ?x WHERE {{ BIND({variable} AS ?x) }}"))
    (solution,) = ox.Store().query(query.bind({"n": value}))
    assert solution["x"] == term


@pytest.mark.parametrize(
    ("variable", "value"), [("?_n_number", "7; DROP"), ("?_n_integer", "4.5"), ("?_n_boolean", "yes")]
)
def test_a_value_not_of_its_type_is_refused(variable, value):
    query = api_query(_named(HEADER + f"SELECT ?x WHERE {{ BIND({variable} AS ?x) }}"))
    with pytest.raises(ValueError, match="must be"):
        query.bind({"n": value})


def test_an_optional_parameter_left_out_stays_a_variable():
    query = api_query(
        _named(HEADER + "SELECT ?s WHERE { VALUES ?s { 1 2 } FILTER(?s = COALESCE(?__s_number, ?s)) }")
    )
    assert len(list(ox.Store().query(query.bind({})))) == 2
    assert len(list(ox.Store().query(query.bind({"s": "2"})))) == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("SELECT * {}", "summary"),
        (HEADER + "#+ endpoint: http://dbpedia.org/sparql\nSELECT * {}", "'endpoint' is not supported"),
        (HEADER + "#+ colour: blue\nSELECT * {}", "unknown header decorator"),
        (HEADER + "#+ method: PUT\nSELECT * {}", "method"),
        (HEADER + "#+   - stray\nSELECT * {}", "list item"),
        (HEADER + "SELECT ?x WHERE { ?x ?p ?_d_xsd_date }", "_prefix_datatype"),
        (HEADER + "SELECT ?_case_iri WHERE { ?_case_iri ?p ?o }", "only stand where a term can"),
        (HEADER + "SELECT * WHERE { ?_a_iri ?p ?_a }", "share a name"),
    ],
)
def test_a_header_or_parameter_the_server_cannot_honour_is_a_knowledge_base_error(text, problem):
    with pytest.raises(KnowledgeBaseError, match=problem):
        api_query(_named(text))


# -- a POST query, and a query that stops the server from starting ----------------------------
@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    for name in ("ontology", "shapes", "queries", "examples"):
        shutil.copytree(ROOT / name, root / name)
    return root


def test_a_query_whose_header_says_post_is_served_by_post_with_a_form(kb_copy, tmp_path):
    (kb_copy / "queries" / "finding-label.rq").write_text(
        "#+ summary: The label of a finding.\n#+ method: POST\n#+ tags:\n#+   - probe\n"
        "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
        "SELECT ?label WHERE { ?_finding_iri rdfs:label ?label }\n",
        encoding="utf-8",
    )
    with running(["--kb", str(kb_copy)], tmp_path) as server:
        url = server.url + "/api/finding-label"
        by_form = httpx.post(url, data={"finding": LBP + "Fever"}, timeout=30)
        assert by_form.status_code == 200, by_form.text
        assert by_form.json()["results"]["bindings"][0]["label"]["value"] == "fever"
        assert httpx.get(url, params={"finding": LBP + "Fever"}).status_code == 200
        wrong_type = httpx.post(url, content=b"{}", headers={"content-type": "application/json"})
        assert wrong_type.status_code == 415
        operation = httpx.get(server.url + "/openapi.json").json()["paths"]["/api/finding-label"]["post"]
        form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
        assert form["required"] == ["finding"] and operation["tags"] == ["probe"]


def test_a_query_with_a_broken_header_stops_the_server_from_starting(cli, kb_copy):
    (kb_copy / "queries" / "broken.rq").write_text(
        "#+ summary: broken\n#+ pagination: 10\nSELECT * {}\n", encoding="utf-8"
    )
    proc = cli("serve", "--kb", kb_copy, "--port", free_port())
    assert proc.returncode == 2
    assert "broken.rq" in proc.stderr and "pagination" in proc.stderr
