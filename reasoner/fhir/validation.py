"""Validate a FHIR Bundle's JSON, and say what is wrong with it in FHIR's terms.

``fhir.resources`` (its R4B models) validates; this module stands before and after it.
Before, it checks what the models take for granted and fail on with a ``KeyError`` or a
``TypeError`` instead of a validation error: the entries are objects, and every
``resourceType`` (of entries and contained resources alike) names a FHIR R4 resource, with
a suggestion when one is misspelt. After, it turns pydantic's errors (``Input should be a
valid dictionary or instance of Coding``, ``Value is expected from the instance of
Reference, but got type <class 'int'>``, a string parsed as JSON) into the element at fault
in FHIRPath form (``Condition/c1: verificationStatus.coding[0]``) and what it must be.

A bundle whose every object has a shape fhir.resources accepted before in this process is
validated by ``known_shapes`` instead (each element by its field's own validation) and read
as a view; every other bundle is validated by the models, and its shapes learnt when valid.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from functools import cache, lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    from .known_shapes import View

READ_TYPES = (
    "Patient",
    "Condition",
    "Observation",
    "Procedure",
    "MedicationStatement",
    "Device",
    "Medication",
    "QuestionnaireResponse",
)
"""The resource types the FHIR input reads: a misspelt type is matched against them."""
ABSTRACT_TYPES = ("Resource", "DomainResource")
JSON_KINDS = {dict: "a JSON object", list: "a JSON array", str: "a string", bool: "true or false"}
MODEL_TYPES = ("model_type", "model_validation_format", "json_invalid", "fhir-validation-wrong-resource-type")
"""Pydantic error types that mean "this element must be an object of a FHIR data type"."""
PROBLEMS = {
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "list_type": "must be a JSON array",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "decimal_type": "must be a number",
    "float_type": "must be a number",
    "date_type": "must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)",
    "date_parsing": "must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)",
    "date_from_datetime_parsing": "must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)",
    "date_from_datetime_inexact": "must be a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD), without a time",
    "datetime_type": "must be a FHIR dateTime",
    "datetime_parsing": "must be a FHIR dateTime",
    "extra_forbidden": "is not an element of FHIR R4 here",
    "missing": "is required",
    "model_field_validation.missing": "is required",
}
"""What the element at fault must be, by pydantic error type (other types keep their message)."""


class FhirInputError(Exception):
    """A bundle that cannot be read as one patient's case: names the bundle (its source),
    the resource (when one is at fault) and the problem."""

    def __init__(self, source: str, problem: str, resource: str | None = None):
        self.source, self.problem, self.resource = source, problem, resource
        super().__init__(str(self))

    @property
    def detail(self) -> str:
        """The message without the source, for reports that name the file themselves."""
        return f"{self.resource}: {self.problem}" if self.resource else self.problem

    def __str__(self) -> str:
        return f"{self.source}: {self.detail}"


def is_fhir(doc: object) -> bool:
    """Whether a parsed JSON document is FHIR (it names a ``resourceType``) rather than
    JSON-LD. A FHIR document that is not a Bundle is then refused by ``validated_bundle``
    with that reason, instead of failing as JSON-LD."""
    return isinstance(doc, dict) and "resourceType" in doc


def json_kind(value: object) -> str:
    """What kind of JSON value ``value`` is, as a message says it."""
    if value is None:
        return "null"
    return JSON_KINDS.get(type(value), "a number")


def brief(value: object, most: int = 60) -> str:
    """A value of the input as a message quotes it (``repr``), cut short when long."""
    return cut(repr(value), most)


def cut(text: str, most: int = 60) -> str:
    return text if len(text) <= most else f"{text[:most]}… ({len(text):,} characters)"


def validated_bundle(
    doc: object, source: str, accepted: tuple[str, ...], located: Sequence[str] | None = None
) -> Bundle | View:
    """``doc`` as a valid FHIR R4 Bundle of one of the ``accepted`` types: a view of it
    when its shapes are known to be valid (``known_shapes``), else fhir.resources' model.
    Raises ``FhirInputError`` naming the element at fault (and, given ``located``, the
    place each entry was read from: a Bulk Data file and line)."""
    if not (is_fhir(doc) and doc["resourceType"] == "Bundle"):
        kind = f"resourceType {brief(doc.get('resourceType'))}" if isinstance(doc, dict) else json_kind(doc)
        raise FhirInputError(source, f"not a FHIR Bundle ({kind})")
    if doc.get("type") not in accepted:
        raise FhirInputError(
            source, f"bundle type {brief(doc.get('type'))} is not read: use one of {', '.join(accepted)}"
        )
    from .known_shapes import bundle_view, learn_bundle

    view = bundle_view(doc)  # accepts only what passes the checks below, and is faster
    if view is not None:
        return view
    _check_structure(doc, source)
    from fhir.resources.R4B.bundle import Bundle  # deferred: large imports
    from pydantic import ValidationError

    valid = entry_by_entry(doc)
    if valid is not None:
        learn_bundle(doc)
        return valid
    try:
        valid = Bundle.model_validate(doc)
    except ValidationError as exc:
        raise _invalid(doc, source, exc, located) from None
    except (TypeError, KeyError, AttributeError, ValueError, RecursionError):
        # What fhir.resources raises, rather than a ValidationError, for a few shapes of
        # malformed data that ``_check_structure`` does not foresee: invalid all the same.
        raise FhirInputError(
            source, "invalid FHIR R4: an element holds a value of the wrong JSON type or structure"
        ) from None
    learn_bundle(doc)
    return valid


def entry_by_entry(doc: dict) -> Bundle | None:
    """The bundle validated one resource at a time, each by its own model, and then the
    bundle around the validated resources (pydantic keeps a model instance as it is), or
    None when anything is invalid: then the whole bundle's validation, as before, says what.

    The same models and checks, in half the time: validating the bundle whole dispatches
    every entry's resource to its model by name, which fhir.resources resolves by an import
    each time (3.4 ms against 6.3 ms per generated 25-resource bundle, measured on this
    machine). ``tests/test_fhir_fast_validation.py`` shows both accept and reject the same
    bundles, valid and mutated, and give equal models."""
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    entries = doc.get("entry")
    if not entries:
        return None
    try:
        validated = [
            entry if entry.get("resource") is None else {**entry, "resource": _resource(entry["resource"])}
            for entry in entries
        ]
        return Bundle.model_validate({**doc, "entry": validated})
    except (ValidationError, TypeError, KeyError, AttributeError, ValueError, RecursionError):
        return None


def _resource(resource: dict):
    """One resource validated by its own model (its type checked known by ``_check_structure``)."""
    return _model(resource["resourceType"]).model_validate(resource)


@cache
def _model(kind: str):
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(kind)


def _check_structure(doc: dict, source: str) -> None:
    """``entry`` is a list of objects, each ``resource`` an object, and every
    ``resourceType`` the name of a FHIR R4 resource type. Places are named as FHIRPath names
    them (``Bundle.entry[1].resource``)."""
    entries = doc.get("entry", [])
    if not isinstance(entries, list):
        raise FhirInputError(
            source, f"must be a JSON array of entries, not {json_kind(entries)}", "Bundle.entry"
        )
    for i, entry in enumerate(entries):
        where = f"Bundle.entry[{i}]"
        if not isinstance(entry, dict):
            raise FhirInputError(source, f"must be a JSON object, not {json_kind(entry)}", where)
        resource = entry.get("resource")
        if resource is not None and not isinstance(resource, dict):
            raise FhirInputError(
                source,
                f"must be a FHIR resource (a JSON object), not {json_kind(resource)}",
                f"{where}.resource",
            )
    check_resource_types(doc, "Bundle", source)


def check_resource_types(node: object, where: str, source: str) -> None:
    """``FhirInputError`` at the first ``resourceType`` in ``node`` (a resource, or any JSON
    holding resources) that is not the name of a FHIR R4 resource type; ``where`` names
    ``node`` (``Bundle``, ``prefetch.conditions``). A first walk only looks (most input has
    no such type, and naming every node's place costs more than the walk); a second one,
    when there is one, finds its place."""
    if all(isinstance(kind, str) and _known_type(kind) for kind in _resource_types(node)):
        return
    pending: list[tuple[object, str]] = [(node, where)]
    while pending:  # iterative: the nesting is bounded by the JSON reader, not by the stack
        node, where = pending.pop()
        if isinstance(node, dict):
            if "resourceType" in node:
                _check_resource_type(node["resourceType"], where, source)
            pending += [(value, f"{where}.{key}") for key, value in node.items()]
        elif isinstance(node, list):
            pending += [(value, f"{where}[{i}]") for i, value in enumerate(node)]


def _resource_types(node: object) -> Iterator[object]:
    """Every ``resourceType`` value in ``node``, at any depth."""
    pending = [node]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if "resourceType" in node:
                yield node["resourceType"]
            pending += node.values()
        elif isinstance(node, list):
            pending += node


@lru_cache(maxsize=1024)  # bounded: the names come from the input
def _known_type(kind: str) -> bool:
    """Whether ``kind`` names a concrete FHIR R4 resource type."""
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.resource import Resource

    try:
        return issubclass(get_fhir_model_class(kind), Resource) and kind not in ABSTRACT_TYPES
    except (ValueError, KeyError, AttributeError, TypeError):
        return False


def _check_resource_type(kind: object, where: str, source: str) -> None:
    if not isinstance(kind, str):
        raise FhirInputError(source, f"must be a string, not {json_kind(kind)}", f"{where}.resourceType")
    if not _known_type(kind):
        near = difflib.get_close_matches(kind, READ_TYPES, n=1, cutoff=0.75)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise FhirInputError(
            source, f"{brief(kind)} is not a FHIR R4 resource type{hint}", f"{where}.resourceType"
        )


def _invalid(doc: dict, source: str, exc: ValidationError, located: Sequence[str] | None) -> FhirInputError:
    """The validation errors as one error: ``element: problem`` per error, grouped under
    the resource at fault (named on the error when there is one)."""
    found: dict[str, list[str]] = {}
    for err in exc.errors():
        loc, where = list(err["loc"]), "Bundle"
        if loc[:1] == ["entry"] and len(loc) > 2 and loc[2] == "resource":
            where, loc = _resource_name(doc, loc[1], located), loc[3:]
        element = _fhirpath(loc)
        message = _problem(err)
        found.setdefault(where, []).append(f"{element}: {message}" if element else message)
    if len(found) == 1:
        ((where, problems),) = found.items()
        return FhirInputError(source, "invalid FHIR R4: " + "; ".join(problems), where)
    text = "; ".join(f"{where}: {p}" for where, problems in found.items() for p in problems)
    return FhirInputError(source, "invalid FHIR R4: " + text)


def problems(exc: ValidationError) -> list[str]:
    """Each validation error of one resource as ``element: problem``, in FHIR's terms."""
    return [
        f"{element}: {_problem(err)}" if (element := _fhirpath(list(err["loc"]))) else _problem(err)
        for err in exc.errors()
    ]


def _fhirpath(loc: list) -> str:
    """A pydantic location as FHIRPath (``coding[0].code``), without the models' own steps
    (``root``, ``resource_type``)."""
    out = ""
    for step in loc:
        if step in ("root", "resource_type"):
            continue
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def _problem(err: dict) -> str:
    """What the element must be, in FHIR's terms, with the kind of JSON value it is."""
    kind, value = err["type"], err.get("input")
    if kind in MODEL_TYPES:
        if isinstance(value, dict) and "resourceType" in value:
            return f"must be a FHIR data type, not a resource (resourceType {brief(value['resourceType'])})"
        return f"must be a JSON object, not {json_kind(value)}"
    if kind in PROBLEMS:
        said = PROBLEMS[kind]
        return (
            said if kind in ("missing", "model_field_validation.missing") else f"{said}, not {brief(value)}"
        )
    if kind == "string_pattern_mismatch":
        return f"{brief(value)} is not in the form FHIR R4 gives this element"
    return cut(err["msg"].removeprefix("Value error, "), 200)


def _resource_name(doc: dict, position: int, located: Sequence[str] | None = None) -> str:
    entry = (doc.get("entry") or [])[position]
    resource = entry.get("resource") if isinstance(entry, dict) else None
    resource = resource if isinstance(resource, dict) else {}
    kind, rid = resource.get("resourceType", "resource"), resource.get("id")
    if located:
        return (
            f"{kind}/{cut(rid)} ({located[position]})"
            if isinstance(rid, str) and rid
            else f"{kind} ({located[position]})"
        )
    return f"{kind}/{cut(rid)}" if isinstance(rid, str) and rid else f"{kind} (entry {position})"
