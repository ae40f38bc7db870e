"""``lbp-imaging docs OUT_DIR``: the static documentation site, built by the command and
opened over ``file://`` in Debian's headless Chromium (see ``headless_browser``).

Every page loads without a script or console error and fetches nothing but the site's
own files; a crawl from ``index.html`` reaches every page written and finds no broken
link or ``#anchor``; the decision diagram renders with a size, inline and as its own
file, and links every criterion; each criterion page shows every one of its source
statements highlighted inside its document; the pages list what the knowledge base
holds; an edited threshold in a copy of the knowledge base changes exactly the pages
that show it, with no code change; and the command never writes into a directory that
is not a site it built. The layout escapes every text and routes long arrows between
the boxes.
"""

from __future__ import annotations

import html
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urlsplit
from xml.etree import ElementTree

import pytest
from kb_copy import copy_kb, edit
from rdflib import OWL, RDF, RDFS, URIRef
from rdflib.namespace import DCTERMS

from reasoner.authoring.closure import closures
from reasoner.authoring.docs_site import MARKER, DocsError, build_site, read_site
from reasoner.authoring.layered_svg import Arrow, Box, Diagram, LegendEntry, render_svg
from reasoner.knowledge import LBP, KnowledgeBase
from reasoner.pipeline.sources import normalise

THRESHOLD, EDITED = "xsd:minInclusive 20.0", "xsd:minInclusive 27.5"
EDITED_CRITERION = "MalignancyRiskFactorsWithAbnormalFirstLineTest"
PAGES = ("index.html", "criteria.html", "findings.html", "procedures.html", "diagram.html", "queries.html")


@dataclass(frozen=True)
class Site:
    root: Path
    output: str

    def url(self, path: str) -> str:
        return (self.root / path).as_uri()


@pytest.fixture(scope="module")
def site(cli, tmp_path_factory) -> Site:
    out = tmp_path_factory.mktemp("docs") / "site"
    proc = cli("docs", out)
    assert proc.returncode == 0, proc.stderr
    return Site(out, proc.stdout)


@pytest.fixture(scope="module")
def data(kb: KnowledgeBase):
    return read_site(kb)


@dataclass
class Tab:
    """A browser page, with the script errors, console errors and requests for anything
    other than the site's own files seen on it."""

    page: Any  # playwright's Page: imported only once the browser is known to be there
    problems: list[str] = field(default_factory=list)

    def open(self, url: str) -> None:
        self.page.goto(url)  # returns once the page has loaded


