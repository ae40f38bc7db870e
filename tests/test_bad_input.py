"""Bad input never stops a batch: each kind of bad file is reported with a message that
names the file (and the case and field where there is one), the good case beside it is
still assessed, and the run exits 1. A broken knowledge base exits 2.

Each test runs a batch of the bad input plus a copy of the valid cauda equina case, most
through the API (``Assessor.assess``), some through the command line.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from reasoner.assess import AssessmentRun
from reasoner.explain import CaseResult

ROOT = Path(__file__).resolve().parent.parent
GOOD_SOURCE = ROOT / "tests" / "data" / "cases" / "valid" / "cauda-equina.ttl"
GOOD_CASE = "https://example.org/case/ces-1"
GOOD_PROCEDURE = "MRI lumbar spine without IV contrast"
GOOD_URGENCY = "emergent"

PREFIXES = """@prefix lbp: <https://w3id.org/lbp-imaging/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""


def case_ttl(name: str, body: str) -> str:
    return f"{PREFIXES}\n<https://example.org/case/{name}> a lbp:PatientCase ;\n    {body} .\n"


@dataclass(frozen=True)
class BadCase:
    """A file holding one invalid case, and what the report must say about it."""

    file: str
    text: str
    case: str
    field: str
    message: str


BAD_CASES = {
    "age as an ill-formed integer": BadCase(
        "age-fifty.ttl",
        case_ttl("age-fifty", 'lbp:ageInYears "fifty"^^xsd:integer'),
        "https://example.org/case/age-fifty",
        "age in years",
        "Age must be a whole number of years between 0 and 120.",
    ),
    "age as a decimal": BadCase(
        "age-decimal.ttl",
        case_ttl("age-decimal", "lbp:ageInYears 51.5"),
        "https://example.org/case/age-decimal",
        "age in years",
        "Age must be a whole number of years between 0 and 120.",
    ),
    "age out of range": BadCase(
        "age-130.ttl",
        case_ttl("age-130", "lbp:ageInYears 130"),
        "https://example.org/case/age-130",
        "age in years",
        "Age must be a whole number of years between 0 and 120.",
    ),
    "negative ESR": BadCase(
        "negative-esr.ttl",
        case_ttl("negative-esr", "lbp:ageInYears 40 ; lbp:esrMmPerHour -5.0"),
        "https://example.org/case/negative-esr",
        "ESR (mm/h)",
        "ESR (erythrocyte sedimentation rate) must be a whole or decimal number in mm/h, zero or more",
    ),
    "unknown finding": BadCase(
        "unknown-finding.ttl",
        case_ttl("unknown-finding", "lbp:ageInYears 40 ; lbp:hasFinding lbp:NotAFinding"),
        "https://example.org/case/unknown-finding",
        "has finding",
        "A finding recorded as present is not a known clinical finding",
    ),
    "finding both present and absent": BadCase(
        "present-and-absent.ttl",
        case_ttl(
            "present-and-absent",
            "lbp:ageInYears 40 ; lbp:hasFinding lbp:Fever ; lbp:hasAbsentFinding lbp:Fever",
        ),
        "https://example.org/case/present-and-absent",
        "has finding",
        "A finding is recorded both as present and as absent",
    ),
}


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good" / GOOD_SOURCE.name
    path.parent.mkdir()
    shutil.copy(GOOD_SOURCE, path)
    return path


@pytest.fixture
def bad_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bad"
    path.mkdir()
    return path


def assert_good_case_assessed(run: AssessmentRun, good: Path) -> CaseResult:
    (result,) = [r for r in run.results if r.case == GOOD_CASE]
    assert result.status == "assessed"
    assert result.source == str(good)
    assert result.outcome["label"] == "imaging indicated"
    assert result.recommendation["procedure"]["label"] == GOOD_PROCEDURE
    assert result.recommendation["urgency"]["label"] == GOOD_URGENCY
    return result


def assert_good_case_in_json(stdout: str) -> dict:
    doc = json.loads(stdout)
    (result,) = [r for r in doc["results"] if r["case"] == GOOD_CASE]
    assert result["status"] == "assessed"
    assert result["recommendation"]["procedure"]["label"] == GOOD_PROCEDURE
    assert result["recommendation"]["urgency"]["label"] == GOOD_URGENCY
    return doc


