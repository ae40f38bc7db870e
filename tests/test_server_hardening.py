"""The server's hardening against a hostile page and for its supervisors, against a real
``lbp-imaging serve`` process (one for the module, its store on disk, one case stored):

* every HTML answer carries the pages' security headers, every answer ``nosniff``;
* in headless Chromium the pages work under their policy, which refuses an injected
  inline script;
* ``/docs`` renders every operation of the OpenAPI document with every other host
  blocked, and its "Try it out" reaches the server;
* ``GET /health`` reports the versions, the store and the workers, and answers while the
  query process is busy.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from sparql_server import EXAMPLES, Server, running

from reasoner import DISCLAIMER

CASE_FILE = EXAMPLES / "05-known-cancer.ttl"
HTML_HEADERS = ("content-security-policy", "x-frame-options", "referrer-policy")
POLICY_DIRECTIVES = (
    "default-src 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
    "base-uri 'none'",
)
SLOW_QUERY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
"""A count over a cross product of the whole store: no solution until it is all computed."""


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    store = tmp_path_factory.mktemp("store")
    args = ["--store", str(store), "--cases", str(CASE_FILE), "--query-processes", "1"]
    with running(args, tmp_path_factory.mktemp("logs")) as server:
        yield server


@pytest.fixture(scope="module")
def stored_case(server) -> str:
    """The IRI of the one stored case."""
    query = (
        "PREFIX lbp: <https://w3id.org/lbp-imaging/> "
        "SELECT ?case WHERE { GRAPH ?case { ?r lbp:forCase ?case } }"
    )
    rows = httpx.post(server.endpoint, data={"query": query}, timeout=30).json()["results"]["bindings"]
    assert len(rows) == 1
    return rows[0]["case"]["value"]


def _policy(value: str) -> dict[str, str]:
    """A policy's directives and their values."""
    return {
        name: rest.strip() for name, _, rest in (part.strip().partition(" ") for part in value.split(";"))
    }


# -- headers --------------------------------------------------------------------------------
def test_every_kind_of_html_page_carries_the_security_headers(server, stored_case):
    term = httpx.get(server.url + "/lbp-imaging/Fever", headers={"Accept": "text/html"}).headers["location"]
    pages = {
        "landing": "/",
        "criteria": "/criteria",
        "criterion": "/criteria/SuspectedCaudaEquinaSyndrome",
        "case form": "/case",
        "assessed example": f"/case?example={quote(CASE_FILE.name)}",
        "query page": "/query",
        "term page": term,
        "not found": "/criteria/NoSuchCriterion",
        "API page": "/docs",
    }
    for kind, path in pages.items():
        response = httpx.get(server.url + path, timeout=30)
        assert response.headers["content-type"].startswith("text/html"), kind
        assert all(h in response.headers for h in HTML_HEADERS), (kind, response.headers)
        policy = response.headers["content-security-policy"]
        assert all(d in policy for d in POLICY_DIRECTIVES), (kind, policy)
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, (kind, policy)
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-content-type-options"] == "nosniff", kind
    posted = httpx.post(server.url + "/case", data={"text": "<x> a <y> .", "format": "turtle"}, timeout=30)
    assert posted.status_code == 200 and "content-security-policy" in posted.headers


def test_every_answer_says_nosniff_and_other_answers_run_nothing_in_a_browser(server, stored_case):
    answers = [
        httpx.get(server.endpoint),  # the service description, Turtle
        httpx.post(server.endpoint, data={"query": "ASK {}"}),
        httpx.get(server.url + "/cases/" + quote(stored_case, safe="")),
        httpx.get(server.url + "/lbp-imaging/Fever.rdf"),  # RDF/XML: a browser renders XML
        httpx.get(server.url + "/openapi.json"),
        httpx.get(server.url + "/health"),
        httpx.get(server.url + "/static/style.css"),
        httpx.get(server.url + "/static/swagger/swagger-ui-bundle.js"),
        httpx.get(server.url + "/no/such/path"),
        httpx.post(server.endpoint, data={"query": "SELECT * WHERE { ?s ?p }"}),  # 400, text/plain
    ]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", (answer.url, answer.status_code)
        policy = _policy(answer.headers["content-security-policy"])
        assert policy == {"default-src": "'none'", "frame-ancestors": "'none'", "sandbox": ""}, answer.url
    assert {a.status_code for a in answers} == {200, 404, 400}


def test_the_page_assets_are_files_of_the_right_type(server):
    expected = {
        "/static/style.css": "text/css",
        "/static/term.css": "text/css",
        "/static/query.js": "text/javascript",
        "/static/swagger/swagger-ui.css": "text/css",
        "/static/swagger/swagger-ui-bundle.js": "text/javascript",
    }
    for path, media in expected.items():
        response = httpx.get(server.url + path)
        assert response.status_code == 200 and response.headers["content-type"].startswith(media), path
    assert httpx.get(server.url + "/static/base.html").status_code == 404  # templates are not served


