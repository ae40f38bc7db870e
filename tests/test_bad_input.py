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

from reasoner.pipeline.assess import AssessmentRun
from reasoner.pipeline.explain import CaseResult

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


EMPTY_FILES = {
    "empty.ttl": b"",
    "whitespace.ttl": b" \n\t\n",
    "prefixes-only.ttl": (PREFIXES + "# no case here\n").encode(),
    "bom-only.ttl": b"\xef\xbb\xbf",
    "empty.nt": b"",
    "whitespace.jsonld": b"\n  \n",
    "empty.json": b"",
    "null.json": b"null",
}


@pytest.mark.parametrize("name", list(EMPTY_FILES))
def test_an_empty_file_is_a_warning_not_an_error(assessor, good, bad_dir, name):
    """A file that holds no statements is a file with no case: warned of, and the run's exit
    code is the other cases' (README, Cases)."""
    path = bad_dir / name
    path.write_bytes(EMPTY_FILES[name])
    run = assessor.assess([path, good])
    assert run.input_errors == []
    (warning,) = run.input_warnings
    assert str(warning) == f"{path}: no patient case in this file: the file holds no statements"
    assert run.exit_code == 0
    assert_good_case_assessed(run, good)


def test_streamed_empty_file_is_an_input_warning(assessor, good, bad_dir):
    path = bad_dir / "empty.ttl"
    path.write_bytes(b"")
    doc = _streamed(assessor, [path, good])
    assert_good_case_in_json(json.dumps(doc))
    assert doc["inputErrors"] == []
    assert doc["inputWarnings"] == [
        {
            "path": str(path),
            "cases": [],
            "message": "no patient case in this file: the file holds no statements",
        }
    ]


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
    assert sorted(Path(e.path).name for e in run.input_errors) == ["missing"]
    assert [Path(w.path).name for w in run.input_warnings if "holds no statements" in w.message] == [
        "empty.ttl"
    ]
    assert_good_case_assessed(run, good)


# -- files no parser should see as they are (each fails alone) ---------------------------
FHIR_EXAMPLE = ROOT / "examples" / "fhir" / "01-cauda-equina-urinary-saddle.json"
TURTLE_EXAMPLE = ROOT / "examples" / "cases" / "05-known-cancer.ttl"
HUGE = 16 * 1024 * 1024 + 100
INTERNALS = (
    "Traceback",
    "set_int_max_str_digits",
    "LoadDocumentCallback",
    "maximal size",
    "Parser error at",
    "<class '",
    "codec can't decode",
    "RecursionError",
)


def _bundle(change=None) -> bytes:
    doc = json.loads(FHIR_EXAMPLE.read_text(encoding="utf-8"))
    if change:
        change(doc)
    return json.dumps(doc, indent=1).encode()


def _quoted_triples(depth: int) -> bytes:
    inner = "<https://example.org/case/q> <https://example.org/p> 1"
    return f"{'<< ' * depth}{inner}{' >> <https://example.org/p> 1' * depth} .\n".encode()


