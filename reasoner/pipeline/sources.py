"""Check source statements against the verbatim source documents.

Each statement carries a W3C Web Annotation ``oa:TextQuoteSelector`` (exact text with
optional prefix and suffix) and optionally an ``oa:TextPositionSelector`` (code-point
offsets). A quote is accepted when it is found in its document with whitespace
normalised, when prefix and suffix make it unique if the text repeats, and when any
position selector points at it exactly.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from rdflib import RDF, Graph, Literal, Namespace, URIRef

from ..knowledge import LBP

OA = Namespace("http://www.w3.org/ns/oa#")
_WS = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Collapse runs of whitespace to one space, so line breaks in a quote do not matter."""
    return _WS.sub(" ", text).strip()


@dataclass(frozen=True)
class Quote:
    """One statement's selectors, as read from the graph."""

    statement: URIRef
    document: URIRef
    exact: str
    prefix: str | None
    suffix: str | None
    start: int | None
    end: int | None


@dataclass(frozen=True)
class QuoteProblem:
    statement: URIRef
    problem: str

    def __str__(self) -> str:
        return f"{self.statement}: {self.problem}"


def _literal(graph: Graph, node, prop) -> str | None:
    value = graph.value(node, prop)
    return str(value) if isinstance(value, Literal) else None


def read_quotes(graph: Graph) -> list[Quote]:
    """Every node with a text quote selector."""
    quotes = []
    for statement, selector in graph.subject_objects(OA.hasSelector):
        if (selector, RDF.type, OA.TextQuoteSelector) not in graph:
            continue
        start = end = None
        for other in graph.objects(statement, OA.hasSelector):
            if (other, RDF.type, OA.TextPositionSelector) in graph:
                start = int(graph.value(other, OA.start))
                end = int(graph.value(other, OA.end))
        quotes.append(
            Quote(
                statement=statement,
                document=graph.value(statement, OA.hasSource),
                exact=_literal(graph, selector, OA.exact) or "",
                prefix=_literal(graph, selector, OA.prefix),
                suffix=_literal(graph, selector, OA.suffix),
                start=start,
                end=end,
            )
        )
    return sorted(quotes, key=lambda q: str(q.statement))


def document_text(graph: Graph, document: URIRef, ontology_dir: Path) -> str:
    """The verbatim text of a source document, from its ``lbp:localFile``."""
    local = graph.value(document, LBP.localFile)
    if local is None:
        raise FileNotFoundError(f"{document} has no lbp:localFile")
    return (ontology_dir / str(local)).read_text(encoding="utf-8")


def _occurrences(haystack: str, needle: str) -> list[int]:
    return [m.start() for m in re.finditer(re.escape(needle), haystack)] if needle else []


def _spaced(text: str) -> str:
    """A regex for ``text`` that allows any whitespace where it has some."""
    return r"\s+".join(map(re.escape, text.split()))


def locate(quote: Quote, text: str) -> tuple[int, int] | None:
    """Where ``quote`` is in its document ``text``, as code-point offsets ``(start, end)``.

    The position selector is used when it points at the quote exactly; otherwise (an
    edited document, a statement without positions) the quote is searched for with any
    whitespace between its words, inside its prefix and suffix when it has them, so that
    a quote that repeats is found where it was taken from. None when it is not found.
    """
    if quote.start is not None and quote.end is not None and text[quote.start : quote.end] == quote.exact:
        return quote.start, quote.end
    if not quote.exact.split():
        return None
    exact = f"({_spaced(quote.exact)})"
    prefix = _spaced(quote.prefix or "")
    suffix = _spaced(quote.suffix or "")
    for pattern in (rf"{prefix}\s*{exact}\s*{suffix}", exact):
        if match := re.search(pattern, text):
            return match.span(1)
    return None


def check_quote(quote: Quote, text: str) -> list[str]:
    """Problems with one quote against its document text (empty when it checks out)."""
    problems = []
    norm_text, exact = normalise(text), normalise(quote.exact)
    if not exact:
        return ["empty oa:exact"]
    hits = _occurrences(norm_text, exact)
    if not hits:
        return [f"quote not found verbatim in its document: {quote.exact[:80]!r}"]
    if len(hits) > 1:
        if not (quote.prefix or quote.suffix):
            problems.append(f"quote occurs {len(hits)} times and has no oa:prefix/oa:suffix")
        else:
            context = normalise((quote.prefix or "") + quote.exact + (quote.suffix or ""))
            if len(_occurrences(norm_text, context)) != 1:
                problems.append("oa:prefix/oa:suffix do not make the quote unique")
    if quote.start is not None and quote.end is not None and text[quote.start : quote.end] != quote.exact:
        problems.append(
            f"text position selector {quote.start}-{quote.end} points at "
            f"{text[quote.start : quote.end][:60]!r}, not at the quote"
        )
    return problems


def check_documents(graph: Graph, ontology_dir: Path) -> list[QuoteProblem]:
    """Checksum of every source document's local copy against its ``lbp:sha256``."""
    problems = []
    for document, local in graph.subject_objects(LBP.localFile):
        path = ontology_dir / str(local)
        if not path.is_file():
            problems.append(QuoteProblem(document, f"local file {path} missing"))
            continue
        expected = graph.value(document, LBP.sha256)
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if expected is not None and str(expected) != actual:
            problems.append(QuoteProblem(document, f"sha256 of {path} is {actual}, not {expected}"))
    return problems


def check_quotes(graph: Graph, ontology_dir: Path) -> list[QuoteProblem]:
    """Every statement's quote and positions, against the documents' local copies."""
    problems = check_documents(graph, ontology_dir)
    texts: dict[URIRef, str] = {}
    for quote in read_quotes(graph):
        if quote.document is None:
            problems.append(QuoteProblem(quote.statement, "no oa:hasSource"))
            continue
        if quote.document not in texts:
            try:
                texts[quote.document] = document_text(graph, quote.document, ontology_dir)
            except OSError as exc:
                problems.append(QuoteProblem(quote.statement, str(exc)))
                continue
        problems += [QuoteProblem(quote.statement, p) for p in check_quote(quote, texts[quote.document])]
    return problems
