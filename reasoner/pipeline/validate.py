"""Validate patient cases with the SHACL case shapes.

Two validators return the same results:

* ``validate_reference``: pyshacl, the reference implementation of SHACL.
* ``validate_fast``: the SHACL Core constraint components the case shapes use, compiled
  to SPARQL over the pyoxigraph store plus per-value checks. pyshacl checks about 2,000
  cases per second on this machine, too slow for batch assessment; this validator reads
  the same shapes (nothing about cases is written here), refuses any SHACL feature it
  does not implement with an error naming it, and is tested against pyshacl.

The fast validator sees literals as the store holds them, and pyoxigraph (like most
triple stores) stores every XSD integer type as xsd:integer: "5"^^xsd:byte is read as
"5"^^xsd:integer, and "200"^^xsd:byte, ill-typed as written (a byte is at most 127), as
the integer 200, which pyshacl rejects and this validator accepts.

pyoxigraph holds integers in 64 bits and decimals with 18 digits after the point below
about 1.7e20: a well-formed number beyond that ("12.0000000000000000001"^^xsd:decimal,
"9223372036854775808"^^xsd:integer) is no number to its SPARQL, so every comparison with
it fails, where pyshacl compares exactly. The cases holding such a literal are validated
by pyshacl instead (``FastValidator.validate``): rare, exact, and a batch that has them
costs one pyshacl run (about a second for 500 cases).
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import pyoxigraph as ox
from rdflib import RDF, BNode, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection

from .cases import term_key, to_rdflib
from .definitions import DECIMAL_TYPES, INTEGER_FAMILY, UnsupportedConstruct

SH = Namespace("http://www.w3.org/ns/shacl#")
XSD_NS = "http://www.w3.org/2001/XMLSchema#"

# Lexical forms of the XSD datatypes whose well-formedness sh:datatype must check.
_INTEGER = r"[+-]?[0-9]+"
_ZONE = r"(Z|[+-][0-9]{2}:[0-9]{2})?"
LEXICAL = {
    **{str(t)[len(XSD_NS) :]: _INTEGER for t in INTEGER_FAMILY},
    "decimal": r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)",
    "double": r"[+-]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|INF|NaN)|-INF",
    "float": r"[+-]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|INF|NaN)|-INF",
    "boolean": r"true|false|1|0",
    "date": r"-?[0-9]{4,}-[0-9]{2}-[0-9]{2}" + _ZONE,
    "dateTime": r"-?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?" + _ZONE,
}
# The value spaces of the XSD integer types (XSD 1.1 Part 2, section 3.4): a literal
# outside them is ill-typed ("200"^^xsd:byte), although its lexical form is an integer's.
INTEGER_RANGES: dict[str, tuple[int | None, int | None]] = {
    "nonNegativeInteger": (0, None),
    "positiveInteger": (1, None),
    "nonPositiveInteger": (None, 0),
    "negativeInteger": (None, -1),
    "long": (-(2**63), 2**63 - 1),
    "int": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-(2**7), 2**7 - 1),
    "unsignedLong": (0, 2**64 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "unsignedShort": (0, 2**16 - 1),
    "unsignedByte": (0, 2**8 - 1),
}
NODE_KINDS = {
    SH.IRI: {"iri"},
    SH.BlankNode: {"bnode"},
    SH.Literal: {"literal"},
    SH.BlankNodeOrIRI: {"bnode", "iri"},
    SH.BlankNodeOrLiteral: {"bnode", "literal"},
    SH.IRIOrLiteral: {"iri", "literal"},
}
INTEGER_TYPES = frozenset(map(str, INTEGER_FAMILY))
RANGES = {SH.minInclusive: ">=", SH.maxInclusive: "<=", SH.minExclusive: ">", SH.maxExclusive: "<"}
"""The range components, as SPARQL comparisons of a value with the bound."""
RDFS_SUBCLASS = "http://www.w3.org/2000/01/rdf-schema#subClassOf"
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
COMPONENT_OF = {
    SH.datatype: SH.DatatypeConstraintComponent,
    SH.minInclusive: SH.MinInclusiveConstraintComponent,
    SH.maxInclusive: SH.MaxInclusiveConstraintComponent,
    SH.minExclusive: SH.MinExclusiveConstraintComponent,
    SH.maxExclusive: SH.MaxExclusiveConstraintComponent,
    SH["class"]: SH.ClassConstraintComponent,
    SH.nodeKind: SH.NodeKindConstraintComponent,
    SH["in"]: SH.InConstraintComponent,
    SH.hasValue: SH.HasValueConstraintComponent,
    SH.disjoint: SH.DisjointConstraintComponent,
    SH.minCount: SH.MinCountConstraintComponent,
    SH.maxCount: SH.MaxCountConstraintComponent,
    SH["or"]: SH.OrConstraintComponent,
}
COMPONENTS = set(COMPONENT_OF)
# Constraints on a value alone (not on its focus node, its other values or the graph):
# the only ones a member shape of sh:or may use, so that sh:or compiles to one SPARQL
# expression over ?value. sh:or itself is one of them when its members are.
VALUE_COMPONENTS = (
    SH.datatype,
    SH.nodeKind,
    SH["in"],
    SH.minInclusive,
    SH.maxInclusive,
    SH.minExclusive,
    SH.maxExclusive,
    SH["or"],
)
# What a member shape of sh:or may carry besides value constraints: it is checked
# against the value itself, so a path, nested property shapes or targets have no place.
MEMBER_DESCRIPTIVE = {SH.name, SH.description, SH.message, SH.severity, SH.order, SH.group, SH.deactivated}


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
    ors: list[list[str]]
    message: str
    severity: str


def _sparql_term(node) -> str:
    return str(_to_ox(node))


def _focus_pattern(targets) -> str:
    """A group pattern binding ?focus to every focus node of a node shape's targets."""
    parts = []
    for kind, obj in targets:
        if kind == SH.targetClass:
            parts.append(f"{{ ?focus a/<{RDFS_SUBCLASS}>* <{obj}> }}")
        elif kind == SH.targetSubjectsOf:
            parts.append(f"{{ SELECT DISTINCT ?focus WHERE {{ ?focus <{obj}> ?t }} }}")
        elif kind == SH.targetObjectsOf:
            parts.append(f"{{ SELECT DISTINCT ?focus WHERE {{ ?t <{obj}> ?focus }} }}")
        else:
            parts.append(f"{{ BIND({_sparql_term(obj)} AS ?focus) }}")
    return "{ SELECT DISTINCT ?focus WHERE { " + " UNION ".join(parts) + " } }"


