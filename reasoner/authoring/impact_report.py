"""Render an ``Impact`` as text (review), Markdown (changelog) or JSON (tools).

Nothing machine-specific (paths, times) is printed, so the same change always gives the
same text: ``docs/authoring.md`` shows it verbatim and ``tests/test_authoring.py``
compares it.
"""

from __future__ import annotations

import json

from .decision import short
from .impact import Impact


def headline(impact: Impact) -> str:
    added = len(impact.axioms.added) if impact.axioms else 0
    removed = len(impact.axioms.removed) if impact.axioms else 0
    parts = [
        f"{len(impact.changed)} of {impact.cases} cases change decision",
        f"{added} axiom{'' if added == 1 else 's'} added, {removed} removed",
    ]
    if impact.detail_only:
        counts = ", ".join(f"{key} in {n}" for key, n in impact.detail_only.items())
        parts.append(f"cases changing only in detail: {counts}")
    if impact.files:
        parts.append(f"other files differ: {', '.join(impact.files)}")
    return "; ".join(parts)


def to_text(impact: Impact) -> str:
    lines = [headline(impact)]
    for change in impact.changed:
        lines += ["", f"case {short(change.case)}"]
        lines += [f"  {c}" for c in change.changes]
        lines += [f"  because {c}" for c in change.causes]
    if impact.axioms and (diff := impact.axioms.lines()):
        lines += ["", "axioms (- removed, + added)", *(f"  {line}" for line in diff)]
    return "\n".join(lines) + "\n"


def to_markdown(impact: Impact) -> str:
    lines = [headline(impact) + "."]
    if impact.changed:
        lines += ["", "| case | change | because |", "|---|---|---|"]
        for change in impact.changed:
            cells = ["<br>".join(_cell(x) for x in column) for column in (change.changes, change.causes)]
            lines.append(f"| {short(change.case)} | {cells[0]} | {cells[1]} |")
    if impact.axioms and (diff := impact.axioms.lines()):
        lines += ["", "Axioms (- removed, + added):", "", "```diff", *diff, "```"]
    return "\n".join(lines) + "\n"


def to_json(impact: Impact) -> str:
    data = {
        "cases": impact.cases,
        "changed": [
            {"case": c.case, "changes": list(c.changes), "causes": list(c.causes)} for c in impact.changed
        ],
        "detailOnly": impact.detail_only,
        "axioms": {
            "removed": [a.text for a in impact.axioms.removed] if impact.axioms else [],
            "added": [a.text for a in impact.axioms.added] if impact.axioms else [],
        },
        "files": impact.files,
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
