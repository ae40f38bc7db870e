"""FHIR validation by the shapes fhir.resources has accepted, and resources read through
views of their JSON instead of its models.

Validating a resource with fhir.resources builds a pydantic model for every object in it
(about 140 a generated bundle) and runs fhir_core's Python validators on each: some 3 ms a
bundle, three quarters of a FHIR case's reading. Yet whether fhir.resources accepts a JSON
object as a model depends only on
- its *shape*: the model and the keys it has (``extra="forbid"``; required elements and
  choice types, ``value[x]``, are checked on which elements are present and not null), and
- each element's own value: a primitive by its field's type, an object by its own model.

So a shape that fhir.resources accepted once (``learn``, called on JSON it accepted whole)
is accepted again, and a resource is valid when every object in it has a known shape and
every primitive passes its field's own validation: the field's annotation and settings in a
model of that one field, memoised by value (``Primitive``). Whatever is new or unusual
(an unknown shape, a null, an empty array, a primitive's ``_element`` extension, a resource
type it cannot dispatch, a value its field refuses) makes ``KnownShapes.view`` answer None,
and the caller validates with fhir.resources, whose errors make every message: this path
accepts nothing fhir.resources refuses, and refuses only to hand the bundle on.

What it accepts it reads as a ``View`` built in the same walk: an object with the attributes
of the model it would be (the same names, values converted by the same field validation,
objects as views, absent elements None), without the models' cost.
``tests/test_fhir_known_shapes.py`` shows, on the examples, generated bundles and seeded
mutations of them, that this path accepts only bundles fhir.resources accepts, that its
views hold the models' values element by element, and that every bundle reads as the same
case (or fails with the same message) both ways.

Memory is bounded: at most ``MAX_SHAPES`` shapes are learnt (input decides how many there
are; each is a compiled function of about 4.5 KB, so at most some 23 MB a process) and each
field keeps at most ``MAX_VALUES`` validated values before starting again. The 10,000
bundles of the population benchmark have 32 shapes.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Callable, Iterator
from contextlib import suppress
from functools import cache, cached_property, lru_cache

from pydantic import ValidationError, create_model

MAX_SHAPES = 5_000
MAX_VALUES = 4_096
_MISSING = object()

PRIMITIVE, MODEL, RESOURCE = "primitive", "model", "resource"


class Primitive:
    """One primitive field's own validation (its annotation, its ``Field`` settings and its
    model's configuration, in a model of that one field), memoised by value: the value the
    model would hold, or ``_MISSING`` when the field refuses it."""

    def __init__(self, model: type, name: str) -> None:
        self.model, self.name = model, name
        self.key = model.model_fields[name].alias or name
        self.memo: dict[object, object] = {}

    @cached_property
    def _validate(self) -> typing.Callable[[object], typing.Any]:
        """Built on first use: a model has dozens of fields, and an input uses few."""
        field = self.model.model_fields[self.name]
        holder = create_model(
            f"{self.model.__name__}_{self.name}",
            __config__=self.model.model_config,
            value=(field.annotation, copy.copy(field)),
        )
        return holder.__pydantic_validator__.validate_python

    def convert(self, value: object) -> object:
        """The value the model would hold for ``value``, or ``_MISSING`` when refused."""
        kind = type(value)
        if kind is dict:  # every object is a model's, walked as one (resourceTypes too)
            return _MISSING
        if kind is list:  # a primitive array: validated whole, each time
            if any(type(item) in (dict, list) for item in value):
                return _MISSING
            return self._checked(value)
        # A string is its own key; numbers that are equal but written differently (0.0 and
        # -0.0, 1 and True) stay apart.
        key = value if kind is str else (kind, value) if kind is int or kind is bool else (kind, repr(value))
        found = self.memo.get(key, _MISSING)
        if found is _MISSING:
            found = self._checked(value)
            if len(self.memo) >= MAX_VALUES:
                self.memo.clear()
            self.memo[key] = found
        return found

    def _checked(self, value: object) -> object:
        try:
            converted = self._validate({self.key: value}).value
        except (ValidationError, TypeError, ValueError, KeyError, AttributeError, RecursionError):
            return _MISSING  # refused, as ``validation`` counts what fhir.resources raises
        # A value that validates to nothing is not there (a required element would be
        # missing): refused here.
        return _MISSING if converted is None else converted


class Field(typing.NamedTuple):
    name: str
    """The model's attribute."""
    kind: str
    """``PRIMITIVE``, ``MODEL`` or ``RESOURCE`` (a resource dispatched by its resourceType)."""
    many: bool
    """An array of them (primitive arrays are validated whole by their field)."""
    target: object
    """The ``Primitive`` or the model class; None for a resource."""


