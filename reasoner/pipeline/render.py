"""Render an assessment run: terminal table, JSON, CSV, and PROV-O as Turtle or JSON-LD.

Every format carries the decision-support disclaimer. The JSON keys are the documented
schema (docs/output-schema.md); the PROV-O graph conforms to shapes/result-shapes.ttl.
"""

from __future__ import annotations

import csv
import functools
import io
import uuid

import orjson
import pyoxigraph as ox
from rdflib import RDF, RDFS, XSD, Graph, Namespace
from rdflib.namespace import PROV

from .. import DISCLAIMER, __version__
from ..knowledge import LBP, rdflib_term
from .assess import AssessmentRun
from .explain import CaseResult


def _label(obj: dict | None) -> str:
    return obj["label"] if obj else ""


def _head(engine: str, knowledge_base: dict, started: str) -> dict:
    return {
        "generator": f"lbp-imaging {__version__}",
        "engine": engine,
        "knowledgeBase": knowledge_base,
        "started": started,
        "disclaimer": DISCLAIMER,
    }


def json_header(engine: str, knowledge_base: dict, started: str) -> bytes:
    """The opening of the JSON document, up to the results array."""
    return orjson.dumps(_head(engine, knowledge_base, started))[:-1] + b',"results":['


def json_results(results: list[CaseResult]) -> bytes:
    """Results as comma-separated JSON objects (a slice of the results array)."""
    return b",".join(orjson.dumps(r.to_dict(), default=str) for r in results)


def json_lines(results: list[CaseResult]) -> bytes:
    """Results as JSON lines (NDJSON), each carrying the disclaimer."""
    return b"".join(
        orjson.dumps({**r.to_dict(), "disclaimer": DISCLAIMER}, default=str) + b"\n" for r in results
    )


def _tail(
    summary: dict, criteria: dict, statements: dict, input_errors: list, ended: str, input_warnings: list
) -> dict:
    return {
        "summary": summary,
        "criteria": criteria,
        "statements": statements,
        "inputErrors": [{"path": e.path, "message": e.message} for e in input_errors],
        "inputWarnings": [
            {"path": w.path, "cases": list(w.cases), "message": w.message}
            for w in sorted(input_warnings, key=lambda w: (w.path, w.message))
        ],
        "ended": ended,
    }


def json_footer(
    summary: dict, criteria: dict, statements: dict, input_errors: list, ended: str, input_warnings: list = ()
) -> bytes:
    """The close of the results array and the run-level tables: criteria and statements
    are listed once, and results cite them by IRI. ``input_warnings`` are those no result
    carries (``InputWarning``), listed by file."""
    tail = _tail(summary, criteria, statements, input_errors, ended, input_warnings)
    return b"]," + orjson.dumps(tail, default=str)[1:]


def json_run(
    engine: str,
    knowledge_base: dict,
    started: str,
    summary: dict,
    criteria: dict,
    statements: dict,
    input_errors: list,
    ended: str,
    input_warnings: list = (),
) -> bytes:
    """The JSON document without its results, for results written elsewhere (NDJSON)."""
    tail = _tail(summary, criteria, statements, input_errors, ended, input_warnings)
    return orjson.dumps({**_head(engine, knowledge_base, started), **tail}, default=str) + b"\n"


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


PROV_PREFIXES = {
    "lbp": str(LBP),
    "prov": str(PROV),
    "stmt": str(LBP) + "statement/",
    "rdf": str(RDF),
    "rdfs": str(RDFS),
    "xsd": str(XSD),
}
_N = ox.NamedNode
_TYPE = _N(str(RDF.type))
_XSD_DATETIME = _N(str(XSD.dateTime))
_PROV = {name: _N(str(PROV) + name) for name in (
    "Activity", "Entity", "SoftwareAgent", "used", "wasAssociatedWith", "startedAtTime", "endedAtTime",
    "wasGeneratedBy", "wasDerivedFrom",
)}  # fmt: skip
_LBP = {name: _N(str(LBP) + name) for name in (
    "Assessment", "Recommendation", "forCase", "engine", "outcome", "disclaimer", "recommendedProcedure",
    "urgency", "appropriateness", "alternative", "hasCriterionMatch", "CriterionMatch", "criterion",
    "selected", "matchedFact", "CaseFact", "factProperty", "factValue", "unassessedRedFlag",
    "presentRedFlag", "warning", "undeterminedCriterion", "notMetCriterion", "hasQuestion", "Question",
    "asksAbout", "couldMeet", "effect",
)}  # fmt: skip
_vocab = functools.lru_cache(maxsize=8192)(ox.NamedNode)
"""The node of a knowledge-base IRI (criterion, statement, property, outcome): the same
few hundred in every case, each checked and built once (the cache is bounded: a fact's
value may be any IRI)."""
_warning = functools.lru_cache(maxsize=1024)(lambda text: ox.Literal(text, language="en"))
_BOOLEAN = {True: ox.Literal(True), False: ox.Literal(False)}
STATE_PROPERTIES = {"undetermined": _LBP["undeterminedCriterion"], "notMet": _LBP["notMetCriterion"]}


