"""The CDS Hooks 2.0 service (reasoner/server/cds_hooks/) over HTTP, against a real
``lbp-imaging serve`` process: discovery, every request/expected pair of
examples/cds-hooks/ (one served by a fake FHIR server that checks the bearer token, on the
port the service was started to allow with ``--fhir-server``), malformed requests, a
``fhirServer`` the service may not fetch from, and every response checked against the CDS
Hooks response rules.

How an example is compared (examples/README.md says the same): the expected file's
``status`` must be the HTTP status, and its ``response`` must be contained in the answer:
every key it gives must be there with the same value (objects recursively, lists element
by element with the same length), so fields it leaves out (card and suggestion ``uuid``,
``detail``, ``overrideReasons``, the id of a suggested order) are not compared. A card's
``detailIncludes`` lists strings its Markdown ``detail`` must contain. ``note`` says why.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid

import httpx
import pytest
from fake_fhir_server import serving
from fhir.resources.R4B.servicerequest import ServiceRequest
from rdflib import RDF, RDFS, Graph, Literal, URIRef
from sparql_server import ROOT, free_port, running

from reasoner.fhir.ordering import CdsKnowledge
from reasoner.fhir.questionnaire import questionnaire
from reasoner.knowledge import LBP
from reasoner.server.cds_hooks.cards import CardWriter
from reasoner.server.cds_hooks.detail import MAX_NOTES, DetailWriter, md
from reasoner.server.cds_hooks.fhir_servers import allowed, within
from reasoner.server.cds_hooks.prefetch import gather
from reasoner.server.cds_hooks.request import parse_request
from reasoner.server.cds_hooks.service import CdsHooksService

EXAMPLES = ROOT / "examples" / "cds-hooks"
NAMES = sorted(p.name.removesuffix(".request.json") for p in EXAMPLES.glob("*.request.json"))
FAKE_SERVER = "{{FAKE_FHIR_SERVER}}"
SIGN = "lbp-imaging-order-sign"
PAMA_RATING = "http://fhir.org/argonaut/Extension/pama-rating"
PAMA_CODES = {"appropriate", "not-appropriate", "no-criteria-apply"}


FHIR_PORT = free_port()
"""Where the fake FHIR server listens: the one FHIR server the service is started to allow."""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    allowed = f"http://127.0.0.1:{FHIR_PORT}/fhir"
    with running(["--fhir-server", allowed], tmp_path_factory.mktemp("logs")) as server:
        yield server


def post(server, service: str, body: str | bytes) -> httpx.Response:
    return httpx.post(
        f"{server.url}/cds-services/{service}",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )


def example(name: str) -> tuple[str, dict]:
    return (EXAMPLES / f"{name}.request.json").read_text(), json.loads(
        (EXAMPLES / f"{name}.expected.json").read_text()
    )


# -- the CDS Hooks response rules ------------------------------------------------------------
def action_problems(action: object, where: str) -> list[str]:
    if not isinstance(action, dict):
        return [f"{where}: not an object"]
    problems = []
    if action.get("type") not in ("create", "update", "delete"):
        problems.append(f"{where}.type: {action.get('type')!r} is not create, update or delete")
    if not isinstance(action.get("description"), str) or not action["description"]:
        problems.append(f"{where}.description: required")
    resource = action.get("resource")
    if action.get("type") in ("create", "update"):
        if not isinstance(resource, dict) or "resourceType" not in resource:
            problems.append(f"{where}.resource: a FHIR resource is required for {action.get('type')}")
        elif resource["resourceType"] == "ServiceRequest":
            ServiceRequest.model_validate(resource)  # valid FHIR R4 (R4B model), or it raises
    if action.get("type") == "delete" and not (isinstance(action.get("resourceId"), str) or resource):
        problems.append(f"{where}: a delete names its resource (resourceId)")
    return problems


def card_problems(card: object, where: str) -> list[str]:
    if not isinstance(card, dict):
        return [f"{where}: not an object"]
    problems = []
    summary = card.get("summary")
    if not isinstance(summary, str) or not summary or len(summary) >= 140:
        problems.append(f"{where}.summary: required, under 140 characters: {summary!r}")
    if card.get("indicator") not in ("info", "warning", "critical"):
        problems.append(f"{where}.indicator: {card.get('indicator')!r}")
    source = card.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("label"), str) or not source["label"]:
        problems.append(f"{where}.source: an object with a label is required")
    elif "url" in source and not str(source["url"]).startswith(("http://", "https://")):
        problems.append(f"{where}.source.url: not an absolute URL")
    try:
        uuid.UUID(str(card.get("uuid")))
    except ValueError:
        problems.append(f"{where}.uuid: not a UUID")
    if "detail" in card and not isinstance(card["detail"], str):
        problems.append(f"{where}.detail: must be Markdown text")
    suggestions = card.get("suggestions")
    if suggestions is not None:
        if not isinstance(suggestions, list) or not suggestions:
            problems.append(f"{where}.suggestions: a non-empty list when present")
        if card.get("selectionBehavior") not in ("at-most-one", "any"):
            problems.append(f"{where}.selectionBehavior: required with suggestions")
        for i, s in enumerate(suggestions or []):
            if not isinstance(s.get("label"), str) or not s["label"]:
                problems.append(f"{where}.suggestions[{i}].label: required")
            for j, action in enumerate(s.get("actions") or []):
                problems += action_problems(action, f"{where}.suggestions[{i}].actions[{j}]")
    links = card.get("links")
    if links is not None and (not isinstance(links, list) or not links):
        problems.append(f"{where}.links: a non-empty list when present")
    for i, link in enumerate(links or []):
        if not isinstance(link.get("label"), str) or not link["label"]:
            problems.append(f"{where}.links[{i}].label: required")
        if not str(link.get("url")).startswith(("http://", "https://")):
            problems.append(f"{where}.links[{i}].url: an absolute URL is required")
        if link.get("type") not in ("absolute", "smart"):
            problems.append(f"{where}.links[{i}].type: {link.get('type')!r} is not absolute or smart")
    for i, reason in enumerate(card.get("overrideReasons") or []):
        if not all(isinstance(reason.get(k), str) and reason[k] for k in ("code", "system", "display")):
            problems.append(f"{where}.overrideReasons[{i}]: a Coding with code, system and display")
    return problems


def response_problems(response: object) -> list[str]:
    """What breaks the CDS Hooks 2.0 response rules (and this service's own: the disclaimer in
    every card, a PAMA rating in every ServiceRequest update); empty when none."""
    if not isinstance(response, dict) or not isinstance(response.get("cards"), list):
        return ["the response needs a cards list"]
    problems = [p for i, c in enumerate(response["cards"]) for p in card_problems(c, f"cards[{i}]")]
    problems += [
        f"cards[{i}].detail: no disclaimer"
        for i, c in enumerate(response["cards"])
        if "decision support, not diagnosis" not in c.get("detail", "").lower()
    ]
    actions = response.get("systemActions")
    if actions is not None and (not isinstance(actions, list) or not actions):
        problems.append("systemActions: a non-empty list when present")
    for i, action in enumerate(actions or []):
        problems += action_problems(action, f"systemActions[{i}]")
        ratings = [e for e in action.get("resource", {}).get("extension", []) if e.get("url") == PAMA_RATING]
        codes = [c["code"] for r in ratings for c in r["valueCodeableConcept"]["coding"]]
        if len(codes) != 1 or codes[0] not in PAMA_CODES:
            problems.append(f"systemActions[{i}]: one PAMA rating expected, found {codes}")
    return problems


def differences(expected: object, actual: object, path: str = "$") -> list[str]:
    """Where ``actual`` does not contain ``expected`` (see the module docstring)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        found = []
        for key, value in expected.items():
            if key == "detailIncludes":
                found += [f"{path}.detail lacks {s!r}" for s in value if s not in actual.get("detail", "")]
            elif key not in actual:
                found.append(f"{path}.{key}: missing")
            else:
                found += differences(value, actual[key], f"{path}.{key}")
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {len(expected)} items, got {actual!r}"]
        return [
            d
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for d in differences(e, a, f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]


# -- discovery -------------------------------------------------------------------------------
def test_discovery_lists_one_service_per_ordering_hook_with_prefetch_templates(server):
    response = httpx.get(f"{server.url}/cds-services", timeout=30)
    assert response.status_code == 200
    services = {s["hook"]: s for s in response.json()["services"]}
    assert set(services) == {"order-select", "order-sign"}
    for hook, service in services.items():
        assert service["id"] == f"lbp-imaging-{hook}" and service["title"]
        assert "decision support, not diagnosis" in service["description"].lower()
        prefetch = service["prefetch"]
        assert prefetch["patient"] == "Patient/{{context.patientId}}"
        for kind in ("Condition", "Observation", "Procedure", "MedicationStatement", "Device"):
            assert any(
                q.startswith(f"{kind}?patient={{{{context.patientId}}}}") for q in prefetch.values()
            ), kind


# -- the examples ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_example_gives_its_expected_response(server, name):
    text, expected = example(name)
    served = EXAMPLES / f"{name}.fhir-server.json"
    if served.exists():
        token = json.loads(text)["fhirAuthorization"]["access_token"]
        with serving(served, token, FHIR_PORT) as fhir:
            response = post(server, expected["service"], text.replace(FAKE_SERVER, fhir.base))
        assert fhir.requests and all(r["authorization"] == f"Bearer {token}" for r in fhir.requests)
        assert any("_page=2" in r["path"] for r in fhir.requests), "the service follows next links"
    else:
        response = post(server, expected["service"], text)
    assert response.status_code == expected["status"], response.text
    body = response.json()
    assert differences(expected["response"], body) == []
    if response.status_code == 200:
        assert response_problems(body) == []
    else:
        assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["diagnostics"]


def test_a_card_source_url_dereferences_to_its_statement_on_the_same_server(server):
    """The statement IRIs (https://w3id.org/lbp-imaging/…) are served at their path here."""
    text, expected = example("03-contrast-needed-infection")
    card = post(server, expected["service"], text).json()["cards"][0]
    local = card["source"]["url"].replace("https://w3id.org", server.url)
    response = httpx.get(local, headers={"Accept": "text/turtle"}, follow_redirects=True, timeout=30)
    assert response.status_code == 200
    assert "Add IV contrast only when infection" in response.text


def test_the_examples_cover_every_card_kind_and_status():
    expected = [example(n)[1] for n in NAMES]
    cards = [c for e in expected for c in e["response"].get("cards", [])]
    assert {c["indicator"] for c in cards} == {"info", "warning", "critical"}
    assert any("suggestions" in c for c in cards)
    assert {e["status"] for e in expected} == {200, 400, 412}
    ratings = {
        c["code"]
        for e in expected
        for a in e["response"].get("systemActions", [])
        for x in a["resource"]["extension"]
        if x["url"] == PAMA_RATING
        for c in x["valueCodeableConcept"]["coding"]
    }
    assert ratings == PAMA_CODES


# -- errors ----------------------------------------------------------------------------------
def _request(name: str = "01-matching-order-radiculopathy") -> dict:
    return json.loads(example(name)[0])


def _without(doc: dict, *path: str) -> dict:
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return doc


def _with(doc: dict, value: object, *path: str | int) -> dict:
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


MALFORMED = {
    "not JSON": (SIGN, b'{"hook": "order-sign", ', None),
    "not an object": (SIGN, b"[]", None),
    "no hookInstance": (SIGN, _without(_request(), "hookInstance"), "hookInstance"),
    "no patientId": (SIGN, _without(_request(), "context", "patientId"), "context.patientId"),
    "no userId": (SIGN, _without(_request(), "context", "userId"), "context.userId"),
    "no selections": (
        "lbp-imaging-order-select",
        _without(_request("05-cauda-equina-critical"), "context", "selections"),
        "context.selections",
    ),
    "selection not drafted": (
        "lbp-imaging-order-select",
        _with(_request("05-cauda-equina-critical"), ["ServiceRequest/other"], "context", "selections"),
        "context.selections[0]",
    ),
    "invalid ServiceRequest": (
        SIGN,
        _without(_request(), "context", "draftOrders", "entry", 0, "resource", "status"),
        "context.draftOrders.entry[0].resource",
    ),
    "another patient prefetched": (
        SIGN,
        _with(_request(), "someone-else", "prefetch", "patient", "id"),
        "prefetch.patient",
    ),
    "prefetch search not a Bundle": (
        SIGN,
        _with(_request(), {"resourceType": "Condition"}, "prefetch", "conditions"),
        "prefetch.conditions",
    ),
    "bad asOf": (
        SIGN,
        _with(_request(), {"org.w3id.lbp-imaging.asOf": "23/11/2026"}, "extension"),
        "extension.org.w3id.lbp-imaging.asOf",
    ),
    "invalid FHIR prefetched": (
        SIGN,
        _with(_request(), "23/11/1960", "prefetch", "patient", "birthDate"),
        "prefetch",
    ),
    "token without server": (
        SIGN,
        _with(_request(), {"access_token": "t"}, "fhirAuthorization"),
        "fhirServer",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_a_malformed_request_is_400_with_an_operation_outcome_naming_the_field(server, case):
    service, body, field = MALFORMED[case]
    response = post(server, service, body if isinstance(body, bytes) else json.dumps(body))
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert response.json()["resourceType"] == "OperationOutcome" and issue["severity"] == "error"
    assert issue.get("expression", [None]) == [field]


def test_an_unknown_service_is_404(server):
    response = post(server, "no-such-service", json.dumps(_request()))
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-found"


def test_a_fhir_server_refusing_the_token_is_412(server):
    name = "10-prefetch-from-fhir-server"
    text, _ = example(name)
    with serving(EXAMPLES / f"{name}.fhir-server.json", "another-token", FHIR_PORT) as fhir:
        response = post(server, SIGN, text.replace(FAKE_SERVER, fhir.base))
    assert response.status_code == 412
    assert "answered 401" in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    "where",
    ["another port", "another path", "a path that climbs out"],
)
def test_a_fhir_server_not_allowed_is_refused_412_without_any_request(server, where):
    """The service was started with --fhir-server for FHIR_PORT's /fhir only: a request naming
    any other server gets 412 with an OperationOutcome naming fhirServer, and no request
    reaches the server it named."""
    name = "10-prefetch-from-fhir-server"
    text, _ = example(name)
    token = json.loads(text)["fhirAuthorization"]["access_token"]
    with serving(EXAMPLES / f"{name}.fhir-server.json", token) as fhir:  # on a free port
        named = {
            "another port": fhir.base,
            "another path": f"http://127.0.0.1:{FHIR_PORT}/fhir-admin",
            "a path that climbs out": f"http://127.0.0.1:{FHIR_PORT}/fhir/%2e%2e/admin",
        }[where]
        response = post(server, SIGN, text.replace(FAKE_SERVER, named))
    assert response.status_code == 412, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "forbidden" and issue["expression"] == ["fhirServer"]
    assert "is not a FHIR server this service may fetch from" in issue["diagnostics"]
    assert fhir.requests == []


BASE = "https://ehr.example.org/fhir"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        (BASE, True),
        (BASE + "/", True),
        (BASE + "/r4", True),
        ("HTTPS://EHR.example.org:443/fhir/r4", True),
        ("http://ehr.example.org/fhir", False),
        ("https://ehr.example.org:8443/fhir", False),
        ("https://ehr.example.org/fhir-admin", False),
        ("https://ehr.example.org/", False),
        ("https://ehr.example.org.evil.test/fhir", False),
        ("https://ehr.example.org@evil.test/fhir", False),
        ("https://user@ehr.example.org/fhir", False),
        ("https://ehr.example.org/fhir/../admin", False),
        ("https://ehr.example.org/fhir/%2E%2e/admin", False),
        ("https://ehr.example.org/fhir?_format=json", False),
        ("https://ehr.example.org/fhir#x", False),
        ("file:///etc/passwd", False),
        ("not a url", False),
    ],
)
def test_a_fhir_server_is_allowed_only_within_a_base_url(url, ok):
    assert allowed(url, (BASE,)) is ok
    assert allowed(url, ()) is False


