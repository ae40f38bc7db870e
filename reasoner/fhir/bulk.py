"""Read a FHIR Bulk Data export (``$export``) as one patient's records at a time.

An export is a folder of NDJSON files, one resource per line, usually one file or several
per resource type (``Patient.ndjson``, ``Condition.001.ndjson``, ``Observation.ndjson.gz``).
A resource's type is read from its own ``resourceType``, so file names do not matter.
Each resource is linked to its patient by its ``subject`` or ``patient`` reference
(``Patient/123``, relative as Bulk Data writes them); a ``Patient`` by its ``id``. A
``Medication`` belongs to no patient: a ``MedicationStatement`` refers to it, so
Medications are kept by id and given to each patient whose statements refer to them.

Grouping by patient is an external merge sort, so memory is bounded whatever the size of
the export: resource lines are collected, with their patient id, file and line number,
until they take ``memory`` bytes (64 MiB by default), then sorted and written to a
temporary run file; the runs are merged (``heapq.merge``) and cut where the patient id
changes. At most ``memory`` bytes of lines, one block of each run (``SPILL_BLOCK``), one
patient's resources and the export's Medications are held at once; an export that fits in
``memory`` is sorted in memory with no file written. Given a worker pool, the linking
itself runs in the workers: each plain file cut into spans of whole lines (``SPAN``), at
most ``IN_FLIGHT`` of them given out and not yet taken back, taken back in file and line
order (``link_span``).
Patients come out in the order of their ids (as strings), each patient's resources in file
and line order.

Every line that cannot be linked is an error naming its file and line, and only that
resource is left out: a line that is not a JSON object with a ``resourceType``, a resource
of a type the FHIR input reads without a reference to a patient, a reference to a patient
the export does not hold (that patient's other resources are not assessed either: its
record would be incomplete). Resources of types the input does not read are counted in one
warning per file.
"""

from __future__ import annotations

import gzip
import heapq
import json
import pickle
import re
import tempfile
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import IO, NamedTuple

import orjson

from ..pipeline.input_text import long_digits
from .validation import READ_TYPES, brief

SUFFIXES = (".ndjson", ".ndjson.gz")
MEMORY = 64 << 20
"""Bytes of resource lines held before they are sorted and written to a run file."""
PER_LINE = 120
"""Bytes a line costs in memory beyond its text (the tuple, the id, the numbers)."""
PATIENT_REFERENCE = re.compile(r"^Patient/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
SHARED_TYPES = ("Medication",)
"""Types read through a reference from a patient's resource, never linked to one patient."""
PATIENT_ELEMENTS = ("subject", "patient")
LINKED_TYPES = frozenset(READ_TYPES)
SPAN = 4 << 20
"""Bytes of a file a worker links at once, when the first pass runs in a pool."""
IN_FLIGHT = 4
"""Spans given to the pool and not yet taken, at most: with ``SPAN``, 16 MiB of lines
(and their records) beside the sort's ``memory``."""


class Line(NamedTuple):
    """One resource of the export: where it is (file, 1-based line) and its JSON text. A
    tuple: the parent makes one per resource as it forms its patient's batch, a tuple in
    half the time of a frozen dataclass."""

    file: str
    number: int
    text: bytes

    @property
    def where(self) -> str:
        return f"{self.file}:{self.number}"


@dataclass
class PatientRecords:
    """One patient's resources, with the Medications its statements refer to."""

    patient: str
    lines: list[Line]

    def bundle(self) -> tuple[dict, list[str]]:
        """The records as a FHIR ``collection`` Bundle, with each entry's file and line."""
        return (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": resource_json(line.text)} for line in self.lines],
            },
            [line.where for line in self.lines],
        )


def resource_json(text: bytes) -> object:
    """One line's resource, its numbers read as a bundle file's are (``json_text``): by
    orjson, except a line with nineteen digits in a row (``long_digits``), which Python's
    parser reads, since orjson turns an integer past 64 bits into a float. The line parsed
    already when it was linked to its patient."""
    if not long_digits(text):
        return orjson.loads(text)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # what orjson accepted, it reads as it did
        return orjson.loads(text)


