"""Say a defined class's OWL definition in words, for people reading the criteria.

The words are generated from the formula that ``definitions.compile_definitions`` builds
from the ``owl:equivalentClass`` expression (the one the fast engine evaluates), with the
labels of the ontology, so that they always say what the engine decides: an author who
edits a threshold or a finding category in Turtle changes the words with no code change,
and no criterion has hand-written text in code.

Two rewrites keep them readable without changing their meaning:

* a condition already required by an enclosing conjunction is not repeated inside it
  (``A and (A and B or C)`` is said ``A and (B or C)``), which drops the repeated case
  type that inlined definitions bring along;
* a part that is exactly another defined class's formula, or a conjunction that contains
  all the conjuncts of one, is said as "meets <that class>", naming it (the compiler
  inlines named classes, so this gives the reference back).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rdflib import RDFS, Graph, Literal, URIRef

from ...pipeline.definitions import And, Formula, Leaf, Or

OPERATORS = {">": ">", ">=": "\u2265", "<": "<", "<=": "\u2264"}


@dataclass(frozen=True)
class Word:
    """A piece of the wording; ``ref`` is the IRI of the class it names, if any."""

    text: str
    ref: str | None = None


def text_of(words: list[Word]) -> str:
    return "".join(w.text for w in words)


class DefinitionWords:
    """Words for each defined class of an ontology, from its compiled formula."""

    def __init__(self, ontology: Graph, formulas: dict[URIRef, Formula], label: Callable[[str], str]):
        self.g = ontology
        self.formulas = formulas
        self.label = label
        # The same formula object may be reached from several classes: name the first.
        self._named: dict[Formula, URIRef] = {}
        for cls, formula in sorted(formulas.items()):
            self._named.setdefault(formula, cls)

    def words(self, cls: URIRef, assumed: frozenset[Formula] = frozenset()) -> list[Word]:
        """The definition of ``cls`` in words (``cls`` must be a defined class). Conditions
        in ``assumed`` are left unsaid where a conjunction requires them, for a reader who
        takes them as given (the case type every criterion requires, in a diagram)."""
        return self._say(self.formulas[cls], assumed, cls, top=True)

    # -- parts ----------------------------------------------------------------------------
    def _meets(self, cls: URIRef) -> list[Word]:
        return [Word("meets "), Word(self.label(str(cls)), str(cls))]

    def _other(self, formula: Formula, own: URIRef) -> URIRef | None:
        found = self._named.get(formula)
        return found if found is not None and found != own else None

    def _cover(self, node: And, own: URIRef) -> URIRef | None:
        """The defined class (not ``own``) with the most conjuncts, all of them in ``node``."""
        parts = set(node.parts)
        best: tuple[int, str] | None = None
        for formula, cls in self._named.items():
            if cls != own and isinstance(formula, And) and formula != node and set(formula.parts) <= parts:
                key = (-len(formula.parts), str(cls))
                best = key if best is None or key < best else best
        return URIRef(best[1]) if best else None

    def _say(self, node: Formula, asserted: frozenset[Formula], own: URIRef, top: bool = False) -> list[Word]:
        if isinstance(node, Leaf):
            return self.leaf(node)
        if not top and (other := self._other(node, own)) is not None:
            return self._meets(other)
        pieces: list[list[Word]] = []
        if isinstance(node, Or):
            pieces = [self._say(part, asserted, own) for part in node.parts]
            return self._join(pieces, " OR ", top)
        inner = asserted | {p for p in node.parts if isinstance(p, Leaf)}
        shown = [p for p in node.parts if p not in asserted]
        if (cover := self._cover(node, own)) is not None:
            covered = set(self.formulas[cover].parts)
            pieces.append(self._meets(cover))
            shown = [p for p in shown if p not in covered]
        pieces += [self._say(part, inner, own) for part in shown]
        if not pieces:
            return [Word("(no further condition)")]
        return self._join(pieces, " AND ", top)

    @staticmethod
    def _join(pieces: list[list[Word]], operator: str, top: bool) -> list[Word]:
        joined: list[Word] = []
        for i, piece in enumerate(pieces):
            if i:
                joined.append(Word(operator))
            joined += piece
        return joined if top or len(pieces) == 1 else [Word("("), *joined, Word(")")]

    # -- leaves ---------------------------------------------------------------------------
    def _property(self, leaf: Leaf) -> str:
        """The property the definition names: the one of ``leaf.properties`` (which adds
        its sub- and equivalent properties) that is a sub-property of none of the others."""
        props = leaf.properties
        top = [p for p in props if not any((p, RDFS.subPropertyOf, q) in self.g for q in props if q != p)]
        return " or ".join(self.label(str(p)) for p in top or props)

    def _term(self, term: URIRef | Literal | None) -> str:
        return self.label(str(term)) if isinstance(term, URIRef) else str(term)

    def leaf(self, leaf: Leaf) -> list[Word]:
        """One condition in words (a diagram shows each as a node of its own)."""
        if leaf.kind == "type":
            return [Word("is a "), Word(self.label(str(leaf.cls)), str(leaf.cls))]
        prop = self._property(leaf)
        if leaf.kind == "value":
            return [Word(f"{prop} = {self._term(leaf.value)}")]
        if leaf.kind == "some":
            return [Word(f"{prop} some "), Word(self.label(str(leaf.cls)), str(leaf.cls))]
        if leaf.kind == "facets" and leaf.facets:
            bounds = " and ".join(f"{OPERATORS[op]} {value}" for op, value in leaf.facets)
            return [Word(f"{prop} {bounds}")]
        if leaf.kind == "facets":
            return [Word(f"{prop} has a value of type {self._term(leaf.datatype)}")]
        return [Word(f"{prop} has a value")]
