"""Every output format as a sink at the end of the one pipeline (``reasoner.pipeline.stream``).

A sink writes its header once (``open``, which also gives the per-batch renderer), each
rendered batch in input order (``write``) and a footer from the run-level state the
parent accumulated (``close``). The renderer runs where the batch is assessed, in a worker
process when there are several: it is a small picklable object, and what it returns
(bytes, or the table's rows) is what crosses back. No sink keeps a case once written: the
footers need only the run-level state (``stream.StreamSummary``), so memory does not grow
with the number of cases. ``CollectSink`` is the exception by design: it keeps the results,
for the in-memory library entry (``Assessor.assess_loaded``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, ClassVar, Protocol

from ..fhir import output as fhir_output
from . import render
from .explain import CaseResult, cited_by

if TYPE_CHECKING:
    from ..fhir.read import FhirCase
    from .assess import Assessor
    from .stream import StreamSummary

TEXT_FORMATS = ("json", "csv", "turtle", "json-ld", "fhir")


class Renderer(Protocol):
    """A batch's results rendered, where they were assessed."""

    reads_inputs: bool
    """Whether it reads the FHIR Bundles the cases came from (``inputs``): only then are
    they sent to the worker that renders the batch."""

    def __call__(self, assessor: Assessor, results: list[CaseResult], inputs: Mapping[str, FhirCase]): ...


class Sink(Protocol):
    def open(self, run: StreamSummary) -> Renderer:
        """Write the header; the renderer of every batch of the run."""

    def write(self, data) -> None:
        """Write one rendered batch (batches come in input order)."""

    def close(self, run: StreamSummary) -> None:
        """Write the footer from the run-level state."""


# -- renderers (run in the workers) --------------------------------------------------------
class Rendering:
    """What every renderer has: by default it does not read the FHIR Bundles."""

    reads_inputs: ClassVar[bool] = False
    """See ``Renderer.reads_inputs``."""


@dataclass(frozen=True)
class JsonResults(Rendering):
    def __call__(
        self, assessor: Assessor, results: list[CaseResult], inputs: Mapping[str, FhirCase]
    ) -> bytes:
        return render.json_results(results)


@dataclass(frozen=True)
class JsonLines(Rendering):
    def __call__(
        self, assessor: Assessor, results: list[CaseResult], inputs: Mapping[str, FhirCase]
    ) -> bytes:
        return render.json_lines(results)


@dataclass(frozen=True)
class CsvRows(Rendering):
    def __call__(
        self, assessor: Assessor, results: list[CaseResult], inputs: Mapping[str, FhirCase]
    ) -> bytes:
        return render.csv_rows(results).encode("utf-8")


@dataclass(frozen=True)
class ProvTriples(Rendering):
    """A batch's PROV-O triples; each assessment ends when its batch was assessed."""

    fmt: str
    engine: str
    started: str

    def __call__(
        self, assessor: Assessor, results: list[CaseResult], inputs: Mapping[str, FhirCase]
    ) -> bytes:
        ended = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        triples = render.prov_triples(results, self.engine, self.started, ended)
        if not triples:
            return b""
        return (
            render.turtle(triples, with_prefixes=False)
            if self.fmt == "turtle"
            else render.json_ld_nodes(triples)
        )


@dataclass(frozen=True)
class FhirEntries(Rendering):
    """A batch's Bundle entries, with the Patients of the FHIR Bundles its cases came from
    and the quotes of the statements it cites; each case's resources are written as text
    as soon as they are built (they are large: 60-80 KB of indented JSON per generated case)."""

    module: str
    when: str
    reads_inputs: ClassVar[bool] = True  # the Patients

    def __call__(
        self, assessor: Assessor, results: list[CaseResult], inputs: Mapping[str, FhirCase]
    ) -> bytes:
        statements = {iri: assessor.vocab.statement(iri) for iri in cited_by(results)[0]}
        mapping = assessor.inputs.fhir
        assert mapping is not None
        return b",\n".join(
            fhir_output.bundle_entries(
                fhir_output.case_entries([r], statements, mapping, inputs, self.module, self.when)
            )
            for r in results
        )


@dataclass(frozen=True)
class TableRows(Rendering):
    def __call__(
        self, assessor: Assessor, results: list[CaseResult], inputs: Mapping[str, FhirCase]
    ) -> tuple[list[tuple[str, ...]], list[str] | None]:
        return render.table_rows(results)


@dataclass(frozen=True)
class Results(Rendering):
    def __call__(
        self, assessor: Assessor, results: list[CaseResult], inputs: Mapping[str, FhirCase]
    ) -> list[CaseResult]:
        return results


# -- sinks (in the parent) ------------------------------------------------------------------
class _Separated:
    """Writes non-empty chunks to ``out`` with ``separator`` between them."""

    def __init__(self, out: BinaryIO, separator: bytes):
        self.out, self.separator, self.first = out, separator, True

    def write(self, data: bytes) -> None:
        if data:
            if not self.first:
                self.out.write(self.separator)
            self.out.write(data)
            self.first = False


class JsonSink(_Separated):
    """The JSON document (docs/output-schema.md): results, then the run-level tables."""

    def __init__(self, out: BinaryIO, knowledge_base: dict):
        super().__init__(out, b",")
        self.knowledge_base = knowledge_base

    def open(self, run: StreamSummary) -> Renderer:
        self.out.write(render.json_header(run.engine, self.knowledge_base, run.started))
        return JsonResults()

    def close(self, run: StreamSummary) -> None:
        self.out.write(
            render.json_footer(
                run.counts(),
                run.criteria,
                run.statements,
                run.input_errors,
                run.ended,
                [w for w in run.input_warnings if not w.attached],
            )
        )


