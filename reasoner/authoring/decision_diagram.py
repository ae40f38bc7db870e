"""The decision diagram of the criteria, derived from the knowledge base on every build.

Read left to right (``layered_svg`` lays it out):

* **conditions**: each condition a criterion's definition states itself (a leaf of the
  formula the fast engine evaluates, unless it is folded into "meets <another criterion>"
  or every definition has it, like the case type), with the category it belongs to,
  coloured by its family (the class just below the top of its superclass chain, so all
  red-flag categories share one colour; the largest family gets the first colour);
* **criteria** in bands by urgency, most urgent first (``lbp:urgencyRank``), then the
  closed-world outcomes, each with the criteria it builds on and its other outcomes, and
  the rules that swap no procedure (a case that completes a criterion's pathway, calls for
  clinical review, is out of scope: whatever their superclass says), banded by their
  superclass, each with the criterion or outcome it names (``LINKS``);
* the **procedures** they indicate (solid) or offer instead (dashed);
* the **procedure-modifier rules**, each with its condition in words, and the procedures
  they swap in, as the named query ``procedure-modifier-rules`` lists the swaps (the ones
  ``recommended-procedure`` makes), followed from the indicated procedures on.

A condition is named by its term (a finding, a category); one on a property other than
the one most conditions use (a finding recorded *absent*, not present) is named in words,
so that it never looks like the condition on the usual property.

An author who edits a threshold, a category or a rule in Turtle changes the diagram with
no code change; nothing here names a clinical term.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace

import pyoxigraph as ox
from rdflib import OWL, RDF, RDFS, Graph, URIRef
from rdflib.namespace import SKOS

from ..knowledge import LBP, KnowledgeBase
from ..pipeline.definitions import Leaf, leaves
from ..server.pages.criteria_catalogue import CriteriaCatalogue, Criterion
from ..server.pages.definition_words import text_of
from ..server.pages.labels import property_label
from .layered_svg import Arrow, Box, Diagram, LegendEntry

SWAP_QUERY = "procedure-modifier-rules"
FAMILY_FILLS = ("#fde2e1", "#e3f0ff", "#e6f5e6", "#fff1cc", "#efe4fb", "#d9f2f2", "#fbe5f1")
FAMILY_LINES = ("#c0392b", "#1f5fa8", "#2e7d32", "#b7791f", "#6b46c1", "#0f766e", "#b83280")
DATA_FILL, DATA_LINE = "#ffffff", "#5b6472"
CRITERION_FILL, PROCEDURE_FILL, RULE_FILL = "#dde7f3", "#e4f3e7", "#efe6fb"
OUTCOME_LINE, SWAP_LINE = "#1d2430", "#6b46c1"
CONDITIONS, CRITERIA, INDICATED = 0, 1, 2
LINKS = (LBP.completesPathwayOf, LBP.outcomeWithoutCriterion)
"""Properties by which a rule names the criterion it acts on or the outcome it sets; each
value is a line of the rule's box."""


def _named(nodes: Iterable) -> list[URIRef]:
    return sorted(n for n in nodes if isinstance(n, URIRef) and n not in (OWL.Thing, OWL.NamedIndividual))


