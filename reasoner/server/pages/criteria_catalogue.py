"""The criteria as the criteria browser shows them, read from the knowledge base once.

Each criterion (every defined class, and every closed-world concept that names the query
deciding it) with its outcome and suspected condition (with their codes, ``codings``),
its logic in words (``definition_words``), its ACR alignment and notes, and its source
statements located inside the verbatim source documents (``sources.locate``), so that a
page can show each quote highlighted where it stands. Everything comes from the
ontology: nothing here knows a clinical term. The server's criteria browser and the
static documentation site (``authoring.docs_site``) both show it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise

from rdflib import RDF, RDFS, Graph, Literal, URIRef
from rdflib.namespace import SKOS

from ...knowledge import LBP, KnowledgeBase
from ...pipeline.definitions import compile_definitions
from ...pipeline.explain import Vocabulary
from ...pipeline.sources import Quote, document_text, locate, read_quotes
from .codings import Codings, Concept
from .definition_words import DefinitionWords, Word
from .labels import anchor, local_name, property_label

# The outcome properties shown first, in this order; any other hasValue restriction follows.
OUTCOME_ORDER = (LBP.indicatesProcedure, LBP.hasUrgency, LBP.hasAppropriateness)
KIND_ORDER = ("criterion", "rule", "closed-world")


@dataclass(frozen=True)
class Segment:
    """A run of a source document's text, highlighted when a statement covers it."""

    text: str
    marked: bool = False
    anchors: tuple[str, ...] = ()
    """Ids of the statements that start here."""


@dataclass(frozen=True)
class Document:
    iri: str
    title: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Statement:
    iri: str
    anchor: str
    quote: str
    kind: str | None
    relation: str
    """How the criterion cites it (the citing property's label)."""
    document: str | None
    located: bool


@dataclass(frozen=True)
class Outcome:
    """One ``owl:hasValue`` restriction of the criterion: the property and its value."""

    property: str
    property_iri: str
    value: Concept


@dataclass(frozen=True)
class Term:
    """A class the logic names, with the individuals that belong to it."""

    iri: str
    label: str
    members: tuple[str, ...]


@dataclass
class Criterion:
    name: str
    iri: str
    label: str
    kind: str
    groups: list[str]
    definition: str | None
    outcomes: list[Outcome]
    conditions: list[Concept]
    """What the criterion raises suspicion of (``lbp:suspectedCondition``)."""
    logic: list[Word]
    closed_world_query: str | None
    terms: list[Term]
    acr_variants: list[tuple[str, str | None]]
    acr_notes: list[str]
    guidelines: list[str]
    notes: list[str]
    statements: list[Statement] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)


def segments(text: str, spans: dict[str, tuple[int, int]]) -> tuple[Segment, ...]:
    """``text`` cut at every statement boundary; overlapping statements stay marked
    throughout, and each statement's id sits on the segment where it starts."""
    cuts = sorted({0, len(text), *(i for span in spans.values() for i in span)})
    found = []
    for a, b in pairwise(cuts):
        covering = [s for s, (start, end) in spans.items() if start <= a < end]
        starting = tuple(sorted(s for s, (start, _) in spans.items() if start == a))
        found.append(Segment(text[a:b], bool(covering), starting))
    return tuple(found)


