"""Copies of the knowledge base for tests that edit it, and the edits themselves.

An edit replaces text that must occur exactly once where it is made, so that a test never
silently edits nothing, or the wrong place, after the knowledge base changes. ``within``
narrows an edit to one term's stanza (from ``TERM a`` to the next blank line): text that
several definitions share, such as a threshold, is then edited in the one meant.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("ontology", "shapes", "queries", "examples/cases")


def copy_kb(dest: Path, parts: tuple[str, ...] = PARTS) -> Path:
    for part in parts:
        shutil.copytree(ROOT / part, dest / part)
    return dest


def stanza(text: str, term: str) -> tuple[int, int]:
    """The span of ``term``'s description: from ``TERM a `` at a line start to the next blank line."""
    start = text.index(f"\n{term} a ") + 1
    end = text.find("\n\n", start)
    return start, end if end >= 0 else len(text)


def edit(root: Path, name: str, old: str, new: str, *, within: str | None = None) -> None:
    """Replace ``old`` by ``new`` in ``root/name`` (in the stanza of the term ``within``)."""
    path = root / name
    text = path.read_text(encoding="utf-8")
    start, end = stanza(text, within) if within else (0, len(text))
    part = text[start:end]
    assert part.count(old) == 1, f"{old!r} must occur once in {within or name}"
    path.write_text(text[:start] + part.replace(old, new) + text[end:], encoding="utf-8")


def add_red_flag(root: Path) -> None:
    """An author's edit: a new infection red flag, spinal tenderness, with a lay synonym and
    a project code, listed with fever among the infection risk factors."""
    edit(
        root,
        "ontology/findings.ttl",
        "( lbp:Fever lbp:IntravenousDrugUse",
        "( lbp:Fever lbp:SpinalTenderness lbp:IntravenousDrugUse",
    )
    with (root / "ontology/findings.ttl").open("a", encoding="utf-8") as f:
        f.write(
            "\nlbp:SpinalTenderness a owl:NamedIndividual , lbp:InfectionRiskFactor ;\n"
            '    rdfs:label "spinal tenderness"@en ; skos:altLabel "sore to tap"@en ;\n'
            "    skos:exactMatch <https://w3id.org/lbp-imaging/code/spinal-tenderness> .\n"
        )
