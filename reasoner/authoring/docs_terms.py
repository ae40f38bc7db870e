"""The findings and procedures of the knowledge base, as the documentation site lists them.

Findings are listed by category: the class tree under ``lbp:ClinicalFinding`` (the range of
``lbp:hasFinding``), depth first, each category with its definition, the condition it
raises suspicion of, whether a closure axiom closes it (an ``owl:oneOf`` superclass, which
lets a criterion over it be ruled out), and its members with their synonyms, codes and
coding status.
Procedures are the individuals of the classes under ``lbp:DiagnosticProcedure``; the
properties that most procedures have one value of and none has two of (modality,
contrast, radiation…, whatever the ontology gives) make the columns of a summary table,
and every other property is listed per procedure. "Most", not "every": a kind of
procedure that names no study (a referral) has no modality, and one such procedure must
not empty the table. Read generically, so that a new property, category or procedure in
the Turtle shows up with no code change.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rdflib import RDF, RDFS, Graph, Literal, URIRef
from rdflib.namespace import SKOS

from ..knowledge import LBP
from ..pipeline.explain import Vocabulary
from ..server.pages.codings import MATCHES, Codings, Concept
from ..server.pages.labels import anchor, property_label
from .closure import closures

SHOWN_APART = {RDF.type, RDFS.label, SKOS.altLabel, SKOS.definition, LBP.codingStatus, *MATCHES}
"""Properties a procedure's page shows in their own place, not among its other properties."""


def _texts(graph: Graph, node: URIRef, prop: URIRef) -> tuple[str, ...]:
    return tuple(sorted(str(o) for o in graph.objects(node, prop) if isinstance(o, Literal)))


def _classes_below(graph: Graph, cls: URIRef) -> list[URIRef]:
    return [c for c in graph.subjects(RDFS.subClassOf, cls) if isinstance(c, URIRef)]


@dataclass(frozen=True)
class Finding:
    concept: Concept
    anchor: str | None
    """The id of its row: only where it is listed first (a finding of two categories is listed twice)."""
    synonyms: tuple[str, ...]
    definition: str | None


@dataclass(frozen=True)
class FindingCategory:
    iri: str
    label: str
    anchor: str
    path: tuple[str, ...]
    """The labels of the categories above it, outermost first."""
    definition: str | None
    suspected: tuple[Concept, ...]
    findings: tuple[Finding, ...]
    closed: bool
    """Whether a closure axiom lists its findings, so that a case can be known to have none."""


def finding_categories(graph: Graph, vocab: Vocabulary, codings: Codings) -> list[FindingCategory]:
    """Every category under the finding root that has findings or subcategories, depth first."""
    found: list[FindingCategory] = []
    listed: set[str] = set()
    closed = {c.category for c in closures(graph)}

    def visit(cls: URIRef, above: tuple[URIRef, ...]) -> None:
        members = sorted(
            (m for m in graph.subjects(RDF.type, cls) if isinstance(m, URIRef)),
            key=lambda m: vocab.label(str(m)),
        )
        findings = []
        for member in members:
            iri = str(member)
            findings.append(
                Finding(
                    codings.concept(member),
                    None if iri in listed else anchor(iri),
                    _texts(graph, member, SKOS.altLabel),
                    next(iter(_texts(graph, member, SKOS.definition)), None),
                )
            )
            listed.add(iri)
        below = sorted(_classes_below(graph, cls), key=lambda c: vocab.label(str(c)))
        if findings or below:
            found.append(
                FindingCategory(
                    str(cls),
                    vocab.label(str(cls)),
                    anchor(str(cls)),
                    tuple(vocab.label(str(c)) for c in above),
                    next(iter(_texts(graph, cls, SKOS.definition)), None),
                    tuple(codings.concept(c) for c in sorted(graph.objects(cls, LBP.suspectedCondition))),
                    tuple(findings),
                    cls in closed,
                )
            )
        for sub in below:
            if sub not in above:  # a cycle of subclasses (equivalent classes) is walked once
                visit(sub, (*above, cls))

    for top in sorted(_classes_below(graph, LBP.ClinicalFinding), key=lambda c: vocab.label(str(c))):
        visit(top, ())
    return found


@dataclass(frozen=True)
class Value:
    """A property value: its label, its IRI (a term) or None (a literal), its notation."""

    label: str
    iri: str | None
    notation: str | None
    definition: str | None


@dataclass(frozen=True)
class Column:
    iri: str
    label: str
    definition: str | None


@dataclass(frozen=True)
class Procedure:
    concept: Concept
    anchor: str
    kind: str
    definition: str | None
    synonyms: tuple[str, ...]
    summary: tuple[Value | None, ...]
    """One value per column of the summary table (None where the procedure has none)."""
    details: tuple[tuple[str, tuple[Value, ...]], ...]
    """Every other property: its label and its values."""


@dataclass(frozen=True)
class ProcedureTable:
    columns: tuple[Column, ...]
    procedures: tuple[Procedure, ...]


def _value(graph: Graph, vocab: Vocabulary, term: object) -> Value:
    if isinstance(term, URIRef):
        notation = graph.value(term, SKOS.notation)
        definition = graph.value(term, SKOS.definition)
        return Value(
            vocab.label(str(term)),
            str(term),
            str(notation) if notation is not None else None,
            str(definition) if definition is not None else None,
        )
    if isinstance(term, Literal) and isinstance(term.toPython(), bool):
        return Value("yes" if term.toPython() else "no", None, None, None)
    return Value(str(term), None, None, None)


def procedure_table(graph: Graph, vocab: Vocabulary, codings: Codings) -> ProcedureTable:
    classes = set(graph.transitive_subjects(RDFS.subClassOf, LBP.DiagnosticProcedure))
    members = {m for c in classes for m in graph.subjects(RDF.type, c) if isinstance(m, URIRef)}
    ordered = sorted(members, key=lambda m: vocab.label(str(m)).lower())
    counts = [Counter(p for p in graph.predicates(m) if p not in SHOWN_APART) for m in ordered]
    held = Counter(p for c in counts for p in c)
    columns = sorted(
        (p for p, n in held.items() if 2 * n > len(counts) and all(c[p] <= 1 for c in counts)),
        key=lambda p: property_label(vocab, str(p)),
    )
    procedures = []
    for member in ordered:
        kinds = [t for t in graph.objects(member, RDF.type) if t in classes]
        others = sorted(
            {p for p in graph.predicates(member) if p not in SHOWN_APART and p not in columns},
            key=lambda p: property_label(vocab, str(p)),
        )
        procedures.append(
            Procedure(
                codings.concept(member),
                anchor(str(member)),
                ", ".join(sorted(vocab.label(str(k)) for k in kinds)),
                next(iter(_texts(graph, member, SKOS.definition)), None),
                _texts(graph, member, SKOS.altLabel),
                tuple(
                    _value(graph, vocab, value) if (value := graph.value(member, p)) is not None else None
                    for p in columns
                ),
                tuple(
                    (
                        property_label(vocab, str(p)),
                        tuple(_value(graph, vocab, o) for o in sorted(graph.objects(member, p))),
                    )
                    for p in others
                ),
            )
        )
    header = tuple(
        Column(str(p), property_label(vocab, str(p)), next(iter(_texts(graph, p, SKOS.definition)), None))
        for p in columns
    )
    return ProcedureTable(header, tuple(procedures))
