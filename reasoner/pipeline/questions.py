"""The questions of an assessment: the facts not recorded whose answers could change it.

Three-valued evaluation (``three_valued``) gives, for each undetermined criterion, the
unknown leaves whose answer could meet it; the closed-world step ``open-criteria.rq``
says which undetermined criteria matter to the decision and how (could indicate imaging,
raise the urgency, change the procedure). This module turns those leaves into questions
for people and systems: one per fact asked about (a finding that may be present, or the
value of a case property), naming the fact (IRI, label, codes), the criteria an answer
could meet with their urgency and effect, and the condition each needs. Questions are
grouped by what they suggest (the ``lbp:suspectedCondition`` of the finding or of the
criterion) and ordered most urgent first. Everything shown is read from the knowledge
base through ``Vocabulary``.
"""

from __future__ import annotations

from collections.abc import Mapping

from rdflib import URIRef

from .definitions import Leaf
from .explain import Vocabulary, python_value
from .three_valued import CaseStates, Part, relevant

PRESENCE, VALUE = "presence", "value"


def _need(vocab: Vocabulary, leaf: Leaf) -> dict:
    """The answer that would meet the leaf, as data (see docs/output-schema.md)."""
    if leaf.kind == "value":
        if isinstance(leaf.value, URIRef):
            return {"equals": vocab.ref(str(leaf.value))}
        return {"equals": python_value(leaf.value)}
    if leaf.kind == "facets":
        return {"range": [{"op": op, "value": float(bound)} for op, bound in leaf.facets]}
    if leaf.kind == "some":
        return {"inClass": vocab.ref(str(leaf.cls))}
    if leaf.kind == "type":
        return {"isA": vocab.ref(str(leaf.cls))}
    return {"any": True}


def fact_asked(vocab: Vocabulary, leaf: Leaf) -> tuple[tuple[str, ...], str, str, str | None]:
    """What a leaf asks about: its key (one question per key), whether it asks for the
    presence of a value or for the value of a property, the IRI asked about, and the
    property (None for a type)."""
    if leaf.kind == "type":
        return ("type", str(leaf.cls)), PRESENCE, str(leaf.cls), None
    on = str(leaf.on)
    if leaf.kind == "value" and isinstance(leaf.value, URIRef) and not vocab.is_functional(on):
        return (on, str(leaf.value)), PRESENCE, str(leaf.value), on
    return (on,), VALUE, on, on


def _asked(open_parts: Mapping[str, list[Part]], effects: Mapping[str, str]) -> dict[str, Part]:
    """Per criterion, its unknown leaves whose answer could make it met: those of the
    minimal sets of unknown leaves that would together meet it. Answering all of them
    settles the criterion (met or not met), so the questions of every criterion that
    matters settle the decision: whether imaging is indicated, and how urgently."""
    return {criterion: relevant(open_parts.get(criterion, ())) for criterion in effects}


