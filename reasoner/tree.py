"""The reasoning chain of one case as a tree: facts, criteria (with the facts that
met them and their source quotes), recommendation, red-flag screening, warnings.

The tree is built once as plain nodes of styled text spans (``explanation_nodes``), so
that every front end shows the same chain: the terminal renders it with rich
(``explanation_tree``), the web pages as nested HTML lists. A span may name the IRI it
stands for (a criterion, a source statement), for front ends that can link to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.markup import escape
from rich.tree import Tree

from . import DISCLAIMER
from .explain import CaseResult


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


def explanation_nodes(r: CaseResult, statements: dict[str, dict]) -> Node:
    """The tree for one case; ``statements`` maps each cited statement IRI to its entry."""
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
    rec = r.recommendation or {}
    proc = rec.get("procedure")
    label = proc["label"] if proc else "no imaging procedure"
    urgency = (rec.get("urgency") or {}).get("label")
    node = root.add(
        Span("recommendation", "bold"),
        f": {(r.outcome or {}).get('label', '')}: {label}" + (f", {urgency}" if urgency else ""),
    )
    for alt in rec.get("alternatives", []):
        node.add(f"alternative: {alt['label']}")
    for code in (proc or {}).get("codes", []):
        node.add(Span(f"{code['system']} {code['code']} ({code['match']})", "dim"))
    flags = root.add(Span("red flags", "bold"))
    flags.add("present: " + (", ".join(f["label"] for f in r.red_flags["present"]) or "none recorded"))
    flags.add("not assessed: " + (", ".join(f["label"] for f in r.red_flags["unassessed"]) or "none"))
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


def explanation_tree(r: CaseResult, statements: dict[str, dict]) -> Tree:
    """The tree for one case as a rich ``Tree`` for the terminal."""
    nodes = explanation_nodes(r, statements)
    tree = Tree(_markup(nodes))
    _rich(nodes, tree)
    return tree
