"""Assess large batches with bounded memory, in parallel worker processes.

The parent parses the input and cuts it into batches of whole cases; each batch is
assessed (validate, classify, select, explain) and rendered to JSON or CSV by a worker
process that has compiled the knowledge base once, and the parent writes the rendered
batches in input order. Only the rendered text crosses process boundaries. Run-level
tables (criteria, statements, summary) are written once at the end.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyoxigraph as ox

from . import render
from .assess import Assessor
from .cases import LoadedInput
from .knowledge import KnowledgeBase

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


def _render(
    assessor: Assessor, batch: dict[str, list[ox.Quad]], source_of: dict[str, str], fmt: str
) -> BatchOutput:
    results = assessor._assess_batch(batch, source_of)
    data = render.json_results(results) if fmt == "json" else render.csv_rows(results).encode("utf-8")
    out = BatchOutput(data, cases=len(results))
    cited: dict[str, None] = {}
    criteria: dict[str, None] = {}
    for r in results:
        if r.status != "assessed":
            out.invalid += 1
            out.messages += [
                f"{r.source}: case {r.case}: {e['field'] or 'case'}: {e['message']}" for e in r.errors
            ]
        cited.update(dict.fromkeys(r.sources))
        for c in r.criteria:
            criteria[c["iri"]] = None
            cited.update(dict.fromkeys(c["sources"]))
    out.cited, out.criteria = list(cited), list(criteria)
    return out


_WORKER: Assessor | None = None


def _init_worker(kb_root: str, engine: str, batch_size: int) -> None:
    global _WORKER
    _WORKER = Assessor(KnowledgeBase.load(Path(kb_root)), engine, batch_size)


def _work(payload: bytes, source_of: dict[str, str], fmt: str) -> BatchOutput:
    assert _WORKER is not None
    batch: dict[str, list[ox.Quad]] = defaultdict(list)
    for quad in ox.parse(payload, format=ox.RdfFormat.N_QUADS):
        subject = quad.subject
        batch[subject.value if isinstance(subject, ox.NamedNode) else str(subject)].append(quad)
    return _render(_WORKER, batch, source_of, fmt)


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


@dataclass
class StreamSummary:
    cases: int = 0
    invalid: int = 0
    messages: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.invalid or self.messages or not self.cases else 0


def assess_to(
    assessor: Assessor,
    loaded: LoadedInput,
    fmt: str,
    out: BinaryIO,
    knowledge_base: dict,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> StreamSummary:
    """Assess ``loaded`` and write it to ``out`` as JSON or CSV, batch by batch."""
    if fmt not in STREAM_FORMATS:
        raise ValueError(f"streaming supports {', '.join(STREAM_FORMATS)}, not {fmt}")
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    batches = deque(assessor._batches(loaded.quads))
    summary = StreamSummary(messages=[str(e) for e in loaded.errors])
    cited: dict[str, None] = {}
    criteria: dict[str, None] = {}
    out.write(
        render.json_header(assessor.engine, knowledge_base, started)
        if fmt == "json"
        else render.csv_rows([], header=True).encode("utf-8")
    )

    loaded.quads = []  # the batches hold the quads now; let each go once it is sent

    def outputs() -> Iterator[BatchOutput]:
        if workers > 1 and len(batches) > 1:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(str(assessor.kb.root), assessor.engine, assessor.batch_size),
            ) as pool:
                pending: deque = deque()
                while batches or pending:
                    # Keep a few batches in flight per worker: enough to stay busy, few
                    # enough that memory stays bounded.
                    while batches and len(pending) < 2 * workers:
                        b = batches.popleft()
                        payload = ox.serialize(
                            [q for qs in b.values() for q in qs], format=ox.RdfFormat.N_QUADS
                        )
                        pending.append(
                            pool.submit(_work, payload, {k: loaded.source_of.get(k) for k in b}, fmt)
                        )
                    yield pending.popleft().result()
        else:
            while batches:
                yield _render(assessor, batches.popleft(), loaded.source_of, fmt)

    first = True
    for batch_out in outputs():
        if batch_out.data:
            if fmt == "json" and not first:
                out.write(b",")
            out.write(batch_out.data)
            first = False
        summary.cases += batch_out.cases
        summary.invalid += batch_out.invalid
        summary.messages += batch_out.messages
        cited.update(dict.fromkeys(batch_out.cited))
        criteria.update(dict.fromkeys(batch_out.criteria))
        if progress:
            progress(batch_out.cases)
    if fmt == "json":
        run_summary = {
            "cases": summary.cases,
            "assessed": summary.cases - summary.invalid,
            "invalid": summary.invalid,
            "inputErrors": len(loaded.errors),
        }
        out.write(
            render.json_footer(
                run_summary,
                {iri: assessor.vocab.class_entry(iri) for iri in sorted(criteria)},
                {iri: assessor.vocab.statement(iri) for iri in cited},
                loaded.errors,
                dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            )
        )
    else:
        out.write(render.csv_rows([], loaded.errors).encode("utf-8"))
    return summary
