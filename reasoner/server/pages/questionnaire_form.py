"""The clinician's form on the case page: the questionnaire's items as form fields, and the
posted fields read back as a FHIR ``QuestionnaireResponse`` (in a Bundle with the Patient).

Why from the questionnaire: the form must ask exactly what the criteria read, so it is
built from ``questionnaire(kb)`` (or a populated copy of it, whose ``initial`` values are
the fields' starting values, SDC ``$populate``), never from a list of terms here; an author
who adds a red flag to the ontology gets its field without a code change. Why a Bundle:
the page assesses the answers through the same reader as every other FHIR input, so a
form answer means exactly what the same response sent by an EHR means.

Every field is named by its item's ``linkId``. A finding is a choice of the item's answer
options or "not asked" (empty: left out of the response, so unknown, never absent); a
group's "none of these" (``<group linkId>.none``) answers every finding of the group left
not asked with the "no" option, on the server, so the form works without scripts. Numbers
are checked only for being numbers here: their ranges are the case shapes' to judge, and
the case page shows the shapes' messages next to the field they name.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from ...fhir.sdc import NO, UNIT_EXTENSION
from ...pipeline.explain import CaseResult

NONE_SUFFIX = ".none"
GENDER_FIELD = "Patient.gender"
"""The Patient's administrative gender: not a questionnaire item (the response's subject has it)."""
TEXT_FIELD = "text"
"""The advanced tab's case text: a submission that has it is raw text, not the form."""
RESERVED = {GENDER_FIELD, TEXT_FIELD, "format"}
BOOLEAN_OPTIONS = (("true", "yes"), ("false", "no"))
INTEGER = re.compile(r"[+-]?\d+")
DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
FHIR_INTEGER = range(-(2**31), 2**31)
"""FHIR's ``integer`` is 32 bits."""


class FormModelError(ValueError):
    """The questionnaire has an item the form cannot show (named)."""


@dataclass(frozen=True)
class Option:
    """One answer a field offers: the value posted and the label shown."""

    value: str
    label: str


@dataclass(frozen=True)
class Field:
    """One questionnaire item as a form field."""

    link_id: str
    text: str
    definition: str
    type: str
    """The item's type: ``choice``, ``integer``, ``decimal`` or ``boolean``."""
    help: str | None = None
    unit: str | None = None
    options: tuple[Option, ...] = ()
    """A choice's answer options, or yes / no for a boolean (not asked is always offered)."""
    codings: Mapping[str, dict] = field(default_factory=dict)
    """A choice's answer codings by the option's value."""
    initial: str = ""
    """The starting value, from the item's ``initial`` (a populated questionnaire)."""


@dataclass(frozen=True)
class Group:
    """One questionnaire group as a fieldset."""

    link_id: str
    text: str
    fields: tuple[Field, ...]

    @property
    def none_field(self) -> str | None:
        """The name of the group's "none of these" control, if it has findings."""
        return f"{self.link_id}{NONE_SUFFIX}" if any(f.type == "choice" for f in self.fields) else None


@dataclass
class Answers:
    """A submission read: the values as typed (with "none of these" applied), and why any is bad."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FormModel:
    """The questionnaire as groups of fields, with the Patient's gender codes."""

    questionnaire: dict
    groups: tuple[Group, ...]
    genders: tuple[Option, ...]

    @classmethod
    def from_questionnaire(cls, questionnaire: dict, genders: tuple[Option, ...]) -> FormModel:
        groups = tuple(_group(g) for g in questionnaire.get("item", ()))
        names = [f.link_id for g in groups for f in g.fields] + [g.none_field for g in groups if g.none_field]
        clashes = sorted({n for n in names if n in RESERVED or names.count(n) > 1})
        if clashes:
            raise FormModelError(f"questionnaire items clash with form fields: {', '.join(clashes)}")
        return cls(questionnaire, groups, genders)

    @property
    def canonical(self) -> str:
        """The questionnaire a response answers: ``url|version``."""
        q = self.questionnaire
        return f"{q['url']}|{q['version']}" if q.get("version") else q["url"]

    @property
    def fields(self) -> dict[str, Field]:
        return {f.link_id: f for g in self.groups for f in g.fields}

    def by_definition(self) -> dict[str, str]:
        """linkId by the ontology IRI an item asks about (what the engine's questions name)."""
        return {f.definition: f.link_id for f in self.fields.values()}

    def initial_values(self) -> dict[str, str]:
        return {name: f.initial for name, f in self.fields.items() if f.initial}

    def read(self, posted: Mapping[str, str]) -> Answers:
        """The posted fields as answers: unknown names ignored, "none of these" applied,
        a value that is not one of the field's options or not a number an error."""
        values: dict[str, str] = {}
        errors: dict[str, str] = {}
        for group in self.groups:
            none = bool(group.none_field and posted.get(group.none_field))
            for f in group.fields:
                value = posted.get(f.link_id, "").strip()
                if not value and none and f.type == "choice" and NO["code"] in f.codings:
                    value = NO["code"]
                problem = _problem(f, value)
                if problem:
                    errors[f.link_id] = problem
                if value:
                    values[f.link_id] = value
        gender = posted.get(GENDER_FIELD, "").strip()
        if gender:
            values[GENDER_FIELD] = gender
            if gender not in {o.value for o in self.genders}:
                errors[GENDER_FIELD] = "choose one of the listed values"
        return Answers(values, errors)

    def bundle(self, answers: Answers, minted: uuid.UUID | None = None) -> dict:
        """A FHIR collection Bundle: a Patient (its id minted here, per submission) and the
        response to the questionnaire, its items grouped as the questionnaire's, only the
        answered ones (an item left out is unknown). ``answers`` must have no errors."""
        patient_id = minted or uuid.uuid4()
        response_id = uuid.uuid5(patient_id, "QuestionnaireResponse")
        patient_url = f"urn:uuid:{patient_id}"
        gender = answers.values.get(GENDER_FIELD)
        patient = {"resourceType": "Patient", "id": str(patient_id), **({"gender": gender} if gender else {})}
        items = []
        for group in self.groups:
            answered = [
                _item(f, answers.values[f.link_id]) for f in group.fields if f.link_id in answers.values
            ]
            if answered:
                items.append({"linkId": group.link_id, "text": group.text, "item": answered})
        response = {
            "resourceType": "QuestionnaireResponse",
            "id": str(response_id),
            "questionnaire": self.canonical,
            "status": "completed",
            "subject": {"reference": patient_url},
            "item": items,
        }
        return {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"fullUrl": patient_url, "resource": patient},
                {"fullUrl": f"urn:uuid:{response_id}", "resource": response},
            ],
        }


