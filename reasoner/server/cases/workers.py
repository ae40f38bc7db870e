"""Assess posted cases in worker processes, so that the engine does not hold the server's GIL.

Assessing one case (reading the body, validation, classification, selection, explanation
and its PROV graph) is some milliseconds of Python; on the server's own interpreter it
held the GIL that every request needs, and under load each case submission stalled all
other requests. A worker process does everything that needs the engine and hands back
bytes and text: the JSON answer and the SPARQL updates that store the case. The server
process only checks the case IRI and applies the updates (``case_service.store``).

The workers are forked from the server process when the application is created, before
it starts any thread or opens the store, so they share the compiled knowledge base
without compiling it again. Where the platform cannot fork, and to replace workers that
died (forking a process that runs threads is unsafe), they are spawned and compile the
knowledge base when they start. They run at a lower CPU priority than the server
(``WORKER_NICENESS``): an assessment takes milliseconds of CPU, a query answer well under
one, and on a busy machine the many short requests should not wait behind the few long.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from ...knowledge import KnowledgeBase
from ...pipeline.assess import AssessmentRun, Assessor
from ...pipeline.explain import CaseResult
from ...pipeline.render import to_json
from ..sparql.protocol import ProtocolError
from .graphs import case_updates
from .upload import read_body

WORKER_NICENESS = 10
"""How much lower the workers' CPU priority is than the server's (``os.nice``): when the
machine is busy, queries are answered first and a case waits longer (see README "Load on
the server" for what it costs and gains)."""

_ASSESSOR: Assessor | None = None
"""In a worker process: the assessor it uses (a forked worker's copy of the server's)."""


@dataclass(frozen=True)
class Assessed:
    """What a worker made of a posted body: the JSON answer (``lbp-imaging assess --format
    json`` for the one case) and, for a valid case, the updates that store it; or the
    client error (status, message) that reading it gave."""

    case: str | None = None
    answer: bytes = b""
    updates: tuple[str, ...] = ()
    valid: bool = False
    error: tuple[int, str] | None = None


def the_case(run: AssessmentRun) -> CaseResult:
    """The one case of a posted body; 422 when it holds none (saying what the input
    warnings found about its subjects, such as a mistyped class) or several."""
    if not run.results:
        found = "".join(f"; {w}" for w in run.input_warnings if w.cases and not w.attached)
        raise ProtocolError(422, f"the body describes no patient case{found}")
    if len(run.results) > 1:
        cases = ", ".join(r.case for r in run.results)
        raise ProtocolError(422, f"the body describes {len(run.results)} cases ({cases}): post one case")
    return run.results[0]


def assess_posted(body: bytes, suffix: str, as_of: dt.date) -> Assessed:
    """In a worker: read and assess the case in ``body`` (a FHIR Bundle's ages and durations
    counted to ``as_of``). Errors are returned, not raised: ``ProtocolError`` does not
    cross a process boundary."""
    assert _ASSESSOR is not None, "only worker processes assess posted cases"
    try:
        loaded = read_body(body, suffix, dataclasses.replace(_ASSESSOR.inputs, as_of=as_of))
        run = _ASSESSOR.assess_loaded(loaded)
        result = the_case(run)
    except ProtocolError as exc:
        return Assessed(error=(exc.status, exc.message))
    answer = to_json(run, _ASSESSOR.kb.identity).encode("utf-8")
    if result.status != "assessed":
        return Assessed(result.case, answer)
    return Assessed(result.case, answer, tuple(case_updates(run, loaded.quads)), valid=True)


def _exit_with(parent: int) -> None:
    """End this worker once the server process is gone. A server stopped by a signal, or
    killed, never tells its workers to stop, and a worker waiting for its next case would
    otherwise wait for ever (it holds both ends of its job queue's pipe)."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _start_worker(kb_root: str) -> None:
    global _ASSESSOR
    # Ctrl-C reaches the whole process group: the server stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(WORKER_NICENESS)
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    if _ASSESSOR is None:  # spawned: compile the knowledge base; forked: it has the server's
        _ASSESSOR = Assessor(KnowledgeBase.load(Path(kb_root)))


def _ready() -> bool:
    return _ASSESSOR is not None


class CaseWorkers:
    """A pool of worker processes that assess posted cases (see the module docstring)."""

    def __init__(self, assessor: Assessor, processes: int):
        self.kb_root = str(assessor.kb.root)
        self.processes = processes
        if "fork" in multiprocessing.get_all_start_methods():
            self.pool = self._forked(assessor)
        else:
            self.pool = self._spawned()

    def _forked(self, assessor: Assessor) -> ProcessPoolExecutor:
        global _ASSESSOR
        _ASSESSOR = assessor
        try:
            pool = self._pool("fork")
            pool.submit(_ready).result()  # with fork, the first job starts every worker
        finally:
            _ASSESSOR = None
        return pool

    def _spawned(self) -> ProcessPoolExecutor:
        return self._pool("spawn")

    def _pool(self, method: str) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context(method),
            initializer=_start_worker,
            initargs=(self.kb_root,),
        )

    async def assess(self, body: bytes, suffix: str, as_of: dt.date) -> Assessed:
        """``assess_posted`` in a worker; 503 when the worker died meanwhile (new workers
        are started for the next case)."""
        pool = self.pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, assess_posted, body, suffix, as_of)
        except BrokenProcessPool:
            if self.pool is pool:
                self.pool = self._spawned()
            raise ProtocolError(
                503, "the process assessing this case stopped; a new one has started: post the case again"
            ) from None

    def shutdown(self) -> None:
        """Stop the workers once they have finished the case they are assessing. Waited for:
        uvicorn ends the process with the signal that stopped it, before any exit handler
        would stop them."""
        self.pool.shutdown(wait=True, cancel_futures=True)
