"""Explain each case's recommendation: criteria, facts, procedures and source quotes.

Turns a selection (IRIs) into the result every output format renders: labels, codes and
verbatim source statements are read from the knowledge base, so a relabelled concept or
a new statement shows up without a code change. The keys of ``CaseResult.to_dict`` are
the documented JSON schema (docs/output-schema.md) and stay stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, cached_property, lru_cache, partial

import pyoxigraph as ox
from rdflib import OWL, RDF, RDFS, BNode, Graph, Literal, URIRef
from rdflib.namespace import PROV, SKOS

from .. import DISCLAIMER
from ..knowledge import LBP, graph_quads
from .cases import Fact
from .definitions import INTEGER_FAMILY
from .select import Selection
from .sources import OA

MATCHES = (SKOS.exactMatch, SKOS.closeMatch, SKOS.narrowMatch, SKOS.broadMatch)
CAVEAT, ALTERNATIVE_PROCEDURE, CONTRAST_LOST_CAVEAT = (
    LBP.caveat,
    LBP.alternativeProcedure,
    LBP.contrastLostCaveat,
)
# Explanation parts kept per distinct input (see ``explain``): the last this many of each.
PARTS_KEPT = 4096


class Vocabulary:
    """Read-only lookups into the ontology graph, cached per IRI."""

    def __init__(self, ontology: Graph, quads: list[ox.Quad] | None = None):
        self.g = ontology
        self.quads = quads  # the same triples for pyoxigraph's SPARQL (None: converted on need)
        self.systems = {
            str(self.g.value(s, LBP.conceptIriPrefix)): str(self.g.value(s, LBP.fhirSystem))
            for s in self.g.subjects(LBP.conceptIriPrefix, None)
        }
        self.label = cache(self._label)
        self.concept = cache(self._concept)
        self.ref = cache(self._ref)
        self.statement = cache(self._statement)
        self.restrictions = cache(self._restrictions)
        self.is_criterion = cache(self._is_criterion)
        self.sources = cache(self._sources)
        self.class_entry = cache(self._class_entry)
        self.rank_of = cache(self._rank_of)
        self.effect_label = cache(self._effect_label)
        self.condition_of = cache(self._condition_of)
        self.display_order = cache(self._display_order)
        self.notation = cache(self._notation)
        self.unit = cache(self._unit)
        self.suspected = cache(self._suspected)
        self.category_of = cache(self._category_of)
        self.completes = cache(self._completes)
        self.annotation = cache(self._annotation)
        self.urgency_order = cache(self._urgency_order)
        self.criteria_part = lru_cache(PARTS_KEPT)(partial(_criteria_part, self))
        self.selection_part = lru_cache(PARTS_KEPT)(partial(_selection_part, self))
        self.functional = {str(p) for p in self.g.subjects(RDF.type, OWL.FunctionalProperty)}
        self.shown_with = tuple(str(s) for s in sorted(self.g.objects(LBP.Recommendation, LBP.shownWith)))
        self.source_caveats = [self._source_caveat(s) for s in self.shown_with]
        self.facts: dict[Fact, dict] = {}  # fact dicts, shared between cases

    def _label(self, iri: str) -> str:
        node = URIRef(iri)
        labels = list(self.g.objects(node, RDFS.label))
        english = [lb for lb in labels if getattr(lb, "language", None) in ("en", None)]
        if english:
            return str(english[0])
        return iri.rsplit("/", 1)[-1].rsplit("#", 1)[-1]

    def codes(self, iri: str) -> list[dict]:
        found = []
        for prop in MATCHES:
            for target in sorted(self.g.objects(URIRef(iri), prop)):
                for prefix, system in self.systems.items():
                    if str(target).startswith(prefix):
                        found.append(
                            {
                                "system": system,
                                "code": str(target)[len(prefix) :],
                                "match": prop.split("#")[-1],
                            }
                        )
        return found

    def _concept(self, iri: str) -> dict:
        """A concept with its codes (for procedures, where codes are needed to order)."""
        return {"iri": iri, "label": self.label(iri), "codes": self.codes(iri)}

    def _ref(self, iri: str) -> dict:
        """A concept by IRI and label only (facts, red flags): codes are in the ontology."""
        return {"iri": iri, "label": self.label(iri)}

    def _statement(self, iri: str) -> dict:
        node = URIRef(iri)
        exact = next(
            (
                self.g.value(sel, OA.exact)
                for sel in self.g.objects(node, OA.hasSelector)
                if self.g.value(sel, OA.exact) is not None
            ),
            None,
        )
        document = self.g.value(node, OA.hasSource)
        kinds = [t for t in self.g.objects(node, RDF.type) if t != OWL.NamedIndividual]
        return {
            "iri": iri,
            "quote": str(exact) if exact is not None else None,
            "kind": self.label(str(kinds[0])) if kinds else None,
            "document": {"iri": str(document), "title": self.label(str(document))} if document else None,
        }

    def _sources(self, iri: str) -> tuple[str, ...]:
        return tuple(str(s) for s in sorted(self.g.objects(URIRef(iri), PROV.wasDerivedFrom)))

    def _source_caveat(self, iri: str) -> str:
        """A statement shown with every recommendation, quoted with its document."""
        statement = self.statement(iri)
        document = (statement["document"] or {}).get("title", "source")
        return f"Source caveat ({document}): \u201c{statement['quote']}\u201d"

    @cached_property
    def trigger_ranks(self) -> dict[str, int]:
        """Per finding, the urgency rank of the most urgent criterion whose definition reads
        it (by its own IRI or a category it belongs to): how urgent what it could trigger
        is. One query for every finding, by pyoxigraph (a few milliseconds; rdflib's engine
        took 0.1 s and its SPARQL grammar 0.2 s to import, half a one-case run's start-up)."""
        store = ox.Store()
        store.bulk_extend(self.quads if self.quads is not None else graph_quads(self.g))
        rows = store.query(
            f"""PREFIX owl: <{OWL}> PREFIX rdf: <{RDF}> PREFIX rdfs: <{RDFS}> PREFIX lbp: <{LBP}>
            SELECT ?finding (MAX(?rank) AS ?top) WHERE {{
              ?criterion rdfs:subClassOf [ owl:onProperty lbp:hasUrgency ; owl:hasValue ?urgency ] .
              ?urgency lbp:urgencyRank ?rank .
              ?criterion owl:equivalentClass
                  /(owl:equivalentClass|owl:intersectionOf|owl:unionOf|rdf:rest|rdf:first)*
                  /(owl:someValuesFrom|owl:hasValue) ?target .
              ?finding (rdf:type/rdfs:subClassOf*)? ?target .
            }} GROUP BY ?finding"""
        )
        return {
            row["finding"].value: int(row["top"].value)
            for row in rows
            if isinstance(row["finding"], ox.NamedNode)
        }

    def trigger_rank(self, finding: str) -> int:
        """The urgency rank of what a finding could trigger (0 when no criterion reads it)."""
        return self.trigger_ranks.get(finding, 0)

    def by_urgency(self, findings: list[str]) -> list[str]:
        """Findings ordered by the urgency of what they could trigger, most urgent first."""
        return sorted(findings, key=self.urgency_order)

    def _urgency_order(self, finding: str) -> tuple[int, str]:
        return -self.trigger_rank(finding), self.label(finding)

    def _completes(self, iri: str) -> tuple[str, ...]:
        """The criteria whose first-line pathway a pathway completion rule completes."""
        return tuple(str(c) for c in self.g.objects(URIRef(iri), LBP.completesPathwayOf))

    def _annotation(self, iri: str, prop: URIRef) -> tuple[str, ...]:
        """The English (or untagged) literal values of an annotation on a term."""
        return tuple(
            str(v) for v in self.g.objects(URIRef(iri), prop) if getattr(v, "language", None) in ("en", None)
        )

    def is_functional(self, prop: str) -> bool:
        return prop in self.functional

    def _unit(self, prop: str) -> str | None:
        """The UCUM unit a numeric case property is recorded in, if the ontology gives one."""
        value = self.g.value(URIRef(prop), LBP.ucumUnit)
        return str(value) if value is not None else None

    def _effect_label(self, notation: str) -> str:
        """The label of a question effect, from its notation."""
        for node in self.g.subjects(SKOS.notation, Literal(notation)):
            return self.label(str(node))
        return notation

    def _notation(self, iri: str) -> str:
        value = self.g.value(URIRef(iri), SKOS.notation)
        return str(value) if value is not None else iri

    def _suspected(self, criterion: str) -> str:
        """What a criterion raises suspicion of, or the criterion itself if it names nothing."""
        value = self.g.value(URIRef(criterion), LBP.suspectedCondition)
        return str(value) if value is not None else criterion

    def _display_order(self, classes: tuple[str, ...]) -> tuple[str, ...]:
        """Criteria and rules in the order outputs list them: most urgent first, then by label."""
        return tuple(sorted(classes, key=lambda c: (-self.rank_of(c), self.label(c))))

    def _rank_of(self, iri: str) -> int:
        """The urgency rank of a criterion (0 for a rule or a class without urgency)."""
        urgency = self.restrictions(iri).get(str(LBP.hasUrgency))
        rank = self.g.value(urgency, LBP.urgencyRank) if urgency is not None else None
        return int(rank) if rank is not None else 0

    def _told_types(self, iri: str) -> list[URIRef]:
        return [
            t
            for t in self.g.objects(URIRef(iri), RDF.type)
            if isinstance(t, URIRef) and t != OWL.NamedIndividual
        ]

    def _condition_of(self, iri: str) -> str | None:
        """What a finding raises suspicion of (``lbp:suspectedCondition``, its own or one
        of its categories'), if the ontology says."""
        own = self.g.value(URIRef(iri), LBP.suspectedCondition)
        if own is not None:
            return str(own)
        for cls in self._told_types(iri):
            for sup in self.g.transitive_objects(cls, RDFS.subClassOf):
                if (condition := self.g.value(sup, LBP.suspectedCondition)) is not None:
                    return str(condition)
        return None

    def _category_of(self, iri: str) -> str | None:
        """A finding's most specific told category."""
        told = self._told_types(iri)
        return str(told[0]) if told else None

    def _restrictions(self, iri: str) -> dict[str, str]:
        """The owl:hasValue restrictions a class is a subclass of, by property IRI."""
        found = {}
        for sup in self.g.objects(URIRef(iri), RDFS.subClassOf):
            if isinstance(sup, BNode) and (value := self.g.value(sup, OWL.hasValue)) is not None:
                found[str(self.g.value(sup, OWL.onProperty))] = value
        return found

    def _is_criterion(self, iri: str) -> bool:
        return (URIRef(iri), RDFS.subClassOf * "+", LBP.ImagingCriterion) in self.g

    def _kind(self, iri: str) -> str:
        if self.is_criterion(iri):
            return "criterion"
        if (URIRef(iri), RDFS.subClassOf * "+", LBP.NoImagingIndicated) in self.g:
            return "closed-world"
        return "rule"

    def outcome_of(self, iri: str, prop: URIRef) -> dict | None:
        value = self.restrictions(iri).get(str(prop))
        return self.concept(str(value)) if isinstance(value, URIRef) else None

    def _class_entry(self, iri: str) -> dict:
        """The part of a criterion's explanation that is the same for every case."""
        return {
            "iri": iri,
            "label": self.label(iri),
            "kind": self._kind(iri),
            "indicates": self.outcome_of(iri, LBP.indicatesProcedure),
            "urgency": self.outcome_of(iri, LBP.hasUrgency),
            "appropriateness": self.outcome_of(iri, LBP.hasAppropriateness),
            "acrVariants": [self.label(str(v)) for v in sorted(self.g.objects(URIRef(iri), LBP.acrVariant))],
            "sources": list(self.sources(iri)),
        }


_XSD = "http://www.w3.org/2001/XMLSchema#"
_INTEGERS = {str(t) for t in INTEGER_FAMILY}


def python_value(literal: Literal) -> bool | int | float | str:
    """A JSON-native value for an rdflib literal of the knowledge base."""
    value = literal.toPython()
    if isinstance(value, bool | int | float | str):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(literal)


def _python(literal: ox.Literal) -> bool | int | float | str:
    """A JSON-native value for a literal, by its datatype; its text when ill-typed."""
    dt, text = literal.datatype.value, literal.value
    try:
        if dt in _INTEGERS:
            return int(text)
        if dt in (f"{_XSD}decimal", f"{_XSD}double", f"{_XSD}float"):
            return float(text)
        if dt == f"{_XSD}boolean" and text in ("true", "false", "1", "0"):
            return text in ("true", "1")
    except ValueError:
        pass
    return text


def _fact(vocab: Vocabulary, fact: Fact) -> dict:
    """A fact for output; the same fact (property and term) gives the same shared dict."""
    found = vocab.facts.get(fact)
    if found is None:
        found = vocab.facts[fact] = _new_fact(vocab, fact)
    return found


def _facts(vocab: Vocabulary, facts: list[Fact]) -> list[dict]:
    known = vocab.facts.get
    return [known(f) or _fact(vocab, f) for f in facts]


def _new_fact(vocab: Vocabulary, fact: Fact) -> dict:
    value = fact.value
    if isinstance(value, ox.NamedNode):
        return {"property": vocab.ref(fact.prop), "value": vocab.ref(value.value)}
    if isinstance(value, ox.Literal):
        shown = {"value": _python(value), "datatype": value.datatype.value}
    else:
        shown = {"value": str(value)}
    return {"property": vocab.ref(fact.prop), "value": shown}


# Per case, a criterion is named with whether it was selected and the facts that met it;
# what is the same for every case (outcome, ACR alignment, sources) is listed once per run.
CASE_CRITERION_KEYS = ("iri", "label", "kind", "selected", "facts")
DECISION_KEYS = (
    "status",
    "facts",
    "outcome",
    "recommendation",
    "criteria",
    "criterionStates",
    "questions",
    "redFlags",
)
"""The keys of a result (``CaseResult.to_dict``) that say what was decided from which facts:
equal for the same patient read from any input, unlike its case IRI, source, engine,
sources and warnings (which name where the data came from)."""


@dataclass
class CaseResult:
    """Everything reported about one case."""

    case: str
    source: str | None
    engine: str
    status: str  # assessed | invalid
    facts: list[dict] = field(default_factory=list)
    outcome: dict | None = None
    recommendation: dict | None = None
    criteria: list[dict] = field(default_factory=list)
    red_flags: dict = field(default_factory=dict)
    criterion_states: dict[str, str] = field(default_factory=dict)
    questions: list[dict] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)

    def met_classes(self) -> set[str]:
        """The criteria and rules the case met (not the closed-world concepts)."""
        return {c["iri"] for c in self.criteria if c["kind"] != "closed-world"}

    def undetermined(self) -> list[str]:
        """The criteria and rules the case's facts neither meet nor rule out."""
        return [c for c, state in self.criterion_states.items() if state == "undetermined"]

    def error_lines(self) -> list[str]:
        """One readable line per error, naming the file, the case and the field."""
        return [
            f"{self.source}: case {self.case}: {e['field'] or 'case'}: {e['message']}" for e in self.errors
        ]

    def to_dict(self) -> dict:
        base = {
            "case": self.case,
            "source": self.source,
            "engine": self.engine,
            "status": self.status,
        }
        if self.status != "assessed":
            return {**base, "errors": self.errors, "warnings": self.warnings, "disclaimer": DISCLAIMER}
        return {
            **base,
            "facts": self.facts,
            "outcome": self.outcome,
            "recommendation": self.recommendation,
            "criteria": [{k: c[k] for k in CASE_CRITERION_KEYS} for c in self.criteria],
            "criterionStates": self.criterion_states,
            "questions": self.questions,
            "redFlags": self.red_flags,
            "sources": self.sources,
            "warnings": self.warnings,
            "disclaimer": DISCLAIMER,
        }


