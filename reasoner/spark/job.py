"""``spark_assess``: a FHIR Bulk Data export, or case files, assessed on Apache Spark with
the answers of ``lbp-imaging assess INPUT --format ndjson``.

The driver loads the knowledge base (to fail early on a broken one, and for the
run-level tables), starts or joins a Spark session, and runs three steps:

1. a task per input file reads it and links each line to its patient (Bulk Data:
   ``reasoner.spark.bulk``) or groups its lines by subject (case files:
   ``reasoner.spark.case_files``); what is not a line of a case (errors, warnings, an
   export's Medications) comes back to the driver;
2. ``sortByKey`` groups the lines by patient or subject across files (the shuffle), and
   each partition is assessed by the unchanged pipeline, in batches, by executors that
   compile the knowledge base once per Python worker process (``executor``);
3. the results are written as NDJSON and Parquet by Spark's writers, and the run
   document by the driver, from each batch's bookkeeping added up in partition order as
   ``assess`` adds up its batches (``stream.StreamSummary``): the same counts, criteria
   and statements (in the same order for an export), input errors and warnings.

The read lines and the assessed rows are kept by Spark (memory, spilling to disk) between
the steps that use them twice, so no file is read and no case assessed more than once.
Only the fast engine runs on Spark (HermiT's JVM per batch is not worth distributing).
"""

from __future__ import annotations

import datetime as dt
import time
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

from ..fhir.bulk import export_files, is_export
from ..knowledge import KnowledgeBase, KnowledgeBaseError, default_kb_dir
from ..pipeline.assess import Assessor
from ..pipeline.bulk_input import export_problems
from ..pipeline.cases import InputWarning, find_files, merge_warnings
from ..pipeline.definitions import UnsupportedConstruct
from ..pipeline.stream import StreamSummary, finish_bulk, finish_grouped
from . import bulk, case_files
from .executor import BATCH, ROW
from .output import PARQUET, RESULTS, RUN, write_results, write_run
from .session import shuffle_partitions, spark_session

if TYPE_CHECKING:
    from pyspark import RDD
    from pyspark.sql import SparkSession


class SparkAssessError(Exception):
    """A run that cannot be done, with the reason in the user's terms."""