def _group(item: dict) -> Group:
    fields = tuple(_field(i) for i in item.get("item", ()) if i.get("type") != "display")
    return Group(item["linkId"], item.get("text", item["linkId"]), fields)


def _field(item: dict) -> Field:
    kind = item.get("type")
    help_text = "; ".join(
        c["text"] for c in item.get("item", ()) if c.get("type") == "display" and "text" in c
    )
    common = {
        "link_id": item["linkId"],
        "text": item.get("text", item["linkId"]),
        "definition": item.get("definition", ""),
        "type": kind,
        "help": help_text or None,
    }
    initial = item.get("initial", [{}])[0] if item.get("initial") else {}
    if kind == "choice":
        codings = {o["valueCoding"]["code"]: o["valueCoding"] for o in item.get("answerOption", ())}
        options = tuple(Option(code, c.get("display", code).lower()) for code, c in codings.items())
        start = initial.get("valueCoding", {}).get("code", "")
        return Field(**common, options=options, codings=codings, initial=start if start in codings else "")
    if kind == "boolean":
        start = initial.get("valueBoolean")
        value = "" if start is None else str(start).lower()
        return Field(**common, options=tuple(Option(*o) for o in BOOLEAN_OPTIONS), initial=value)
    if kind in ("integer", "decimal"):
        start = initial.get("valueInteger" if kind == "integer" else "valueDecimal")
        return Field(**common, unit=_unit(item), initial="" if start is None else str(start))
    raise FormModelError(f"item {item['linkId']}: the form cannot ask an item of type {kind!r}")


def _unit(item: dict) -> str | None:
    for ext in item.get("extension", ()):
        if ext.get("url") == UNIT_EXTENSION:
            coding = ext.get("valueCoding", {})
            return coding.get("display") or coding.get("code")
    return None


def _problem(f: Field, value: str) -> str | None:
    """Why ``value`` cannot answer ``f`` (empty is "not asked", always allowed)."""
    if not value:
        return None
    if f.type == "integer" and not INTEGER.fullmatch(value):
        return f"“{value}” is not a whole number"
    if f.type == "integer" and int(value) not in FHIR_INTEGER:
        return f"“{value}” is too large"
    if f.type == "decimal" and not DECIMAL.fullmatch(value):
        return f"“{value}” is not a number (write it like 12.5)"
    if f.type == "decimal" and not math.isfinite(float(value)):
        return f"“{value}” is too large"
    if f.options and value not in {o.value for o in f.options}:
        return "choose one of the listed answers"
    return None


def _item(f: Field, value: str) -> dict:
    """A response item answering ``f`` with the (checked) form ``value``."""
    if f.type == "choice":
        answer = {"valueCoding": f.codings[value]}
    elif f.type == "boolean":
        answer = {"valueBoolean": value == "true"}
    elif f.type == "integer":
        answer = {"valueInteger": int(value)}
    else:
        answer = {"valueDecimal": float(value)}
    return {"linkId": f.link_id, "text": f.text, "answer": [answer]}


@dataclass
class FormView:
    """What the form shows: the model, the values (as typed, or the initial ones), the
    errors by field, the items the engine still asks about (in its order), the Bundle or
    response the answers made, where the form posts to, whether the patient is given (a
    CDS order's form: the record's Patient, so no sex to ask), and the CDS cards of the
    order it answers for."""

    model: FormModel
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    bundle_json: str | None = None
    action: str = "/case"
    patient_given: bool = False
    cards: list[dict] = field(default_factory=list)

    @classmethod
    def blank(cls, model: FormModel) -> FormView:
        return cls(model, model.initial_values())

    def show_results(self, results: list[CaseResult]) -> None:
        """Mark the items the results' questions name, and put each shape message about an
        answer next to its field (the page also lists them with the case)."""
        linkid = self.model.by_definition()
        for result in results:
            for question in result.questions:
                found = linkid.get(question["about"]["iri"])
                if found and found not in self.asked:
                    self.asked.append(found)
            for error in result.errors:
                found = linkid.get(error.get("path") or "")
                if found:
                    self.errors.setdefault(found, error["message"])
