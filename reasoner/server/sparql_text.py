"""Find the keywords of a SPARQL request that the server must act on before running it.

pyoxigraph parses and evaluates in one call and exposes no syntax tree, yet the server
has to decide beforehand whether a request calls ``SERVICE`` or ``LOAD`` (refused unless
allowed), whether a query names its own dataset with ``FROM`` (then the union default
graph must not replace it), whether an update already says ``USING``/``WITH`` (then the
protocol's ``using-graph-uri`` is an error) and where an update's ``WHERE`` clauses start
(to apply ``using-graph-uri``). The named queries of ``/api`` use it too, to find
their parameter variables and bind them (``variables``, ``substitute``). This module
only tokenises: strings, IRIs and comments are skipped so that a keyword or a variable
inside them does not count. It does not check syntax; pyoxigraph still rejects
malformed text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Scan:
    """What the scanner found: bare words (upper-cased) anywhere, and the offsets of the
    ``WHERE`` keywords that open an update operation's pattern (not ``DELETE WHERE``)."""

    keywords: frozenset[str]
    modify_wheres: tuple[int, ...]

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
    keywords = {value.upper() for kind, value, _ in _tokens(_unescaped(text)) if kind == "word"}
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
    return Scan(frozenset(keywords), tuple(wheres))


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


def substitute(text: str, terms: dict[str, str]) -> str:
    """The text with each variable named in ``terms`` replaced, wherever it occurs outside
    strings, IRIs and comments, by the SPARQL syntax given for it (a term the caller has
    serialized, so that no value is pasted in as query text)."""
    out, last = [], 0
    for kind, value, start in _tokens(text):
        if kind == "var" and value[1:] in terms:
            out += [text[last:start], terms[value[1:]]]
            last = start + len(value)
    out.append(text[last:])
    return "".join(out)
