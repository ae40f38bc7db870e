"""Read step for a FHIR Bulk Data export: each patient's resources as one case.

The parent process only links lines to patients and sorts them (``reasoner.fhir.bulk``);
a batch of patients goes to a worker as raw NDJSON lines, and there each patient's lines
become one collection Bundle read by the same FHIR reader as a bundle file
(``bundle_to_case``), with every message naming the file and line of the resource at
fault. A patient whose resources cannot be read as a case is an input error for that
patient only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..fhir.bulk import BulkExport, BulkProblem, PatientRecords
from .cases import InputError, InputOptions, InputWarning, LineBatch

if TYPE_CHECKING:
    from ..fhir.read import FhirCase


@dataclass
class ReadPatients:
    """A batch of patients read as cases: each case's N-Triples lines, the Patient line it
    is named after (its source), the bundle it was read as (for FHIR output and warnings)
    and the patients that could not be read."""

    lines: LineBatch
    source_of: dict[str, str]
    fhir_cases: dict[str, FhirCase]
    errors: list[InputError]

    def warnings(self) -> dict[str, list[str]]:
        return {iri: case.warnings for iri, case in self.fhir_cases.items() if case.warnings}


def read_patients(patients: list[PatientRecords], options: InputOptions) -> ReadPatients:
    """The patients' records read as cases (in a worker process)."""
    from ..fhir.read import FhirInputError, bundle_to_case  # lazy: FHIR models load slowly

    mapping = options.fhir
    groups: dict[str, list[str]] = {}
    source_of: dict[str, str] = {}
    fhir_cases: dict[str, FhirCase] = {}
    errors: list[InputError] = []
    for records in patients:
        source = records.lines[0].where  # the Patient's line: patients sort first
        if mapping is None:
            errors.append(InputError(source, "a FHIR resource, but no FHIR mapping was loaded"))
            continue
        bundle, located = records.bundle()
        try:
            case = bundle_to_case(bundle, source, options.as_of, mapping, located)
        except FhirInputError as exc:
            errors.append(InputError(source, f"Patient/{records.patient} not read: {exc.detail}"))
            continue
        groups[case.case_iri] = case.ntriples.splitlines()
        source_of[case.case_iri] = source
        fhir_cases[case.case_iri] = case
    return ReadPatients(LineBatch.of(groups), source_of, fhir_cases, errors)


def patient_batches(export: BulkExport, size: int) -> Iterator[list[PatientRecords]]:
    """The export's patients in batches of ``size``, made as they are consumed."""
    batch: list[PatientRecords] = []
    for records in export.patients():
        batch.append(records)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def export_problems(problems: list[BulkProblem]) -> tuple[list[InputError], list[InputWarning]]:
    """Lines an export could not link to a patient (errors), and files with resources of
    types that are not read (warnings)."""
    errors = [InputError(p.file, p.message) for p in problems if p.error]
    notes = [InputWarning(p.file, p.message) for p in problems if not p.error]
    return errors, notes
