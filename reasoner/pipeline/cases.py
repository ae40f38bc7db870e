"""Load patient cases from files: Turtle, N-Triples, N-Quads, TriG or JSON-LD.

A path may be a file or a directory (searched recursively for known extensions). Each
file is parsed on its own with pyoxigraph, so a malformed file is reported with its
parse error and the other files still load. N-Triples is line-based, so there a
malformed line loses only the case it describes (its subject). JSON-LD documents that name the project's
published context by IRI get the local copy of it (no network access is needed), and
JSON numbers that the JSON-LD algorithm turns into ill-formed ``xsd:decimal`` literals
(``6.5E0``) are restored to the decimal they were written as.

Identity is explicit. A case IRI is one patient: the same case IRI in two or more files is
an error for each of them and the case is not assessed, unless ``merge_duplicates`` asks
for one case (each result then says so). Blank nodes are local to their file: a label
used in two files names two nodes. A file in which no subject is a case, and a term of
the project's namespace that the ontology does not define (``lbp:PatientCas``), give
warnings (``InputWarning``) naming the file, the case and the term.
"""

from __future__ import annotations

import datetime as dt
import difflib
import gc
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from itertools import groupby
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import pyoxigraph as ox
import rdflib
from rdflib import OWL, RDF, RDFS, URIRef
from rdflib.namespace import SH

from ..fhir.validation import is_fhir
from ..knowledge import LBP, KnowledgeBase
from .case_iri import case_iri_problem
from .input_text import (
    DECIMAL_EXPONENT_LIMIT,
    TextError,
    check_rdf_nesting,
    decode,
    json_text,
    parse_problem,
)

if TYPE_CHECKING:
    from ..fhir.mapping import FhirMapping
    from ..fhir.read import FhirCase

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
BOM = b"\xef\xbb\xbf"
"""The UTF-8 byte-order mark: accepted at the start of a case file and ignored."""
RDF_TYPE = str(RDF.type)
CONTEXT_FILE = "context.jsonld"
NAMED_CASES = 3
"""How many cases a warning about many names before it counts the rest."""


