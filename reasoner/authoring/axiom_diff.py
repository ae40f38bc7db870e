"""The axioms added and removed between two versions of an ontology.

Both graphs are split into axioms (``axioms.split``) with one set of prefixes, so a term
renders the same in both, and compared by rendering: a restriction rewritten with new
blank-node ids but the same content is the same axiom, and a changed facet value is one
axiom removed and one added.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdflib import Graph

from ..knowledge import LBP
from .axioms import Axiom, Renderer, prefixes_of, split


@dataclass(frozen=True)
class AxiomDiff:
    base: tuple[Axiom, ...]
    work: tuple[Axiom, ...]
    removed: tuple[Axiom, ...]
    added: tuple[Axiom, ...]

    def lines(self) -> list[str]:
        """``- axiom`` and ``+ axiom``, sorted by text so that a changed axiom's old and
        new forms sit together."""
        signed = [(a.text, "-") for a in self.removed] + [(a.text, "+") for a in self.added]
        return [f"{sign} {text}" for text, sign in sorted(signed)]


def diff(base: Graph, work: Graph) -> AxiomDiff:
    prefixes = prefixes_of(work, base)
    old = split(base, Renderer(base, prefixes, str(LBP)))
    new = split(work, Renderer(work, prefixes, str(LBP)))
    old_texts, new_texts = {a.text for a in old}, {a.text for a in new}
    return AxiomDiff(
        tuple(old),
        tuple(new),
        tuple(a for a in old if a.text not in new_texts),
        tuple(a for a in new if a.text not in old_texts),
    )
