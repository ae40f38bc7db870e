"""A FHIR Bulk Data export on Spark: the lines of each file linked to their patient where
the file is read, grouped by patient with Spark's shuffle, and each patient's records
assessed where they land.

Everything that decides what a line is, and what a patient's records are, is
``reasoner.fhir.bulk``'s own code, called here rather than written again, so that the
answers and messages are those of ``lbp-imaging assess`` by construction:

- **Reading and linking** (a task per file): ``BulkExport``'s first pass over one file
  (``file_records``: the same opening of plain and gzip files, the same lines and line
  numbers, each line linked to its patient by ``_link``, the same errors for lines that
  cannot be linked and the same warning for resources of types that are not read). A
  file is read by one task as a stream: the export's files are the unit of parallel
  reading (a Bulk Data server splits its output into files); the shuffle then spreads
  the assessing, which is where the time goes, over every partition.
- **Medications** belong to no patient: each file's are sent to the driver (a later line
  of the same id wins, as in ``BulkExport``) and broadcast to every executor, where
  ``medications_of`` gives each patient those its statements refer to. Their number is
  that of the export's distinct medications (a formulary), not of its patients.
- **Grouping**: ``sortByKey`` on the patient id (Spark's range partitioner, sampling the
  ids; each partition sorted by Spark's external sorter, which spills to disk), so that
  partitions hold consecutive patient ids, each patient's lines together, and the
  partitions in order are the patients in the order ``BulkExport.patients`` gives them.
  Each patient's lines are put in ``BulkExport``'s order (the Patient first, then file and
  line); a patient with no Patient resource is ``unknown_patient``'s error for each of
  its lines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

from ..fhir.bulk import BulkExport, BulkProblem, Line, PatientRecords
from ..pipeline.stream import Payload
from .executor import assess_payloads, assessor_for, batched

if TYPE_CHECKING:
    from pyspark import Broadcast

LINE = "line"
PROBLEM = "problem"
MEDICATION = "medication"
LATE = "late"


def link_file(item: tuple[int, str]) -> Iterator[tuple]:
    """The export's ``index``-th file read by ``BulkExport``'s first pass: each linked line
    as (``LINE``, patient id, (rank, file index, line number, text)); then the lines that
    could not be linked and the warning about types that are not read (``PROBLEM``, in the
    order the pass found them), and the file's Medications by id (``MEDICATION``)."""
    index, name = item
    export = BulkExport([Path(name)])
    for patient, rank, _, number, text in export.file_records(index, Path(name)):
        yield LINE, patient, (rank, index, number, text)
    for problem in export.problems:
        yield PROBLEM, index, problem
    for rid, line in export.medications.items():
        yield MEDICATION, rid, (index, line)


def medications(found: list[tuple[str, tuple[int, Line]]]) -> dict[str, Line]:
    """The export's Medications by id, from every file's: of two with the same id, the
    later file's (``BulkExport`` reads files in order and keeps the last)."""
    chosen: dict[str, tuple[int, Line]] = {}
    for rid, (index, line) in found:
        if rid not in chosen or index > chosen[rid][0]:
            chosen[rid] = (index, line)
    return {rid: line for rid, (_, line) in chosen.items()}


def first_pass_problems(found: list[tuple[int, BulkProblem]]) -> list[BulkProblem]:
    """The problems of every file, in file order (each file's in the order it found them)."""
    return [problem for _, problem in sorted(found, key=itemgetter(0))]


def _patients(
    records: Iterator[tuple[str, tuple]], export: BulkExport, names: list[str]
) -> Iterator[PatientRecords]:
    """A partition's patients (its lines sorted by patient id), each with its lines in
    ``BulkExport``'s order and the Medications they refer to; a patient the export holds
    no Patient resource for is an error for each of its lines (``export.problems``)."""
    for patient, group in groupby(records, key=itemgetter(0)):
        lines = sorted(value for _, value in group)  # (rank, file, line, text): the Patient first
        if lines[0][0] != 0:
            export.unknown_patient(patient, [(patient, *line) for line in lines])
            continue
        found = [Line(names[index], number, text) for _, index, number, text in lines]
        yield PatientRecords(patient, found + export.medications_of(found))


def assess_partition(
    records: Iterator[tuple[str, tuple]],
    names: list[str],
    shared: Broadcast[dict[str, Line]],
    kb_root: str,
    as_of: dt.date,
) -> Iterator[tuple]:
    """A partition's patients assessed in batches (``executor.assess_payloads``), then the
    errors of the patients the export does not hold (``LATE``). ``shared`` is the
    broadcast of the export's Medications."""
    assessor = assessor_for(kb_root, as_of)
    export = BulkExport([Path(name) for name in names])
    export.medications = shared.value
    payloads = (
        Payload({}, {}, {}, patients=batch)
        for batch in batched(_patients(records, export, names), assessor.batch_size)
    )
    yield from assess_payloads(assessor, payloads)
    yield LATE, export.problems