@dataclass(frozen=True)
class InputError:
    """A file that could not be read as cases, with the reason."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class InputWarning:
    """Something read that may not say what was meant. ``cases`` are the subjects it is
    about; when ``attached``, they are cases and each one's result carries the warning,
    otherwise no result does (a file with no case, a term on a subject that is no case)."""

    path: str
    message: str
    cases: tuple[str, ...] = ()
    attached: bool = False

    def __str__(self) -> str:
        if not self.cases:
            return f"{self.path}: {self.message}"
        named = ", ".join(self.cases[:NAMED_CASES])
        more = len(self.cases) - NAMED_CASES
        who = f"case {named}" if len(self.cases) == 1 else f"cases {named}"
        return f"{self.path}: {who}{f' and {more} more' if more > 0 else ''}: {self.message}"

    def on_result(self) -> str:
        """The warning as the result of one of its cases carries it (the result names the case)."""
        return f"{self.path}: {self.message}"


def merge_warnings(warnings: list[InputWarning]) -> list[InputWarning]:
    """The warnings with those of the same file and message made one, naming all their
    cases (batches of one file each find the same term undefined)."""
    merged: dict[tuple[str, str, bool], list[str]] = {}
    for w in warnings:
        merged.setdefault((w.path, w.message, w.attached), []).extend(w.cases)
    return [
        InputWarning(path, message, tuple(dict.fromkeys(cases)), attached)
        for (path, message, attached), cases in merged.items()
    ]


@dataclass(frozen=True)
class CaseTerms:
    """What checking identity and terms needs from the knowledge base: which subjects are
    cases (as the case shapes target them: typed with a target class or a subclass of it,
    or the subject of a targeted property), and the project's terms the ontology defines,
    each with its kind (property, class or value) so that a near miss is suggested from
    terms of the same kind."""

    namespace: str
    case_classes: frozenset[str]
    case_properties: frozenset[str]
    defined: dict[str, str]

    @classmethod
    def from_knowledge_base(cls, kb: KnowledgeBase, shapes: rdflib.Graph) -> CaseTerms:
        onto = kb.ontology
        classes = {
            str(c)
            for target in shapes.objects(None, SH.targetClass)
            for c in onto.transitive_subjects(RDFS.subClassOf, target)
        }
        properties = {str(p) for p in shapes.objects(None, SH.targetSubjectsOf)}
        defined = {
            str(term): _kind(set(onto.objects(term, RDF.type)))
            for term in set(onto.subjects())
            if isinstance(term, URIRef) and term.startswith(str(LBP))
        }
        return cls(str(LBP), frozenset(classes), frozenset(properties), defined)

    def is_case(self, facts: list[Fact]) -> bool:
        """Whether a subject with these facts is a case (a focus node of the case shapes)."""
        return any(
            f.prop in self.case_properties
            or (
                f.prop == RDF_TYPE
                and isinstance(f.value, ox.NamedNode)
                and f.value.value in self.case_classes
            )
            for f in facts
        )

    def _undefined(self, fact: Fact) -> list[tuple[str, str]]:
        """The (kind, term) of each project term in ``fact`` that the ontology does not define."""
        found = []
        if fact.prop.startswith(self.namespace) and fact.prop not in self.defined:
            found.append(("property", fact.prop))
        value = fact.value
        if (
            isinstance(value, ox.NamedNode)
            and value.value.startswith(self.namespace)
            and value.value not in self.defined
        ):
            found.append(("class" if fact.prop == RDF_TYPE else "value", value.value))
        return found

    def suggestion(self, term: str, kind: str) -> str | None:
        """The closest defined term of the same kind, by spelling, if one is close."""
        names = self._names(kind) or self._names(None)
        found = difflib.get_close_matches(term.removeprefix(self.namespace).lower(), names, n=1, cutoff=0.75)
        return names[found[0]] if found else None

    def _names(self, kind: str | None) -> dict[str, str]:
        """Local names (lower case) of the defined terms of ``kind`` (any when None)."""
        return {
            iri.removeprefix(self.namespace).lower(): iri.removeprefix(self.namespace)
            for iri, k in self.defined.items()
            if (kind is None or k == kind) and "/" not in iri.removeprefix(self.namespace)
        }

    def warnings(
        self, facts: dict[str, list[Fact]], path_of: Callable[[str], str | None]
    ) -> list[InputWarning]:
        """A warning per file and undefined term, naming the subjects that use it. Equal
        facts are checked once (a batch repeats the same few)."""
        distinct = {f for subject_facts in facts.values() for f in subject_facts}
        bad = {f: found for f in distinct if (found := self._undefined(f))}
        if not bad:
            return []
        uses: dict[tuple[str, str, str, bool], list[str]] = {}
        for key, subject_facts in facts.items():
            terms = [term for f in subject_facts if f in bad for term in bad[f]]
            case = self.is_case(subject_facts) if terms else False
            for kind, term in dict.fromkeys(terms):
                uses.setdefault((path_of(key) or "?", kind, term, case), []).append(key)
        warnings = []
        for (path, kind, term, case), keys in uses.items():
            near = self.suggestion(term, kind)
            hint = f" (did you mean lbp:{near}?)" if near else ""
            message = (
                f"the {kind} lbp:{term.removeprefix(self.namespace)} is not defined by the ontology{hint}"
            )
            warnings.append(InputWarning(path, message, tuple(keys), attached=case))
        return warnings


PROPERTY_TYPES = {OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty, RDF.Property}
CLASS_TYPES = {OWL.Class, RDFS.Class}


def _kind(types: set) -> str:
    """A term's kind by its declared types (OWL's and RDF Schema's own vocabulary)."""
    return "property" if types & PROPERTY_TYPES else "class" if types & CLASS_TYPES else "value"