def assert_input_error(run: AssessmentRun, path: Path, *fragments: str) -> None:
    (error,) = run.input_errors
    assert error.path == str(path)
    assert str(path) in str(error)
    for fragment in fragments:
        assert fragment in error.message, error.message


# -- invalid cases (API) ----------------------------------------------------------------
@pytest.mark.parametrize("kind", list(BAD_CASES))
def test_invalid_case_is_reported_and_the_good_case_still_assessed(kind, assessor, good, bad_dir):
    bad = BAD_CASES[kind]
    path = bad_dir / bad.file
    path.write_text(bad.text, encoding="utf-8")
    run = assessor.assess([path, good])
    assert run.exit_code == 1
    assert run.input_errors == []
    (invalid,) = run.invalid
    assert invalid.case == bad.case
    assert invalid.source == str(path)
    assert invalid.errors
    for error in invalid.errors:
        assert error["field"] == bad.field
        assert bad.message in error["message"]
    assert_good_case_assessed(run, good)
    assert len(run.results) == 2


def test_present_and_absent_finding_names_the_finding(assessor, good, bad_dir):
    bad = BAD_CASES["finding both present and absent"]
    path = bad_dir / bad.file
    path.write_text(bad.text, encoding="utf-8")
    (invalid,) = assessor.assess([path, good]).invalid
    # the offending value, written as an N-Triples term
    assert [e["value"] for e in invalid.errors] == ["<https://w3id.org/lbp-imaging/Fever>"]


# -- unreadable input (API) -------------------------------------------------------------
def test_malformed_turtle(assessor, good, bad_dir):
    path = bad_dir / "malformed.ttl"
    path.write_text(
        PREFIXES + "<https://example.org/case/broken> a lbp:PatientCase ;\n"
        "    lbp:ageInYears 40\n"
        "    lbp:hasFinding lbp:Fever .\n",
        encoding="utf-8",
    )
    run = assessor.assess([path, good])
    assert run.exit_code == 1
    assert_input_error(run, path, "cannot be parsed", "line 5")
    assert_good_case_assessed(run, good)
    assert len(run.results) == 1


NT_GOOD = (
    "<https://example.org/case/nt-good> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "
    "<https://w3id.org/lbp-imaging/PatientCase> .\n"
    "<https://example.org/case/nt-good> <https://w3id.org/lbp-imaging/ageInYears> "
    '"40"^^<http://www.w3.org/2001/XMLSchema#integer> .\n'
)
NT_BROKEN_LINE = '<https://example.org/case/nt-broken> <https://w3id.org/lbp-imaging/ageInYears> "40 .'


def _malformed_nt(bad_dir: Path) -> Path:
    """An N-Triples file with one good case and one case whose second line is broken."""
    path = bad_dir / "one-line-broken.nt"
    path.write_text(
        "<https://example.org/case/nt-broken> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "
        "<https://w3id.org/lbp-imaging/PatientCase> .\n" + NT_GOOD + NT_BROKEN_LINE + "\n",
        encoding="utf-8",
    )
    return path


def test_malformed_ntriples_line_loses_only_its_case(assessor, good, bad_dir):
    path = _malformed_nt(bad_dir)
    run = assessor.assess([path, good])
    assert run.exit_code == 1
    assert_input_error(run, path, "case https://example.org/case/nt-broken", NT_BROKEN_LINE, "skipped")
    assert "https://example.org/case/nt-good" in {r.case for r in run.results if r.status == "assessed"}
    assert "https://example.org/case/nt-broken" not in {r.case for r in run.results}
    assert_good_case_assessed(run, good)


def test_empty_file(assessor, good, bad_dir):
    path = bad_dir / "empty.ttl"
    path.write_text("", encoding="utf-8")
    run = assessor.assess([path, good])
    assert run.exit_code == 1
    assert_input_error(run, path, "empty")
    assert_good_case_assessed(run, good)


