"""FHIR Bulk Data input: an export (NDJSON per resource type) read one patient at a time,
with bounded memory, the same answers as the bundles it came from, and every bad line an
error naming its file and line while the rest goes on."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner.fhir.bulk import BulkExport, export_files, is_export
from reasoner.fhir.bulk_write import write_bulk
from reasoner.pipeline.explain import DECISION_KEYS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "fhir"
AS_OF = "2026-12-01"
CLI = [sys.executable, "-m", "reasoner.cli"]


def _bundles() -> list[dict]:
    return [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(EXAMPLES.glob("*.json"))
        if not p.name.endswith(".expected.json")
    ]


def _assess(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, "assess", *args, "--as-of", AS_OF, "--quiet"], capture_output=True, text=True, cwd=cwd
    )


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _decision(result: dict) -> tuple:
    """What a result decides, without the names that depend on where the data came from."""
    return tuple(json.dumps(result.get(k), sort_keys=True) for k in DECISION_KEYS)


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export")
    write_bulk(_bundles(), out)
    return out


@pytest.fixture(scope="module")
def bundle_results(tmp_path_factory) -> dict[str, dict]:
    """The example bundles assessed as bundle files, by Patient id."""
    out = tmp_path_factory.mktemp("bundles") / "results.ndjson"
    done = _assess(str(EXAMPLES), "--format", "ndjson", "-o", str(out))
    assert done.returncode == 0, done.stderr
    by_patient = {}
    for bundle in _bundles():
        patient = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        by_patient[patient.get("fullUrl") or patient["resource"]["id"]] = patient["resource"]["id"]
    found = {}
    for result in _lines(out):
        pid = by_patient.get(result["case"]) or result["case"].rsplit("/", 1)[-1]
        found[pid] = result
    return found


def test_an_export_of_the_example_bundles_gives_the_answers_of_the_bundles(export, bundle_results, tmp_path):
    assert is_export(export) and not is_export(EXAMPLES)
    out = tmp_path / "results.ndjson"
    done = _assess(str(export), "--format", "ndjson", "-o", str(out))
    assert done.returncode == 0, done.stderr
    results = {r["case"].rsplit("/", 1)[-1]: r for r in _lines(out)}
    assert set(results) == set(bundle_results)
    for pid, result in results.items():
        assert _decision(result) == _decision(bundle_results[pid]), pid
        assert result["source"].endswith(".ndjson:" + result["source"].rsplit(":", 1)[-1])
        assert "Decision support, not diagnosis" in result["disclaimer"]
    run = json.loads((tmp_path / "results.run.json").read_text(encoding="utf-8"))
    assert run["summary"] == {"cases": len(results), "assessed": len(results), "invalid": 0, "inputErrors": 0}
    assert "results" not in run and run["criteria"] and run["statements"]
    assert "Decision support, not diagnosis" in run["disclaimer"]


def test_ndjson_output_needs_a_file_for_the_run_document(export):
    done = _assess(str(export), "--format", "ndjson")
    assert done.returncode == 2 and "--output" in done.stderr


def test_an_export_is_assessed_on_its_own(export):
    done = _assess(str(export), str(EXAMPLES))
    assert done.returncode == 2 and "Bulk Data export" in done.stderr


def _copy(export: Path, to: Path) -> Path:
    to.mkdir()
    for f in export_files(export):
        (to / f.name).write_bytes(f.read_bytes())
    return to


def test_bad_lines_are_errors_naming_file_and_line_and_the_rest_goes_on(export, bundle_results, tmp_path):
    bad = _copy(export, tmp_path / "bad")
    conditions = bad / "Condition.ndjson"
    first = _lines(conditions)[0]
    patient = first["subject"]["reference"].split("/")[1]
    n = len(conditions.read_text(encoding="utf-8").splitlines())
    broken = {
        "not JSON": "{not json",
        "not a FHIR resource": "[1, 2]",
        "no reference to its patient": json.dumps({"resourceType": "Condition", "id": "orphan"}),
        "which is not in the export": json.dumps(
            {"resourceType": "Condition", "id": "lost", "subject": {"reference": "Patient/nobody"}}
        ),
        f"Patient/{patient} not read": json.dumps(
            {
                "resourceType": "Condition",
                "id": "odd",
                "subject": {"reference": f"Patient/{patient}"},
                "code": "x",
            }
        ),
    }
    with conditions.open("a", encoding="utf-8") as f:
        f.write(
            "\n".join([*broken.values(), json.dumps({"resourceType": "Practitioner", "id": "dr"})]) + "\n"
        )
    out = tmp_path / "results.ndjson"
    done = _assess(str(bad), "--format", "ndjson", "-o", str(out))
    assert done.returncode == 1
    for i, problem in enumerate(broken):
        said = [m for m in done.stderr.splitlines() if problem in m]
        assert len(said) == 1, (problem, done.stderr)
        where = f"Condition.ndjson:{n + i + 1}" if "not read" in problem else f"line {n + i + 1}"
        assert where in said[0], said
    assert "Practitioner (1)" in done.stderr  # a type that is not read: a warning, not an error
    results = {r["case"].rsplit("/", 1)[-1]: r for r in _lines(out)}
    assert set(results) == set(bundle_results) - {patient}  # only the patient whose data is bad
    run = json.loads((tmp_path / "results.run.json").read_text(encoding="utf-8"))
    assert run["summary"]["inputErrors"] == len(broken)


def test_gzip_and_split_files_read_as_one_export(export, tmp_path):
    split = tmp_path / "split"
    write_bulk(_bundles(), split, files_per_type=3, compress=True)
    assert all(f.name.endswith(".ndjson.gz") for f in export_files(split))
    with BulkExport(export_files(export)) as plain, BulkExport(export_files(split)) as zipped:
        one = {p.patient: sorted(line.text for line in p.lines) for p in plain.patients()}
        two = {p.patient: sorted(line.text for line in p.lines) for p in zipped.patients()}
    assert one == two and len(one) == len(_bundles())


def test_a_truncated_gzip_file_is_an_error_for_that_file(export, tmp_path):
    bad = _copy(export, tmp_path / "bad")
    data = gzip.compress((bad / "Observation.ndjson").read_bytes())
    (bad / "Observation.ndjson").unlink()
    (bad / "Observation.ndjson.gz").write_bytes(data[: len(data) // 2])
    with BulkExport(export_files(bad)) as found:
        list(found.patients())
    assert [p.file.rsplit("/", 1)[-1] for p in found.problems if p.error] == ["Observation.ndjson.gz"]
    assert "cannot be read" in found.problems[0].message


# -- bounded memory: the external sort gives the in-memory grouping --------------------------
_ids = st.sampled_from(["a", "b", "b2", "c.1", "z-9", "10", "9"])
_resources = st.lists(
    st.tuples(_ids, st.sampled_from(["Patient", "Condition", "Observation"]), st.integers(0, 3)),
    max_size=40,
)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(_resources, st.integers(1, 2000), st.integers(1, 3))
def test_sorting_in_runs_of_any_size_groups_as_in_memory(tmp_path_factory, resources, memory, files):
    """Whatever the memory budget (from one line a run to all in memory) and however the
    lines are spread over files, each patient's lines come out together, the Patient first,
    the others in file and line order; lines of patients without a Patient are errors."""
    folder = tmp_path_factory.mktemp("sort")
    written: dict[int, list[str]] = defaultdict(list)
    for i, (patient, kind, pad) in enumerate(resources):
        resource = {"resourceType": kind, "id": f"r{i}", "note": "x" * pad}
        if kind == "Patient":
            resource["id"] = patient
        else:
            resource["subject"] = {"reference": f"Patient/{patient}"}
        written[i % files].append(json.dumps(resource))
    for k, lines in written.items():
        (folder / f"part{k}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for k in sorted(written):
        for number, text in enumerate(written[k], start=1):
            resource = json.loads(text)
            patient = (
                resource["id"]
                if resource["resourceType"] == "Patient"
                else resource["subject"]["reference"][8:]
            )
            expected[patient].append((resource["resourceType"] != "Patient", k, number))
    with BulkExport(export_files(folder), memory=memory) as found:
        got = {
            p.patient: [
                (json.loads(line.text)["resourceType"] != "Patient", int(line.file[-8]), line.number)
                for line in p.lines
            ]
            for p in found.patients()
        }
        unknown = [p for p in found.problems if "not in the export" in p.message]
    with_patient = {
        p: sorted(lines) for p, lines in expected.items() if any(not rank for rank, _, _ in lines)
    }
    assert got == with_patient
    assert list(got) == sorted(got)  # patients in the order of their ids
    assert len(unknown) == sum(len(v) for p, v in expected.items() if p not in with_patient)


def test_bundle_files_read_in_worker_processes_give_what_reading_here_gives(tmp_path):
    """The FHIR Bundle files of a run with workers are read in them (``pool_reader``): the
    same subjects, lines, sources, errors, warnings and merged duplicates as read here."""
    from reasoner.knowledge import KnowledgeBase
    from reasoner.pipeline import cases, stream
    from reasoner.pipeline.assess import Assessor

    folder = tmp_path / "bundles"
    folder.mkdir()
    for p in sorted(EXAMPLES.glob("*.json")):
        if not p.name.endswith(".expected.json"):
            (folder / p.name).write_bytes(p.read_bytes())
    (folder / "zz-again.json").write_bytes((EXAMPLES / "03-infection-crp-mg-dl.json").read_bytes())
    (folder / "zz-bad.json").write_text('{"resourceType": "Bundle", "type": "document"}', encoding="utf-8")
    (folder / "zz-case.ttl").write_text(
        "<https://example.org/c> a <https://w3id.org/lbp-imaging/PatientCase> .\n", encoding="utf-8"
    )
    assessor = Assessor(KnowledgeBase.load(ROOT))
    assessor.inputs.as_of = __import__("datetime").date.fromisoformat(AS_OF)
    here = cases.load_grouped([folder], assessor.inputs)
    with stream.worker_pool(assessor, 2) as pool:
        there = cases.load_grouped(
            [folder], assessor.inputs, stream.pool_reader(pool, assessor.inputs, chunk=5)
        )
    assert there.lines == here.lines and there.source_of == here.source_of
    assert there.errors == here.errors  # the bad bundle, and the case in two files:
    assert {Path(e.path).name for e in here.errors} >= {"zz-bad.json", "zz-again.json"}
    assert {k: v.warnings for k, v in there.fhir_cases.items()} == {
        k: v.warnings for k, v in here.fhir_cases.items()
    }
    assert there.warnings() == here.warnings() and there.notes == here.notes


# -- the first pass in worker processes: the same records, problems and Medications ---------
@pytest.fixture(scope="module")
def linking_pool():
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        yield pool


_LINES = st.sampled_from(
    [
        '{"resourceType": "Patient", "id": "a"}',
        '{"resourceType": "Patient", "id": "b"}',
        '{"resourceType": "Patient", "id": "bad id"}',
        '{"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/a"}}',
        '{"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/b"}}',
        '{"resourceType": "Observation", "id": "u", "subject": {"reference": "Patient/zz"}}',
        '{"resourceType": "Observation", "id": "n"}',
        '{"resourceType": "Medication", "id": "m1"}',
        '{"resourceType": "Medication", "id": "m1", "status": "active"}',
        '{"resourceType": "Medication", "id": "bad id"}',
        '{"resourceType": "Encounter", "id": "e"}',
        '{"resourceType": "Device", "id": "d", "patient": {"reference": "Patient/a"}, "note": "%s"}'
        % ("x" * 300),
        "not json",
        "[1, 2]",
        "",
        "   ",
    ]
)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    st.lists(st.lists(_LINES, max_size=25), min_size=1, max_size=3),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.integers(1, 400),
)
def test_the_first_pass_in_workers_links_as_here(tmp_path_factory, linking_pool, files, end, last, span):
    """Plain files cut into spans of any size (one byte, a line longer than the span, the
    last line without its break, CRLF, blank lines, an empty file) and a gzip file among
    them, linked in worker processes: the same patients with the same lines, the same
    problems in the same order, the same Medications and Patient count as one pass here."""
    folder = tmp_path_factory.mktemp("spans")
    for k, lines in enumerate(files):
        data = end.join(lines).encode() + (end.encode() if last and lines else b"")
        (folder / f"part{k}.ndjson").write_bytes(data)
    (folder / "zipped.ndjson.gz").write_bytes(gzip.compress(b'{"resourceType": "Patient", "id": "g"}\n'))
    found = []
    for pool in (None, linking_pool):
        with BulkExport(export_files(folder), memory=700, pool=pool, span=span) as export:
            patients = [
                (p.patient, [(ln.file, ln.number, ln.text) for ln in p.lines]) for p in export.patients()
            ]
            found.append((patients, export.problems, export.medications, export.patient_lines))
    assert found[0] == found[1]


def test_a_file_that_cannot_be_read_in_the_workers_is_an_error_for_that_file(tmp_path, linking_pool):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "a.ndjson").write_text('{"resourceType": "Patient", "id": "a"}\n', encoding="utf-8")
    (folder / "b.ndjson").mkdir()  # a folder named like a file: it cannot be read
    files = [folder / "a.ndjson", folder / "b.ndjson"]
    found = []
    for pool in (None, linking_pool):
        with BulkExport(files, pool=pool, span=8) as export:
            found.append(([p.patient for p in export.patients()], export.problems))
    assert found[0] == found[1]
    assert [p.file.rsplit("/", 1)[-1] for p in found[1][1]] == ["b.ndjson"]
    assert "cannot be read" in found[1][1][0].message


def test_a_file_gone_before_the_workers_read_it_is_one_error(tmp_path, linking_pool, monkeypatch):
    """A file removed after it was cut into spans (each span then fails in its worker) is
    one error, as when it is gone before the pass: its later spans are not errors again."""
    from reasoner.fhir import bulk

    folder = tmp_path / "export"
    folder.mkdir()
    gone = folder / "gone.ndjson"
    gone.write_text('{"resourceType": "Patient", "id": "a"}\n' * 5, encoding="utf-8")
    cut = bulk._spans

    def cut_then_remove(path, size):
        found = cut(path, size)
        path.unlink()
        return found

    monkeypatch.setattr(bulk, "_spans", cut_then_remove)
    with BulkExport([gone], pool=linking_pool, span=8) as there:
        assert list(there.patients()) == []
    with BulkExport([gone]) as here:
        assert list(here.patients()) == []
    assert there.problems == here.problems and len(here.problems) == 1


# -- fuzzing the export reader --------------------------------------------------------------
@pytest.fixture(scope="module")
def assessor():
    from reasoner.knowledge import KnowledgeBase
    from reasoner.pipeline.assess import Assessor

    found = Assessor(KnowledgeBase.load(ROOT))
    found.inputs.as_of = __import__("datetime").date.fromisoformat(AS_OF)
    return found


def _run_export(assessor, folder: Path):
    from reasoner.pipeline import sinks, stream

    sink = sinks.CollectSink()
    with BulkExport(export_files(folder), memory=4096) as found:  # spill to run files too
        summary = stream.assess_bulk(assessor, found, sink)
    outcomes = {
        r.case.rsplit("/", 1)[-1]: (r.status, json.dumps(r.outcome, sort_keys=True)) for r in sink.results
    }
    return outcomes, summary


def _mutate(data: bytes, how: int, at: int, byte: int) -> bytes:
    at %= max(len(data), 1)
    if how == 0:  # flip a byte
        return data[:at] + bytes([byte]) + data[at + 1 :]
    if how == 1:  # cut the line short
        return data[:at]
    if how == 2:  # a byte inserted (a newline splits a line in two)
        return data[:at] + bytes([byte]) + data[at:]
    return data[:at] + data[at + 1 :]  # a byte deleted


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.integers(0, 3), st.integers(0, 100_000), st.integers(0, 255))
def test_a_mutated_line_costs_at_most_its_own_patient(
    assessor, export, tmp_path_factory, pick, how, at, byte
):
    """Whatever one line of an export becomes (a byte flipped, inserted or deleted, the
    line cut short), the run ends with results and input errors, never an exception; every
    patient whose lines were not touched keeps its clean answer; the touched patient is
    assessed or named by an error."""
    if not _CLEAN:
        _CLEAN.update(_run_export(assessor, export)[0])
    clean = _CLEAN
    folder = _copy(export, tmp_path_factory.mktemp("fuzz") / "export")
    files = export_files(folder)
    target = files[pick % len(files)]
    lines = target.read_bytes().split(b"\n")
    index = pick % max(len(lines) - 1, 1)
    original = lines[index]
    touched = set(re.findall(rb"Patient/([A-Za-z0-9\-.]+)", original)) | (
        {json.loads(original)["id"].encode()}
        if b'"resourceType":"Patient"' in original.replace(b" ", b"")
        else set()
    )
    lines[index] = _mutate(original, how, at, byte)
    target.write_bytes(b"\n".join(lines))
    outcomes, summary = _run_export(assessor, folder)
    touched_ids = {t.decode() for t in touched}
    for pid, answer in clean.items():
        if pid not in touched_ids:
            assert outcomes.get(pid) == answer, pid
    for pid in touched_ids & set(clean):
        assert pid in outcomes or any(pid in m or target.name in m for m in summary.messages), pid


_CLEAN: dict = {}


@pytest.mark.parametrize("value", ["20000000000000000001", "-9223372036854775809"])
def test_an_integer_past_64_bits_reads_as_in_a_bundle_file(assessor, tmp_path, value):
    """orjson reads an integer past 64 bits as a float (20000000000000000001 as 2e19, and
    -9223372036854775809, of nineteen digits, as -9.223372036854776e18): a line with one is
    read by Python's parser, so that the patient's case holds the value a bundle file
    gives, digit for digit."""
    from reasoner.fhir.read import bundle_to_case
    from reasoner.pipeline.input_text import json_text

    literal = f'"{value}"^^<http://www.w3.org/2001/XMLSchema#decimal>'
    text = (EXAMPLES / "06-weight-loss-esr-abnormal.json").read_text(encoding="utf-8")
    assert text.count('"value": 34,') == 1
    options = assessor.inputs
    from_file = bundle_to_case(
        json_text(text.replace('"value": 34,', f'"value": {value},')), "file", options.as_of, options.fhir
    )
    write_bulk([json.loads(text)], tmp_path)
    observations = tmp_path / "Observation.ndjson"
    lines = observations.read_bytes()
    assert lines.count(b'"value":34,') == 1
    observations.write_bytes(lines.replace(b'"value":34,', f'"value":{value},'.encode()))
    with BulkExport(export_files(tmp_path)) as export:
        (records,) = export.patients()
    bundle, located = records.bundle()
    from_export = bundle_to_case(bundle, "export", options.as_of, options.fhir, located)
    for case in (from_file, from_export):
        assert literal in case.ntriples, case.ntriples
