"""Load patient cases from files: Turtle, N-Triples, N-Quads, TriG or JSON-LD.

A path may be a file or a directory (searched recursively for known extensions). Each
file is parsed on its own with pyoxigraph, so a malformed file is reported with its
parse error and the other files still load. JSON-LD documents that name the project's
published context by IRI get the local copy of it (no network access is needed), and
JSON numbers that the JSON-LD algorithm turns into ill-formed ``xsd:decimal`` literals
(``6.5E0``) are restored to the decimal they were written as.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar

import pyoxigraph as ox
import rdflib

T = TypeVar("T")
FORMATS = {
    ".ttl": ox.RdfFormat.TURTLE,
    ".nt": ox.RdfFormat.N_TRIPLES,
    ".nq": ox.RdfFormat.N_QUADS,
    ".trig": ox.RdfFormat.TRIG,
    ".jsonld": ox.RdfFormat.JSON_LD,
    ".json": ox.RdfFormat.JSON_LD,
}
XSD_DECIMAL = "http://www.w3.org/2001/XMLSchema#decimal"
CONTEXT_FILE = "context.jsonld"


@dataclass(frozen=True)
class InputError:
    """A file that could not be read as cases, with the reason."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class LoadedInput:
    """Every quad read, the file each subject first came from, and file-level errors."""

    quads: list[ox.Quad] = field(default_factory=list)
    source_of: dict[str, str] = field(default_factory=dict)
    errors: list[InputError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def find_files(paths: list[Path]) -> tuple[list[Path], list[InputError]]:
    files, errors = [], []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in FORMATS
                and p.is_file()
                and not p.name.endswith((".expected.json", CONTEXT_FILE))
            )
            if not found:
                errors.append(
                    InputError(
                        str(path),
                        "directory holds no case files (.ttl, .nt, .nq, .trig, .jsonld, .json)",
                    )
                )
            files += found
        elif path.is_file():
            if path.suffix not in FORMATS:
                errors.append(
                    InputError(
                        str(path),
                        f"unknown file type {path.suffix!r}: expected one of {', '.join(FORMATS)}",
                    )
                )
            else:
                files.append(path)
        else:
            errors.append(InputError(str(path), "no such file or directory"))
    return files, errors


