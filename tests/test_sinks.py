"""Every output format is a sink of the one streaming pipeline: cut into several batches and
assessed in worker processes, the streamed Turtle and JSON-LD are the graph of the run held
in memory, the streamed FHIR Bundle has its entries, the table prints every case once with
the totals after, and the pipeline holds a bounded number of batches whatever the input's
size."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import re
from pathlib import Path

import pyoxigraph as ox
import pytest
from fhir.resources.R4B.bundle import Bundle
from rdflib import Graph
from rdflib.namespace import PROV, XSD
from rich.console import Console

from reasoner.fhir.output import to_fhir
from reasoner.pipeline import render, sinks, stream
from reasoner.pipeline.cases import GroupedInput, load, load_grouped
from reasoner.synthetic import CaseGenerator

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [ROOT / "examples" / "cases", ROOT / "examples" / "fhir"]
AS_OF = {
    json.loads(p.read_text(encoding="utf-8"))["asOf"]
    for p in (ROOT / "examples" / "fhir").glob("*.expected.json")
}.pop()
BATCH = 7  # the examples in about a dozen batches
WORKERS = 2

pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def small_batches(assessor):
    """The session's engine, cutting the input into batches of ``BATCH`` cases and counting
    FHIR ages to the examples' reference date."""
    import datetime as dt

    engine = copy.copy(assessor)
    engine.batch_size = BATCH
    engine.inputs = dataclasses.replace(assessor.inputs, as_of=dt.date.fromisoformat(AS_OF))
    return engine


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> list[Path]:
    """The examples and a file that cannot be read (an input error for every format)."""
    missing = tmp_path_factory.mktemp("sinks") / "no-such-case.ttl"
    return [*EXAMPLES, missing]


@pytest.fixture(scope="module")
def in_memory(small_batches, paths):
    """The run held in memory (``Assessor.assess_loaded``) and its input."""
    loaded = load(paths, small_batches.inputs)
    return small_batches.assess_loaded(loaded), loaded