@dataclass
class BulkProblem:
    """A line that cannot be linked to a patient (``error``), or lines of a file that are
    not read (a warning)."""

    file: str
    message: str
    error: bool = True


def is_export(path: Path) -> bool:
    """Whether ``path`` is a folder holding NDJSON files (a Bulk Data export)."""
    return path.is_dir() and any(export_files(path))


def export_files(folder: Path) -> list[Path]:
    """The NDJSON files of an export folder (not its subfolders), in name order."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


class BulkExport:
    """An export's patients, one at a time. Entering sorts the lines by patient (the first
    pass: ``problems`` then holds every line that could not be linked, ``patient_lines``
    the number of Patient resources); ``patients`` merges the sorted runs (and adds the
    resources of patients the export does not hold to ``problems``). Leaving removes the
    run files."""

    def __init__(
        self, files: list[Path], memory: int = MEMORY, pool: Executor | None = None, span: int = SPAN
    ):
        """With a ``pool``, plain (not gzip) files are linked in its worker processes, in
        spans of about ``span`` bytes (``link_span``), at most ``IN_FLIGHT`` at once, and
        taken in file and line order: the same records, problems and Medications as here."""
        self.files = files
        self.memory = memory
        self.pool = pool
        self.span = span
        self.problems: list[BulkProblem] = []
        self.medications: dict[str, Line] = {}
        self.patient_lines = 0
        self._spill: tempfile.TemporaryDirectory | None = None
        self._runs: list[Iterable[tuple]] = []
        self.names = [path.as_posix() for path in files]
        self._unread: dict[int, Counter] = {}
        self._failed: set[int] = set()

    def __enter__(self) -> BulkExport:
        self._spill = tempfile.TemporaryDirectory(prefix="lbp-bulk-")
        self._runs = self._sorted_runs(Path(self._spill.name))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._spill is not None:
            self._spill.cleanup()

    def patients(self) -> Iterator[PatientRecords]:
        merged = heapq.merge(*self._runs) if len(self._runs) != 1 else iter(self._runs[0])
        for patient, group in groupby(merged, key=lambda record: record[0]):
            records = list(group)
            if records[0][1] != 0:  # a patient's Patient resource sorts first (rank 0)
                self.unknown_patient(patient, records)
                continue
            names = self.names
            lines = [Line(names[f], n, text) for _, _, f, n, text in records]
            yield PatientRecords(patient, lines + self.medications_of(lines))

    # -- pass 1: link each line to its patient, sorted runs of bounded size ------------------
    def _sorted_runs(self, spill: Path) -> list[Iterable[tuple]]:
        runs: list[Iterable[tuple]] = []
        buffer: list[tuple] = []
        held = 0
        for record in self._records():
            buffer.append(record)
            held += len(record[4]) + len(record[0]) + PER_LINE
            if held >= self.memory:
                runs.append(_spill(sorted(buffer), spill / f"run-{len(runs)}"))
                buffer, held = [], 0
        buffer.sort()
        if runs and buffer:
            runs.append(_spill(buffer, spill / f"run-{len(runs)}"))
        elif buffer or not runs:
            runs.append(buffer)
        return runs

    def _records(self) -> Iterator[tuple]:
        """Every linked line, file by file in line order (``file_records``): a plain file's
        spans linked in the pool when there is one, taken back in order, at most
        ``IN_FLIGHT`` given out and not yet taken back; a gzip file (it cannot be read from
        the middle), and every file without a pool, linked here."""
        pending: deque[tuple[int, Future | None, bool, BulkProblem | None]] = deque()
        for index, path in enumerate(self.files):
            if self.pool is None or path.name.endswith(".gz"):
                while pending:
                    yield from self._linked(*pending.popleft())
                yield from self.file_records(index, path)
                continue
            spans, problem = _spans(path, self.span)
            if not spans:
                pending.append((index, None, True, problem))
            for k, (start, end, first) in enumerate(spans):
                future = self.pool.submit(link_span, index, self.names[index], start, end, first)
                last = k == len(spans) - 1
                pending.append((index, future, last, problem if last else None))
                if len(pending) >= IN_FLIGHT:
                    yield from self._linked(*pending.popleft())
        while pending:
            yield from self._linked(*pending.popleft())

    def _linked(
        self, index: int, future: Future | None, last: bool, problem: BulkProblem | None
    ) -> Iterator[tuple]:
        """One span's records, its problems and Medications taken in (none after a span of
        the same file that could not be read, as ``file_records`` stops there); after a
        file's last span, the problem of reading it, if any, and its unread types."""
        if future is not None and index not in self._failed:
            span: LinkedSpan = future.result()
            self.problems += span.problems
            self.medications.update(span.medications)
            self.patient_lines += span.patient_lines
            self._unread.setdefault(index, Counter()).update(span.unread)
            if span.failed:
                self._failed.add(index)
            yield from span.records
        elif future is not None:
            future.result()  # read and dropped: the file failed before this span
        if last:
            if problem is not None and index not in self._failed:
                self.problems.append(problem)
            if unread := self._unread.pop(index, None):
                self.problems.append(_unread_types(self.names[index], unread))

    def file_records(self, index: int, path: Path) -> Iterator[tuple]:
        """(patient id, rank, file index, line number, text) of each linked line: the
        rank (0 for a Patient, else 1) puts the Patient first among its patient's lines."""
        unread: Counter = Counter()
        name = path.as_posix()
        try:
            with _open(path) as f:
                yield from self.line_records(index, name, enumerate(f, start=1), unread)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            self.problems.append(_unreadable(name, exc))
        if unread:
            self.problems.append(_unread_types(name, unread))

    def line_records(
        self, index: int, name: str, lines: Iterable[tuple[int, bytes]], unread: Counter
    ) -> Iterator[tuple]:
        """``file_records`` of numbered lines (each with or without its line break)."""
        for number, raw in lines:
            text = raw.rstrip(b"\r\n")
            if not text or text.isspace():
                continue
            linked = self._link(name, number, text, unread)
            if linked is not None:
                patient, kind = linked
                self.patient_lines += kind == "Patient"
                yield (patient, 0 if kind == "Patient" else 1, index, number, text)

    def _link(self, name: str, number: int, text: bytes, unread: Counter) -> tuple[str, str] | None:
        """The patient id and type of one line, or None (an error recorded, or a line kept
        aside: a Medication, a type that is not read)."""
        try:
            resource = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return self._error(name, number, f"not JSON ({exc})")
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(kind, str):
            return self._error(name, number, "not a FHIR resource (a JSON object with a resourceType)")
        rid = resource.get("id")
        if kind == "Patient":
            if not (isinstance(rid, str) and FHIR_ID.match(rid)):
                return self._error(name, number, f"Patient id {brief(rid)} cannot be referred to")
            return rid, kind
        if kind in SHARED_TYPES:
            if isinstance(rid, str) and FHIR_ID.match(rid):
                self.medications[rid] = Line(name, number, text)
            else:
                self._error(name, number, f"{kind} id {brief(rid)} cannot be referred to")
            return None
        if kind not in LINKED_TYPES:
            unread[kind] += 1
            return None
        reference = None
        for element in PATIENT_ELEMENTS:
            if element in resource:
                reference = resource[element]
                break
        text_ref = reference.get("reference") if isinstance(reference, dict) else None
        match = PATIENT_REFERENCE.match(text_ref) if isinstance(text_ref, str) else None
        if match is None:
            what = f"{kind}/{rid}" if isinstance(rid, str) else kind
            found = f"reference {brief(text_ref)}" if text_ref is not None else "no reference"
            return self._error(
                name,
                number,
                f"{what}: {found} to its patient (a subject or patient reference Patient/id)",
            )
        return match["id"], kind

    def _error(self, name: str, number: int, message: str) -> None:
        self.problems.append(BulkProblem(name, f"line {number}: {message}"))
        return None

    # -- pass 2 --------------------------------------------------------------------------
    def unknown_patient(self, patient: str, records: list[tuple]) -> None:
        """An error for each line of a patient the export holds no Patient resource for
        (``records`` as ``file_records`` gives them)."""
        for _, _, f, number, text in records:
            kind = orjson.loads(text).get("resourceType")
            self.problems.append(
                BulkProblem(
                    self.files[f].as_posix(),
                    f"line {number}: {kind} refers to Patient/{patient}, which is not in the export: "
                    "that patient is not assessed",
                )
            )

    def medications_of(self, lines: list[Line]) -> list[Line]:
        """The Medications the patient's resources refer to (``Medication/id``)."""
        found: dict[str, Line] = {}
        for line in lines:
            if b'"Medication/' not in line.text:
                continue
            for rid in re.findall(rb'"reference"\s*:\s*"Medication/([A-Za-z0-9\-.]{1,64})"', line.text):
                medication = self.medications.get(rid.decode())
                if medication is not None:
                    found.setdefault(rid.decode(), medication)
        return list(found.values())


