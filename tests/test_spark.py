"""Apache Spark (``reasoner.spark``, ``lbp-imaging spark-assess``): the same answers as
``lbp-imaging assess --format ndjson`` on the same input, in ``local[2]``.

One Spark session serves the module (a session already active is the one
``spark_assess`` uses): a Bulk Data export of generated patients and of the example
bundles, split and gzip-compressed, with bad lines and a Medication that two files give;
then a few case files; then blank nodes it refuses. Skipped when the ``spark`` extra is
not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from typer.main import get_command

pytest.importorskip("pyspark", reason="Apache Spark is not installed: pip install '.[spark]'")

from reasoner.cli import app
from reasoner.fhir.bulk_write import write_bulk
from reasoner.spark import SparkAssessError, spark_assess
from reasoner.spark.job import spark_failure
from reasoner.spark.session import start
from reasoner.synthetic import CaseGenerator
from reasoner.synthetic_fhir import FhirCaseGenerator

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
AS_OF = date(2026, 12, 1)
PATIENTS = 200
CLI = [sys.executable, "-m", "reasoner.cli"]
TIMES = ("started", "ended")


def _medication(code: str) -> str:
    return json.dumps(
        {
            "resourceType": "Medication",
            "id": "m-16",
            "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code}]},
        }
    )


BAD_LINES = [
    "{not json",
    json.dumps({"resourceType": "Condition", "id": "orphan"}),
    json.dumps({"resourceType": "Condition", "id": "lost", "subject": {"reference": "Patient/nobody"}}),
    json.dumps({"resourceType": "Patient", "id": "no way"}),
    json.dumps({"resourceType": "Practitioner", "id": "dr"}),
    "",
    _medication("1111"),  # replaced by Medication.ndjson's, a later file
    json.dumps(
        {
            "resourceType": "MedicationStatement",
            "id": "p3-ms16",
            "status": "active",
            "medicationReference": {"reference": "Medication/m-16"},
            "subject": {"reference": "Patient/p3"},
        }
    ),
]


@pytest.fixture(scope="module")
def spark():
    session = start("local[2]")
    yield session
    session.stop()


def _cli_assess(path: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, "assess", str(path), "--format", "ndjson", "-o", str(out), "--as-of", str(AS_OF), "--quiet"],
        capture_output=True,
        text=True,
    )


def _run_document(path: Path) -> dict:
    found = json.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in found.items() if k not in TIMES}


def _part_lines(folder: Path) -> list[str]:
    return [line for part in sorted(folder.glob("part-*")) for line in part.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def export(kb, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    generator = FhirCaseGenerator(kb, seed=16, as_of=AS_OF)
    examples = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((EXAMPLES / "fhir").glob("*.json"))
        if not p.name.endswith(".expected.json")
    ]
    write_bulk([*(generator.bundle(i) for i in range(PATIENTS)), *examples], folder, 2, compress=True)
    (folder / "Extra.ndjson").write_text("\n".join(BAD_LINES) + "\n", encoding="utf-8")
    (folder / "Medication.ndjson").write_text(_medication("2222") + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def runs(spark, export, tmp_path_factory) -> tuple[dict, Path, Path, subprocess.CompletedProcess]:
    """The export through ``spark_assess`` and through ``lbp-imaging assess``."""
    work = tmp_path_factory.mktemp("runs")
    summary = spark_assess(export, work / "spark", as_of=AS_OF)
    done = _cli_assess(export, work / "cli.ndjson")
    return summary, work / "spark", work, done


def test_an_export_gives_the_answers_of_assess_line_for_line(runs):
    summary, spark_out, cli_out, done = runs
    expected = (cli_out / "cli.ndjson").read_text(encoding="utf-8").splitlines()
    assert len(expected) >= PATIENTS + 20
    # The partitions hold consecutive patient ids: the part files in order are the
    # command's output in its order, byte for byte.
    assert _part_lines(spark_out / "results") == expected
    assert summary["exitCode"] == done.returncode == 1  # the bad lines are input errors
    assert summary["summary"]["cases"] == len(expected)


def test_the_run_document_is_the_one_assess_writes(runs):
    summary, spark_out, cli_out, _ = runs
    found, expected = _run_document(spark_out / "run.json"), _run_document(cli_out / "cli.run.json")
    assert found == expected
    assert list(found["statements"]) == list(expected["statements"])  # first-cited order too
    errors = [e["message"] for e in found["inputErrors"]]
    assert len(errors) == 4 and any("Patient/nobody" in e for e in errors), errors
    assert any("Practitioner (1)" in w["message"] for w in found["inputWarnings"])
    assert summary["messages"][: len(errors)] == [
        f"{e['path']}: {e['message']}" for e in found["inputErrors"]
    ]


def test_each_patient_is_assessed_with_its_own_resources_and_the_medications_they_name(runs):
    _, spark_out, _, _ = runs
    results = {
        json.loads(line)["case"].rsplit("/", 1)[-1]: json.loads(line)
        for line in _part_lines(spark_out / "results")
    }
    said = " ".join(results["p3"]["warnings"])
    assert "2222" in said and "1111" not in said  # the later file's Medication of that id


def test_the_parquet_table_holds_a_row_per_case_with_its_json(spark, runs):
    _, spark_out, _, _ = runs
    lines = {json.loads(line)["case"]: line for line in _part_lines(spark_out / "results")}
    rows = spark.read.parquet((spark_out / "results.parquet").as_uri()).collect()
    assert len(rows) == len(lines)
    for row in rows:
        result = json.loads(row.result)
        assert lines[row.case] == row.result
        assert (row.source, row.status) == (result["source"], result["status"])
        rec = result.get("recommendation") or {}
        assert row.outcome == (result.get("outcome") or {}).get("iri")
        assert row.procedures == [
            p["iri"] for p in [rec.get("procedure"), *rec.get("alsoRecommended", [])] if p
        ]
        assert row.urgency == (rec.get("urgency") or {}).get("iri")
        assert row.selected_criteria == [c["iri"] for c in result.get("criteria", []) if c["selected"]]
    assert {row.outcome for row in rows} - {None}  # outcomes were read, not all empty


@pytest.fixture(scope="module")
def case_files(kb, tmp_path_factory) -> Path:
    """N-Triples of generated cases in two files (one case in both), a file with a line
    that does not parse, two example Turtle cases and a file with no case."""
    folder = tmp_path_factory.mktemp("cases")
    generator = CaseGenerator(kb, seed=16)
    (folder / "a.nt").write_text(generator.ntriples(30), encoding="utf-8")
    (folder / "b.nt").write_text(generator.ntriples(30, start=29), encoding="utf-8")
    (folder / "c.nt").write_text('<https://example.org/x> <https://example.org/p> "open .\n', "utf-8")
    (folder / "none.nt").write_text('<https://example.org/y> <https://example.org/p> "1" .\n', "utf-8")
    for name in ("01-cauda-equina-urinary-saddle.ttl", "05-known-cancer.ttl"):
        (folder / name).write_bytes((EXAMPLES / "cases" / name).read_bytes())
    return folder


def test_case_files_give_the_answers_of_assess_through_the_command(spark, case_files, tmp_path, capsys):
    """The command in this process, so that it runs in the module's Spark session."""
    command = [str(case_files), str(tmp_path / "spark"), "--as-of", str(AS_OF)]
    code = get_command(app).main(["spark-assess", *command], standalone_mode=False)
    said = capsys.readouterr().err
    done = _cli_assess(case_files, tmp_path / "cli.ndjson")
    expected = (tmp_path / "cli.ndjson").read_text(encoding="utf-8").splitlines()
    assert sorted(_part_lines(tmp_path / "spark" / "results")) == sorted(expected)
    assert len(expected) == 2 * 30 - 2 + 2  # the case in both files is not assessed
    found = _run_document(tmp_path / "spark" / "run.json")
    assert found == _run_document(tmp_path / "cli.run.json")
    assert [e["path"].rsplit("/", 1)[-1] for e in found["inputErrors"]] == ["a.nt", "b.nt", "c.nt"]
    assert code == done.returncode == 1
    assert said.splitlines()[:-2] == done.stderr.splitlines()  # the same warnings and errors
    assert "start-up (knowledge base, Spark session)" in said and "Traceback" not in said