def real_location(path: Path) -> Path:
    """``path.resolve()``, with its folder resolved once per folder: resolving follows each
    component's links, a system call each, which cost more than reading a small bundle. A
    path that is itself a link is resolved whole."""
    if path.name in ("", ".", "..") or path.is_symlink():
        return path.resolve()
    return _real_folder(str(path.parent.absolute())) / path.name


@lru_cache(maxsize=256)
def _real_folder(folder: str) -> Path:
    return Path(folder).resolve()


@dataclass
class InputOptions:
    """What reading needs besides the files: the published JSON-LD contexts by IRI (used
    locally), for FHIR Bundles the ontology's code mappings and the reference date that
    ages and durations are counted to, the knowledge base's case terms (to check identity
    and terms), whether cases of the same IRI in several files are merged, and, by path, the
    IRI that a file's relative IRIs resolve against when it is not the file's own location
    (a document held in memory is read from a temporary file, whose folder no answer may
    show: ``documents``)."""

    contexts: dict[str, object] = field(default_factory=dict)
    fhir: FhirMapping | None = None
    as_of: dt.date = field(default_factory=dt.date.today)
    terms: CaseTerms | None = None
    merge_duplicates: bool = False
    bases: dict[str, str] = field(default_factory=dict)

    def base_of(self, path: Path) -> str:
        """The IRI the relative IRIs of ``path`` resolve against: its real location."""
        return self.bases.get(str(path)) or real_location(path).as_uri()

    @classmethod
    def for_knowledge_base(
        cls, kb: KnowledgeBase, as_of: dt.date | None = None, shapes: rdflib.Graph | None = None
    ) -> InputOptions:
        """The options for ``kb``; ``shapes`` are its case shapes when already parsed."""
        from ..fhir.mapping import FhirMapping

        shapes = shapes if shapes is not None else kb.shapes("case-shapes")
        return cls(
            load_contexts(kb.root, str(LBP)),
            FhirMapping.for_knowledge_base(kb, shapes),
            as_of or dt.date.today(),
            CaseTerms.from_knowledge_base(kb, shapes),
        )


