"""What runs in Spark's Python workers besides reading: the compiled knowledge base, once
per worker process, and a partition's cases through the unchanged pipeline.

Compiling the knowledge base takes a second or two, far more than a partition of a few
hundred cases costs, so each Python worker process keeps one ``Assessor`` per knowledge
base root for as long as it lives (Spark reuses its Python workers from task to task:
``spark.python.worker.reuse``, on by default). A partition's cases go through
``stream.assess_batch`` in batches of ``Assessor.batch_size``: the same reading,
validation, classification, selection and explanation as every batch of ``lbp-imaging
assess``, with the same run-level bookkeeping (``BatchOutput``), which the driver adds up
as the command's parent process does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TypeVar

from ..fhir.read import FhirCase
from ..knowledge import KnowledgeBase
from ..pipeline import render
from ..pipeline.assess import Assessor
from ..pipeline.explain import CaseResult
from ..pipeline.malloc import keep_freed_memory
from ..pipeline.sinks import Rendering
from ..pipeline.stream import BatchOutput, Payload, assess_batch

T = TypeVar("T")

ROW = "row"
BATCH = "batch"

_ASSESSORS: dict[str, Assessor] = {}


def assessor_for(kb_root: str, as_of: dt.date) -> Assessor:
    """This process's compiled knowledge base at ``kb_root``, reading FHIR ages and
    durations to ``as_of`` (the driver's date for the whole run)."""
    assessor = _ASSESSORS.get(kb_root)
    if assessor is None:
        keep_freed_memory()
        assessor = _ASSESSORS[kb_root] = Assessor(KnowledgeBase.load(Path(kb_root)))
    assessor.inputs.as_of = as_of
    return assessor


@dataclass(frozen=True)
class ResultRows(Rendering):
    """A batch's results as rows: each case's columns for the Parquet table (``output``)
    and, last, its JSON line exactly as ``assess --format ndjson`` writes it."""

    def __call__(
        self, assessor: Assessor, results: list[CaseResult], inputs: Mapping[str, FhirCase]
    ) -> list[tuple]:
        return [result_row(r) for r in results]


def result_row(r: CaseResult) -> tuple:
    """case, source, status, outcome, procedures, urgency, appropriateness, selected
    criteria, warnings (IRIs where the result has them), and the result's JSON line."""
    rec = r.recommendation or {}
    procedures = [p["iri"] for p in [rec.get("procedure"), *rec.get("alsoRecommended", [])] if p]
    return (
        r.case,
        r.source,
        r.status,
        (r.outcome or {}).get("iri"),
        procedures,
        (rec.get("urgency") or {}).get("iri"),
        (rec.get("appropriateness") or {}).get("iri"),
        [c["iri"] for c in r.criteria if c["selected"]],
        list(r.warnings),
        render.json_lines([r]).decode("utf-8").removesuffix("\n"),
    )


def assess_payloads(assessor: Assessor, payloads: Iterable[Payload]) -> Iterator[tuple]:
    """Each batch assessed: its rows (``ROW``, one per case), then what the run needs to
    know about it (``BATCH``, a ``BatchOutput`` without its rows)."""
    renderer = ResultRows()
    for payload in payloads:
        out: BatchOutput = assess_batch(assessor, payload, renderer)
        for row in out.data:
            yield ROW, row
        out.data = None
        yield BATCH, out


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), made as they are consumed."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch
