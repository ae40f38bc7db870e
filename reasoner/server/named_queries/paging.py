"""Paging the rows of a named SELECT query: the ``limit`` and ``offset`` parameters of
``/api/{name}``.

**Parameters.** ``limit`` and ``offset`` are reserved names (a query variable may not use
them, ``spec`` checks). Both are non-negative integers; ``limit`` is at most the server's
``--max-rows`` and defaults to it when only ``offset`` is given. A request with neither is
not paged: it runs as before, its whole answer within ``--max-rows``.

**Evaluation.** The query (its parameters bound) becomes a subquery, ``SELECT ?cols WHERE
{ <query> } LIMIT n+1 OFFSET m``, with its ``PREFIX``/``BASE`` lines moved in front: the
query's own ``ORDER BY`` and ``LIMIT`` still hold inside, and the page is cut from its
answer. Naming the columns keeps their order as the query gives it. One row more than
the page is asked for so that whether another page follows is known without a second
query; that row is not sent.

**Response.** The SPARQL results formats have no place for paging, so it is in HTTP
headers, whatever the format: ``Link`` (RFC 8288) with ``rel="next"`` when more rows
follow and ``rel="prev"`` when the page does not start at the first row, each a GET of
the same query with the same parameters (from the URL or a form) and ``limit`` and
``offset`` set. Totals are not given: counting them would run
the whole query each time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

PAGING = ("limit", "offset")
"""The reserved parameter names."""

_PROLOGUE = re.compile(
    r"\A(?:\s+|\#[^\n\r]*|(?i:PREFIX)\s+[^\s:<>]*:\s*<[^<>\s]*>|(?i:BASE)\s*<[^<>\s]*>)*",
)
"""A query's prologue: comments (the grlc header among them), ``PREFIX`` and ``BASE``."""


@dataclass(frozen=True)
class Page:
    """Which rows of the answer to send: ``limit`` rows after the first ``offset``."""

    limit: int
    offset: int

    @classmethod
    def of(cls, values: dict[str, str], max_rows: int) -> Page | None:
        """The page ``values`` ask for with ``limit`` and ``offset``; None when they give
        neither. ``ValueError`` naming the parameter when one is not a
        non-negative integer or ``limit`` is above ``max_rows``."""
        given = {name: values[name] for name in PAGING if name in values}
        if not given:
            return None
        numbers: dict[str, int] = {}
        for name, value in given.items():
            if not value.isascii() or not value.isdigit():
                raise ValueError(f"parameter {name!r} must be a non-negative integer, not {value!r}")
            numbers[name] = int(value)
        limit = numbers.get("limit", max_rows)
        if limit > max_rows:
            raise ValueError(f"parameter 'limit' must be at most {max_rows} (this server's row limit)")
        return cls(limit, numbers.get("offset", 0))

    def text(self, query: str, columns: tuple[str, ...]) -> str:
        """``query`` (a SELECT with ``columns``) made to give this page and one row more."""
        prologue = _PROLOGUE.match(query).group()
        projection = " ".join(f"?{c}" for c in columns) or "*"
        body = query[len(prologue) :]
        page = f"LIMIT {self.limit + 1} OFFSET {self.offset}"
        return f"{prologue}\nSELECT {projection} WHERE {{\n{body}\n}}\n{page}"

    def links(self, url: str, values: dict[str, str], more: bool) -> str | None:
        """The ``Link`` header of this page of the query at ``url`` (no query string) with its parameter
        ``values`` (from the URL or a form: the links are GET requests): ``next`` when
        ``more`` rows follow, ``prev`` unless the page starts at the first row; None when
        neither (or when ``limit`` is 0, where another page would be this one)."""
        links = []
        if more and self.limit:
            links.append((self.offset + self.limit, "next"))
        if self.offset and self.limit:
            links.append((max(0, self.offset - self.limit), "prev"))
        targets = [
            (f"{url}?{urlencode({**values, 'limit': self.limit, 'offset': offset})}", rel)
            for offset, rel in links
        ]
        return ", ".join(f'<{target}>; rel="{rel}"' for target, rel in targets) or None