def test_next_links_may_carry_a_query_but_must_stay_within_the_server():
    assert within(f"{BASE}/Condition?patient=p1&_page=2", BASE, query=True)
    assert not within(f"{BASE}/../Condition?patient=p1", BASE, query=True)
    assert not within("https://elsewhere.test/fhir/Condition?patient=p1", BASE, query=True)


@pytest.mark.parametrize("url", ["ftp://ehr.example.org/fhir", "https://u:p@ehr.example.org/fhir", "ehr"])
def test_serve_refuses_a_fhir_server_option_that_is_not_a_base_url(cli, url):
    result = cli("serve", "--fhir-server", url)
    assert result.returncode == 2 and "is not a FHIR base URL" in result.stderr


def test_without_fhir_server_options_no_fhir_server_is_fetched_from(tmp_path):
    name = "10-prefetch-from-fhir-server"
    text, _ = example(name)
    token = json.loads(text)["fhirAuthorization"]["access_token"]
    with running([], tmp_path) as bare, serving(EXAMPLES / f"{name}.fhir-server.json", token) as fhir:
        response = post(bare, SIGN, text.replace(FAKE_SERVER, fhir.base))
    assert response.status_code == 412, response.text
    assert response.json()["issue"][0]["code"] == "forbidden"
    assert fhir.requests == []