def _not_selected(
    vocab: Vocabulary, entry: dict, procedures: bool, outcome: str | None, completed_by: str | None
) -> str:
    """Why a criterion the case meets was not applied: its first-line pathway is complete,
    another criterion outranked or superseded it, or the outcome (a scope exclusion) made
    no recommendation."""
    indicates, urgency = (entry["indicates"] or {}).get("label"), (entry["urgency"] or {}).get("label")
    said = f"{entry['label']} ({indicates}, {urgency})"
    if completed_by is not None:
        return f"Pathway complete: {said}; {vocab.label(completed_by)}, so its tests are not ordered again."
    if procedures:
        return f"Also met: {said}; outranked or superseded in selection."
    return f"Also met: {said}; not applied: {vocab.label(outcome or '')}."


def cited_by(results: list[CaseResult]) -> tuple[list[str], list[str]]:
    """The statement IRIs and the criterion IRIs the results cite, in first-cited order,
    for the run-level tables that list each once."""
    statements: dict[str, None] = {}
    criteria: dict[str, None] = {}
    for r in results:
        statements.update(dict.fromkeys(r.sources))
        for c in r.criteria:
            criteria[c["iri"]] = None
            statements.update(dict.fromkeys(c["sources"]))
    return list(statements), list(criteria)


