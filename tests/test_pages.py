"""The web pages in a real browser: Debian's headless Chromium, driven by Playwright,
against a real ``lbp-imaging serve`` process with the example cases stored.

Every page loads without a script error; no internal link (or ``#anchor``) is broken;
the case page assesses an example and pasted text and escapes what it echoes; the query
page runs each named query through ``/sparql``; and a screenshot shows a criterion's
source quote highlighted inside its source document.

Chromium comes from ``scripts/setup.sh`` (see ``headless_browser``: without it these
tests fail, unless ``LBP_IMAGING_ALLOW_NO_BROWSER=1`` outside CI).
"""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urldefrag, urlsplit

import httpx
import pytest
from rdflib import OWL, URIRef
from sparql_server import EXAMPLES, ROOT, running

from reasoner.knowledge import LBP
from reasoner.pipeline.explain import Vocabulary
from reasoner.server.pages.criteria_catalogue import CriteriaCatalogue

OWN_PAGES = ("/", "/criteria", "/case", "/query")
"""Paths (and their sub-paths) whose pages the crawler opens in the browser; any other
internal link (the SPARQL endpoint, the API documentation) is checked by status only."""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running(["--cases", str(EXAMPLES)], tmp_path_factory.mktemp("logs")) as server:
        yield server


@dataclass
class Tab:
    """A browser page and the script errors, failed loads and dialogs seen on it."""

    page: Any  # playwright's Page: imported only once the browser is known to be there
    problems: list[str] = field(default_factory=list)

    def open(self, path: str):
        response = self.page.goto(path)
        assert response is not None and response.status == 200, f"{path}: {response and response.status}"
        return response


@pytest.fixture
def tab(browser, server) -> Iterator[Tab]:
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    found = Tab(page)
    page.on("pageerror", lambda error: found.problems.append(f"script error: {error}"))
    page.on("console", lambda m: m.type == "error" and found.problems.append(f"console: {m.text}"))
    page.on("dialog", lambda d: (found.problems.append(f"dialog: {d.message}"), d.dismiss()))
    yield found
    context.close()


@pytest.fixture(scope="module")
def vocab(onto) -> Vocabulary:
    return Vocabulary(onto)


def _expected(name: str) -> dict:
    return json.loads((EXAMPLES / name).with_suffix(".expected.json").read_text())


# -- every page -----------------------------------------------------------------------------
def test_each_page_loads_with_a_heading_and_the_disclaimer(tab):
    tab.open("/criteria")
    first = tab.page.locator("#criteria a").first.get_attribute("href")
    for path in ("/", "/criteria", first, "/case", "/query"):
        response = tab.open(path)
        assert response.headers["content-type"].startswith("text/html")
        assert tab.page.locator("h1").first.inner_text().strip()
        assert "Decision support, not diagnosis" in tab.page.locator("footer").inner_text()
    assert tab.problems == []


def test_landing_page_shows_the_ontology_version_and_links_everything(tab, onto):
    tab.open("/")
    text = tab.page.locator("main").inner_text()
    root = URIRef(str(LBP) + "ontology")
    assert str(onto.value(root, OWL.versionInfo)) in text
    assert str(onto.value(root, OWL.versionIRI)) in text
    hrefs = set(tab.page.eval_on_selector_all("main a", "links => links.map(a => a.getAttribute('href'))"))
    assert {"/criteria", "/case", "/query", "/sparql", "/docs"} <= hrefs


def _own(path: str) -> bool:
    return path == "/" or any(path.startswith(p) for p in OWN_PAGES if p != "/")