# -- in the browser -------------------------------------------------------------------------
@pytest.fixture
def offline_page(browser, server) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A browser page on the server whose requests to any other host are aborted, with
    what it tried to reach elsewhere and its script and console errors; each document
    keeps its policy violations in ``window.violations``."""
    context = browser.new_context(base_url=server.url)
    seen: dict[str, list[str]] = {"elsewhere": [], "errors": []}

    def route(request_route) -> None:
        if urlsplit(request_route.request.url).hostname == "127.0.0.1":
            request_route.continue_()
        else:
            seen["elsewhere"].append(request_route.request.url)
            request_route.abort()

    context.route("**/*", route)
    context.add_init_script(VIOLATIONS)
    page = context.new_page()
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
    yield page, seen["elsewhere"], seen["errors"]
    context.close()


VIOLATIONS = """window.violations = [];
document.addEventListener("securitypolicyviolation", e => window.violations.push(e.effectiveDirective));"""
INJECT = """() => {
  const script = document.createElement("script");
  script.textContent = "window.injected = true";
  document.body.appendChild(script);
  return window.injected === true;
}"""


def test_pages_work_under_their_policy_which_refuses_an_injected_script(offline_page):
    page, elsewhere, errors = offline_page
    page.goto("/")
    # The stylesheet is a file the policy allows: the header has its background.
    background = page.eval_on_selector("header.site", "h => getComputedStyle(h).backgroundColor")
    assert background == "rgb(243, 245, 248)"
    assert page.evaluate("window.violations") == []
    assert page.evaluate(INJECT) is False
    page.wait_for_function("() => window.violations.includes('script-src-elem')")
    assert errors and all("Content Security Policy" in e for e in errors)  # the refusal, reported
    errors.clear()
    page.goto("/lbp-imaging/Fever.html")
    assert page.eval_on_selector("dt", "dt => getComputedStyle(dt).fontWeight") == "600"  # term.css
    assert page.evaluate("window.violations") == []
    page.goto("/query?name=no-imaging")
    page.click("#run")
    page.wait_for_selector("#result-table")  # query.js ran, and its fetch to /sparql was allowed
    assert page.evaluate("window.violations") == []
    assert elsewhere == [] and errors == []


def test_api_page_renders_every_operation_offline(offline_page, server):
    page, elsewhere, errors = offline_page
    spec = httpx.get(server.url + "/openapi.json").json()
    operations = {
        op["operationId"]
        for path in spec["paths"].values()
        for method, op in path.items()
        if method in ("get", "post", "put", "delete", "patch")
    }
    page.goto("/docs")
    page.wait_for_selector(".opblock")
    # Swagger UI shows an operation under each of its tags: "operations-{tag}-{operationId}".
    shown = page.eval_on_selector_all(".opblock[id^='operations-']", "ops => ops.map(o => o.id)")
    assert {op for op in operations if any(i.endswith("-" + op) for i in shown)} == operations
    assert all(any(i.endswith("-" + op) for op in operations) for i in shown)
    # "Try it out" on /health: the page's fetch to this server is allowed.
    health = page.locator(".opblock[id$='-health_health_get']")
    health.locator(".opblock-summary").click()
    health.locator("button.try-out__btn").click()
    health.locator("button.execute").click()
    status = health.locator(".live-responses-table .response .response-col_status")
    status.wait_for()
    assert status.inner_text().strip() == "200"
    assert page.evaluate("window.violations") == []
    assert elsewhere == [] and errors == []


# -- /health --------------------------------------------------------------------------------
def test_health_reports_versions_store_and_workers(server, kb, stored_case):
    response = httpx.get(server.url + "/health")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    health = response.json()
    assert health["status"] == "ok" and health["service"] == "lbp-imaging"
    assert health["knowledgeBase"]["ontology"] == kb.identity["ontology"]
    assert health["knowledgeBase"]["versionIRI"] == kb.identity["versionIRI"]
    assert health["knowledgeBase"]["versionInfo"]
    graphs = "SELECT (COUNT(DISTINCT ?g) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"
    answer = httpx.post(server.endpoint, data={"query": graphs}, timeout=30).json()
    counted = int(answer["results"]["bindings"][0]["n"]["value"])
    store = health["store"]
    assert store["storage"] == "disk" and store["bytesOnDisk"] > 0
    assert store["namedGraphs"] == {"count": counted, "complete": True}
    assert 0 < store["knowledgeBaseGraphs"] < counted  # the case's graph is not one of them
    processes = health["workers"]["queryProcesses"]
    assert processes["configured"] == 1 and processes["idle"] + processes["busy"] + processes["starting"] == 1
    assert health["workers"]["caseWorkers"] >= 1
    assert health["process"]["uptimeSeconds"] > 0 and health["process"]["peakMemoryBytes"] > 0
    assert health["disclaimer"] == DISCLAIMER
    assert stored_case not in response.text  # no patient data


def _send(server: Server, request: bytes) -> socket.socket:
    """Send a raw HTTP request; the socket, to read the answer from (or close unread)."""
    host, port = urlsplit(server.url).netloc.split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(request)
    return sock


def _post_query(server: Server, query: str) -> socket.socket:
    body = f"query={quote(query)}".encode()
    head = (
        "POST /sparql HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return _send(server, head.encode() + body)


def _answered(sock: socket.socket) -> bool:
    """Whether the server has begun answering on ``sock`` (without waiting)."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return False
    finally:
        sock.setblocking(True)


def test_health_answers_while_the_query_process_is_busy(server):
    """The one query process is held by a slow query and a second one waits for it (each
    until the deadline): ``/health``, asked after them, is answered while both are still
    unanswered."""
    queries = [_post_query(server, SLOW_QUERY) for _ in range(2)]
    try:
        answers = [httpx.get(server.url + "/health", timeout=30) for _ in range(3)]
        pending = [not _answered(q) for q in queries]
    finally:
        for query in queries:
            query.close()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert pending == [True, True], "a query was answered before /health: the query process was free"
