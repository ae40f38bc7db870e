"""The one assessment pipeline: read, validate, classify, select, explain, render, batch by
batch, into a sink (``reasoner.pipeline.sinks``: one per output format, and one that collects the
results in memory for ``Assessor.assess_loaded``).

The parent reads the input and cuts it into batches of whole cases (an N-Triples file is
only split into lines, not parsed, so that reading costs the parent little; JSON files,
FHIR Bundles above all, are read in the workers when there are some, ``pool_reader``; a
FHIR Bulk Data export is only sorted by patient, each batch of patients' NDJSON lines read
where it is assessed, ``assess_bulk``). Each batch
is parsed, assessed and rendered by the sink's per-batch renderer, in a worker process
that has the compiled knowledge base where there is more than one batch and more than
one worker, else here; the parent hands the rendered batches to the sink in input order.
Only rendered output crosses process boundaries. The sink writes its header before the
first batch and its footer, from what the parent accumulated over the run (counts,
criteria and statements cited, input errors and warnings), after the last.

Memory is bounded by the batches in flight, not by the input's size: at most
``2 x workers`` batches are submitted and not yet written (``in_flight``), each of
``Assessor.batch_size`` cases (500 with the fast engine) and each worker assesses one
batch at a time, so the results and rendered output held at once are about
``batch_size x 3 x workers`` cases' worth, whatever N is: with two workers about
3,000 cases, for JSON (about 18 KB per case) some 50 MiB, for FHIR (60-80 KB of indented
JSON per case) some 200 MiB. A sink keeps no case once written: its footer needs only the
run-level state, whose size depends on the knowledge base (the criteria and statements it
can cite) and on the input errors and warnings, not on the number of cases. What does
grow with the input is the input itself, held as N-Triples lines (2.3 KB of text per
generated case) until its batch is sent: the pipeline releases each batch's lines, and
the FHIR Bundles its cases were read from, as it sends it. Measured figures: the README's
Performance section.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..fhir.bulk import BulkExport, BulkProblem, PatientRecords
from ..knowledge import KnowledgeBase
from .assess import AssessmentRun, Assessor, with_input_warnings
from .bulk_input import export_problems, patient_batches, read_patients
from .cases import (
    CaseBatch,
    FileReading,
    GroupedInput,
    InputError,
    InputOptions,
    InputWarning,
    LineBatch,
    LoadedInput,
    gc_paused,
    merge_warnings,
    no_case_warning,
    parse_cases,
    read_file,
    term_key,
    with_notes,
)
from .explain import CaseResult, cited_by
from .malloc import keep_freed_memory
from .sinks import CollectSink, Renderer, Sink, for_format

if TYPE_CHECKING:
    from ..fhir.read import FhirCase


@dataclass
class BatchOutput:
    """One rendered batch and what the run needs to know about it."""

    data: object
    cases: int = 0
    invalid: int = 0
    cited: list[str] = field(default_factory=list)
    criteria: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    input_errors: list[InputError] = field(default_factory=list)
    notes: list[InputWarning] = field(default_factory=list)
    case_files: list[str] = field(default_factory=list)
    warned: int = 0
    """Patients of a Bulk Data export whose FHIR data gave warnings (their results
    carry them)."""


@dataclass
class Payload:
    """One batch of whole cases for a worker: N-Triples ``lines`` to parse there (the
    streamed input), or a ``batch`` already parsed (input read into memory, whose terms
    were checked when it was read); with their source files, the warnings their input
    gave, and the FHIR Bundles they were read from (for FHIR output: the Patients)."""

    source_of: dict[str, str | None]
    warnings: dict[str, list[str]]
    inputs: dict[str, FhirCase]
    lines: LineBatch | None = None
    batch: CaseBatch | None = None
    patients: list[PatientRecords] | None = None
    """A Bulk Data export's patients, as NDJSON lines: read as cases where the batch is
    assessed (``bulk_input.read_patients``), which fills the fields above."""


def _assess(
    assessor: Assessor, payload: Payload
) -> tuple[list[CaseResult], list[InputError], list[InputWarning]]:
    """One batch's results, the input errors its lines gave, and its terms the ontology
    does not define (checked here, where its lines are parsed: the parent only splits
    them)."""
    read_errors: list[InputError] = []
    if payload.patients is not None:
        read = read_patients(payload.patients, assessor.inputs)
        payload.lines, payload.source_of, payload.inputs = read.lines, dict(read.source_of), read.fhir_cases
        payload.warnings, read_errors = read.warnings(), read.errors
    if payload.batch is not None:
        batch, input_errors, notes = payload.batch, [], []
    else:
        assert payload.lines is not None
        batch, input_errors = parse_cases(payload.lines, payload.source_of)
        input_errors = read_errors + input_errors
        terms = assessor.inputs.terms
        notes = terms.warnings(batch.facts, payload.source_of.get) if terms else []
    results = with_input_warnings(
        assessor._assess_batch(batch, payload.source_of), with_notes(payload.warnings, notes)
    )
    return results, input_errors, notes


def _render(assessor: Assessor, payload: Payload, renderer: Renderer) -> BatchOutput:
    """One batch assessed and rendered; with the files its cases came from, so that the
    parent can tell which files held none."""
    # Assessing and rendering a batch allocate many small, acyclic objects: the cyclic
    # garbage collector would rescan them over and over, so it waits until the batch is
    # rendered.
    with gc_paused():
        results, input_errors, notes = _assess(assessor, payload)
        data = renderer(assessor, results, payload.inputs)
    out = BatchOutput(
        data,
        cases=len(results),
        input_errors=input_errors,
        notes=notes,
        case_files=sorted({r.source for r in results if r.source}),
        warned=len(payload.warnings) if payload.patients is not None else 0,
    )
    for r in results:
        if r.status != "assessed":
            out.invalid += 1
            out.messages += r.error_lines()
    out.cited, out.criteria = cited_by(results)
    return out


_WORKER: Assessor | None = None


def _init_worker(kb_root: str, engine: str, batch_size: int, fhir: bool) -> None:
    global _WORKER
    keep_freed_memory()
    if _WORKER is None:  # a spawned worker compiles the knowledge base; a forked one has it
        _WORKER = Assessor(KnowledgeBase.load(Path(kb_root)), engine, batch_size)
    if fhir and _WORKER.inputs.fhir is not None:
        from ..fhir.read import warm_up  # lazy: FHIR's models only for FHIR input

        warm_up(_WORKER.inputs.fhir)


def _work(payload: Payload, renderer: Renderer) -> BatchOutput:
    assert _WORKER is not None
    return _render(_WORKER, payload, renderer)


def _ready() -> bool:
    return _WORKER is not None


@contextmanager
def worker_pool(assessor: Assessor, workers: int, fhir: bool = False) -> Iterator[ProcessPoolExecutor]:
    """Worker processes that have the compiled knowledge base: forked from this process
    where the platform can fork (they share its memory, copy on write), otherwise spawned
    and compiling it as soon as they start, while the main process reads the input. With
    ``fhir`` (the input holds FHIR), each also loads what reading its first bundle would
    (``fhir.read.warm_up``) while the main process lists or sorts the input."""
    global _WORKER
    keep_freed_memory()  # here too: what the workers send back comes in blocks of many KiB
    forking = "fork" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if forking else "spawn")
    _WORKER = assessor if forking else None
    if forking:
        assessor.selector.prepare()  # once here rather than once per worker
    try:
        with ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(str(assessor.kb.root), assessor.engine, assessor.batch_size, fhir),
        ) as pool:
            for _ in range(workers):
                pool.submit(_ready)  # starts the workers now (a fork copies _WORKER)
            _WORKER = None
            yield pool
    finally:
        _WORKER = None


def _read_files(paths: list[Path], as_of: dt.date, bases: dict[str, str]) -> list[FileReading]:
    assert _WORKER is not None
    options = replace(_WORKER.inputs, as_of=as_of, bases=bases)
    return [read_file(path, options) for path in paths]


def pool_reader(
    pool: ProcessPoolExecutor, options: InputOptions, chunk: int = 32
) -> Callable[[list[Path]], Iterator[FileReading]]:
    """``load_grouped``'s ``read_many``: files read in the pool's workers (a FHIR Bundle's
    validation and mapping cost a few milliseconds), ``chunk`` files a task, in order."""

    def read_many(paths: list[Path]) -> Iterator[FileReading]:
        chunks = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
        n = len(chunks)
        for found in pool.map(_read_files, chunks, [options.as_of] * n, [options.bases] * n):
            yield from found

    return read_many


def worth_workers(paths: list[Path], workers: int, threshold: int = 1_000_000) -> bool:
    """Whether the input is large enough (in bytes) to pay for starting worker processes."""
    if workers <= 1:
        return False
    size = 0
    for path in paths:
        for f in path.rglob("*") if path.is_dir() else [path]:
            if f.is_file():
                size += f.stat().st_size
                if size >= threshold:  # a folder of many files: no need to stat them all
                    return True
    return False


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def in_flight(workers: int) -> int:
    """Batches submitted to the workers and not yet written, at most: enough to keep every
    worker busy, few enough that memory stays bounded."""
    return 2 * max(workers, 1)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class StreamSummary:
    """What the parent accumulates over a run, for the sink's footer and the command line:
    counts, the input errors and warnings, the criteria and statements the results cite
    (by IRI, with their run-level entries once the run is done), the messages that make
    the run fail, and the warnings found while assessing (those reading found are reported
    before)."""

    engine: str = ""
    started: str = ""
    ended: str = ""
    cases: int = 0
    invalid: int = 0
    input_errors: list[InputError] = field(default_factory=list)
    input_warnings: list[InputWarning] = field(default_factory=list)
    cited: dict[str, None] = field(default_factory=dict)
    cited_criteria: dict[str, None] = field(default_factory=dict)
    statements: dict[str, dict] = field(default_factory=dict)
    criteria: dict[str, dict] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    warned: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.invalid or self.messages or not self.cases else 0

    def counts(self) -> dict[str, int]:
        """The JSON output's ``summary``."""
        return {
            "cases": self.cases,
            "assessed": self.cases - self.invalid,
            "invalid": self.invalid,
            "inputErrors": len(self.input_errors),
        }

    def add(self, batch: BatchOutput) -> None:
        self.cases += batch.cases
        self.invalid += batch.invalid
        self.warned += batch.warned
        self.messages += [str(e) for e in batch.input_errors] + batch.messages
        self.input_errors += batch.input_errors
        self.cited.update(dict.fromkeys(batch.cited))
        self.cited_criteria.update(dict.fromkeys(batch.criteria))

    def finish(self, assessor: Assessor) -> None:
        """The run-level entries of what the results cite, and the end time."""
        self.statements = {iri: assessor.vocab.statement(iri) for iri in self.cited}
        self.criteria = {iri: assessor.vocab.class_entry(iri) for iri in sorted(self.cited_criteria)}
        self.ended = _now()


