"""Render an assessment run: terminal table, JSON, CSV, and PROV-O as Turtle or JSON-LD.

Every format carries the decision-support disclaimer. The JSON keys are the documented
schema (docs/output-schema.md); the PROV-O graph conforms to shapes/result-shapes.ttl.
"""

from __future__ import annotations

import csv
import io
import uuid

import orjson
from rdflib import RDF, RDFS, XSD, BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import PROV

from . import DISCLAIMER, __version__
from .assess import AssessmentRun
from .explain import CaseResult
from .knowledge import LBP

RUN_NS = Namespace("urn:uuid:")


def _label(obj: dict | None) -> str:
    return obj["label"] if obj else ""


def json_header(engine: str, knowledge_base: dict, started: str) -> bytes:
    """The opening of the JSON document, up to the results array."""
    head = orjson.dumps(
        {
            "generator": f"lbp-imaging {__version__}",
            "engine": engine,
            "knowledgeBase": knowledge_base,
            "started": started,
            "disclaimer": DISCLAIMER,
        }
    )
    return head[:-1] + b',"results":['


def json_results(results: list[CaseResult]) -> bytes:
    """Results as comma-separated JSON objects (a slice of the results array)."""
    return b",".join(orjson.dumps(r.to_dict(), default=str) for r in results)


def json_footer(
    summary: dict, criteria: dict, statements: dict, input_errors: list, ended: str, input_warnings: list = ()
) -> bytes:
    """The close of the results array and the run-level tables: criteria and statements
    are listed once, and results cite them by IRI. ``input_warnings`` are those no result
    carries (``InputWarning``), listed by file."""
    tail = orjson.dumps(
        {
            "summary": summary,
            "criteria": criteria,
            "statements": statements,
            "inputErrors": [{"path": e.path, "message": e.message} for e in input_errors],
            "inputWarnings": [
                {"path": w.path, "cases": list(w.cases), "message": w.message}
                for w in sorted(input_warnings, key=lambda w: (w.path, w.message))
            ],
            "ended": ended,
        },
        default=str,
    )
    return b"]," + tail[1:]


def summary_of(results: list[CaseResult], input_errors: list) -> dict:
    invalid = sum(r.status != "assessed" for r in results)
    return {
        "cases": len(results),
        "assessed": len(results) - invalid,
        "invalid": invalid,
        "inputErrors": len(input_errors),
    }


def to_json(run: AssessmentRun, knowledge_base: dict) -> str:
    """The run as one JSON document (see docs/output-schema.md)."""
    return (
        json_header(run.engine, knowledge_base, run.started)
        + json_results(run.results)
        + json_footer(
            summary_of(run.results, run.input_errors),
            run.criteria,
            run.statements,
            run.input_errors,
            run.ended,
            [w for w in run.input_warnings if not w.attached],
        )
    ).decode("utf-8")


CSV_COLUMNS = (
    "case",
    "source",
    "engine",
    "status",
    "outcome",
    "procedure",
    "procedure_codes",
    "urgency",
    "appropriateness",
    "selected_criteria",
    "all_criteria",
    "alternatives",
    "present_red_flags",
    "unassessed_red_flags",
    "source_statements",
    "warnings",
    "errors",
    "disclaimer",
    # Added after the first release: appended, so that every earlier column keeps its position.
    "undetermined_criteria",
    "questions",
)


def open_criteria(r: CaseResult) -> list[dict]:
    """The undetermined criteria and rules that matter to the decision (those a question
    could meet), most urgent first, each as its entry in the questions (with its label
    and urgency): a result carries labels, not a vocabulary."""
    entries = {c["iri"]: c for q in r.questions for c in q["criteria"]}
    return [entries[iri] for iri in r.criterion_states if iri in entries]


