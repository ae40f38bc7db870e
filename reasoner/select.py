"""Select each case's recommendation with the closed-world SPARQL steps in ``queries/``.

The store holds the knowledge base, the cases and the class memberships an engine
inferred. The queries decide everything clinical (precedence, contrast, substitution,
no imaging, unassessed red flags); this module only runs them and groups rows by case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyoxigraph as ox

from .knowledge import KnowledgeBase

RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")


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
    closed_world_concepts: list[str] = field(default_factory=list)
    present_red_flags: list[str] = field(default_factory=list)
    unassessed_red_flags: list[str] = field(default_factory=list)


def _v(term) -> str | None:
    if term is None:
        return None
    return term.value if isinstance(term, ox.NamedNode | ox.Literal) else str(term)


def _add(items: list[str], value: str | None) -> None:
    if value is not None and value not in items:
        items.append(value)


def add_memberships(store: ox.Store, memberships: dict[str, set[str]]) -> None:
    """Assert each case's inferred class memberships, for the selection queries."""
    store.extend(
        ox.Quad(ox.NamedNode(case), RDF_TYPE, ox.NamedNode(cls))
        for case, classes in memberships.items()
        for cls in classes
    )


def select(kb: KnowledgeBase, store: ox.Store, cases: list[str]) -> dict[str, Selection]:
    wanted = set(cases)
    selections = {case: Selection(case) for case in cases}
    for row in store.query(kb.query("recommended-procedure").text):
        case = _v(row["case"])
        if case not in wanted:
            continue
        s = selections[case]
        s.outcome = _v(row["outcome"])
        _add(s.procedures, _v(row["procedure"]))
        _add(s.indicated, _v(row["indicated"]))
        _add(s.selected_criteria, _v(row["criterion"]))
        s.urgency = _v(row["urgency"])
        s.appropriateness = s.appropriateness or _v(row["appropriateness"])
        _add(s.contrast_rules, _v(row["contrastRule"]))
        _add(s.contraindication_rules, _v(row["contraindicationRule"]))
    no_imaging = {}
    for row in store.query(kb.query("no-imaging").text):
        case = _v(row["case"])
        if case in wanted:
            no_imaging[case] = _v(row["outcome"])
            _add(selections[case].closed_world_concepts, _v(row["concept"]))
    for case, s in selections.items():
        s.outcome = s.outcome or no_imaging.get(case)
        # SPARQL rows come in no particular order: sort, so answers do not depend on batching.
        for name in (
            "procedures",
            "indicated",
            "selected_criteria",
            "contrast_rules",
            "contraindication_rules",
            "closed_world_concepts",
        ):
            getattr(s, name).sort()
    for name, attribute in (
        ("present-red-flags", "present_red_flags"),
        ("unassessed-red-flags", "unassessed_red_flags"),
    ):
        for row in store.query(kb.query(name).text):
            case = _v(row["case"])
            if case in wanted:
                setattr(selections[case], attribute, sorted(_v(row["redFlags"]).split()))
    return selections