@pytest.fixture
def tab(browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    found = Tab(page)
    page.on("pageerror", lambda error: found.problems.append(f"script error: {error}"))
    page.on("console", lambda m: m.type == "error" and found.problems.append(f"console: {m.text}"))
    page.on(
        "request",
        lambda r: r.url.startswith(("file://", "data:")) or found.problems.append(f"fetched {r.url}"),
    )
    yield found
    context.close()


# -- the command ----------------------------------------------------------------------------
def test_the_command_reports_each_page_and_writes_one_page_per_criterion(site, data):
    lines = site.output.splitlines()
    assert lines[0].startswith("lbp-imaging docs: wrote ")
    assert [line.split()[0] for line in lines[1:-1]] == list(PAGES)
    assert lines[-1].startswith("Open ") and "needs no server" in lines[-1]
    for path in (*PAGES, "decision-diagram.svg", "style.css", *data.criterion_files.values()):
        assert (site.root / path).is_file(), path
    assert (
        len(data.criterion_files) == len(list(data.criteria)) == len(list(site.root.glob("criteria/*.html")))
    )


# -- in the browser -------------------------------------------------------------------------
def test_every_page_loads_cleanly_and_no_link_or_anchor_is_broken(tab, site):
    """Crawl from index.html: every link inside the site names a file that exists (and an
    id on it, for ``#anchor``); every page written is reached; nothing else is fetched."""
    top = site.url("index.html").removesuffix("index.html")
    queue, opened = deque([top + "index.html"]), set()
    ids: dict[str, set[str]] = {}
    anchors: list[tuple[str, str, str]] = []
    outside: set[str] = set()
    while queue:
        url = queue.popleft()
        if url in opened:
            continue
        opened.add(url)
        tab.open(url)
        assert tab.page.locator("h1").first.inner_text().strip(), url
        assert "Decision support, not diagnosis" in tab.page.locator("footer").inner_text(), url
        ids[url] = set(tab.page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
        hrefs = tab.page.eval_on_selector_all(
            "a[href]", "links => links.map(a => new URL(a.getAttribute('href'), document.baseURI).href)"
        )
        for href in hrefs:
            target, fragment = urldefrag(href)
            if not target.startswith(top):
                outside.add(target)
                continue
            assert Path(unquote(urlsplit(target).path)).is_file(), f"{url} links to missing {target}"
            if fragment:
                anchors.append((url, target, fragment))
            if target.endswith(".html"):
                queue.append(target)
    assert [a for a in anchors if a[2] not in ids.get(a[1], set())] == []
    assert opened == {p.as_uri() for p in site.root.rglob("*.html")}
    assert all(u.startswith(("https://", "http://")) for u in outside), outside
    assert len(anchors) > 100
    assert tab.problems == []


def test_the_decision_diagram_renders_and_links_every_criterion(tab, site, data):
    tab.open(site.url("diagram.html"))
    box = tab.page.locator(".diagram svg").bounding_box()
    assert box and box["width"] > 600 and box["height"] > 400
    linked = set(
        tab.page.eval_on_selector_all(".diagram svg a", "links => links.map(a => a.getAttribute('href'))")
    )
    assert set(data.criterion_files.values()) <= linked
    tab.open(site.url("decision-diagram.svg"))
    root = tab.page.evaluate(
        "() => { const r = document.documentElement.getBoundingClientRect();"
        " return [document.documentElement.localName, r.width, r.height]; }"
    )
    assert root[0] == "svg" and root[1] > 600 and root[2] > 400
    assert tab.problems == []


def test_rules_that_swap_no_procedure_stand_beside_the_criteria_saying_what_they_name(data, onto):
    boxes = {b.id: b for b in data.diagram.boxes}
    rules = [c for c in data.criteria if c.kind == "rule"]
    swapping = [r for r in rules if f"rule:{r.iri}" in boxes]
    others = [r for r in rules if f"criterion:{r.iri}" in boxes]
    assert swapping and others and len(swapping) + len(others) == len(rules)
    for rule in others:
        box = boxes[f"criterion:{rule.iri}"]
        assert box.group == ", ".join(rule.groups) and box.group not in ("rule", None), rule.name
        for prop in (LBP.completesPathwayOf, LBP.outcomeWithoutCriterion):
            for value in onto.objects(URIRef(rule.iri), prop):
                assert any(line.endswith(": " + data.criteria.vocab.label(str(value))) for line in box.lines)
    assert "and other rules" in data.diagram.layer_titles[1]
    # A finding recorded absent is a condition of its own, and says so.
    absent = [b for b in data.diagram.boxes if b.tooltip and b.tooltip.startswith("has absent finding")]
    assert absent and all(b.lines[0] == b.tooltip for b in absent)


COVERED_FROM = """id => {
  // The text highlighted from the element with this id on: it and the <mark>s right after it
  // (empty <span>s only carry the ids of statements starting at the same place).
  let node = document.getElementById(id), text = "";
  while (node && node.nodeType === 1 && (node.localName === "mark" || node.textContent === "")) {
    text += node.textContent;
    node = node.nextSibling;
  }
  return text;
}"""


def test_each_criterion_page_shows_each_source_statement_highlighted(tab, site, data):
    for criterion in data.criteria:
        tab.open(site.url(data.criterion_files[criterion.iri]))
        assert tab.page.locator("h1").inner_text() == criterion.label
        for statement in criterion.statements:
            covered = tab.page.evaluate(COVERED_FROM, statement.anchor)
            assert normalise(covered).startswith(normalise(statement.quote)), (
                criterion.name,
                statement.anchor,
            )
        first = tab.page.locator(".document mark").first
        box = first.bounding_box()
        assert box and box["width"] > 0 and box["height"] > 0
        colour = first.evaluate("m => getComputedStyle(m).backgroundColor")
        assert colour != tab.page.evaluate(
            "getComputedStyle(document.querySelector('.document')).backgroundColor"
        )
    assert tab.problems == []


# -- what the pages say ---------------------------------------------------------------------
def _text(site: Site, path: str) -> str:
    return html.unescape((site.root / path).read_text(encoding="utf-8"))


def test_the_start_page_has_the_ontology_header_counts_and_disclaimer(site, onto):
    text = _text(site, "index.html")
    root = URIRef(str(LBP) + "ontology")
    for prop in (
        OWL.versionIRI,
        OWL.versionInfo,
        DCTERMS.title,
        DCTERMS.description,
        DCTERMS.license,
        DCTERMS.creator,
    ):
        assert str(onto.value(root, prop)) in text, prop
    assert "Decision support, not diagnosis" in text
    assert f"<td>{len(onto):,}</td>" in text


def test_findings_procedures_and_queries_are_listed_with_their_codes(site, data, onto, kb):
    findings, procedures, queries = (
        _text(site, p) for p in ("findings.html", "procedures.html", "queries.html")
    )
    finding_classes = set(onto.transitive_subjects(RDFS.subClassOf, LBP.ClinicalFinding))
    for finding in {f for c in finding_classes for f in onto.subjects(RDF.type, c)}:
        concept = data.criteria.codings.concept(finding)
        assert concept.label in findings
        assert all(code.code in findings for code in concept.codes), concept.label
        assert concept.status is None or concept.status in findings
    # A category a closure axiom closes says so, under its own heading; the others do not.
    closed = {c.category for c in closures(onto)}
    assert closed and {URIRef(c.iri) for c in data.findings if c.closed} == closed
    for category in data.findings:
        heading = findings.index(f'id="{category.anchor}"')
        body = findings[heading : findings.find("</section>", heading)]
        assert ("Closed: its findings are exactly" in body) is category.closed, category.label
    for procedure in data.procedures.procedures:
        assert procedure.concept.label in procedures
        assert all(v.label in procedures for v in procedure.summary if v is not None)
        assert all(code.code in procedures for code in procedure.concept.codes)
    # The columns are what most procedures have one value of: a procedure without one (a
    # referral names no study, so it has no contrast) leaves its cells empty, not the table.
    assert {"contrast", "uses ionising radiation", "relative radiation level"} <= {
        c.label for c in data.procedures.columns
    }
    without = [p for p in data.procedures.procedures if None in p.summary]
    assert without and all(not list(onto.objects(URIRef(p.concept.iri), LBP.contrast)) for p in without)
    for named in kb.queries.values():
        assert named.summary in queries and named.text in queries


def test_an_edited_threshold_changes_exactly_the_pages_that_show_it(cli, site, tmp_path):
    # The criterion's ESR threshold; the clinical review trigger that tests the same ESR keeps its own.
    copy = copy_kb(tmp_path / "kb", ("ontology", "shapes", "queries"))
    edit(copy, "ontology/criteria.ttl", THRESHOLD, EDITED, within="lbp:" + EDITED_CRITERION)
    proc = cli("docs", tmp_path / "site", "--kb", copy)
    assert proc.returncode == 0, proc.stderr
    changed = {
        str(p.relative_to(tmp_path / "site"))
        for p in (tmp_path / "site").rglob("*")
        if p.is_file() and p.read_bytes() != (site.root / p.relative_to(tmp_path / "site")).read_bytes()
    }
    page = f"criteria/{EDITED_CRITERION}.html"
    assert changed == {page, "criteria.html", "diagram.html", "decision-diagram.svg"}
    for path in sorted(changed):
        before = _text(site, path)
        after = html.unescape((tmp_path / "site" / path).read_text(encoding="utf-8"))
        assert "\u2265 27.5" not in before and "\u2265 27.5" in after, path
        # The old threshold is left only where the review trigger shows its own.
        assert after.count("\u2265 20.0") < before.count("\u2265 20.0"), path
    assert "\u2265 20.0" not in html.unescape((tmp_path / "site" / page).read_text(encoding="utf-8"))


# -- where it writes ------------------------------------------------------------------------
def test_a_directory_that_is_not_a_site_is_refused_and_a_rebuild_removes_stale_pages(kb, tmp_path):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    with pytest.raises(DocsError, match="not empty"):
        build_site(kb, other)
    assert [p.name for p in other.iterdir()] == ["mine.txt"]

    out = tmp_path / "site"
    build_site(kb, out)
    (out / "criteria" / "Renamed.html").write_text("a page of an earlier build")
    (out / MARKER).write_text((out / MARKER).read_text() + "criteria/Renamed.html\n../notes/mine.txt\n")
    (out / "mine.txt").write_text("not the site's")
    built = build_site(kb, out)
    assert not (out / "criteria" / "Renamed.html").exists()
    assert (out / "mine.txt").exists() and (other / "mine.txt").exists()
    assert set((out / MARKER).read_text().split()) == set(built.files)


def test_the_command_refuses_a_file_as_its_directory(cli, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("")
    proc = cli("docs", target)
    assert proc.returncode == 2 and "not a directory" in proc.stderr


# -- the layout, on its own ------------------------------------------------------------------
def test_the_svg_escapes_every_text_and_routes_a_long_arrow_between_the_boxes():
    hostile = '<script>alert("x")</script> & "quotes"'
    diagram = Diagram(
        title=hostile,
        description=hostile,
        boxes=(
            Box("a", 0, (hostile, hostile), href='x.html?a="b"&c', tooltip=hostile, group=hostile),
            Box("b", 1, ("middle",)),
            Box("c", 2, ("end",)),
        ),
        arrows=(Arrow("a", "c", dashed=True), Arrow("a", "b")),
        layer_titles={0: hostile},
        groups=(hostile,),
        legend=(LegendEntry(hostile, fill="#fff"), LegendEntry(hostile, colour="#000")),
    )
    svg = render_svg(diagram)
    assert "<script" not in svg and 'href="x.html?a=&quot;b&quot;&amp;c"' in svg
    assert svg.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;") >= 7
    ElementTree.fromstring(svg)  # well-formed XML, as the .svg file must be
    long_arrow = next(line for line in svg.splitlines() if 'stroke-dasharray="6 4" marker-end' in line)
    assert " L" in long_arrow, "the arrow from layer 0 to 2 crosses layer 1 through a waypoint"
    with pytest.raises(ValueError, match="lacks"):
        render_svg(Diagram("t", "d", (Box("a", 0, ("a",)),), (Arrow("a", "missing"),)))
