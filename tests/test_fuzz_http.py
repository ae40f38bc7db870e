"""Bounded fuzzing of every HTTP input surface, against a real server: mutated SPARQL queries,
case bodies (Turtle, JSON-LD, FHIR Bundles) posted to ``/cases`` and to the case page's
text, answers posted to the questionnaire form (the case page's, and a CDS card's form
link), and CDS Hooks requests. Nothing may give a 5xx (but a query cut off at its deadline
or memory limit, 503), put a traceback in the server's log or stop the server, and good
requests sent afterwards are still answered. The mutations are those of
``scripts/fuzz_inputs.py`` (the command line's fuzzer), seeded: input ``i`` is the same on
every run."""

from __future__ import annotations

import importlib.util
import json
import random
import re
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sparql_server import EXAMPLES

ROOT = Path(__file__).resolve().parent.parent
PER_SURFACE = 30
SEED = 13
CUT_OFF = ("did not finish", "more memory")


def _fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_inputs", ROOT / "scripts" / "fuzz_inputs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_inputs", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


MUTATE = _fuzzer().mutate


def _mutated(sources: list[Path], index: int) -> tuple[Path, bytes]:
    rng = random.Random(f"{SEED}-{index}")
    source = rng.choice(sources)
    data, _ = MUTATE(source.read_bytes(), source.suffix, rng)
    return source, data


@pytest.fixture
def server(hostile_server):
    return hostile_server


def _check(server, response: httpx.Response, what: str) -> None:
    cut_off = response.status_code == 503 and any(c in response.text for c in CUT_OFF)
    assert response.status_code < 500 or cut_off, f"{what}: {response.status_code} {response.text[:300]}"


def _survived(server) -> None:
    assert server.process.poll() is None, "the server stopped"
    assert "Traceback" not in server.log.read_text()
    good = (EXAMPLES / "30-infection-with-cauda-equina.ttl").read_bytes()
    fresh = good.replace(b"/case/30-infection-with-cauda-equina", f"/case/fuzz-{uuid.uuid4()}".encode())
    answer = httpx.post(
        server.url + "/cases", content=fresh, headers={"content-type": "text/turtle"}, timeout=60
    )
    assert answer.status_code == 201, answer.text
    assert (
        httpx.post(server.endpoint, data={"query": "ASK { ?s ?p ?o }"}, timeout=60).json()["boolean"] is True
    )


def test_mutated_sparql_queries(server, tmp_path):
    sources = []
    for path in sorted((ROOT / "queries").glob("*.rq")):
        copy = tmp_path / path.name
        copy.write_bytes(path.read_bytes())
        sources.append(copy)
    for index in range(PER_SURFACE):
        source, data = _mutated(sources, index)
        response = httpx.post(
            server.endpoint, content=data, headers={"content-type": "application/sparql-query"}, timeout=60
        )
        _check(server, response, f"query {index} from {source.name}")
    _survived(server)


SUFFIX_TYPES = {".ttl": "text/turtle", ".jsonld": "application/ld+json", ".json": "application/fhir+json"}


def test_mutated_case_bodies_posted_to_cases(server):
    sources = sorted(
        p for p in EXAMPLES.glob("*") if p.suffix in (".ttl", ".jsonld") and "expected" not in p.name
    )
    sources += sorted(p for p in (ROOT / "examples" / "fhir").glob("*.json") if "expected" not in p.name)
    for index in range(PER_SURFACE):
        source, data = _mutated(sources, index)
        response = httpx.post(
            server.url + "/cases",
            content=data,
            headers={"content-type": SUFFIX_TYPES[source.suffix]},
            timeout=60,
        )
        _check(server, response, f"case {index} from {source.name}")
    _survived(server)


def test_mutated_case_text_on_the_case_page(server):
    sources = sorted(
        p for p in EXAMPLES.glob("*") if p.suffix in (".ttl", ".jsonld") and "expected" not in p.name
    )
    formats = {".ttl": "turtle", ".jsonld": "json-ld"}
    for index in range(PER_SURFACE // 2):
        source, data = _mutated(sources, index)
        text = data.decode("utf-8", errors="replace")
        response = httpx.post(
            server.url + "/case", data={"text": text, "format": formats[source.suffix]}, timeout=60
        )
        _check(server, response, f"form {index} from {source.name}")
    _survived(server)


def test_mutated_cds_hooks_requests(server, tmp_path):
    services = {s["hook"]: s["id"] for s in httpx.get(server.url + "/cds-services").json()["services"]}
    sources = sorted((ROOT / "examples" / "cds-hooks").glob("*.request.json"))
    for index in range(PER_SURFACE):
        source, data = _mutated(sources, index)
        hook = json.loads(source.read_text())["hook"]
        response = httpx.post(
            server.url + f"/cds-services/{services[hook]}",
            content=data,
            headers={"content-type": "application/json"},
            timeout=60,
        )
        _check(server, response, f"CDS request {index} from {source.name}")
    _survived(server)


ODD_VALUES = [
    "",
    " ",
    "Y",
    "N",
    "true",
    "false",
    "maybe",
    "-1",
    "0",
    "1e999",
    "NaN",
    "-inf",
    "12,5",
    "٣",
    "\uff11\uff12",  # full-width digits
    "9" * 400,
    "1" + "0" * 40,
    "\x00",
    "<script>alert(1)</script>",
    "%",
    "0x10",
    "+",
    ".",
    "-.5e-3",
]


def _answers(rng: random.Random, names: list[str]) -> dict[str, str]:
    """Random fields of the form (and some it does not have) with odd values."""
    chosen = rng.sample(names, k=min(len(names), rng.randint(1, 12)))
    fields = {name: rng.choice(ODD_VALUES) for name in chosen}
    if rng.random() < 0.3:
        fields[rng.choice(["Patient.gender", "key", "no-such-field", "CaudaEquinaSyndrome.none"])] = (
            rng.choice(ODD_VALUES)
        )
    return fields


def test_mutated_answers_to_the_questionnaire_forms(server):
    page = httpx.get(server.url + "/case", timeout=30).text
    names = sorted(set(re.findall(r'name="([^"]+)"', page)))
    request = (ROOT / "examples" / "cds-hooks" / "07-more-information-needed.request.json").read_bytes()
    call = httpx.post(
        server.url + "/cds-services/lbp-imaging-order-sign",
        content=request,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    (link,) = call.json()["cards"][0]["links"]
    for index in range(PER_SURFACE):
        rng = random.Random(f"{SEED}-form-{index}")
        target = server.url + "/case" if index % 2 else link["url"]
        response = httpx.post(target, data=_answers(rng, names), timeout=60)
        _check(server, response, f"form answers {index} to {target}")
    _survived(server)
