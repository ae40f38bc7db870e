"""Load patient cases from files: Turtle, N-Triples, N-Quads, TriG or JSON-LD.

A path may be a file or a directory (searched recursively for known extensions). Each
file is parsed on its own with pyoxigraph, so a malformed file is reported with its
parse error and the other files still load. N-Triples is line-based, so there a
malformed line loses only the case it describes (its subject). JSON-LD documents that name the project's
published context by IRI get the local copy of it (no network access is needed), and
JSON numbers that the JSON-LD algorithm turns into ill-formed ``xsd:decimal`` literals
(``6.5E0``) are restored to the decimal they were written as.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from itertools import groupby
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import pyoxigraph as ox
import rdflib

from .knowledge import LBP, KnowledgeBase

if TYPE_CHECKING:
    from .fhir_input import FhirCase
    from .fhir_mapping import FhirMapping

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
class InputOptions:
    """What reading needs besides the files: the published JSON-LD contexts by IRI (used
    locally), and for FHIR Bundles the ontology's code mappings and the reference date
    that ages and durations are counted to."""

    contexts: dict[str, object] = field(default_factory=dict)
    fhir: FhirMapping | None = None
    as_of: dt.date = field(default_factory=dt.date.today)

    @classmethod
    def for_knowledge_base(cls, kb: KnowledgeBase, as_of: dt.date | None = None) -> InputOptions:
        from .fhir_mapping import FhirMapping

        return cls(
            load_contexts(kb.root, str(LBP)), FhirMapping.from_ontology(kb.ontology), as_of or dt.date.today()
        )


@dataclass
class LoadedInput:
    """Every quad read, the file each subject first came from, file-level errors, and
    what FHIR Bundles gave: the bundle read as a case, with its warnings, by case IRI."""

    quads: list[ox.Quad] = field(default_factory=list)
    source_of: dict[str, str] = field(default_factory=dict)
    errors: list[InputError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    fhir_cases: dict[str, FhirCase] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        return [w for case in self.fhir_cases.values() for w in case.warnings]


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


def _jsonld_input(doc: object, contexts: dict[str, object]) -> str:
    """Replace a published context IRI by its local copy, so parsing needs no network."""

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


def _quads(path: Path, options: InputOptions, fhir_cases: dict[str, FhirCase]) -> Iterator[ox.Quad]:
    """The quads of one file, lazily where the format allows; raises on a parse error.
    A JSON file is a FHIR resource when it names a ``resourceType``, else JSON-LD; a
    bundle read as a case is also put in ``fhir_cases``."""
    fmt = FORMATS[path.suffix]
    base = path.resolve().as_uri()
    if fmt == ox.RdfFormat.JSON_LD:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and "resourceType" in doc:
            case = _fhir_case(doc, path, options)
            fhir_cases[case.case_iri] = case
            return iter(case.quads())
        text = _jsonld_input(doc, options.contexts)
        return (_restore_decimal(q) for q in ox.parse(text, format=fmt, base_iri=base))
    return iter(ox.parse(path=path, format=fmt, base_iri=base))


class _FhirError(Exception):
    """A FHIR Bundle that cannot be read as a case (the message names the resource)."""


def _fhir_case(doc: dict, path: Path, options: InputOptions) -> FhirCase:
    from .fhir_input import FhirInputError, bundle_to_case  # lazy: FHIR models load slowly

    mapping = options.fhir
    if mapping is None:
        raise _FhirError("a FHIR resource, but no FHIR mapping was loaded")
    try:
        return bundle_to_case(doc, str(path), options.as_of, mapping)
    except FhirInputError as exc:
        raise _FhirError(exc.detail) from None


def term_key(term) -> str:
    """A case or node as a string key: an IRI's value, or a blank node's ``_:label``."""
    return term.value if isinstance(term, ox.NamedNode) else str(term)


PARSE_ERRORS = (SyntaxError, ValueError, OSError, json.JSONDecodeError)


def _read_one(
    path: Path,
    options: InputOptions,
    read: Callable[[Iterator[ox.Quad]], T],
    fhir_cases: dict[str, FhirCase],
) -> T | InputError:
    """Read one case file with ``read``, or say why it cannot be: it fails to parse, is a
    FHIR Bundle that is not one patient's case, or holds nothing."""
    try:
        with gc_paused():  # many small containers, no cycles: skip the rescans
            result = read(_quads(path, options, fhir_cases))
    except _FhirError as exc:
        return InputError(str(path), f"FHIR Bundle not read: {exc}")
    except PARSE_ERRORS as exc:
        return InputError(str(path), f"cannot be parsed: {exc}")
    return result if result else _empty(path)


def _empty(path: Path) -> InputError:
    return InputError(str(path), "the file is empty: no patient case in it")


