"""Large batches are assessed batch by batch, in worker processes, with the same answers
as one in-memory run."""

from __future__ import annotations

import csv
import io
import json
import re
from concurrent.futures import Future
from pathlib import Path

import pyoxigraph as ox

from reasoner.pipeline import render, stream
from reasoner.pipeline.assess import Assessor
from reasoner.pipeline.cases import GroupedInput, LoadedInput, load_grouped
from reasoner.synthetic import CaseGenerator

ROOT = Path(__file__).resolve().parents[1]


def _loaded(kb, n: int) -> LoadedInput:
    quads = list(ox.parse(CaseGenerator(kb, seed=5).ntriples(n), format=ox.RdfFormat.N_TRIPLES))
    return LoadedInput(quads=quads, source_of={q.subject.value: "generated" for q in quads})


def _grouped(loaded: LoadedInput) -> GroupedInput:
    grouped = GroupedInput(source_of=dict(loaded.source_of))
    for q in loaded.quads:
        grouped.lines.setdefault(q.subject.value, []).append(f"{q.subject} {q.predicate} {q.object} .")
    return grouped


def _strip(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("started", "ended")}


def test_parallel_streamed_json_equals_the_in_memory_run(kb):
    reference = Assessor(kb, "fast")
    expected = _strip(json.loads(render.to_json(reference.assess_loaded(_loaded(kb, 450)), {})))
    for workers in (1, 2):
        out = io.BytesIO()
        summary = stream.assess_to(
            Assessor(kb, "fast", batch_size=100), _grouped(_loaded(kb, 450)), "json", out, {}, workers=workers
        )
        got = _strip(json.loads(out.getvalue()))
        assert summary.cases == 450 and summary.exit_code == 0
        assert got["results"] == expected["results"]
        assert got["statements"] == expected["statements"] and got["criteria"] == expected["criteria"]
        assert got["summary"] == expected["summary"]


def test_streamed_csv_has_one_row_per_case_and_reports_invalid_cases(kb):
    loaded = _loaded(kb, 120)
    bad = ox.NamedNode("https://example.org/synthetic/case/0")
    loaded.quads.append(
        ox.Quad(
            bad,
            ox.NamedNode("https://w3id.org/lbp-imaging/ageInYears"),
            ox.Literal("130", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")),
        )
    )
    out = io.BytesIO()
    summary = stream.assess_to(
        Assessor(kb, "fast", batch_size=50), _grouped(loaded), "csv", out, {}, workers=2
    )
    reader = csv.DictReader(io.StringIO(out.getvalue().decode("utf-8")))
    rows = list(reader)
    assert reader.fieldnames == list(render.CSV_COLUMNS)
    assert len(rows) == 120 and summary.invalid == 1 and summary.exit_code == 1
    assert [r["status"] for r in rows].count("invalid") == 1
    assert any("case/0" in m and "Age" in m for m in summary.messages)
    # The columns of the undetermined criteria and the questions are those of one in-memory run.
    in_memory = Assessor(kb, "fast").assess_loaded(loaded)
    expected = {r["case"]: r for r in csv.DictReader(io.StringIO(render.to_csv(in_memory)))}
    columns = ("outcome", "undetermined_criteria", "questions")
    assert {r["case"]: [r[c] for c in columns] for r in rows} == {
        case: [r[c] for c in columns] for case, r in expected.items()
    }
    assert any(r["questions"] for r in rows)


def test_a_malformed_line_in_a_worker_batch_loses_only_its_case(kb):
    grouped = _grouped(_loaded(kb, 120))
    broken = "https://example.org/synthetic/case/7"
    grouped.lines[broken].append(f'<{broken}> <https://w3id.org/lbp-imaging/ageInYears> "40 .')
    out = io.BytesIO()
    summary = stream.assess_to(Assessor(kb, "fast", batch_size=50), grouped, "json", out, {}, workers=2)
    doc = json.loads(out.getvalue())
    assert summary.cases == 119 and summary.exit_code == 1
    assert broken not in {r["case"] for r in doc["results"]}
    (error,) = doc["inputErrors"]
    assert error["path"] == "generated" and f"case {broken}" in error["message"]
    assert doc["summary"]["inputErrors"] == 1
    assert any(broken in m for m in summary.messages)


class _RenderingHere:
    """A pool that renders each batch where it is given (as a worker would), recording
    whether its renderer reads the FHIR Bundles and which it was sent."""

    def __init__(self, assessor: Assessor):
        self.assessor, self.sent = assessor, []

    def submit(self, fn, payload, renderer) -> Future:
        self.sent.append((renderer.reads_inputs, set(payload.inputs)))
        done: Future = Future()
        done.set_result(stream._render(self.assessor, payload, renderer))
        return done


def test_a_batch_sends_its_fhir_bundles_to_a_worker_only_for_output_that_reads_them(kb):
    """FHIR output names each case's Patient from the bundle it was read from, so its
    batches carry the bundles; other formats' batches leave them behind (half of what a
    batch of bundles' cases sends), with the same output as when rendered in one process."""
    assessor = Assessor(kb, "fast", batch_size=7)
    bundles = sorted(p for p in (ROOT / "examples" / "fhir").glob("*.json") if ".expected." not in p.name)
    for fmt in ("json", "fhir"):
        pool, alone, pooled = _RenderingHere(assessor), io.BytesIO(), io.BytesIO()
        stream.assess_to(assessor, load_grouped(bundles, assessor.inputs), fmt, alone, {})
        grouped = load_grouped(bundles, assessor.inputs)
        stream.assess_to(assessor, grouped, fmt, pooled, {}, workers=2, pool=pool)
        assert len(pool.sent) == -(-len(bundles) // 7) > 1
        if fmt == "fhir":
            assert all(reads and cases for reads, cases in pool.sent)
        else:
            assert all(not reads and not cases for reads, cases in pool.sent)
        assert _without_run_stamps(pooled.getvalue()) == _without_run_stamps(alone.getvalue())


def _without_run_stamps(data: bytes) -> str:
    """The output without what differs from run to run: times, and the identifiers made
    from them (FHIR output's resource ids and ``urn:uuid`` fullUrls are name-based UUIDs of
    the run's time, so two runs a second apart differ)."""
    text = data.decode("utf-8")
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)", "TIME", text)
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", text)
