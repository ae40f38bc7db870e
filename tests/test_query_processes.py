"""SPARQL queries run in processes the server can kill: against real servers, a query past
its deadline is stopped and its process replaced, one past its memory limit or one that
crashes the engine fails alone, the template process is restarted when it dies, every
acknowledged write is in the next answer (a differential test against a local store),
case reads, pages and CDS Hooks never wait behind a query, and request bodies are capped
on every endpoint. ``lbp-imaging query`` gets the same protection."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx
import pyoxigraph as ox
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sparql_server import EXAMPLES, TOKEN, running

ROOT = Path(__file__).resolve().parent.parent
ENDLESS = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
"""Counts the cube of the store's size (over 10^12 here): never done within a test."""
BLOW_UP = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f } ORDER BY ?c ?f"
"""Sorts the square of the store's size: it must hold every row before the first answer."""
DEEP = "SELECT * WHERE " + "{" * 20_000 + "}" * 20_000
CASE = "https://example.org/case/01-cauda-equina-urinary-saddle"


def _children(pid: int) -> dict[int, int]:
    """pid -> parent pid for every process whose ancestor is ``pid`` (Linux ``/proc``)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = {}, {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier and p not in found}
        found.update({p: parents[p] for p in frontier})
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _query_processes(server) -> tuple[int | None, set[int]]:
    """The server's template process and the query processes it forked."""
    tree = _children(server.process.pid)
    template = next(
        (p for p, parent in tree.items() if parent == server.process.pid and "query_process" in _cmdline(p)),
        None,
    )
    return template, {p for p, parent in tree.items() if parent == template}


def _until(condition, what: str, tries: int = 200):
    """Poll ``condition`` (a state, not a time) until it holds; fail saying ``what``."""
    for _ in range(tries):
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def _query(server, text: str, **headers: str) -> httpx.Response:
    return httpx.post(server.endpoint, data={"query": text}, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """One query process, a 2 s deadline, 64 MiB per query, engine crashes allowed through
    the depth check, bodies of at most 64 KiB, updates with the token, the example cases."""
    args = [
        *("--query-processes", "1", "--timeout", "2", "--max-query-memory-mb", "64"),
        *("--max-query-depth", "100000", "--max-body-mb", str(64 / 1024)),
        *("--allow-update", "--token", TOKEN, "--cases", str(EXAMPLES)),
    ]
    with running(args, tmp_path_factory.mktemp("logs")) as server:
        yield server


def test_a_query_past_its_deadline_is_stopped_and_its_process_replaced(small_server):
    _, before = _until(lambda: (p := _query_processes(small_server))[1] and p, "a query process started")
    response = _query(small_server, ENDLESS)
    assert response.status_code == 503 and "did not finish" in response.text
    # Killed, not left computing: the process that ran it is gone and another took its place.
    _until(lambda: (now := _query_processes(small_server)[1]) and not (now & before), "the process replaced")
    assert _query(small_server, "ASK {}").status_code == 200
    health = httpx.get(small_server.url + "/health", timeout=30).json()
    assert health["workers"]["queryProcesses"]["replaced"]["deadline"] >= 1


def test_a_query_past_its_memory_limit_fails_alone(small_server):
    response = _query(small_server, BLOW_UP)
    assert response.status_code == 503, response.text
    assert "more memory" in response.text and "64 MiB" in response.text
    assert _query(small_server, "ASK {}").status_code == 200


def test_a_query_that_crashes_the_engine_fails_alone_and_is_logged(small_server):
    response = httpx.post(
        small_server.endpoint,
        content=DEEP.encode(),
        headers={"content-type": "application/sparql-query"},
        timeout=60,
    )
    assert response.status_code == 503, response.text
    assert "stopped (SIGSEGV)" in response.text
    _until(lambda: "ended (SIGSEGV)" in small_server.log.read_text(), "the crash logged")
    assert _query(small_server, "ASK {}").status_code == 200


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory):
    """One query process and a deadline far away: a query can be kept running."""
    args = ["--query-processes", "1", "--timeout", "120", "--cases", str(EXAMPLES)]
    with running(args, tmp_path_factory.mktemp("logs")) as server:
        yield server


def test_case_reads_pages_and_cds_hooks_do_not_wait_behind_a_query(busy_server):
    """With the one query process computing, everything else is answered, and the query is
    still computing afterwards (a state, not a time: nothing waited for it)."""
    request = json.loads(next((ROOT / "examples" / "cds-hooks").glob("*.request.json")).read_text())
    services = httpx.get(busy_server.url + "/cds-services", timeout=30).json()["services"]
    service = next(s["id"] for s in services if s["hook"] == request["hook"])
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: httpx.post(busy_server.endpoint, data={"query": ENDLESS}, timeout=1))
        running_query = _until(
            lambda: next((p for p in _query_processes(busy_server)[1] if _busy(p)), None), "the query running"
        )
        answers = [
            httpx.get(busy_server.url + "/cases/" + quote(CASE, safe=""), timeout=60),
            httpx.get(
                busy_server.url + "/case", params={"example": CASE.rsplit("/", 1)[1] + ".ttl"}, timeout=60
            ),
            httpx.get(busy_server.url + "/criteria", timeout=60),
            httpx.post(busy_server.url + f"/cds-services/{service}", json=request, timeout=60),
        ]
        assert [a.status_code for a in answers] == [200] * 4, [a.text[:200] for a in answers]
        assert _busy(running_query), "the query is no longer computing: the answers may have waited for it"
        # Killed together, server and template leave no query computing on its own.
        template, _ = _query_processes(busy_server)
        os.kill(busy_server.process.pid, signal.SIGKILL)
        os.kill(template, signal.SIGKILL)
        busy_server.process.wait()
        _until(lambda: not _cmdline(running_query), "the orphaned query ended")


