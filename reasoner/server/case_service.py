"""What the case endpoints do, apart from HTTP and assessing a posted case (a worker
process does that: ``case_workers``): store an assessed case, read a stored case back,
delete one. Each function blocks (the engine, the store) and runs on a worker thread,
holding ``ServerState.case_lock``.

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

import pyoxigraph as ox

from ..assess import AssessmentRun
from ..cases import LoadedInput
from ..explain import CaseResult
from .case_records import Recommendation, is_case, is_reserved, remove, stored_assessment
from .case_workers import Assessed
from .protocol import ProtocolError
from .state import ServerState


def store(state: ServerState, assessed: Assessed) -> bool:
    """Store a valid case a worker assessed, durably (the store's buffers are written out
    before this returns); 409 when its IRI names a graph or term of the knowledge base.
    False when it replaced an earlier record of the same case IRI."""
    assert assessed.valid and assessed.case is not None
    case = ox.NamedNode(assessed.case)
    with state.case_lock:
        if is_reserved(state.store, case, state.knowledge_graphs):
            raise ProtocolError(
                409, f"{assessed.case} names a graph or term of the knowledge base: give the case its own IRI"
            )
        created = not is_case(state.store, case)
        for update in assessed.updates:
            state.store.update(update)
        state.store.flush()
    return created


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