UNREADABLE = {
    # name: (file name, content, what the message says)
    "JSON-LD nested 100,000 deep": (
        "deep.jsonld",
        lambda: b"[" * 100_000 + b"]" * 100_000,
        ["line 1, column 101: JSON arrays and objects nested more than 100 levels deep"],
    ),
    "JSON objects nested 5,000 deep": (
        "deep-objects.json",
        lambda: b'{"a":' * 5000 + b"1" + b"}" * 5000,
        ["line 1, column 501: JSON arrays and objects nested more than 100 levels deep"],
    ),
    "Turtle quoted triples nested 30,000 deep": (
        "deep-quoted.ttl",
        lambda: _quoted_triples(30_000),
        ["line 1, column 301: quoted triples (<< … >>) nested more than 100 levels deep"],
    ),
    "a misspelt resourceType": (
        "misspelt.json",
        lambda: _bundle(lambda d: d["entry"][1]["resource"].update(resourceType="Condtion")),
        [
            "Bundle.entry[1].resource.resourceType: 'Condtion' is not a FHIR R4 resource type",
            "did you mean Condition?",
        ],
    ),
    "a resourceType that is not a string": (
        "type-number.json",
        lambda: _bundle(lambda d: d["entry"][1]["resource"].update(resourceType=5)),
        ["Bundle.entry[1].resource.resourceType: must be a string, not a number"],
    ),
    "an entry that is not an object": (
        "entry-number.json",
        lambda: _bundle(lambda d: d["entry"].__setitem__(1, 7)),
        ["Bundle.entry[1]: must be a JSON object, not a number"],
    ),
    "a resource that is not an object": (
        "resource-string.json",
        lambda: _bundle(lambda d: d["entry"][1].update(resource="Condition")),
        ["Bundle.entry[1].resource: must be a FHIR resource (a JSON object), not a string"],
    ),
    "a Bundle without entry": (
        "no-entry.json",
        lambda: _bundle(lambda d: d.pop("entry")),
        ["no Patient in the bundle"],
    ),
    "entry that is not a list": (
        "entry-object.json",
        lambda: _bundle(lambda d: d.update(entry={"resource": {}})),
        ["Bundle.entry: must be a JSON array of entries, not a JSON object"],
    ),
    "a FHIR value of the wrong JSON type": (
        "wrong-type.json",
        lambda: _bundle(lambda d: d["entry"][0]["resource"].update(gender=["female"])),
        ["invalid FHIR R4: gender: must be a string, not ['female']"],
    ),
    "a Turtle literal over 16 MB": (
        "huge.ttl",
        lambda: (PREFIXES + '<https://example.org/case/huge> lbp:note "').encode() + b"x" * HUGE + b'" .\n',
        ["a single term (an IRI or a literal) is longer than 16 MiB"],
    ),
    "a JSON-LD literal over 16 MB": (
        "huge.jsonld",
        lambda: b'{"@id": "https://example.org/case/huge", "https://example.org/p": "' + b"x" * HUGE + b'"}',
        ["a single term (an IRI or a literal) is longer than 16 MiB"],
    ),
    "a number of 5,000 digits in JSON-LD": (
        "digits.jsonld",
        lambda: b'{"@context": "https://w3id.org/lbp-imaging/context.jsonld",\n "age": ' + b"9" * 5000 + b"}",
        ["line 2, column 9: a number of 5,000 digits: at most 4,300 are read"],
    ),
    "a number of 5,000 digits in FHIR": (
        "digits.json",
        lambda: _bundle(lambda d: d.update(total=123456789)).replace(b"123456789", b"9" * 5000),
        ["a number of 5,000 digits"],
    ),
    "a number too large for a float": (
        "infinite.jsonld",
        lambda: b'{"age": 1e999}',
        ["line 1, column 9: the number 1e999 is too large to be read"],
    ),
    "NaN": ("nan.json", lambda: b'{"age": NaN}', ["line 1, column 9: NaN is not a JSON number"]),
    "invalid UTF-8": (
        "latin-1.ttl",
        lambda: (PREFIXES + '<https://example.org/case/l> lbp:note "caf').encode() + b'\xe9" .\n',
        ["line 3, column 43: byte 0xE9 is not UTF-8"],
    ),
    "a UTF-16 Turtle file": (
        "utf16.ttl",
        lambda: TURTLE_EXAMPLE.read_text(encoding="utf-8").encode("utf-16"),
        ["the file is UTF-16 text", "save it as UTF-8"],
    ),
    "a UTF-16 FHIR Bundle": (
        "utf16.json",
        lambda: FHIR_EXAMPLE.read_text(encoding="utf-8").encode("utf-16"),
        ["the file is UTF-16 text"],
    ),
    "a binary file": (
        "binary.nt",
        lambda: bytes(range(256)) * 4,
        ["line 2, column 118: byte 0x80 is not UTF-8", "NUL bytes"],
    ),
    "a remote JSON-LD context": (
        "remote.jsonld",
        lambda: b'{"@context": "https://example.org/context.jsonld", "@id": "https://example.org/case/r"}',
        ["the JSON-LD @context 'https://example.org/context.jsonld' is not read: contexts are not fetched"],
    ),
}


def _streamed(assessor, paths: list[Path]) -> dict:
    """The JSON document ``assess --format json`` writes (the streamed path), in-process."""
    import io

    from reasoner.pipeline import cases as case_input
    from reasoner.pipeline import stream

    out = io.BytesIO()
    stream.assess_to(assessor, case_input.load_grouped(paths, assessor.inputs), "json", out, {})
    return json.loads(out.getvalue())


