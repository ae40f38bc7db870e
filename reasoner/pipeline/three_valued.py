"""Three-valued criteria: met, not met or undetermined, and the facts that could settle them.

Unknown is not absent. OWL classification (HermiT, or the fast engine's formulas) says
which criteria the recorded facts *meet*; it cannot say which they *fail*, because a fact
that is not recorded may still hold. This module evaluates every compiled definition in
Kleene's strong three-valued logic over the case's leaves:

* a leaf is *true* when a recorded fact satisfies it (the fast engine's test);
* it is *false* only when the ontology lets the recorded facts exclude it: a finding
  recorded on a property declared ``owl:propertyDisjointWith`` the one the leaf reads
  (``hasAbsentFinding`` against ``hasFinding``), or another value of an
  ``owl:FunctionalProperty`` (a number outside the facets, the other boolean, an
  individual declared different);
* otherwise it is *unknown*.

A leaf ``some`` over a class that the ontology closes with an ``owl:oneOf`` superclass
(the closure axiom "every member of this category is one of these findings") is read as
the disjunction of its members, so that a category is false once every member is
recorded absent. Nothing clinical is named here: properties, closures and members are
read from the ontology.

The definition is put in disjunctive normal form once per knowledge base. Conjunctions
that no case can satisfy (two conditions on one single-valued property that cannot both
hold, a value on two disjoint properties, an empty range) are dropped, so that a
criterion is undetermined only when some completion of the unknown facts meets it. The
*questions* of an undetermined criterion are the unknown leaves of the minimal
conjunctions still open for the case: exactly the unknown facts whose answer could make
it met (``relevant``; taken over several criteria at once, it gives the facts that could
change whether any of them is met). Met stays the two-valued classification (HermiT is
its reference); this module decides not met and undetermined, and the test suite checks
both against HermiT on completions of generated cases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache
from itertools import product

import pyoxigraph as ox
from rdflib import OWL, RDF, RDFS, XSD, Graph, Literal, URIRef
from rdflib.collection import Collection

from .cases import Fact
from .classify_fast import (
    _BOOLEAN_VALUES,
    _DECIMALS,
    _INTEGERS,
    _OPERATORS,
    Taxonomy,
    _number,
    _same_value,
    _Test,
)
from .definitions import Formula, Leaf, Or, UnsupportedConstruct

MET, NOT_MET, UNDETERMINED = "met", "notMet", "undetermined"
# A definition whose disjunctive normal form grows past this many conjunctions is refused
# (by name) rather than evaluated slowly; the criteria of this project need about a dozen.
MAX_CONJUNCTIONS = 4096

Conjunction = frozenset[Leaf]


@dataclass(frozen=True)
class CaseFacts:
    """What the ontology says about case facts in general: which properties are
    single-valued, which are disjoint, which individuals are different, and which
    classes are closed by an enumeration of their members."""

    functional: frozenset[str]
    disjoint: Mapping[str, frozenset[str]]
    different: frozenset[frozenset[str]]
    closed: Mapping[str, tuple[URIRef, ...]]

    @classmethod
    def from_ontology(cls, g: Graph, taxonomy: Taxonomy) -> CaseFacts:
        functional = frozenset(str(p) for p in g.subjects(RDF.type, OWL.FunctionalProperty))
        disjoint: dict[str, set[str]] = {}
        for p, q in g.subject_objects(OWL.propertyDisjointWith):
            disjoint.setdefault(str(p), set()).add(str(q))
            disjoint.setdefault(str(q), set()).add(str(p))
        different = {frozenset((str(a), str(b))) for a, b in g.subject_objects(OWL.differentFrom)}
        for group in g.subjects(RDF.type, OWL.AllDifferent):
            members = g.value(group, OWL.distinctMembers) or g.value(group, OWL.members)
            names = [str(m) for m in Collection(g, members)] if members is not None else []
            different |= {frozenset((a, b)) for a in names for b in names if a != b}
        closed: dict[str, tuple[URIRef, ...]] = {}
        for cls_, sup in g.subject_objects(RDFS.subClassOf):
            if isinstance(cls_, URIRef) and (members := g.value(sup, OWL.oneOf)) is not None:
                closed[str(cls_)] = tuple(m for m in Collection(g, members) if isinstance(m, URIRef))
        # A closed class's members: the enumeration, plus any individual typed with it (or a
        # subclass) that the enumeration forgot, so that nothing is ruled out unseen.
        for name, members in list(closed.items()):
            told = sorted(
                URIRef(node)
                for node, types in taxonomy.types.items()
                if any(name in taxonomy.supers(t) for t in types)
            )
            closed[name] = tuple(dict.fromkeys([*members, *told]))
        return cls(
            functional,
            {p: frozenset(qs) for p, qs in disjoint.items()},
            frozenset(different),
            closed,
        )


# -- compiling definitions into conjunctions -------------------------------------------------
def expand(formula: Formula, facts: CaseFacts) -> Formula:
    """The formula with ``some`` over a closed class read as the disjunction of its members."""
    if isinstance(formula, Leaf):
        members = facts.closed.get(str(formula.cls)) if formula.kind == "some" else None
        if members is None:
            return formula
        return Or(tuple(Leaf("value", formula.properties, formula.on, value=m) for m in members))
    return type(formula)(tuple(expand(p, facts) for p in formula.parts))


def _dnf(formula: Formula, owner: str) -> list[Conjunction]:
    if isinstance(formula, Leaf):
        return [frozenset((formula,))]
    parts = [_dnf(p, owner) for p in formula.parts]
    if isinstance(formula, Or):
        return [c for part in parts for c in part]
    size = 1
    for part in parts:
        size *= len(part)
    if size > MAX_CONJUNCTIONS:
        raise UnsupportedConstruct(
            f"{owner}: its definition has more than {MAX_CONJUNCTIONS} conjunctions in disjunctive "
            "normal form, too many for three-valued evaluation"
        )
    return [frozenset().union(*combo) for combo in product(*parts)]


def _minimal(conjunctions: Iterable[frozenset]) -> list[frozenset]:
    """Drop duplicates and every conjunction that contains another (absorption). A set can
    contain only a set no larger than itself, so shorter ones are kept first."""
    unique = sorted(set(conjunctions), key=len)
    kept: list[Conjunction] = []
    for c in unique:
        if not any(k <= c for k in kept):
            kept.append(c)
    return kept


def _interval_empty(facets: list[tuple[str, Decimal]], integer: bool) -> bool:
    """Whether no number (no whole number, for an integer datatype) meets all the facets."""
    lows = [(v, op == ">") for op, v in facets if op in (">", ">=")]
    highs = [(v, op == "<") for op, v in facets if op in ("<", "<=")]
    if not lows or not highs:
        return False
    lo, lo_open = max(lows, key=lambda b: (b[0], b[1]))
    hi, hi_open = min(highs, key=lambda b: (b[0], not b[1]))
    if integer:
        first = lo.to_integral_value(ROUND_FLOOR) + 1 if lo_open else lo.to_integral_value(ROUND_CEILING)
        last = hi.to_integral_value(ROUND_CEILING) - 1 if hi_open else hi.to_integral_value(ROUND_FLOOR)
        return first > last
    return lo > hi or (lo == hi and (lo_open or hi_open))


def _literal_number(value: object) -> Decimal | None:
    """The number of a hasValue literal in the xsd:decimal family, else None."""
    if isinstance(value, Literal) and value.datatype is not None and str(value.datatype) in _DECIMALS:
        return Decimal(str(value))
    return None


def _satisfiable(conjunction: Conjunction, facts: CaseFacts) -> bool:
    """Whether some case can meet every leaf of the conjunction at once."""
    values: dict[str, set] = {}
    ranges: dict[str, list[Leaf]] = {}
    for leaf in conjunction:
        if leaf.kind == "facets" and _interval_empty(list(leaf.facets), str(leaf.datatype) in _INTEGERS):
            return False
        if leaf.on is None:
            continue
        on = str(leaf.on)
        if leaf.kind == "value":
            for other in facts.disjoint.get(on, ()):
                clash = (x for x in conjunction if x.kind == "value" and str(x.on) == other)
                if any(x.value == leaf.value for x in clash):
                    return False
        if on not in facts.functional:
            continue
        if leaf.kind == "value":
            values.setdefault(on, set()).add(leaf.value)
        elif leaf.kind == "facets" and leaf.facets:
            ranges.setdefault(on, []).append(leaf)
    for on, found in values.items():
        if len(found) > 1:
            return False
        number = _literal_number(next(iter(found)))
        for leaf in ranges.get(on, ()):
            if number is None or not all(_OPERATORS[op](number, bound) for op, bound in leaf.facets):
                return False
    for leaves_on in ranges.values():
        combined = [f for leaf in leaves_on for f in leaf.facets]
        if _interval_empty(combined, any(str(leaf.datatype) in _INTEGERS for leaf in leaves_on)):
            return False
    return True


# -- refuting a leaf from one fact -----------------------------------------------------------
class _Refutation:
    """Whether one recorded fact makes a leaf false, from the ontology's axioms alone."""

    def __init__(self, leaf: Leaf, facts: CaseFacts):
        self.leaf = leaf
        on = str(leaf.on) if leaf.on is not None else None
        self.disjoint = facts.disjoint.get(on, frozenset()) if on else frozenset()
        self.functional = on in facts.functional if on else False
        self.own = frozenset(str(p) for p in leaf.properties)
        self.different = facts.different
        self.test = _Test.of(leaf) if leaf.kind in ("value", "facets") else None

    @property
    def properties(self) -> frozenset[str]:
        """The properties whose facts can refute the leaf."""
        if self.test is None:
            return frozenset()
        return self.disjoint | (self.own if self.functional else frozenset())

    def refutes(self, fact: Fact, taxonomy: Taxonomy) -> bool:
        leaf, value = self.leaf, fact.value
        if fact.prop in self.disjoint and leaf.kind == "value":
            return self._equal(value)
        if not (self.functional and fact.prop in self.own):
            return False
        if self.test is None or self.test.holds(value, taxonomy):
            return False
        # The only value of a single-valued property fails the leaf: false, provided the
        # value is readable (an ill-formed literal says nothing).
        if leaf.kind == "facets":
            return (
                _number(value) is not None
                if str(leaf.datatype) in _DECIMALS
                else isinstance(value, ox.Literal)
            )
        if isinstance(leaf.value, URIRef):  # individuals differ only where declared different
            return isinstance(value, ox.NamedNode) and (
                frozenset((value.value, str(leaf.value))) in self.different
            )
        return _readable_like(value, leaf.value)

    def _equal(self, value) -> bool:
        if isinstance(self.leaf.value, URIRef):
            return isinstance(value, ox.NamedNode) and value.value == str(self.leaf.value)
        return _same_value(value, self.leaf.value)


