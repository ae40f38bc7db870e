"""What the case endpoints do, apart from HTTP and assessing a posted case (a worker
process does that: ``case_workers``): store an assessed case, read a stored case back,
delete one. Each function blocks (the engine, the store) and runs on a worker thread,
holding ``ServerState.case_lock``.

A write is decided and done under that lock in one go: the stored version is read, the
requester's right to replace or delete (``Write.refusal``) and the request's conditions
(``If-Match``, ``If-None-Match``) are tested against it, the case is written with a new
version (``case_versions``) and flushed to disk, and the attempt, done or refused, gets
its line in the audit log. So no other write can come between the test and the write,
and the log's lines are in the order of the writes.

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
from dataclasses import dataclass

import pyoxigraph as ox

from ...pipeline.assess import AssessmentRun
from ...pipeline.cases import LoadedInput
from ..http.audit_log import Actor
from ..sparql.protocol import ProtocolError
from ..state import ServerState
from .conditional_requests import Preconditions
from .records import (
    is_reserved,
    record,
    remove,
    result_recommendation,
    stored_assessment,
    stored_recommendation,
)
from .versions import new_version, stored_version, versioned
from .workers import Assessed


@dataclass(frozen=True)
class Write:
    """Who asks to write a case, whether they may replace or delete one, and on what
    conditions."""

    actor: Actor
    refusal: ProtocolError | None
    """Why this requester may not replace or delete a stored case (401, 403); ``None``
    when they may. Creating a case needs no right."""
    preconditions: Preconditions


@dataclass(frozen=True)
class Stored:
    """A case written: whether it was new, its new version and, when asked for, its record
    as written (``case_records.record``)."""

    created: bool
    version: str
    record: list[ox.Triple] | None = None


def _refused(
    state: ServerState, event: str, case: str, write: Write, current: str | None, exc: ProtocolError
) -> ProtocolError:
    state.audit.record(event, case, write.actor, exc.status, version=current, previous=current)
    return exc


def store(state: ServerState, assessed: Assessed, write: Write, with_record: bool = False) -> Stored:
    """Store a valid case a worker assessed, durably (the store's buffers are written out
    before this returns), with a new version; ``with_record``: read back the record as
    written, before another write can change it. Raises 409 when its IRI names a graph or
    term of the knowledge base; when a case is stored under it already, ``write.refusal``
    (replacing needs the token); 412 when the preconditions fail."""
    assert assessed.valid and assessed.case is not None
    case = ox.NamedNode(assessed.case)
    with state.case_lock:
        current = stored_version(state.store, case)
        event = "create" if current is None else "replace"
        try:
            if is_reserved(state.store, case, state.knowledge_graphs):
                raise ProtocolError(
                    409,
                    f"{assessed.case} names a graph or term of the knowledge base: give the case its own IRI",
                )
            if current is not None and write.refusal is not None:
                raise write.refusal
            write.preconditions.check(assessed.case, current)
        except ProtocolError as exc:
            raise _refused(state, event, assessed.case, write, current, exc) from None
        version = new_version()
        state.store.update(versioned(assessed.updates, case, version))
        state.store.flush()
        state.audit.record(
            event,
            assessed.case,
            write.actor,
            201 if current is None else 200,
            version=version,
            previous=current,
            recommendation=stored_recommendation(state.store, case),
        )
        return Stored(current is None, version, record(state.store, case) if with_record else None)


def read(state: ServerState, iri: str) -> tuple[AssessmentRun, str] | None:
    """The stored case assessed again as it was (see the module docstring), with its
    version; None when no case is stored under ``iri``."""
    case = ox.NamedNode(iri)
    with state.case_lock:
        version = stored_version(state.store, case)
        if version is None:
            return None
        stored = stored_assessment(state.store, case, state.assessor.defined)
        run = state.assessor.assess_loaded(LoadedInput(quads=stored.facts))
    run = dataclasses.replace(run, started=stored.started, ended=stored.ended)
    result = run.results[0]
    # Warnings the input gave (a FHIR Bundle's) are in the record only: they come first,
    # as when the case was posted (in alphabetical order: the graph keeps no order).
    given = sorted(set(stored.warnings) - set(result.warnings))
    result.warnings[:0] = given
    if result_recommendation(result) != stored.recommendation:
        shown = ", ".join(iri for iri in stored.recommendation if iri)
        result.warnings.append(
            f"The knowledge base has changed since this case was assessed ({stored.started}): the "
            f"stored recommendation is {shown}. Post the case again to store the current one."
        )
    return run, version


def read_record(state: ServerState, iri: str) -> tuple[list[ox.Triple], str] | None:
    """The stored record of a case (``case_records.record``) with its version; None when
    no case is stored under ``iri``."""
    case = ox.NamedNode(iri)
    with state.case_lock:
        version = stored_version(state.store, case)
        return None if version is None else (record(state.store, case), version)


def delete(state: ServerState, iri: str, write: Write) -> None:
    """Remove the stored case, durably. Raises ``write.refusal`` (deleting needs the
    token), 404 when no case is stored under ``iri``, 412 when the preconditions fail."""
    case = ox.NamedNode(iri)
    with state.case_lock:
        current = stored_version(state.store, case)
        try:
            if write.refusal is not None:
                raise write.refusal
            if current is None:
                raise ProtocolError(404, f"no case is stored under {iri}")
            write.preconditions.check(iri, current)
        except ProtocolError as exc:
            raise _refused(state, "delete", iri, write, current, exc) from None
        remove(state.store, case)
        state.store.flush()
        state.audit.record("delete", iri, write.actor, 204, previous=current)