def explain(
    vocab: Vocabulary,
    selection: Selection,
    memberships: dict[str, list[Fact]],
    source: str | None,
    engine: str,
    case_facts: list[Fact],
    states: dict[str, str] | None = None,
    asked: tuple[list[dict], list[str]] | None = None,
) -> CaseResult:
    """The full, explained result for one assessed case (statements by IRI: the run lists
    each statement's quote and document once). ``states`` is every defined class's
    three-valued state, ``asked`` the questions that could change the decision and the
    warnings that name them (``questions.QuestionWriter``). What is the same for every
    case with the same classes met and the same selection is built once
    (``Vocabulary.criteria_part``, ``Vocabulary.selection_part``); each case adds its
    facts."""
    result = CaseResult(selection.case, source, engine, "assessed")
    result.facts = _facts(vocab, case_facts)
    applied = frozenset(
        (
            *selection.selected_criteria,
            *selection.contrast_rules,
            *selection.contraindication_rules,
            *selection.deciding_rules,
        )
    )
    entries, met_warnings, met_cited = vocab.criteria_part(
        tuple(memberships), applied, bool(selection.procedures), selection.outcome
    )
    outcome, recommendation, closed_world, selected_warnings, selected_cited = vocab.selection_part(
        selection.outcome,
        tuple(selection.procedures),
        tuple(selection.indicated),
        selection.urgency,
        selection.appropriateness,
        tuple(selection.selected_criteria),
        tuple(selection.contrast_rules),
        tuple(selection.contraindication_rules),
        tuple(selection.contrast_lost),
        tuple(selection.closed_world_concepts),
    )
    result.criteria = [{**entry, "facts": _facts(vocab, memberships[entry["iri"]])} for entry in entries]
    result.criteria += [{**entry, "facts": []} for entry in closed_world]
    result.outcome = {**outcome, "sources": list(outcome["sources"])} if outcome else None
    result.recommendation = {k: list(v) if isinstance(v, list) else v for k, v in recommendation.items()}
    states = states or {}
    result.criterion_states = {c: states[c] for c in vocab.display_order(tuple(states))}
    result.questions, asked_warnings = asked or ([], [])
    result.warnings = [*vocab.source_caveats, *met_warnings, *selected_warnings, *asked_warnings]
    result.red_flags = {
        "present": [vocab.ref(f) for f in selection.present_red_flags],
        "unassessed": [vocab.ref(f) for f in vocab.by_urgency(selection.unassessed_red_flags)],
    }
    cited = dict.fromkeys(met_cited)
    cited.update(dict.fromkeys(selected_cited))
    result.sources = list(cited)
    return result


def _criteria_part(
    vocab: Vocabulary,
    classes: tuple[str, ...],
    applied: frozenset[str],
    procedures: bool,
    outcome: str | None,
) -> tuple[tuple[dict, ...], tuple[str, ...], tuple[str, ...]]:
    """For the classes a case meets (in the classifier's order) and what its selection
    applied: each class's entry in display order (without the case's facts), the warnings
    they give, and the statements they cite."""
    completed = {criterion: rule for rule in classes for criterion in vocab.completes(rule)}
    entries: list[dict] = []
    warnings: list[str] = []
    cited: dict[str, None] = {}
    for cls in sorted(classes, key=lambda c: (not vocab.is_criterion(c), vocab.label(c))):
        entry = dict(vocab.class_entry(cls))
        entry["selected"] = cls in applied
        entries.append(entry)
        cited.update(dict.fromkeys(entry["sources"]))
        warnings += vocab.annotation(cls, CAVEAT)
        if entry["kind"] == "criterion" and not entry["selected"]:
            warnings.append(_not_selected(vocab, entry, procedures, outcome, completed.get(cls)))
    return tuple(entries), tuple(warnings), tuple(cited)


def _selection_part(
    vocab: Vocabulary,
    outcome: str | None,
    procedures: tuple[str, ...],
    indicated: tuple[str, ...],
    urgency: str | None,
    appropriateness: str | None,
    selected_criteria: tuple[str, ...],
    contrast_rules: tuple[str, ...],
    contraindication_rules: tuple[str, ...],
    contrast_lost: tuple[str, ...],
    closed_world_concepts: tuple[str, ...],
) -> tuple[dict | None, dict, tuple[dict, ...], tuple[str, ...], tuple[str, ...]]:
    """For a selection (less its case): the outcome, the recommendation, the closed-world
    concepts' entries, the warnings about procedure modifiers, and the statements cited
    after the criteria's (the concepts', the outcome's, those shown with every
    recommendation)."""
    found = (
        {"iri": outcome, "label": vocab.label(outcome), "sources": list(vocab.sources(outcome))}
        if outcome
        else None
    )
    alternatives = []
    for cls in selected_criteria:
        alt = vocab.outcome_of(cls, ALTERNATIVE_PROCEDURE)
        if alt and alt not in alternatives:
            alternatives.append(alt)
    warnings: list[str] = []
    closed_world: list[dict] = []
    if procedures:
        recommendation = {
            "procedure": vocab.concept(procedures[0]),
            "alsoRecommended": [vocab.concept(p) for p in procedures[1:]],
            "indicatedBeforeModifiers": [vocab.concept(p) for p in indicated],
            "urgency": vocab.concept(urgency) if urgency else None,
            "appropriateness": vocab.concept(appropriateness) if appropriateness else None,
            "alternatives": alternatives,
        }
        rules = ", ".join(vocab.label(r) for r in contrast_rules)
        if contrast_lost:
            lost = ", ".join(vocab.label(p) for p in contrast_lost)
            caveats = [c for r in contraindication_rules for c in vocab.annotation(r, CONTRAST_LOST_CAVEAT)]
            given = ", ".join(vocab.label(p) for p in procedures)
            warnings.append(
                " ".join(
                    [
                        f"IV contrast not given: {lost} was indicated ({rules}), but {given} replaces it.",
                        *caveats,
                    ]
                )
            )
        elif rules:
            warnings.append(f"Contrast rule applied: {rules}.")
        for rule in contraindication_rules:
            warnings.append(f"{', '.join(vocab.label(p) for p in indicated)} replaced: {vocab.label(rule)}.")
    else:
        recommendation = {
            "procedure": None,
            "alsoRecommended": [],
            "indicatedBeforeModifiers": [],
            "urgency": None,
            "appropriateness": None,
            "alternatives": [],
        }
        for concept in closed_world_concepts:
            entry = dict(vocab.class_entry(concept))
            entry.update(kind="closed-world", selected=True)
            closed_world.append(entry)
    cited: dict[str, None] = {}
    for entry in closed_world:
        cited.update(dict.fromkeys(entry["sources"]))
    if found:
        cited.update(dict.fromkeys(found["sources"]))
    cited.update(dict.fromkeys(vocab.shown_with))
    return found, recommendation, tuple(closed_world), tuple(warnings), tuple(cited)