def load(paths: list[Path], options: InputOptions | None = None) -> LoadedInput:
    """Parse every case file into quads (in the default graph). As in ``load_grouped``,
    a malformed line of an N-Triples file loses only its own case."""
    options = options or InputOptions()
    files, errors = find_files(paths)
    fhir_cases: dict[str, FhirCase] = {}
    done = []
    for path in files:
        lines = nt_lines_by_subject(path) if path.suffix == ".nt" else None
        if lines:
            batch, line_errors = parse_cases(LineBatch.of(lines), dict.fromkeys(lines, str(path)))
            errors += line_errors
            result: list[ox.Quad] | InputError = batch.all_quads()
        else:
            result = _read_one(path, options, list, fhir_cases)
        if isinstance(result, InputError):
            errors.append(result)
        elif result:
            done.append((str(path), result))
    loaded = LoadedInput(errors=errors, files=[path for path, _ in done], fhir_cases=fhir_cases)
    default = ox.DefaultGraph()
    for path, quads in done:
        if any(not isinstance(q.graph_name, ox.DefaultGraph) for q in quads):
            quads = [ox.Quad(q.subject, q.predicate, q.object, default) for q in quads]
        loaded.quads += quads
        for subject in {q.subject for q in quads}:
            loaded.source_of.setdefault(term_key(subject), path)
    return loaded


def _nt_blocks(path: Path, size: int = 1 << 23) -> Iterator[list[str]]:
    """An N-Triples file as blocks of whole lines, so that lines are cut by ``str.split``
    rather than one by one (a block ends at a newline byte, which is never inside a UTF-8
    sequence). CR LF and CR end lines too, as N-Triples says."""
    rest = b""
    with open(path, "rb") as f:
        while block := f.read(size):
            data = rest + block
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                yield _lines(data[:cut])
    if rest:
        yield _lines(rest + b"\n")


def _lines(data: bytes) -> list[str]:
    """Whole lines of UTF-8 text ending with a newline, without their line ends."""
    text = data.decode("utf-8")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    lines.pop()
    return lines


def _subject_key(token: str, lines: list[str]) -> str | None:
    """The key of a run of lines that start with ``token``: an IRI's value, a blank
    node's label, "" for blank or comment lines (skipped), None when the lines must be
    parsed instead (escapes, tabs, no space after the subject, leading whitespace)."""
    if token.startswith("<") and token.endswith(">") and token.count(">") == 1 and "\\" not in token:
        return token[1:-1]
    if token.startswith("_:") and not any(c in token for c in '\t<"\\'):
        return token
    if token.startswith("#") or (not token and not any(line.strip() for line in lines)):
        return ""
    return None


def nt_lines_by_subject(path: Path, block_size: int = 1 << 23) -> dict[str, list[str]] | None:
    """An N-Triples file's lines grouped by subject without parsing them (N-Triples is
    line-based and a line's subject is its first term), keyed as ``term_key`` keys them.
    Lines are grouped in runs of the same first token, so the work per line is done by
    ``str`` methods and ``itertools.groupby``, not Python code; a subject whose lines are
    not contiguous is still gathered in one group. None when a subject is written in a way
    this cannot key (escapes, tabs): then the file must be parsed instead. The lines are
    parsed later, case by case (``parse_cases``)."""
    found: dict[str, list[str]] = {}
    try:
        blocks = list(_nt_blocks(path, block_size))
    except UnicodeDecodeError:
        return None  # parsed instead, which reports where the file is not UTF-8
    for lines in blocks:
        start = 0
        for token, run in groupby(map(itemgetter(0), map(methodcaller("partition", " "), lines))):
            count = len(list(run))
            group = lines[start : start + count]
            start += count
            key = _subject_key(token, group)
            if key is None:
                return None
            if not key:
                continue
            known = found.get(key)
            if known is None:
                found[key] = group
            else:
                known += group
    return found


@dataclass
class LineBatch:
    """Whole cases as N-Triples lines joined into one text (one string is parsed, and
    pickled to a worker, far faster than many), with each case's key and line count."""

    text: str
    keys: list[str]
    counts: list[int]

    @classmethod
    def of(cls, groups: dict[str, list[str]]) -> LineBatch:
        return cls(
            "\n".join(line for group in groups.values() for line in group),
            list(groups),
            [len(group) for group in groups.values()],
        )

    def groups(self) -> Iterator[tuple[str, list[str]]]:
        """Each case's key and lines again."""
        lines, start = self.text.split("\n"), 0
        for key, count in zip(self.keys, self.counts, strict=True):
            yield key, lines[start : start + count]
            start += count


class Fact(NamedTuple):
    """One patient fact: the subject has ``value`` for ``prop``."""

    prop: str
    value: ox.NamedNode | ox.Literal | ox.BlankNode


@dataclass
class CaseBatch:
    """The subjects of one batch: each one's quads (for the store) and facts (for the
    engines and explanations), in input order. Equal facts are one shared object within
    a batch, so that a fact is tested and rendered once however many cases have it."""

    quads: dict[str, list[ox.Quad]]
    facts: dict[str, list[Fact]]

    @classmethod
    def from_quads(cls, quads: dict[str, list[ox.Quad]]) -> CaseBatch:
        shared: dict[tuple[str, object], Fact] = {}
        facts = {}
        for key, subject_quads in quads.items():
            found = facts[key] = []
            for q in subject_quads:
                fact = Fact(q.predicate.value, q.object)
                found.append(shared.setdefault(fact, fact))
        return cls(quads, facts)

    def all_quads(self) -> list[ox.Quad]:
        return [q for subject_quads in self.quads.values() for q in subject_quads]