@pytest.mark.parametrize("kind", list(UNREADABLE))
def test_an_unreadable_file_fails_alone_saying_why_where(assessor, good, bad_dir, kind):
    """Each such file is an input error naming the file, with what is wrong and where in
    the file (when the parser says), and never a library's internals; the good file of
    the batch is assessed, in both the streamed (JSON, CSV) and the whole-run paths."""
    name, content, fragments = UNREADABLE[kind]
    path = bad_dir / name
    path.write_bytes(content())
    run = assessor.assess([path, good])
    assert_input_error(run, path, *fragments)
    assert not any(bit in run.input_errors[0].message for bit in INTERNALS), run.input_errors[0].message
    assert_good_case_assessed(run, good)
    assert run.exit_code == 1
    doc = _streamed(assessor, [path, good])
    assert [e["path"] for e in doc["inputErrors"]] == [str(path)]
    assert all(f in doc["inputErrors"][0]["message"] for f in fragments), doc["inputErrors"]
    assert_good_case_in_json(json.dumps(doc))


def test_a_syntax_error_on_the_last_line_loses_the_files_cases_and_names_the_line(assessor, good, bad_dir):
    """The decision (README, Cases): a Turtle file that does not parse yields none of its
    cases, because a case read before the error could lack a statement written after it;
    the error gives the line and column of the file."""
    path = bad_dir / "last-line.ttl"
    text = TURTLE_EXAMPLE.read_text(encoding="utf-8")
    lines = text.count("\n")
    path.write_text(text + "<https://example.org/case/05-known-cancer> lbp:ageInYears ;;\n", encoding="utf-8")
    run = assessor.assess([path, good])
    assert_input_error(run, path, f"cannot be parsed: line {lines + 1}, column 59:")
    assert [r.case for r in run.results] == [GOOD_CASE]


@pytest.mark.parametrize(
    ("name", "text", "refused", "shown"),
    [
        (
            "javascript.ttl",
            PREFIXES + "<javascript:alert(1)> a lbp:PatientCase ; lbp:ageInYears 40 .\n",
            "javascript:alert(1)",
            "case <javascript:alert(1)> has the scheme javascript:",
        ),
        (
            "data.nt",
            "<data:text/html,x> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "
            "<https://w3id.org/lbp-imaging/PatientCase> .\n",
            "data:text/html,x",
            "case <data:text/html,x> has the scheme data:",
        ),
        (
            "file.jsonld",
            '{"@context": "https://w3id.org/lbp-imaging/context.jsonld", "id": "file:///etc/passwd", '
            '"type": "PatientCase", "age": 40}',
            "file:///etc/passwd",
            "case <file:///etc/passwd> has the scheme file:",
        ),
        (
            "relative.ttl",
            PREFIXES + "<case-7> a lbp:PatientCase ; lbp:ageInYears 40 .\n",
            None,
            "case <case-7> is a relative IRI",
        ),
    ],
)
def test_a_case_iri_of_another_scheme_is_refused_and_the_rest_goes_on(
    assessor, good, bad_dir, name, text, refused, shown
):
    """Only http:, https: and urn: IRIs name cases (README, Cases): any other case is an
    error naming it and the file, and the file's other cases, and the batch, go on."""
    path = bad_dir / name
    path.write_text(text, encoding="utf-8")
    other = bad_dir / "urn-case.ttl"
    other.write_text(
        PREFIXES
        + "<urn:uuid:0b5c2e4e-8f7a-4c0e-9f51-4d7d3c1b2a10> a lbp:PatientCase ; lbp:ageInYears 40 .\n",
        encoding="utf-8",
    )
    for run_results, errors in (
        (
            (run := assessor.assess([path, other, good])).results,
            [(e.path, e.message) for e in run.input_errors],
        ),
        (
            (doc := _streamed(assessor, [path, other, good]))["results"],
            [(e["path"], e["message"]) for e in doc["inputErrors"]],
        ),
    ):
        cases = {r.case if hasattr(r, "case") else r["case"] for r in run_results}
        assert cases == {GOOD_CASE, "urn:uuid:0b5c2e4e-8f7a-4c0e-9f51-4d7d3c1b2a10"}
        assert refused is None or refused not in cases
        ((where, message),) = errors
        assert where == str(path) and message.startswith(shown) and message.endswith("the case is not read")
        assert str(bad_dir) not in message