def test_file_with_only_prefixes_is_empty(assessor, good, bad_dir):
    path = bad_dir / "prefixes-only.ttl"
    path.write_text(PREFIXES + "# no case here\n", encoding="utf-8")
    run = assessor.assess([path, good])
    assert run.exit_code == 1
    assert_input_error(run, path, "empty")
    assert_good_case_assessed(run, good)


def test_empty_directory(assessor, good, bad_dir):
    run = assessor.assess([bad_dir, good])
    assert run.exit_code == 1
    assert_input_error(run, bad_dir, "no case files")
    assert_good_case_assessed(run, good)


def test_nonexistent_path(assessor, good, tmp_path):
    path = tmp_path / "no-such-case.ttl"
    run = assessor.assess([path, good])
    assert run.exit_code == 1
    assert_input_error(run, path, "no such file or directory")
    assert_good_case_assessed(run, good)


def test_jsonld_with_broken_json(assessor, good, bad_dir):
    path = bad_dir / "broken.jsonld"
    path.write_text(
        '{"@context": "https://w3id.org/lbp-imaging/context.jsonld",\n'
        ' "id": "https://example.org/case/json-broken", "age": 40,\n',
        encoding="utf-8",
    )
    run = assessor.assess([path, good])
    assert run.exit_code == 1
    assert_input_error(run, path, "cannot be parsed")
    assert_good_case_assessed(run, good)


def test_valid_jsonld_beside_a_broken_one_is_assessed(assessor, good, bad_dir):
    """The published context resolves locally: a well-formed JSON-LD case is assessed."""
    ok = bad_dir / "ok.jsonld"
    ok.write_text(
        json.dumps(
            {
                "@context": "https://w3id.org/lbp-imaging/context.jsonld",
                "id": "https://example.org/case/json-ok",
                "type": "PatientCase",
                "age": 70,
                "symptomWeeks": 6.5,
                "present": ["SaddleAnaesthesia"],
            }
        ),
        encoding="utf-8",
    )
    broken = bad_dir / "broken.json"
    broken.write_text("{", encoding="utf-8")
    run = assessor.assess([ok, broken, good])
    assert run.exit_code == 1
    assert_input_error(run, broken, "cannot be parsed")
    (json_ok,) = [r for r in run.results if r.case == "https://example.org/case/json-ok"]
    assert json_ok.status == "assessed", json_ok.errors
    assert_good_case_assessed(run, good)


def test_several_bad_inputs_in_one_batch(assessor, good, bad_dir, tmp_path):
    for kind in ("age out of range", "unknown finding"):
        (bad_dir / BAD_CASES[kind].file).write_text(BAD_CASES[kind].text, encoding="utf-8")
    (bad_dir / "empty.ttl").write_text("", encoding="utf-8")
    run = assessor.assess([bad_dir, tmp_path / "missing", good])
    assert run.exit_code == 1
    assert {r.case for r in run.invalid} == {
        BAD_CASES["age out of range"].case,
        BAD_CASES["unknown finding"].case,
    }
    assert sorted(Path(e.path).name for e in run.input_errors) == ["empty.ttl", "missing"]
    assert_good_case_assessed(run, good)


# -- the command line -------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind", ["age as an ill-formed integer", "negative ESR", "finding both present and absent"]
)
def test_cli_reports_file_case_and_field_and_still_assesses_the_good_case(kind, cli, good, bad_dir):
    bad = BAD_CASES[kind]
    path = bad_dir / bad.file
    path.write_text(bad.text, encoding="utf-8")
    proc = cli("assess", path, good, "--format", "json")
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if bad.case in ln]
    assert lines, proc.stderr
    for line in lines:
        assert str(path) in line
        assert f"case {bad.case}" in line
        assert f": {bad.field}: " in line
        assert bad.message in line
    doc = assert_good_case_in_json(proc.stdout)
    (invalid,) = [r for r in doc["results"] if r["status"] == "invalid"]
    assert invalid["case"] == bad.case
    assert {e["field"] for e in invalid["errors"]} == {bad.field}
    assert doc["summary"]["invalid"] == 1


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_streamed_malformed_ntriples_line_is_reported_in_stderr_and_json(cli, good, bad_dir, workers):
    path = _malformed_nt(bad_dir)
    proc = cli("assess", path, good, "--format", "json", "--workers", workers)
    assert proc.returncode == 1
    assert f"{path}: case https://example.org/case/nt-broken:" in proc.stderr
    doc = assert_good_case_in_json(proc.stdout)
    assert "https://example.org/case/nt-good" in {r["case"] for r in doc["results"]}
    (error,) = doc["inputErrors"]
    assert error["path"] == str(path) and NT_BROKEN_LINE in error["message"]
    assert doc["summary"]["inputErrors"] == 1