def spark_failure(text: str) -> str:
    """What a failed Spark job says, in one line: the exception an executor's Python
    raised (the last line of its traceback), else the first line of Spark's message,
    never the stack traces of both languages."""
    python = text.rsplit("Traceback (most recent call last):", 1)
    if len(python) == 2:
        lines = []
        for line in python[1].splitlines():
            if line.startswith("\tat ") or (lines and not line.strip()):
                break
            lines.append(line)
        said = [line for line in lines if line.strip() and not line.startswith(" ")]
        if said:
            return said[-1]
    return next((line.strip() for line in text.splitlines() if line.strip()), "no reason given")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def spark_assess(
    input: Path,
    output: Path,
    master: str = "local[2]",
    kb_root: Path | None = None,
    as_of: dt.date | None = None,
    partitions: int | None = None,
) -> dict:
    """Assess ``input`` (a Bulk Data export folder, or a case file or folder) on Spark
    into the folder ``output`` (``results/``, ``results.parquet/``, ``run.json``: see
    ``reasoner.spark.output``). Returns the run's ``summary`` counts, the ``exitCode``
    ``assess`` would give, the ``warnings`` and ``messages`` it would print, the number
    of ``partitions``, the seconds until the run could start (``startup``: the knowledge
    base loaded and the Spark session started) and those of the whole run (``seconds``).

    Raises ``SparkAssessError``, with a message for the user, when the input is missing,
    the knowledge base cannot be used by the fast engine, the case files hold blank nodes
    ``assess`` would rename (``case_files.BlankNodeClash``), or Spark fails."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    began = time.monotonic()
    if not input.exists():
        raise SparkAssessError(f"{input}: no such file or directory")
    root = (kb_root or default_kb_dir()).resolve()
    try:
        kb = KnowledgeBase.load(root)
        assessor = Assessor(kb)  # its vocabulary names what the results cite
    except (KnowledgeBaseError, UnsupportedConstruct) as exc:
        raise SparkAssessError(f"knowledge base error: {exc}") from None
    day = as_of or dt.date.today()
    assessor.inputs.as_of = day
    output.mkdir(parents=True, exist_ok=True)
    try:
        with spark_session(master) as spark:
            startup = time.monotonic() - began
            n = shuffle_partitions(spark, partitions)
            run = _export if is_export(input) else _case_files
            summary, warnings = run(spark, input, output, assessor, str(root), day, n)
            write_run(output, summary, kb.identity)
    except case_files.BlankNodeClash as exc:
        raise SparkAssessError(str(exc)) from None
    except (PySparkException, Py4JError) as exc:
        raise SparkAssessError(f"Spark failed: {spark_failure(str(exc))}") from None
    return {
        "summary": summary.counts(),
        "exitCode": summary.exit_code,
        "warnings": warnings,
        "messages": summary.messages,
        "partitions": n,
        "startup": round(startup, 2),
        "seconds": round(time.monotonic() - began, 2),
        "results": str(output / RESULTS),
        "parquet": str(output / PARQUET),
        "run": str(output / RUN),
    }


def _kept(rdd: RDD) -> RDD:
    from pyspark import StorageLevel

    return rdd.persist(StorageLevel.MEMORY_AND_DISK)


def _assessed(spark: SparkSession, assessed: RDD, output: Path) -> list[tuple]:
    """Write the rows of ``assessed`` (kept while they are written twice); what else the
    partitions said (each batch's bookkeeping, errors found after the shuffle), in
    partition order."""
    assessed = _kept(assessed)
    try:
        write_results(spark, assessed.filter(lambda item: item[0] == ROW).map(itemgetter(1)), output)
        return assessed.filter(lambda item: item[0] != ROW).collect()
    finally:
        assessed.unpersist()


def _export(
    spark: SparkSession, folder: Path, output: Path, assessor: Assessor, kb_root: str, day: dt.date, n: int
) -> tuple[StreamSummary, list[str]]:
    """A Bulk Data export, summed up as ``stream.assess_bulk`` sums it up."""
    started = _now()
    sc = spark.sparkContext
    names = [path.as_posix() for path in export_files(folder)]
    linked = _kept(sc.parallelize(list(enumerate(names)), max(len(names), 1)).flatMap(bulk.link_file))
    try:
        aside = linked.filter(lambda item: item[0] != bulk.LINE).collect()
        problems = bulk.first_pass_problems([(i, p) for kind, i, p in aside if kind == bulk.PROBLEM])
        shared = sc.broadcast(bulk.medications([(r, m) for kind, r, m in aside if kind == bulk.MEDICATION]))
        lines = linked.filter(lambda item: item[0] == bulk.LINE).map(lambda item: (item[1], item[2]))
        assess = partial(bulk.assess_partition, names=names, shared=shared, kb_root=kb_root, as_of=day)
        said = _assessed(spark, lines.sortByKey(True, n).mapPartitions(assess), output)
        shared.unpersist()
    finally:
        linked.unpersist()
    errors, notes = export_problems(problems)
    summary = StreamSummary(
        assessor.engine, started, input_errors=errors, input_warnings=notes, messages=[str(e) for e in errors]
    )
    found: list[InputWarning] = []
    late_problems = []
    for kind, item in said:
        if kind == BATCH:
            summary.add(item)
            found += item.notes
        else:
            late_problems += item
    finish_bulk(summary, assessor, notes, merge_warnings(found), late_problems)
    return summary, summary.warnings


def _case_files(
    spark: SparkSession, path: Path, output: Path, assessor: Assessor, kb_root: str, day: dt.date, n: int
) -> tuple[StreamSummary, list[str]]:
    """Case files, summed up as ``cases.load_grouped`` and ``stream.assess_grouped``
    sum them up."""
    started = _now()
    sc = spark.sparkContext
    files, errors = find_files([path])
    names = [str(f) for f in files]
    read = partial(case_files.read_file, kb_root=kb_root, as_of=day)
    linked = _kept(sc.parallelize(list(enumerate(names)), max(len(names), 1)).flatMap(read))
    try:
        aside = [  # in file order: a task per file, in order
            (i, kind, item)
            for kind, i, item in linked.filter(lambda item: item[0] != case_files.SUBJECT).collect()
        ]
        blank = [(i, label) for i, kind, label in aside if kind == case_files.BLANK]
        case_files.check_blank_nodes(blank, names)
        lines = linked.filter(lambda item: item[0] == case_files.SUBJECT).map(lambda item: (item[1], item[2]))
        assess = partial(case_files.assess_partition, names=names, kb_root=kb_root, as_of=day)
        said = _assessed(spark, lines.sortByKey(True, n).mapPartitions(assess), output)
    finally:
        linked.unpersist()
    errors += [item for _, kind, item in aside if kind == case_files.ERROR]
    file_notes: list[InputWarning] = [item for _, kind, item in aside if kind == case_files.NOTE]
    read_files = [names[i] for i, kind, _ in aside if kind == case_files.READ]
    identity, shared_files = case_files.identity_problems(
        [item for kind, item in said if kind == case_files.IDENTITY]
    )
    errors += identity
    summary = StreamSummary(
        assessor.engine,
        started,
        input_errors=list(errors),
        input_warnings=list(file_notes),
        messages=[str(e) for e in errors],
    )
    notes: list[InputWarning] = []
    case_sources: set[str] = set()
    for kind, item in said:
        if kind == BATCH:
            summary.add(item)
            notes += item.notes
            case_sources.update(item.case_files)
    finish_grouped(summary, assessor, merge_warnings(notes), read_files, case_sources, shared_files)
    return summary, [*map(str, file_notes), *summary.warnings]
