"""Validate patient cases with the SHACL case shapes.

Two validators return the same results:

* ``validate_reference``: pyshacl, the reference implementation of SHACL.
* ``validate_fast``: the SHACL Core constraint components the case shapes use, compiled
  to SPARQL over the pyoxigraph store plus per-value checks. pyshacl checks about 2,000
  cases per second on this machine, too slow for batch assessment; this validator reads
  the same shapes (nothing about cases is written here), refuses any SHACL feature it
  does not implement with an error naming it, and is tested against pyshacl.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pyoxigraph as ox
from rdflib import RDF, BNode, Graph, Namespace, URIRef
from rdflib.collection import Collection

from .definitions import UnsupportedConstruct

SH = Namespace("http://www.w3.org/ns/shacl#")
XSD_NS = "http://www.w3.org/2001/XMLSchema#"

# Lexical forms of the XSD datatypes whose well-formedness sh:datatype must check.
_INTEGER = r"[+-]?[0-9]+"
_ZONE = r"(Z|[+-][0-9]{2}:[0-9]{2})?"
LEXICAL = {
    "integer": _INTEGER,
    "int": _INTEGER,
    "long": _INTEGER,
    "short": _INTEGER,
    "byte": _INTEGER,
    "nonNegativeInteger": r"\+?[0-9]+|-0+",
    "positiveInteger": r"\+?0*[1-9][0-9]*",
    "decimal": r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)",
    "double": r"[+-]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|INF|NaN)|-INF",
    "float": r"[+-]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|INF|NaN)|-INF",
    "boolean": r"true|false|1|0",
    "date": r"-?[0-9]{4,}-[0-9]{2}-[0-9]{2}" + _ZONE,
    "dateTime": r"-?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?" + _ZONE,
}
NUMERIC = {
    f"{XSD_NS}{n}"
    for n in (
        "integer",
        "int",
        "long",
        "short",
        "byte",
        "nonNegativeInteger",
        "positiveInteger",
        "nonPositiveInteger",
        "negativeInteger",
        "unsignedLong",
        "unsignedInt",
        "unsignedShort",
        "unsignedByte",
        "decimal",
        "double",
        "float",
    )
}
NODE_KINDS = {
    SH.IRI: {"iri"},
    SH.BlankNode: {"bnode"},
    SH.Literal: {"literal"},
    SH.BlankNodeOrIRI: {"bnode", "iri"},
    SH.BlankNodeOrLiteral: {"bnode", "literal"},
    SH.IRIOrLiteral: {"iri", "literal"},
}
TARGETS = (SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf)
DESCRIPTIVE = {
    SH.name,
    SH.description,
    SH.message,
    SH.severity,
    SH.order,
    SH.group,
    SH.property,
    SH.path,
    SH.deactivated,
    *TARGETS,
}
COMPONENTS = {
    SH.datatype,
    SH.minInclusive,
    SH.maxInclusive,
    SH.minExclusive,
    SH.maxExclusive,
    SH["class"],
    SH.nodeKind,
    SH["in"],
    SH.hasValue,
    SH.disjoint,
    SH.minCount,
    SH.maxCount,
}


@dataclass(frozen=True)
class ShapeResult:
    """One SHACL validation result, as both validators report it."""

    focus: str
    path: str | None
    value: str | None
    component: str
    message: str
    shape: str
    severity: str


def _kind(term) -> str:
    if isinstance(term, ox.NamedNode):
        return "iri"
    if isinstance(term, ox.BlankNode):
        return "bnode"
    return "literal"


def _term_key(term) -> str:
    return term.value if isinstance(term, ox.NamedNode) else str(term)


def well_formed(literal: ox.Literal) -> bool:
    dt = literal.datatype.value
    if not dt.startswith(XSD_NS):
        return True
    pattern = LEXICAL.get(dt[len(XSD_NS) :])
    return pattern is None or re.fullmatch(pattern, literal.value) is not None


def _number(term) -> Decimal | float | None:
    if not isinstance(term, ox.Literal) or term.datatype.value not in NUMERIC or not well_formed(term):
        return None
    text = term.value
    try:
        return Decimal(text)
    except InvalidOperation:
        return float(text.replace("INF", "inf"))


def _to_ox(node):
    if isinstance(node, URIRef):
        return ox.NamedNode(str(node))
    if isinstance(node, BNode):
        return ox.BlankNode(str(node))
    datatype = ox.NamedNode(str(node.datatype)) if node.datatype else None
    return ox.Literal(str(node), datatype=datatype, language=node.language)


@dataclass
class _Shape:
    iri: str
    path: str | None
    constraints: dict
    message: str
    severity: str


class FastValidator:
    """The case shapes compiled once; ``validate`` runs them over a store."""

    def __init__(self, shapes: Graph):
        self.node_shapes: list[tuple[list, _Shape, list[_Shape]]] = []
        for node_shape in sorted({s for t in TARGETS for s in shapes.subjects(t, None)}, key=str):
            if (
                shapes.value(node_shape, SH.deactivated) is not None
                and shapes.value(node_shape, SH.deactivated).toPython()
            ):
                continue
            targets = [(t, o) for t in TARGETS for o in shapes.objects(node_shape, t)]
            props = [self._shape(shapes, p) for p in shapes.objects(node_shape, SH.property)]
            self.node_shapes.append((targets, self._shape(shapes, node_shape), props))

    @staticmethod
    def _shape(shapes: Graph, node) -> _Shape:
        for pred in set(shapes.predicates(node)):
            if pred.startswith(str(SH)) and pred not in DESCRIPTIVE and pred not in COMPONENTS:
                raise UnsupportedConstruct(
                    f"shape {node}: SHACL feature {pred} is not implemented by the fast validator"
                )
        path = shapes.value(node, SH.path)
        if path is not None and not isinstance(path, URIRef):
            raise UnsupportedConstruct(f"shape {node}: only predicate paths are implemented")
        constraints = {}
        for comp in COMPONENTS:
            values = list(shapes.objects(node, comp))
            if not values:
                continue
            if comp == SH["in"]:
                constraints[comp] = {_term_key(_to_ox(v)) for v in Collection(shapes, values[0])}
            elif comp in (SH.minInclusive, SH.maxInclusive, SH.minExclusive, SH.maxExclusive):
                constraints[comp] = _number(_to_ox(values[0]))
            else:
                constraints[comp] = values[0]
        severity = shapes.value(node, SH.severity) or SH.Violation
        message = shapes.value(node, SH.message)
        return _Shape(str(node), str(path) if path else None, constraints, str(message or ""), str(severity))

    # -- evaluation -------------------------------------------------------------------
    def validate(self, store: ox.Store) -> list[ShapeResult]:
        results: list[ShapeResult] = []
        self._instances: dict[str, set[str]] = {}
        self._by_path: dict[str, dict[str, list]] = {}
        for targets, node_shape, props in self.node_shapes:
            focus = self._focus_nodes(store, targets)
            if not focus:
                continue
            results += self._check(store, node_shape, {f: [t] for f, t in focus.items()}, focus)
            for prop in props:
                results += self._check(store, prop, self._values(store, prop.path), focus)
        return results

    def _focus_nodes(self, store: ox.Store, targets) -> dict[str, object]:
        focus = {}
        for kind, obj in targets:
            if kind == SH.targetClass:
                q = f"SELECT ?x WHERE {{ ?x a/<http://www.w3.org/2000/01/rdf-schema#subClassOf>* <{obj}> }}"
            elif kind == SH.targetSubjectsOf:
                q = f"SELECT DISTINCT ?x WHERE {{ ?x <{obj}> ?o }}"
            elif kind == SH.targetObjectsOf:
                q = f"SELECT DISTINCT ?x WHERE {{ ?s <{obj}> ?x }}"
            else:
                focus[_term_key(_to_ox(obj))] = _to_ox(obj)
                continue
            for row in store.query(q):
                focus[_term_key(row["x"])] = row["x"]
        return focus

    def _values(self, store: ox.Store, path: str) -> dict[str, list]:
        """Every (subject, object) of a predicate, by subject; one query per predicate."""
        if path not in self._by_path:
            values: dict[str, list] = defaultdict(list)
            for row in store.query(f"SELECT ?s ?o WHERE {{ ?s <{path}> ?o }}"):
                values[_term_key(row["s"])].append(row["o"])
            self._by_path[path] = values
        return self._by_path[path]

    def _instances_of(self, store: ox.Store, cls: str) -> set[str]:
        if cls not in self._instances:
            q = f"SELECT ?x WHERE {{ ?x a/<http://www.w3.org/2000/01/rdf-schema#subClassOf>* <{cls}> }}"
            self._instances[cls] = {_term_key(r["x"]) for r in store.query(q)}
        return self._instances[cls]

    def _check(self, store, shape: _Shape, values: dict[str, list], focus: dict) -> list[ShapeResult]:
        out = []
        c = shape.constraints

        def fail(f: str, comp, value=None) -> None:
            out.append(
                ShapeResult(
                    f,
                    shape.path,
                    None if value is None else str(value),
                    str(comp),
                    shape.message,
                    shape.iri,
                    shape.severity,
                )
            )

        for f in focus:
            vals = values.get(f, [])
            if SH.minCount in c and len(vals) < int(c[SH.minCount]):
                fail(f, SH.MinCountConstraintComponent)
            if SH.maxCount in c and len(vals) > int(c[SH.maxCount]):
                fail(f, SH.MaxCountConstraintComponent)
            if SH.hasValue in c and _term_key(_to_ox(c[SH.hasValue])) not in {_term_key(v) for v in vals}:
                fail(f, SH.HasValueConstraintComponent)
            if SH.disjoint in c:
                other = {_term_key(o) for o in self._values(store, str(c[SH.disjoint])).get(f, [])}
                for v in vals:
                    if _term_key(v) in other:
                        fail(f, SH.DisjointConstraintComponent, v)
            for v in vals:
                self._check_value(store, c, f, v, fail)
        return out

    def _check_value(self, store, c: dict, f: str, v, fail) -> None:
        if SH.datatype in c and not (
            isinstance(v, ox.Literal) and v.datatype.value == str(c[SH.datatype]) and well_formed(v)
        ):
            fail(f, SH.DatatypeConstraintComponent, v)
        if SH.nodeKind in c and _kind(v) not in NODE_KINDS[c[SH.nodeKind]]:
            fail(f, SH.NodeKindConstraintComponent, v)
        if SH["class"] in c and (
            not isinstance(v, ox.NamedNode | ox.BlankNode)
            or _term_key(v) not in self._instances_of(store, str(c[SH["class"]]))
        ):
            fail(f, SH.ClassConstraintComponent, v)
        if SH["in"] in c and _term_key(v) not in c[SH["in"]]:
            fail(f, SH.InConstraintComponent, v)
        for comp, ok, name in (
            (SH.minInclusive, lambda n, b: n >= b, SH.MinInclusiveConstraintComponent),
            (SH.maxInclusive, lambda n, b: n <= b, SH.MaxInclusiveConstraintComponent),
            (SH.minExclusive, lambda n, b: n > b, SH.MinExclusiveConstraintComponent),
            (SH.maxExclusive, lambda n, b: n < b, SH.MaxExclusiveConstraintComponent),
        ):
            if comp in c:
                n, bound = _number(v), c[comp]
                if isinstance(n, float) or isinstance(bound, float):
                    n, bound = (None if n is None else float(n)), float(bound)
                if n is None or not ok(n, bound):
                    fail(f, name, v)


def validate_fast(store: ox.Store, shapes: Graph) -> list[ShapeResult]:
    return FastValidator(shapes).validate(store)


def validate_reference(data: Graph, shapes: Graph) -> list[ShapeResult]:
    """pyshacl over an rdflib graph holding the ontology and the cases."""
    import pyshacl  # lazy: heavy import

    _, report, _ = pyshacl.validate(data, shacl_graph=shapes, inference="none", allow_warnings=True)
    results = []
    for r in report.subjects(RDF.type, SH.ValidationResult):
        focus = report.value(r, SH.focusNode)
        path = report.value(r, SH.resultPath)
        value = report.value(r, SH.value)
        results.append(
            ShapeResult(
                focus=str(focus) if isinstance(focus, URIRef) else f"_:{focus}",
                path=str(path) if path is not None else None,
                value=None if value is None else str(_to_ox(value)),
                component=str(report.value(r, SH.sourceConstraintComponent)),
                message=str(report.value(r, SH.resultMessage) or ""),
                shape=str(report.value(r, SH.sourceShape)),
                severity=str(report.value(r, SH.resultSeverity)),
            )
        )
    return results