def test_cli_malformed_turtle_names_the_file(cli, good, bad_dir):
    path = bad_dir / "malformed.ttl"
    path.write_text(
        PREFIXES + "<https://example.org/case/x> a lbp:PatientCase ; lbp:ageInYears\n", encoding="utf-8"
    )
    proc = cli("assess", path, good, "--format", "json")
    assert proc.returncode == 1
    assert f"{path}: cannot be parsed" in proc.stderr
    doc = assert_good_case_in_json(proc.stdout)
    assert doc["inputErrors"] == [{"path": str(path), "message": doc["inputErrors"][0]["message"]}]
    assert doc["inputErrors"][0]["message"].startswith("cannot be parsed")


def test_cli_broken_jsonld_and_missing_path(cli, good, bad_dir, tmp_path):
    broken = bad_dir / "broken.jsonld"
    broken.write_text('{"@context": [', encoding="utf-8")
    missing = tmp_path / "missing.ttl"
    proc = cli("assess", broken, missing, good, "--format", "json")
    assert proc.returncode == 1
    assert f"{broken}: cannot be parsed" in proc.stderr
    assert f"{missing}: no such file or directory" in proc.stderr
    doc = assert_good_case_in_json(proc.stdout)
    assert {e["path"] for e in doc["inputErrors"]} == {str(broken), str(missing)}


def test_cli_empty_directory(cli, good, bad_dir):
    proc = cli("assess", bad_dir, good, "--format", "json")
    assert proc.returncode == 1
    assert f"{bad_dir}: directory holds no case files" in proc.stderr
    assert_good_case_in_json(proc.stdout)


def test_cli_good_input_only_exits_0(cli, good):
    proc = cli("assess", good, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    doc = assert_good_case_in_json(proc.stdout)
    assert doc["summary"] == {"cases": 1, "assessed": 1, "invalid": 0, "inputErrors": 0}


# -- a broken knowledge base ------------------------------------------------------------
@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    for name in ("ontology", "shapes", "queries"):
        shutil.copytree(ROOT / name, root / name)
    for path in root.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)  # the source documents are read-only
    return root


def _corrupt(path: Path) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write("\nthis is <not> turtle ;;\n")


def test_cli_broken_ontology_file_exits_2_naming_the_file(cli, kb_copy, good):
    broken = kb_copy / "ontology" / "findings.ttl"
    _corrupt(broken)
    proc = cli("assess", good, "--format", "json", "--kb", kb_copy)
    assert proc.returncode == 2
    assert "knowledge base error" in proc.stderr
    assert str(broken) in proc.stderr
    assert proc.stdout == ""


def test_cli_unbroken_copy_of_the_knowledge_base_works(cli, kb_copy, good):
    proc = cli("assess", good, "--format", "json", "--kb", kb_copy)
    assert proc.returncode == 0, proc.stderr
    assert_good_case_in_json(proc.stdout)


def test_cli_broken_shapes_file_exits_2_naming_the_file(cli, kb_copy, good):
    broken = kb_copy / "shapes" / "case-shapes.ttl"
    _corrupt(broken)
    proc = cli("assess", good, "--format", "json", "--kb", kb_copy)
    assert proc.returncode == 2
    assert "knowledge base error" in proc.stderr
    assert str(broken) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_broken_named_query_exits_2_naming_the_file(cli, kb_copy, good):
    broken = kb_copy / "queries" / "no-imaging.rq"
    broken.write_text("SELECT ?case WHERE {\n", encoding="utf-8")
    proc = cli("assess", good, "--format", "json", "--kb", kb_copy)
    assert proc.returncode == 2
    assert "no-imaging.rq" in proc.stderr
    assert "Traceback" not in proc.stderr