def _datatype_condition(datatype) -> str:
    """A SPARQL expression true for a literal of this datatype that is well-formed: its
    lexical form is in the datatype's lexical space and, for the XSD integer types, its
    value in the datatype's range. Never an error, so that a negation of it is exact."""
    condition = f"isLiteral(?value) && datatype(?value) = <{datatype}>"
    name = str(datatype).removeprefix(XSD_NS) if str(datatype).startswith(XSD_NS) else None
    if pattern := LEXICAL.get(name):
        condition += f' && REGEX(STR(?value), "^({pattern.replace(chr(92), chr(92) * 2)})$")'
    low, high = INTEGER_RANGES.get(name, (None, None))
    # Compare the lexical form as a decimal: an xsd:unsignedLong may exceed the store's 64-bit integers.
    value = f"<{XSD_NS}decimal>(STR(?value))"
    for operator, bound in ((">=", low), ("<=", high)):
        if bound is not None:
            condition += f" && COALESCE({value} {operator} {bound}.0, false)"
    return condition


def _value_condition(comp, arg) -> str | None:
    """A SPARQL expression true for a value that satisfies the constraint."""
    if comp == SH.datatype:
        return _datatype_condition(arg)
    if comp == SH["or"]:
        # The members are compiled already (see _or_members): one expression each.
        return " || ".join(f"COALESCE({member}, false)" for member in arg) or "false"
    if comp == SH.nodeKind:
        kinds = NODE_KINDS[arg]
        tests = {"iri": "isIRI(?value)", "bnode": "isBlank(?value)", "literal": "isLiteral(?value)"}
        return " || ".join(tests[k] for k in sorted(kinds))
    if comp == SH["in"]:
        return " || ".join(f"sameTerm(?value, {t})" for t in arg) or "false"
    if comp in RANGES:
        # An incomparable value (an IRI, an ill-typed literal) is a violation too.
        return f"COALESCE(?value {RANGES[comp]} {arg}, false)"
    return None


