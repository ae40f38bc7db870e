"""The answer cache (reasoner/server/sparql/answer_cache.py): answers kept until the next write,
one computation for concurrent requests, nothing computed across a write kept; and, over
HTTP, that every kind of write is seen by the next named query, ad-hoc query and case read."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sparql_server import EXAMPLES, TOKEN, running

from reasoner.server.sparql.answer_cache import AnswerCache
from reasoner.server.sparql.query import Answer

LBP = "https://w3id.org/lbp-imaging/"
NEW_CASE = "https://example.org/case/cache-test-new-case"
COUNT_CASES = f"SELECT (COUNT(?c) AS ?n) {{ GRAPH ?c {{ ?r <{LBP}forCase> ?c }} }}"


def _counter() -> tuple[list[int], object]:
    calls: list[int] = []

    async def compute() -> Answer:
        calls.append(1)
        await asyncio.sleep(0.01)
        return Answer(str(len(calls)).encode(), "text/plain")

    return calls, compute


def test_an_answer_is_kept_until_invalidated():
    async def scenario() -> list[bytes]:
        cache = AnswerCache(1_000)
        _, compute = _counter()
        first = await cache.answer("k", compute)
        again = await cache.answer("k", compute)
        cache.invalidate()
        after = await cache.answer("k", compute)
        return [first.body, again.body, after.body]

    assert asyncio.run(scenario()) == [b"1", b"1", b"2"]


def test_concurrent_requests_share_one_computation():
    async def scenario() -> tuple[int, set[bytes]]:
        cache = AnswerCache(1_000)
        calls, compute = _counter()
        answers = await asyncio.gather(*(cache.answer("k", compute) for _ in range(10)))
        return len(calls), {a.body for a in answers}

    assert asyncio.run(scenario()) == (1, {b"1"})


def test_an_answer_computed_across_a_write_is_not_kept():
    """A write during the computation: its waiters get the answer, later requests do not."""

    async def scenario() -> tuple[bytes, bytes, int]:
        cache = AnswerCache(1_000)
        calls, compute = _counter()
        running = asyncio.ensure_future(cache.answer("k", compute))
        await asyncio.sleep(0)  # the computation has started
        cache.invalidate()
        during = await running
        after = await cache.answer("k", compute)
        return during.body, after.body, len(calls)

    assert asyncio.run(scenario()) == (b"1", b"2", 2)


def test_no_key_and_no_room_mean_no_caching():
    async def scenario() -> list[bytes]:
        none_kept, tiny = AnswerCache(1_000), AnswerCache(0)
        _, compute = _counter()
        return [
            (await none_kept.answer(None, compute)).body,
            (await none_kept.answer(None, compute)).body,
            (await tiny.answer("k", compute)).body,
            (await tiny.answer("k", compute)).body,
        ]

    assert asyncio.run(scenario()) == [b"1", b"2", b"3", b"4"]


def test_the_least_recently_used_answers_go_first():
    async def scenario() -> int:
        cache = AnswerCache(2)  # room for two one-byte answers
        calls, compute = _counter()
        for key in ("a", "b", "a", "c", "a", "b"):  # c drops b; b is computed again
            await cache.answer(key, compute)
        return len(calls)

    assert asyncio.run(scenario()) == 4


# -- over HTTP: every write is seen by the next read --------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    args = ["--cases", str(EXAMPLES), "--allow-update", "--token", TOKEN]
    with running(args, tmp_path_factory.mktemp("logs")) as server:
        yield server


def _cases_by_recommendation(server) -> set[str]:
    response = httpx.get(f"{server.url}/api/cases-by-recommendation", timeout=30)
    assert response.status_code == 200
    return {b["case"]["value"] for b in response.json()["results"]["bindings"]}


def _case_count(server) -> int:
    response = httpx.get(server.endpoint, params={"query": COUNT_CASES}, timeout=30)
    return int(response.json()["results"]["bindings"][0]["n"]["value"])


def test_a_posted_then_deleted_case_is_in_the_very_next_answers_and_then_gone(server):
    body = (EXAMPLES / "30-infection-with-cauda-equina.ttl").read_text()
    body = body.replace("https://example.org/case/30-infection-with-cauda-equina", NEW_CASE)
    before, count = _cases_by_recommendation(server), _case_count(server)
    assert NEW_CASE not in before and _cases_by_recommendation(server) == before  # now cached
    posted = httpx.post(
        f"{server.url}/cases", content=body.encode(), headers={"content-type": "text/turtle"}, timeout=60
    )
    assert posted.status_code == 201, posted.text
    assert _cases_by_recommendation(server) == before | {NEW_CASE}
    assert _case_count(server) == count + 1
    deleted = httpx.delete(
        server.url + posted.headers["location"], headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert deleted.status_code == 204
    assert _cases_by_recommendation(server) == before
    assert _case_count(server) == count


def test_a_sparql_update_is_in_the_very_next_answer(server):
    ask = "ASK { GRAPH <urn:cache-test> { <urn:s> <urn:p> <urn:o> } }"

    def asked() -> bool:
        return httpx.get(server.endpoint, params={"query": ask}, timeout=30).json()["boolean"]

    assert asked() is False and asked() is False  # the second from the cache
    update = "INSERT DATA { GRAPH <urn:cache-test> { <urn:s> <urn:p> <urn:o> } }"
    headers = {"content-type": "application/sparql-update", "authorization": f"Bearer {TOKEN}"}
    assert httpx.post(server.endpoint, content=update, headers=headers, timeout=30).status_code == 204
    assert asked() is True


def test_answers_differ_by_accept_and_non_deterministic_queries_are_not_kept(server):
    url = f"{server.url}/api/procedures"
    csv = httpx.get(url, headers={"accept": "text/csv"}, timeout=30)
    json_ = httpx.get(url, headers={"accept": "application/sparql-results+json"}, timeout=30)
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.startswith("procedure")
    assert json_.json()["results"]["bindings"]
    fresh = {"query": "SELECT (STRUUID() AS ?id) {}"}
    ids = [httpx.get(server.endpoint, params=fresh, timeout=30).json() for _ in range(2)]
    assert ids[0] != ids[1]