@cache
def fields(model: type) -> dict[str, Field]:
    """The model's elements by JSON key, without the primitives' ``_element`` extensions
    (an object that has one takes the reference's path)."""
    from fhir_core.types import FhirBase, FhirElementOrResourceBase

    found: dict[str, Field] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key.startswith("_"):
            continue
        inner, many = _unwrap(info.annotation)
        if isinstance(inner, type) and issubclass(inner, FhirElementOrResourceBase):
            if inner.get_model_klass().__name__ != "Resource":
                continue  # an element of any type: the reference's path
            found[key] = Field(name, RESOURCE, many, None)
        elif isinstance(inner, type) and issubclass(inner, FhirBase):
            found[key] = Field(name, MODEL, many, inner.get_model_klass())
        else:
            found[key] = Field(name, PRIMITIVE, False, Primitive(model, name))
    return found


def _unwrap(annotation: object) -> tuple[object, bool]:
    """The element type of a field's annotation (``X | None``, ``List[X] | None``), and
    whether it is an array; a primitive's annotation as it is."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, _UNION) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        if typing.get_origin(item) is None:
            return item, True
    return annotation, False


_UNION = type(int | None)


def resource_model(kind: object) -> type | None:
    """The model of a resource type, as fhir.resources dispatches a ``Resource`` element;
    None for anything else."""
    return _resource_model(kind) if type(kind) is str else None


@lru_cache(maxsize=1024)  # bounded: the names come from the input
def _resource_model(kind: str) -> type | None:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        model = get_fhir_model_class(kind)
    except (KeyError, ValueError, AttributeError, TypeError):
        return None
    concrete = kind not in ("Resource", "DomainResource")  # abstract: ``validation`` refuses them
    ok = concrete and model.has_resource_base() and model.__resource_type__ == kind
    return model if ok else None


Walk = Callable[[dict, bool, "KnownShapes"], "View | None"]
"""A known shape's walk: (the JSON object, learning, the shapes its children are found in)."""


class KnownShapes:
    """The shapes fhir.resources has accepted, per model (``learn``), and the views of
    documents that have only those (``view``, None for any other)."""

    def __init__(self) -> None:
        self.known: dict[tuple[type, tuple[str, ...]], Walk] = {}
        """Per known shape, its walk (``_compiled``)."""

    def view(self, node: object, model: type) -> View | None:
        """``node`` read as ``model`` when fhir.resources is known to accept it (by the
        shapes it accepted before), else None (also when this cannot tell, as for JSON
        nested deeper than the walk's recursion goes: the reference then says what)."""
        try:
            return self._walk(node, model, learning=False)
        except RecursionError:
            return None

    def learn(self, node: object, model: type) -> None:
        """Record the shapes of ``node``, which fhir.resources accepted as ``model``."""
        if len(self.known) < MAX_SHAPES:
            with suppress(RecursionError):  # the shapes recorded so far were accepted all the same
                self._walk(node, model, learning=True)

    def _walk(self, node: object, model: type, learning: bool) -> View | None:
        """The view of ``node``, validated object by object; when ``learning``, its shapes
        recorded first (each object was accepted as it is)."""
        if type(node) is not dict:
            return None
        walk = self.known.get((model, tuple(node)))
        if walk is None:
            if not learning or len(self.known) >= MAX_SHAPES:
                return None
            table = fields(model)
            if any(key not in table for key in node if key != "resourceType"):
                return None
            walk = self.known[(model, tuple(node))] = _compiled(model, [table.get(k) for k in node])
        return walk(node, learning, self)


