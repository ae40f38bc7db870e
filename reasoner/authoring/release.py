"""``lbp-imaging release``: the artefacts of a version, as an ODK release writes them.

Users of an ontology load one file, not a catalog of modules: the release merges the
import closure of the top ontology (each import resolved through
``ontology/catalog-v001.xml``, as the engine and Protégé resolve them) into one ontology,
drops the ``owl:imports`` and the module headers (as ``robot merge
--collapse-import-closure`` does), and keeps the top ontology's IRI, ``owl:versionIRI``
and annotations. It is written as Turtle and RDF/XML, beside the FHIR artefacts of
``ontology/fhir/`` and a changelog entry.

The output directory must be new, empty, or a release written before (listed in its
marker file): a release never deletes files it did not write. The ``CHANGELOG.md`` of a
previous release is kept and gets this version's section (replacing one of the same
version), newest first, as the repository's changelog is kept.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import DCTERMS, OWL, RDF, BNode, Graph, URIRef

from ..knowledge import KnowledgeBase, KnowledgeBaseError, parse_file
from . import output_dir
from .axiom_diff import diff
from .report import Level
from .versions import top_ontology, version_results

MARKER = ".lbp-imaging-release"
CHANGELOG = "CHANGELOG.md"
CHANGELOG_TITLE = "# Changelog\n\n"
FHIR_DIR = "fhir"


class ReleaseError(Exception):
    """The release cannot be written (a version that disagrees, a directory in the way)."""


@dataclass(frozen=True)
class Changes:
    """What changed since a base version: named classes and axioms."""

    since: str
    classes_added: tuple[str, ...]
    classes_removed: tuple[str, ...]
    axioms_added: int
    axioms_removed: int


@dataclass
class Release:
    """What was written, for the command's report."""

    ontology: str
    version: str
    version_iri: str
    modules: int
    classes: int
    triples: int
    entry: str = ""
    files: list[str] = field(default_factory=list)
    """Every file written, relative to the output directory (the marker lists them)."""
    contents: list[tuple[str, str]] = field(default_factory=list)
    """(file or folder, what it holds), for the command's report."""


def merged_ontology(kb: KnowledgeBase) -> tuple[Graph, URIRef, int]:
    """The import closure of the top ontology as one ontology, and the number of modules
    merged. An import the catalog cannot resolve is an error naming it."""
    top = top_ontology(kb.ontology)
    if top is None:
        raise ReleaseError("the ontology has no top ontology (one that imports the modules)")
    merged, seen, todo = Graph(), set(), [top]
    while todo:
        iri = todo.pop()
        if iri in seen:
            continue
        seen.add(iri)
        path = kb.modules.get(str(iri))
        if path is None:
            raise ReleaseError(f"ontology/catalog-v001.xml maps {iri} to no file, so it cannot be merged")
        module = parse_file(path)
        todo.extend(o for o in module.objects(iri, OWL.imports) if isinstance(o, URIRef))
        merged += module
    for prefix, namespace in kb.ontology.namespaces():
        merged.bind(prefix, namespace)
    merged.remove((None, OWL.imports, None))
    for module_iri in seen - {top}:
        _remove_description(merged, module_iri)
    return merged, top, len(seen)


def _remove_description(graph: Graph, node: URIRef | BNode) -> None:
    """Remove what ``graph`` says about ``node``, with the blank nodes only it holds."""
    for _, p, o in list(graph.triples((node, None, None))):
        graph.remove((node, p, o))
        if isinstance(o, BNode) and (None, None, o) not in graph:
            _remove_description(graph, o)


def named_classes(graph: Graph) -> set[URIRef]:
    """The classes with an IRI: what a changelog can name as added or removed."""
    return {c for c in graph.subjects(RDF.type, OWL.Class) if isinstance(c, URIRef)}


def changes_since(since: str, old: Graph, work: Graph) -> Changes:
    """Classes added and removed, and the axiom counts of ``axiom_diff``, between the base
    ontology and the merged ontology of this one."""
    old_classes, new_classes = named_classes(old), named_classes(work)
    axioms = diff(old, work)

    def names(terms: set[URIRef]) -> tuple[str, ...]:
        return tuple(sorted(work.namespace_manager.normalizeUri(t) for t in terms))

    return Changes(
        since,
        names(new_classes - old_classes),
        names(old_classes - new_classes),
        len(axioms.added),
        len(axioms.removed),
    )


def changelog_entry(release: Release, issued: str, changes: Changes | None) -> str:
    """The section of this version: a heading as in the repository's ``CHANGELOG.md``
    (``## VERSION (DATE)``), what the release holds and, given a base, what changed."""
    lines = [
        f"## {release.version} ({issued})",
        "",
        f"Release of <{release.ontology}>, version IRI <{release.version_iri}>: {release.modules} modules "
        f"merged, {release.classes} classes, {release.triples} triples.",
    ]
    if changes is not None:
        lines += ["", f"Since {changes.since}:", ""]
        for what, terms in (("added", changes.classes_added), ("removed", changes.classes_removed)):
            lines.append(f"* classes {what}: {', '.join(terms) if terms else 'none'}")
        lines.append(f"* axioms: {changes.axioms_added} added, {changes.axioms_removed} removed")
    return "\n".join(lines) + "\n"