def _grouped_payloads(grouped: GroupedInput, size: int) -> Iterator[Payload]:
    """Batches of whole cases as N-Triples lines, releasing each subject's lines (and the
    FHIR Bundle it was read from) once sent, with their source files and the warnings
    their input gave."""
    keys = list(grouped.lines)
    warnings = grouped.case_warnings()
    for i in range(0, len(keys), size):
        chunk = keys[i : i + size]
        yield Payload(
            {k: grouped.source_of.get(k) for k in chunk},
            {k: warnings[k] for k in chunk if k in warnings},
            {k: grouped.fhir_cases.pop(k) for k in chunk if k in grouped.fhir_cases},
            lines=LineBatch.of({k: grouped.lines.pop(k) for k in chunk}),
        )


def _loaded_payloads(loaded: LoadedInput, size: int) -> Iterator[Payload]:
    """Batches of subjects with their quads, parsed already (a case's triples stay in one
    batch)."""
    by_subject: dict[str, list] = {}
    for quad in loaded.quads:
        by_subject.setdefault(term_key(quad.subject), []).append(quad)
    warnings = loaded.case_warnings()
    keys = list(by_subject)
    for i in range(0, len(keys), size):
        chunk = keys[i : i + size]
        yield Payload(
            {k: loaded.source_of.get(k) for k in chunk},
            {k: warnings[k] for k in chunk if k in warnings},
            {k: loaded.fhir_cases[k] for k in chunk if k in loaded.fhir_cases},
            batch=CaseBatch.from_quads({k: by_subject[k] for k in chunk}),
        )