def test_no_internal_link_or_anchor_is_broken(tab, server):
    """Crawl every page of the site from ``/``: each internal link answers 200, and each
    ``#anchor`` it points to exists on the page it names."""
    origin = urlsplit(server.url).netloc
    queue, opened = deque([server.url + "/"]), set()
    ids: dict[str, set[str]] = {}
    anchors: list[tuple[str, str, str]] = []  # (from page, to page, id)
    checked: dict[str, int] = {}
    while queue:
        url = queue.popleft()
        if url in opened:
            continue
        opened.add(url)
        tab.open(url)
        ids[url] = set(tab.page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
        for href in tab.page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            target, fragment = urldefrag(href)
            parts = urlsplit(target)
            if parts.netloc != origin:
                continue  # another site (the licence, the ontology's w3id IRIs): not crawled
            if fragment:
                anchors.append((url, target, fragment))
            if _own(parts.path):
                queue.append(target)
            elif target not in checked:
                checked[target] = httpx.get(target, timeout=30).status_code
    assert {u: s for u, s in checked.items() if s != 200} == {}
    assert [a for a in anchors if a[2] not in ids.get(a[1], set())] == []
    assert len(opened) > 20 and anchors, "the crawl found too little to be meaningful"
    assert tab.problems == []


# -- the case page --------------------------------------------------------------------------
def _shown_recommendation(tab: Tab) -> dict[str, str]:
    tab.page.wait_for_selector(".recommendation")
    found = {"outcome": tab.page.locator(".recommendation .outcome").first.inner_text()}
    for key in ("procedure", "urgency"):
        locator = tab.page.locator(f".recommendation .{key}").first
        found[key] = locator.inner_text() if locator.count() else ""
    return found


def _expected_labels(vocab: Vocabulary, expected: dict) -> dict[str, str]:
    return {
        key: vocab.label(str(LBP) + expected[key]) if expected.get(key) else ""
        for key in ("outcome", "procedure", "urgency")
    }


@pytest.mark.parametrize("example", ["05-known-cancer.ttl", "02-cauda-equina-bilateral-leg-signs.jsonld"])
def test_case_page_assesses_a_chosen_example(tab, vocab, example):
    tab.open("/case?tab=advanced")
    tab.page.select_option("#example", example)
    tab.page.click("#assess-example")
    shown = _shown_recommendation(tab)
    assert shown == _expected_labels(vocab, _expected(example))
    tree = tab.page.locator("ul.tree").first.inner_text()
    assert "criteria met" in tree and "red flags" in tree
    criterion = _expected(example)["criteria"][0]
    assert tab.page.locator(f"ul.tree a[href='/criteria/{criterion}']").count() >= 1
    assert tab.problems == []


def test_case_page_shows_the_questions_of_a_more_information_needed_case(tab, vocab):
    example = "40-screening-incomplete.ttl"
    expected = _expected(example)
    tab.open("/case?tab=advanced")
    tab.page.select_option("#example", example)
    tab.page.click("#assess-example")
    assert _shown_recommendation(tab) == _expected_labels(vocab, expected)
    recommendation = tab.page.locator(".recommendation").inner_text()
    assert "no imaging" not in recommendation.lower()
    n = len(expected["questions"])
    assert tab.page.locator(".recommendation .questions").inner_text().startswith(f"{n} questions")
    tree = tab.page.locator("ul.tree").first
    text = " ".join(tree.inner_text().split())
    asked = text.split("to settle this, ask")[1].split("red flags")[0]
    for finding in expected["questions"]:
        assert vocab.label(str(LBP) + finding) in asked, finding
    assert asked.index("spinal infection") < asked.index("intravenous drug use: present")
    assert vocab.effect_label("indicate-imaging") in asked  # the effect's label, from the ontology
    # The undetermined criteria link to their pages, like the criteria met.
    assert tree.locator("a[href='/criteria/SuspectedSpinalInfection']").count() >= 1
    assert tab.problems == []


@pytest.mark.parametrize(
    ("path", "detected"),
    [
        (EXAMPLES / "30-infection-with-cauda-equina.ttl", "Turtle"),
        (ROOT / "examples/fhir/01-cauda-equina-urinary-saddle.json", "FHIR (JSON)"),
    ],
)
def test_case_page_assesses_pasted_text(tab, vocab, path, detected):
    tab.open("/case?tab=advanced")
    tab.page.fill("#case-text", path.read_text())
    tab.page.click("#assess-text")
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    assert _shown_recommendation(tab) == _expected_labels(vocab, expected)
    assert tab.page.inner_text("#read-as") == f"Read as {detected}."
    # Each quote links to its highlight on the page of the criterion it is listed under.
    quote_link = tab.page.locator("ul.tree a[href*='#']").first
    href = quote_link.get_attribute("href")
    quote_link.click()
    tab.page.wait_for_url(f"**{href}")
    assert tab.page.locator(f"mark#{href.split('#')[1]}").is_visible()
    assert tab.problems == []


def test_case_page_reports_bad_input_and_escapes_what_it_echoes(tab):
    typed = '<x> a <y> . <script>alert("injected")</script> & <b>bold</b>'
    tab.open("/case?tab=advanced")
    tab.page.fill("#case-text", typed)
    tab.page.click("#assess-text")
    tab.page.wait_for_selector("#input-errors")
    assert tab.page.input_value("#case-text") == typed
    assert tab.page.locator("main b").count() == 0 and tab.page.locator("main script").count() == 0
    tab.page.fill("#case-text", (ROOT / "tests/data/cases/invalid/age-too-high.ttl").read_text())
    tab.page.click("#assess-text")
    tab.page.wait_for_selector(".invalid")
    assert "not valid" in tab.page.locator(".invalid").inner_text()
    assert tab.problems == []


# -- the query page -------------------------------------------------------------------------
def test_query_page_runs_each_named_query_and_shows_its_rows(tab, server, kb):
    tab.open("/query")
    for name, named in kb.queries.items():
        tab.page.click(f"button.load[data-query='{name}']")
        assert tab.page.input_value("#query-text") == named.text
        tab.page.click("#run")
        tab.page.wait_for_selector("#result-table")
        direct = httpx.post(server.endpoint, data={"query": named.text}, timeout=30).json()
        header = tab.page.locator("#result-table th").all_inner_texts()
        assert header == direct["head"]["vars"], name
        rows = tab.page.locator("#result-table tr").count() - 1
        assert rows == len(direct["results"]["bindings"]) > 0, name
    assert tab.problems == []


def test_query_page_shows_an_endpoint_error(tab):
    tab.open("/query")
    tab.page.fill("#query-text", "SELECT * WHERE { ?s ?p }")
    tab.page.click("#run")
    tab.page.wait_for_selector("#results .error")
    assert tab.page.inner_text("#status") == "error 400"


# -- the highlighted quote ------------------------------------------------------------------
PIXELS_IN_COLOUR = """async ([png, colour]) => {
  const image = new Image();
  image.src = "data:image/png;base64," + png;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const data = context.getImageData(0, 0, image.width, image.height).data;
  let same = 0;
  for (let i = 0; i < data.length; i += 4) {
    if ([0, 1, 2].every(k => Math.abs(data[i + k] - colour[k]) <= 6)) same++;
  }
  return [same, data.length / 4];
}"""


@pytest.fixture(scope="module")
def short_quote(kb, vocab) -> tuple[str, str, str]:
    """A criterion, one of its statements whose quote fits on one line, and that quote."""
    catalogue = CriteriaCatalogue(kb, vocab)
    for criterion in catalogue:
        for statement in sorted(criterion.statements, key=lambda s: len(s.quote)):
            if statement.located and 10 < len(statement.quote) < 60:
                return criterion.name, statement.anchor, statement.quote
    raise AssertionError("no criterion has a short located quote")


def test_criterion_page_shows_its_source_quote_highlighted_in_the_document(tab, short_quote, tmp_path):
    name, statement, quote = short_quote
    tab.open(f"/criteria/{name}#{statement}")
    mark = tab.page.locator(f".document mark#{statement}")
    assert mark.is_visible()
    assert " ".join(mark.inner_text().split()) == " ".join(quote.split())
    box = mark.bounding_box()
    assert box and box["width"] > 0 and box["height"] > 0
    png = mark.screenshot(path=str(tmp_path / "highlighted-quote.png"))
    colour = mark.evaluate("m => getComputedStyle(m).backgroundColor")
    rgb = [int(c) for c in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3]]
    page_colour = tab.page.evaluate("getComputedStyle(document.querySelector('.document')).backgroundColor")
    assert colour != page_colour, "the highlight has the document's own colour"
    same, total = tab.page.evaluate(PIXELS_IN_COLOUR, [base64.b64encode(png).decode(), rgb])
    assert same / total > 0.5, f"only {same} of {total} pixels are the highlight colour {colour}"
    assert tab.problems == []