def csv_rows(results: list[CaseResult], input_errors: list = (), header: bool = False) -> str:
    """CSV rows for results (and unreadable inputs), one per case; with the header if asked."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    for r in results:
        rec = r.recommendation or {}
        proc = rec.get("procedure")
        writer.writerow(
            {
                "case": r.case,
                "source": r.source,
                "engine": r.engine,
                "status": r.status,
                "outcome": _label(r.outcome),
                "procedure": _label(proc),
                "procedure_codes": " ".join(
                    f"{c['system']}|{c['code']}" for c in (proc or {}).get("codes", [])
                ),
                "urgency": _label(rec.get("urgency")),
                "appropriateness": _label(rec.get("appropriateness")),
                "selected_criteria": " | ".join(c["label"] for c in r.criteria if c["selected"]),
                "all_criteria": " | ".join(c["label"] for c in r.criteria),
                "alternatives": " | ".join(a["label"] for a in rec.get("alternatives", [])),
                "present_red_flags": " | ".join(f["label"] for f in r.red_flags.get("present", [])),
                "unassessed_red_flags": " | ".join(f["label"] for f in r.red_flags.get("unassessed", [])),
                "source_statements": " ".join(r.sources),
                "warnings": " | ".join(r.warnings),
                "errors": " | ".join(f"{e['field'] or 'case'}: {e['message']}" for e in r.errors),
                "disclaimer": DISCLAIMER,
                "undetermined_criteria": " | ".join(c["label"] for c in open_criteria(r)),
                "questions": " | ".join(q["about"]["label"] for q in r.questions),
            }
        )
    for e in input_errors:
        writer.writerow({"source": e.path, "status": "error", "errors": e.message, "disclaimer": DISCLAIMER})
    return out.getvalue()


def to_csv(run: AssessmentRun) -> str:
    return csv_rows(run.results, run.input_errors, header=True)


def _value_node(value: dict):
    if "iri" in value:
        return URIRef(value["iri"])
    v = value["value"]
    if "datatype" in value:
        lexical = ("true" if v else "false") if isinstance(v, bool) else str(v)
        return Literal(lexical, datatype=URIRef(value["datatype"]))
    return Literal(v)


def to_prov(run: AssessmentRun) -> Graph:
    """Each recommendation a prov:Entity generated by an assessment that used the case."""
    g = Graph()
    for prefix, ns in (("lbp", LBP), ("prov", PROV), ("stmt", Namespace(str(LBP) + "statement/"))):
        g.bind(prefix, ns)
    agent = URIRef(f"urn:lbp-imaging:engine:{run.engine}:{__version__}")
    g.add((agent, RDF.type, PROV.SoftwareAgent))
    g.add((agent, RDFS.label, Literal(f"lbp-imaging {__version__} ({run.engine} engine)")))
    for r in run.results:
        if r.status != "assessed":
            continue
        key = uuid.uuid5(uuid.NAMESPACE_URL, f"{r.case}|{run.started}|{run.engine}")
        rec, act, case = (
            RUN_NS[f"{key}"],
            RUN_NS[f"{uuid.uuid5(key, 'assessment')}"],
            URIRef(r.case),
        )
        g.add((act, RDF.type, LBP.Assessment))
        g.add((act, RDF.type, PROV.Activity))
        g.add((act, PROV.used, case))
        g.add((act, PROV.wasAssociatedWith, agent))
        g.add((act, PROV.startedAtTime, Literal(run.started, datatype=XSD.dateTime)))
        g.add((act, PROV.endedAtTime, Literal(run.ended, datatype=XSD.dateTime)))
        g.add((rec, RDF.type, LBP.Recommendation))
        g.add((rec, RDF.type, PROV.Entity))
        g.add((rec, PROV.wasGeneratedBy, act))
        g.add((rec, LBP.forCase, case))
        g.add((rec, LBP.engine, Literal(run.engine)))
        g.add((rec, LBP.outcome, URIRef(r.outcome["iri"])))
        g.add((rec, LBP.disclaimer, Literal(DISCLAIMER, lang="en")))
        rec_info = r.recommendation or {}
        for key_name, prop in (
            ("procedure", LBP.recommendedProcedure),
            ("urgency", LBP.urgency),
            ("appropriateness", LBP.appropriateness),
        ):
            if rec_info.get(key_name):
                g.add((rec, prop, URIRef(rec_info[key_name]["iri"])))
        for alt in rec_info.get("alternatives", []):
            g.add((rec, LBP.alternative, URIRef(alt["iri"])))
        for c in r.criteria:
            match = BNode()
            g.add((rec, LBP.hasCriterionMatch, match))
            g.add((match, RDF.type, LBP.CriterionMatch))
            g.add((match, LBP.criterion, URIRef(c["iri"])))
            g.add((match, LBP.selected, Literal(c["selected"])))
            for s in c["sources"]:
                g.add((match, PROV.wasDerivedFrom, URIRef(s)))
            for f in c["facts"]:
                fact = BNode()
                g.add((match, LBP.matchedFact, fact))
                g.add((fact, RDF.type, LBP.CaseFact))
                g.add((fact, LBP.factProperty, URIRef(f["property"]["iri"])))
                g.add((fact, LBP.factValue, _value_node(f["value"])))
        for s in r.sources:
            g.add((rec, PROV.wasDerivedFrom, URIRef(s)))
        for flag in r.red_flags.get("unassessed", []):
            g.add((rec, LBP.unassessedRedFlag, URIRef(flag["iri"])))
        for flag in r.red_flags.get("present", []):
            g.add((rec, LBP.presentRedFlag, URIRef(flag["iri"])))
        for w in r.warnings:
            g.add((rec, LBP.warning, Literal(w, lang="en")))
        _add_states(g, rec, r)
    return g


STATE_PROPERTIES = {"undetermined": LBP.undeterminedCriterion, "notMet": LBP.notMetCriterion}


def _add_states(g: Graph, rec: URIRef, r: CaseResult) -> None:
    """The criteria the case leaves undetermined or rules out (met ones are the criterion
    matches), and one ``lbp:Question`` per question with the criteria it could meet and
    what that could do to the decision."""
    for criterion, state in r.criterion_states.items():
        if state in STATE_PROPERTIES:
            g.add((rec, STATE_PROPERTIES[state], URIRef(criterion)))
    for q in r.questions:
        node = BNode()
        g.add((rec, LBP.hasQuestion, node))
        g.add((node, RDF.type, LBP.Question))
        g.add((node, LBP.asksAbout, URIRef(q["about"]["iri"])))
        if q["property"]:
            g.add((node, LBP.factProperty, URIRef(q["property"]["iri"])))
        for c in q["criteria"]:
            g.add((node, LBP.couldMeet, URIRef(c["iri"])))
            g.add((node, LBP.effect, URIRef(c["effectIri"])))


def _short(iri: str) -> str:
    """The last segment of a case IRI, to keep the terminal table narrow."""
    return iri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1] or iri


def _table_rows(results: list[CaseResult]):
    for r in results:
        if r.status != "assessed":
            yield (
                _short(r.case),
                r.status,
                "; ".join(f"{e['field'] or 'case'}: {e['message']}" for e in r.errors),
                "",
                "",
                "",
            )
            continue
        rec = r.recommendation or {}
        selected = ", ".join(c["label"] for c in r.criteria if c["selected"] and c["kind"] != "rule")
        asked = len(r.questions)
        yield (
            _short(r.case),
            _label(r.outcome),
            _label(rec.get("procedure")) or _without_procedure(r),
            _label(rec.get("urgency")),
            selected,
            str(asked) if asked else "",
        )


def _without_procedure(r: CaseResult) -> str:
    """The recommendation column of a case without a procedure: its outcome, never "no
    imaging" unless that is the outcome; with the number of questions that could settle it."""
    asked = len(r.questions)
    count = f" ({asked} question{'s' if asked != 1 else ''})" if asked else ""
    return _label(r.outcome) + count


def _shared_warnings(results: list[CaseResult]) -> list[str]:
    """The warnings every assessed case carries (the source caveats shown with every
    recommendation): the table has no warnings column, so they are printed once below it."""
    assessed = [r for r in results if r.status == "assessed"]
    if not assessed:
        return []
    shared = set(assessed[0].warnings).intersection(*(r.warnings for r in assessed[1:]))
    return [w for w in assessed[0].warnings if w in shared]


def print_table(run: AssessmentRun, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"lbp-imaging assessment ({run.engine} engine)", show_lines=False)
    for column in (
        "case",
        "outcome",
        "recommendation",
        "urgency",
        "criteria",
        "questions",
    ):
        table.add_column(column, overflow="fold")
    for row in _table_rows(run.results):
        table.add_row(*row)
    console.print(table)
    for warning in _shared_warnings(run.results):
        console.print(warning, markup=False, highlight=False)
    for e in run.input_errors:
        console.print(f"[red]input error[/red] {e}")
    for w in run.input_warnings:
        console.print(f"[yellow]input warning[/yellow] {escape(str(w))}", highlight=False)
    console.print(f"[dim]{DISCLAIMER}[/dim]")