class QuestionWriter:
    """Questions for many cases. What a leaf asks and what each criterion needs of it are
    worked out once per leaf; cases with the same open criteria, effects and unknown leaves
    get the same questions and warnings, built once (the last ``size`` combinations are
    kept). The questions are read-only data, shared between the results that carry them,
    as facts are (``Vocabulary.facts``)."""

    def __init__(self, vocab: Vocabulary, size: int = 4096):
        self.vocab, self.size = vocab, size
        self.kept: dict[tuple, tuple[list[dict], list[str]]] = {}
        self._subjects: dict[Leaf, tuple] = {}
        self._entries: dict[tuple[str, str, Leaf], dict] = {}
        self._groups: dict[tuple, dict] = {}

    def __call__(self, states: CaseStates, effects: Mapping[str, str]) -> tuple[list[dict], list[str]]:
        """The questions of a case and the warnings that name them."""
        key = tuple(
            (criterion, effect, frozenset(states.open_parts.get(criterion, ())))
            for criterion, effect in sorted(effects.items())
        )
        found = self.kept.pop(key, None)
        if found is None:
            asked = self.questions(states, effects)
            found = (asked, question_warnings(self.vocab, asked))
            if len(self.kept) >= self.size:
                del self.kept[next(iter(self.kept))]
        self.kept[key] = found  # most recently used last
        return list(found[0]), list(found[1])

    def questions(self, states: CaseStates, effects: Mapping[str, str]) -> list[dict]:
        """The questions of the undetermined criteria in ``effects`` (criterion -> effect
        IRI), from the sets of unknown leaves that would meet them
        (``states.open_parts``), grouped and ordered most urgent first."""
        vocab = self.vocab
        found: dict[tuple[str, ...], dict] = {}
        asked = _asked(states.open_parts, effects)
        for criterion, effect in effects.items():
            order = (-vocab.rank_of(criterion), vocab.label(criterion))
            for leaf in (states.atoms[i] for i in sorted(asked[criterion])):
                key, question = self._subject(leaf)
                if key not in found:
                    found[key] = dict(question, criteria=[])
                found[key]["criteria"].append((order, self._entry(criterion, effect, leaf, question["asks"])))
        for question in found.values():
            entries = question["criteria"]
            if len(entries) > 1:
                entries.sort(key=lambda e: e[0])
            question["criteria"] = [entry for _, entry in entries]
            question["suggests"] = self._group(question)
        return _ordered(vocab, list(found.values()))

    def _subject(self, leaf: Leaf) -> tuple[tuple[str, ...], dict]:
        found = self._subjects.get(leaf)
        if found is None:
            vocab = self.vocab
            key, asks, about, prop = fact_asked(vocab, leaf)
            found = self._subjects[leaf] = (
                key,
                {
                    "asks": asks,
                    "about": vocab.concept(about),
                    "property": vocab.ref(prop) if prop else None,
                    "unit": vocab.unit(prop) if prop and asks == VALUE else None,
                    "suggests": None,
                },
            )
        return found

    def _entry(self, criterion: str, effect: str, leaf: Leaf, asks: str) -> dict:
        """What one criterion needs of the answer, and what meeting it would do."""
        found = self._entries.get((criterion, effect, leaf))
        if found is None:
            entry = self.vocab.class_entry(criterion)
            found = self._entries[(criterion, effect, leaf)] = {
                "iri": criterion,
                "label": entry["label"],
                "urgency": entry["urgency"],
                "effect": self.vocab.notation(effect),
                "effectIri": effect,
                "needs": {"present": True}
                if asks == PRESENCE and leaf.kind == "value"
                else _need(self.vocab, leaf),
            }
        return found

    def _group(self, question: dict) -> dict:
        key = (question["asks"], question["about"]["iri"], tuple(c["iri"] for c in question["criteria"]))
        found = self._groups.get(key)
        if found is None:
            found = self._groups[key] = self.vocab.ref(suggested_group(self.vocab, question))
        return found


def suggested_group(vocab: Vocabulary, question: dict) -> str:
    """What a question suggests: the condition its finding (or the finding's category)
    raises suspicion of; else that of the most urgent criterion it feeds that names one;
    else the finding's category; else the most urgent criterion itself (else the fact)."""
    criteria = [c["iri"] for c in question["criteria"]]
    if question["asks"] == PRESENCE and (condition := vocab.condition_of(question["about"]["iri"])):
        return condition
    named = [vocab.suspected(c) for c in criteria if vocab.suspected(c) != c]
    if named:
        return named[0]
    if question["asks"] == PRESENCE and (category := vocab.category_of(question["about"]["iri"])):
        return category
    return criteria[0] if criteria else question["about"]["iri"]


def _ordered(vocab: Vocabulary, found: list[dict]) -> list[dict]:
    """Groups by the most urgent criterion they feed, then each group's questions."""
    rank = {id(q): max(vocab.rank_of(c["iri"]) for c in q["criteria"]) for q in found}
    group_rank: dict[str, int] = {}
    for q in found:
        group = q["suggests"]["iri"]
        group_rank[group] = max(group_rank.get(group, 0), rank[id(q)])
    return sorted(
        found,
        key=lambda q: (
            -group_rank[q["suggests"]["iri"]],
            q["suggests"]["label"],
            -rank[id(q)],
            q["about"]["label"],
        ),
    )


def question_warnings(vocab: Vocabulary, asked: list[dict]) -> list[str]:
    """One warning per undetermined criterion that matters, most urgent first: what it
    could do to the decision, and what to ask (unknown is not absent)."""
    about: dict[str, list[str]] = {}
    effect: dict[str, str] = {}
    for question in asked:
        for c in question["criteria"]:
            about.setdefault(c["iri"], []).append(question["about"]["label"])
            effect[c["iri"]] = c["effect"]
    lines = []
    for criterion in sorted(about, key=lambda c: (-vocab.rank_of(c), vocab.label(c))):
        entry = vocab.class_entry(criterion)
        urgency = f" ({entry['urgency']['label']})" if entry["urgency"] else ""
        lines.append(
            f"Undetermined (unknown is not absent): {entry['label']}{urgency} "
            f"{vocab.effect_label(effect[criterion])}; ask about: {'; '.join(about[criterion])}."
        )
    return lines
