"""Standard report formats for authors: ``validate --format turtle|json-ld`` writes a SHACL
``sh:ValidationReport``, ``check --format tsv`` ROBOT's report table. Both run as the
installed command."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from kb_copy import copy_kb, edit
from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic

from reasoner.authoring.check import run_check
from reasoner.authoring.report import Level, Report, Result

# rdflib's JSON-LD parser still uses ConjunctiveGraph internally.
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")

SH = Namespace("http://www.w3.org/ns/shacl#")
LBP = Namespace("https://w3id.org/lbp-imaging/")
VALID = Path("tests/data/cases/valid/cauda-equina.ttl")
BAD_CASE = URIRef("https://example.org/case/report-format-two-ages")
BAD = f"""@prefix lbp: <https://w3id.org/lbp-imaging/> .
<{BAD_CASE}> a lbp:PatientCase ;
    lbp:ageInYears 40 , 130 ;
    lbp:administrativeSex lbp:Female .
"""
ROBOT_HEADER = ["Level", "Rule Name", "Subject", "Property", "Value"]


def report_of(text: str, fmt: str) -> tuple[Graph, URIRef]:
    graph = Graph().parse(data=text, format=fmt)
    (report,) = graph.subjects(RDF.type, SH.ValidationReport)
    return graph, report


def problems(stderr: str) -> int:
    return int(re.search(r"(\d+) problem\(s\)", stderr).group(1))


@pytest.fixture(scope="module")
def invalid_runs(tmp_path_factory, cli):
    """The invalid case beside a file that does not parse, validated once per format."""
    folder = tmp_path_factory.mktemp("invalid")
    (folder / "two-ages.ttl").write_text(BAD, encoding="utf-8")
    (folder / "broken.ttl").write_text("this is not < Turtle", encoding="utf-8")
    return {fmt: cli("validate", "--format", fmt, folder) for fmt in ("turtle", "json-ld")}


def test_a_valid_case_gives_a_conforming_report(cli):
    proc = cli("validate", "--format", "turtle", VALID)
    assert proc.returncode == 0, proc.stderr
    graph, report = report_of(proc.stdout, "turtle")
    assert graph.value(report, SH.conforms) == Literal(True)
    assert list(graph.objects(report, SH.result)) == []


def test_an_invalid_case_gives_a_result_per_violation(invalid_runs):
    proc = invalid_runs["turtle"]
    assert proc.returncode == 1
    graph, report = report_of(proc.stdout, "turtle")
    assert graph.value(report, SH.conforms) == Literal(False)
    results = list(graph.objects(report, SH.result))
    found = {
        (
            graph.value(r, SH.focusNode),
            graph.value(r, SH.resultPath),
            graph.value(r, SH.sourceConstraintComponent),
            graph.value(r, SH.value),
        )
        for r in results
    }
    assert found == {
        (BAD_CASE, LBP.ageInYears, SH.MaxCountConstraintComponent, None),
        (BAD_CASE, LBP.ageInYears, SH.MaxInclusiveConstraintComponent, Literal(130)),
    }
    for r in results:
        assert graph.value(r, SH.resultSeverity) == SH.Violation
        assert isinstance(graph.value(r, SH.sourceShape), URIRef)
        assert str(graph.value(r, SH.resultMessage))
    assert problems(proc.stderr) == len(results)


def test_a_file_that_does_not_parse_is_named_on_stderr_not_in_the_report(invalid_runs):
    proc = invalid_runs["turtle"]
    assert re.search(r"broken\.ttl: cannot be parsed", proc.stderr), proc.stderr
    assert "broken.ttl" not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_json_ld_is_the_same_graph_as_turtle(invalid_runs):
    turtle, _ = report_of(invalid_runs["turtle"].stdout, "turtle")
    json_ld, _ = report_of(invalid_runs["json-ld"].stdout, "json-ld")
    assert invalid_runs["json-ld"].returncode == 1
    assert isomorphic(turtle, json_ld)
    assert "sh" in json.loads(invalid_runs["json-ld"].stdout)["@context"]


# -- check --format tsv -------------------------------------------------------------------
def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))


def test_the_robot_table_of_a_broken_copy_has_every_finding(tmp_path, cli):
    root = copy_kb(tmp_path, ("ontology", "shapes", "queries"))  # no examples: quicker, more findings
    edit(
        root,
        "ontology/criteria.ttl",
        "owl:someValuesFrom lbp:CaudaEquinaSign ]",
        "owl:someValuesFrom lbp:CaudaEquinaSigns ]",
    )
    table = cli("check", "--no-hermit", "--format", "tsv", "--kb", root)
    data = json.loads(run_check(root, hermit=False).to_json())
    assert table.returncode == 1
    rows = rows_of(table.stdout)
    assert rows[0] == ROBOT_HEADER
    assert all(len(row) == 5 for row in rows)
    body = rows[1:]
    assert len(body) == len(data["results"])
    for r in data["results"]:
        assert [r["level"], r["rule"], r["subject"], "", " | ".join([r["message"], *r["details"]])] in body
    assert ["ERROR", "undeclared_reference", "lbp:SuspectedCaudaEquinaSyndrome"] in [row[:3] for row in body]
    levels = [row[0] for row in body]
    assert levels == sorted(levels, key=["ERROR", "WARN", "INFO"].index)


def test_tabs_and_line_breaks_inside_a_value_keep_a_row_on_one_line():
    report = Report("kb")
    report.add([Result(Level.WARN, "some_rule", "lbp:X", "a\tb\nc\r\nd", ("e\tf",))])
    report.add([Result(Level.INFO, "other_rule", "", "no subject")])
    rows = rows_of(report.to_tsv())
    assert rows == [
        ROBOT_HEADER,
        ["WARN", "some_rule", "lbp:X", "", "a    b    c    d | e    f"],
        ["INFO", "other_rule", "", "", "no subject"],
    ]
