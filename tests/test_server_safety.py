"""The endpoint's safety limits, against real server processes: read-only by default,
updates only with the bearer token, no SERVICE or LOAD, the query timeout and row cap,
slow queries beside fast ones, and CORS only for the configured origins (the query
processes themselves: ``test_query_processes``)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pyoxigraph as ox
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sparql_server import TOKEN, running

from reasoner.server.sparql.query import Limits, QueryTimeout, TooManyRows, run_query
from reasoner.server.sparql.text import might_have, scan, with_row_cap, with_using
from reasoner.server.store_log import NOT_REPLAYABLE

ORIGIN = "https://app.example"


def slow_query(n: int) -> str:
    """Count n³ solutions: n = 300 takes about 1.7 s on the project's 2-core machine, all of
    it before the first (only) solution, so the row-by-row deadline check cannot stop it."""
    values = " ".join(str(i) for i in range(n))
    return "SELECT (COUNT(*) AS ?n) { " + " ".join(f"VALUES ?{v} {{ {values} }}" for v in "abc") + " }"


@pytest.fixture(scope="module")
def limits_server(tmp_path_factory):
    """Read-only, a 0.5 s timeout, 5 rows at most, CORS for one origin."""
    args = ["--timeout", "0.5", "--max-rows", "5", "--cors-origin", ORIGIN]
    with running(args, tmp_path_factory.mktemp("logs")) as server:
        yield server


@pytest.fixture(scope="module")
def update_server(tmp_path_factory):
    """Updates allowed with the token (given on the command line); default limits."""
    with running(["--allow-update", "--token", TOKEN], tmp_path_factory.mktemp("logs")) as server:
        yield server


def _query(server, query: str, **headers: str) -> httpx.Response:
    return httpx.post(server.endpoint, data={"query": query}, headers=headers, timeout=30)


def _update(server, update: str, token: str | None = TOKEN) -> httpx.Response:
    headers = {"content-type": "application/sparql-update"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.post(server.endpoint, content=update.encode(), headers=headers, timeout=30)


# -- updates: read-only by default, then the bearer token ---------------------------------
@pytest.mark.parametrize("how", ["direct", "form"])
def test_a_read_only_server_refuses_every_update_with_403(limits_server, how):
    update = "INSERT DATA { <urn:s> <urn:p> <urn:o> }"
    headers = {"authorization": f"Bearer {TOKEN}"}
    if how == "direct":
        headers["content-type"] = "application/sparql-update"
        response = httpx.post(limits_server.endpoint, content=update.encode(), headers=headers)
    else:
        response = httpx.post(limits_server.endpoint, data={"update": update}, headers=headers)
    assert response.status_code == 403
    assert "read-only" in response.text
    assert _query(limits_server, "ASK { <urn:s> ?p ?o }").json()["boolean"] is False


def test_an_update_without_a_token_gets_401_with_a_bearer_challenge(update_server):
    response = _update(update_server, "INSERT DATA { <urn:s> <urn:p> <urn:no-token> }", token=None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    basic = httpx.post(
        update_server.endpoint,
        data={"update": "CLEAR ALL"},
        headers={"authorization": "Basic dXNlcjpwYXNz"},
    )
    assert basic.status_code == 401


def test_an_update_with_a_wrong_token_gets_401_invalid_token(update_server):
    response = _update(update_server, "INSERT DATA { <urn:s> <urn:p> <urn:wrong-token> }", token="guess")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert _query(update_server, "ASK { <urn:s> ?p <urn:wrong-token> }").json()["boolean"] is False


def test_an_update_with_the_token_is_applied(update_server):
    response = _update(update_server, "INSERT DATA { GRAPH <urn:g> { <urn:s> <urn:p> <urn:with-token> } }")
    assert response.status_code == 204, response.text
    assert _query(update_server, "ASK { <urn:s> <urn:p> <urn:with-token> }").json()["boolean"] is True


def test_updates_are_in_the_service_description_only_when_allowed(update_server, limits_server):
    update = "http://www.w3.org/ns/sparql-service-description#SPARQL11Update"
    assert update in httpx.get(update_server.endpoint, headers={"accept": "application/n-triples"}).text
    assert update not in httpx.get(limits_server.endpoint, headers={"accept": "application/n-triples"}).text


def test_updates_cannot_be_allowed_without_a_token(cli):
    result = cli("serve", "--allow-update", "--token", "", "--port", "9")  # --token overrides the env
    assert result.returncode == 2
    assert "bearer token" in result.stderr


# -- SERVICE and LOAD ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "query",
    [
        "SELECT * { SERVICE <http://127.0.0.1:1/sparql> { ?s ?p ?o } }",
        "select * { service silent <http://example.org/sparql> { ?s ?p ?o } }",
        "SELECT * { ?s ?p ?o OPTIONAL { SERVICE ?endpoint { ?s ?q ?r } } } LIMIT 1",
    ],
)
def test_service_is_refused_with_400(limits_server, query):
    response = _query(limits_server, query)
    assert response.status_code == 400
    assert "SERVICE" in response.text and response.headers["content-type"].startswith("text/plain")


def test_the_word_service_in_a_string_or_a_comment_is_not_a_service_call(limits_server):
    response = _query(limits_server, 'ASK { # SERVICE <http://example.org/>\n FILTER("SERVICE" != "x") }')
    assert response.status_code == 200, response.text


def test_load_is_refused_even_with_the_token(update_server):
    for update in (
        "LOAD <http://127.0.0.1:1/data.ttl>",
        "LOAD SILENT <file:///etc/passwd> INTO GRAPH <urn:g>",
    ):
        response = _update(update_server, update)
        assert response.status_code == 400
        assert "LOAD is not allowed" in response.text


def test_service_inside_an_update_is_refused(update_server):
    response = _update(
        update_server, "INSERT { ?s ?p ?o } WHERE { SERVICE <http://127.0.0.1:1/sparql> { ?s ?p ?o } }"
    )
    assert response.status_code == 400
    assert "SERVICE" in response.text


def test_the_scanner_sees_keywords_only_outside_strings_iris_and_comments():
    found = scan('SELECT * FROM <http://x/SERVICE> { ?service ?p "LOAD" # WITH\n } ')
    assert found.has("FROM") and not found.has("SERVICE", "LOAD", "WITH")
    assert scan("SELECT * { \\u0053ERVICE <http://x/> { ?s ?p ?o } }").has("SERVICE")
    assert scan("select * { ex:SERVICE ?p ?o }").keywords.isdisjoint({"SERVICE"})


# -- nesting: refused before the parser, whose stack it would overflow ------------------
NESTED = {
    "braces": lambda n: "SELECT * WHERE " + "{" * n + "}" * n,
    "parentheses": lambda n: "SELECT * WHERE { FILTER(" + "(" * n + "1" + ")" * n + ") }",
    "sub-selects": lambda n: "SELECT * WHERE { " + "{ SELECT * WHERE " * n + "{}" + " }" * n + " }",
    "escaped braces": lambda n: "SELECT * WHERE " + "\\u007B" * n + "}" * n,
    "brackets": lambda n: "SELECT * WHERE { ?s ?p " + "[ ?q " * n + "1" + " ]" * n + " }",
}


@given(depth=st.integers(min_value=0, max_value=400), noise=st.text(alphabet="{}()[] ?x", max_size=20))
@settings(max_examples=100, deadline=None)
def test_the_scanner_counts_the_deepest_nesting_outside_strings_iris_and_comments(depth, noise):
    text = "(" * depth + f' "{noise}" <urn:{len(noise)}> # {noise}\n' + ")" * depth
    assert scan(text).depth == depth


@pytest.mark.parametrize("kind", sorted(NESTED))
def test_a_query_nested_too_deep_is_refused_and_the_server_stays_up(limits_server, kind):
    deep = _query(limits_server, NESTED[kind](5000))
    assert deep.status_code == 400
    assert "levels deep" in deep.text and "at most 100" in deep.text
    fine = _query(limits_server, "ASK { }")
    assert fine.status_code == 200 and fine.json()["boolean"] is True
    assert _query(limits_server, NESTED[kind](50)).status_code in (200, 400)  # parsed, not refused
    assert "levels deep" not in _query(limits_server, NESTED[kind](50)).text


def test_the_query_command_refuses_a_query_nested_too_deep(cli, tmp_path):
    query = tmp_path / "deep.rq"
    query.write_text(NESTED["sub-selects"](3000), encoding="utf-8")
    done = cli("query", query)
    assert done.returncode == 2 and "levels deep" in done.stderr and "at most 100" in done.stderr
    assert "Traceback" not in done.stderr


@settings(max_examples=300, derandomize=True)
@given(st.text(alphabet="nowrandNOWuidstRUDlL (){}<>:\\\"'#?.-u0123456789ABCDEF\n", max_size=40))
def test_the_quick_keyword_test_never_misses_what_the_scanner_finds(text):
    """The stored-case write path skips the full scan when ``might_have`` says no: it may
    say yes wrongly (then the scan decides), never no wrongly."""
    if scan(text).has(*NOT_REPLAYABLE):
        assert might_have(text, NOT_REPLAYABLE)
    assert not might_have('INSERT DATA { <urn:a> <urn:now> "later" }', NOT_REPLAYABLE)


def test_using_clauses_go_before_each_operations_where_but_not_into_delete_where():
    update = (
        "INSERT { <urn:a> <urn:b> ?o } WHERE { ?s ?p ?o } ;\n"
        "DELETE WHERE { ?s <urn:x> ?o } ;\n"
        'DELETE { ?s ?p "WHERE" } WHERE { ?s ?p ?o }'
    )
    out = with_using(update, ["urn:d"], ["urn:n"])
    assert out.count("USING <urn:d> USING NAMED <urn:n> WHERE") == 2
    assert "DELETE WHERE" in out and '"WHERE"' in out


# -- timeout and row cap ------------------------------------------------------------------
def test_a_query_past_the_timeout_is_answered_503_at_the_deadline(limits_server):
    """The 503 comes before the query could have completed: the same query, started here
    at the same moment, is still computing when the answer arrives (an order, not a time:
    a loaded machine slows both alike)."""
    with ThreadPoolExecutor(1) as pool:
        here = pool.submit(lambda: list(ox.Store().query(slow_query(300))))
        response = _query(limits_server, slow_query(300))
        assert not here.done(), (
            "the query completed before the 503: answered at completion, not at the deadline"
        )
    assert response.status_code == 503
    assert "0.5 s" in response.text and response.headers["content-type"].startswith("text/plain")
    assert _query(limits_server, "ASK {}").status_code == 200


def test_a_streaming_query_stops_at_the_first_solution_past_its_deadline(monkeypatch):
    """The deadline is checked before evaluation and before each solution taken: with a
    clock that passes the deadline after the query started, the first solution stops it."""
    store = ox.Store()
    store.update("INSERT DATA { <urn:a> <urn:b> 1, 2, 3 }")
    ticks = iter([0.0, 100.0, 100.0, 100.0])
    monkeypatch.setattr("reasoner.server.sparql.query.time.monotonic", lambda: next(ticks))
    with pytest.raises(QueryTimeout):
        run_query(store, "SELECT * { ?s ?p ?o }", None, Limits(50.0, 10))
    monkeypatch.undo()
    answer = run_query(store, "SELECT * { ?s ?p ?o }", None, Limits(time.monotonic() + 60, 3))
    assert answer.body.count(b'"type":"literal"') == 3
    with pytest.raises(TooManyRows):
        run_query(store, "CONSTRUCT WHERE { ?s ?p ?o }", "text/turtle", Limits(time.monotonic() + 60, 2))


@pytest.mark.parametrize("accept", ["application/sparql-results+json", "text/csv"])
def test_more_rows_than_the_cap_is_a_400_with_advice(limits_server, accept):
    six = _query(limits_server, "SELECT ?x { VALUES ?x { 1 2 3 4 5 6 } }", accept=accept)
    assert six.status_code == 400
    assert "limit of 5 rows" in six.text and "LIMIT" in six.text
    five = _query(limits_server, "SELECT ?x { VALUES ?x { 1 2 3 4 5 6 } } LIMIT 5", accept=accept)
    assert five.status_code == 200


def test_a_query_the_scanner_cannot_follow_is_still_capped_row_by_row(limits_server):
    """A \\u escape could hide a bracket from the scanner: no LIMIT is added, the solutions
    are counted one by one instead."""
    six = 'SELECT ?x { VALUES ?x { "\\u0031" 2 3 4 5 6 } }'
    assert with_row_cap(six, 6) is None
    assert _query(limits_server, six).status_code == 400
    five = _query(limits_server, six.replace(" 6 }", " }"))
    assert five.status_code == 200 and len(five.json()["results"]["bindings"]) == 5


@pytest.mark.parametrize(
    ("query", "capped"),
    [
        ("SELECT * { ?s ?p ?o }", "SELECT * { ?s ?p ?o }\nLIMIT 11\n"),
        ("SELECT * { ?s ?p ?o } LIMIT 500", "SELECT * { ?s ?p ?o } LIMIT 11"),
        ("SELECT * { ?s ?p ?o } LIMIT 3 OFFSET 9", "SELECT * { ?s ?p ?o } LIMIT 3 OFFSET 9"),
        (
            "SELECT * { ?s ?p ?o } VALUES ?s { <urn:a> }",
            "SELECT * { ?s ?p ?o } \nLIMIT 11\nVALUES ?s { <urn:a> }",
        ),
        (
            "PREFIX x: <urn:x#> SELECT ?s { { SELECT ?s { ?s ?p ?o } LIMIT 99 } } ORDER BY ?s # LIMIT 2",
            "PREFIX x: <urn:x#> SELECT ?s { { SELECT ?s { ?s ?p ?o } LIMIT 99 } } ORDER BY ?s # LIMIT 2"
            "\nLIMIT 11\n",
        ),
        (
            "SELECT ?s (EXISTS { ?s ?p ?o } AS ?e) { ?s ?p ?o }",
            "SELECT ?s (EXISTS { ?s ?p ?o } AS ?e) { ?s ?p ?o }\nLIMIT 11\n",
        ),
        ("ASK { ?s ?p ?o }", None),
        ("CONSTRUCT WHERE { ?s ?p ?o }", None),
        ("SELECT * { ?s ?p ?o ", None),
        ("SELECT * { ?s <urn:a\\u003E ?o }", None),
    ],
)
def test_the_row_cap_goes_into_the_top_level_of_a_select(query, capped):
    """One row more than a cap of 10: a top-level LIMIT lowered or added (before VALUES),
    never into a subquery or a comment; None where the scanner cannot be sure."""
    assert with_row_cap(query, 11) == capped
    if capped is not None:
        ox.Store().query(capped)  # still a valid query


def test_solutions_whose_values_look_like_separators_are_counted_exactly():
    """The quick count of "},{" over-counts values that contain it; near the cap the
    solutions are counted exactly, so a query within the cap is not refused."""
    store = ox.Store()
    store.update('INSERT DATA { <urn:a> <urn:p> "},{", "},{ },{", "x" }')
    answer = run_query(store, "SELECT ?o { ?s ?p ?o }", None, Limits(time.monotonic() + 60, 3))
    assert answer.body.count(b'"type":"literal"') == 3
    with pytest.raises(TooManyRows):
        run_query(store, "SELECT ?o { ?s ?p ?o }", None, Limits(time.monotonic() + 60, 2))


def test_the_row_cap_counts_triples_of_a_construct(limits_server):
    query = "CONSTRUCT { <urn:s> <urn:p> ?x } WHERE { VALUES ?x { 1 2 3 4 5 6 } }"
    assert _query(limits_server, query).status_code == 400
    assert _query(limits_server, query.replace(" 6 }", " }")).status_code == 200


def test_a_slow_query_does_not_hold_up_a_fast_one(update_server):
    """The slow query (it could not finish in hours) computes in its query process: a
    fast query sent while it runs is answered while the slow one is still unanswered (an
    order, not a time), and the slow one ends at the deadline with 503."""
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(_query, update_server, slow_query(3000))
        time.sleep(0.3)  # lets the slow query go first; the assertions do not depend on it
        fast = _query(update_server, "ASK {}")
        assert fast.status_code == 200
        assert not slow.done(), "the slow query was answered first: the fast one waited for it"
        assert slow.result().status_code == 503


# -- CORS ---------------------------------------------------------------------------------
def test_cors_headers_go_to_the_configured_origin_only(limits_server, update_server):
    allowed = httpx.get(limits_server.endpoint, params={"query": "ASK {}"}, headers={"origin": ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    other = httpx.get(
        limits_server.endpoint, params={"query": "ASK {}"}, headers={"origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers
    off = httpx.get(update_server.endpoint, params={"query": "ASK {}"}, headers={"origin": ORIGIN})
    assert "access-control-allow-origin" not in off.headers


def test_a_cors_preflight_for_a_post_is_answered(limits_server):
    response = httpx.options(
        limits_server.endpoint,
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert response.status_code == 200
    assert "POST" in response.headers["access-control-allow-methods"]