def test_an_order_whose_codes_name_two_studies_gets_a_warning_and_no_rating(server):
    coding = {"system": "http://www.ama-assn.org/go/cpt", "code": "72158"}
    doc = _request()
    doc["context"]["draftOrders"]["entry"][0]["resource"]["code"]["coding"].append(coding)
    response = post(server, SIGN, json.dumps(doc))
    assert response.status_code == 200
    body = response.json()
    assert response_problems(body) == [] and "systemActions" not in body
    assert (
        body["cards"][0]["indicator"] == "warning"
        and "2 different lumbar studies" in body["cards"][0]["summary"]
    )


def test_patient_data_the_case_shapes_reject_gets_a_warning_listing_the_errors_and_no_rating(server):
    response = post(server, SIGN, json.dumps(_without(_request(), "prefetch", "patient", "birthDate")))
    assert response.status_code == 200
    body = response.json()
    assert response_problems(body) == [] and "systemActions" not in body
    card = body["cards"][0]
    assert card["indicator"] == "warning" and "could not be assessed" in card["summary"]
    assert "Errors in the patient data" in card["detail"] and "Age" in card["detail"]


# -- the card data is the ontology's ---------------------------------------------------------
def _service_over(assessor, graph) -> CdsHooksService:
    service = CdsHooksService(assessor, threading.Lock())
    service.cards = CardWriter(assessor.vocab, CdsKnowledge.from_ontology(graph), service.procedures)
    return service