class NdjsonSink(_Separated):
    """One JSON result per line (each as in the JSON document's results, with the
    disclaimer), for pipelines that read line by line; the run-level document (the JSON
    document without its results: summary, criteria, statements, input errors and
    warnings) is written to ``run_out`` when the run ends."""

    def __init__(self, out: BinaryIO, run_out: BinaryIO, knowledge_base: dict):
        super().__init__(out, b"")
        self.run_out, self.knowledge_base = run_out, knowledge_base

    def open(self, run: StreamSummary) -> Renderer:
        return JsonLines()

    def close(self, run: StreamSummary) -> None:
        self.run_out.write(
            render.json_run(
                run.engine,
                self.knowledge_base,
                run.started,
                run.counts(),
                run.criteria,
                run.statements,
                run.input_errors,
                run.ended,
                [w for w in run.input_warnings if not w.attached],
            )
        )


class CsvSink(_Separated):
    """CSV: the header row, a row per case, then a row per input error."""

    def __init__(self, out: BinaryIO):
        super().__init__(out, b"")

    def open(self, run: StreamSummary) -> Renderer:
        self.out.write(render.csv_rows([], header=True).encode("utf-8"))
        return CsvRows()

    def close(self, run: StreamSummary) -> None:
        self.out.write(render.csv_rows([], run.input_errors).encode("utf-8"))


class TurtleSink(_Separated):
    """PROV-O as Turtle: the prefixes and the engine's description, then each batch's
    triples."""

    def __init__(self, out: BinaryIO):
        super().__init__(out, b"")

    def open(self, run: StreamSummary) -> Renderer:
        self.out.write(render.turtle(render.agent_triples(run.engine)))
        return ProvTriples("turtle", run.engine, run.started)

    def close(self, run: StreamSummary) -> None:
        """Nothing: the run-level triples (the engine's) opened the document."""


class JsonLdSink(_Separated):
    """PROV-O as JSON-LD in expanded form: one array of node objects, the engine's first."""

    def __init__(self, out: BinaryIO):
        super().__init__(out, b",")

    def open(self, run: StreamSummary) -> Renderer:
        self.out.write(b"[")
        self.write(render.json_ld_nodes(render.agent_triples(run.engine)))
        return ProvTriples("json-ld", run.engine, run.started)

    def close(self, run: StreamSummary) -> None:
        self.out.write(b"]\n")


class FhirSink(_Separated):
    """A FHIR R4 collection Bundle: its opening, each batch's entries, an OperationOutcome
    with the input errors (they are known at the end), and the closing with the Bundle's
    id. Every resource is stamped with the time the run started."""

    def __init__(self, out: BinaryIO, module: str):
        super().__init__(out, b",\n")
        self.module = module

    def open(self, run: StreamSummary) -> Renderer:
        self.out.write(fhir_output.bundle_opening(run.started))
        return FhirEntries(self.module, run.started)

    def close(self, run: StreamSummary) -> None:
        if run.input_errors:
            self.write(
                fhir_output.bundle_entries([fhir_output.input_errors_entry(run.input_errors, run.started)])
            )
        self.out.write(fhir_output.bundle_closing(run.started, run.cases))


class TableSink:
    """The terminal table: the rows of each batch as they come (one table per batch, the
    first with the title and column names), then the footer. Of the batches it keeps only
    the warnings that every assessed case so far carries."""

    def __init__(self, console):
        self.console = console
        self.engine: str | None = None
        self.shared: list[str] | None = None

    def open(self, run: StreamSummary) -> Renderer:
        self.engine = run.engine
        return TableRows()

    def write(self, data: tuple[list[tuple[str, ...]], list[str] | None]) -> None:
        rows, shared = data
        if shared is not None:
            self.shared = shared if self.shared is None else [w for w in self.shared if w in shared]
        if rows:
            self.console.print(render.table(rows, self.engine))
            self.engine = None

    def close(self, run: StreamSummary) -> None:
        if self.engine is not None:  # no row at all: the empty table says what ran
            self.console.print(render.table([], self.engine))
        render.print_table_footer(
            self.console, self.shared or [], run.input_errors, run.input_warnings, run.counts()
        )


class CollectSink:
    """The results kept in memory, in input order: the library's in-memory entry."""

    def __init__(self):
        self.results: list[CaseResult] = []

    def open(self, run: StreamSummary) -> Renderer:
        return Results()

    def write(self, data: list[CaseResult]) -> None:
        self.results += data

    def close(self, run: StreamSummary) -> None:
        """Nothing to write: the caller takes the results."""


def for_format(fmt: str, out: BinaryIO, knowledge_base: dict) -> Sink:
    """The sink that writes ``fmt`` to ``out``; ``knowledge_base`` is the ontology's IRI
    and version (``KnowledgeBase.identity``)."""
    if fmt == "json":
        return JsonSink(out, knowledge_base)
    if fmt == "csv":
        return CsvSink(out)
    if fmt == "turtle":
        return TurtleSink(out)
    if fmt == "json-ld":
        return JsonLdSink(out)
    if fmt == "fhir":
        return FhirSink(out, knowledge_base.get("ontology") or fhir_output.MODULE)
    raise ValueError(f"no text format {fmt!r}: choose one of {', '.join(TEXT_FORMATS)}")