@dataclass
class _Input:
    """What every reading of case files gives besides the cases: the file each subject
    first came from, file-level errors, the files read, what FHIR Bundles gave (the bundle
    read as a case, with its warnings, by case IRI) and the warnings about the input."""

    source_of: dict[str, str] = field(default_factory=dict)
    errors: list[InputError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    fhir_cases: dict[str, FhirCase] = field(default_factory=dict)
    notes: list[InputWarning] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """Every input warning, as the command line reports them."""
        return [w for case in self.fhir_cases.values() for w in case.warnings] + list(map(str, self.notes))

    def case_warnings(self) -> dict[str, list[str]]:
        """The warnings each case's result carries, by case."""
        found = {iri: case.warnings for iri, case in self.fhir_cases.items() if case.warnings}
        return with_notes(found, self.notes)


def with_notes(warnings: dict[str, list[str]], notes: list[InputWarning]) -> dict[str, list[str]]:
    """``warnings`` (by case) and, after them, the attached ``notes`` of each case."""
    found = {case: list(texts) for case, texts in warnings.items()}
    for note in notes:
        if note.attached:
            for case in note.cases:
                found.setdefault(case, []).append(note.on_result())
    return found


@dataclass
class LoadedInput(_Input):
    """Every quad read, besides what ``_Input`` holds."""

    quads: list[ox.Quad] = field(default_factory=list)


def find_files(paths: list[Path]) -> tuple[list[Path], list[InputError]]:
    """The case files at ``paths`` (each once, however often it is named: a file read twice
    is not two patients' records), and the paths that hold none."""
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
    unique: dict[Path, Path] = {}
    for f in files:
        unique.setdefault(real_location(f), f)
    return list(unique.values()), errors


def _jsonld_input(doc: object, contexts: dict[str, object]) -> str:
    """Replace a published context IRI by its local copy, so parsing needs no network; a
    context of any other IRI (or an ``@import``) is refused, since none is fetched."""

    def local(ctx):
        if isinstance(ctx, str):
            if ctx not in contexts:
                raise TextError(
                    f"the JSON-LD @context {ctx!r} is not read: contexts are not fetched, and the only one "
                    f"known is the project's ({', '.join(contexts) or 'none'}); put the context in the file"
                )
            return contexts[ctx]
        if isinstance(ctx, list):
            return [local(c) for c in ctx]
        if isinstance(ctx, dict) and "@import" in ctx:
            raise TextError(f"the JSON-LD @import {ctx['@import']!r} is not read: contexts are not fetched")
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
            value = Decimal(obj.value)
        except InvalidOperation:
            return quad
        if not value.is_finite() or abs(value.adjusted()) > DECIMAL_EXPONENT_LIMIT:
            return quad  # left as written, an ill-formed decimal that the case shapes refuse
        text = format(value, "f")
        return ox.Quad(quad.subject, quad.predicate, ox.Literal(text, datatype=obj.datatype), quad.graph_name)
    return quad


def load_contexts(kb_root: Path, base_iri: str) -> dict[str, object]:
    """The published JSON-LD context of the knowledge base, keyed by its IRI."""
    path = kb_root / "ontology" / CONTEXT_FILE
    if not path.is_file():
        return {}
    return {base_iri + CONTEXT_FILE: json.loads(path.read_text(encoding="utf-8"))["@context"]}


def _quads(path: Path, options: InputOptions, fhir_cases: dict[str, FhirCase]) -> Iterable[ox.Quad]:
    """The quads of one file, lazily where the format allows; raises on a parse error.
    A JSON file is a FHIR resource when it names a ``resourceType``, else JSON-LD; a
    bundle read as a case is also put in ``fhir_cases``."""
    fmt = FORMATS[path.suffix]
    if fmt == ox.RdfFormat.JSON_LD:
        text = decode(path.read_bytes())  # a byte-order mark is allowed
        if not text.strip():
            return iter(())
        doc = json_text(text)
        if is_fhir(doc):
            case = _fhir_case(doc, path, options)
            if case.case_iri in fhir_cases:  # the same case in another bundle: keep its warnings
                case.warnings[:0] = fhir_cases[case.case_iri].warnings
            fhir_cases[case.case_iri] = case
            return _BundleQuads(case)
        text = _jsonld_input(doc, options.contexts)
        base = options.base_of(path)
        return (_restore_decimal(q) for q in ox.parse(text, format=fmt, base_iri=base))
    base = options.base_of(path)
    if fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.TRIG):
        check_rdf_nesting(path)
    if _starts_with_bom(path):  # editors on some systems write one; the parsers refuse it
        return iter(ox.parse(path.read_bytes()[len(BOM) :], format=fmt, base_iri=base))
    return iter(ox.parse(path=path, format=fmt, base_iri=base))


class _BundleQuads:
    """A FHIR Bundle's case as quads, parsed from its N-Triples only when iterated:
    ``_lines_by_subject`` takes the lines as the reader wrote them instead (every triple's
    subject is the case), which spares parsing them and writing them again."""

    def __init__(self, case: FhirCase) -> None:
        self.case = case

    def __iter__(self) -> Iterator[ox.Quad]:
        return iter(self.case.quads())


def _starts_with_bom(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(BOM)) == BOM


class _FhirError(Exception):
    """A FHIR Bundle that cannot be read as a case (the message names the resource)."""


def _fhir_case(doc: dict, path: Path, options: InputOptions) -> FhirCase:
    from ..fhir.read import FhirInputError, bundle_to_case  # lazy: FHIR models load slowly

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


def _read_one(
    path: Path,
    options: InputOptions,
    read: Callable[[Iterable[ox.Quad]], T],
    fhir_cases: dict[str, FhirCase],
) -> T | InputError:
    """Read one case file with ``read`` (which may find nothing in it), or say why it cannot
    be: it is not UTF-8, is nested too deep, fails to parse (with the line and column the
    parser gives), or is a FHIR Bundle that is not one patient's case. A file with a syntax
    error gives none of its cases: a subject's statements may be anywhere in it, so a case
    read before the error could lack a finding written after it."""
    try:
        with gc_paused():  # many small containers, no cycles: skip the rescans
            return read(_quads(path, options, fhir_cases))
    except _FhirError as exc:
        return InputError(str(path), f"FHIR Bundle not read: {exc}")
    except TextError as exc:
        return InputError(str(path), f"cannot be parsed: {exc}")
    except SyntaxError as exc:
        return InputError(str(path), f"cannot be parsed: {parse_problem(exc, path)}")
    except MemoryError as exc:
        if not _parser_buffer(exc):
            raise
        return InputError(str(path), f"cannot be parsed: {parse_problem(exc, path)}")
    except OSError as exc:
        return InputError(str(path), f"cannot be read: {exc.strerror or exc}")


def _parser_buffer(exc: MemoryError) -> bool:
    """Whether the error is pyoxigraph's parser refusing a term longer than its buffer (an
    error in the input), rather than the process running out of memory."""
    return "maximal size" in str(exc)


def empty_file_warning(path: str) -> InputWarning:
    """The warning for a file that holds no statement at all (empty, only whitespace or
    prefixes, an empty JSON document): like any file with no case, it is not an error."""
    return InputWarning(path, "no patient case in this file: the file holds no statements")


def refused_iris(keys: Iterable[str], path: Path, options: InputOptions) -> dict[str, InputError]:
    """The subjects of a file whose IRIs may not name a case (``case_iri``), each with its
    error; blank nodes are left to the case shapes (a case without an IRI is invalid)."""
    base = options.base_of(path).rsplit("/", 1)[0] + "/"
    found = {}
    for key in keys:
        if not key.startswith("_:") and (problem := case_iri_problem(key, base)):
            found[key] = InputError(str(path), f"{problem}: the case is not read")
    return found


def load(paths: list[Path], options: InputOptions | None = None) -> LoadedInput:
    """Parse every case file into quads (in the default graph), grouped by subject. As in
    ``load_grouped``, a malformed line of an N-Triples file loses only its own case; a case
    IRI in several files is an error for each (the case is left out) or, when the options
    ask, one case."""
    options = options or InputOptions()
    files, errors = find_files(paths)
    fhir_cases: dict[str, FhirCase] = {}
    done: list[tuple[str, CaseBatch]] = []
    empty: list[str] = []
    for path in files:
        lines = nt_lines_by_subject(path) if path.suffix == ".nt" else None
        if lines:
            batch, line_errors = parse_cases(LineBatch.of(lines), dict.fromkeys(lines, str(path)))
            errors += line_errors
            result: CaseBatch | InputError = batch
        else:
            result = _read_one(path, options, _file_batch, fhir_cases)
        if isinstance(result, InputError):
            errors.append(result)
            continue
        if refused := refused_iris(result.quads, path, options):
            errors += refused.values()
            result = CaseBatch(
                {k: v for k, v in result.quads.items() if k not in refused},
                {k: v for k, v in result.facts.items() if k not in refused},
            )
            if not result:
                continue
        if result:
            done.append((str(path), result))
        else:
            empty.append(str(path))
    loaded = LoadedInput(
        errors=errors,
        files=[path for path, _ in done] + empty,
        fhir_cases=fhir_cases,
        notes=list(map(empty_file_warning, empty)),
    )
    appears_in: dict[str, list[str]] = {}
    failed = {e.path for e in errors}
    for n, (path, batch) in enumerate(done):
        clashing = {k for k in batch.quads.keys() & loaded.source_of.keys() if k.startswith("_:")}
        if clashing:  # another file's blank node of the same label is another node
            batch = _file_batch(_relabelled(iter(batch.all_quads()), clashing, n, loaded.source_of))
            done[n] = (path, batch)
        loaded.notes += file_warnings(path, batch.facts, options.terms, failed)
        for key in batch.quads:
            first = loaded.source_of.setdefault(key, path)
            if first != path:
                appears_in.setdefault(key, [first]).append(path)
    duplicates: dict[str, list[str]] = {}
    if appears_in:
        facts: dict[str, list[Fact]] = {}
        for _, batch in done:
            for key in appears_in.keys() & batch.facts.keys():
                facts.setdefault(key, []).extend(batch.facts[key])
        duplicates = duplicate_cases(appears_in, facts, options.terms)
        loaded.errors += identity_errors(duplicates, options.merge_duplicates)
        loaded.notes += identity_warnings(duplicates, options.merge_duplicates)
    left_out = () if options.merge_duplicates else duplicates
    loaded.quads = [
        q for _, batch in done for key, quads in batch.quads.items() if key not in left_out for q in quads
    ]
    return loaded


def _file_batch(quads: Iterable[ox.Quad]) -> CaseBatch:
    """One file's quads, in the default graph, grouped by subject."""
    default = ox.DefaultGraph()
    return CaseBatch.from_quads(
        group_by_subject(
            q if isinstance(q.graph_name, ox.DefaultGraph) else ox.Quad(*q.triple, default) for q in quads
        )
    )


def _relabelled(
    quads: Iterable[ox.Quad], labels: set[str], n: int, taken: dict[str, str]
) -> Iterator[ox.Quad]:
    """The quads of the ``n``-th file with each blank node whose label (``_:x``) is in
    ``labels`` renamed (``_:x-n``, or longer while that is ``taken``), so that it is not
    the node of that label in an earlier file."""
    renamed: dict[str, ox.BlankNode] = {}
    for label in labels:
        new = f"{label}-{n}"
        while new in taken:
            new += f"-{n}"
        renamed[label] = ox.BlankNode(new.removeprefix("_:"))

    def node(term):
        return renamed.get(str(term), term) if isinstance(term, ox.BlankNode) else term

    for q in quads:
        yield ox.Quad(node(q.subject), q.predicate, node(q.object), q.graph_name)


def no_case_warning(path: str, terms: CaseTerms) -> InputWarning:
    return InputWarning(
        path,
        "no patient case in this file: nothing in it is typed as a patient case or records a case "
        f"field, so nothing in it is assessed (check the type and the namespace <{terms.namespace}>)",
    )


def file_warnings(
    path: str, facts: dict[str, list[Fact]], terms: CaseTerms | None, failed: set[str]
) -> list[InputWarning]:
    """The warnings about one file's subjects: undefined project terms, and no case at all
    (unless the file is among the ``failed``, whose errors say why)."""
    if terms is None:
        return []
    found = terms.warnings(facts, lambda _: path)
    if path not in failed and not any(terms.is_case(subject_facts) for subject_facts in facts.values()):
        found.append(no_case_warning(path, terms))
    return found


def duplicate_cases(
    appears_in: dict[str, list[str]], facts: dict[str, list[Fact]], terms: CaseTerms | None
) -> dict[str, list[str]]:
    """Of the IRIs that are subjects in several files (with those files), the cases: those
    whose facts, from all the files, make them one (every one, without the terms)."""
    return {
        key: files
        for key, files in appears_in.items()
        if not key.startswith("_:") and (terms is None or terms.is_case(facts.get(key, [])))
    }


def identity_errors(duplicates: dict[str, list[str]], merge: bool) -> list[InputError]:
    """An error for each file a case of several files is in, naming the case and the
    files, unless they are merged."""
    if merge:
        return []
    return [
        InputError(
            path,
            f"case {case} is also in {', '.join(f for f in files if f != path)}: a case IRI names one "
            "patient, so the case is not assessed (give each patient its own IRI, or pass "
            "--merge-duplicates if the files describe the same patient)",
        )
        for case, files in duplicates.items()
        for path in files
    ]


def identity_warnings(duplicates: dict[str, list[str]], merge: bool) -> list[InputWarning]:
    """When cases of several files are merged, the warning each one's result carries."""
    if not merge:
        return []
    return [
        InputWarning(
            files[0],
            f"merged with the same case IRI in {', '.join(files[1:])}, as --merge-duplicates asks: "
            f"the facts of {len(files)} files are assessed as one case",
            (case,),
            attached=True,
        )
        for case, files in duplicates.items()
    ]


