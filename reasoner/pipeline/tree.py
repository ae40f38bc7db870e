"""The reasoning chain of one case as a tree: facts, criteria (with the facts that
met them and their source quotes), recommendation, the criteria left undetermined and
the questions that would settle them, red flags, warnings.

The tree is built once as plain nodes of styled text spans (``explanation_nodes``), so
that every front end shows the same chain: the terminal renders it with rich
(``explanation_tree``), the web pages as nested HTML lists. A span may name the IRI it
stands for (a criterion, a source statement), for front ends that can link to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rich.markup import escape
from rich.tree import Tree

from .. import DISCLAIMER
from .explain import CaseResult
from .render import open_criteria


@dataclass(frozen=True)
class Span:
    """A run of text in one style (a rich style name such as ``dim``, or none)."""

    text: str
    style: str | None = None
    ref: str | None = None
    """The IRI the text stands for, when it names a criterion or a source statement."""


@dataclass
class Node:
    """One line of the tree and the lines under it."""

    spans: tuple[Span, ...]
    children: list[Node] = field(default_factory=list)

    def add(self, *spans: Span | str) -> Node:
        """Append a child line made of ``spans`` and return it."""
        child = Node(_line(spans))
        self.children.append(child)
        return child


def _line(spans: tuple[Span | str, ...]) -> tuple[Span, ...]:
    """Spans of one line; plain strings are unstyled text."""
    return tuple(Span(s) if isinstance(s, str) else s for s in spans)


def _value(v: dict) -> str:
    return v.get("label") or str(v.get("value"))


def _criterion(parent: Node, c: dict, statements: dict[str, dict]) -> None:
    outcome = ", ".join(
        x
        for x in (
            (c["indicates"] or {}).get("label"),
            (c["urgency"] or {}).get("label"),
            (c["appropriateness"] or {}).get("label"),
        )
        if x
    )
    mark = Span("selected", "green") if c["selected"] else Span("outranked", "yellow")
    node = parent.add(
        Span(c["label"], ref=c["iri"]),
        " ",
        Span(f"({c['kind']})", "dim"),
        " ",
        mark,
        *([f" -> {outcome}"] if outcome else []),
    )
    for f in c["facts"]:
        node.add(f"because {f['property']['label']} = {_value(f['value'])}")
    if c["acrVariants"]:
        node.add(Span(f"aligned with {', '.join(c['acrVariants'])}", "dim"))
    sources = node.add(Span("sources", "dim"))
    for s in (statements[iri] for iri in c["sources"]):
        doc = (s["document"] or {}).get("title", "")
        sources.add(
            Span(f"\u201c{s['quote'] or ''}\u201d", ref=s["iri"]), " ", Span(f"{doc} <{s['iri']}>", "dim")
        )


def _recommendation(root: Node, r: CaseResult) -> None:
    """The outcome, and the procedure with its urgency when there is one: a case without a
    procedure shows only its outcome, since "no imaging" is an outcome of its own (unknown
    is not absent)."""
    rec = r.recommendation or {}
    proc = rec.get("procedure")
    urgency = (rec.get("urgency") or {}).get("label")
    text = (r.outcome or {}).get("label", "")
    if proc:
        text += f": {proc['label']}" + (f", {urgency}" if urgency else "")
    node = root.add(Span("recommendation", "bold"), f": {text}")
    for alt in rec.get("alternatives", []):
        node.add(f"alternative: {alt['label']}")
    for code in (proc or {}).get("codes", []):
        node.add(Span(f"{code['system']} {code['code']} ({code['match']})", "dim"))


def _urgency(c: dict) -> str:
    return f" ({c['urgency']['label']})" if c.get("urgency") else ""


def _undetermined(root: Node, r: CaseResult) -> None:
    """The criteria the recorded facts neither meet nor rule out: those that matter by
    name, the rest counted (their answers cannot change the decision)."""
    undetermined = [iri for iri, state in r.criterion_states.items() if state == "undetermined"]
    if not undetermined:
        return
    node = root.add(Span("criteria undetermined", "bold"))
    matter = open_criteria(r)
    for c in matter:
        node.add(Span(c["label"], ref=c["iri"]), _urgency(c))
    if rest := len(undetermined) - len(matter):
        more = "more " if matter else ""
        node.add(Span(f"{rest} {more}that cannot change the decision, not asked about", "dim"))


def _number(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def needs_text(needs: dict, unit: str | None) -> str:
    """What answer a question needs, in words: present, yes/no, a bound with its unit, a
    value's label (see the ``needs`` forms in docs/output-schema.md)."""
    suffix = f" {unit}" if unit else ""
    if "present" in needs:
        return "present"
    if "equals" in needs:
        value = needs["equals"]
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, dict):
            return value["label"]
        return f"= {_number(value)}{suffix}"
    if needs.get("range"):  # an empty range (any number at all) reads as "any value" below
        return " and ".join(f"{b['op']} {_number(b['value'])}{suffix}" for b in needs["range"])
    if "inClass" in needs:
        return f"any {needs['inClass']['label']}"
    if "isA" in needs:
        return f"is a {needs['isA']['label']}"
    return "any value"