def _answer(service: CdsHooksService, name: str) -> dict:
    request = parse_request(example(name)[0].encode(), "order-sign")
    orders = service.procedures.lumbar_orders(request.orders)
    data = gather(request, fhir_servers=())
    return service.cards.response(service.assess(data, request), orders, request.hook_instance)


def test_the_urgency_indicator_and_the_ratings_are_read_from_the_ontology(assessor, kb):
    graph = kb.ontology + Graph()
    graph.set((LBP.Routine, LBP.cdsHooksIndicator, Literal("critical")))
    graph.set((LBP.Prompt, LBP.cdsHooksIndicator, Literal("critical")))
    graph.remove((LBP.OutcomeRedFlagWithoutCriterion, LBP.pamaRatingForOtherOrder, None))
    service = _service_over(assessor, graph)
    assert _answer(service, "01-matching-order-radiculopathy")["cards"][0]["indicator"] == "critical"
    # an undetermined order follows its most urgent open criterion's urgency (prompt here)
    assert _answer(service, "07-more-information-needed")["cards"][0]["indicator"] == "critical"
    # an outcome without a rating gives no rating, whatever the verdict
    unrated = _answer(service, "08-red-flag-without-criterion")
    assert unrated["cards"][0]["indicator"] == "warning" and "systemActions" not in unrated