def test_blank_nodes_assess_would_rename_are_refused(spark, tmp_path):
    for name in ("a.nt", "b.nt"):
        (tmp_path / name).write_text('_:b <https://example.org/p> "1" .\n', encoding="utf-8")
    with pytest.raises(SparkAssessError, match=r"blank node _:b is a subject in .*a\.nt, .*b\.nt"):
        spark_assess(tmp_path, tmp_path / "out", as_of=AS_OF)


def test_the_command_needs_the_extra_and_an_input(tmp_path):
    hidden = "import sys; sys.modules['pyspark'] = None; from reasoner.cli import app; app()"
    done = subprocess.run(
        [sys.executable, "-c", hidden, "spark-assess", str(tmp_path), str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "pip install '.[spark]'" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(
        [*CLI, "spark-assess", str(tmp_path / "missing"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stderr.strip()) == (
        2,
        f"lbp-imaging: {tmp_path / 'missing'}: no such file or directory",
    )


def test_a_failed_spark_job_is_told_in_one_line():
    said = (
        "An error occurred while calling o91.collectAndServe.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 0.0 failed\n"
        "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
        '  File "/srv/pyspark/worker.py", line 2024, in main\n'
        "    func, profiler, deserializer, serializer = read_command(pickleSer, infile)\n"
        "                                               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        '  File "/srv/reasoner/knowledge.py", line 16, in <module>\n'
        "ModuleNotFoundError: No module named 'rdflib'\n"
        "\n"
        "\tat org.apache.spark.api.python.BasePythonRunner.handlePythonException(PythonRunner.scala:581)\n"
    )
    assert spark_failure(said) == "ModuleNotFoundError: No module named 'rdflib'"
    assert spark_failure("Java gateway process exited.\n\tat x") == "Java gateway process exited."