def _could_meet(c: dict, effect_label: Callable[[str], str]) -> str:
    return f"{c['label']}{_urgency(c)} {effect_label(c['effect'])}"


def _question(group: Node, q: dict, effect_label: Callable[[str], str]) -> None:
    """One question: what it asks about and the answer it needs, then (dim) the criteria
    that answer could meet. Criteria that need different answers get a line each."""
    needs = {needs_text(c["needs"], q["unit"]) for c in q["criteria"]}
    if len(needs) == 1:
        met = "; ".join(_could_meet(c, effect_label) for c in q["criteria"])
        group.add(f"{q['about']['label']}: {needs.pop()}", "  ", Span(f"-> {met}", "dim"))
        return
    node = group.add(q["about"]["label"])
    for c in q["criteria"]:
        node.add(needs_text(c["needs"], q["unit"]), "  ", Span(f"-> {_could_meet(c, effect_label)}", "dim"))


def _questions(root: Node, r: CaseResult, effect_label: Callable[[str], str]) -> None:
    """The questions whose answers could change the decision, grouped by what they
    suggest, in the order given (most urgent criterion first)."""
    if not r.questions:
        return
    node = root.add(Span("to settle this, ask", "bold"))
    groups: dict[str, Node] = {}
    for q in r.questions:
        group = q["suggests"]
        if group["iri"] not in groups:
            groups[group["iri"]] = node.add(group["label"])
        _question(groups[group["iri"]], q, effect_label)


def explanation_nodes(
    r: CaseResult, statements: dict[str, dict], effect_label: Callable[[str], str] | None = None
) -> Node:
    """The tree for one case; ``statements`` maps each cited statement IRI to its entry.
    ``effect_label`` names a question effect from its notation (``Vocabulary.effect_label``,
    which reads the ontology); without it the notation is shown."""
    root = Node(_line((Span(r.case, "bold"), "  ", Span(f"{r.source or ''} ({r.engine} engine)", "dim"))))
    if r.status != "assessed":
        errors = root.add(Span("invalid case", "red"))
        for e in r.errors:
            errors.add(f"{e['field'] or 'case'}: {e['message']}")
        return root
    facts = root.add(Span("facts", "bold"))
    for f in r.facts:
        facts.add(f"{f['property']['label']}: {_value(f['value'])}")
    criteria = root.add(Span("criteria met", "bold"), *([] if r.criteria else [": none"]))
    for c in r.criteria:
        _criterion(criteria, c, statements)
    _recommendation(root, r)
    _undetermined(root, r)
    _questions(root, r, effect_label or str)
    flags = root.add(Span("red flags", "bold"))
    flags.add("present: " + (", ".join(f["label"] for f in r.red_flags["present"]) or "none recorded"))
    if r.red_flags["unassessed"]:
        flags.add(Span("not recorded: " + ", ".join(f["label"] for f in r.red_flags["unassessed"]), "dim"))
    if r.warnings:
        warnings = root.add(Span("warnings", "bold"))
        for w in r.warnings:
            warnings.add(w)
    root.add(Span(DISCLAIMER, "dim"))
    return root


def _markup(node: Node) -> str:
    return "".join(
        f"[{s.style}]{escape(s.text)}[/{s.style}]" if s.style else escape(s.text) for s in node.spans
    )


def _rich(node: Node, tree: Tree) -> None:
    for child in node.children:
        _rich(child, tree.add(_markup(child)))


def explanation_tree(
    r: CaseResult, statements: dict[str, dict], effect_label: Callable[[str], str] | None = None
) -> Tree:
    """The tree for one case as a rich ``Tree`` for the terminal."""
    nodes = explanation_nodes(r, statements, effect_label)
    tree = Tree(_markup(nodes))
    _rich(nodes, tree)
    return tree
