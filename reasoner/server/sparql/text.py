"""Find the keywords of a SPARQL request that the server must act on before running it.

pyoxigraph parses and evaluates in one call and exposes no syntax tree, yet the server
has to decide beforehand whether a request calls ``SERVICE`` or ``LOAD`` (refused unless
allowed), whether a query names its own dataset with ``FROM`` (then the union default
graph must not replace it), whether an update already says ``USING``/``WITH`` (then the
protocol's ``using-graph-uri`` is an error) and where an update's ``WHERE`` clauses start
(to apply ``using-graph-uri``). The named queries of ``/api`` use it too, to find
their parameter variables and bind them (``variables``, ``Template``), and ``query`` to
put the row cap into a SELECT (``with_row_cap``). This module
only tokenises: strings, IRIs and comments are skipped so that a keyword or a variable
inside them does not count. It does not check syntax; pyoxigraph still rejects
malformed text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# SPARQL 1.1 §19.2: \u and \U escapes are processed before parsing, so a keyword may be
# written with them; keywords are looked for in the text with escapes replaced.
_CODEPOINT_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>\#[^\n\r]*)
    | (?P<string>'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
                |'(?:[^'\\\n\r]|\\.)*'|"(?:[^"\\\n\r]|\\.)*")
    | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
    | (?P<var>[?$][\w\u00b7\u0300-\u036f\u203f-\u2040]*)
    | (?P<word>[\w:][\w:.\-%\\\u00b7]*)
    | (?P<open>\{)
    | (?P<close>\})
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


DEFAULT_MAX_DEPTH = 100
"""The deepest nesting of brackets a query may have by default. pyoxigraph's parser recurses
once per level and overflows its thread's stack (the process dies by SIGSEGV) at a few
thousand levels (about 2,500 in a thread with the default stack); real queries nest a
handful of levels (the named queries of ``queries/`` at most 7), so 100 keeps a wide
margin on both sides."""
_OPENERS, _CLOSERS = frozenset("{(["), frozenset("})]")


@dataclass(frozen=True)
class Scan:
    """What the scanner found: bare words (upper-cased) anywhere, the offsets of the
    ``WHERE`` keywords that open an update operation's pattern (not ``DELETE WHERE``), and
    the deepest nesting of brackets (``{}``, ``()``, ``[]``) outside strings, IRIs and
    comments."""

    keywords: frozenset[str]
    modify_wheres: tuple[int, ...]
    depth: int = 0

    def has(self, *words: str) -> bool:
        return any(w in self.keywords for w in words)


def _unescaped(text: str) -> str:
    return _CODEPOINT_ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text)


def _tokens(text: str):
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind not in ("space", "comment"):
            yield kind, match.group(), match.start()


def scan(text: str) -> Scan:
    """Scan a query or update (see the module docstring for what is and is not found)."""
    keywords: set[str] = set()
    nesting = deepest = 0
    # Escapes are replaced first, as the parser does: a bracket may be written \u007B.
    for kind, value, _ in _tokens(_unescaped(text)):
        if kind == "word":
            keywords.add(value.upper())
        elif value in _OPENERS:
            nesting += 1
            deepest = max(deepest, nesting)
        elif value in _CLOSERS:
            nesting = max(nesting - 1, 0)
    wheres: list[int] = []
    depth, previous = 0, ""
    for kind, value, start in _tokens(text):
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif kind == "word" and depth == 0 and value.upper() == "WHERE" and previous != "DELETE":
            wheres.append(start)
        previous = value.upper() if kind == "word" else ""
    return Scan(frozenset(keywords), tuple(wheres), deepest)


def might_have(text: str, keywords: tuple[str, ...]) -> bool:
    """Whether ``scan(text)`` could find one of ``keywords``: False when none of them
    appears as a word anywhere in the text (strings and comments included) and no ``\\u``
    escape could spell one. A cheap test before the scan, for texts that are long and
    rarely hold them (a stored case's update)."""
    if "\\u" in text or "\\U" in text:
        return True
    return _words(keywords).search(text) is not None


@lru_cache(maxsize=16)
def _words(keywords: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"(?<![\w:])(?:" + "|".join(map(re.escape, keywords)) + r")(?![\w:])", re.IGNORECASE)


def depth_problem(scan: Scan, most: int) -> str | None:
    """Why a query or update nested deeper than ``most`` is refused, or ``None``: checked
    before pyoxigraph sees the text, whose parser would overflow its stack."""
    if scan.depth <= most:
        return None
    return (
        f"the request nests brackets {scan.depth} levels deep; at most {most} are accepted "
        "(deeper nesting would exhaust the SPARQL parser's stack)"
    )


def with_using(update: str, default_graphs: list[str], named_graphs: list[str]) -> str:
    """The update with ``USING``/``USING NAMED`` clauses for the given graphs before each
    operation's ``WHERE``: what the protocol's ``using-graph-uri`` and
    ``using-named-graph-uri`` mean (SPARQL 1.1 Protocol §2.2.3). The caller refuses an
    update that has its own ``USING`` or ``WITH``."""
    clauses = "".join(f"USING <{g}> " for g in default_graphs)
    clauses += "".join(f"USING NAMED <{g}> " for g in named_graphs)
    out, last = [], 0
    for start in scan(update).modify_wheres:
        out += [update[last:start], clauses]
        last = start
    out.append(update[last:])
    return "".join(out)


def variables(text: str) -> set[str]:
    """The names (without ``?`` or ``$``) of the variables the text mentions outside
    strings, IRIs and comments."""
    return {value[1:] for kind, value, _ in _tokens(text) if kind == "var" and len(value) > 1}


@dataclass(frozen=True)
class Template:
    """A text whose variables were found once, to be filled with terms many times: a named
    query is bound on every request, and tokenising its text each time cost a fifth of the
    server's time under load."""

    pieces: tuple[str, ...]
    """The text around the variables: one piece more than ``variables``."""
    variables: tuple[str, ...]
    """The variable between each two pieces, as written (``?x`` or ``$x``)."""

    @classmethod
    def of(cls, text: str) -> Template:
        pieces, found, last = [], [], 0
        for kind, value, start in _tokens(text):
            if kind == "var" and len(value) > 1:
                pieces.append(text[last:start])
                found.append(value)
                last = start + len(value)
        pieces.append(text[last:])
        return cls(tuple(pieces), tuple(found))

    def fill(self, terms: dict[str, str]) -> str:
        """The text with each variable named in ``terms`` replaced, wherever it occurs
        outside strings, IRIs and comments, by the SPARQL syntax given for it (a term the
        caller has serialized, so that no value is pasted in as query text)."""
        out = [self.pieces[0]]
        for variable, piece in zip(self.variables, self.pieces[1:], strict=True):
            out += [terms.get(variable[1:], variable), piece]
        return "".join(out)


@lru_cache(maxsize=1024)
def with_row_cap(text: str, rows: int) -> str | None:
    """The SELECT query ``text`` made to give at most ``rows`` solutions: a top-level
    ``LIMIT`` above ``rows`` lowered to it, or ``LIMIT rows`` added after the solution
    modifiers (before a trailing ``VALUES`` clause). Within the cap the answer is the
    query's own; ``query`` asks for one row more than its row cap, so that an answer too
    large is still seen as such.

    None when the text is not a query this scanner can follow with certainty: not a
    SELECT, ``\\u`` escapes or a backslash outside strings (they could hide a bracket), or
    brackets that do not balance. The caller then counts the solutions itself.

    Kept for the texts last asked for: the same queries come again and again, and
    tokenising them each time cost a tenth of the server's time under load."""
    if _CODEPOINT_ESCAPE.search(text):
        return None
    tokens = list(_tokens(text))
    i = 0
    while i < len(tokens) and tokens[i][0] == "word" and tokens[i][1].upper() in ("PREFIX", "BASE"):
        i += 3 if tokens[i][1].upper() == "PREFIX" else 2
    if i >= len(tokens) or tokens[i][0] != "word" or tokens[i][1].upper() != "SELECT":
        return None
    depth, pattern_closed, limit, values = 0, False, None, None
    for n in range(i, len(tokens)):
        kind, value, start = tokens[n]
        if kind == "word" and "\\" in value:
            return None
        if kind == "open" or (kind == "other" and value in "(["):
            depth += 1
        elif kind == "close" or (kind == "other" and value in ")]"):
            depth -= 1
            if depth < 0:
                return None
            pattern_closed = pattern_closed or (depth == 0 and kind == "close")
        elif depth == 0 and pattern_closed and kind == "word" and values is None:
            word = value.upper()
            if word == "LIMIT" and n + 1 < len(tokens) and tokens[n + 1][1].isdigit():
                limit = tokens[n + 1]
            elif word == "VALUES":
                values = start
    if depth != 0 or not pattern_closed:
        return None
    if limit is not None:
        _, count, start = limit
        if int(count) <= rows:
            return text
        return f"{text[:start]}{rows}{text[start + len(count) :]}"
    at = len(text) if values is None else values
    return f"{text[:at]}\nLIMIT {rows}\n{text[at:]}"
