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
from .three_valued import Conjunction, relevant

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


def _subject(vocab: Vocabulary, leaf: Leaf) -> tuple[tuple[str, ...], str, str, str | None]:
    """What a leaf asks about: its key (one question per key), whether it asks for the
    presence of a value or for the value of a property, the IRI asked about, and the
    property (None for a type)."""
    if leaf.kind == "type":
        return ("type", str(leaf.cls)), PRESENCE, str(leaf.cls), None
    on = str(leaf.on)
    if leaf.kind == "value" and isinstance(leaf.value, URIRef) and not vocab.is_functional(on):
        return (on, str(leaf.value)), PRESENCE, str(leaf.value), on
    return (on,), VALUE, on, on


def _asked(open_parts: Mapping[str, list[Conjunction]], effects: Mapping[str, str]) -> dict[str, set[Leaf]]:
    """Per criterion, its unknown leaves that are worth asking: those that could change
    whether any criterion with the same effect is met. When no criterion is met, what is
    at stake is whether imaging is indicated at all: a fact that matters only together with
    another that would already meet a criterion (an ESR that matters only once night pain
    is present) is asked once that other fact is known, as a question that could raise the
    urgency; the facts asked are the fewest that settle the effect."""
    by_effect: dict[str, list[Conjunction]] = {}
    for criterion, effect in effects.items():
        by_effect.setdefault(effect, []).extend(open_parts.get(criterion, ()))
    worth = {effect: set(relevant(parts)) for effect, parts in by_effect.items()}
    return {
        criterion: {leaf for part in open_parts.get(criterion, ()) for leaf in part} & worth[effect]
        for criterion, effect in effects.items()
    }


def questions(
    vocab: Vocabulary, open_parts: Mapping[str, list[Conjunction]], effects: Mapping[str, str]
) -> list[dict]:
    """The questions of the undetermined criteria in ``effects`` (criterion -> effect IRI),
    from the minimal sets of unknown leaves that would meet them (``open_parts``), grouped
    and ordered most urgent first."""
    found: dict[tuple[str, ...], dict] = {}
    asked = _asked(open_parts, effects)
    for criterion, effect in effects.items():
        entry = vocab.class_entry(criterion)
        for leaf in sorted(asked[criterion], key=repr):
            key, asks, about, prop = _subject(vocab, leaf)
            question = found.get(key)
            if question is None:
                question = found[key] = {
                    "asks": asks,
                    "about": vocab.concept(about),
                    "property": vocab.ref(prop) if prop else None,
                    "unit": vocab.unit(prop) if prop and asks == VALUE else None,
                    "suggests": None,
                    "criteria": [],
                }
            question["criteria"].append(
                {
                    "iri": criterion,
                    "label": entry["label"],
                    "urgency": entry["urgency"],
                    "effect": vocab.notation(effect),
                    "effectIri": effect,
                    "needs": {"present": True}
                    if asks == PRESENCE and leaf.kind == "value"
                    else _need(vocab, leaf),
                }
            )
    for question in found.values():
        question["criteria"].sort(key=lambda c: (-vocab.rank_of(c["iri"]), c["label"]))
        question["suggests"] = vocab.ref(_group(vocab, question))
    return _ordered(vocab, list(found.values()))


def _group(vocab: Vocabulary, question: dict) -> str:
    """What a question suggests: the condition its finding (or the finding's category)
    raises suspicion of; else that of the most urgent criterion it feeds that names one;
    else the finding's category; else the most urgent criterion itself."""
    criteria = [c["iri"] for c in question["criteria"]]
    if question["asks"] == PRESENCE and (condition := vocab.condition_of(question["about"]["iri"])):
        return condition
    named = [vocab.suspected(c) for c in criteria if vocab.suspected(c) != c]
    if named:
        return named[0]
    if question["asks"] == PRESENCE and (category := vocab.category_of(question["about"]["iri"])):
        return category
    return criteria[0]


def _ordered(vocab: Vocabulary, found: list[dict]) -> list[dict]:
    """Groups by the most urgent criterion they feed, then each group's questions."""

    def rank(question: dict) -> int:
        return max(vocab.rank_of(c["iri"]) for c in question["criteria"])

    group_rank: dict[str, int] = {}
    for q in found:
        group = q["suggests"]["iri"]
        group_rank[group] = max(group_rank.get(group, 0), rank(q))
    return sorted(
        found,
        key=lambda q: (
            -group_rank[q["suggests"]["iri"]],
            q["suggests"]["label"],
            -rank(q),
            q["about"]["label"],
        ),
    )