def _nt_blocks(path: Path, size: int = 1 << 23) -> Iterator[list[str]]:
    """An N-Triples file as blocks of whole lines, so that lines are cut by ``str.split``
    rather than one by one (a block ends at a newline byte, which is never inside a UTF-8
    sequence). CR LF and CR end lines too, as N-Triples says."""
    rest = b""
    with open(path, "rb") as f:
        if f.read(len(BOM)) != BOM:
            f.seek(0)
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

    def __len__(self) -> int:
        """The number of subjects (so a batch of none is false)."""
        return len(self.quads)


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
    except (SyntaxError, MemoryError) as exc:
        if isinstance(exc, MemoryError) and not _parser_buffer(exc):
            raise
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
        except (SyntaxError, MemoryError) as exc:
            if isinstance(exc, MemoryError) and not _parser_buffer(exc):
                raise
            errors.append(InputError(source_of.get(key, "?"), _line_error(key, group, exc)))
    return CaseBatch.from_quads(found), errors


def _line_error(key: str, group: list[str], exc: SyntaxError | MemoryError) -> str:
    """The error for a case one of whose N-Triples lines cannot be parsed, quoting the line
    (cut short when long): the lines of a case were gathered from anywhere in the file, so
    the parser's line number is not the file's."""
    lineno = getattr(exc, "lineno", None)
    line = group[lineno - 1].strip() if lineno and lineno <= len(group) else ""
    if len(line) > 200:
        line = f"{line[:200]}… ({len(line):,} characters)"
    problem = parse_problem(exc)
    quoted = f"the N-Triples line {line!r}" if line else "an N-Triples line"
    at = f" at column {problem.column}" if line and problem.column else ""
    return f"case {key}: {quoted} cannot be parsed{at} ({problem.problem}); the case is skipped"


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
class GroupedInput(_Input):
    """Input for batch processing: each subject's triples as N-Triples lines, in input
    order (lines take a fraction of the memory of parsed quad objects), and the files some
    case of which is in another file too (its result names only the first)."""

    lines: dict[str, list[str]] = field(default_factory=dict)
    shared_files: set[str] = field(default_factory=set)


def _lines_by_subject(quads: Iterable[ox.Quad]) -> dict[str, list[str]]:
    if isinstance(quads, _BundleQuads):
        return {quads.case.case_iri: quads.case.ntriples.splitlines()}
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


FileReading = tuple[dict[str, list[str]] | InputError, dict[str, "FhirCase"]]
"""One file read by ``read_file``: its subjects' lines (or why it cannot be read), and the
FHIR Bundle it held, read as a case."""


def read_file(path: Path, options: InputOptions) -> FileReading:
    """One file's subjects as N-Triples lines, as ``load_grouped`` reads a file that is
    not N-Triples; in a worker process when ``load_grouped`` is given a pool."""
    fhir_cases: dict[str, FhirCase] = {}
    lines = _read_one(path, options, _lines_by_subject, fhir_cases)
    # A bundle's triples travel as its case's lines: the case's own copy stays here (it was
    # half of what a worker sent back).
    return lines, {iri: replace(case, ntriples=None) for iri, case in fhir_cases.items()}