def _compiled(model: type, steps: list[Field | None]) -> Walk:
    """The walk of one shape, as a function of its own with each key's step written out: a
    shape is walked many times (every Coding of every bundle), and a loop that looks up
    what each key's field is took a third of the walk's time. The steps are the field
    table's (``fields``): None for resourceType (only the model's own type), a primitive
    converted by its field (its memo looked up first), an object or array of objects walked
    as its model, a resource as its type's model. A child of a known shape is walked by its
    own function; any other (new, not an object, not a resource) by ``KnownShapes._walk``,
    which learns it or says None. The code is built from the field table only: the input's
    keys and values are never written into it."""
    values = [f"v{i}" for i in range(len(steps))]
    scope: dict[str, object] = {
        "MISSING": _MISSING,
        "MODEL": model,
        "VIEW": view_class(model),
        "new": object.__new__,
        "resource_model": resource_model,
        "kind_of": _kind,
    }
    code = ["def walk(node, learning, shapes):"]
    if any(step is not None and step.kind is not PRIMITIVE for step in steps):
        code.append("    known = shapes.known")
    if values:  # an empty object has no values to take
        code.append(f"    {', '.join(values)}, = node.values()")
    kept = []
    for i, (value, step) in enumerate(zip(values, steps, strict=True)):
        code.append(f"    if {value} is None: return None")
        if step is None:
            code.append(f"    if resource_model({value}) is not MODEL: return None")
            continue
        kept.append(f"{step.name!r}: c{i}")
        if step.kind is PRIMITIVE:
            scope[f"memo{i}"], scope[f"convert{i}"] = step.target.memo, step.target.convert
            code += [
                f"    c{i} = memo{i}.get({value}, MISSING) if type({value}) is str else MISSING",
                f"    if c{i} is MISSING:",
                f"        c{i} = convert{i}({value})",
                f"        if c{i} is MISSING: return None",
            ]
            continue
        scope[f"T{i}"] = step.target
        child = (
            [f"target = T{i}"]
            if step.kind is MODEL
            else [
                "target = resource_model(kind_of(item))",
                "if target is None: return None",  # a resource of no type it can dispatch
            ]
        ) + [
            "shape = known.get((target, tuple(item))) if type(item) is dict else None",
            "child = shape(item, learning, shapes) if shape else shapes._walk(item, target, learning)",
            "if child is None: return None",
        ]
        if step.many:
            code += [
                f"    if type({value}) is not list or not {value}: return None",
                f"    c{i} = []",
                f"    for item in {value}:",
                *(f"        {line}" for line in child),
                f"        c{i}.append(child)",
            ]
        else:
            code += [f"    item = {value}", *(f"    {line}" for line in child), f"    c{i} = child"]
    code += [
        "    view = new(VIEW)",
        f"    view.__dict__ = {{{', '.join([*kept, repr('_json') + ': node'])}}}",
        "    return view",
    ]
    exec("\n".join(code), scope)
    return scope["walk"]


def _kind(item: object) -> object:
    return item.get("resourceType") if type(item) is dict else None


class View:
    """A validated JSON object read as the fhir.resources model it would be: the model's
    attributes, its elements' values as the model holds them (converted by the same field
    validation), objects as views, absent elements None. One subclass per model
    (``view_class``) answers None for every element the object does not have."""

    _model: type
    _json: dict
    """The JSON object the view reads."""

    def get_resource_type(self) -> str:
        return self._model.get_resource_type()

    def model_dump(self, **options: object) -> dict:
        """What the model's ``model_dump`` gives (a message showing an element as JSON): the
        model built from the object, which is valid, only when asked."""
        return self._model.model_validate(self._json).model_dump(**options)

    def __iter__(self) -> Iterator[tuple[str, object]]:
        """(name, value) of every element, in the model's order, as iterating a model gives."""
        return ((name, getattr(self, name)) for name in self._model.model_fields)


@cache
def view_class(model: type) -> type[View]:
    """The view of one model's JSON objects: None for every element, unless the object's
    view has it."""
    return type(f"{model.__name__}View", (View,), {**dict.fromkeys(model.model_fields), "_model": model})


def present_elements(resource: object) -> list[str]:
    """The attribute names of the elements a model or a view has (not None), in the
    model's order."""
    if isinstance(resource, View):
        return [name for name in resource._model.model_fields if name in resource.__dict__]
    return [name for name in type(resource).model_fields if getattr(resource, name) is not None]


SHAPES = KnownShapes()
"""The shapes learnt in this process (each worker process learns its own)."""


def bundle_view(doc: dict) -> View | None:
    """The bundle as a view when fhir.resources is known to accept it, else None."""
    from fhir.resources.R4B.bundle import Bundle

    return SHAPES.view(doc, Bundle)


def learn_bundle(doc: dict) -> None:
    """Learn the shapes of a bundle fhir.resources accepted."""
    from fhir.resources.R4B.bundle import Bundle

    SHAPES.learn(doc, Bundle)
