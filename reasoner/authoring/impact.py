"""``lbp-imaging impact``: what a change to the knowledge base does to real cases.

The same case library is assessed with the fast engine under the base and the working
knowledge base. A case *changes* when its decision does (outcome, procedure, urgency,
criteria, alternatives); its details (the criteria left undetermined, what the questions
ask about) are listed with it. A case that changes only in a detail is counted, not
listed. For each changed case the causes are named:

* a criterion the case entered or left whose own axioms changed (its definition or its
  outcome restrictions);
* a criterion the case entered or left whose own axioms did not change: the changed
  axioms that mention a term of its definition (a finding newly typed with a category the
  definition names, say) are the cause;
* a criterion the case meets in both versions whose own axioms changed (a new urgency);
* otherwise the closed-world steps' inputs: criteria that became undetermined or were
  ruled out (explained as above), and red flags newly present.

The axiom diff of the two ontologies and the shapes or query files that differ are
reported with it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import OWL, URIRef

from ..knowledge import KnowledgeBase
from ..pipeline.explain import CaseResult
from .axiom_diff import AxiomDiff, diff
from .axioms import Axiom
from .decision import DECISION_KEYS, differences, iri, local, short, view


@dataclass(frozen=True)
class CaseChange:
    case: str
    changes: tuple[str, ...]
    causes: tuple[str, ...]


@dataclass
class Impact:
    cases: int
    changed: list[CaseChange] = field(default_factory=list)
    detail_only: dict[str, int] = field(default_factory=dict)
    axioms: AxiomDiff | None = None
    files: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 when anything differs (a case, an axiom, a shapes or query file), else 0."""
        axioms = self.axioms is not None and (self.axioms.added or self.axioms.removed)
        return 1 if self.changed or axioms or self.files else 0


def _own(axioms: tuple[Axiom, ...], cls: URIRef, definition: bool) -> set[str]:
    """A class's own logical axioms: its definitions, or (``definition`` False) the rest,
    such as the restrictions that state its outcome."""
    return {
        a.text
        for a in axioms
        if a.kind == "logical" and cls in a.about and (a.predicate == OWL.equivalentClass) is definition
    }


def _definition_terms(axioms: tuple[Axiom, ...], cls: URIRef) -> set[URIRef]:
    """The terms a criterion's definition uses, through the definitions it names."""
    definitions = {}
    for a in axioms:
        if a.predicate == OWL.equivalentClass:
            for term in a.about:
                definitions.setdefault(term, set()).update(a.signature)
    terms, todo = set(), [cls]
    while todo:
        for term in definitions.get(todo.pop(), set()) - terms:
            terms.add(term)
            todo.append(term)
    return terms - {cls}


def _listed(d: dict, key: str) -> set[str]:
    return {local(x["iri"]) for x in d["redFlags"][key]}


class _Causes:
    """Why a case's decision changed, from the axiom diff and the two results."""

    def __init__(self, axioms: AxiomDiff):
        self.d = axioms
        self.changed = (*axioms.added, *axioms.removed)
        self.defined = {
            t for a in (*axioms.base, *axioms.work) if a.predicate == OWL.equivalentClass for t in a.about
        }

    def own_changes(self, cls: URIRef) -> str | None:
        """Which of the class's own axioms changed, as words; None when none did."""
        changed = [
            what
            for what, definition in (("definition", True), ("outcome axioms", False))
            if _own(self.d.base, cls, definition) != _own(self.d.work, cls, definition)
        ]
        return f"its {' and '.join(changed)} changed" if changed else None

    def _why(self, cls: URIRef) -> str:
        """Its own changed axioms, or the changed axioms on the terms its definition uses."""
        if own := self.own_changes(cls):
            return own
        terms = _definition_terms(self.d.work, cls) | _definition_terms(self.d.base, cls)
        # Another criterion's changed axioms mention terms this definition uses too (a
        # property, the case class): they do not change this criterion.
        others = self.defined - terms - {cls}
        mentioned = {t for a in self.changed if not a.about & others for t in a.signature}
        via = sorted(local(str(t)) for t in terms & mentioned)
        return f"changed axioms on {', '.join(via) or 'terms it uses'}"

    def of(self, before: dict, after: dict, before_view: dict, after_view: dict) -> list[str]:
        causes = []
        old, new = set(before_view["criteria"]), set(after_view["criteria"])
        for name in sorted(old ^ new):
            causes.append(f"{name} {'now met' if name in new else 'no longer met'}: {self._why(iri(name))}")
        for name in sorted(old & new):
            if own := self.own_changes(iri(name)):
                causes.append(f"{name}: {own}")
        if not causes:
            was, now = set(before_view["undetermined"]), set(after_view["undetermined"])
            for name in sorted((was ^ now) - old - new):
                verb = "now undetermined" if name in now else "now ruled out"
                causes.append(f"{name} {verb}: {self._why(iri(name))}")
            was, now = _listed(before, "present"), _listed(after, "present")
            if was != now:
                moved = [f"-{x}" for x in sorted(was - now)] + [f"+{x}" for x in sorted(now - was)]
                causes.append(f"red flags present: {' '.join(moved)}")
        return causes or ["no criterion changed: see the axiom diff and the files that differ"]


def _assess(kb: KnowledgeBase, cases: list[Path]) -> dict[str, CaseResult]:
    from ..pipeline.assess import Assessor

    return {r.case: r for r in Assessor(kb).assess(cases).results}


def _differing_files(base: Path, work: Path) -> list[str]:
    names = set()
    for root in (base, work):
        names |= {
            str(p.relative_to(root)) for part in ("shapes", "queries") for p in (root / part).glob("*.*")
        }
    return sorted(
        n
        for n in names
        if not ((base / n).is_file() and (work / n).is_file())
        or (base / n).read_bytes() != (work / n).read_bytes()
    )


def impact(base: KnowledgeBase, work: KnowledgeBase, cases: list[Path]) -> Impact:
    """Assess ``cases`` under both knowledge bases and explain what changed."""
    axioms = diff(base.ontology, work.ontology)
    causes = _Causes(axioms)
    before, after = _assess(base, cases), _assess(work, cases)
    result = Impact(
        cases=len(set(before) | set(after)), axioms=axioms, files=_differing_files(base.root, work.root)
    )
    details: Counter[str] = Counter()
    for case in sorted(set(before) | set(after), key=short):
        old, new = before.get(case), after.get(case)
        if old is None or new is None or old.status != "assessed" or new.status != "assessed":
            states = [_state(old), _state(new)]
            if states[0] != states[1]:
                result.changed.append(CaseChange(case, (f"status: {states[0]} -> {states[1]}",), ()))
            continue
        old_view, new_view = view(old), view(new)
        detail_keys = [k for k in old_view if k not in DECISION_KEYS]
        changes = differences(old_view, new_view, DECISION_KEYS)
        if changes:
            reasons = causes.of(old.to_dict(), new.to_dict(), old_view, new_view)
            changes += differences(old_view, new_view, detail_keys)
            result.changed.append(CaseChange(case, tuple(changes), tuple(reasons)))
        else:
            details.update(k for k in detail_keys if old_view[k] != new_view[k])
    result.detail_only = dict(sorted(details.items()))
    return result


def _state(result: CaseResult | None) -> str:
    if result is None:
        return "absent"
    if result.status == "assessed":
        return "assessed"
    return "invalid (" + "; ".join(e["message"] for e in result.errors) + ")"