def _outputs(
    assessor: Assessor,
    payloads: Iterator[Payload],
    renderer: Renderer,
    n_batches: int,
    workers: int,
    pool: ProcessPoolExecutor | None,
) -> Iterator[BatchOutput]:
    """The rendered batches in input order: from the given (already started) worker pool,
    from a new one of ``workers`` processes, or from here when there is one batch or one
    worker."""

    def in_pool(pool: ProcessPoolExecutor, size: int) -> Iterator[BatchOutput]:
        pending: deque = deque()
        for payload in payloads:
            if not renderer.reads_inputs:  # half of what a batch of bundles' cases sends
                payload.inputs = {}
            pending.append(pool.submit(_work, payload, renderer))
            if len(pending) >= in_flight(size):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    if pool is not None and n_batches > 1:
        yield from in_pool(pool, workers)
    elif workers > 1 and n_batches > 1:
        with worker_pool(assessor, workers) as own:
            yield from in_pool(own, workers)
    else:
        for payload in payloads:
            yield _render(assessor, payload, renderer)


def _run(
    assessor: Assessor,
    payloads: Iterator[Payload],
    n_batches: int,
    sink: Sink,
    summary: StreamSummary,
    workers: int,
    pool: ProcessPoolExecutor | None,
    progress: Callable[[int], None] | None,
) -> tuple[list[InputWarning], set[str]]:
    """Every batch through the pipeline into ``sink`` (its header first); the warnings the
    batches found and the files their cases came from."""
    renderer = sink.open(summary)
    notes: list[InputWarning] = []
    case_files: set[str] = set()
    for batch_out in _outputs(assessor, payloads, renderer, n_batches, workers, pool):
        sink.write(batch_out.data)
        summary.add(batch_out)
        notes += batch_out.notes
        case_files.update(batch_out.case_files)
        if progress:
            progress(batch_out.cases)
    return merge_warnings(notes), case_files


