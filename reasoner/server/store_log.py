"""The server's store, with every change it makes written down so the query processes can follow.

Queries run on replicas of the store in other processes (``query_process``), so each
write the server applies must reach them, in the order it was applied. ``LoggedStore``
wraps the pyoxigraph store the server writes to: reads pass through; ``update`` is
applied and then recorded as its text (replayed as is, it gives the same store);
anything that cannot be replayed exactly (an update whose result depends on when or
where it runs: ``NOW()``, ``RAND()``, ``UUID()``, ``STRUUID()``, ``LOAD``, ``SERVICE``;
an update that failed, which may have applied part of its work; or a change made
other than by an update) is recorded as a *reset*, after which the
replicas are rebuilt from a dump. ``ServerState.write`` takes the recorded changes after
each write and hands them to the query processes before the write is acknowledged.

Blank nodes that an update creates (``BNODE()``, ``[]`` in a template) get other internal
labels in each replica, as in any two stores; queries see the same graph shape.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pyoxigraph as ox

from .sparql.text import might_have, scan

NOT_REPLAYABLE = ("NOW", "RAND", "UUID", "STRUUID", "LOAD", "SERVICE")
"""Keywords (as ``sparql_text.scan`` finds them) of updates whose effect may differ when
the same text is applied to an equal store elsewhere or later."""


@dataclass(frozen=True)
class Change:
    """One write as the replicas take it: an update's text, or ``text`` None for a reset;
    ``seq`` numbers the changes in the order they were applied."""

    seq: int
    text: str | None
    base_iri: str | None = None


class LoggedStore:
    """A pyoxigraph ``Store`` that records its changes once ``start_recording`` is called."""

    def __init__(self, store: ox.Store):
        self._store = store
        self._lock = threading.Lock()
        self._changes: list[Change] | None = None
        self._seq = 0

    def __getattr__(self, name: str) -> Any:
        if name in {"add", "remove", "extend", "bulk_extend", "load", "bulk_load", "clear", "clear_graph"}:
            return self._resetting(getattr(self._store, name))
        return getattr(self._store, name)

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, quad: ox.Quad) -> bool:
        return quad in self._store

    def __iter__(self):
        return iter(self._store)

    def start_recording(self) -> None:
        """From now on, record the changes (before, the replicas are built from a dump)."""
        with self._lock:
            self._changes = []

    def take_changes(self) -> list[Change]:
        """The changes recorded since the last call, in the order they were applied."""
        with self._lock:
            changes, self._changes = self._changes, ([] if self._changes is not None else None)
        return changes or []

    def dump_for_replica(self, path: str) -> int:
        """Write the store as N-Quads to ``path``; the number of the last change it holds
        (no write runs meanwhile)."""
        with self._lock:
            self._store.dump(output=path, format=ox.RdfFormat.N_QUADS)
            return self._seq

    def update(self, text: str, base_iri: str | None = None) -> None:
        replayable = not (might_have(text, NOT_REPLAYABLE) and scan(text).has(*NOT_REPLAYABLE))
        with self._lock:  # applied and recorded in one step, so the record has the store's order
            try:
                self._store.update(text, base_iri=base_iri)
            except SyntaxError:  # refused before anything was applied
                raise
            except BaseException:
                self._record(None)  # it may have applied part of its work: rebuild the replicas
                raise
            self._record(text if replayable else None, base_iri)

    def _record(self, text: str | None, base_iri: str | None = None) -> None:
        self._seq += 1
        if self._changes is not None:
            self._changes.append(Change(self._seq, text, base_iri))

    def remove_graph(self, graph: ox.NamedNode | ox.BlankNode | ox.DefaultGraph) -> None:
        if isinstance(graph, ox.NamedNode):
            self.update(f"DROP SILENT GRAPH {graph}")
        else:
            self._resetting(self._store.remove_graph)(graph)

    def _resetting(self, method: Any) -> Any:
        def changed(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                result = method(*args, **kwargs)
                self._record(None)
            return result

        return changed