def test_a_refused_case_iri_stays_refused_when_blank_nodes_are_relabelled(assessor, good, bad_dir):
    """A second file whose blank node labels clash with the first's is read again with them
    renamed; its refused case is still refused."""
    first = bad_dir / "first.ttl"
    first.write_text(PREFIXES + "_:b0 lbp:ageInYears 40 .\n", encoding="utf-8")
    second = bad_dir / "second.ttl"
    second.write_text(
        PREFIXES
        + "_:b0 lbp:ageInYears 41 .\n<javascript:alert(1)> a lbp:PatientCase ; lbp:ageInYears 40 .\n",
        encoding="utf-8",
    )
    doc = _streamed(assessor, [first, second, good])
    assert "javascript:alert(1)" not in {r["case"] for r in doc["results"]}
    assert [e["path"] for e in doc["inputErrors"]] == [str(second)]


def test_a_fhir_patient_whose_full_url_is_no_http_iri_is_refused(assessor, good, bad_dir):
    path = bad_dir / "javascript.json"
    path.write_bytes(_bundle(lambda d: d["entry"][0].update(fullUrl="javascript:alert(1)")))
    run = assessor.assess([path, good])
    assert_input_error(run, path, "fullUrl: case <javascript:alert(1)> has the scheme javascript:")
    assert_good_case_assessed(run, good)


def test_the_json_of_an_invalid_case_has_warnings_like_every_result(assessor, good, bad_dir):
    path = bad_dir / "invalid-with-a-typo.ttl"
    path.write_text(case_ttl("typo", "lbp:ageInYears 130 ; lbp:hasFindng lbp:Fever"), encoding="utf-8")
    doc = _streamed(assessor, [path, good])
    (invalid,) = [r for r in doc["results"] if r["status"] == "invalid"]
    assert list(invalid) == ["case", "source", "engine", "status", "errors", "warnings", "disclaimer"]
    assert invalid["warnings"] == [
        f"{path}: the property lbp:hasFindng is not defined by the ontology (did you mean lbp:hasFinding?)"
    ]


def test_cli_survives_every_unreadable_file_in_one_batch(cli, good, bad_dir):
    """The command line on all of them at once, beside the good case and an empty file:
    exit 1, each file named on standard error and in the JSON, no traceback; the empty
    file is a warning."""
    empty = bad_dir / "empty.ttl"
    empty.write_bytes(b"")
    paths = []
    for kind, (name, content, _) in UNREADABLE.items():
        if "16 MB" in kind:
            continue  # the two huge files are read above; here they would only cost time
        (path := bad_dir / name).write_bytes(content())
        paths.append(path)
    proc = cli("assess", *paths, empty, good, "--format", "json")
    assert proc.returncode == 1
    assert not any(bit in proc.stderr for bit in INTERNALS), proc.stderr
    doc = assert_good_case_in_json(proc.stdout)
    assert {e["path"] for e in doc["inputErrors"]} == set(map(str, paths))
    for path in paths:
        assert f"lbp-imaging: {path}: " in proc.stderr
    assert (
        f"lbp-imaging: warning: {empty}: no patient case in this file: the file holds no statements"
        in proc.stderr
    )


@pytest.mark.parametrize("command", [["validate"], ["query", "open-criteria", "--format", "csv"]])
def test_validate_and_query_data_report_an_unreadable_file_and_go_on(cli, good, bad_dir, command):
    """The other commands that read cases share the readers: the file is named with why,
    the good case is read, no traceback."""
    deep = bad_dir / "deep.jsonld"
    deep.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    typo = bad_dir / "misspelt.json"
    typo.write_bytes(_bundle(lambda d: d["entry"][1]["resource"].update(resourceType="Condtion")))
    files = [deep, typo, good]
    args = (
        [*command, *files]
        if command == ["validate"]
        else [*command, *(x for f in files for x in ("--data", f))]
    )
    proc = cli(*args)
    assert proc.returncode == 1, proc.stderr
    said = proc.stdout + proc.stderr
    assert f"{deep}: cannot be parsed: line 1, column 101" in said
    assert f"{typo}: FHIR Bundle not read: Bundle.entry[1].resource.resourceType" in said
    assert not any(bit in said for bit in INTERNALS)
    if command == ["validate"]:
        assert "1 case(s)" in proc.stderr
    else:
        assert GOOD_CASE in proc.stdout


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