def assess_grouped(
    assessor: Assessor,
    grouped: GroupedInput,
    sink: Sink,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    pool: ProcessPoolExecutor | None = None,
) -> StreamSummary:
    """Assess the input read by ``cases.load_grouped`` into ``sink``, batch by batch: in
    the given (already started) worker pool, in a new one of ``workers`` processes, or
    here. The input's lines are released as their batches are sent."""
    keep_freed_memory()
    summary = StreamSummary(
        assessor.engine,
        _now(),
        input_errors=list(grouped.errors),
        input_warnings=list(grouped.notes),
        messages=[str(e) for e in grouped.errors],
    )
    n_batches = -(-len(grouped.lines) // assessor.batch_size)
    payloads = _grouped_payloads(grouped, assessor.batch_size)
    notes, case_files = _run(assessor, payloads, n_batches, sink, summary, workers, pool, progress)
    finish_grouped(summary, assessor, notes, grouped.files, case_files, grouped.shared_files)
    sink.close(summary)
    return summary


def finish_grouped(
    summary: StreamSummary,
    assessor: Assessor,
    notes: list[InputWarning],
    files: list[str],
    case_files: set[str],
    shared_files: set[str],
) -> None:
    """The end of a run over case files, wherever its batches ran: ``notes`` are the
    warnings the batches found, ``files`` the files read, ``case_files`` those some case
    came from, ``shared_files`` those a case of which is in another file too."""
    if assessor.inputs.terms is not None:  # as ``cases.file_warnings`` for a whole file
        failed = {e.path for e in summary.input_errors} | shared_files
        notes = notes + [
            no_case_warning(path, assessor.inputs.terms)
            for path in files
            if path not in case_files and path not in failed
        ]
    summary.warnings = [str(w) for w in notes]
    summary.input_warnings += notes
    summary.finish(assessor)


def assess_bulk(
    assessor: Assessor,
    export: BulkExport,
    sink: Sink,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    pool: ProcessPoolExecutor | None = None,
) -> StreamSummary:
    """Assess a FHIR Bulk Data export (entered: its lines sorted by patient) into
    ``sink``, a batch of patients at a time, read as cases where they are assessed. The
    export is streamed: the parent holds one batch of patients being formed and the
    batches in flight (``in_flight``), never the whole export."""
    keep_freed_memory()
    errors, notes = export_problems(export.problems)  # the first pass's: lines not linked
    first_pass = len(export.problems)
    summary = StreamSummary(
        assessor.engine, _now(), input_errors=errors, input_warnings=notes, messages=[str(e) for e in errors]
    )
    payloads = (Payload({}, {}, {}, patients=batch) for batch in patient_batches(export, assessor.batch_size))
    n_batches = -(-export.patient_lines // assessor.batch_size)
    found, _ = _run(assessor, payloads, n_batches, sink, summary, workers, pool, progress)
    finish_bulk(summary, assessor, notes, found, export.problems[first_pass:])
    sink.close(summary)
    return summary


def finish_bulk(
    summary: StreamSummary,
    assessor: Assessor,
    notes: list[InputWarning],
    found: list[InputWarning],
    late: list[BulkProblem],
) -> None:
    """The end of a Bulk Data export's run, wherever its batches ran: ``notes`` are the
    first pass's warnings (already in the summary), ``found`` those the batches found,
    ``late`` the errors the grouping found after the first pass (unknown patients)."""
    errors, _ = export_problems(late)
    summary.input_errors += errors
    summary.messages += [str(e) for e in errors]
    summary.warnings = [str(w) for w in [*notes, *found]]
    if summary.warned:  # each is in its result; the command line says how many
        summary.warnings.append(
            f"{summary.warned} patients' FHIR data gave warnings: each result lists its own"
        )
    summary.input_warnings += found
    summary.finish(assessor)


def assess_batch(assessor: Assessor, payload: Payload, renderer: Renderer) -> BatchOutput:
    """One batch of whole cases gathered elsewhere (by a Spark shuffle: ``reasoner.spark``)
    read, assessed and rendered by the very steps every batch of ``assess_grouped`` and
    ``assess_bulk`` goes through, with what the run needs to know about it (for the
    parent's ``StreamSummary.add``)."""
    return _render(assessor, payload, renderer)


def assess_to(
    assessor: Assessor,
    grouped: GroupedInput,
    fmt: str,
    out: BinaryIO,
    knowledge_base: dict,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    pool: ProcessPoolExecutor | None = None,
) -> StreamSummary:
    """``assess_grouped`` written to ``out`` in the text format ``fmt`` (json, csv, turtle,
    json-ld or fhir); ``knowledge_base`` is the ontology's IRI and version, as the JSON
    output names them."""
    return assess_grouped(assessor, grouped, for_format(fmt, out, knowledge_base), workers, progress, pool)


def collect(
    assessor: Assessor, loaded: LoadedInput, progress: Callable[[int], None] | None = None
) -> AssessmentRun:
    """Input already read into memory through the same pipeline, here, into a sink that
    keeps the results: the run (``Assessor.assess_loaded``)."""
    sink = CollectSink()
    summary = StreamSummary(
        assessor.engine, _now(), input_errors=list(loaded.errors), input_warnings=list(loaded.notes)
    )
    payloads = _loaded_payloads(loaded, assessor.batch_size)
    _run(assessor, payloads, 1, sink, summary, 1, None, progress)
    summary.finish(assessor)
    return AssessmentRun(
        assessor.engine,
        results=sink.results,
        input_errors=summary.input_errors,
        input_warnings=summary.input_warnings,
        statements=summary.statements,
        criteria=summary.criteria,
        started=summary.started,
        ended=summary.ended,
    )