class _Builder:
    def __init__(self, kb: KnowledgeBase, catalogue: CriteriaCatalogue, href: Callable[[str], str | None]):
        self.kb = kb
        self.g: Graph = kb.ontology
        self.catalogue = catalogue
        self.label = catalogue.vocab.label
        self.words = catalogue.words
        self.formulas = self.words.formulas
        self.href = href
        every = [set(leaves(f)) for f in self.formulas.values()]
        self.universal = frozenset(set.intersection(*every)) if every else frozenset()
        named = Counter(leaf.on for found in every for leaf in found if leaf.kind in ("some", "value"))
        self.usual = named.most_common(1)[0][0] if named else None
        """The property most conditions on a named term use (a case's present findings)."""
        self.procedure_classes = set(self.g.transitive_subjects(RDFS.subClassOf, LBP.DiagnosticProcedure))
        self.boxes: dict[str, Box] = {}
        self.arrows: list[Arrow] = []
        self.family: dict[str, URIRef | None] = {}
        """The family of each condition box (None for case data that names no class)."""
        self.uses: list[tuple[str, str]] = []
        """(condition, criterion): the arrows, coloured once every family is known."""

    # -- conditions -----------------------------------------------------------------------
    def _own_leaves(self, criterion: Criterion) -> list[Leaf]:
        """The conditions the criterion's definition states itself."""
        folded = {
            leaf
            for word in criterion.logic
            if word.ref and URIRef(word.ref) in self.formulas
            for leaf in leaves(self.formulas[URIRef(word.ref)])
        }
        own = leaves(self.formulas[URIRef(criterion.iri)])
        return [leaf for leaf in dict.fromkeys(own) if leaf not in folded and leaf not in self.universal]

    def _family(self, cls: URIRef) -> URIRef:
        """The class just below the top of ``cls``'s superclass chain (or ``cls`` at the top)."""
        chain = [cls]
        while supers := [s for s in _named(self.g.objects(chain[-1], RDFS.subClassOf)) if s not in chain]:
            chain.append(supers[0])
        return chain[-2] if len(chain) > 1 else chain[0]

    def _condition(self, leaf: Leaf) -> str:
        """The box of a condition (made once), by id: the class or individual it names
        with the classes that one belongs to, or the condition in words."""
        box_id = f"condition:{leaf.key}"
        if box_id in self.boxes:
            return box_id
        said = text_of(self.words.leaf(leaf))
        term = leaf.cls if leaf.kind in ("some", "type") else leaf.value
        if not isinstance(term, URIRef):
            self.boxes[box_id] = Box(box_id, CONDITIONS, (said,), tooltip=said)
            self.family[box_id] = None
            return box_id
        is_value = leaf.kind == "value"
        uppers = _named(self.g.objects(term, RDF.type if is_value else RDFS.subClassOf))
        self.family[box_id] = self._family(uppers[0] if is_value and uppers else term)
        title = self.label(str(term)) if leaf.on in (None, self.usual) else said
        lines = (title, "; ".join(self.label(str(u)) for u in uppers))
        self.boxes[box_id] = Box(box_id, CONDITIONS, lines, href=self.href(str(term)), tooltip=said)
        return box_id

    def _colour_conditions(self) -> list[LegendEntry]:
        """Fill each condition by its family, the largest family first in the palette, draw
        the arrows from it in the same colour, and say what each colour means."""
        sizes = Counter(f for f in self.family.values() if f is not None)
        ranked = sorted(sizes, key=lambda f: (-sizes[f], self.label(str(f))))
        colour = {f: i % len(FAMILY_FILLS) for i, f in enumerate(ranked)}
        for box_id, family in self.family.items():
            fill = FAMILY_FILLS[colour[family]] if family is not None else DATA_FILL
            self.boxes[box_id] = replace(self.boxes[box_id], fill=fill)
        for condition, criterion in self.uses:
            family = self.family[condition]
            line = FAMILY_LINES[colour[family]] if family is not None else DATA_LINE
            self.arrows.append(Arrow(condition, criterion, line))
        return [
            *(LegendEntry(f"{self.label(str(f))} (condition)", fill=FAMILY_FILLS[colour[f]]) for f in ranked),
            LegendEntry("other case data (condition)", fill=DATA_FILL),
        ]

    # -- criteria and what they indicate --------------------------------------------------
    def _is_procedure(self, iri: str | None) -> bool:
        types = self.g.objects(URIRef(iri), RDF.type) if iri else ()
        return any(t in self.procedure_classes for t in types)

    def _urgency(self, criterion: Criterion) -> tuple[int, str] | None:
        """(minus its rank, its label), so that sorting puts the most urgent first."""
        for outcome in criterion.outcomes:
            if outcome.property_iri == str(LBP.hasUrgency) and outcome.value.iri:
                rank = self.g.value(URIRef(outcome.value.iri), LBP.urgencyRank)
                return -int(rank) if rank is not None else 0, outcome.value.label
        return None

    def _said(self, criterion: Criterion) -> str:
        """Its definition in words, leaving unsaid what every definition requires."""
        cls = URIRef(criterion.iri)
        return text_of(self.words.words(cls, self.universal)) if cls in self.formulas else ""

    def _links(self, criterion: Criterion) -> list[str]:
        """``property: value`` for each criterion or outcome the rule names (``LINKS``)."""
        return [
            f"{property_label(self.catalogue.vocab, str(p))}: {self.label(str(v))}"
            for p in LINKS
            for v in _named(self.g.objects(URIRef(criterion.iri), p))
        ]

    def _band(self, criterion: Criterion) -> str:
        """The band of a box in the criteria layer: its urgency; a rule's superclasses; its kind."""
        if urgency := self._urgency(criterion):
            return urgency[1]
        if criterion.kind == "rule" and criterion.groups:
            return ", ".join(criterion.groups)
        return criterion.kind

    def _criterion(self, criterion: Criterion) -> None:
        builds_on = [w.text for w in criterion.logic if w.ref and URIRef(w.ref) in self.formulas]
        others = [
            o.value.label
            for o in criterion.outcomes
            if o.property_iri != str(LBP.hasUrgency) and not self._is_procedure(o.value.iri)
        ]
        others += self._links(criterion)
        if criterion.closed_world_query:
            others.append(f"closed world: {criterion.closed_world_query}")
        said = self._said(criterion)
        box_id = f"criterion:{criterion.iri}"
        self.boxes[box_id] = Box(
            box_id,
            CRITERIA,
            (criterion.label, *(f"meets {name}" for name in builds_on), *others),
            CRITERION_FILL,
            href=self.href(criterion.iri),
            tooltip=f"A case meets it when it {said}." if said else criterion.definition,
            group=self._band(criterion),
        )
        if URIRef(criterion.iri) in self.formulas:
            self.uses += [(self._condition(leaf), box_id) for leaf in self._own_leaves(criterion)]
        for outcome in criterion.outcomes:
            if outcome.value.iri and self._is_procedure(outcome.value.iri):
                dashed = outcome.property_iri != str(LBP.indicatesProcedure)
                self.arrows.append(Arrow(box_id, self._procedure(outcome.value.iri), OUTCOME_LINE, dashed))

    def _procedure(self, iri: str) -> str:
        box_id = f"procedure:{iri}"
        if box_id not in self.boxes:
            definition = self.g.value(URIRef(iri), SKOS.definition)
            tooltip = str(definition) if definition is not None else None
            self.boxes[box_id] = Box(
                box_id, INDICATED, (self.label(iri),), PROCEDURE_FILL, self.href(iri), tooltip
            )
        return box_id

    # -- modifier rules -------------------------------------------------------------------
    def _swaps(self) -> list[tuple[str, str, str]]:
        """(rule, from, to) for each swap the named query lists."""
        store = ox.Store()
        store.bulk_extend(
            ox.parse(self.g.serialize(format="nt", encoding="utf-8"), format=ox.RdfFormat.N_TRIPLES)
        )
        rows = store.query(self.kb.query(SWAP_QUERY).text)
        return sorted({(row["rule"].value, row["from"].value, row["to"].value) for row in rows})

    def _rules(self, rules: list[Criterion], swaps: list[tuple[str, str, str]]) -> None:
        for rule in rules:
            said = self._said(rule)
            self.boxes[f"rule:{rule.iri}"] = Box(
                f"rule:{rule.iri}",
                INDICATED + 1,
                (rule.label, *([f"applies when: {said}"] if said else [])),
                RULE_FILL,
                href=self.href(rule.iri),
                tooltip=rule.definition,
            )
        # Layers by the longest path from the indicated procedures; bounded, so that a cycle
        # of swaps ends (its arrows are then drawn backwards).
        names = {r.iri for r in rules}
        swaps = [(f"rule:{r}", a, b) for r, a, b in swaps if r in names]
        layer = {b.id: b.layer for b in self.boxes.values() if b.id.startswith("procedure:")}
        reached: list[tuple[str, str, str]] = []
        for _ in range(len(swaps) + 1):
            reached = [
                (r, self._procedure(a), self._procedure(b)) for r, a, b in swaps if f"procedure:{a}" in layer
            ]
            for rule_id, source, target in reached:
                layer[rule_id] = max(layer.get(rule_id, 0), layer[source] + 1)
                layer[target] = max(layer.get(target, 0), layer[rule_id] + 1)
        for rule_id, source, target in reached:
            self.arrows += [Arrow(source, rule_id, SWAP_LINE), Arrow(rule_id, target, SWAP_LINE)]
        for box_id, at in layer.items():
            self.boxes[box_id] = replace(self.boxes[box_id], layer=at)

    # -- the whole ------------------------------------------------------------------------
    def _titles(self, other_rules: bool) -> dict[int, str]:
        titles = {
            CONDITIONS: "conditions",
            CRITERIA: "criteria, by urgency" + (", and other rules" if other_rules else ""),
            INDICATED: "indicated procedures",
        }
        kinds = {"rule": "modifier rules", "procedure": "procedures swapped in"}
        for at in range(INDICATED + 1, max(b.layer for b in self.boxes.values()) + 1):
            found = {b.id.split(":", 1)[0] for b in self.boxes.values() if b.layer == at}
            titles[at] = " and ".join(kinds[k] for k in sorted(found) if k in kinds)
        return titles

    def diagram(self) -> Diagram:
        swaps = self._swaps()
        swapping = {rule for rule, _, _ in swaps}
        rules = [c for c in self.catalogue if c.kind == "rule" and c.iri in swapping]
        criteria = [c for c in self.catalogue if c.kind != "rule" or c.iri not in swapping]
        for criterion in criteria:
            self._criterion(criterion)
        self._rules(rules, swaps)
        ranked = sorted({u for c in criteria if (u := self._urgency(c))})
        bands = [label for _, label in ranked]
        procedure_links = {
            o.property_iri: o.property
            for c in criteria
            for o in c.outcomes
            if self._is_procedure(o.value.iri)
        }
        legend = [
            *self._colour_conditions(),
            *(
                LegendEntry(label, colour=OUTCOME_LINE, dashed=iri != str(LBP.indicatesProcedure))
                for iri, label in sorted(procedure_links.items(), key=lambda item: item[1])
            ),
            LegendEntry("procedure swapped in by a modifier rule", colour=SWAP_LINE),
        ]
        return Diagram(
            title="Decision diagram of the criteria",
            description="The conditions the criteria name (left), the criteria grouped by urgency and the "
            "other rules by kind, the procedures the criteria indicate, and the procedure-modifier rules "
            "with the procedures they swap in; generated from the knowledge base.",
            boxes=tuple(self.boxes.values()),
            arrows=tuple(self.arrows),
            layer_titles=self._titles(any(c.kind == "rule" for c in criteria)),
            groups=(*bands, *sorted({self._band(c) for c in criteria} - set(bands))),
            legend=tuple(legend),
        )


def decision_diagram(
    kb: KnowledgeBase, catalogue: CriteriaCatalogue, href: Callable[[str], str | None]
) -> Diagram:
    """The diagram of ``catalogue``'s criteria; ``href`` gives the page of a term, if any."""
    return _Builder(kb, catalogue, href).diagram()