def _prepare(out_dir: Path) -> None:
    """Make ``out_dir`` ready: new, empty, or a release written before (whose files go,
    except its changelog, which gets the new section)."""
    try:
        output_dir.prepare(out_dir, MARKER, "lbp-imaging release", keep=(CHANGELOG,))
    except output_dir.OutputDirError as exc:
        raise ReleaseError(str(exc)) from None
    (out_dir / FHIR_DIR).mkdir(parents=True, exist_ok=True)


def _add_section(path: Path, version: str, entry: str) -> None:
    """Put ``entry`` first under the changelog's title, replacing a section of ``version``."""
    text = path.read_text(encoding="utf-8") if path.is_file() else CHANGELOG_TITLE
    body = text.removeprefix(CHANGELOG_TITLE)
    sections = [s for s in ("\n" + body).split("\n## ") if s.strip()]
    kept = ["## " + s.strip("\n") + "\n" for s in sections if not s.startswith(f"{version} ")]
    path.write_text(CHANGELOG_TITLE + "\n".join([entry, *kept]), encoding="utf-8")


def write_release(
    kb: KnowledgeBase, out_dir: Path, version: str | None = None, base: tuple[str, Graph] | None = None
) -> Release:
    """Write the release of ``kb`` into ``out_dir``. ``version``, when given, must be the
    version the ontology carries (a release does not renumber, ``docs/release.md`` bumps);
    ``base`` is (its name, its ontology) for the changelog's changes (``base_ontology``)."""
    problems, carried = version_results(kb.ontology, kb.root)
    errors = [f"{r.subject}: {r.message}" for r in problems if r.level is Level.ERROR]
    if errors:
        raise ReleaseError("the version is not the same everywhere: " + "; ".join(errors))
    if version is not None and version != carried:
        raise ReleaseError(
            f"the ontology carries version {carried}, not {version}: bump it first (docs/release.md)"
        )
    graph, top, modules = merged_ontology(kb)
    version_iri = graph.value(top, OWL.versionIRI)
    release = Release(
        str(top),
        str(carried),
        str(version_iri),
        modules,
        len(named_classes(graph)),
        len(graph),
    )
    issued = graph.value(top, DCTERMS.issued) or dt.date.today().isoformat()
    changes = changes_since(base[0], base[1], graph) if base else None
    release.entry = changelog_entry(release, str(issued), changes)

    _prepare(out_dir)
    stem = kb.modules[str(top)].stem
    head = f"# {stem} {release.version}, its modules merged into one. Decision support, not diagnosis.\n"
    (out_dir / f"{stem}.ttl").write_text(head + graph.serialize(format="turtle"), encoding="utf-8")
    release.contents.append((f"{stem}.ttl", f"the merged ontology, Turtle ({release.triples} triples)"))
    (out_dir / f"{stem}.owl").write_text(graph.serialize(format="xml"), encoding="utf-8")
    release.contents.append((f"{stem}.owl", "the merged ontology, RDF/XML"))
    release.files += [f"{stem}.ttl", f"{stem}.owl"]
    artefacts = sorted((kb.ontology_dir / FHIR_DIR).glob("*.json"))
    for path in artefacts:
        shutil.copyfile(path, out_dir / FHIR_DIR / path.name)
        release.files.append(f"{FHIR_DIR}/{path.name}")
    kinds = ", ".join(sorted({p.name.split("-", 1)[0] for p in artefacts}))  # TYPE-id.json, as IGs name them
    release.contents.append((f"{FHIR_DIR}/", f"{len(artefacts)} FHIR artefacts ({kinds})"))
    _add_section(out_dir / CHANGELOG, release.version, release.entry)
    release.files.append(CHANGELOG)
    release.contents.append((CHANGELOG, f"with the section of {release.version}"))
    output_dir.record(out_dir, MARKER, release.files)
    return release


def base_ontology(since: str, root: Path) -> Graph:
    """The merged ontology of the knowledge base at ``since`` (compared with this one
    merged, so that only what the release says differs): a directory, or a git revision of
    the repository holding ``root`` (exported with ``git archive``, the working tree
    untouched)."""
    from .revision import RevisionError, knowledge_base_at

    try:
        with knowledge_base_at(since, root) as base_root:
            return merged_ontology(KnowledgeBase.load(base_root))[0]
    except RevisionError as exc:
        raise ReleaseError(f"--since {since}: not a directory, and git cannot export it: {exc}") from None
    except KnowledgeBaseError as exc:
        raise ReleaseError(f"--since {since}: knowledge base error: {exc}") from None
