"""Seeded synthetic patient cases, for the differential test and the benchmarks.

Everything is read from the knowledge base: the case properties and their ranges from
the case shapes, the findings from the ontology, and the numeric boundaries worth
probing from the facets of the compiled criteria, so that a changed threshold is probed
at its new value without a code change. Generated cases are valid under the case shapes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal

from rdflib import RDF, RDFS, XSD, Graph, URIRef
from rdflib.collection import Collection

from .knowledge import KnowledgeBase
from .pipeline.definitions import DECIMAL_FAMILY, Formula, compile_definitions, leaves
from .pipeline.validate import SH

CASE_NS = "https://example.org/synthetic/case/"


def _boundaries(formulas: dict[URIRef, Formula]) -> dict[str, set[Decimal]]:
    found: dict[str, set[Decimal]] = {}
    for formula in formulas.values():
        for leaf in leaves(formula):
            for prop in leaf.properties:
                for _, bound in leaf.facets:
                    found.setdefault(str(prop), set()).add(bound)
    return found


class CaseGenerator:
    """Generates random, shape-valid cases that probe the criteria's boundaries."""

    def __init__(self, kb: KnowledgeBase, seed: int = 0, p_present: float = 0.08, p_absent: float = 0.45):
        self.rng = random.Random(seed)
        self.p_present, self.p_absent = p_present, p_absent
        onto, shapes = kb.ontology, kb.shapes("case-shapes")
        self.case_class = next(iter(shapes.objects(None, SH.targetClass)))
        self.boundaries = _boundaries(compile_definitions(onto))
        # (property, whole numbers only, xsd:integer allowed, min, max, required)
        self.numeric: list[tuple[str, bool, bool, Decimal | None, Decimal | None, bool]] = []
        self.booleans: list[str] = []
        self.choices: dict[str, list[str]] = {}
        self.finding_props: list[str] = []
        seen: set[str] = set()
        for shape in shapes.subjects(SH.path, None):
            path = shapes.value(shape, SH.path)
            if path == RDF.type or str(path) in seen:
                continue
            props = self._constraints(shapes, path)
            seen.add(str(path))
            datatypes = props.get("datatypes", set())
            if datatypes and datatypes <= set(DECIMAL_FAMILY) and datatypes & {XSD.integer, XSD.decimal}:
                self.numeric.append(
                    (
                        str(path),
                        XSD.decimal not in datatypes,
                        XSD.integer in datatypes,
                        props.get("min"),
                        props.get("max"),
                        props.get("required", False),
                    )
                )
            elif datatypes == {XSD.boolean}:
                self.booleans.append(str(path))
            elif props.get("in"):
                self.choices[str(path)] = props["in"]
            elif props.get("class"):
                self.finding_props.append(str(path))
        # The finding property the criteria read is "present"; the other is "absent".
        used = {
            str(p) for f in compile_definitions(onto).values() for leaf in leaves(f) for p in leaf.properties
        }
        self.finding_props.sort(key=lambda p: p not in used)
        finding_class = next(
            shapes.value(s, SH["class"])
            for s in shapes.subjects(SH.path, URIRef(self.finding_props[0]))
            if shapes.value(s, SH["class"]) is not None
        )
        members = set()
        for sub in onto.transitive_subjects(RDFS.subClassOf, finding_class):
            members |= {str(i) for i in onto.subjects(RDF.type, sub) if isinstance(i, URIRef)}
        self.findings = sorted(members)

    @staticmethod
    def _constraints(shapes: Graph, path) -> dict:
        found: dict = {}
        for shape in shapes.subjects(SH.path, path):
            if (v := shapes.value(shape, SH["class"])) is not None:
                found["class"] = v
            # The datatypes a value may have: sh:datatype, or the members of an sh:or.
            members = [m for o in shapes.objects(shape, SH["or"]) for m in Collection(shapes, o)]
            for node in (shape, *members):
                if (v := shapes.value(node, SH.datatype)) is not None:
                    found.setdefault("datatypes", set()).add(v)
            if (v := shapes.value(shape, SH.minInclusive)) is not None:
                found["min"] = Decimal(str(v))
            if (v := shapes.value(shape, SH.maxInclusive)) is not None:
                found["max"] = Decimal(str(v))
            if (v := shapes.value(shape, SH.minCount)) is not None and int(v) >= 1:
                found["required"] = True
            if (v := shapes.value(shape, SH["in"])) is not None:
                found["in"] = [str(x) for x in Collection(shapes, v)]
        return found

    def _number(self, prop: str, integer: bool, lo: Decimal | None, hi: Decimal | None) -> Decimal:
        rng = self.rng
        bounds = sorted(self.boundaries.get(prop, ()))
        lo = lo if lo is not None else Decimal(0)
        hi = hi if hi is not None else max([*bounds, Decimal(10)]) * 2 + 10
        if bounds and rng.random() < 0.6:
            step = Decimal(1) if integer else rng.choice([Decimal("0.1"), Decimal(1)])
            value = rng.choice(bounds) + rng.choice([-step, Decimal(0), step])
        else:
            value = (
                Decimal(rng.randint(int(lo), int(hi)))
                if integer
                else Decimal(rng.randint(int(lo) * 10, int(hi) * 10)) / 10
            )
        value = min(max(value, lo), hi)
        return value.to_integral_value() if integer else value

    def triples(self, index: int) -> Iterator[str]:
        rng = self.rng
        case = f"<{CASE_NS}{index}>"
        yield f"{case} <{RDF.type}> <{self.case_class}> ."
        for prop, integer, integer_allowed, lo, hi, required in self.numeric:
            if required or rng.random() < 0.6:
                value = self._number(prop, integer, lo, hi)
                # A whole number is written as an integer (6) or a decimal (6.0) when both are valid.
                whole = value == value.to_integral_value()
                if integer or (integer_allowed and whole and rng.random() < 0.5):
                    yield f'{case} <{prop}> "{int(value)}"^^<{XSD.integer}> .'
                else:
                    text = f"{value:f}" if "." in f"{value:f}" else f"{value:f}.0"
                    yield f'{case} <{prop}> "{text}"^^<{XSD.decimal}> .'
        for prop in self.booleans:
            if rng.random() < 0.6:
                yield f'{case} <{prop}> "{str(rng.random() < 0.5).lower()}"^^<{XSD.boolean}> .'
        for prop, values in self.choices.items():
            if rng.random() < 0.7:
                yield f"{case} <{prop}> <{rng.choice(values)}> ."
        present, absent = self.finding_props[0], self.finding_props[-1]
        p_present = rng.uniform(0, 2 * self.p_present)
        for finding in self.findings:
            r = rng.random()
            if r < p_present:
                yield f"{case} <{present}> <{finding}> ."
            elif r < p_present + self.p_absent:
                yield f"{case} <{absent}> <{finding}> ."

    def ntriples(self, n: int, start: int = 0) -> str:
        return "\n".join(line for i in range(start, start + n) for line in self.triples(i)) + "\n"
