"""Identity is explicit: a case IRI names one patient.

The same case IRI in two input files is an error for each file (naming the case and the
files) and the case is not assessed, while the other cases go on; ``--merge-duplicates``
merges it instead and every output says so. Blank nodes are local to their file. A file
with no case, and a term of the project's namespace that the ontology does not define,
give warnings naming the file, the case and the term (with a close match), in ``assess``
(both the streamed JSON/CSV path and the others) and in ``validate``. Splitting distinct
cases across files never changes a result.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyoxigraph as ox
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import URIRef

from reasoner.knowledge import LBP
from reasoner.pipeline import cases as case_input
from reasoner.pipeline import render, stream
from reasoner.server.cases.upload import BODY_NAME, read_body
from reasoner.server.cases.workers import the_case
from reasoner.server.sparql.protocol import ProtocolError

CONTEXT = "https://w3id.org/lbp-imaging/context.jsonld"
DUP = "https://example.org/case/shared"
ONE = "https://example.org/case/only-in-first"
TWO = "https://example.org/case/only-in-second"
# Fields as the JSON-LD context names them, and the Turtle each one is written as.
TURTLE_FIELDS = {
    "age": "lbp:ageInYears",
    "symptomWeeks": "lbp:symptomDurationWeeks",
    "present": "lbp:hasFinding",
}


def turtle(cases: list[dict]) -> str:
    """Cases given as JSON-LD objects of the published context, written as Turtle."""
    out = ["@prefix lbp: <https://w3id.org/lbp-imaging/> ."]
    for case in cases:
        parts = [f"a lbp:{case['type']}"] if "type" in case else []
        for key, prop in TURTLE_FIELDS.items():
            if key == "present" and case.get(key):
                parts.append(f"{prop} " + " , ".join(f"lbp:{f}" for f in case[key]))
            elif key in case and key != "present":
                parts.append(f"{prop} {case[key]}")
        out.append(f"<{case['id']}> " + " ;\n    ".join(parts) + " .")
    return "\n".join(out) + "\n"


def write(path: Path, cases: list[dict]) -> Path:
    """Write ``cases`` in the format the file extension names (.ttl, .jsonld or .nt)."""
    if path.suffix == ".jsonld":
        path.write_text(json.dumps({"@context": CONTEXT, "cases": cases}), encoding="utf-8")
    elif path.suffix == ".nt":
        quads = ox.parse(turtle(cases), format=ox.RdfFormat.TURTLE)
        path.write_bytes(ox.serialize(quads, format=ox.RdfFormat.N_TRIPLES))
    else:
        path.write_text(turtle(cases), encoding="utf-8")
    return path


def case(iri: str, age: int = 45, present: tuple[str, ...] = ("NewUrinaryDysfunction",)) -> dict:
    return {"id": iri, "type": "PatientCase", "age": age, "symptomWeeks": 2.0, "present": list(present)}


def shared_pair(tmp_path: Path, first: str, second: str) -> tuple[Path, Path]:
    """Two files with a case each of their own and the same case IRI in both: the second
    file adds saddle anaesthesia to the shared case."""
    a = write(tmp_path / f"first{first}", [case(DUP), case(ONE)])
    b = write(tmp_path / f"second{second}", [{"id": DUP, "present": ["SaddleAnaesthesia"]}, case(TWO, 50)])
    return a, b


def json_run(cli, *args) -> tuple[dict, str, int]:
    proc = cli("assess", "--format", "json", *args)
    return json.loads(proc.stdout), proc.stderr, proc.returncode


# -- the same case IRI in two files -------------------------------------------------------
PAIRS = [(".ttl", ".ttl"), (".ttl", ".jsonld"), (".nt", ".nt")]


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=lambda s: s.lstrip("."))
def test_a_case_iri_in_two_files_is_an_error_for_both_and_is_not_assessed(cli, tmp_path, first, second):
    a, b = shared_pair(tmp_path, first, second)
    doc, stderr, code = json_run(cli, a, b)
    assert code == 1
    assert [r["case"] for r in doc["results"]] == [ONE, TWO]
    assert all(r["status"] == "assessed" for r in doc["results"])
    errors = {e["path"]: e["message"] for e in doc["inputErrors"]}
    assert set(errors) == {str(a), str(b)}
    assert DUP in errors[str(a)] and str(b) in errors[str(a)]
    assert DUP in errors[str(b)] and str(a) in errors[str(b)]
    assert "not assessed" in errors[str(a)] and "--merge-duplicates" in errors[str(a)]
    assert f"lbp-imaging: {a}: case {DUP} is also in {b}" in stderr
    assert f"lbp-imaging: {b}: case {DUP} is also in {a}" in stderr
    assert doc["summary"] == {"cases": 2, "assessed": 2, "invalid": 0, "inputErrors": 2}


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=lambda s: s.lstrip("."))
def test_the_table_reports_the_shared_case_too(cli, tmp_path, first, second):
    a, b = shared_pair(tmp_path, first, second)
    proc = cli("assess", a, b)
    assert proc.returncode == 1
    assert "only-in-first" in proc.stdout and "only-in-second" in proc.stdout
    assert "shared " not in proc.stdout.split("input error")[0]  # no row for the shared case
    assert f"{a}: case {DUP} is also in {b}" in proc.stderr
    assert f"{b}: case {DUP} is also in {a}" in proc.stderr


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=lambda s: s.lstrip("."))
def test_merge_duplicates_merges_and_every_output_says_so(cli, tmp_path, first, second):
    a, b = shared_pair(tmp_path, first, second)
    doc, stderr, code = json_run(cli, "--merge-duplicates", a, b)
    assert code == 0, stderr
    assert doc["inputErrors"] == []
    by_case = {r["case"]: r for r in doc["results"]}
    assert list(by_case) == [DUP, ONE, TWO]
    merged = by_case[DUP]
    findings = {f["value"]["iri"] for f in merged["facts"] if f["property"]["iri"] == str(LBP.hasFinding)}
    assert findings == {str(LBP.NewUrinaryDysfunction), str(LBP.SaddleAnaesthesia)}  # from both files
    assert merged["recommendation"]["urgency"]["label"] == "emergent"
    (note,) = [w for w in merged["warnings"] if "merged" in w]
    assert str(a) in note and str(b) in note and "--merge-duplicates" in note
    assert not any("merged" in w for w in by_case[ONE]["warnings"] + by_case[TWO]["warnings"])
    assert f"warning: {a}: case {DUP}: merged with the same case IRI in {b}" in stderr

    rows = list(csv.DictReader(io.StringIO(cli("assess", "-f", "csv", "--merge-duplicates", a, b).stdout)))
    (row,) = [r for r in rows if r["case"] == DUP]
    assert str(b) in row["warnings"] and "merged" in row["warnings"]

    table = cli("assess", "--merge-duplicates", a, b)
    assert table.returncode == 0
    assert f"case {DUP}: merged with the same case IRI in" in " ".join(table.stdout.split())


def test_every_command_that_reads_cases_refuses_or_merges_a_shared_case(cli, tmp_path):
    a, b = shared_pair(tmp_path, ".ttl", ".ttl")
    explain = cli("explain", tmp_path, "--case", ONE)
    assert explain.returncode == 1 and f"case {DUP} is also in" in explain.stderr
    merged = cli("explain", tmp_path, "--case", DUP, "--merge-duplicates")
    assert merged.returncode == 0, merged.stderr
    assert "saddle" in merged.stdout.lower()

    query = cli("query", "present-red-flags", "--data", a, "--data", b)
    assert query.returncode == 1 and f"case {DUP} is also in" in query.stderr
    assert DUP not in query.stdout
    query = cli("query", "present-red-flags", "--data", a, "--data", b, "--merge-duplicates")
    assert query.returncode == 0, query.stderr
    assert DUP in query.stdout and "merged" in query.stderr

    validate = cli("validate", a, b)
    assert validate.returncode == 1
    assert f"{a}: case {DUP} is also in {b}" in validate.stdout
    assert cli("validate", a, b, "--merge-duplicates").returncode == 0


def test_duplicates_within_one_file_are_one_case(cli, tmp_path):
    path = write(tmp_path / "one.ttl", [case(DUP), {"id": DUP, "present": ["SaddleAnaesthesia"]}])
    doc, stderr, code = json_run(cli, path)
    assert code == 0, stderr
    assert [r["case"] for r in doc["results"]] == [DUP]
    assert not any("merged" in w for w in doc["results"][0]["warnings"])


def test_both_readers_find_the_same_shared_cases(assessor, tmp_path):
    a, b = shared_pair(tmp_path, ".ttl", ".nt")
    c = write(tmp_path / "third.jsonld", [{"id": DUP, "present": ["Fever"]}])
    loaded = case_input.load([a, b, c], assessor.inputs)
    grouped = case_input.load_grouped([a, b, c], assessor.inputs)
    assert loaded.errors == grouped.errors
    assert [e.path for e in loaded.errors] == [str(a), str(b), str(c)]
    assert all(f"case {DUP} is also in" in e.message for e in loaded.errors)
    assert f"{b}, {c}" in loaded.errors[0].message  # every other file is named
    assert DUP not in {case_input.term_key(q.subject) for q in loaded.quads}
    assert DUP not in grouped.lines and {ONE, TWO} <= set(grouped.lines)


def test_several_shared_cases_are_reported_in_input_order_by_both_readers(assessor, tmp_path):
    iris = [f"https://example.org/case/shared-{i}" for i in range(12)]
    a = write(tmp_path / "a.ttl", [case(iri) for iri in iris])
    b = write(tmp_path / "b.nt", [case(iri) for iri in reversed(iris)])
    loaded = case_input.load([a, b], assessor.inputs)
    grouped = case_input.load_grouped([a, b], assessor.inputs)
    assert loaded.errors == grouped.errors
    named = [e.message.split()[1] for e in loaded.errors]
    assert named == [iri for iri in reversed(iris) for _ in (a, b)]  # once per file, as b.nt finds them
    assert loaded.quads == [] and grouped.lines == {}


def test_a_file_named_twice_is_read_once(assessor, tmp_path):
    path = write(tmp_path / "case.ttl", [case(ONE)])
    loaded = case_input.load([path, tmp_path, tmp_path / "." / "case.ttl"], assessor.inputs)
    assert loaded.errors == [] and loaded.files == [str(path)]


@pytest.mark.parametrize("suffix", [".ttl", ".nt"])
def test_blank_nodes_of_the_same_label_in_two_files_are_two_nodes(assessor, tmp_path, suffix):
    text = (
        "_:b0 a <https://w3id.org/lbp-imaging/PatientCase> ; <https://w3id.org/lbp-imaging/ageInYears> 40 .\n"
    )
    for name in ("a", "b"):
        quads = ox.parse(text, format=ox.RdfFormat.TURTLE)
        (tmp_path / f"{name}{suffix}").write_bytes(ox.serialize(quads, format=ox.RdfFormat.N_TRIPLES))
    run = assessor.assess_loaded(case_input.load([tmp_path], assessor.inputs))
    assert len(run.results) == 2 and run.input_errors == []
    assert {r.source for r in run.results} == {str(tmp_path / f"a{suffix}"), str(tmp_path / f"b{suffix}")}
    grouped = case_input.load_grouped([tmp_path], assessor.inputs)
    assert len(grouped.lines) == 2 and grouped.errors == []


# -- files with no case, terms the ontology does not define ---------------------------------
MISTYPED = [
    ("class", {"id": ONE, "type": "PatientCas"}, "the class lbp:PatientCas", "lbp:PatientCase"),
    ("property", {**case(ONE), "hasFindng": "Fever"}, "the property lbp:hasFindng", "lbp:hasFinding"),
    ("finding", case(ONE, present=("Fevr",)), "the value lbp:Fevr", "lbp:Fever"),
]


@pytest.mark.parametrize(("what", "data", "term", "near"), MISTYPED, ids=[m[0] for m in MISTYPED])
@pytest.mark.parametrize("fmt", ["json", "table"])
def test_a_mistyped_term_is_a_warning_naming_file_case_term_and_a_close_match(
    cli, tmp_path, what, data, term, near, fmt
):
    path = tmp_path / "typo.jsonld"
    path.write_text(json.dumps({"@context": CONTEXT, **data}), encoding="utf-8")
    good = write(tmp_path / "good.ttl", [case(TWO)])
    proc = cli("assess", "--format", fmt, path, good)
    expected = f"{path}: case {ONE}: {term} is not defined by the ontology (did you mean {near}?)"
    assert f"lbp-imaging: warning: {expected}" in proc.stderr
    if fmt == "json":
        doc = json.loads(proc.stdout)
        results = {r["case"]: r for r in doc["results"]}
        assert results[TWO]["status"] == "assessed"
        if what == "property":  # a valid case: its result carries the warning
            assert (
                f"{path}: {term} is not defined by the ontology (did you mean {near}?)"
                in (results[ONE]["warnings"])
            )
        if what == "class":  # no case: the run-level list has it, and the empty file
            assert ONE not in results
            assert {(w["path"], tuple(w["cases"])) for w in doc["inputWarnings"]} == {
                (str(path), (ONE,)),
                (str(path), ()),
            }
    else:
        assert expected in " ".join(proc.stdout.split())


def test_validate_reports_a_mistyped_class_that_yields_no_case(cli, tmp_path):
    path = write(tmp_path / "typo.ttl", [{"id": ONE, "type": "PatientCas"}])
    proc = cli("validate", path)
    assert proc.returncode == 1  # no case at all
    assert f"{path}: case {ONE}: the class lbp:PatientCas is not defined" in proc.stderr
    assert "did you mean lbp:PatientCase?" in proc.stderr
    assert f"{path}: no patient case in this file" in proc.stderr
    assert "0 case(s)" in proc.stderr and "2 warning(s)" in proc.stderr


def test_validate_reports_a_mistyped_property_of_a_valid_case(cli, tmp_path):
    path = tmp_path / "typo.ttl"
    path.write_text(turtle([case(ONE)]).replace("lbp:hasFinding", "lbp:hasFindng"), encoding="utf-8")
    proc = cli("validate", path)
    assert proc.returncode == 0  # valid, but warned about
    assert f"{path}: case {ONE}: the property lbp:hasFindng is not defined" in proc.stderr
    assert "1 warning(s)" in proc.stderr


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_a_file_with_no_case_is_a_warning_and_the_other_files_go_on(cli, tmp_path, fmt):
    empty = tmp_path / "notes.ttl"
    empty.write_text('<https://example.org/note/1> <http://purl.org/dc/terms/title> "no case" .\n')
    nt = tmp_path / "misspelt-namespace.nt"
    nt.write_text(
        "<https://example.org/case/x> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "
        "<https://w3id.org/lbp-imagng/PatientCase> .\n"
    )
    good = write(tmp_path / "good.ttl", [case(TWO)])
    proc = cli("assess", "--format", fmt, empty, nt, good)
    assert proc.returncode == 0, proc.stderr
    for path in (empty, nt):
        assert f"lbp-imaging: warning: {path}: no patient case in this file" in proc.stderr
    assert f"{good}: no patient case" not in proc.stderr
    if fmt == "json":
        doc = json.loads(proc.stdout)
        assert [r["case"] for r in doc["results"]] == [TWO]
        assert sorted(w["path"] for w in doc["inputWarnings"]) == sorted([str(empty), str(nt)])


def test_fhir_bundles_are_each_a_case(assessor):
    fhir = Path(__file__).resolve().parent.parent / "examples" / "fhir"
    loaded = case_input.load([fhir], assessor.inputs)
    assert loaded.notes == [] and loaded.errors == []
    assert len(loaded.fhir_cases) == len(loaded.files)


def test_the_defined_terms_are_read_from_the_ontology(kb, assessor):
    terms = assessor.inputs.terms
    subjects = {str(s) for s in kb.ontology.subjects() if isinstance(s, URIRef) and s.startswith(str(LBP))}
    assert set(terms.defined) == subjects
    assert terms.suggestion(str(LBP) + "SaddleAnesthesia", "value") == "SaddleAnaesthesia"
    assert terms.suggestion(str(LBP) + "ageInYear", "property") == "ageInYears"
    assert terms.suggestion(str(LBP) + "Zzzzqqq", "value") is None
    assert str(LBP.PatientCase) in terms.case_classes and str(LBP.hasFinding) in terms.case_properties


def test_a_posted_case_carries_its_warnings_and_a_body_with_no_case_says_why(assessor):
    body = turtle([case(ONE)]).replace("lbp:hasFinding", "lbp:hasFindng").encode()
    run = assessor.assess_loaded(read_body(body, ".ttl", assessor.inputs))
    assert f"{BODY_NAME}: the property lbp:hasFindng is not defined by the ontology" in " ".join(
        the_case(run).warnings
    )
    body = turtle([{"id": ONE, "type": "PatientCas"}]).encode()
    run = assessor.assess_loaded(read_body(body, ".ttl", assessor.inputs))
    with pytest.raises(ProtocolError) as refused:
        the_case(run)
    assert refused.value.status == 422
    assert f"{BODY_NAME}: case {ONE}: the class lbp:PatientCas" in refused.value.message
    assert "/tmp" not in refused.value.message


def test_the_case_page_says_why_nothing_was_assessed_and_names_no_temporary_file(assessor):
    import threading

    from reasoner.server.pages.case_form import CaseDesk

    desk = CaseDesk(assessor, threading.Lock())
    report = desk.assess_text(turtle([{"id": ONE, "type": "PatientCas"}]), "turtle")
    assert report.results == []
    assert f"{ONE}: the class lbp:PatientCas is not defined by the ontology" in " ".join(report.errors)
    report = desk.assess_text(turtle([case(ONE)]).replace("lbp:hasFinding", "lbp:hasFindng"), "turtle")
    (warning,) = [w for w in report.results[0].warnings if "hasFindng" in w]
    assert warning.startswith("submitted Turtle: the property lbp:hasFindng")


# -- splitting cases across files changes nothing ---------------------------------------
FINDINGS = ["NewUrinaryDysfunction", "SaddleAnaesthesia", "Fever", "HistoryOfCancer", "Osteoporosis"]
DISTINCT_CASES = [
    case(
        f"https://example.org/case/split-{i}", 20 + 7 * i, tuple(FINDINGS[j] for j in range(5) if i >> j & 1)
    )
    for i in range(8)
]


def _views(results) -> dict[str, dict]:
    """Each result as JSON, without the file it came from."""
    return {
        r.case: {k: v for k, v in json.loads(render.json_results([r])).items() if k != "source"}
        for r in results
    }


@pytest.fixture(scope="module")
def unsplit(assessor, tmp_path_factory):
    path = write(tmp_path_factory.mktemp("whole") / "all.ttl", DISTINCT_CASES)
    return _views(assessor.assess_loaded(case_input.load([path], assessor.inputs)).results)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.lists(st.integers(0, 3), min_size=len(DISTINCT_CASES), max_size=len(DISTINCT_CASES)),
    suffixes=st.lists(st.sampled_from([".ttl", ".nt", ".jsonld"]), min_size=4, max_size=4),
)
def test_splitting_distinct_cases_across_files_never_changes_a_result(
    assessor, unsplit, tmp_path_factory, files, suffixes
):
    folder = tmp_path_factory.mktemp("split")
    parts: dict[int, list[dict]] = {}
    for data, n in zip(DISTINCT_CASES, files, strict=True):
        parts.setdefault(n, []).append(data)
    paths = [write(folder / f"part-{n}{suffixes[n]}", cases) for n, cases in sorted(parts.items())]
    loaded = case_input.load(paths, assessor.inputs)
    run = assessor.assess_loaded(loaded)
    assert run.input_errors == [] and run.input_warnings == []
    assert _views(run.results) == unsplit

    out = io.BytesIO()
    summary = stream.assess_to(assessor, case_input.load_grouped(paths, assessor.inputs), "json", out, {})
    doc = json.loads(out.getvalue())
    assert summary.exit_code == 0 and summary.warnings == [] and doc["inputWarnings"] == []
    streamed = {r["case"]: {k: v for k, v in r.items() if k != "source"} for r in doc["results"]}
    assert streamed == unsplit