def _jsonld_input(text: str, contexts: dict[str, object]) -> str:
    """Replace a published context IRI by its local copy, so parsing needs no network."""
    doc = json.loads(text)

    def local(ctx):
        if isinstance(ctx, str) and ctx in contexts:
            return contexts[ctx]
        if isinstance(ctx, list):
            return [local(c) for c in ctx]
        return ctx

    def walk(node):
        if isinstance(node, dict):
            if "@context" in node:
                node["@context"] = local(node["@context"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(doc)
    return json.dumps(doc)


def _restore_decimal(quad: ox.Quad) -> ox.Quad:
    obj = quad.object
    if (
        isinstance(obj, ox.Literal)
        and obj.datatype.value == XSD_DECIMAL
        and ("E" in obj.value or "e" in obj.value)
    ):
        try:
            text = format(Decimal(obj.value), "f")
        except InvalidOperation:
            return quad
        return ox.Quad(quad.subject, quad.predicate, ox.Literal(text, datatype=obj.datatype), quad.graph_name)
    return quad


def load_contexts(kb_root: Path, base_iri: str) -> dict[str, object]:
    """The published JSON-LD context of the knowledge base, keyed by its IRI."""
    path = kb_root / "ontology" / CONTEXT_FILE
    if not path.is_file():
        return {}
    return {base_iri + CONTEXT_FILE: json.loads(path.read_text(encoding="utf-8"))["@context"]}


def _quads(path: Path, contexts: dict[str, object] | None) -> Iterator[ox.Quad]:
    """The quads of one file, lazily where the format allows; raises on a parse error."""
    fmt = FORMATS[path.suffix]
    base = path.resolve().as_uri()
    if fmt == ox.RdfFormat.JSON_LD:
        text = _jsonld_input(path.read_text(encoding="utf-8"), contexts or {})
        return (_restore_decimal(q) for q in ox.parse(text, format=fmt, base_iri=base))
    return iter(ox.parse(path=path, format=fmt, base_iri=base))


def term_key(term) -> str:
    """A case or node as a string key: an IRI's value, or a blank node's ``_:label``."""
    return term.value if isinstance(term, ox.NamedNode) else str(term)


PARSE_ERRORS = (SyntaxError, ValueError, OSError, json.JSONDecodeError)


def _per_file(
    paths: list[Path], contexts: dict[str, object] | None, read: Callable[[Iterator[ox.Quad]], T]
) -> tuple[list[tuple[str, T]], list[InputError]]:
    """Read every case file with ``read``; a file that fails to parse, or holds nothing,
    is reported and skipped whole, and the other files still load."""
    files, errors = find_files(paths)
    done = []
    for path in files:
        try:
            with gc_paused():  # many small containers, no cycles: skip the rescans
                result = read(_quads(path, contexts))
        except PARSE_ERRORS as exc:
            errors.append(InputError(str(path), f"cannot be parsed: {exc}"))
            continue
        if not result:
            errors.append(InputError(str(path), "the file is empty: no patient case in it"))
            continue
        done.append((str(path), result))
    return done, errors


def load(paths: list[Path], contexts: dict[str, object] | None = None) -> LoadedInput:
    """Parse every case file into quads (in the default graph)."""
    done, errors = _per_file(paths, contexts, list)
    loaded = LoadedInput(errors=errors, files=[path for path, _ in done])
    default = ox.DefaultGraph()
    for path, quads in done:
        if any(not isinstance(q.graph_name, ox.DefaultGraph) for q in quads):
            quads = [ox.Quad(q.subject, q.predicate, q.object, default) for q in quads]
        loaded.quads += quads
        for subject in {q.subject for q in quads}:
            loaded.source_of.setdefault(term_key(subject), path)
    return loaded


@dataclass
class GroupedInput:
    """Input for batch processing: each subject's triples as N-Triples lines, in input
    order. Lines take a fraction of the memory of parsed quad objects."""

    lines: dict[str, list[str]] = field(default_factory=dict)
    source_of: dict[str, str] = field(default_factory=dict)
    errors: list[InputError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _lines_by_subject(quads: Iterator[ox.Quad]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for q in quads:
        # An N-Triples line (a quad in a named graph is taken into the default graph).
        line = (
            f"{q} ."
            if isinstance(q.graph_name, ox.DefaultGraph)
            else f"{q.subject} {q.predicate} {q.object} ."
        )
        key = term_key(q.subject)
        if key in found:
            found[key].append(line)
        else:
            found[key] = [line]
    return found


def load_grouped(paths: list[Path], contexts: dict[str, object] | None = None) -> GroupedInput:
    """Like ``load``, but keeping each subject's triples as N-Triples lines."""
    done, errors = _per_file(paths, contexts, _lines_by_subject)
    grouped = GroupedInput(errors=errors, files=[path for path, _ in done])
    for path, by_subject in done:
        for key, lines in by_subject.items():
            grouped.source_of.setdefault(key, path)
            grouped.lines.setdefault(key, []).extend(lines)
    return grouped


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector (reference counting still frees memory)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _literals_as_written():
    """rdflib normally rewrites literals to canonical form, which turns an ill-typed
    ``"maybe"^^xsd:boolean`` into ``"false"``; the reference path must see them as written."""
    saved = rdflib.NORMALIZE_LITERALS
    rdflib.NORMALIZE_LITERALS = False
    try:
        yield
    finally:
        rdflib.NORMALIZE_LITERALS = saved


def to_rdflib(ntriples_or_quads: str | list[ox.Quad]) -> rdflib.Graph:
    """Case data as an rdflib graph, literals kept exactly as written."""
    text = (
        ntriples_or_quads
        if isinstance(ntriples_or_quads, str)
        else "\n".join(f"{q.subject} {q.predicate} {q.object} ." for q in ntriples_or_quads)
    )
    with _literals_as_written():
        return rdflib.Graph().parse(data=text, format="nt") if text.strip() else rdflib.Graph()