def _argument(shapes: Graph, comp, value):
    """A constraint's parameter in the form ``_value_condition`` and ``_compile`` use."""
    if comp == SH["in"]:
        return [_sparql_term(v) for v in Collection(shapes, value)]
    if comp in (SH.datatype, SH["class"], SH.disjoint, SH.nodeKind):
        return value
    if comp in (SH.minCount, SH.maxCount):
        return int(value)
    return _sparql_term(value)


def _or_members(shapes: Graph, owner, members, seen: frozenset = frozenset()) -> list[str]:
    """The SPARQL condition of each member shape of an sh:or list.

    A member is checked against the value itself, so only value constraints can be
    evaluated as one expression over ?value; any other SHACL feature in a member (sh:class,
    sh:node, a path or nested sh:property, another logical constraint) is refused.
    """
    conditions = []
    for member in Collection(shapes, members):
        if not isinstance(member, URIRef | BNode) or member in seen:
            raise UnsupportedConstruct(
                f"shape {owner}: sh:or member {member} is not a shape the fast validator can evaluate"
            )
        for pred in set(shapes.predicates(member)):
            if pred.startswith(str(SH)) and pred not in MEMBER_DESCRIPTIVE and pred not in VALUE_COMPONENTS:
                raise UnsupportedConstruct(
                    f"shape {owner}: SHACL feature {pred} inside sh:or is not implemented by the fast "
                    "validator (a member of sh:or may use only sh:datatype, sh:nodeKind, sh:in, "
                    "sh:minInclusive, sh:maxInclusive, sh:minExclusive, sh:maxExclusive and sh:or)"
                )
        deactivated = shapes.value(member, SH.deactivated)
        if deactivated is not None and deactivated.toPython():
            conditions.append("true")  # every value conforms to a deactivated shape
            continue
        parts = [
            _value_condition(comp, _or_members(shapes, owner, value, seen | {member}))
            if comp == SH["or"]
            else _value_condition(comp, _argument(shapes, comp, value))
            for comp in VALUE_COMPONENTS
            for value in shapes.objects(member, comp)
        ]
        conditions.append(" && ".join(f"({part})" for part in parts) or "true")
    return conditions


def _compares(shape: _Shape) -> bool:
    """Whether a property shape compares its values with numbers: a range, an sh:or (its
    members may), or an integer type whose bounds are checked (``_datatype_condition``)."""
    bounded = str(shape.constraints.get(SH.datatype, "")).removeprefix(XSD_NS) in INTEGER_RANGES
    return shape.path is not None and bool(shape.ors or bounded or RANGES.keys() & shape.constraints.keys())


