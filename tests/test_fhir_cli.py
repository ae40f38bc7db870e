"""FHIR Bundles through the command line, as a user runs it: `assess` reads a directory of
bundles beside other case files, reports unknown codings as warnings, skips a bad bundle
with a message naming it, and writes FHIR output that validates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from outcomes import local, observed

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "fhir"
BAD = ROOT / "tests" / "data" / "fhir"
LBP = "https://w3id.org/lbp-imaging/"
EXPECTED = {
    p.name.removesuffix(".expected.json"): json.loads(p.read_text(encoding="utf-8"))
    for p in sorted(EXAMPLES.glob("*.expected.json"))
}
AS_OF = {e["asOf"] for e in EXPECTED.values()}.pop()


@pytest.fixture(scope="module")
def examples_json(cli) -> tuple[dict, str, int]:
    proc = cli("assess", EXAMPLES, "--format", "json", "--as-of", AS_OF)
    return json.loads(proc.stdout), proc.stderr, proc.returncode


def test_every_example_bundle_read_from_its_file_gives_its_expected_outcome(examples_json):
    doc, _, code = examples_json
    assert code == 0 and doc["inputErrors"] == []
    by_case = {r["case"]: r for r in doc["results"]}
    assert len(by_case) == len(EXPECTED)
    for name, expected in EXPECTED.items():
        result = by_case[expected["case"]]
        assert result["status"] == "assessed", name
        assert result["source"] == str(EXAMPLES / f"{name}.json")
        seen = observed(result)
        assert seen == {k: expected[k] for k in seen}, (name, expected["note"])


def test_unknown_codings_are_warnings_on_stderr_and_in_the_case_result(examples_json):
    doc, stderr, _ = examples_json
    warned = [line for line in stderr.splitlines() if line.startswith("lbp-imaging: warning: ")]
    assert any("no mapping for http://snomed.info/sct|441509002" in line for line in warned)
    (result,) = [r for r in doc["results"] if r["source"].endswith("17-unknown-code-pacemaker.json")]
    assert any("441509002" in w for w in result["warnings"])


def test_a_bad_bundle_is_skipped_with_a_message_and_the_others_are_assessed(cli, tmp_path):
    shutil.copy(EXAMPLES / "01-cauda-equina-urinary-saddle.json", tmp_path)
    shutil.copy(BAD / "two-patients.json", tmp_path)
    proc = cli("assess", tmp_path, "--format", "json", "--as-of", AS_OF)
    assert proc.returncode == 1
    assert f"{tmp_path / 'two-patients.json'}: FHIR Bundle not read: 2 Patients in the bundle" in proc.stderr
    doc = json.loads(proc.stdout)
    assert [r["status"] for r in doc["results"]] == ["assessed"]
    assert doc["inputErrors"][0]["path"] == str(tmp_path / "two-patients.json")


def test_streamed_csv_reads_bundles_too(cli):
    proc = cli("assess", EXAMPLES, "--format", "csv", "--as-of", AS_OF, "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == len(EXPECTED) + 1


@pytest.fixture(scope="module")
def examples_fhir(cli) -> dict:
    proc = cli("assess", EXAMPLES, "--format", "fhir", "--as-of", AS_OF)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_fhir_output_is_a_valid_bundle_with_one_guidance_response_per_case(examples_fhir):
    Bundle.model_validate(examples_fhir)
    kinds = [e["resource"]["resourceType"] for e in examples_fhir["entry"]]
    assert kinds.count("GuidanceResponse") == len(EXPECTED)
    assert "screeningComplete" not in json.dumps(examples_fhir)


def test_fhir_status_and_data_requirements_say_what_the_json_result_says(examples_fhir, examples_json):
    """Per case, the GuidanceResponse status follows the outcome and the questions, and there
    is one data requirement per question, filtered on the codes of the fact it asks about."""
    by_case = {r["case"]: r for r in examples_json[0]["results"]}
    statuses = set()
    for entry in examples_fhir["entry"]:
        guidance = entry["resource"]
        if guidance["resourceType"] != "GuidanceResponse":
            continue
        result = by_case[guidance["identifier"][0]["value"]]
        questions = result["questions"]
        expected = (
            "data-required"
            if local(result["outcome"]["iri"]) == "OutcomeMoreInformationNeeded"
            else "data-requested"
            if questions
            else "success"
        )
        assert guidance["status"] == expected, result["case"]
        statuses.add(expected)
        requirements = guidance.get("dataRequirement", [])
        assert len(requirements) == len(questions)
        for question, requirement in zip(questions, requirements, strict=True):
            filtered = {(c["system"], c["code"]) for c in requirement["codeFilter"][0]["code"]}
            read = {
                (c["system"], c["code"]) for c in question["about"]["codes"] if c["match"] != "broadMatch"
            }
            assert read <= filtered
    assert statuses == {"data-required", "data-requested", "success"}


def test_the_reference_date_changes_the_age_read_from_birth_date(cli):
    """Example 18's patient turns 50 on the reference date; a year later they are 51 and
    the weight-loss red flag (over 50) fires a criterion."""
    bundle = EXAMPLES / "18-weight-loss-birthday-50.json"
    now = json.loads(cli("assess", bundle, "--format", "json", "--as-of", AS_OF).stdout)["results"][0]
    later_date = f"{int(AS_OF[:4]) + 1}{AS_OF[4:]}"
    later = json.loads(cli("assess", bundle, "--format", "json", "--as-of", later_date).stdout)["results"][0]
    age = f"{LBP}ageInYears"
    assert [f["value"]["value"] for f in now["facts"] if f["property"]["iri"] == age] == [50]
    assert [f["value"]["value"] for f in later["facts"] if f["property"]["iri"] == age] == [51]
    assert local(now["outcome"]["iri"]) != local(later["outcome"]["iri"])


def test_an_as_of_that_is_not_a_date_is_a_usage_error(cli):
    proc = cli("assess", EXAMPLES, "--as-of", "yesterday")
    assert proc.returncode == 2
    assert "--as-of 'yesterday' is not a date" in proc.stderr