# -- partial information: undetermined orders, and questions on an indicated order ----------
def _result(assessor, name: str):
    """The engine's result for an example's patient data, as the service assesses it."""
    text = example(name)[0]
    request = parse_request(text.encode(), json.loads(text)["hook"])
    return CdsHooksService(assessor, threading.Lock()).assess(gather(request, fhir_servers=()), request)


def _asked(result, effect: str | None = None) -> list[str]:
    """The labels of the result's questions (those that could have ``effect``), as Markdown."""
    return [
        md(q["about"]["label"])
        for q in result.questions
        if effect is None or any(c["effect"] == effect for c in q["criteria"])
    ]


@pytest.mark.parametrize(
    ("name", "indicator"),
    [("07-more-information-needed", "warning"), ("14-more-information-cauda-equina-unknown", "critical")],
)
def test_an_undetermined_order_gets_a_card_listing_every_question_and_no_rating(
    server, assessor, name, indicator
):
    """More information needed: no criterion met, some undetermined. The card says so with
    the number of questions, lists each under what it suggests, is a warning raised to the
    most urgent open criterion's indicator (an undetermined cauda equina criterion makes it
    critical), and the order is not rated: no systemAction, no suggestion, no PAMA extension."""
    result = _result(assessor, name)
    assert result.outcome["iri"] == str(LBP.OutcomeMoreInformationNeeded) and result.questions
    text, expected = example(name)
    response = post(server, expected["service"], text)
    assert response.status_code == 200
    body = response.json()
    assert response_problems(body) == [] and "systemActions" not in body
    assert PAMA_RATING not in response.text
    asked = len(result.questions)
    for card in body["cards"]:
        assert card["indicator"] == indicator and "suggestions" not in card
        assert card["summary"].startswith(f"More information needed: {asked} questions")
        detail = card["detail"]
        assert f"**To settle this, ask** ({asked} questions; unknown is not absent)" in detail
        section = detail[detail.index("**To settle this, ask**") : detail.index("**Red flags present**")]
        assert all(f"  - {label}: if " in section for label in _asked(result))
        groups = [f"- **{md(g)}**" for g in dict.fromkeys(q["suggests"]["label"] for q in result.questions)]
        assert [section.index(g) for g in groups] == sorted(section.index(g) for g in groups)
        assert "not assessed" not in detail and "no imaging indicated" not in detail


