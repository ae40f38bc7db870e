"""``lbp-imaging docs OUT_DIR``: the knowledge base as a static HTML site, for guideline
authors and reviewers who have no server running.

Pages: ``index.html`` (the ontology header, counts, the disclaimer), ``criteria.html``
and one page per criterion under ``criteria/`` (the server's criteria catalogue and
templates: outcome with codes, logic in words, ACR alignment, the source statements
highlighted inside their documents), ``findings.html`` by category with codes,
``procedures.html``, ``diagram.html`` (the decision diagram, generated as SVG, inline and
as ``decision-diagram.svg``) and ``queries.html`` (the named queries). Links are relative,
the one stylesheet is local and there is no script, so the site works from ``file://``
and from any static host. The same knowledge base gives the same files (no time stamps),
so two builds can be diffed.

A directory is only written into if it is new, empty, or a site this command built (its
``.lbp-imaging-docs`` lists the files it wrote, which a rebuild removes first, so that a
renamed criterion leaves no stale page); anything else is refused rather than mixed with.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from .. import DISCLAIMER, __version__
from ..knowledge import KnowledgeBase
from ..pipeline.explain import Vocabulary
from ..server.named_queries.spec import ApiQuery, api_query
from ..server.pages.criteria_catalogue import CriteriaCatalogue
from ..server.pages.labels import anchor
from ..server.pages.ontology_header import OntologyHeader, read_header
from . import output_dir
from .decision_diagram import decision_diagram
from .docs_terms import FindingCategory, ProcedureTable, finding_categories, procedure_table
from .layered_svg import Diagram, render_svg

MARKER = ".lbp-imaging-docs"
KIND_COUNTS = {
    "criterion": "imaging criteria (defined classes)",
    "rule": "rules (defined classes)",
    "closed-world": "closed-world outcomes",
}
"""How the start page counts each kind of the criteria catalogue."""
SVG_FILE = "decision-diagram.svg"


class DocsError(Exception):
    """The site cannot be written where asked."""


@dataclass(frozen=True)
class SiteData:
    """Everything the pages show, read from the knowledge base once."""

    header: OntologyHeader
    criteria: CriteriaCatalogue
    findings: list[FindingCategory]
    procedures: ProcedureTable
    queries: list[ApiQuery]
    criterion_files: dict[str, str]
    """Criterion IRI -> its page under ``criteria/``."""
    term_pages: dict[str, str]
    """Term IRI -> its place on a page (``findings.html#LOCAL_NAME``)."""
    diagram: Diagram
    svg: str
    triples: int

    @property
    def finding_count(self) -> int:
        return len({f.concept.iri for c in self.findings for f in c.findings})

    @property
    def counts(self) -> list[tuple[str, int, str | None]]:
        """(what, how many, the page listing them) for the start page."""
        kinds = Counter(criterion.kind for criterion in self.criteria)
        documents = {str(q.document) for q in self.criteria.quotes.values()}
        return [
            *((KIND_COUNTS.get(kind, kind), n, "criteria.html") for kind, n in kinds.items()),
            ("findings", self.finding_count, "findings.html"),
            ("finding categories", len(self.findings), "findings.html"),
            ("procedures", len(self.procedures.procedures), "procedures.html"),
            ("source statements", len(self.criteria.quotes), None),
            ("source documents", len(documents), None),
            ("named queries", len(self.queries), "queries.html"),
            ("ontology modules", len(self.header.modules), None),
            ("triples", self.triples, None),
        ]


@dataclass(frozen=True)
class Pages:
    """What the templates reach as ``site``: the data, and links relative to the page
    being written (``root`` leads from it back to the top of the site)."""

    data: SiteData
    root: str = ""

    @property
    def header(self) -> OntologyHeader:
        return self.data.header

    @property
    def criteria(self) -> CriteriaCatalogue:
        return self.data.criteria

    @property
    def criteria_href(self) -> str:
        return self.href("criteria.html")

    def href(self, path: str) -> str:
        return self.root + path

    def criterion_href(self, iri: str | None) -> str | None:
        found = self.data.criterion_files.get(iri or "")
        return self.href(found) if found else None

    def query_href(self, name: str) -> str:
        return self.href(f"queries.html#{anchor(name)}")

    def term_href(self, iri: str | None) -> str | None:
        """The place of a finding, a category or a procedure, if the site lists it."""
        found = self.data.term_pages.get(iri or "")
        return self.href(found) if found else None


def _file_names(catalogue: CriteriaCatalogue) -> dict[str, str]:
    """A page per criterion, named by its name with only safe characters (and a number
    when two names would collide)."""
    taken: set[str] = set()
    files = {}
    for criterion in catalogue:
        stem = re.sub(r"[^A-Za-z0-9_.-]", "-", criterion.name).strip(".") or "criterion"
        name, n = stem, 1
        while name.lower() in taken:
            n += 1
            name = f"{stem}-{n}"
        taken.add(name.lower())
        files[criterion.iri] = f"criteria/{name}.html"
    return files


def _term_pages(findings: list[FindingCategory], procedures: ProcedureTable) -> dict[str, str]:
    pages = {c.iri: f"findings.html#{c.anchor}" for c in findings}
    for category in findings:
        for finding in category.findings:
            if finding.anchor and finding.concept.iri:
                pages[finding.concept.iri] = f"findings.html#{finding.anchor}"
    for procedure in procedures.procedures:
        if procedure.concept.iri:
            pages[procedure.concept.iri] = f"procedures.html#{procedure.anchor}"
    return pages


def read_site(kb: KnowledgeBase) -> SiteData:
    """What the site shows."""
    vocab = Vocabulary(kb.ontology)
    catalogue = CriteriaCatalogue(kb, vocab)
    findings = finding_categories(kb.ontology, vocab, catalogue.codings)
    procedures = procedure_table(kb.ontology, vocab, catalogue.codings)
    files = _file_names(catalogue)
    terms = _term_pages(findings, procedures)
    # The diagram's links lead from the top of the site, where diagram.html and the SVG file stand.
    diagram = decision_diagram(kb, catalogue, lambda iri: files.get(iri) or terms.get(iri))
    return SiteData(
        header=read_header(kb.ontology, vocab),
        criteria=catalogue,
        findings=findings,
        procedures=procedures,
        queries=[api_query(q) for q in kb.queries.values()],
        criterion_files=files,
        term_pages=terms,
        diagram=diagram,
        svg=render_svg(diagram),
        triples=len(kb.ontology),
    )


def _environment() -> Environment:
    """The site's templates (``docs/``), then the server's, whose criterion page body,
    criteria table, ontology header and stylesheet the site shares."""
    env = Environment(
        loader=ChoiceLoader(
            [
                PackageLoader("reasoner.authoring", "templates"),
                PackageLoader("reasoner.server.pages", "templates"),
            ]
        ),
        autoescape=True,  # every value is HTML-escaped unless a template says otherwise
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(disclaimer=DISCLAIMER, version=__version__)
    env.filters["anchor"] = anchor
    return env


@dataclass
class BuiltSite:
    """What was written, for the command's report."""

    files: list[str] = field(default_factory=list)
    pages: list[tuple[str, str]] = field(default_factory=list)
    """(page, what it holds), in the order of the site's navigation."""


def _prepare(out_dir: Path) -> None:
    """Make ``out_dir`` ready: new, empty, or a site built before (whose files go)."""
    try:
        output_dir.prepare(out_dir, MARKER, "lbp-imaging docs")
    except output_dir.OutputDirError as exc:
        raise DocsError(str(exc)) from None
    (out_dir / "criteria").mkdir(parents=True, exist_ok=True)


def build_site(kb: KnowledgeBase, out_dir: Path) -> BuiltSite:
    """Write the site for ``kb`` into ``out_dir``."""
    data = read_site(kb)
    _prepare(out_dir)
    env = _environment()
    built = BuiltSite()

    def write(path: str, text: str) -> None:
        (out_dir / path).write_text(text, encoding="utf-8")
        built.files.append(path)

    def page(path: str, template: str, title: str, what: str | None = None, **context: object) -> None:
        pages = Pages(data, "../" * path.count("/"))
        write(path, env.get_template(template).render(site=pages, title=title, **context))
        if what:
            built.pages.append((path, what))

    header, diagram = data.header, data.diagram
    version = f"{header.title}, version {header.version}" if header.version else header.title
    page("index.html", "docs/index.html", header.title, version, header=header)
    what = f"{len(data.criterion_files)} criteria, rules and closed-world outcomes, a page each in criteria/"
    page("criteria.html", "docs/criteria.html", "Criteria", what)
    for criterion in data.criteria:
        page(data.criterion_files[criterion.iri], "docs/criterion.html", criterion.label, criterion=criterion)
    what = f"{data.finding_count} findings in {len(data.findings)} categories"
    page("findings.html", "docs/findings.html", "Findings", what)
    page(
        "procedures.html",
        "docs/procedures.html",
        "Procedures",
        f"{len(data.procedures.procedures)} procedures",
    )
    what = f"decision diagram: {len(diagram.boxes)} boxes, {len(diagram.arrows)} arrows (also {SVG_FILE})"
    # The SVG is generated with every piece of text XML-escaped (layered_svg).
    page("diagram.html", "docs/diagram.html", "Decision diagram", what, svg=Markup(data.svg))
    page("queries.html", "docs/queries.html", "Named queries", f"{len(data.queries)} named queries")
    write(SVG_FILE, '<?xml version="1.0" encoding="UTF-8"?>\n' + data.svg + "\n")
    write("style.css", env.get_template("style.css").render() + env.get_template("docs/site.css").render())
    output_dir.record(out_dir, MARKER, built.files)
    return built
