"""Case files (N-Triples, or any format ``lbp-imaging assess`` reads) on Spark: each file
read where it is, its subjects' lines grouped with every other file's by Spark's shuffle,
and each partition's cases assessed where they land.

As for a Bulk Data export (``reasoner.spark.bulk``), what decides the answers and the
messages is the code ``assess`` runs, called here: a task reads one file with
``cases.load_grouped`` (N-Triples split into lines by subject without being parsed, other
formats parsed; a file that cannot be read, an empty one, an IRI that may not name a
case: the same errors and warnings), and after the shuffle a subject found in several
files is judged by ``duplicate_cases`` and ``identity_errors``, as ``load_grouped``
judges it across files: a case in several files is an error for each of them and is not
assessed (there is no ``--merge-duplicates`` on Spark); any other subject's lines are
put together in file order. The driver then adds the warning for each file that gave no
case, as ``stream.assess_grouped`` does.

One difference is refused rather than imitated: ``assess`` renames a blank node whose
label is a subject in an earlier file too (blank-node labels are local to their file),
which needs every earlier file's subjects; ``spark-assess`` stops with an error naming
the label and the files instead.

The results come out in the order of their subjects' keys, not in the input's order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter
from pathlib import Path

from ..pipeline.cases import (
    InputError,
    LineBatch,
    duplicate_cases,
    identity_errors,
    load_grouped,
    parse_cases,
)
from ..pipeline.stream import Payload
from .executor import assess_payloads, assessor_for, batched

SUBJECT = "subject"
ERROR = "error"
NOTE = "note"
READ = "read"
BLANK = "blank"
IDENTITY = "identity"


class BlankNodeClash(ValueError):
    """A blank-node label that is a subject in more than one file."""


def read_file(item: tuple[int, str], kb_root: str, as_of: dt.date) -> Iterator[tuple]:
    """The ``index``-th case file read by ``load_grouped``: its errors (``ERROR``) and
    warnings (``NOTE``), in order; ``READ`` if it held cases to assess; each subject's
    N-Triples lines (``SUBJECT``: key, (file index, position in the file, lines, the
    warnings its result carries)), and each blank-node subject's label (``BLANK``)."""
    index, name = item
    grouped = load_grouped([Path(name)], assessor_for(kb_root, as_of).inputs)
    for error in grouped.errors:
        yield ERROR, index, error
    for note in grouped.notes:
        yield NOTE, index, note
    if grouped.files:
        yield READ, index, None
    warnings = grouped.case_warnings()
    for position, (key, lines) in enumerate(grouped.lines.items()):
        if key.startswith("_:"):
            yield BLANK, index, key
        yield SUBJECT, key, (index, position, lines, warnings.get(key, []))


def check_blank_nodes(found: list[tuple[int, str]], names: list[str]) -> None:
    """Stop when a blank-node label is a subject in several files (see the module's note)."""
    files: dict[str, list[int]] = {}
    for index, label in sorted(found):
        files.setdefault(label, []).append(index)
    for label, indexes in files.items():
        if len(indexes) > 1:
            raise BlankNodeClash(
                f"blank node {label} is a subject in {', '.join(names[i] for i in indexes)}: a blank-node "
                "label is local to its file, and spark-assess does not rename them (lbp-imaging assess "
                "does): give the nodes distinct labels or IRIs, or assess these files with lbp-imaging assess"
            )


def _subjects(records: Iterator[tuple[str, tuple]], names: list[str], kb_root: str, as_of: dt.date):
    """A partition's subjects (sorted by key), each as (key, its lines in file order, the
    file it was first found in, its warnings); a case found in several files is instead
    ``IDENTITY``: where ``load_grouped`` would have found it in a second file (for the
    order of the errors), its errors, and its files."""
    terms = assessor_for(kb_root, as_of).inputs.terms
    for key, group in groupby(records, key=itemgetter(0)):
        parts = sorted((value for _, value in group), key=itemgetter(0, 1))
        lines = [line for part in parts for line in part[2]]
        if len(parts) > 1:
            files = [names[part[0]] for part in parts]
            facts = parse_cases(LineBatch.of({key: lines}), {})[0].facts
            duplicates = duplicate_cases({key: files}, facts, terms)
            if duplicates:
                yield IDENTITY, (parts[1][:2], identity_errors(duplicates, merge=False), files)
                continue
        yield SUBJECT, (key, lines, names[parts[0][0]], parts[0][3])


def assess_partition(
    records: Iterator[tuple[str, tuple]], names: list[str], kb_root: str, as_of: dt.date
) -> Iterator[tuple]:
    """A partition's subjects assessed in batches (``executor.assess_payloads``), and
    each case found in several files (``IDENTITY``)."""
    assessor = assessor_for(kb_root, as_of)
    held: list[tuple] = []

    def subjects() -> Iterator[tuple[str, list[str], str, list[str]]]:
        for kind, item in _subjects(records, names, kb_root, as_of):
            if kind == IDENTITY:
                held.append(item)
            else:
                yield item

    payloads = (
        Payload(
            {key: source for key, _, source, _ in batch},
            {key: warnings for key, _, _, warnings in batch if warnings},
            {},
            lines=LineBatch.of({key: lines for key, lines, _, _ in batch}),
        )
        for batch in batched(subjects(), assessor.batch_size)
    )
    yield from assess_payloads(assessor, payloads)
    for item in held:
        yield IDENTITY, item


def identity_problems(found: list[tuple]) -> tuple[list[InputError], set[str]]:
    """The errors of the cases found in several files, in ``load_grouped``'s order, and
    the files they are in."""
    errors: list[InputError] = []
    shared: set[str] = set()
    for _, found_errors, files in sorted(found, key=itemgetter(0)):
        errors += found_errors
        shared.update(files)
    return errors, shared