def load_grouped(
    paths: list[Path],
    options: InputOptions | None = None,
    read_many: Callable[[list[Path]], Iterator[FileReading]] | None = None,
) -> GroupedInput:
    """Like ``load``, but keeping each subject's triples as N-Triples lines. N-Triples
    files are only split into lines here (they are parsed case by case later, in the
    worker processes: see ``parse_cases``); other formats are parsed whole, and a
    malformed file of those is skipped. Only the subjects found in several files are
    parsed here, to tell whether they are cases; which files hold no case, and which
    terms the ontology does not define, is found where the cases are parsed
    (``file_warnings`` in ``load``, ``CaseTerms.warnings`` in ``stream``). ``read_many``
    reads the JSON files (FHIR Bundles, JSON-LD) as ``read_file`` does, in order: in
    worker processes, where each bundle's validation and mapping run in parallel."""
    options = options or InputOptions()
    files, errors = find_files(paths)
    grouped = GroupedInput(errors=errors)
    appears_in: dict[str, list[str]] = {}
    json_files = [f for f in files if f.suffix == ".json"] if read_many else []
    read_ahead = read_many(json_files) if read_many and json_files else iter(())
    for n, path in enumerate(files):
        with gc_paused():
            by_subject = nt_lines_by_subject(path) if path.suffix == ".nt" else None
        if by_subject is None and json_files and path.suffix == ".json":
            by_subject, fhir_cases = next(read_ahead)
            for iri, case in fhir_cases.items():
                if iri in grouped.fhir_cases:  # the same case in another bundle: keep its warnings
                    case.warnings[:0] = grouped.fhir_cases[iri].warnings
                grouped.fhir_cases[iri] = case
        elif by_subject is None:
            by_subject = _read_one(path, options, _lines_by_subject, grouped.fhir_cases)
        if not isinstance(by_subject, InputError) and grouped.lines:
            clashing = {k for k in by_subject.keys() & grouped.source_of.keys() if k.startswith("_:")}
            if clashing:  # another file's blank node of the same label is another node
                by_subject = _read_one(
                    path,
                    options,
                    lambda quads, clashing=clashing, n=n: _lines_by_subject(
                        _relabelled(quads, clashing, n, grouped.source_of)
                    ),
                    {},  # a FHIR Bundle's case is kept from the first reading
                )
        if isinstance(by_subject, InputError):
            grouped.errors.append(by_subject)
            continue
        if not by_subject:
            grouped.notes.append(empty_file_warning(str(path)))
            continue
        if refused := refused_iris(by_subject, path, options):
            grouped.errors += refused.values()
            by_subject = {k: v for k, v in by_subject.items() if k not in refused}
            if not by_subject:
                continue
        grouped.files.append(str(path))
        if not grouped.lines:  # the first file (often the only one): take its groups
            grouped.lines, grouped.source_of = by_subject, dict.fromkeys(by_subject, str(path))
            continue
        if common := by_subject.keys() & grouped.source_of.keys():
            for key in filter(common.__contains__, by_subject):  # in input order
                appears_in.setdefault(key, [grouped.source_of[key]]).append(str(path))
        for key, lines in by_subject.items():
            grouped.source_of.setdefault(key, str(path))
            grouped.lines.setdefault(key, []).extend(lines)
    if appears_in:
        candidates = {k: grouped.lines[k] for k in appears_in if not k.startswith("_:")}
        facts = parse_cases(LineBatch.of(candidates), {})[0].facts
        duplicates = duplicate_cases(appears_in, facts, options.terms)
        grouped.errors += identity_errors(duplicates, options.merge_duplicates)
        grouped.notes += identity_warnings(duplicates, options.merge_duplicates)
        grouped.shared_files = {f for shared in duplicates.values() for f in shared}
        if not options.merge_duplicates:
            for case in duplicates:
                del grouped.lines[case]
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


RDFLIB_TERMS = logging.getLogger("rdflib.term")


class _IllTypedLiterals(logging.Filter):
    """Drops rdflib's "Failed to convert Literal lexical form to value" records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to convert Literal lexical form to value")


@contextmanager
def _literals_as_written():
    """rdflib normally rewrites literals to canonical form, which turns an ill-typed
    ``"maybe"^^xsd:boolean`` into ``"false"``; the reference path must see them as written.
    An ill-typed literal is the case shapes' to report: rdflib's log of it (a traceback, for
    an integer longer than Python reads) is dropped meanwhile."""
    saved = rdflib.NORMALIZE_LITERALS
    rdflib.NORMALIZE_LITERALS = False
    quiet = _IllTypedLiterals()
    RDFLIB_TERMS.addFilter(quiet)
    try:
        yield
    finally:
        RDFLIB_TERMS.removeFilter(quiet)
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