def _readable_like(value, wanted: Literal) -> bool:
    """Whether a fact's value is a readable literal of the kind a hasValue literal compares
    with, so that being unequal to it means being another value."""
    if not isinstance(value, ox.Literal):
        return False
    if _literal_number(wanted) is not None:
        return _number(value) is not None
    if wanted.datatype == XSD.boolean:
        return value.datatype.value == str(XSD.boolean) and value.value in _BOOLEAN_VALUES
    return value.datatype.value == str(wanted.datatype or XSD.string)


# -- evaluation ------------------------------------------------------------------------------
Part = frozenset[int]
"""A set of leaves by their number in ``ThreeValuedEvaluator.atoms``."""


@dataclass
class CaseStates:
    """Each defined class's state for one case, and for the undetermined ones the sets of
    unknown leaves whose answers would together meet them (each set: a conjunction of the
    definition still open for the case, less its leaves already true), as leaf numbers in
    ``atoms``."""

    states: dict[str, str]
    open_parts: dict[str, list[Part]]
    atoms: Sequence[Leaf] = ()

    def undetermined(self) -> list[str]:
        return [c for c, s in self.states.items() if s == UNDETERMINED]


def relevant(parts: Iterable[Part]) -> Part:
    """The leaves whose answer could change whether any of ``parts`` is met: those of the
    minimal parts (a leaf only in a part that contains another part cannot matter)."""
    return _relevant(tuple(parts))


