"""The FHIR artefacts generated from the knowledge base, kept under ``ontology/fhir/``.

Why checked in although generated: they are what the project publishes (the server serves
each one at its canonical URL, ``server/linked_data_router``), and what a FHIR tool or a
reviewer reads without running the package. Why generated: so that they never say anything
the ontology does not. Today they are the project's CodeSystem (``mapping``), the
Questionnaire of the case facts (``questionnaire``), and the terminology: the ConceptMap of
the SKOS mappings and a ValueSet per finding category (``terminology``).

Each file is named ``<resourceType>-<id>.json`` (the naming of FHIR implementation guides)
and holds the resource as pretty JSON (2-space indent, trailing newline), so that a change
to the ontology reads as a diff of the file. Every JSON file in the directory is generated:
one the knowledge base no longer generates (a renamed questionnaire) is stale too, since the
server would go on publishing it.

``python -m reasoner.fhir.artefacts [--kb DIR]`` writes every artefact and removes the stale
leftovers; with ``--check`` it changes nothing and exits 1 naming each stale file (CI runs
it, and the test suite asserts the same).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..knowledge import KnowledgeBase, KnowledgeBaseError
from ..pipeline.definitions import UnsupportedConstruct
from .mapping import code_system_resource
from .questionnaire import QuestionnaireError, questionnaire
from .terminology import concept_map, value_sets

FHIR_DIR = "fhir"
"""The artefacts' directory, under the ontology directory."""
COMMAND = "python -m reasoner.fhir.artefacts"


@dataclass(frozen=True)
class Stale:
    """A file of the artefacts' directory that differs from what the knowledge base generates."""

    path: Path
    reason: str


def file_name(resource_type: str, resource_id: str) -> str:
    """``<resourceType>-<id>.json``: how the server finds the file a canonical URL names."""
    return f"{resource_type}-{resource_id}.json"


def text(resource: dict) -> str:
    """The resource as it is written: 2-space indented JSON, non-ASCII kept, trailing newline."""
    return json.dumps(resource, indent=2, ensure_ascii=False) + "\n"


def artefacts(kb: KnowledgeBase) -> dict[Path, str]:
    """Every artefact the knowledge base generates: its path and its text."""
    directory = kb.ontology_dir / FHIR_DIR
    return {
        directory / file_name(r["resourceType"], r["id"]): text(r)
        for r in (
            code_system_resource(kb.ontology),
            questionnaire(kb),
            concept_map(kb.ontology),
            *value_sets(kb.ontology),
        )
    }


def stale(kb: KnowledgeBase, generated: dict[Path, str]) -> list[Stale]:
    """The artefacts missing or differing from ``generated``, then the JSON files nothing generates."""
    found = []
    for path, content in generated.items():
        if not path.is_file():
            found.append(Stale(path, "missing"))
        elif path.read_text(encoding="utf-8") != content:
            found.append(Stale(path, "differs from what the knowledge base generates"))
    leftovers = sorted(set((kb.ontology_dir / FHIR_DIR).glob("*.json")) - set(generated))
    return found + [Stale(p, "is not generated from the knowledge base any more") for p in leftovers]


def write(generated: dict[Path, str], found: list[Stale]) -> None:
    """Bring the stale files up to date: write each artefact, remove each leftover."""
    for entry in found:
        if entry.path in generated:
            entry.path.parent.mkdir(parents=True, exist_ok=True)
            entry.path.write_text(generated[entry.path], encoding="utf-8", newline="\n")
        else:
            entry.path.unlink()


def _shown(kb: KnowledgeBase, path: Path) -> str:
    return str(path.relative_to(kb.root))


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` only check) the FHIR artefacts; the exit status for CI."""
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description="Write the FHIR artefacts generated from the knowledge base under ontology/fhir/.",
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 naming each stale file")
    parser.add_argument(
        "--kb", type=Path, help="the knowledge-base root (default: $LBP_IMAGING_KB or this repository)"
    )
    args = parser.parse_args(argv)
    try:
        kb = KnowledgeBase.load(args.kb)
        generated = artefacts(kb)
    except (KnowledgeBaseError, UnsupportedConstruct, QuestionnaireError, ValueError) as exc:
        print(f"{COMMAND}: knowledge base error: {exc}", file=sys.stderr)
        return 2
    found = stale(kb, generated)
    if not found:
        print(
            f"{_shown(kb, kb.ontology_dir / FHIR_DIR)}: {len(generated)} artefacts up to date",
            file=sys.stderr,
        )
    if args.check:
        for entry in found:
            print(f"{_shown(kb, entry.path)}: stale, {entry.reason}; regenerate: {COMMAND}", file=sys.stderr)
        return 1 if found else 0
    write(generated, found)
    for entry in found:
        done = "written" if entry.path in generated else "removed"
        print(f"{_shown(kb, entry.path)}: {done}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