class FastValidator:
    """The shapes compiled once into SPARQL queries that return only the violations."""

    def __init__(self, shapes: Graph):
        self.shapes = shapes
        self.queries: list[tuple[str, _Shape, str]] = []
        # maxCount checks on the same focus nodes share one query, grouped by predicate.
        self.max_counts: dict[tuple[str, int], dict[str, list[_Shape]]] = defaultdict(
            lambda: defaultdict(list)
        )
        node_shapes = sorted({s for t in TARGETS for s in shapes.subjects(t, None)}, key=str)
        for node_shape in node_shapes:
            deactivated = shapes.value(node_shape, SH.deactivated)
            if deactivated is not None and deactivated.toPython():
                continue
            focus = _focus_pattern([(t, o) for t in TARGETS for o in shapes.objects(node_shape, t)])
            self._compile(self._shape(shapes, node_shape), focus, node_level=True)
            for prop in shapes.objects(node_shape, SH.property):
                self._compile(self._shape(shapes, prop), focus, node_level=False)
        self.count_queries = [
            (
                f"SELECT ?focus ?p WHERE {{ {focus} VALUES ?p {{ {' '.join(f'<{p}>' for p in by_path)} }} "
                f"?focus ?p ?value }} GROUP BY ?focus ?p HAVING(COUNT(?value) > {n})",
                by_path,
            )
            for (focus, n), by_path in self.max_counts.items()
        ]
        # The values a range, an sh:or or a bounded integer type compares as numbers, on a
        # property shape's path (a node shape's focus is a case: an IRI or a blank node).
        paths = " ".join(sorted({f"<{shape.path}>" for _, shape, _ in self.queries if _compares(shape)}))
        self.unread_numbers = (
            f"SELECT ?focus ?value WHERE {{ VALUES ?p {{ {paths} }} ?focus ?p ?value "
            "FILTER(!isNumeric(?value) && isLiteral(?value)) }"
        )

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
        for comp in COMPONENTS - {SH["or"]}:
            value = shapes.value(node, comp)
            if value is not None:
                constraints[comp] = _argument(shapes, comp, value)
        # Each sh:or is a constraint of its own (a shape may have several).
        ors = [_or_members(shapes, node, members) for members in shapes.objects(node, SH["or"])]
        severity = shapes.value(node, SH.severity) or SH.Violation
        message = shapes.value(node, SH.message)
        return _Shape(
            str(node), str(path) if path else None, constraints, ors, str(message or ""), str(severity)
        )

    def _compile(self, shape: _Shape, focus: str, node_level: bool) -> None:
        c = shape.constraints
        values = "BIND(?focus AS ?value)" if node_level else f"?focus <{shape.path}> ?value ."

        def add(component, query: str) -> None:
            self.queries.append((str(component), shape, query))

        for comp, arg in [*c.items(), *((SH["or"], members) for members in shape.ors)]:
            if (condition := _value_condition(comp, arg)) is not None:
                add(
                    COMPONENT_OF[comp],
                    f"SELECT ?focus ?value WHERE {{ {focus} {values} FILTER(!({condition})) }}",
                )
            elif comp == SH["class"]:
                add(
                    COMPONENT_OF[comp],
                    f"SELECT ?focus ?value WHERE {{ {focus} {values} MINUS {{ "
                    f"{{ SELECT DISTINCT ?value WHERE {{ ?value a/<{RDFS_SUBCLASS}>* <{arg}> }} }} }} }}",
                )
            elif comp == SH.hasValue:
                if node_level:
                    add(
                        COMPONENT_OF[comp],
                        f"SELECT ?focus WHERE {{ {focus} FILTER(!sameTerm(?focus, {arg})) }}",
                    )
                else:
                    add(
                        COMPONENT_OF[comp],
                        f"SELECT ?focus WHERE {{ {focus} MINUS {{ ?focus <{shape.path}> {arg} }} }}",
                    )
            elif comp == SH.disjoint:
                add(
                    COMPONENT_OF[comp],
                    f"SELECT ?focus ?value WHERE {{ {focus} {values} ?focus <{arg}> ?value }}",
                )
            elif comp == SH.minCount:
                add(
                    COMPONENT_OF[comp],
                    f"SELECT ?focus WHERE {{ {focus} OPTIONAL {{ {values} }} }} "
                    f"GROUP BY ?focus HAVING(COUNT(?value) < {arg})",
                )
            elif comp == SH.maxCount and not node_level:
                self.max_counts[(focus, arg)][shape.path].append(shape)
            elif comp == SH.maxCount:
                add(
                    COMPONENT_OF[comp],
                    f"SELECT ?focus WHERE {{ {focus} {values} }} "
                    f"GROUP BY ?focus HAVING(COUNT(?value) > {arg})",
                )

    def validate(self, store: ox.Store, parsed: Sequence[ox.Quad] = ()) -> list[ShapeResult]:
        """The violations in the store (the knowledge base and ``parsed``, the cases' quads
        as read). Those of a node holding a number pyoxigraph cannot hold
        (``beyond_the_store``) are pyshacl's, over the knowledge base and ``parsed`` as
        written: the store writes literals in canonical form, and "0200"^^xsd:byte becomes
        "200"^^xsd:integer, which pyshacl would accept."""
        beyond = self.beyond_the_store(store)
        results = [r for r in self._compiled(store) if r.focus not in beyond]
        if beyond:
            read = {term_key(q.subject) for q in parsed}
            stored = store.quads_for_pattern(None, None, None, ox.DefaultGraph())
            data = [q for q in stored if term_key(q.subject) not in read] + list(parsed)
            results += [r for r in validate_reference(to_rdflib(data), self.shapes) if r.focus in beyond]
        return results

    def beyond_the_store(self, store: ox.Store) -> set[str]:
        """The IRIs that are the subject of a well-formed literal of the xsd:decimal family
        that pyoxigraph does not read as a number (it holds 64-bit integers and decimals
        with 18 digits after the point). A blank node keeps the compiled shapes' results:
        pyshacl's labels are its own, and a case without an IRI is refused anyway."""
        found: set[str] = set()
        digits = sys.get_int_max_str_digits()
        for row in store.query(self.unread_numbers):
            subject, value = row["focus"], row["value"]
            datatype, text = value.datatype.value, value.value
            if (
                isinstance(subject, ox.NamedNode)
                and datatype in DECIMAL_TYPES
                and re.fullmatch(LEXICAL[datatype[len(XSD_NS) :]], text)
                # An integer longer than Python reads (4,300 digits) is no number to
                # rdflib either: both refuse it, and rdflib would log a traceback.
                and not (datatype in INTEGER_TYPES and digits and len(text.lstrip("+-")) > digits)
            ):
                found.add(subject.value)
        return found

    def _compiled(self, store: ox.Store) -> list[ShapeResult]:
        results = []
        for component, shape, query in self.queries:
            for row in store.query(query):
                value = row["value"] if "value" in query.split("WHERE")[0] else None
                results.append(
                    ShapeResult(
                        term_key(row["focus"]),
                        shape.path,
                        None if value is None else str(value),
                        component,
                        shape.message,
                        shape.iri,
                        shape.severity,
                    )
                )
        component = str(SH.MaxCountConstraintComponent)
        for query, by_path in self.count_queries:
            for focus, prop in store.query(query):
                for shape in by_path[prop.value]:
                    results.append(
                        ShapeResult(
                            term_key(focus),
                            shape.path,
                            None,
                            component,
                            shape.message,
                            shape.iri,
                            shape.severity,
                        )
                    )
        return results