def _streamed(engine, paths: list[Path], fmt: str) -> tuple[bytes, stream.StreamSummary]:
    out = io.BytesIO()
    grouped = load_grouped(paths, engine.inputs)
    assert -(-len(grouped.lines) // BATCH) > 2 * WORKERS  # more batches than are ever in flight
    summary = stream.assess_to(engine, grouped, fmt, out, {}, workers=WORKERS)
    return out.getvalue(), summary


def _without_end_times(graph: Graph) -> tuple[set[ox.Quad], set]:
    """The graph without ``prov:endedAtTime`` (the run's end in memory, each batch's end
    when streamed) in canonical form (RDFC-1.0: two graphs are isomorphic when their
    canonical forms are equal; rdflib's ``isomorphic`` takes half a minute on these), and
    the activities that had one."""
    ended = set(graph.subjects(PROV.endedAtTime, None))
    graph.remove((None, PROV.endedAtTime, None))
    canonical = ox.Dataset(
        ox.parse(graph.serialize(format="nt", encoding="utf-8"), format=ox.RdfFormat.N_TRIPLES)
    )
    canonical.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return set(canonical), ended


@pytest.mark.parametrize("fmt", ["turtle", "json-ld"])
def test_streamed_prov_is_the_graph_of_the_run_in_memory(small_batches, paths, in_memory, fmt):
    data, summary = _streamed(small_batches, paths, fmt)
    assert summary.cases == len(in_memory[0].results) and summary.exit_code == 1  # the missing file
    text = data.decode("utf-8")
    if fmt == "turtle":
        assert len(re.findall(r"^@prefix ", text, re.M)) == len(render.PROV_PREFIXES)  # declared once
    streamed = Graph().parse(data=text, format=fmt)
    (started,) = set(streamed.objects(None, PROV.startedAtTime))
    for activity in streamed.subjects(PROV.startedAtTime, None):
        (end,) = streamed.objects(activity, PROV.endedAtTime)
        assert end.datatype == XSD.dateTime and end.toPython() >= started.toPython()
    run = dataclasses.replace(in_memory[0], started=str(started))
    expected, expected_ended = _without_end_times(render.to_prov(run))
    got, got_ended = _without_end_times(streamed)
    assert got_ended == expected_ended
    assert got == expected


def test_streamed_fhir_bundle_has_the_entries_of_the_bundle_in_memory(small_batches, paths, in_memory):
    data, _ = _streamed(small_batches, paths, "fhir")
    bundle = json.loads(data)
    Bundle.model_validate(bundle)
    run, loaded = in_memory
    expected = to_fhir(
        run.results,
        run.statements,
        small_batches.inputs.fhir,
        inputs=loaded.fhir_cases,
        input_errors=run.input_errors,
        generated=bundle["timestamp"],
    )
    assert loaded.fhir_cases and run.input_errors  # Patients from the bundles, and an input error
    assert bundle["id"] == expected["id"] and bundle["type"] == "collection"

    # The cases' entries in input order, then the input errors (known at the end), as in memory.
    assert bundle["entry"] == expected["entry"]
    assert bundle["entry"][-1]["resource"]["resourceType"] == "OperationOutcome"


def test_the_table_prints_each_batch_as_it_comes_and_the_totals_at_the_end(small_batches, paths, in_memory):
    out = io.StringIO()
    grouped = load_grouped(paths, small_batches.inputs)
    summary = stream.assess_grouped(
        small_batches, grouped, sinks.TableSink(Console(file=out, width=300)), workers=WORKERS
    )
    text = out.getvalue()
    run = in_memory[0]
    assert text.count("lbp-imaging assessment (fast engine)") == 1
    for r in run.results:  # every case once, in input order
        assert text.count(f" {render._short(r.case)} ") == 1, r.case
    positions = [text.index(f" {render._short(r.case)} ") for r in run.results]
    assert positions == sorted(positions)
    totals = (
        f"{summary.cases} cases: {summary.cases - summary.invalid} assessed, {summary.invalid} invalid, "
        f"{len(summary.input_errors)} input error"
    )
    assert summary.cases == len(run.results) and totals in text
    assert text.index(totals) > max(positions)
    assert "no-such-case.ttl" in text and text.rstrip().endswith("judgement.")


def test_the_table_on_standard_output_ends_with_the_totals(cli):
    proc = cli("assess", "tests/data/cases/valid")
    assert proc.returncode == 0, proc.stderr
    (line,) = [line for line in proc.stdout.splitlines() if " assessed, " in line]
    n = int(line.split()[0])
    assert line == f"{n} cases: {n} assessed, 0 invalid, 0 input errors"


class _Recording:
    """A sink between the pipeline and a real one that records, at each batch written, how
    many batches the pipeline had taken from the input by then."""

    def __init__(self, inner, taken: list[int]):
        self.inner, self.taken, self.outstanding = inner, taken, []

    def open(self, run):
        return self.inner.open(run)

    def write(self, data) -> None:
        self.outstanding.append(len(self.taken) - len(self.outstanding))
        self.inner.write(data)

    def close(self, run) -> None:
        self.inner.close(run)


def _generated(kb, n: int) -> GroupedInput:
    quads = ox.parse(CaseGenerator(kb, seed=3).ntriples(n), format=ox.RdfFormat.N_TRIPLES)
    grouped = GroupedInput()
    for q in quads:
        grouped.lines.setdefault(q.subject.value, []).append(f"{q.subject} {q.predicate} {q.object} .")
        grouped.source_of[q.subject.value] = "generated"
    return grouped


@pytest.mark.parametrize("fmt", ["turtle", "fhir"])
def test_the_pipeline_holds_a_bounded_number_of_batches_whatever_the_input(
    kb, small_batches, monkeypatch, fmt
):
    taken: list[int] = []
    payloads = stream._grouped_payloads

    def counted(grouped: GroupedInput, size: int):
        for payload in payloads(grouped, size):
            taken.append(len(grouped.lines))  # the lines not yet sent, once this batch is taken
            yield payload

    monkeypatch.setattr(stream, "_grouped_payloads", counted)
    held = {}
    for n in (6 * BATCH, 30 * BATCH):
        taken.clear()
        grouped = _generated(kb, n)
        sink = sinks.for_format(fmt, io.BytesIO(), {})
        recording = _Recording(sink, taken)
        summary = stream.assess_grouped(small_batches, grouped, recording, workers=WORKERS)
        assert summary.cases == n and len(recording.outstanding) == n // BATCH
        # Never more than the batches in flight taken from the input and not yet written,
        # and each batch's lines are released as it is sent.
        assert max(recording.outstanding) == stream.in_flight(WORKERS)
        assert taken == [n - BATCH * (i + 1) for i in range(n // BATCH)] and not grouped.lines
        held[n] = {k: len(v) for k, v in vars(sink).items() if hasattr(v, "__len__") and k != "out"}
    assert held[6 * BATCH] == held[30 * BATCH]  # the sink's own state does not grow with N


def test_fhir_input_bundles_flow_with_their_batch(small_batches):
    grouped = load_grouped([EXAMPLES[1]], small_batches.inputs)
    patients = dict(grouped.fhir_cases)
    sent = list(stream._grouped_payloads(grouped, BATCH))
    assert not grouped.fhir_cases and not grouped.lines  # released as sent
    for payload in sent:
        assert payload.inputs == {k: patients[k] for k in payload.source_of}
