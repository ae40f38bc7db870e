"""Select each case's recommendation with the closed-world SPARQL steps in ``queries/``.

The store holds the knowledge base, the cases, the class memberships an engine inferred
and the criteria that three-valued evaluation left undetermined. The queries decide
everything clinical (precedence, contrast, substitution, no imaging, which undetermined
criteria could change the decision, red flags); this module only runs them and groups
rows by case.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pyoxigraph as ox

from .knowledge import KnowledgeBase

RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
UNDETERMINED = ox.NamedNode("https://w3id.org/lbp-imaging/undeterminedCriterion")


@dataclass
class Selection:
    """What the selection queries concluded for one case (IRIs as strings)."""

    case: str
    outcome: str | None = None
    procedures: list[str] = field(default_factory=list)
    indicated: list[str] = field(default_factory=list)
    urgency: str | None = None
    appropriateness: str | None = None
    selected_criteria: list[str] = field(default_factory=list)
    contrast_rules: list[str] = field(default_factory=list)
    contraindication_rules: list[str] = field(default_factory=list)
    contrast_lost: list[str] = field(default_factory=list)
    """Contrast-enhanced studies a contrast rule asked for that the MRI-contraindication
    substitute does not give (its contrast differs)."""
    closed_world_concepts: list[str] = field(default_factory=list)
    deciding_rules: list[str] = field(default_factory=list)
    """With no procedure: the rule that decided the outcome (a scope exclusion, a completed
    pathway, a clinical review trigger), if one did."""
    present_red_flags: list[str] = field(default_factory=list)
    unassessed_red_flags: list[str] = field(default_factory=list)
    open_criteria: dict[str, str] = field(default_factory=dict)
    """Undetermined criteria whose questions could change the decision, with the effect
    (an IRI) that answering them could have."""


def _values(store: ox.Store, query: str, *names: str) -> Iterator[tuple[str | None, ...]]:
    """The named variables of each solution, as strings (None when unbound)."""
    results = store.query(query)
    position = {v.value: i for i, v in enumerate(results.variables)}
    wanted = [position[n] for n in names]
    for row in results:
        terms = [row[i] for i in wanted]
        yield tuple(
            None if t is None else t.value if not isinstance(t, ox.BlankNode) else str(t) for t in terms
        )


def _add(items: list[str], value: str | None) -> None:
    if value is not None and value not in items:
        items.append(value)


def add_memberships(
    store: ox.Store, memberships: dict[str, set[str]], undetermined: dict[str, list[str]] | None = None
) -> None:
    """Assert each case's inferred class memberships and its undetermined criteria
    (``lbp:undeterminedCriterion``), for the selection queries."""
    store.extend(
        ox.Quad(ox.NamedNode(case), RDF_TYPE, ox.NamedNode(cls))
        for case, classes in memberships.items()
        for cls in classes
    )
    store.extend(
        ox.Quad(ox.NamedNode(case), UNDETERMINED, ox.NamedNode(cls))
        for case, classes in (undetermined or {}).items()
        for cls in classes
    )


def select(kb: KnowledgeBase, store: ox.Store, cases: list[str]) -> dict[str, Selection]:
    selections = {case: Selection(case) for case in cases}
    rows = _values(
        store,
        kb.query("recommended-procedure").text,
        "case",
        "outcome",
        "procedure",
        "indicated",
        "criterion",
        "urgency",
        "appropriateness",
        "contrastRule",
        "contraindicationRule",
        "contrastLost",
    )
    for (
        case,
        outcome,
        procedure,
        indicated,
        criterion,
        urgency,
        appropriateness,
        contrast,
        contra,
        lost,
    ) in rows:
        s = selections.get(case)
        if s is None:
            continue
        s.outcome = outcome
        _add(s.procedures, procedure)
        _add(s.indicated, indicated)
        _add(s.selected_criteria, criterion)
        s.urgency = urgency
        s.appropriateness = s.appropriateness or appropriateness
        _add(s.contrast_rules, contrast)
        _add(s.contraindication_rules, contra)
        _add(s.contrast_lost, lost)
    no_imaging = {}
    for case, outcome, concept, decided_by in _values(
        store, kb.query("no-imaging").text, "case", "outcome", "concept", "decidedBy"
    ):
        if case in selections:
            no_imaging[case] = outcome
            _add(selections[case].closed_world_concepts, concept)
            _add(selections[case].deciding_rules, decided_by)
    for case, s in selections.items():
        s.outcome = s.outcome or no_imaging.get(case)
        # SPARQL rows come in no particular order: sort, so answers do not depend on batching.
        for items in (
            s.procedures,
            s.indicated,
            s.selected_criteria,
            s.contrast_rules,
            s.contraindication_rules,
            s.contrast_lost,
            s.closed_world_concepts,
        ):
            if len(items) > 1:
                items.sort()
    for case, criterion, effect in _values(
        store, kb.query("open-criteria").text, "case", "criterion", "effect"
    ):
        if case in selections and criterion is not None and effect is not None:
            selections[case].open_criteria.setdefault(criterion, effect)
    for name, attribute in (
        ("present-red-flags", "present_red_flags"),
        ("unassessed-red-flags", "unassessed_red_flags"),
    ):
        for case, flags in _values(store, kb.query(name).text, "case", "redFlags"):
            if case in selections:
                setattr(selections[case], attribute, sorted(flags.split()))
    return selections
