"""The server's side of the query processes: start them, keep them current, run queries on
them under the deadline and the memory limit, and replace any that stop.

What it guarantees (see ``query_process`` for the processes themselves):

* **A deadline that stops the query.** A query not answered by its deadline gets
  ``QueryTimeout`` and its process is killed (``SIGKILL``) and replaced; the CPU and
  memory it held are freed at once. Waiting for a free process counts towards the
  deadline.
* **Bounded memory.** Each query may grow its process by ``memory`` bytes at most; past
  that, allocation fails, the process ends and the query gets ``QueryTooLarge``.
* **No crash reaches the server.** A query process that dies (a parser stack overflow, an
  abort) fails only its own query (``QueryProcessFailed``, with how it ended); it is
  logged and replaced. If the template process dies, it is started again from a dump of
  the store.
* **Reads see every acknowledged write.** ``publish`` hands each write's changes to the
  template and to the idle processes at once, and to a busy one with its next query, so
  a query sent after a write was acknowledged is evaluated on a replica that has it.

Everything here runs on the event loop's thread; the only blocking calls (dumping the
store for a new replica) run on a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from ..store_log import Change, LoggedStore
from . import worker_wire as wire
from .query import Answer, NotAcceptable, QueryTimeout, TooManyRows

log = logging.getLogger("lbp_imaging.queries")


class QueryTooLarge(Exception):
    """The query needed more memory than one query may use."""


class QueryProcessFailed(Exception):
    """The process evaluating the query stopped (how: a signal name or exit status)."""

    def __init__(self, how: str):
        super().__init__(how)
        self.how = how


@dataclass
class _Process:
    pid: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    generation: int
    retired: bool = False
    ended: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def send(self, header: dict[str, Any]) -> None:
        self.writer.write(wire.frame(header))

    def close(self) -> None:
        self.retired = True
        self.writer.close()

    def kill(self) -> None:
        self.retired = True
        if not self.ended.done():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.writer.close()


class QueryPool:
    """``size`` query processes over replicas of ``store`` (see the module docstring)."""

    def __init__(self, store: LoggedStore, size: int, memory: int | None):
        self.store = store
        self.size = size
        self.memory = memory
        self.generation = 0
        """The number of the last change the template has (``Change.seq``)."""
        self._base = 0
        """The generation of the template's last dump: older replicas are stale."""
        self._log: deque[tuple[int, str, str | None]] = deque()
        self._idle: list[_Process] = []
        self._waiting: deque[asyncio.Future[_Process]] = deque()
        self._processes: dict[int, _Process] = {}
        self._forks: list[int] = []  # generations of the forks asked for and not yet connected
        self._publishing = asyncio.Lock()
        self._template: subprocess.Popen | None = None
        self._commands: asyncio.StreamWriter | None = None
        """Where commands go to the template: buffered, so that a template busy loading a
        dump never blocks the event loop; the order is kept."""
        self._notices: socket.socket | None = None
        self._closing = False
        self._dumps = Path(tempfile.mkdtemp(prefix="lbp-imaging-replica-"))
        self._dump_names = itertools.count()
        self._tasks: set[asyncio.Task] = set()
        self._started = asyncio.Event()
        self.replaced: Counter[str] = Counter()
        """How many processes were replaced, by why: ``deadline``, ``crash`` (while
        evaluating), ``idle`` (died while idle), ``template`` (template restarts)."""

    def _background(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)  # kept until done: the loop holds only weak references
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        """Start the template on a dump of the store as it is, and the query processes."""
        self.store.start_recording()
        await self._start_template()

    async def ready(self, seconds: float = 60) -> None:
        """Wait until a query process is ready (the first start takes a moment)."""
        try:
            await asyncio.wait_for(self._started.wait(), seconds)
        except TimeoutError:
            raise QueryProcessFailed("no query process started") from None

    async def _start_template(self) -> None:
        commands, their_commands = socket.socketpair()
        notices, their_notices = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fds = (their_commands.fileno(), their_notices.fileno())
        self._template = subprocess.Popen(
            [sys.executable, "-m", "reasoner.server.sparql.query_process", *map(str, fds)], pass_fds=fds
        )
        their_commands.close()
        their_notices.close()
        _, self._commands = await asyncio.open_unix_connection(sock=commands)
        self._notices = notices
        notices.setblocking(False)
        asyncio.get_running_loop().add_reader(notices.fileno(), self._noticed)
        async with self._publishing:
            await self._replace()

    async def _replace(self) -> None:
        """Give the template a dump of the store (every replica before it is stale) and
        start the query processes on it."""
        path = self._dumps / f"dump-{next(self._dump_names)}.nq"
        self.generation = self._base = await asyncio.to_thread(self.store.dump_for_replica, str(path))
        self._log.clear()
        self._forks.clear()
        for process in list(self._processes.values()):
            process.retired = True
        for process in self._idle:
            process.close()
        self._idle.clear()
        self._command({"kind": "replace", "path": str(path), "generation": self.generation})
        self._replenish()

    def _command(self, header: dict[str, Any]) -> None:
        assert self._commands is not None
        # A template that is gone is seen by ``_noticed`` (its socket closes), which starts
        # another; what was written to this one is then lost with it, as it should be.
        self._commands.write(wire.frame(header))

    def _live(self) -> list[_Process]:
        return [p for p in self._processes.values() if not p.retired]

    def status(self) -> dict[str, Any]:
        """What ``/health`` reports: the processes by state, the queries waiting for one,
        and the replacements so far by cause."""
        live = self._live()
        return {
            "configured": self.size,
            "idle": len(self._idle),
            "busy": len(live) - len(self._idle),
            "starting": len(self._forks),
            "waitingQueries": sum(1 for w in self._waiting if not w.done()),
            "replaced": dict(self.replaced),
        }

    def _replenish(self) -> None:
        """Ask the template for as many query processes as are missing."""
        if self._closing:
            return
        for _ in range(self.size - len(self._live()) - len(self._forks)):
            self._forks.append(self.generation)
            self._command({"kind": "fork", "generation": self.generation})

    def _noticed(self) -> None:
        """A message from the template: a process started (with its socket) or ended."""
        assert self._notices is not None
        try:
            data, fds, _, _ = socket.recv_fds(self._notices, 1 << 16, 1)
        except BlockingIOError:
            return
        except OSError:
            data, fds = b"", []
        if not data:
            self._template_gone()
            return
        header, _ = wire.parse(data)
        if header["kind"] == "started" and fds:
            sock = socket.socket(fileno=fds[0])
            self._background(self._connect(header["pid"], header["generation"], sock))
        elif header["kind"] == "ended":
            self._ended(header["pid"], header["how"])

    async def _connect(self, pid: int, generation: int, sock: socket.socket) -> None:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        process = _Process(pid, reader, writer, generation)
        self._processes[pid] = process
        if generation < self._base or self._closing:
            process.close()  # forked before the template's last dump: its replica is stale
            return
        with contextlib.suppress(ValueError):
            self._forks.remove(generation)
        self._release(process)

    def _ended(self, pid: int, how: str) -> None:
        process = self._processes.pop(pid, None)
        if process is None:
            return
        if not process.ended.done():
            process.ended.set_result(how)
        if not process.retired:
            log.warning("query process %d ended (%s) while idle; a new one replaces it", pid, how)
            self.replaced["idle"] += 1
            process.retired = True
            with contextlib.suppress(ValueError):
                self._idle.remove(process)
            self._replenish()

    def _template_gone(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._notices is not None
        loop.remove_reader(self._notices.fileno())
        self._notices.close()
        if self._template is not None:
            self._template.poll()  # collected if it has ended (else subprocess collects it later)
        if self._closing:
            return
        log.error("the query template process ended; starting a new one from the store")
        self.replaced["template"] += 1
        if self._commands is not None:
            self._commands.close()
        for process in list(self._processes.values()):
            process.kill()
        self._processes.clear()
        self._idle.clear()
        self._forks.clear()
        self._background(self._start_template())

    def _trim(self) -> None:
        """Forget the changes every live replica (and every awaited fork) already has."""
        oldest = min([p.generation for p in self._live()] + self._forks, default=self.generation)
        while self._log and self._log[0][0] <= oldest:
            self._log.popleft()

    def _release(self, process: _Process) -> None:
        if process.retired:
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(process)
                return
        self._idle.append(process)
        self._started.set()

    async def _acquire(self, seconds: float) -> _Process:
        if self._idle:
            return self._idle.pop()
        waiter: asyncio.Future[_Process] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await asyncio.wait_for(waiter, seconds)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():  # handed over as the wait ended
                self._release(waiter.result())
            raise QueryTimeout from None

    def _catch_up(self, process: _Process) -> list[list[Any]]:
        ops = [[text, base] for seq, text, base in self._log if seq > process.generation]
        process.generation = self.generation
        return ops

    async def publish(self, changes: list[Change]) -> None:
        """Hand the changes of a write (in the order applied) to the replicas."""
        if self._commands is None:
            return
        async with self._publishing:
            changes = [change for change in changes if change.seq > self.generation]
            if any(change.text is None for change in changes):
                await self._replace()
                return
            if not changes:
                return
            for change in changes:
                self._log.append((change.seq, change.text, change.base_iri))
            self.generation = changes[-1].seq
            ops = [[change.text, change.base_iri] for change in changes]
            self._command({"kind": "update", "ops": ops, "generation": self.generation})
            for process in self._idle:
                process.send({"kind": "ops", "ops": self._catch_up(process)})
            self._trim()

    async def run(
        self, text: str, accept: str | None, deadline: float, max_rows: int | None, options: dict[str, Any]
    ) -> Answer:
        """Evaluate a query (``options``: ``union``, ``default_graph``/``named_graphs``,
        ``base_iri``) by ``deadline`` (``time.monotonic()``). Raises as ``query.run_query``,
        or ``QueryTooLarge``/``QueryProcessFailed``."""
        process = await self._acquire(deadline - time.monotonic())
        job = {
            "kind": "query",
            "ops": self._catch_up(process),
            "text": text,
            "accept": accept,
            "seconds": deadline - time.monotonic(),
            "max_rows": max_rows,
            "options": options,
            "memory": self.memory,
        }
        self._trim()
        try:
            process.send(job)
            header, body = await asyncio.wait_for(wire.read(process.reader), deadline - time.monotonic())
        except TimeoutError:
            process.kill()
            self.replaced["deadline"] += 1
            raise QueryTimeout from None
        except (wire.PeerGone, OSError):
            raise await self._failure(process, text) from None
        finally:
            self._after(process)
        return _answer(header, body)

    def _after(self, process: _Process) -> None:
        if not process.retired:
            self._release(process)
            return
        if not process.writer.is_closing():
            process.close()
        self._replenish()

    async def _failure(self, process: _Process, text: str) -> Exception:
        process.retired = True
        self.replaced["crash"] += 1
        try:
            how = await asyncio.wait_for(asyncio.shield(process.ended), 2)
        except TimeoutError:
            how = "unknown"
        log.error(
            "query process %d ended (%s) while evaluating a query of %d characters: %.120r; "
            "a new one replaces it",
            process.pid,
            how,
            len(text),
            text,
        )
        if how == "SIGABRT" and self.memory:
            return QueryTooLarge()
        return QueryProcessFailed(how)

    async def close(self) -> None:
        """Stop every process, a query still computing included."""
        self._closing = True
        if self._notices is not None and self._notices.fileno() >= 0:  # not closed with a dead template
            asyncio.get_running_loop().remove_reader(self._notices.fileno())
            self._notices.close()
        for process in list(self._processes.values()):
            process.kill()
        if self._commands is not None:
            self._commands.close()
        if self._template is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self._template.wait, 5)
            if self._template.poll() is None:
                self._template.kill()
        for path in self._dumps.glob("*"):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self._dumps.rmdir()


def _answer(header: dict[str, Any], body: bytes) -> Answer:
    error = header.get("error")
    if error is None:
        return Answer(body, header["media"])
    if error == "syntax":
        raise SyntaxError(header["message"])
    if error == "not-acceptable":
        raise NotAcceptable(header["message"])
    if error == "timeout":
        raise QueryTimeout
    if error == "rows":
        raise TooManyRows
    if error == "memory":
        raise QueryTooLarge
    raise OSError(header.get("message", "the query failed"))


def run_isolated(store: ox.Store, text: str, accept: str, seconds: float, memory: int | None) -> Answer:
    """Evaluate one query over ``store`` in a query process, as the server does (for
    ``lbp-imaging query``): killed after ``seconds``, grown by ``memory`` bytes at most,
    and a crash of the engine is an exception here, not the end of this process."""

    async def once() -> Answer:
        pool = QueryPool(LoggedStore(store), 1, memory)
        await pool.start()
        try:
            await pool.ready()
            return await pool.run(text, accept, time.monotonic() + seconds, None, {})
        finally:
            await pool.close()

    return asyncio.run(once())