class CriteriaCatalogue:
    """Every criterion by name, in browsing order."""

    def __init__(self, kb: KnowledgeBase, vocab: Vocabulary):
        self.g: Graph = kb.ontology
        self.vocab = vocab
        self.ontology_dir = kb.ontology_dir
        self.codings = Codings(self.g, vocab)
        formulas = compile_definitions(self.g)
        self.words = DefinitionWords(self.g, formulas, vocab.label)
        self.quotes: dict[str, Quote] = {str(q.statement): q for q in read_quotes(self.g)}
        self._texts: dict[str, str] = {}
        closed_world = [s for s in self.g.subjects(LBP.closedWorldQuery, None) if isinstance(s, URIRef)]
        built = [self._criterion(c, c in formulas) for c in [*formulas, *closed_world]]
        built.sort(key=lambda c: (KIND_ORDER.index(c.kind), c.groups, c.label.lower()))
        self.by_name: dict[str, Criterion] = {c.name: c for c in built}
        self.by_iri: dict[str, Criterion] = {c.iri: c for c in built}

    def __iter__(self) -> Iterator[Criterion]:
        return iter(self.by_name.values())

    # -- reading the graph ----------------------------------------------------------------
    def _labels(self, iri: URIRef, prop: URIRef) -> list[str]:
        """Labels of the named values of ``prop`` (anonymous restrictions are left out)."""
        return sorted(self.vocab.label(str(o)) for o in self.g.objects(iri, prop) if isinstance(o, URIRef))

    def _texts_of(self, iri: URIRef, prop: URIRef) -> list[str]:
        return [str(o) for o in self.g.objects(iri, prop) if isinstance(o, Literal)]

    def _outcomes(self, iri: str) -> list[Outcome]:
        found = self.vocab.restrictions(iri)
        order = [str(p) for p in OUTCOME_ORDER if str(p) in found]
        order += sorted(set(found) - set(order), key=self.vocab.label)
        return [Outcome(self.vocab.label(p), p, self.codings.concept(found[p])) for p in order]

    def _members(self, cls: URIRef) -> tuple[str, ...]:
        classes = set(self.g.transitive_subjects(RDFS.subClassOf, cls))
        members = {m for c in classes for m in self.g.subjects(RDF.type, c) if isinstance(m, URIRef)}
        return tuple(sorted({self.vocab.label(str(m)) for m in members}, key=str.lower))

    def _terms(self, logic: list[Word], formulas_named: set[str]) -> list[Term]:
        """The classes the logic names (other than defined ones, which have their own
        pages), with their members, so a reader sees what each category covers."""
        seen: dict[str, Term] = {}
        for word in logic:
            if word.ref and word.ref not in formulas_named and word.ref not in seen:
                members = self._members(URIRef(word.ref))
                if members:
                    seen[word.ref] = Term(word.ref, self.vocab.label(word.ref), members)
        return list(seen.values())

    def _criterion(self, cls: URIRef, defined: bool) -> Criterion:
        iri = str(cls)
        entry = self.vocab.class_entry(iri)
        logic = self.words.words(cls) if defined else []
        query = next(iter(self._texts_of(cls, LBP.closedWorldQuery)), None)
        criterion = Criterion(
            name=iri.removeprefix(str(LBP)) if iri.startswith(str(LBP)) else local_name(iri),
            iri=iri,
            label=entry["label"],
            kind=entry["kind"],
            groups=self._labels(cls, RDFS.subClassOf),
            definition=next(iter(self._texts_of(cls, SKOS.definition)), None),
            outcomes=self._outcomes(iri),
            conditions=[self.codings.concept(c) for c in sorted(self.g.objects(cls, LBP.suspectedCondition))],
            logic=logic,
            closed_world_query=query,
            terms=self._terms(logic, {str(c) for c in self.words.formulas}),
            acr_variants=[
                (self.vocab.label(str(v)), next(iter(self._texts_of(v, SKOS.definition)), None))
                for v in sorted(self.g.objects(cls, LBP.acrVariant))
            ],
            acr_notes=self._texts_of(cls, LBP.acrAlignmentNote),
            guidelines=self._labels(cls, LBP.supportingGuideline),
            notes=self._texts_of(cls, SKOS.editorialNote) + self._texts_of(cls, LBP.caveat),
        )
        self._add_statements(criterion, cls)
        return criterion

    # -- statements inside their documents ------------------------------------------------
    def _text(self, document: str) -> str:
        if document not in self._texts:
            self._texts[document] = document_text(self.g, URIRef(document), self.ontology_dir)
        return self._texts[document]

    def _add_statements(self, criterion: Criterion, cls: URIRef) -> None:
        """Every statement the class cites, by whichever property, each located in its document."""
        spans: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
        cited = sorted((str(p), str(o)) for p, o in self.g.predicate_objects(cls) if str(o) in self.quotes)
        for prop, target in cited:
            quote = self.quotes[target]
            document = str(quote.document) if quote.document is not None else None
            span = locate(quote, self._text(document)) if document is not None else None
            if span is not None and document is not None:
                spans[document][anchor(target)] = span
            entry = self.vocab.statement(target)
            criterion.statements.append(
                Statement(
                    iri=target,
                    anchor=anchor(target),
                    quote=quote.exact,
                    kind=entry["kind"],
                    relation=property_label(self.vocab, prop),
                    document=(entry["document"] or {}).get("title"),
                    located=span is not None,
                )
            )
        criterion.statements.sort(key=lambda s: (s.document or "", s.anchor))
        for document, found in sorted(spans.items()):
            criterion.documents.append(
                Document(document, self.vocab.label(document), segments(self._text(document), found))
            )