@dataclass
class LinkedSpan:
    """What linking a span of a file found (``link_span``): the records, the problems and
    Medications in the order found, the types not read, the Patient lines; ``failed`` when
    the span could not be read (its problem says why)."""

    records: list[tuple]
    problems: list[BulkProblem]
    medications: dict[str, Line]
    unread: Counter
    patient_lines: int
    failed: bool = False


def link_span(index: int, name: str, start: int, end: int, first: int) -> LinkedSpan:
    """Bytes ``start`` to ``end`` of the export's ``index``-th file, whole lines numbered
    from ``first``, linked as ``BulkExport.file_records`` links a file: in a worker
    process, the first pass spread over the pool."""
    linker = BulkExport([])
    unread: Counter = Counter()
    try:
        with open(name, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
    except OSError as exc:
        return LinkedSpan([], [_unreadable(name, exc)], {}, unread, 0, failed=True)
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()  # a file's lines end with their break; the last may not
    records = list(linker.line_records(index, name, enumerate(lines, start=first), unread))
    return LinkedSpan(records, linker.problems, linker.medications, unread, linker.patient_lines)


def _spans(path: Path, size: int) -> tuple[list[tuple[int, int, int]], BulkProblem | None]:
    """A plain file cut into spans of whole lines of about ``size`` bytes: (start, end,
    first line number) each, and the problem of reading it, if any (the spans read before
    it stand, as the lines ``file_records`` read before a failure do)."""
    spans: list[tuple[int, int, int]] = []
    start, first = 0, 1
    try:
        with path.open("rb") as f:
            while block := f.read(size):
                cut = block.rfind(b"\n") + 1
                while not cut:  # a line longer than the span: the span runs to its end
                    more = f.read(size)
                    if not more:
                        cut = len(block)
                        break
                    found = more.find(b"\n")
                    if found >= 0:
                        cut = len(block) + found + 1
                    block += more
                spans.append((start, start + cut, first))
                first += block.count(b"\n", 0, cut)
                start += cut
                f.seek(start)
    except OSError as exc:
        return spans, _unreadable(path.as_posix(), exc)
    return spans, None


def _unreadable(name: str, exc: BaseException) -> BulkProblem:
    return BulkProblem(name, f"cannot be read: {getattr(exc, 'strerror', None) or exc}")


def _unread_types(name: str, unread: Counter) -> BulkProblem:
    kinds = ", ".join(f"{kind} ({n})" for kind, n in sorted(unread.items()))
    return BulkProblem(name, f"resources of types the FHIR input does not read, not used: {kinds}", False)


def _spill(records: list[tuple], path: Path) -> Iterator[tuple]:
    """Write sorted records to ``path`` and read them back lazily, in the same order: as
    pickled blocks of about ``SPILL_BLOCK`` bytes of lines, which pickle writes and reads in
    C (a line of text per record, split and converted back in Python, took most of the
    sort's time)."""
    with path.open("wb") as f:
        start, held = 0, 0
        for end, record in enumerate(records, start=1):
            held += len(record[4]) + PER_LINE
            if held >= SPILL_BLOCK or end == len(records):
                pickle.dump(records[start:end], f, protocol=pickle.HIGHEST_PROTOCOL)
                start, held = end, 0
    records.clear()
    return _read_run(path)


SPILL_BLOCK = 1 << 20
"""Bytes of lines a run file is written and read in at a time: the merge holds one block of
every run beside the sort's ``memory``."""


def _read_run(path: Path) -> Iterator[tuple]:
    with path.open("rb") as f:
        while True:
            try:
                block = pickle.load(f)  # a file this process wrote itself
            except EOFError:
                return
            yield from block
