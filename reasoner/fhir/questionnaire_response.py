"""Read the answers of a FHIR ``QuestionnaireResponse`` to the generated questionnaire.

Why here and not in the bundle reader: what an answer means is given by the questionnaire
(``questionnaire.questionnaire``), not by a code mapping. Each item of that questionnaire
names the ontology term it asks about (``definition``) and how it is answered (a finding is
a yes / no ``choice``; a case property is ``integer``, ``decimal`` with its UCUM unit, or
``boolean``), so ``ResponseForm`` is an index of it by ``linkId`` and nothing here names a
term. This is SDC's definition-based ``$extract`` for one case: yes = present, no = absent,
an item left out or without an answer = unknown (never absent).

A response is read whole or not at all: an answer the questionnaire does not allow (an
unknown ``linkId``, a coding that is not one of its options, a value of the wrong type, two
answers to one question, a quantity in a unit that does not convert) or a response to
another questionnaire or version raises ``FhirInputError`` naming the response and the item,
so the case it belongs to is not assessed on part of its answers. Values outside what the
shapes allow (a negative age) are left to case validation, which names the case and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .sdc import NO, UNIT_EXTENSION, VALUE_TYPES, YES
from .validation import FhirInputError, brief

READ_STATUSES = {"completed", "amended", "in-progress", "stopped"}
"""Statuses whose answers are read (an unfinished response's answers are still answers)."""


@dataclass(frozen=True)
class FormItem:
    """One question: the term it asks about, how it is answered, and the unit of a number."""

    link_id: str
    definition: str | None
    type: str
    unit: str | None = None


@dataclass(frozen=True)
class Answer:
    """What one answered item says: a finding present (True) or absent (False), or a value
    (an ``int``, a ``Decimal`` in the item's unit, or a ``bool``). ``quantity`` is a value
    given with its own UCUM code, to be converted to the item's unit."""

    item: FormItem
    value: bool | int | Decimal
    quantity: tuple[str | None, str | None] | None = None


@dataclass(frozen=True)
class ResponseForm:
    """The questionnaire a response may answer, indexed by ``linkId``."""

    url: str
    version: str | None
    items: dict[str, FormItem]

    @classmethod
    def of(cls, questionnaire: dict) -> ResponseForm:
        items: dict[str, FormItem] = {}

        def walk(nodes: list[dict]) -> None:
            for node in nodes:
                units = [
                    e["valueCoding"]["code"] for e in node.get("extension", []) if e["url"] == UNIT_EXTENSION
                ]
                unit = units[0] if units else None
                items[node["linkId"]] = FormItem(node["linkId"], node.get("definition"), node["type"], unit)
                walk(node.get("item", []))

        walk(questionnaire.get("item", []))
        return cls(questionnaire["url"], questionnaire.get("version"), items)

    @property
    def canonical(self) -> str:
        return f"{self.url}|{self.version}" if self.version else self.url

    def check_answers(self, canonical: str | None, source: str, name: str) -> None:
        """Raise unless ``canonical`` (the response's ``questionnaire``) names this
        questionnaire, and this version when it names one."""
        if not canonical:
            raise FhirInputError(source, f"names no questionnaire: answer {self.canonical}", name)
        url, _, version = canonical.partition("|")
        if url != self.url:
            raise FhirInputError(
                source, f"answers questionnaire {brief(url)}, not {self.url}: not read", name
            )
        if version and self.version and version != self.version:
            raise FhirInputError(
                source,
                f"answers version {brief(version)} of the questionnaire, but this knowledge base asks "
                f"version {self.version}: not read",
                name,
            )

    def answers(self, response, source: str, name: str) -> list[Answer]:
        """Every answer of ``response`` (a ``fhir.resources`` QuestionnaireResponse)."""
        found: list[Answer] = []
        seen: set[str] = set()

        def walk(nodes) -> None:
            for node in nodes or []:
                item = self.items.get(node.linkId)
                if item is None:
                    raise FhirInputError(
                        source, f"item {brief(node.linkId)} is not a question of {self.canonical}", name
                    )
                if node.answer and item.definition and item.type != "group":
                    if item.link_id in seen:
                        raise FhirInputError(source, f"item {item.link_id} is answered twice", name)
                    seen.add(item.link_id)
                    found.append(self._answer(item, node.answer, source, name))
                elif node.answer:
                    raise FhirInputError(source, f"item {item.link_id} is not a question to answer", name)
                walk(node.item)
                for answer in node.answer or []:
                    walk(answer.item)

        walk(response.item)
        return found

    def _answer(self, item: FormItem, answers: list, source: str, name: str) -> Answer:
        if len(answers) > 1:
            raise FhirInputError(
                source, f"item {item.link_id} has {len(answers)} answers; it takes one", name
            )
        (answer,) = answers
        given = {k: v for k, v in answer if k.startswith("value") and "__" not in k and v is not None}
        if item.type == "choice":
            coding = given.get("valueCoding")
            for option, present in ((YES, True), (NO, False)):
                if coding is not None and (coding.system, coding.code) == (option["system"], option["code"]):
                    return Answer(item, present)
            raise FhirInputError(
                source,
                f"item {item.link_id} takes valueCoding {YES['code']} (yes) or {NO['code']} (no) of "
                f"{YES['system']}, not {_shown(given)}",
                name,
            )
        if item.type == "decimal" and set(given) == {"valueQuantity"}:
            q = given["valueQuantity"]
            if q.value is None:
                raise FhirInputError(source, f"item {item.link_id}: the quantity has no value", name)
            return Answer(item, Decimal(str(q.value)), (q.system, q.code))
        if item.type == "decimal" and set(given) == {"valueInteger"}:
            return Answer(item, Decimal(given["valueInteger"]))
        expected = VALUE_TYPES.get(item.type)
        if expected is None or set(given) != {expected}:
            also = " or valueQuantity or valueInteger" if item.type == "decimal" else ""
            raise FhirInputError(
                source, f"item {item.link_id} takes {expected}{also}, not {_shown(given)}", name
            )
        value = given[expected]
        return Answer(item, Decimal(str(value)) if item.type == "decimal" else value)


def _shown(given: dict) -> str:
    if not given:
        return "an answer without a value"
    key, value = next(iter(given.items()))
    if key == "valueCoding":
        return f"valueCoding {brief(value.system or '(no system)')}|{brief(value.code or '(no code)')}"
    if hasattr(value, "model_dump"):  # a FHIR data type: show its JSON
        value = value.model_dump(exclude_none=True)
    return f"{key} {brief(value)}"
