"""What the case endpoints do, apart from HTTP: submit a case (read, validate, assess,
store), read a stored case back, delete one. Each function blocks (the engine, the
store) and runs on a worker thread, holding ``ServerState.case_lock``.

Reading a case back assesses its stored facts again, with the stored run's times, so
the JSON answer has the schema of ``lbp-imaging assess --format json`` and, with an
unchanged knowledge base, is the answer ``POST`` gave (the warnings a FHIR Bundle gave
come from the record, since the stored facts are the case after reading the Bundle).
The stored graph stays the record:
if the knowledge base has changed since (the store outlived a restart with edited
ontology files), the answer carries a warning naming the stored recommendation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import pyoxigraph as ox

from ..assess import AssessmentRun
from ..cases import LoadedInput
from ..explain import CaseResult
from .case_graphs import put_cases
from .case_records import Recommendation, is_case, is_reserved, remove, stored_assessment
from .case_upload import read_body
from .protocol import ProtocolError
from .state import ServerState


class InvalidCase(Exception):
    """The case breaks the case shapes: ``run`` holds its result with the shape messages."""

    def __init__(self, run: AssessmentRun):
        super().__init__(f"invalid case {run.results[0].case}")
        self.run = run


@dataclass(frozen=True)
class Submitted:
    case: str
    run: AssessmentRun
    created: bool
    """False when the case replaced an earlier record of the same case IRI."""


def _the_case(run: AssessmentRun) -> CaseResult:
    if not run.results:
        raise ProtocolError(422, "the body describes no patient case")
    if len(run.results) > 1:
        cases = ", ".join(r.case for r in run.results)
        raise ProtocolError(422, f"the body describes {len(run.results)} cases ({cases}): post one case")
    return run.results[0]


def submit(state: ServerState, body: bytes, suffix: str, as_of: dt.date) -> Submitted:
    """Assess the one case in ``body`` (a FHIR Bundle's ages and durations counted to
    ``as_of``) and store it with its recommendation, durably (the store's buffers are
    written out before this returns)."""
    loaded = read_body(body, suffix, dataclasses.replace(state.assessor.inputs, as_of=as_of))
    with state.case_lock:
        run = state.assessor.assess_loaded(loaded)
        result = _the_case(run)
        if result.status != "assessed":
            raise InvalidCase(run)
        case = ox.NamedNode(result.case)
        if is_reserved(state.store, case, state.knowledge_graphs):
            raise ProtocolError(
                409, f"{result.case} names a graph or term of the knowledge base: give the case its own IRI"
            )
        created = not is_case(state.store, case)
        put_cases(state.store, run, loaded.quads)
        state.store.flush()
    return Submitted(result.case, run, created)


def _recommendation(result: CaseResult) -> Recommendation:
    rec = result.recommendation or {}
    return (
        (result.outcome or {}).get("iri"),
        (rec.get("procedure") or {}).get("iri"),
        (rec.get("urgency") or {}).get("iri"),
    )


def read(state: ServerState, iri: str) -> AssessmentRun | None:
    """The stored case assessed again as it was (see the module docstring); None when no
    case is stored under ``iri``."""
    case = ox.NamedNode(iri)
    with state.case_lock:
        if not is_case(state.store, case):
            return None
        stored = stored_assessment(state.store, case, state.assessor.defined)
        run = state.assessor.assess_loaded(LoadedInput(quads=stored.facts))
    run = dataclasses.replace(run, started=stored.started, ended=stored.ended)
    result = run.results[0]
    # Warnings the input gave (a FHIR Bundle's) are in the record only: they come first,
    # as when the case was posted (in alphabetical order: the graph keeps no order).
    given = sorted(set(stored.warnings) - set(result.warnings))
    result.warnings[:0] = given
    if _recommendation(result) != stored.recommendation:
        shown = ", ".join(iri for iri in stored.recommendation if iri)
        result.warnings.append(
            f"The knowledge base has changed since this case was assessed ({stored.started}): the "
            f"stored recommendation is {shown}. Post the case again to store the current one."
        )
    return run


def delete(state: ServerState, iri: str) -> bool:
    """Remove the stored case (durably); False when there is none under ``iri``."""
    case = ox.NamedNode(iri)
    with state.case_lock:
        if not is_case(state.store, case):
            return False
        remove(state.store, case)
        state.store.flush()
    return True