def _facts_by_line_text(lines: LineBatch) -> dict[str, list[Fact]] | None:
    """Each subject's facts, parsing each distinct predicate-object text once: a batch
    repeats few of them (the same findings and types in every case), and a ``Fact`` made
    from the parser's terms costs more than the parse. None when a line's text after its
    subject is not exactly one triple's predicate and object."""
    tails = list(map(itemgetter(2), map(methodcaller("partition", " "), lines.text.split("\n"))))
    distinct = list(dict.fromkeys(tails))
    try:
        parsed = list(ox.parse("".join(f"<urn:x> {t}\n" for t in distinct), format=ox.RdfFormat.N_TRIPLES))
    except SyntaxError:
        return None
    if len(parsed) != len(distinct):
        return None
    fact_of = {t: Fact(q.predicate.value, q.object) for t, q in zip(distinct, parsed, strict=True)}
    facts, start = {}, 0
    for key, count in zip(lines.keys, lines.counts, strict=True):
        facts[key] = list(map(fact_of.__getitem__, tails[start : start + count]))
        start += count
    return facts


def parse_cases(lines: LineBatch, source_of: dict[str, str]) -> tuple[CaseBatch, list[InputError]]:
    """Parse N-Triples lines grouped by subject into each subject's quads and facts. A
    malformed line loses only its own case, which is reported with the file and the
    parse error."""
    try:
        quads = list(ox.parse(lines.text, format=ox.RdfFormat.N_TRIPLES))
    except SyntaxError:
        quads = None  # find the case(s) the error is in; the others still go on
    if quads is not None and len(quads) == sum(lines.counts):
        # One triple per line, in the order of the lines: cut the quads by line counts
        # instead of keying each quad by its subject again.
        by_key, start = {}, 0
        for key, count in zip(lines.keys, lines.counts, strict=True):
            by_key[key] = quads[start : start + count]
            start += count
        facts = _facts_by_line_text(lines)
        return (CaseBatch(by_key, facts) if facts is not None else CaseBatch.from_quads(by_key)), []
    if quads is not None:  # a line with no triple (a comment): key each quad by subject
        return CaseBatch.from_quads(group_by_subject(iter(quads))), []
    found: dict[str, list[ox.Quad]] = {}
    errors = []
    for key, group in lines.groups():
        try:
            found.update(group_by_subject(ox.parse("\n".join(group), format=ox.RdfFormat.N_TRIPLES)))
        except SyntaxError as exc:
            line = group[exc.lineno - 1].strip() if exc.lineno and exc.lineno <= len(group) else ""
            errors.append(
                InputError(
                    source_of.get(key, "?"),
                    f"case {key}: the N-Triples line {line!r} cannot be parsed ({exc.msg}); "
                    "the case is skipped",
                )
            )
    return CaseBatch.from_quads(found), errors


def group_by_subject(quads: Iterator[ox.Quad]) -> dict[str, list[ox.Quad]]:
    batch: dict[str, list[ox.Quad]] = {}
    for quad in quads:
        key = term_key(quad.subject)
        found = batch.get(key)
        if found is None:
            batch[key] = [quad]
        else:
            found.append(quad)
    return batch


@dataclass
class GroupedInput:
    """Input for batch processing: each subject's triples as N-Triples lines, in input
    order. Lines take a fraction of the memory of parsed quad objects."""

    lines: dict[str, list[str]] = field(default_factory=dict)
    source_of: dict[str, str] = field(default_factory=dict)
    errors: list[InputError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    fhir_cases: dict[str, FhirCase] = field(default_factory=dict)


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


def load_grouped(paths: list[Path], options: InputOptions | None = None) -> GroupedInput:
    """Like ``load``, but keeping each subject's triples as N-Triples lines. N-Triples
    files are only split into lines here (they are parsed case by case later, in the
    worker processes: see ``parse_cases``); other formats are parsed whole, and a
    malformed file of those is skipped."""
    files, errors = find_files(paths)
    grouped = GroupedInput(errors=errors)
    for path in files:
        with gc_paused():
            by_subject = nt_lines_by_subject(path) if path.suffix == ".nt" else None
        if by_subject is None:
            by_subject = _read_one(path, options or InputOptions(), _lines_by_subject, grouped.fhir_cases)
        elif not by_subject:
            by_subject = _empty(path)
        if isinstance(by_subject, InputError):
            grouped.errors.append(by_subject)
            continue
        grouped.files.append(str(path))
        if not grouped.lines:  # the first file (often the only one): take its groups
            grouped.lines, grouped.source_of = by_subject, dict.fromkeys(by_subject, str(path))
            continue
        for key, lines in by_subject.items():
            grouped.source_of.setdefault(key, str(path))
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
