"""Everything the web pages need, built once per app: templates, the ontology header, the
criteria catalogue, the named queries and the case desk (with the app's assessor).

Built on the first page request rather than at start, so that a server used only as a
SPARQL endpoint never pays for it; the dependency that builds it runs on the event loop
(``async``), so two first requests cannot build two.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request
from jinja2 import Environment, PackageLoader, StrictUndefined

from ... import DISCLAIMER, __version__
from ...knowledge import NamedQuery
from ...pipeline.tree import Node
from ..state import ServerState, server_state
from .case_form import FORMATS, CaseDesk
from .criteria_catalogue import CriteriaCatalogue
from .labels import anchor
from .ontology_header import read_header


@dataclass(frozen=True)
class LinkedSpan:
    """A span of an explanation tree, with the page it links to (if any)."""

    text: str
    style: str | None
    href: str | None


@dataclass(frozen=True)
class LinkedNode:
    spans: tuple[LinkedSpan, ...]
    children: tuple[LinkedNode, ...]


class Site:
    def __init__(self, state: ServerState):
        self.desk = CaseDesk(state.assessor, state.case_lock)
        kb = state.assessor.kb
        vocab = state.assessor.vocab
        self.header = read_header(kb.ontology, vocab)
        self.criteria = CriteriaCatalogue(kb, vocab)
        self.queries: dict[str, NamedQuery] = kb.queries
        self.templates = Environment(
            loader=PackageLoader("reasoner.server.pages", "templates"),
            autoescape=True,  # every value is HTML-escaped unless a template says otherwise
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(disclaimer=DISCLAIMER, version=__version__, formats=FORMATS)

    def render(self, template: str, **context: object) -> str:
        """The page ``template`` with ``context``; templates reach this object as ``site``."""
        return self.templates.get_template(template).render(site=self, **context)

    # -- links, as the templates shared with the documentation site ask for them ----------
    criteria_href = "/criteria"

    def criterion_href(self, iri: str | None) -> str | None:
        """The criteria-browser page of a criterion IRI, or None if it is not one."""
        criterion = self.criteria.by_iri.get(iri or "")
        return f"/criteria/{quote(criterion.name, safe='')}" if criterion else None

    def query_href(self, name: str) -> str:
        """The query page with the named query loaded."""
        return f"/query?name={quote(name, safe='')}"

    def term_href(self, iri: str | None) -> None:
        """No page of its own for other terms: their IRIs dereference to plain term pages,
        which the criteria browser does not link (the documentation site does)."""
        return None

    def linked_tree(self, node: Node, context: str | None = None) -> LinkedNode:
        """``node`` with links: a criterion to its page, a source statement to its quote
        highlighted on the page of the criterion it is listed under (``context``)."""
        spans = []
        for span in node.spans:
            href = self.criterion_href(span.ref)
            if href:
                context = href
            elif span.ref and context and span.ref in self.criteria.quotes:
                href = f"{context}#{anchor(span.ref)}"
            spans.append(LinkedSpan(span.text, span.style, href))
        return LinkedNode(tuple(spans), tuple(self.linked_tree(child, context) for child in node.children))


async def site(request: Request) -> Site:
    """The app's ``Site``, built on first use."""
    found = getattr(request.app.state, "site", None)
    if found is None:
        found = request.app.state.site = Site(server_state(request))
    return found
