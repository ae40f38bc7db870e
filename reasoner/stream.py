"""Assess large batches with bounded memory, in parallel worker processes.

The parent reads the input and cuts it into batches of whole cases as N-Triples lines
(an N-Triples file is only split into lines, not parsed, so that reading costs the
parent little); each batch is parsed, assessed (validate, classify, select, explain)
and rendered to JSON or CSV by a worker process that has compiled the knowledge base
once, and the parent writes the rendered batches in input order. Only text crosses
process boundaries. Run-level tables (criteria, statements, summary) are written once
at the end.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from . import render
from .assess import Assessor, with_input_warnings
from .cases import (
    GroupedInput,
    InputError,
    InputWarning,
    LineBatch,
    merge_warnings,
    no_case_warning,
    parse_cases,
    with_notes,
)
from .explain import cited_by
from .knowledge import KnowledgeBase
from .malloc import keep_freed_memory

STREAM_FORMATS = ("json", "csv")


@dataclass
class BatchOutput:
    """One rendered batch and what the run needs to know about it."""

    data: bytes
    cases: int = 0
    invalid: int = 0
    cited: list[str] = field(default_factory=list)
    criteria: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    input_errors: list[InputError] = field(default_factory=list)
    notes: list[InputWarning] = field(default_factory=list)
    case_files: list[str] = field(default_factory=list)


@dataclass
class Payload:
    """One batch of whole cases for a worker, with their source files and the warnings
    their input gave."""

    lines: LineBatch
    source_of: dict[str, str]
    warnings: dict[str, list[str]]


def _render(assessor: Assessor, payload: Payload, fmt: str) -> BatchOutput:
    """One batch parsed, its terms checked (here, where its lines are parsed: the parent
    only splits them), assessed and rendered; with the files its cases came from, so that
    the parent can tell which files held none."""
    batch, input_errors = parse_cases(payload.lines, payload.source_of)
    terms = assessor.inputs.terms
    notes = terms.warnings(batch.facts, payload.source_of.get) if terms else []
    results = with_input_warnings(
        assessor._assess_batch(batch, payload.source_of), with_notes(payload.warnings, notes)
    )
    data = render.json_results(results) if fmt == "json" else render.csv_rows(results).encode("utf-8")
    out = BatchOutput(
        data,
        cases=len(results),
        input_errors=input_errors,
        notes=notes,
        case_files=sorted({r.source for r in results if r.source}),
    )
    for r in results:
        if r.status != "assessed":
            out.invalid += 1
            out.messages += r.error_lines()
    out.cited, out.criteria = cited_by(results)
    return out


_WORKER: Assessor | None = None


def _init_worker(kb_root: str, engine: str, batch_size: int) -> None:
    global _WORKER
    keep_freed_memory()
    if _WORKER is None:  # a spawned worker compiles the knowledge base; a forked one has it
        _WORKER = Assessor(KnowledgeBase.load(Path(kb_root)), engine, batch_size)


def _work(payload: Payload, fmt: str) -> BatchOutput:
    assert _WORKER is not None
    return _render(_WORKER, payload, fmt)


def _ready() -> bool:
    return _WORKER is not None


@contextmanager
def worker_pool(assessor: Assessor, workers: int) -> Iterator[ProcessPoolExecutor]:
    """Worker processes that have the compiled knowledge base: forked from this process
    where the platform can fork (they share its memory, copy on write), otherwise spawned
    and compiling it as soon as they start, while the main process reads the input."""
    global _WORKER
    forking = "fork" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if forking else "spawn")
    _WORKER = assessor if forking else None
    try:
        with ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(str(assessor.kb.root), assessor.engine, assessor.batch_size),
        ) as pool:
            for _ in range(workers):
                pool.submit(_ready)  # starts the workers now (a fork copies _WORKER)
            _WORKER = None
            yield pool
    finally:
        _WORKER = None


def worth_workers(paths: list[Path], workers: int, threshold: int = 1_000_000) -> bool:
    """Whether the input is large enough (in bytes) to pay for starting worker processes."""
    size = 0
    for path in paths:
        files = path.rglob("*") if path.is_dir() else [path]
        size += sum(f.stat().st_size for f in files if f.is_file())
    return workers > 1 and size >= threshold


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


@dataclass
class StreamSummary:
    """Counts, the messages that make the run fail, and the warnings found while assessing
    (those ``load_grouped`` found are reported before)."""

    cases: int = 0
    invalid: int = 0
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.invalid or self.messages or not self.cases else 0


def _payloads(grouped: GroupedInput, size: int) -> Iterator[Payload]:
    """Batches of whole cases, releasing each subject's lines once sent, with their
    source files and the warnings their input gave."""
    keys = list(grouped.lines)
    warnings = grouped.case_warnings()
    for i in range(0, len(keys), size):
        chunk = keys[i : i + size]
        yield Payload(
            LineBatch.of({k: grouped.lines.pop(k) for k in chunk}),
            {k: grouped.source_of.get(k) for k in chunk},
            {k: warnings[k] for k in chunk if k in warnings},
        )


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
    """Assess the input and write it to ``out`` as JSON or CSV, batch by batch: in the
    given (already started) worker pool, in a new one of ``workers`` processes, or here."""
    if fmt not in STREAM_FORMATS:
        raise ValueError(f"streaming supports {', '.join(STREAM_FORMATS)}, not {fmt}")
    keep_freed_memory()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    n_batches = -(-len(grouped.lines) // assessor.batch_size)
    payloads = _payloads(grouped, assessor.batch_size)
    input_errors = list(grouped.errors)  # and, as batches come back, malformed lines
    summary = StreamSummary(messages=[str(e) for e in grouped.errors])
    cited: dict[str, None] = {}
    criteria: dict[str, None] = {}
    notes: list[InputWarning] = []
    case_files: set[str] = set()
    out.write(
        render.json_header(assessor.engine, knowledge_base, started)
        if fmt == "json"
        else render.csv_rows([], header=True).encode("utf-8")
    )

    def in_pool(pool: ProcessPoolExecutor, size: int) -> Iterator[BatchOutput]:
        pending: deque = deque()
        for payload in payloads:
            # A few batches in flight per worker: enough to stay busy, few enough that
            # memory stays bounded.
            pending.append(pool.submit(_work, payload, fmt))
            if len(pending) >= 2 * size:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def outputs() -> Iterator[BatchOutput]:
        if pool is not None and n_batches > 1:
            yield from in_pool(pool, max(workers, 1))
        elif workers > 1 and n_batches > 1:
            with worker_pool(assessor, workers) as own:
                yield from in_pool(own, workers)
        else:
            for payload in payloads:
                yield _render(assessor, payload, fmt)

    first = True
    for batch_out in outputs():
        if batch_out.data:
            if fmt == "json" and not first:
                out.write(b",")
            out.write(batch_out.data)
            first = False
        summary.cases += batch_out.cases
        summary.invalid += batch_out.invalid
        summary.messages += [str(e) for e in batch_out.input_errors] + batch_out.messages
        input_errors += batch_out.input_errors
        notes += batch_out.notes
        case_files.update(batch_out.case_files)
        cited.update(dict.fromkeys(batch_out.cited))
        criteria.update(dict.fromkeys(batch_out.criteria))
        if progress:
            progress(batch_out.cases)
    notes = merge_warnings(notes)
    if assessor.inputs.terms is not None:  # as ``cases.file_warnings`` for a whole file
        failed = {e.path for e in input_errors} | grouped.shared_files
        notes += [
            no_case_warning(path, assessor.inputs.terms)
            for path in grouped.files
            if path not in case_files and path not in failed
        ]
    summary.warnings = [str(w) for w in notes]
    if fmt == "json":
        run_summary = {
            "cases": summary.cases,
            "assessed": summary.cases - summary.invalid,
            "invalid": summary.invalid,
            "inputErrors": len(input_errors),
        }
        out.write(
            render.json_footer(
                run_summary,
                {iri: assessor.vocab.class_entry(iri) for iri in sorted(criteria)},
                {iri: assessor.vocab.statement(iri) for iri in cited},
                input_errors,
                dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                [w for w in grouped.notes + notes if not w.attached],
            )
        )
    else:
        out.write(render.csv_rows([], input_errors).encode("utf-8"))
    return summary
