"""The reasoning chain of one case as a rich tree: facts, criteria (with the facts that
met them and their source quotes), recommendation, red-flag screening, warnings."""

from __future__ import annotations

from rich.markup import escape
from rich.tree import Tree

from . import DISCLAIMER
from .explain import CaseResult


def _value(v: dict) -> str:
    return v.get("label") or str(v.get("value"))


def explanation_tree(r: CaseResult, statements: dict[str, dict]) -> Tree:
    root = Tree(f"[bold]{escape(r.case)}[/bold]  [dim]{escape(r.source or '')} ({r.engine} engine)[/dim]")
    if r.status != "assessed":
        errors = root.add("[red]invalid case[/red]")
        for e in r.errors:
            errors.add(f"{escape(e['field'] or 'case')}: {escape(e['message'])}")
        return root
    facts = root.add("[bold]facts[/bold]")
    for f in r.facts:
        facts.add(f"{escape(f['property']['label'])}: {escape(_value(f['value']))}")
    criteria = root.add("[bold]criteria met[/bold]" if r.criteria else "[bold]criteria met[/bold]: none")
    for c in r.criteria:
        outcome = ", ".join(
            x
            for x in (
                (c["indicates"] or {}).get("label"),
                (c["urgency"] or {}).get("label"),
                (c["appropriateness"] or {}).get("label"),
            )
            if x
        )
        mark = "[green]selected[/green]" if c["selected"] else "[yellow]outranked[/yellow]"
        node = criteria.add(
            f"{escape(c['label'])} [dim]({c['kind']})[/dim] {mark}"
            + (f" -> {escape(outcome)}" if outcome else "")
        )
        for f in c["facts"]:
            node.add(f"because {escape(f['property']['label'])} = {escape(_value(f['value']))}")
        if c["acrVariants"]:
            node.add(f"[dim]aligned with {escape(', '.join(c['acrVariants']))}[/dim]")
        sources = node.add("[dim]sources[/dim]")
        for s in (statements[iri] for iri in c["sources"]):
            doc = (s["document"] or {}).get("title", "")
            sources.add(
                f"\u201c{escape(s['quote'] or '')}\u201d [dim]{escape(doc)} <{escape(s['iri'])}>[/dim]"
            )
    rec = r.recommendation or {}
    proc = rec.get("procedure")
    label = proc["label"] if proc else "no imaging procedure"
    urgency = (rec.get("urgency") or {}).get("label")
    node = root.add(
        f"[bold]recommendation[/bold]: {escape((r.outcome or {}).get('label', ''))}: "
        f"{escape(label)}" + (f", {escape(urgency)}" if urgency else "")
    )
    for alt in rec.get("alternatives", []):
        node.add(f"alternative: {escape(alt['label'])}")
    for code in (proc or {}).get("codes", []):
        node.add(f"[dim]{escape(code['system'])} {escape(code['code'])} ({code['match']})[/dim]")
    flags = root.add("[bold]red flags[/bold]")
    flags.add(
        "present: " + (escape(", ".join(f["label"] for f in r.red_flags["present"])) or "none recorded")
    )
    flags.add("not assessed: " + (escape(", ".join(f["label"] for f in r.red_flags["unassessed"])) or "none"))
    if r.warnings:
        warnings = root.add("[bold]warnings[/bold]")
        for w in r.warnings:
            warnings.add(escape(w))
    root.add(f"[dim]{DISCLAIMER}[/dim]")
    return root