def _busy(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "R"
    except OSError:
        return False


def test_a_dead_template_is_restarted_and_queries_go_on(small_server):
    template, _ = _query_processes(small_server)
    os.kill(template, signal.SIGKILL)
    _until(
        lambda: (now := _query_processes(small_server))[0] not in (None, template) and now[1],
        "a new template",
    )
    assert _query(small_server, "ASK { ?s ?p ?o }").json()["boolean"] is True
    assert "template process ended" in small_server.log.read_text()


def test_an_idle_query_process_that_dies_is_replaced_and_logged(small_server):
    _, processes = _until(lambda: (p := _query_processes(small_server))[1] and p, "a query process")
    victim = next(iter(processes))
    os.kill(victim, signal.SIGKILL)
    _until(
        lambda: f"query process {victim} ended (SIGKILL) while idle" in small_server.log.read_text(), "logged"
    )
    _until(lambda: _query_processes(small_server)[1] - {victim}, "a replacement")
    assert _query(small_server, "ASK {}").status_code == 200


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("/sparql", "application/sparql-query"),
        ("/cases", "text/turtle"),
        ("/api/open-criteria", "application/x-www-form-urlencoded"),
        ("/cds-services/x", "application/json"),
    ],
)
@pytest.mark.parametrize("chunked", [False, True])
def test_bodies_over_the_cap_are_refused_on_every_endpoint(small_server, path, content_type, chunked):
    body = b"#" * (65 * 1024)
    content = iter([body[:40000], body[40000:]]) if chunked else body
    response = httpx.post(small_server.url + path, content=content, headers={"content-type": content_type})
    assert response.status_code == 413, response.text
    assert "larger than this server accepts" in response.text
    assert _query(small_server, "ASK {}").status_code == 200


# -- every acknowledged write is in the next answer ----------------------------------------
GRAPH = "urn:test:replica"
_term = st.sampled_from(["urn:a", "urn:b", "urn:c"]).map(lambda v: f"<{v}>")
_value = st.one_of(_term, st.integers(0, 3).map(str))
_triple = st.tuples(_term, _term, _value).map(" ".join)
NOW_UPDATE = (
    f"INSERT {{ GRAPH <{GRAPH}> {{ <urn:t> <urn:now> ?n }} }} WHERE {{ BIND(YEAR(NOW()) > 2000 AS ?n) }}"
)
COPY_UPDATE = f"INSERT {{ GRAPH <{GRAPH}> {{ ?s <urn:a> ?o }} }} WHERE {{ GRAPH <{GRAPH}> {{ ?s ?q ?o }} }}"
_update = st.one_of(
    _triple.map(lambda t: f"INSERT DATA {{ GRAPH <{GRAPH}> {{ {t} }} }}"),
    _triple.map(lambda t: f"DELETE DATA {{ GRAPH <{GRAPH}> {{ {t} }} }}"),
    _term.map(lambda s: f"DELETE WHERE {{ GRAPH <{GRAPH}> {{ {s} ?p ?o }} }}"),
    _term.map(
        lambda p: f"INSERT {{ GRAPH <{GRAPH}> {{ ?s {p} ?o }} }} WHERE {{ GRAPH <{GRAPH}> {{ ?s ?q ?o }} }}"
    ),
    # NOW() makes the replicas be rebuilt from a dump; the value written is the same anywhere.
    st.just(NOW_UPDATE),
)
SNAPSHOT = f"SELECT ?s ?p ?o WHERE {{ GRAPH <{GRAPH}> {{ ?s ?p ?o }} }}"


def _rows(body: bytes) -> list[tuple]:
    parsed = ox.parse_query_results(body, format=ox.QueryResultsFormat.JSON)
    return sorted(tuple(str(s[v]) for v in ("s", "p", "o")) for s in parsed)


@settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(_update, min_size=1, max_size=6))
@example([NOW_UPDATE, COPY_UPDATE])  # a rebuild, then a replayed update on the rebuilt replicas
def test_every_acknowledged_write_is_in_the_next_answer(small_server, updates):
    """The server's answers equal a local store's after the same updates, after each one:
    the replicas of the query processes follow every write (replayed, or rebuilt after
    NOW())."""
    local = ox.Store()
    clear = f"DROP SILENT GRAPH <{GRAPH}>"
    for update in [clear, *updates]:
        local.update(update)
        response = httpx.post(
            small_server.endpoint,
            data={"update": update},
            headers={"authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        assert response.status_code == 204, response.text
        answer = _query(small_server, SNAPSHOT)
        assert answer.status_code == 200, answer.text
        expected = local.query(SNAPSHOT)
        assert _rows(answer.content) == sorted(tuple(str(s[v]) for v in ("s", "p", "o")) for s in expected)


# -- the command line ----------------------------------------------------------------------
def test_the_query_command_survives_a_query_that_crashes_or_runs_too_long(cli, tmp_path):
    deep = tmp_path / "deep.rq"
    deep.write_text(DEEP)
    endless = tmp_path / "endless.rq"
    endless.write_text(ENDLESS)
    crashed = cli("query", deep, "--max-query-depth", "100000")
    assert crashed.returncode == 2 and "Traceback" not in crashed.stderr
    assert "stopped the process evaluating it (SIGSEGV)" in crashed.stderr
    stopped = cli("query", endless, "--timeout", "1")
    assert stopped.returncode == 2 and "Traceback" not in stopped.stderr, stopped.stderr
    assert "did not finish within --timeout 1 s" in stopped.stderr