def _value_node(value: dict) -> ox.NamedNode | ox.Literal:
    if "iri" in value:
        return _vocab(value["iri"])
    v = value["value"]
    if "datatype" in value:
        lexical = ("true" if v else "false") if isinstance(v, bool) else str(v)
        return ox.Literal(lexical, datatype=_vocab(value["datatype"]))
    return ox.Literal(str(v))


def agent(engine: str) -> ox.NamedNode:
    return _N(f"urn:lbp-imaging:engine:{engine}:{__version__}")


def agent_triples(engine: str) -> list[ox.Triple]:
    """The engine's description: the same for every case, so given once per document."""
    me = agent(engine)
    return [
        ox.Triple(me, _TYPE, _PROV["SoftwareAgent"]),
        ox.Triple(me, _N(str(RDFS.label)), ox.Literal(f"lbp-imaging {__version__} ({engine} engine)")),
    ]


def prov_triples(results: list[CaseResult], engine: str, started: str, ended: str) -> list[ox.Triple]:
    """Each assessed case's recommendation as a prov:Entity generated by an assessment
    that used the case, started when the run started and ended at ``ended``. The IRIs
    derive from the case, the run's start and the engine, and every blank node's label
    from its recommendation's, so batches rendered apart (in other processes) join into
    one graph without clashes."""
    triples: list[ox.Triple] = []
    add = triples.append
    me = agent(engine)
    started_at = ox.Literal(started, datatype=_XSD_DATETIME)
    ended_at = ox.Literal(ended, datatype=_XSD_DATETIME)
    engine_name = ox.Literal(engine)
    disclaimer = ox.Literal(DISCLAIMER, language="en")
    P, L = _PROV, _LBP
    for r in results:
        if r.status != "assessed":
            continue
        key = uuid.uuid5(uuid.NAMESPACE_URL, f"{r.case}|{started}|{engine}")
        rec, act, case = _N(f"urn:uuid:{key}"), _N(f"urn:uuid:{uuid.uuid5(key, 'assessment')}"), _N(r.case)
        blank = f"b{key.hex}"
        add(ox.Triple(act, _TYPE, L["Assessment"]))
        add(ox.Triple(act, _TYPE, P["Activity"]))
        add(ox.Triple(act, P["used"], case))
        add(ox.Triple(act, P["wasAssociatedWith"], me))
        add(ox.Triple(act, P["startedAtTime"], started_at))
        add(ox.Triple(act, P["endedAtTime"], ended_at))
        add(ox.Triple(rec, _TYPE, L["Recommendation"]))
        add(ox.Triple(rec, _TYPE, P["Entity"]))
        add(ox.Triple(rec, P["wasGeneratedBy"], act))
        add(ox.Triple(rec, L["forCase"], case))
        add(ox.Triple(rec, L["engine"], engine_name))
        add(ox.Triple(rec, L["outcome"], _vocab(r.outcome["iri"])))
        add(ox.Triple(rec, L["disclaimer"], disclaimer))
        rec_info = r.recommendation or {}
        for key_name in ("procedure", "urgency", "appropriateness"):
            if rec_info.get(key_name):
                prop = L["recommendedProcedure"] if key_name == "procedure" else L[key_name]
                add(ox.Triple(rec, prop, _vocab(rec_info[key_name]["iri"])))
        for alt in rec_info.get("alternatives", []):
            add(ox.Triple(rec, L["alternative"], _vocab(alt["iri"])))
        for i, c in enumerate(r.criteria):
            match = ox.BlankNode(f"{blank}m{i}")
            add(ox.Triple(rec, L["hasCriterionMatch"], match))
            add(ox.Triple(match, _TYPE, L["CriterionMatch"]))
            add(ox.Triple(match, L["criterion"], _vocab(c["iri"])))
            add(ox.Triple(match, L["selected"], _BOOLEAN[c["selected"]]))
            for s in c["sources"]:
                add(ox.Triple(match, P["wasDerivedFrom"], _vocab(s)))
            for j, f in enumerate(c["facts"]):
                fact = ox.BlankNode(f"{blank}m{i}f{j}")
                add(ox.Triple(match, L["matchedFact"], fact))
                add(ox.Triple(fact, _TYPE, L["CaseFact"]))
                add(ox.Triple(fact, L["factProperty"], _vocab(f["property"]["iri"])))
                add(ox.Triple(fact, L["factValue"], _value_node(f["value"])))
        for s in r.sources:
            add(ox.Triple(rec, P["wasDerivedFrom"], _vocab(s)))
        for flag in r.red_flags.get("unassessed", []):
            add(ox.Triple(rec, L["unassessedRedFlag"], _vocab(flag["iri"])))
        for flag in r.red_flags.get("present", []):
            add(ox.Triple(rec, L["presentRedFlag"], _vocab(flag["iri"])))
        for w in r.warnings:
            add(ox.Triple(rec, L["warning"], _warning(w)))
        triples += _state_triples(rec, r, blank)
    return triples