def test_answers_sent_as_questionnaire_responses_in_the_prefetch_settle_the_order(server, assessor, kb):
    """The ``responses`` prefetch key (declared with the generated questionnaire's URL): a
    QuestionnaireResponse answering every question of an undetermined order, read like the
    rest of the patient's data, settles it; a response to another questionnaire is a 400."""
    full = questionnaire(kb)
    discovered = httpx.get(f"{server.url}/cds-services", timeout=30).json()["services"][0]["prefetch"]
    assert discovered["responses"].startswith("QuestionnaireResponse?subject=Patient/{{context.patientId}}")
    assert discovered["responses"].endswith(f"questionnaire={full['url']}")
    text, expected = example("07-more-information-needed")
    result = _result(assessor, "07-more-information-needed")
    kinds = {i["linkId"]: i["type"] for g in full["item"] for i in g["item"]}
    numbers = {
        "integer": {"valueInteger": 40},
        "decimal": {"valueDecimal": 1},
        "boolean": {"valueBoolean": False},
    }
    answers = [{"linkId": q["about"]["iri"].rsplit("/", 1)[-1]} for q in result.questions]
    for item in answers:
        kind = kinds[item["linkId"]]
        item["answer"] = (
            [{"valueCoding": {"system": "http://terminology.hl7.org/CodeSystem/v2-0136", "code": "N"}}]
            if kind == "choice"
            else [numbers[kind]]
        )
    doc = json.loads(text)
    patient = doc["context"]["patientId"]
    qr = {
        "resourceType": "QuestionnaireResponse",
        "id": "answers-1",
        "questionnaire": f"{full['url']}|{full['version']}",
        "status": "completed",
        "subject": {"reference": f"Patient/{patient}"},
        "item": answers,
    }
    doc["prefetch"]["responses"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": qr}],
    }
    response = post(server, expected["service"], json.dumps(doc))
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    assert not card["summary"].startswith("More information needed"), card["summary"]
    assert "**To settle this, ask**" not in card["detail"]
    qr["questionnaire"] = "http://example.org/Questionnaire/phq-9"
    refused = post(server, expected["service"], json.dumps(doc))
    assert refused.status_code == 400 and "answers questionnaire" in refused.text


