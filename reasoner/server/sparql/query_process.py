"""The processes that evaluate SPARQL queries, so that no query can take the server down.

pyoxigraph cannot stop a query once it has started, bounds neither its memory nor its
stack, and a parser crash (SIGSEGV) or a failed allocation (abort) ends the process it
runs in. Queries therefore run in processes of their own, which the server can kill at
the deadline and replace, each with a memory limit; the server's own process only
routes requests and keeps the store of record.

Two kinds of process live here, started as ``python -m reasoner.server.sparql.query_process FD
FD``:

* the **template**: one process holding a replica of the server's store in memory. It
  applies the server's writes in order (``update``, or ``replace`` with a dump after a
  write that cannot be replayed exactly) and, when asked, forks a query process. It
  evaluates nothing a client sent, so a hostile query cannot reach it. It is
  single-threaded, which makes forking it safe.
* the **query processes**: each forked from the template, so it starts with the replica
  as it is (copy-on-write: no copying, no loading). Each evaluates one query at a time
  for the server over its own socket: it first applies the writes it has not seen yet
  (sent with the query), then runs ``query.run_query`` under an address-space limit of
  its current size plus the per-query budget (``RLIMIT_AS``, Linux and macOS; where it
  cannot be set, the deadline still holds).

The template tells the server, over a datagram socket, about each process it forked
(passing the socket's other end) and each that ended and how (``exit`` status or
signal), so the server can say why a query failed and log it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import signal
import socket
import sys
import threading
import time
from typing import Any

import pyoxigraph as ox

from . import worker_wire as wire
from .query import Limits, NotAcceptable, QueryTimeout, TooManyRows, pyoxigraph_options, run_query


def _address_space() -> int | None:
    """This process's virtual size in bytes (Linux ``/proc``), None where it is unknown."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def _memory_budget(extra: int | None):
    """Allow this process ``extra`` more bytes of address space while the block runs."""
    size = _address_space() if extra else None
    if size is None or extra is None:
        yield
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = size + extra if hard == resource.RLIM_INFINITY else min(hard, size + extra)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):  # a platform that refuses it: the deadline still holds
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def _apply(store: ox.Store, ops: list[list[Any]]) -> None:
    for text, base_iri in ops:
        store.update(text, base_iri=base_iri)


def evaluate(store: ox.Store, job: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """One query job: the header and body of its answer, or of the error it gave."""
    limits = Limits(time.monotonic() + job["seconds"], job["max_rows"])
    try:
        with _memory_budget(job.get("memory")):
            answer = run_query(
                store, job["text"], job["accept"], limits, **pyoxigraph_options(job["options"])
            )
    except SyntaxError as exc:
        return {"error": "syntax", "message": str(exc)}, b""
    except NotAcceptable as exc:
        return {"error": "not-acceptable", "message": str(exc)}, b""
    except QueryTimeout:
        return {"error": "timeout"}, b""
    except TooManyRows:
        return {"error": "rows"}, b""
    except MemoryError:
        return {"error": "memory"}, b""
    except OSError as exc:
        return {"error": "os", "message": str(exc)}, b""
    return {"media": answer.media_type}, answer.body


def _exit_with(parent: int) -> None:
    """End this query process once its template is gone (killed together with the server,
    say): a query computing here would otherwise run on, unseen, until it finished."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def serve_queries(store: ox.Store, sock: socket.socket) -> None:
    """A query process: answer jobs until the server closes the socket."""
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    while True:
        try:
            job, _ = wire.receive(sock)
        except (wire.PeerGone, OSError):
            return
        _apply(store, job.get("ops", []))
        if job["kind"] == "query":
            header, body = evaluate(store, job)
            try:
                wire.send(sock, header, body)
            except OSError:
                return


class Template:
    """The template process (see the module docstring)."""

    def __init__(self, commands: socket.socket, notices: socket.socket):
        self.commands = commands
        self.notices = notices
        self.store = ox.Store()
        self.generation = 0
        self.children: set[int] = set()
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_write, False)
        os.set_blocking(self.wake_read, False)

    def run(self) -> None:
        """Follow the server's commands until it closes the command socket."""
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wakeup fd is written
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the server stops us
        signal.set_wakeup_fd(self.wake_write)
        selector = selectors.DefaultSelector()
        selector.register(self.commands, selectors.EVENT_READ)
        selector.register(self.wake_read, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is self.commands:
                    try:
                        command, _ = wire.receive(self.commands)
                    except (wire.PeerGone, OSError):  # the server is gone: so are its queries
                        self.stop_children()
                        return
                    self.follow(command)
                else:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_read, 4096)
            self.reap()

    def follow(self, command: dict[str, Any]) -> None:
        kind = command["kind"]
        if kind == "update":
            _apply(self.store, command["ops"])
        elif kind == "replace":
            self.store = ox.Store()
            path = command["path"]
            try:
                self.store.load(path=path, format=ox.RdfFormat.N_QUADS)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        elif kind == "fork":
            self.fork(command["generation"])
            return
        self.generation = command["generation"]

    def fork(self, generation: int) -> None:
        """Start a query process holding the replica as it is now."""
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the query process
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in (self.commands.fileno(), self.notices.fileno(), self.wake_read, self.wake_write):
                os.close(fd)
            ours.close()
            try:
                serve_queries(self.store, theirs)
            finally:
                os._exit(0)
        theirs.close()
        self.children.add(pid)
        notice = wire.frame({"kind": "started", "pid": pid, "generation": generation})
        try:
            socket.send_fds(self.notices, [notice], [ours.fileno()])
        except OSError:  # the server is gone: so is the point of this process
            os.kill(pid, signal.SIGKILL)
        finally:
            ours.close()

    def stop_children(self) -> None:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def reap(self) -> None:
        """Collect the query processes that ended and tell the server how each did."""
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done == 0:
                continue
            self.children.discard(pid)
            if os.WIFSIGNALED(status):
                how = signal.Signals(os.WTERMSIG(status)).name
            else:
                how = f"exit status {os.waitstatus_to_exitcode(status)}"
            with contextlib.suppress(OSError):
                self.notices.send(wire.frame({"kind": "ended", "pid": pid, "how": how}))


def main(argv: list[str]) -> None:
    commands = socket.socket(fileno=int(argv[0]))
    notices = socket.socket(fileno=int(argv[1]))
    Template(commands, notices).run()


if __name__ == "__main__":
    main(sys.argv[1:])