def _state_triples(rec: ox.NamedNode, r: CaseResult, blank: str) -> list[ox.Triple]:
    """The criteria the case leaves undetermined or rules out (met ones are the criterion
    matches), and one ``lbp:Question`` per question with the criteria it could meet and
    what that could do to the decision."""
    L = _LBP
    triples = [
        ox.Triple(rec, STATE_PROPERTIES[state], _vocab(criterion))
        for criterion, state in r.criterion_states.items()
        if state in STATE_PROPERTIES
    ]
    for k, q in enumerate(r.questions):
        node = ox.BlankNode(f"{blank}q{k}")
        triples += [
            ox.Triple(rec, L["hasQuestion"], node),
            ox.Triple(node, _TYPE, L["Question"]),
            ox.Triple(node, L["asksAbout"], _vocab(q["about"]["iri"])),
        ]
        if q["property"]:
            triples.append(ox.Triple(node, L["factProperty"], _vocab(q["property"]["iri"])))
        for c in q["criteria"]:
            triples.append(ox.Triple(node, L["couldMeet"], _vocab(c["iri"])))
            triples.append(ox.Triple(node, L["effect"], _vocab(c["effectIri"])))
    return triples


def turtle(triples: list[ox.Triple], with_prefixes: bool = True) -> bytes:
    """Triples as Turtle with the PROV-O prefixes; without their declarations, for a
    batch of a document that declared them once at its start."""
    text = ox.serialize(triples, format=ox.RdfFormat.TURTLE, prefixes=PROV_PREFIXES)
    if with_prefixes:
        return text
    start = 0
    while text.startswith(b"@prefix ", start):
        start = text.index(b"\n", start) + 1
    return text[start:]


def json_ld_nodes(triples: list[ox.Triple]) -> bytes:
    """Triples as the node objects of a JSON-LD document in expanded form (comma-separated,
    without the array around them), so that batches join into one array."""
    return ox.serialize(triples, format=ox.RdfFormat.JSON_LD).strip()[1:-1]


def to_prov(run: AssessmentRun) -> Graph:
    """The run's PROV-O graph (see ``prov_triples``), as an rdflib graph."""
    g = Graph()
    for prefix, iri in PROV_PREFIXES.items():
        g.bind(prefix, Namespace(iri))
    for t in agent_triples(run.engine) + prov_triples(run.results, run.engine, run.started, run.ended):
        g.add((rdflib_term(t.subject), rdflib_term(t.predicate), rdflib_term(t.object)))
    return g


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


TABLE_COLUMNS = ("case", "outcome", "recommendation", "urgency", "criteria", "questions")


def table_rows(results: list[CaseResult]) -> tuple[list[tuple[str, ...]], list[str] | None]:
    """A batch's rows of the table, and the warnings all its assessed cases carry (None
    when it has none): the table prints those once, below the last row."""
    shared = _shared_warnings(results) if any(r.status == "assessed" for r in results) else None
    return list(_table_rows(results)), shared


def table(rows: list[tuple[str, ...]], engine: str | None = None):
    """Rows as a terminal table; with the title and the column names when ``engine`` is
    given (the first table of a run: the others continue it)."""
    from rich.table import Table

    grid = Table(
        title=f"lbp-imaging assessment ({engine} engine)" if engine else None,
        show_header=engine is not None,
        show_lines=False,
    )
    for column in TABLE_COLUMNS:  # a table without the names keeps their width
        grid.add_column(column, overflow="fold", min_width=len(column))
    for row in rows:
        grid.add_row(*row)
    return grid


def print_table_footer(
    console, shared: list[str], input_errors: list, input_warnings: list, counts: dict[str, int]
) -> None:
    """Below the rows: the warnings every assessed case carries, the input errors and
    warnings, the totals and the disclaimer."""
    from rich.markup import escape

    for warning in shared:
        console.print(warning, markup=False, highlight=False)
    for e in input_errors:
        console.print(f"[red]input error[/red] {escape(str(e))}", highlight=False)
    for w in input_warnings:
        console.print(f"[yellow]input warning[/yellow] {escape(str(w))}", highlight=False)
    errors = counts["inputErrors"]
    console.print(
        f"{counts['cases']} case{'s' if counts['cases'] != 1 else ''}: {counts['assessed']} assessed, "
        f"{counts['invalid']} invalid, {errors} input error{'s' if errors != 1 else ''}",
        highlight=False,
    )
    console.print(f"[dim]{DISCLAIMER}[/dim]")


def print_table(run: AssessmentRun, console) -> None:
    """A run held in memory as one table and its footer."""
    console.print(table(list(_table_rows(run.results)), run.engine))
    print_table_footer(
        console,
        _shared_warnings(run.results),
        run.input_errors,
        run.input_warnings,
        summary_of(run.results, run.input_errors),
    )