def test_an_imaging_indicated_order_lists_the_questions_that_could_raise_the_urgency_or_change_the_study(
    server, assessor, kb
):
    """Imaging indicated (known cancer, prompt) with the cauda equina signs not asked: the
    order matches and is rated as without questions, and the detail says that the urgency
    could rise and the study could change, with what to ask for each. The criteria that could
    raise the urgency are named with their urgencies, each more urgent than the recommended
    one (by the ontology's ranks), suspected cauda equina syndrome among them."""
    name = "15-urgency-could-rise-known-cancer"
    result = _result(assessor, name)
    raise_urgency, change_procedure = _asked(result, "raise-urgency"), _asked(result, "change-procedure")
    assert raise_urgency and change_procedure
    text, expected = example(name)
    body = post(server, expected["service"], text).json()
    assert response_problems(body) == []
    card = body["cards"][0]
    assert card["indicator"] == "info" and card["summary"].endswith("this order matches")
    assert [
        a["resource"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
        for a in body["systemActions"]
    ] == ["appropriate"]
    lines = card["detail"].splitlines()
    urgency = next(line for line in lines if line.startswith("- **Could raise the urgency**"))
    study = next(line for line in lines if line.startswith("- **Could change the procedure**"))
    assert urgency.endswith(f"ask about: {'; '.join(raise_urgency)}.")
    assert study.endswith(f"ask about: {'; '.join(change_procedure)}.")
    raising = {c["iri"]: c for q in result.questions for c in q["criteria"] if c["effect"] == "raise-urgency"}
    assert str(LBP.SuspectedCaudaEquinaSyndrome) in raising
    named = "; ".join(f"*{md(c['label'])}* ({md(c['urgency']['label'])})" for c in raising.values())
    verb = "is" if len(raising) == 1 else "are"
    assert urgency.startswith(f"- **Could raise the urgency**: {named} {verb} undetermined; ")

    def rank(entry: dict) -> int:
        return kb.ontology.value(URIRef(entry["urgency"]["iri"]), LBP.urgencyRank).toPython()

    assert all(rank(c) > rank(result.recommendation) for c in raising.values())


def test_a_determined_order_has_no_questions_section_and_names_the_red_flags_present(server):
    """No imaging, and a red flag without a criterion: nothing unknown could change the
    decision, so there is nothing to ask; the unassessed red flags are not listed."""
    for name, present in [
        ("02-no-indication-screened-negative", "none recorded"),
        ("08-red-flag-without-criterion", "unexplained weight loss"),
    ]:
        text, expected = example(name)
        detail = post(server, expected["service"], text).json()["cards"][0]["detail"]
        assert "To settle this, ask" not in detail and "not assessed" not in detail
        assert f"**Red flags present**: {present}" in detail


# -- issue 12: source caveats, unapplied criteria, suggestions that are not imaging ----------
def _urgency_rank(kb, entry: dict) -> int:
    return kb.ontology.value(URIRef(entry["urgency"]["iri"]), LBP.urgencyRank).toPython()


def test_the_source_caveats_have_a_section_of_their_own_and_leave_the_notes_to_the_case(assessor, kb):
    """The statements the ontology shows with every recommendation (lbp:shownWith on
    lbp:Recommendation) are quoted with their links in a section of their own, and are not
    among the notes: the MAX_NOTES places go to the warnings about the case."""
    shown = [str(s) for s in kb.ontology.objects(LBP.Recommendation, LBP.shownWith)]
    assert shown
    writer = DetailWriter(assessor.vocab)
    result = _result(assessor, "14-more-information-cauda-equina-unknown")
    detail = writer.write("headline", result, [])
    section = detail[detail.index("**Source caveats**") : detail.index("**Notes**")]
    assert all(f"]({iri})" in section for iri in shown)
    own = [w for w in result.warnings if w not in assessor.vocab.source_caveats]
    assert own and len(own) < len(result.warnings)
    extra = [f"note {i}" for i in range(MAX_NOTES)]
    result.warnings += extra
    lines = writer.notes(result).splitlines()
    assert lines[2:] == [f"- {md(w)}" for w in (own + extra)[:MAX_NOTES]] + [f"- … and {len(own)} more"]


def test_a_case_outside_the_scope_gets_no_recommendation_with_the_indicator_of_the_criteria_it_meets(
    server, assessor, kb
):
    """A 16-year-old with saddle anaesthesia (example 18): out of scope, so the criterion met
    is not applied and the order gets no recommendation, rated as the ontology says; the card
    still carries the indicator of the most urgent criterion met (an emergent criterion must
    not hide behind a warning), and the detail says it was not applied."""
    name = "18-out-of-scope-under-18-cauda-equina-signs"
    result = _result(assessor, name)
    assert result.outcome["iri"] == str(LBP.OutcomeOutOfScope) and not result.recommendation["procedure"]
    unapplied = [c for c in result.criteria if c["kind"] == "criterion" and not c["selected"]]
    top = max(unapplied, key=lambda c: _urgency_rank(kb, c))["urgency"]["iri"]
    indicator = str(kb.ontology.value(URIRef(top), LBP.cdsHooksIndicator))
    assert indicator == "critical"
    text, expected = example(name)
    body = post(server, expected["service"], text).json()
    assert response_problems(body) == []
    card = body["cards"][0]
    assert card["indicator"] == indicator and "suggestions" not in card
    assert card["summary"].startswith("No recommendation for ") and result.outcome["label"] in card["summary"]
    assert all(f"**{md(c['label'])}** (criterion, not applied)" in card["detail"] for c in unapplied)
    rating = str(kb.ontology.value(LBP.OutcomeOutOfScope, LBP.pamaRatingForOtherOrder))
    assert [
        a["resource"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
        for a in body["systemActions"]
    ] == [rating]


def test_a_suggested_order_that_is_not_imaging_carries_no_pama_rating(server, kb):
    """PAMA rates advanced imaging: the specialist referral example 16 suggests instead of the
    draft MRI is no lbp:ImagingProcedure, so the order it creates has no PAMA extension (and no
    code but its label), while the draft MRI is rated."""
    text, expected = example("16-specialist-referral-axial-spondyloarthritis")
    body = post(server, expected["service"], text).json()
    assert response_problems(body) == []
    created = body["cards"][0]["suggestions"][0]["actions"][1]["resource"]
    (referral,) = kb.ontology.subjects(RDFS.label, Literal(created["code"]["text"], lang="en"))
    imaging = set(kb.ontology.transitive_subjects(RDFS.subClassOf, LBP.ImagingProcedure))
    assert not any(t in imaging for t in kb.ontology.objects(referral, RDF.type))
    assert "extension" not in created and "coding" not in created["code"]
    assert PAMA_RATING in json.dumps(body["systemActions"])
