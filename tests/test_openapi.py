"""The server's OpenAPI document and what it promises (reasoner/server/http/openapi.py,
named_queries/paging.py, cds_hooks/schemas.py), against a real ``lbp-imaging serve``:
the live document passes a real OpenAPI validator and names each operation once, the
named queries page their rows with ``limit``/``offset`` and ``Link`` headers, and real CDS
Hooks messages match the schemas the document gives them."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from sparql_server import ROOT, running

MAX_ROWS = 40
CDS_EXAMPLES = ROOT / "examples" / "cds-hooks"
SIGN = "lbp-imaging-order-sign"
QUERY = "/api/red-flags"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running(["--max-rows", str(MAX_ROWS)], tmp_path_factory.mktemp("logs")) as server:
        yield server


@pytest.fixture(scope="module")
def document(server) -> dict:
    response = httpx.get(f"{server.url}/openapi.json")
    assert response.status_code == 200
    return response.json()


def conforms(document: dict, component: str, instance: object) -> list[str]:
    """The problems of ``instance`` against the document's schema ``component`` (its
    references resolved within the document)."""
    validator = Draft202012Validator({**document, "$ref": f"#/components/schemas/{component}"})
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def test_the_live_document_is_valid_openapi_with_one_operation_id_per_operation(document):
    validate(document)
    ids = Counter(op["operationId"] for item in document["paths"].values() for op in item.values())
    assert [i for i, n in ids.items() if n > 1] == []
    assert {document["paths"]["/sparql"][m]["operationId"] for m in ("get", "post")} == {
        "sparql_get",
        "sparql_post",
    }


def test_named_queries_document_limit_and_offset_bounded_by_the_row_limit(document):
    get = document["paths"][QUERY]["get"]
    parameters = {p["name"]: p for p in get["parameters"]}
    assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 0, "maximum": MAX_ROWS}
    assert parameters["offset"]["schema"] == {"type": "integer", "minimum": 0}
    assert "Link" in get["responses"]["200"]["headers"]


def _rows(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return response.json()["results"]["bindings"]


def _link(response: httpx.Response, rel: str) -> str | None:
    return response.links.get(rel, {}).get("url")


def test_following_next_links_gives_the_whole_answer_in_order(server):
    whole = _rows(httpx.get(server.url + QUERY))
    assert len(whole) > 7
    pages, url = [], f"{server.url}{QUERY}?limit=7"
    while url:
        response = httpx.get(url)
        pages.append(response)
        url = _link(response, "next")
    assert [row for page in pages for row in _rows(page)] == whole
    assert [len(_rows(p)) for p in pages[:-1]] == [7] * (len(pages) - 1)
    assert _link(pages[0], "prev") is None
    assert _link(pages[1], "prev") == f"{server.url}{QUERY}?limit=7&offset=0"


def test_a_page_keeps_the_query_parameters_and_the_client_format(server):
    category = "https://w3id.org/lbp-imaging/FractureRiskFactor"
    params = {"category": category, "limit": "2", "offset": "1"}
    response = httpx.get(server.url + QUERY, params=params, headers={"accept": "text/csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2 and all(r["category"] == category for r in rows)
    prev = httpx.URL(_link(response, "prev"))
    assert dict(prev.params) == {"category": category, "limit": "2", "offset": "0"}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": "-1"}, "'limit'"),
        ({"offset": "two"}, "'offset'"),
        ({"limit": str(MAX_ROWS + 1)}, "'limit'"),
        ({"limit": "1.5"}, "'limit'"),
    ],
)
def test_a_bad_limit_or_offset_is_400_naming_the_parameter(server, params, named):
    response = httpx.get(server.url + QUERY, params=params)
    assert response.status_code == 400 and named in response.text


def test_cds_hooks_messages_match_their_schemas_in_the_document(server, document):
    discovery = httpx.get(f"{server.url}/cds-services").json()
    assert conforms(document, "CdsDiscovery", discovery) == []
    for path in sorted(CDS_EXAMPLES.glob("*.request.json"))[:2]:
        request = json.loads(path.read_text())
        assert conforms(document, "CdsHookRequest", request) == [], path.name
        response = httpx.post(f"{server.url}/cds-services/{SIGN}", json=request, timeout=60)
        assert response.status_code == 200, response.text
        assert response.json()["cards"], path.name
        assert conforms(document, "CdsHookResponse", response.json()) == [], path.name
    bad = httpx.post(f"{server.url}/cds-services/{SIGN}", json={"hook": "order-sign"})
    assert bad.status_code == 400
    assert conforms(document, "OperationOutcome", bad.json()) == []
    feedback = {
        "feedback": [
            {
                "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
                "outcome": "overridden",
                "overrideReason": {"reason": {"code": "x", "system": "https://example.org/o"}},
                "outcomeTimestamp": "2020-12-11T01:00:00+01:00",
            }
        ]
    }
    assert conforms(document, "CdsFeedbackRequest", feedback) == []
    assert httpx.post(f"{server.url}/cds-services/{SIGN}/feedback", json=feedback).status_code == 200
    assert conforms(document, "CdsFeedbackRequest", {"feedback": [{"card": "x"}]}) != []