@lru_cache(maxsize=4096)
def _relevant(parts: tuple[Part, ...]) -> Part:
    # Kept per distinct parts: cases repeat them (a criterion's open conjunctions less the
    # leaves a case makes true), and absorption is most of what writing questions costs.
    return frozenset().union(*_minimal(parts))


class ThreeValuedEvaluator:
    """The definitions of a knowledge base in disjunctive normal form, ready to evaluate."""

    def __init__(self, formulas: Mapping[URIRef, Formula], ontology: Graph, taxonomy: Taxonomy):
        self.taxonomy = taxonomy
        self.facts = CaseFacts.from_ontology(ontology, taxonomy)
        conjunctions: dict[str, list[Conjunction]] = {}
        for cls, formula in formulas.items():
            expanded = expand(formula, self.facts)
            kept = [c for c in _dnf(expanded, str(cls)) if _satisfiable(c, self.facts)]
            conjunctions[str(cls)] = sorted(_minimal(kept), key=lambda c: (len(c), sorted(map(repr, c))))
        self.atoms: tuple[Leaf, ...] = tuple(
            sorted({leaf for cs in conjunctions.values() for c in cs for leaf in c}, key=repr)
        )
        index = {leaf: i for i, leaf in enumerate(self.atoms)}
        self.conjunctions: dict[str, list[Part]] = {
            cls: [frozenset(index[leaf] for leaf in c) for c in cs] for cls, cs in conjunctions.items()
        }
        self.true_by_property: dict[str, list[tuple[int, _Test]]] = {}
        self.false_by_property: dict[str, list[tuple[int, _Refutation]]] = {}
        self.type_atoms = [(i, str(a.cls)) for i, a in enumerate(self.atoms) if a.kind == "type"]
        for i, atom in enumerate(self.atoms):
            if atom.kind != "type":
                test = _Test.of(atom)
                for prop in atom.properties:
                    self.true_by_property.setdefault(str(prop), []).append((i, test))
            refutation = _Refutation(atom, self.facts)
            for prop in refutation.properties:
                self.false_by_property.setdefault(prop, []).append((i, refutation))

    def _tested(self, fact: Fact, taxonomy: Taxonomy) -> tuple[frozenset[int], frozenset[int]]:
        """The leaves a fact makes true, and those it makes false."""
        holds = (i for i, t in self.true_by_property.get(fact.prop, ()) if t.holds(fact.value, taxonomy))
        refuted = (i for i, r in self.false_by_property.get(fact.prop, ()) if r.refutes(fact, taxonomy))
        return frozenset(holds), frozenset(refuted)

    def evaluate(
        self,
        batch: Mapping[str, list[Fact]],
        cases: Iterable[str],
        met: Mapping[str, Iterable[str]],
        taxonomy: Taxonomy | None = None,
    ) -> dict[str, CaseStates]:
        """States of every defined class for each case. ``met`` gives each case's
        classes from the two-valued classification, which stays the authority on met."""
        taxonomy = taxonomy or self.taxonomy
        # Keyed by identity: equal facts of a batch are one object (``cases.CaseBatch``), so
        # each distinct fact is tested once.
        memo: dict[int, tuple[frozenset[int], frozenset[int]]] = {}
        results = {}
        for case in cases:
            true: set[int] = set()
            false: set[int] = set()
            for fact in batch.get(case, ()):
                found = memo.get(id(fact))
                if found is None:
                    found = memo[id(fact)] = self._tested(fact, taxonomy)
                true |= found[0]
                false |= found[1]
            true.update(i for i, cls in self.type_atoms if taxonomy.is_a(case, cls))
            results[case] = self._states(met.get(case, ()), true, false)
        return results

    def _states(self, met: Iterable[str], true: set[int], false: set[int]) -> CaseStates:
        """Met from the classification; otherwise not met when every conjunction has a
        false leaf, else undetermined, with each open conjunction's unknown leaves."""
        states: dict[str, str] = {}
        open_parts: dict[str, list[Part]] = {}
        for cls, conjunctions in self.conjunctions.items():
            if cls in met:
                states[cls] = MET
                continue
            parts = [c - true for c in conjunctions if c.isdisjoint(false)]
            if parts:
                states[cls] = UNDETERMINED
                open_parts[cls] = parts
            else:
                states[cls] = NOT_MET
        return CaseStates(states, open_parts, self.atoms)
