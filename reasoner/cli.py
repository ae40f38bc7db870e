"""The ``lbp-imaging`` command line.

Imports of the engine are deferred into the commands, so ``--help`` answers at once.
Exit codes: 0 every case assessed; 1 some input invalid (the rest still assessed and
reported); 2 usage or knowledge-base error. ``check``: 1 on any ERROR; ``impact``: 1 when
anything differs from the base; ``docs``: 2 when the site cannot be written.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager, nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .server.sparql.text import DEFAULT_MAX_DEPTH

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,  # plain help: rich's formatter takes 0.13 s to import, over a third of --help
    no_args_is_help=True,
    help="Decide when a patient with low back pain needs imaging, and say why. "
    "Decision support, not diagnosis.",
)


class Engine(StrEnum):
    fast = "fast"
    hermit = "hermit"


class Format(StrEnum):
    table = "table"
    json = "json"
    ndjson = "ndjson"
    csv = "csv"
    turtle = "turtle"
    json_ld = "json-ld"
    fhir = "fhir"


class ResultFormat(StrEnum):
    json = "json"
    csv = "csv"
    tsv = "tsv"
    xml = "xml"
    turtle = "turtle"
    ntriples = "ntriples"


QUERY_ACCEPT = {
    "json": "application/sparql-results+json, text/turtle;q=0.1",
    "csv": "text/csv, text/turtle;q=0.1",
    "tsv": "text/tab-separated-values, text/turtle;q=0.1",
    "xml": "application/sparql-results+xml, text/turtle;q=0.1",
    "turtle": "text/turtle",
    "ntriples": "application/n-triples",
}
"""What ``query --format`` asks for, as an Accept header: the results format for SELECT
and ASK, Turtle for CONSTRUCT and DESCRIBE unless N-Triples is asked for (as before)."""


KbOption = Annotated[
    Path | None,
    typer.Option(
        "--kb",
        help="Knowledge-base root (holding ontology/, shapes/, queries/).",
        show_default=False,
    ),
]


AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Reference date (YYYY-MM-DD) to which ages and durations in FHIR Bundles are counted "
        "(default: today).",
        show_default=False,
    ),
]


MergeOption = Annotated[
    bool,
    typer.Option(
        "--merge-duplicates",
        help="Read a case IRI found in several files as one case, its facts merged (each such result "
        "says so). Without it, such a case is an error for every file it is in and is not assessed.",
    ),
]


def _holds_json(path: Path) -> bool:
    """Whether ``path`` is, or a folder holds, a JSON file (a FHIR Bundle, maybe)."""
    return path.suffix == ".json" or (path.is_dir() and next(path.rglob("*.json"), None) is not None)


def _as_of(text: str | None):
    import datetime as dt

    if text is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _fail(f"--as-of {text!r} is not a date (YYYY-MM-DD)") from None


def _warn(warnings: list[str]) -> None:
    """Input warnings (a FHIR coding the mappings do not know, say) go to stderr; they
    do not change the exit code, and each result carries its own."""
    for w in warnings:
        typer.echo(f"lbp-imaging: warning: {w}", err=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"lbp-imaging: {message}", err=True)
    return typer.Exit(code)


def _load_kb(kb_dir: Path | None):
    from .knowledge import KnowledgeBase, KnowledgeBaseError
    from .pipeline.definitions import UnsupportedConstruct

    try:
        return KnowledgeBase.load(kb_dir)
    except (KnowledgeBaseError, UnsupportedConstruct) as exc:
        raise _fail(f"knowledge base error: {exc}") from None


def _assessor(kb, engine: Engine, as_of: str | None = None, merge_duplicates: bool = False):
    from .knowledge import KnowledgeBaseError
    from .pipeline.assess import Assessor
    from .pipeline.definitions import UnsupportedConstruct

    day = _as_of(as_of)
    try:
        assessor = Assessor(kb, engine.value)
        assessor.inputs.as_of = day
        assessor.inputs.merge_duplicates = merge_duplicates
        return assessor
    except UnsupportedConstruct as exc:
        raise _fail(f"the fast engine cannot evaluate the knowledge base: {exc}") from None
    except KnowledgeBaseError as exc:
        raise _fail(f"knowledge base error: {exc}") from None


def _run(assessor, paths: list[Path]):
    """The assessment run of a few cases (``explain``, ``questionnaire --case``), held in
    memory, and the input it was read from."""
    from .pipeline import cases as case_input

    loaded = case_input.load(paths, assessor.inputs)
    _warn(loaded.warnings())
    return assessor.assess_loaded(loaded), loaded


def _report(run) -> None:
    """After the output: each input error and each error of an invalid case, on stderr."""
    for e in run.input_errors:
        typer.echo(f"lbp-imaging: {e}", err=True)
    for r in run.invalid:
        for line in r.error_lines():
            typer.echo(f"lbp-imaging: {line}", err=True)


def _write(text: str, output: Path | None) -> None:
    """Write ``text`` ending in a newline, to ``output`` as to standard output alike."""
    text = text if text.endswith("\n") else text + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def _version(value: bool) -> None:
    """``--version``: the package's version and the knowledge base's (the top ontology and
    its ``owl:versionIRI``), which together say what gave an answer."""
    if not value:
        return
    from . import __version__
    from .knowledge import KnowledgeBase, KnowledgeBaseError, default_kb_dir

    typer.echo(f"lbp-imaging {__version__}")
    try:
        identity = KnowledgeBase.load(default_kb_dir()).identity
    except KnowledgeBaseError as exc:
        raise _fail(f"knowledge base error: {exc}") from None
    typer.echo(f"ontology {identity['ontology']} (version IRI {identity['versionIRI']})")
    raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the package and knowledge-base versions, and exit.",
        ),
    ] = False,
) -> None:
    """Decide when a patient with low back pain needs imaging, and say why. Decision
    support, not diagnosis."""


@app.command()
def assess(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Case files or directories (Turtle, N-Triples, JSON-LD, FHIR Bundles), "
            "or one FHIR Bulk Data export folder (NDJSON)."
        ),
    ],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    engine: Annotated[
        Engine, typer.Option(help="fast (default) or hermit (reference, OWL 2 DL).")
    ] = Engine.fast,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes for large inputs (default: up to 2).")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    merge_duplicates: MergeOption = False,
    as_of: AsOfOption = None,
    bulk_memory: Annotated[
        int,
        typer.Option(
            min=1, help="MiB of a Bulk Data export's lines held in memory while sorting them by patient."
        ),
    ] = 64,
    kb_dir: KbOption = None,
) -> None:
    """Assess patient cases: recommended imaging, urgency, criteria, facts and sources."""
    from .fhir.bulk import BulkExport, export_files, is_export
    from .pipeline import cases as case_input
    from .pipeline import stream

    exports = [p for p in paths if is_export(p)]
    if exports and len(paths) > 1:
        raise _fail(f"{exports[0]} is a FHIR Bulk Data export: assess it on its own")
    if fmt is Format.ndjson and output is None:
        raise _fail("--format ndjson needs --output FILE (the run-level document is written beside it)")
    kb = _load_kb(kb_dir)
    assessor = _assessor(kb, engine, as_of, merge_duplicates)
    # Every format streams batch by batch through the one pipeline (bounded memory,
    # parallel workers for large inputs); `table -o FILE` writes JSON.
    n_workers = workers or stream.default_workers()
    fhir = bool(exports) or any(_holds_json(p) for p in paths)
    starting = (
        stream.worker_pool(assessor, n_workers, fhir) if stream.worth_workers(paths, n_workers) else None
    )
    with starting or nullcontext() as pool:
        if exports:
            with (
                BulkExport(export_files(exports[0]), bulk_memory << 20, pool=pool) as export,
                _sink(fmt, output, kb.identity) as sink,
                _progress(export.patient_lines, quiet) as advance,
            ):
                summary = stream.assess_bulk(
                    assessor, export, sink, workers=n_workers, progress=advance, pool=pool
                )
        else:
            read_many = stream.pool_reader(pool, assessor.inputs) if pool is not None else None
            grouped = case_input.load_grouped(paths, assessor.inputs, read_many)
            _warn(grouped.warnings())
            with _sink(fmt, output, kb.identity) as sink, _progress(len(grouped.lines), quiet) as advance:
                summary = stream.assess_grouped(
                    assessor, grouped, sink, workers=n_workers, progress=advance, pool=pool
                )
    _warn(summary.warnings)
    for message in summary.messages:
        typer.echo(f"lbp-imaging: {message}", err=True)
    raise typer.Exit(summary.exit_code)


@contextmanager
def _sink(fmt: Format, output: Path | None, knowledge_base: dict):
    """Where ``assess`` writes: the table on the terminal (the console the progress bar
    uses), or a document to ``output`` or standard output."""
    from .pipeline import sinks

    if fmt is Format.table and output is None:
        from rich import get_console

        yield sinks.TableSink(get_console())
        return
    if fmt is Format.ndjson:
        assert output is not None
        with output.open("wb") as out, run_document(output).open("wb") as run_out:
            yield sinks.NdjsonSink(out, run_out, knowledge_base)
        return
    text = Format.json if fmt is Format.table else fmt
    with _binary_output(output, text is Format.json) as out:
        yield sinks.for_format(text.value, out, knowledge_base)


def run_document(output: Path) -> Path:
    """Where ``--format ndjson`` writes the run-level document: beside the results,
    ``results.ndjson`` -> ``results.run.json``."""
    stem = output.name.removesuffix(".ndjson")
    return output.with_name(f"{stem}.run.json")


@contextmanager
def _binary_output(output: Path | None, final_newline: bool):
    if output is None:
        yield sys.stdout.buffer
        if final_newline:  # JSON ends without one; the other formats end in one
            sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
    else:
        with output.open("wb") as f:
            yield f


@contextmanager
def _progress(n: int, quiet: bool):
    if quiet or n < 1000 or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("assessing", total=n)
        yield lambda k: progress.advance(task, k)


@app.command("spark-assess")
def spark_assess(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT", help="A FHIR Bulk Data export folder (NDJSON), or a case file or folder."
        ),
    ],
    output: Annotated[
        Path,
        typer.Argument(metavar="OUTPUT", help="Folder for results/ (NDJSON), results.parquet/ and run.json."),
    ],
    master: Annotated[str, typer.Option(help="Spark master: local[N] or spark://HOST:PORT.")] = "local[2]",
    partitions: Annotated[
        int | None,
        typer.Option(min=1, help="Partitions of the shuffle by patient (default: twice Spark's cores)."),
    ] = None,
    as_of: AsOfOption = None,
    kb_dir: KbOption = None,
) -> None:
    """Assess on Apache Spark (the spark extra): the answers of assess --format ndjson,
    as NDJSON and Parquet."""
    from importlib.util import find_spec

    if find_spec("pyspark") is None:
        raise _fail("spark-assess needs Apache Spark: pip install '.[spark]'")
    from .spark import SparkAssessError
    from .spark import spark_assess as run

    try:
        summary = run(source, output, master, kb_dir, _as_of(as_of), partitions)
    except SparkAssessError as exc:
        raise _fail(str(exc)) from None
    _warn(summary["warnings"])
    for message in summary["messages"]:
        typer.echo(f"lbp-imaging: {message}", err=True)
    counts = summary["summary"]
    typer.echo(f"lbp-imaging: start-up (knowledge base, Spark session): {summary['startup']:.1f}s", err=True)
    typer.echo(
        f"lbp-imaging: {counts['cases']} cases ({counts['invalid']} invalid), {counts['inputErrors']} "
        f"input errors, {summary['seconds']:.1f}s on {summary['partitions']} partitions: "
        f"{summary['results']}, {summary['parquet']}, {summary['run']}",
        err=True,
    )
    raise typer.Exit(summary["exitCode"])


@app.command()
def explain(
    path: Annotated[Path, typer.Argument(help="A case file (or directory).")],
    case: Annotated[str | None, typer.Option(help="The case IRI, when the file holds several.")] = None,
    engine: Annotated[Engine, typer.Option(help="fast or hermit.")] = Engine.fast,
    merge_duplicates: MergeOption = False,
    as_of: AsOfOption = None,
    kb_dir: KbOption = None,
) -> None:
    """Show the reasoning chain of a case as a tree: facts, criteria, recommendation, sources."""
    from rich.console import Console

    from .pipeline.tree import explanation_tree

    kb = _load_kb(kb_dir)
    assessor = _assessor(kb, engine, as_of, merge_duplicates)
    run, _ = _run(assessor, [path])
    chosen = [r for r in run.results if case is None or r.case == case]
    for e in run.input_errors:  # first: when no case is left, they say why
        typer.echo(f"lbp-imaging: {e}", err=True)
    if not chosen:
        raise _fail(f"no case {case} in {path}" if case else f"no case in {path}", 1)
    console = Console()
    for r in chosen:
        console.print(explanation_tree(r, run.statements, assessor.vocab.effect_label))
    raise typer.Exit(1 if any(r.status != "assessed" for r in chosen) or run.input_errors else 0)


@app.command()
def questionnaire(
    case: Annotated[
        Path | None,
        typer.Option(
            "--case",
            help="A case file: write the adaptive questionnaire, only what could still change its decision.",
        ),
    ] = None,
    populate: Annotated[
        bool,
        typer.Option(
            "--populate",
            help="With --case: the whole questionnaire, its recorded answers filled in (SDC $populate).",
        ),
    ] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")] = None,
    as_of: AsOfOption = None,
    kb_dir: KbOption = None,
) -> None:
    """Write the FHIR R4 Questionnaire (SDC) of the case facts the criteria read."""
    import json

    from .fhir.questionnaire import QuestionnaireError, adaptive
    from .fhir.questionnaire import populate as populated
    from .fhir.questionnaire import questionnaire as full_questionnaire

    if populate and case is None:
        raise _fail("--populate needs --case: the case whose answers fill the questionnaire")
    kb = _load_kb(kb_dir)
    try:
        resource = full_questionnaire(kb)
    except QuestionnaireError as exc:
        raise _fail(f"knowledge base error: {exc}") from None
    if case is not None:
        assessor = _assessor(kb, Engine.fast, as_of)
        run, _ = _run(assessor, [case])
        _report(run)
        if len(run.results) != 1 or run.invalid:
            found = f"{len(run.results)} cases" if len(run.results) != 1 else "an invalid case"
            raise _fail(f"{case}: the questionnaire of a case needs one valid case, found {found}", 1)
        resource = (populated if populate else adaptive)(resource, run.results[0])
    _write(json.dumps(resource, indent=2, ensure_ascii=False), output)


class Validator(StrEnum):
    fast = "fast"
    reference = "reference"


class ValidateFormat(StrEnum):
    text = "text"
    turtle = "turtle"
    json_ld = "json-ld"


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Case files or directories.")],
    engine: Annotated[
        Validator, typer.Option(help="fast (compiled SHACL) or reference (pyshacl).")
    ] = Validator.fast,
    fmt: Annotated[
        ValidateFormat,
        typer.Option(
            "--format",
            "-f",
            help="text (a line per problem), or a SHACL sh:ValidationReport of every case as turtle "
            "or json-ld (pyshacl's, whatever --engine says).",
        ),
    ] = ValidateFormat.text,
    merge_duplicates: MergeOption = False,
    as_of: AsOfOption = None,
    kb_dir: KbOption = None,
) -> None:
    """Check cases against the case shapes without assessing them; warn of files with no
    case and of terms the ontology does not define."""
    import pyoxigraph as ox

    from .knowledge import KnowledgeBaseError
    from .pipeline import cases as case_input
    from .pipeline.definitions import UnsupportedConstruct
    from .pipeline.explain import Vocabulary
    from .pipeline.validate import SH, FastValidator, serialize_report, shacl_report, validate_reference

    kb = _load_kb(kb_dir)
    report = fmt is not ValidateFormat.text
    try:
        shapes = kb.shapes("case-shapes")
        validator = FastValidator(shapes) if engine is Validator.fast and not report else None
    except (KnowledgeBaseError, UnsupportedConstruct) as exc:
        raise _fail(f"knowledge base error: {exc}") from None
    options = case_input.InputOptions.for_knowledge_base(kb, _as_of(as_of), shapes)
    options.merge_duplicates = merge_duplicates
    loaded = case_input.load(paths, options)
    warnings = loaded.warnings()
    _warn(warnings)
    vocab = Vocabulary(kb.ontology)
    if report:
        graph = shacl_report(kb.ontology + case_input.to_rdflib(loaded.quads), shapes)
        results = list(graph.objects(None, SH.result))
        for e in loaded.errors:
            typer.echo(f"lbp-imaging: {e}", err=True)
        _write(serialize_report(graph, fmt.value), None)
    elif validator is not None:
        store = ox.Store()
        store.bulk_extend(kb.ontology_quads)
        store.bulk_extend(loaded.quads)
        results = validator.validate(store, loaded.quads)
    else:
        results = validate_reference(kb.ontology + case_input.to_rdflib(loaded.quads), shapes)
    if not report:
        for e in loaded.errors:
            typer.echo(f"{e}")
        for r in sorted(results, key=lambda r: (loaded.source_of.get(r.focus, ""), r.focus, r.path or "")):
            field = vocab.label(r.path) if r.path else "case"
            typer.echo(f"{loaded.source_of.get(r.focus, '?')}: case {r.focus}: {field}: {r.message}")
    subjects = case_input.group_by_subject(iter(loaded.quads))
    cases = [
        key
        for key, facts in case_input.CaseBatch.from_quads(subjects).facts.items()
        if options.terms.is_case(facts)
    ]
    typer.echo(
        f"{len(loaded.files)} file(s), {len(cases)} case(s), {len(results)} problem(s), "
        f"{len(loaded.errors)} input error(s), {len(warnings)} warning(s)",
        err=True,
    )
    raise typer.Exit(1 if results or loaded.errors or not cases else 0)


@app.command()
def query(
    name: Annotated[str, typer.Argument(help="A named query of queries/ or a .rq file.")],
    data: Annotated[list[Path] | None, typer.Option(help="Cases to assess and add to the graph.")] = None,
    fmt: Annotated[
        ResultFormat, typer.Option("--format", "-f", help="SPARQL result format.")
    ] = ResultFormat.json,
    engine: Annotated[Engine, typer.Option(help="Engine used to assess --data.")] = Engine.fast,
    merge_duplicates: MergeOption = False,
    as_of: AsOfOption = None,
    max_query_depth: Annotated[
        int, typer.Option(help="Deepest nesting of brackets the query may have; deeper ones are refused.")
    ] = DEFAULT_MAX_DEPTH,
    timeout: Annotated[float, typer.Option(help="Seconds the query may take; it is stopped then.")] = 300.0,
    max_query_memory_mb: Annotated[
        int, typer.Option(help="MiB by which the query may grow the process evaluating it.")
    ] = 4096,
    kb_dir: KbOption = None,
) -> None:
    """Run SPARQL over the knowledge base plus assessed cases and their PROV-O results."""
    import pyoxigraph as ox

    from .knowledge import KnowledgeBaseError
    from .pipeline import cases as case_input
    from .pipeline.render import to_prov
    from .pipeline.select import add_memberships
    from .server.sparql.query import NotAcceptable, QueryTimeout
    from .server.sparql.query_pool import QueryProcessFailed, QueryTooLarge, run_isolated
    from .server.sparql.text import depth_problem, scan

    kb = _load_kb(kb_dir)
    path = Path(name)
    try:
        text = path.read_text(encoding="utf-8") if path.suffix == ".rq" else kb.query(name).text
    except (OSError, KnowledgeBaseError) as exc:
        raise _fail(str(exc)) from None
    except UnicodeDecodeError:
        raise _fail(f"{path}: not UTF-8 text") from None
    if problem := depth_problem(scan(text), max_query_depth):
        raise _fail(f"{name}: {problem}")
    store = ox.Store()
    store.bulk_extend(
        ox.parse(kb.ontology.serialize(format="nt", encoding="utf-8"), format=ox.RdfFormat.N_TRIPLES)
    )
    exit_code = 0
    if data:
        assessor = _assessor(kb, engine, as_of, merge_duplicates)
        loaded = case_input.load(data, assessor.inputs)
        _warn(loaded.warnings())
        run = assessor.assess_loaded(loaded)
        store.bulk_extend(loaded.quads)
        # What the engine concluded about each case, as the selection steps read it (the
        # classes it meets, those it leaves undetermined), so the closed-world queries of
        # queries/ run here as over a batch or the server.
        assessed = [r for r in run.results if r.status == "assessed"]
        add_memberships(
            store, {r.case: r.met_classes() for r in assessed}, {r.case: r.undetermined() for r in assessed}
        )
        store.bulk_extend(
            ox.parse(to_prov(run).serialize(format="nt", encoding="utf-8"), format=ox.RdfFormat.N_TRIPLES)
        )
        exit_code = run.exit_code
        _report(run)
    try:
        answer = run_isolated(
            store, text, QUERY_ACCEPT[fmt.value], timeout, max_query_memory_mb * 1024 * 1024
        )
    except SyntaxError as exc:
        raise _fail(f"SPARQL syntax error: {exc}") from None
    except NotAcceptable:
        raise _fail(
            f"--format {fmt.value} does not fit this query: use json, csv, tsv or xml for SELECT "
            "and ASK (ASK: json or xml), turtle or ntriples for CONSTRUCT and DESCRIBE"
        ) from None
    except QueryTimeout:
        raise _fail(f"the query did not finish within --timeout {timeout:g} s") from None
    except QueryTooLarge:
        raise _fail(f"the query needed more than --max-query-memory-mb {max_query_memory_mb}") from None
    except QueryProcessFailed as exc:
        raise _fail(
            f"the query stopped the process evaluating it ({exc.how}): it cannot be answered as written"
        ) from None
    sys.stdout.write(answer.body.decode("utf-8"))
    raise typer.Exit(exit_code)


@app.command()
def serve(
    store: Annotated[
        Path | None, typer.Option(help="Keep the store on disk in this directory (default: in memory).")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    cases: Annotated[
        list[Path] | None, typer.Option(help="Case files or directories to assess and store at start.")
    ] = None,
    allow_update: Annotated[
        bool, typer.Option(help="Accept SPARQL Update from holders of the token.")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(envvar="LBP_IMAGING_TOKEN", help="Bearer token that updates need.", show_default=False),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds one query may take.")] = 5.0,
    max_rows: Annotated[int, typer.Option(help="Most rows (or triples) one answer may hold.")] = 10_000,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="Origin whose browser scripts may call the server ('*' for any).")
    ] = None,
    allow_service: Annotated[bool, typer.Option(help="Let queries call other endpoints (SERVICE).")] = False,
    allow_load: Annotated[bool, typer.Option(help="Let updates LOAD URLs or files.")] = False,
    fhir_server: Annotated[
        list[str] | None,
        typer.Option(
            help="Base URL of a FHIR server the CDS Hooks service may fetch patient data from (repeat "
            "for more); without one it fetches from none and needs the prefetch.",
            show_default=False,
        ),
    ] = None,
    cds_trust: Annotated[
        Path | None,
        typer.Option(
            help="JSON file of the CDS clients (JWT issuers and their keys) the CDS Hooks services "
            "trust; with it, every hook and feedback call needs their signed JWT (see README, CDS Hooks).",
            show_default=False,
        ),
    ] = None,
    case_workers: Annotated[int, typer.Option(help="Processes that assess posted cases.")] = 1,
    answer_cache_mb: Annotated[
        int, typer.Option(help="MiB of query answers kept until the next write (0: none).")
    ] = 64,
    max_query_depth: Annotated[
        int, typer.Option(help="Deepest nesting of brackets a query may have; deeper ones are refused.")
    ] = DEFAULT_MAX_DEPTH,
    query_processes: Annotated[
        int, typer.Option(help="Processes that evaluate SPARQL queries (queries run at once).")
    ] = 8,
    max_query_memory_mb: Annotated[
        int, typer.Option(help="MiB by which one query may grow its process; past that it fails (503).")
    ] = 512,
    max_body_mb: Annotated[
        float, typer.Option(help="Largest request body any endpoint reads, in MiB (413 beyond).")
    ] = 16,
    audit_log: Annotated[
        Path | None,
        typer.Option(
            help="Append a JSON line for each case write and CDS Hooks decision to this file "
            "(default: no audit log).",
            show_default=False,
        ),
    ] = None,
    audit_log_max_mb: Annotated[
        float, typer.Option(help="MiB past which the audit log is rotated to FILE.1, FILE.2, ….")
    ] = 10,
    audit_log_backups: Annotated[int, typer.Option(help="Rotated audit log files kept.")] = 5,
    form_link_minutes: Annotated[
        float, typer.Option(help="Minutes a CDS card's link to the pre-filled form stays valid.")
    ] = 15,
    public_url: Annotated[
        str | None,
        typer.Option(
            help="The server's URL as clients reach it (behind a proxy), for the links in CDS cards "
            "(default: the URL each request came to).",
            show_default=False,
        ),
    ] = None,
    kb_dir: KbOption = None,
) -> None:
    """Serve the knowledge graph: a SPARQL 1.1 endpoint at /sparql (read-only by default)."""
    from .server.cds_hooks.trust import load_trust
    from .server.settings import ServerSettings, SettingsError

    try:
        settings = ServerSettings(
            timeout=timeout,
            max_rows=max_rows,
            allow_update=allow_update,
            token=token,
            allow_service=allow_service,
            allow_load=allow_load,
            cors_origins=tuple(cors_origin or ()),
            fhir_servers=tuple(fhir_server or ()),
            cds_trust=load_trust(cds_trust) if cds_trust else None,
            case_workers=case_workers,
            answer_cache_bytes=answer_cache_mb * 1024 * 1024,
            max_query_depth=max_query_depth,
            query_processes=query_processes,
            max_query_memory_mb=max_query_memory_mb,
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            audit_log=audit_log,
            audit_log_max_bytes=int(audit_log_max_mb * 1024 * 1024),
            audit_log_backups=audit_log_backups,
            form_link_seconds=form_link_minutes * 60,
            public_url=public_url,
        )
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    kb = _load_kb(kb_dir)
    from .knowledge import KnowledgeBaseError
    from .server.serve import serve as run_server

    try:
        run_server(kb, settings, store, host, port, cases or [])
    except KnowledgeBaseError as exc:
        raise _fail(f"knowledge base error: {exc}") from None
    except OSError as exc:
        raise _fail(f"cannot serve: {exc}") from None


class ReportFormat(StrEnum):
    text = "text"
    md = "md"
    json = "json"


class CheckFormat(StrEnum):
    text = "text"
    md = "md"
    json = "json"
    tsv = "tsv"


@app.command()
def check(
    fmt: Annotated[
        CheckFormat,
        typer.Option("--format", "-f", help="Report format (tsv: ROBOT's report table)."),
    ] = CheckFormat.text,
    hermit: Annotated[
        bool,
        typer.Option(help="Run HermiT (consistency, unsatisfiable classes); --no-hermit for a quick loop."),
    ] = True,
    kb_dir: KbOption = None,
) -> None:
    """Check the knowledge base: files parse, HermiT, governance shapes, quotes, hygiene,
    guideline rules, examples, versions. Exit 1 on any ERROR."""
    from .authoring.check import run_check
    from .knowledge import default_kb_dir

    root = kb_dir or default_kb_dir()
    if not (root / "ontology").is_dir():
        raise _fail(f"{root} holds no ontology/ directory")
    report = run_check(root, hermit=hermit)
    render = {"text": report.to_text, "md": report.to_markdown, "json": report.to_json, "tsv": report.to_tsv}
    rendered = render[fmt.value]()
    sys.stdout.write(rendered)
    raise typer.Exit(report.exit_code)


@app.command()
def impact(
    base: Annotated[
        str,
        typer.Option(
            "--base", help="The version to compare with: a git revision or a knowledge-base directory."
        ),
    ],
    cases: Annotated[
        list[Path] | None,
        typer.Option("--cases", help="More case files or directories (besides examples/cases)."),
    ] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="Report format.")] = ReportFormat.text,
    kb_dir: KbOption = None,
) -> None:
    """Which cases change decision between a base version and this one, why, and the axiom
    diff. Exit 0 when nothing differs, 1 when something does."""
    from .authoring import impact_report
    from .authoring.impact import impact as compare
    from .authoring.revision import RevisionError, knowledge_base_at
    from .knowledge import KnowledgeBase, KnowledgeBaseError, default_kb_dir
    from .pipeline.definitions import UnsupportedConstruct

    root = (kb_dir or default_kb_dir()).resolve()
    library = [p for p in [root / "examples" / "cases", *(cases or [])] if p.exists()]
    missing = [str(p) for p in cases or [] if not p.exists()]
    if missing:
        raise _fail(f"no such case file or directory: {', '.join(missing)}")
    work = _load_kb(root)
    try:
        with knowledge_base_at(base, root) as base_root:
            found = compare(KnowledgeBase.load(base_root), work, library)
    except RevisionError as exc:
        raise _fail(f"--base {base}: not a directory, and git cannot export it: {exc}") from None
    except (KnowledgeBaseError, UnsupportedConstruct) as exc:
        raise _fail(f"knowledge base error: {exc}") from None
    render = {"text": impact_report.to_text, "md": impact_report.to_markdown, "json": impact_report.to_json}
    sys.stdout.write(render[fmt.value](found))
    raise typer.Exit(found.exit_code)


@app.command()
def docs(
    out_dir: Annotated[
        Path, typer.Argument(help="Directory to write the site into (new, empty, or a site built before).")
    ],
    kb_dir: KbOption = None,
) -> None:
    """Write the knowledge base's documentation as a static HTML site: criteria with their
    logic and highlighted sources, findings, procedures, a decision diagram, named queries."""
    from .authoring.docs_site import DocsError, build_site
    from .knowledge import KnowledgeBaseError
    from .pipeline.definitions import UnsupportedConstruct

    kb = _load_kb(kb_dir)
    try:
        built = build_site(kb, out_dir)
    except (KnowledgeBaseError, UnsupportedConstruct) as exc:
        raise _fail(f"knowledge base error: {exc}") from None
    except (DocsError, OSError) as exc:
        raise _fail(f"cannot write the site: {exc}") from None
    typer.echo(f"lbp-imaging docs: wrote {len(built.files)} files to {out_dir}")
    width = max(len(page) for page, _ in built.pages)
    for page, what in built.pages:
        typer.echo(f"  {page:<{width}}  {what}")
    typer.echo(f"Open {out_dir / 'index.html'} in a browser; the site needs no server.")


@app.command()
def release(
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Directory to write into (new, empty, or a release written before)."
        ),
    ],
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="The version meant (X.Y.Z): refused unless the ontology carries it.",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="The previous release (a git revision or a knowledge-base directory): the changelog "
            "entry lists the classes added and removed since, and counts the axioms.",
            show_default=False,
        ),
    ] = None,
    kb_dir: KbOption = None,
) -> None:
    """Write a release as ODK does: the merged ontology (Turtle and RDF/XML, imports merged,
    version IRI kept), the FHIR artefacts, and a changelog entry (docs/release.md)."""
    from .authoring.release import ReleaseError, base_ontology, write_release
    from .knowledge import KnowledgeBaseError

    kb = _load_kb(kb_dir)
    try:
        base = (since, base_ontology(since, kb.root)) if since else None
        written = write_release(kb, output, version, base)
    except ReleaseError as exc:
        raise _fail(str(exc)) from None
    except KnowledgeBaseError as exc:
        raise _fail(f"knowledge base error: {exc}") from None
    except OSError as exc:
        raise _fail(f"cannot write the release: {exc}") from None
    count = len(written.files)
    typer.echo(f"lbp-imaging release {written.version} ({written.version_iri}): {count} files in {output}")
    width = max(len(name) for name, _ in written.contents)
    for name, what in written.contents:
        typer.echo(f"  {name:<{width}}  {what}")
    typer.echo("")
    typer.echo(written.entry, nl=False)


if __name__ == "__main__":  # pragma: no cover
    app()
