"""The ``lbp-imaging`` command line: help, lazy imports, output files, validate, explain
and query, run as the installed command in a subprocess."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rdflib import RDF, Graph

from reasoner.knowledge import LBP

# rdflib's JSON-LD parser still uses ConjunctiveGraph internally.
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")

ROOT = Path(__file__).resolve().parent.parent
VALID = Path("tests/data/cases/valid")
INVALID = Path("tests/data/cases/invalid")
CES_FILE = VALID / "cauda-equina.ttl"
CES = "https://example.org/case/ces-1"
HEAVY = ("rdflib", "pyoxigraph", "pyshacl", "owlready2")


def flat(text: str) -> str:
    return " ".join(text.split())


# -- help and start-up ------------------------------------------------------------------
def test_help_shows_the_disclaimer_and_the_commands(cli):
    proc = cli("--help")
    assert proc.returncode == 0, proc.stderr
    out = flat(proc.stdout)
    assert "Decision support, not diagnosis." in out
    for command in ("assess", "explain", "validate", "query"):
        assert re.search(rf"\b{command}\b", proc.stdout), command


def test_version_names_the_package_and_the_knowledge_base(cli, kb):
    from reasoner import __version__

    proc = cli("--version")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"lbp-imaging {__version__}"
    identity = kb.identity
    assert identity["versionIRI"] and identity["versionIRI"] in lines[1] and identity["ontology"] in lines[1]


def test_no_arguments_shows_help(cli):
    proc = cli()
    assert "Usage" in proc.stdout + proc.stderr
    assert "assess" in proc.stdout + proc.stderr


def test_assess_help_shows_the_formats_and_options(cli):
    proc = cli("assess", "--help")
    assert proc.returncode == 0, proc.stderr
    out = flat(proc.stdout)
    assert "Assess patient cases" in out
    for option in ("--format", "--engine", "--output", "--kb"):
        assert option in out
    for fmt in ("table", "json", "csv", "turtle", "json-ld"):
        assert fmt in out


@pytest.mark.parametrize("command", ["explain", "validate", "query", "docs"])
def test_every_command_has_help(cli, command):
    proc = cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--kb" in proc.stdout


def test_importing_the_cli_does_not_import_the_engine():
    """--help answers at once: the RDF, SHACL and OWL libraries are imported by commands."""
    code = f"import reasoner.cli, sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_unknown_format_is_a_usage_error(cli):
    proc = cli("assess", CES_FILE, "--format", "yaml")
    assert proc.returncode == 2
    assert "yaml" in proc.stderr


# -- assess -o FILE ---------------------------------------------------------------------
def _parse_json(text: str) -> int:
    doc = json.loads(text)
    assert doc["summary"]["assessed"] == len(doc["results"])
    return len(doc["results"])


def _parse_csv(text: str) -> int:
    from reasoner.pipeline.render import CSV_COLUMNS

    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == list(CSV_COLUMNS)
    return len(list(reader))


def _rdf(fmt: str):
    def parse(text: str) -> int:
        g = Graph().parse(data=text, format=fmt)
        return len(set(g.subjects(RDF.type, LBP.Recommendation)))

    return parse


PARSERS = {"json": _parse_json, "csv": _parse_csv, "turtle": _rdf("turtle"), "json-ld": _rdf("json-ld")}


@pytest.fixture(scope="module")
def valid_cases(assessor) -> int:
    """How many cases tests/data/cases/valid holds, all of them valid."""
    run = assessor.assess([ROOT / VALID])
    assert run.exit_code == 0
    return len(run.results)


@pytest.mark.parametrize("fmt", list(PARSERS))
def test_assess_writes_parseable_output_to_a_file(cli, fmt, tmp_path, valid_cases):
    out = tmp_path / f"out.{fmt}"
    proc = cli("assess", VALID, "--format", fmt, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    text = out.read_text(encoding="utf-8")
    assert "not diagnosis" in text or fmt == "csv"
    assert PARSERS[fmt](text) == valid_cases


def test_assess_table_on_stdout(cli):
    proc = cli("assess", CES_FILE)
    assert proc.returncode == 0, proc.stderr
    out = flat(proc.stdout)
    assert CES.rsplit("/", 1)[1] in out  # the table shows the last segment of the case IRI
    assert "MRI lumbar spine without IV contrast" in out
    assert "emergent" in out
    assert "not diagnosis" in out


# -- validate ---------------------------------------------------------------------------
def _expectations(path: Path) -> tuple[str, str | None]:
    text = path.read_text(encoding="utf-8")
    expect = re.search(r"^# expect: (.+)$", text, re.M).group(1).strip()
    case = re.search(r"^<(https://example\.org/case/[^>]+)>", text, re.M)
    return expect, case.group(1) if case else None


def test_validate_invalid_cases_exits_1_naming_file_case_and_message(cli):
    proc = cli("validate", INVALID)
    assert proc.returncode == 1
    files = sorted((ROOT / INVALID).glob("*.ttl"))
    assert len(files) >= 10
    lines = proc.stdout.splitlines()
    for path in files:
        expect, case = _expectations(path)
        mine = [ln for ln in lines if ln.startswith(f"{INVALID / path.name}: case ")]
        assert mine, path.name
        assert any(expect in ln for ln in mine), (path.name, mine)
        if case:
            assert all(f": case {case}: " in ln for ln in mine), mine
        else:  # a case without an identifier is a blank node
            assert all(": case _:" in ln for ln in mine), mine
    assert f"{len(files)} file(s)" in proc.stderr


def test_validate_valid_cases_exits_0(cli):
    proc = cli("validate", VALID)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert "0 problem(s)" in proc.stderr


def test_validate_reference_engine_agrees(cli):
    fast = cli("validate", INVALID / "two-ages.ttl", INVALID / "unknown-sex.ttl")
    reference = cli(
        "validate", INVALID / "two-ages.ttl", INVALID / "unknown-sex.ttl", "--engine", "reference"
    )
    assert fast.returncode == reference.returncode == 1
    assert sorted(fast.stdout.splitlines()) == sorted(reference.stdout.splitlines())


def test_a_number_too_long_for_python_is_refused_by_both_engines_without_a_traceback(cli, tmp_path):
    """An integer of 5,000 digits is no number to Python (at most 4,300 are read): both
    validators refuse the case with the field's message, and rdflib's log of the literal
    (a traceback) is not shown."""
    case = tmp_path / "long-age.ttl"
    case.write_text(
        "@prefix lbp: <https://w3id.org/lbp-imaging/> .\n"
        f"<https://example.org/case/long-age> a lbp:PatientCase ; lbp:ageInYears {'9' * 5000} .\n",
        encoding="utf-8",
    )
    for engine in ("fast", "reference"):
        proc = cli("validate", case, "--engine", engine)
        assert proc.returncode == 1, (engine, proc.stderr)
        assert "age in years: Age must be a whole number of years between 0 and 120." in proc.stdout, engine
        assert "Traceback" not in proc.stdout + proc.stderr, engine


def test_validate_names_the_rdf_type_field_readably(cli):
    proc = cli("validate", INVALID / "untyped-case.ttl")
    assert proc.returncode == 1
    assert "https://example.org/case/bad-untyped" in proc.stdout
    assert "22-rdf-syntax-ns" not in proc.stdout


def test_validate_reports_unreadable_files(cli, tmp_path):
    bad = tmp_path / "bad.ttl"
    bad.write_text("<a> <b> .\n", encoding="utf-8")
    proc = cli("validate", bad, CES_FILE)
    assert proc.returncode == 1
    assert f"{bad}: cannot be parsed" in proc.stdout


# -- explain ----------------------------------------------------------------------------
def test_explain_prints_criterion_source_quote_and_recommendation(cli):
    proc = cli("explain", CES_FILE)
    assert proc.returncode == 0, proc.stderr
    out = flat(proc.stdout)
    assert CES in out
    assert "suspected cauda equina syndrome" in out
    assert "Saddle anesthesia or perianal numbness" in out
    assert "recommendation: imaging indicated: MRI lumbar spine without IV contrast, emergent" in out
    assert "because has finding = saddle or perianal anaesthesia" in out
    assert "not diagnosis" in out


EXAMPLES = Path("examples/cases")


def test_explain_asks_what_would_settle_a_more_information_needed_case(cli):
    path = EXAMPLES / "40-screening-incomplete.ttl"
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    proc = cli("explain", path)
    assert proc.returncode == 0, proc.stderr
    out = flat(proc.stdout)
    assert "recommendation: more information needed" in out
    assert "no imaging" not in out.split("recommendation:")[1].split("criteria undetermined")[0]
    assert "criteria undetermined" in out and "suspected spinal infection (prompt)" in out
    asked = out.split("to settle this, ask")[1].split("red flags")[0]
    # Grouped by what the questions suggest, each with the answer it needs.
    assert asked.index("spinal infection") < asked.index("intravenous drug use: present")
    assert asked.index("vertebral fracture") < asked.index("osteoporosis: present")
    assert asked.count(": present") + asked.count(": >=") >= len(expected["questions"])


def test_explain_of_a_screened_negative_case_asks_nothing(cli):
    proc = cli("explain", EXAMPLES / "39-screened-negative.ttl")
    assert proc.returncode == 0, proc.stderr
    out = flat(proc.stdout)
    assert "recommendation: no imaging indicated" in out
    assert "to settle this, ask" not in out


def test_assess_table_counts_the_questions_instead_of_saying_no_imaging(cli):
    path = EXAMPLES / "40-screening-incomplete.ttl"
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    proc = cli("assess", path)
    assert proc.returncode == 0, proc.stderr
    out = flat(proc.stdout)
    assert f"more information needed ({len(expected['questions'])} questions)" in out
    assert "no imaging" not in out
    assert "questions" in out and "red flags not assessed" not in out


def test_explain_unknown_case_exits_1(cli):
    proc = cli("explain", CES_FILE, "--case", "https://example.org/case/nobody")
    assert proc.returncode == 1
    assert "no case https://example.org/case/nobody" in proc.stderr


def test_explain_invalid_case_exits_1_with_its_errors(cli):
    proc = cli("explain", INVALID / "age-too-high.ttl")
    assert proc.returncode == 1
    out = flat(proc.stdout)
    assert "invalid case" in out
    assert "Age must be a whole number of years between 0 and 120." in out


# -- query ------------------------------------------------------------------------------
def test_query_named_query_with_data_prints_sparql_json(cli):
    proc = cli("query", "present-red-flags", "--data", VALID)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert results["head"]["vars"] == ["case", "redFlags"]
    bindings = results["results"]["bindings"]
    assert bindings
    present = {(b["case"]["value"], flag) for b in bindings for flag in b["redFlags"]["value"].split()}
    assert (CES, str(LBP.SaddleAnaesthesia)) in present
    assert (CES, str(LBP.NewUrinaryDysfunction)) in present


def test_query_sees_the_prov_results(cli, tmp_path):
    rq = tmp_path / "procedures.rq"
    rq.write_text(
        "PREFIX lbp: <https://w3id.org/lbp-imaging/>\n"
        "SELECT ?case ?procedure WHERE {\n"
        "  ?rec a lbp:Recommendation ; lbp:forCase ?case ; lbp:recommendedProcedure ?procedure .\n"
        "}\n",
        encoding="utf-8",
    )
    proc = cli("query", rq, "--data", CES_FILE, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert rows == [{"case": CES, "procedure": str(LBP.MRILumbarSpineWithoutContrast)}]


def test_query_ad_hoc_ask_file(cli, tmp_path):
    rq = tmp_path / "ask.rq"
    rq.write_text(
        "PREFIX lbp: <https://w3id.org/lbp-imaging/>\n"
        "ASK { ?c a lbp:PatientCase ; lbp:hasFinding lbp:SaddleAnaesthesia }\n",
        encoding="utf-8",
    )
    proc = cli("query", rq, "--data", CES_FILE)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["boolean"] is True
    without_data = cli("query", rq)
    assert without_data.returncode == 0, without_data.stderr
    assert json.loads(without_data.stdout)["boolean"] is False


def test_query_syntax_error_exits_2(cli, tmp_path):
    rq = tmp_path / "broken.rq"
    rq.write_text("SELECT ?x WHERE { ?x ", encoding="utf-8")
    proc = cli("query", rq)
    assert proc.returncode == 2
    assert "SPARQL syntax error" in proc.stderr
    assert proc.stdout == ""


def test_query_unknown_name_exits_2(cli):
    proc = cli("query", "no-such-query")
    assert proc.returncode == 2
    assert "no named query 'no-such-query'" in proc.stderr
    assert "unassessed-red-flags" in proc.stderr  # the known names are listed


def test_query_missing_rq_file_exits_2(cli, tmp_path):
    proc = cli("query", tmp_path / "missing.rq")
    assert proc.returncode == 2
    assert "missing.rq" in proc.stderr