def shacl_report(data: Graph, shapes: Graph) -> Graph:
    """pyshacl's validation report graph (one ``sh:ValidationReport``, a ``sh:result`` per
    violation) over an rdflib graph holding the ontology and the cases: the W3C format
    that SHACL tools and editors read, which ``validate --format turtle|json-ld`` writes
    as pyshacl builds it rather than rebuilding it from ``ShapeResult``."""
    import pyshacl  # lazy: heavy import

    _, report, _ = pyshacl.validate(data, shacl_graph=shapes, inference="none", allow_warnings=True)
    report.bind("sh", SH)
    for prefix, namespace in shapes.namespaces():
        report.bind(prefix, namespace, override=False)
    return report


def serialize_report(report: Graph, fmt: str) -> str:
    """The report graph as Turtle or JSON-LD (``fmt`` ``turtle`` or ``json-ld``); JSON-LD
    compacted with the report's prefixes as its context, so it reads like the Turtle."""
    if fmt == "json-ld":
        terms = {str(t.datatype if isinstance(t, Literal) else t) for triple in report for t in triple}
        context = {
            prefix: str(ns)
            for prefix, ns in report.namespaces()
            if prefix and any(t.startswith(str(ns)) for t in terms)
        }
        return report.serialize(format="json-ld", context=context, indent=2)
    return report.serialize(format=fmt)


def validate_reference(data: Graph, shapes: Graph) -> list[ShapeResult]:
    """pyshacl over an rdflib graph holding the ontology and the cases."""
    report = shacl_report(data, shapes)
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
