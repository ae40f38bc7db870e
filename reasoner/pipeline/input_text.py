"""What the raw text of a case file (or a posted body) must be before a parser sees it,
and what a parser's failure means in the user's terms.

The parsers fail badly on some input: pyoxigraph's JSON-LD and Turtle parsers recurse once
per level of nesting and overflow the stack (the process dies by SIGSEGV) some thousands of
levels deep; Python's ``json`` raises ``RecursionError`` at about a thousand, refuses an
integer of more than 4,300 digits with a hint about ``sys.set_int_max_str_digits()``, and
reads ``1e999`` as infinity; pyoxigraph stops at a term longer than 16 MiB with a
``MemoryError``. So nesting is checked here first (``MAX_NESTING``), numbers as they are
read, and every failure becomes a ``TextError`` whose message says what is wrong with the
file, at which line and column of the file as its author wrote it (the parsers' own
positions when they refer to that text, never positions in a text made from it).

Case files are UTF-8; a UTF-8 byte-order mark is skipped. UTF-16 and UTF-32 text, and
bytes that are not UTF-8, are refused with the position of the first bad byte.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import orjson

MAX_NESTING = 100
"""The deepest nesting a case file may have: JSON arrays and objects, and Turtle's quoted
triples (``<< … >>``), whose parser recurses per level. A case nests a few levels (a FHIR
Bundle about ten), so 100 leaves a wide margin below the thousands at which the parsers
fail."""

UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
DECIMAL_EXPONENT_LIMIT = 400
"""The largest power of ten (either way) a number may have to be written out as an
``xsd:decimal``, which has no exponent: ``1E999999999`` written out is a billion digits.
JSON numbers end near 1.8e308, so every one of them is written out."""
TERM_LIMIT = 16 * 1024 * 1024
"""pyoxigraph's largest term (an IRI or a literal): its parser buffer stops there."""

_JSON_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_JSON_TOKEN = re.compile(_JSON_STRING + r"|[\[\]{}]", re.DOTALL)
_QUOTES_AND_BRACKETS = b'"[]{}'
_NOT_QUOTES_OR_BRACKETS = bytes(b for b in range(256) if b not in _QUOTES_AND_BRACKETS)
_STRINGS = re.compile(_JSON_STRING, re.DOTALL)
_AS_PARENTHESES = bytes.maketrans(b"[{]}", b"(())")
_TURTLE_TOKEN = re.compile(
    r"""'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
      |'(?:[^'\\\n\r]|\\.)*'|"(?:[^"\\\n\r]|\\.)*"
      |\#[^\n\r]*|<[^<>"{}|^`\\\x00-\x20]*>|<<|>>""",
    re.VERBOSE | re.DOTALL,
)
_NUL_HINT = " (the file holds NUL bytes: binary data, or UTF-16 text without a byte-order mark?)"
_PARSER_POSITION = re.compile(r"^Parser error at line \d+ (?:column \d+|between columns \d+ and \d+): ")


class TextError(ValueError):
    """Text that cannot be read: what is wrong, in the reader's terms, and where (line and
    column, from 1, in the file as written) when that is known."""

    def __init__(self, problem: str, line: int | None = None, column: int | None = None):
        self.problem, self.line, self.column = problem, line, column
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line is None:
            return self.problem
        return f"line {self.line}, column {self.column}: {self.problem}"


def _position(text: str, offset: int) -> tuple[int, int]:
    """Line and column (from 1, in characters) of ``offset`` in ``text``."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def decode(data: bytes) -> str:
    """``data`` as UTF-8 text without a byte-order mark; ``TextError`` when it is another
    encoding or holds bytes that are not UTF-8 (naming the first, with its position)."""
    for bom, name in _OTHER_BOMS:
        if data.startswith(bom):
            raise TextError(
                f"the file is {name} text (it starts with a {name} byte-order mark): save it as UTF-8"
            )
    data = data.removeprefix(UTF8_BOM)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8")
        line, column = _position(before, len(before))
        raise TextError(
            f"byte 0x{data[exc.start]:02X} is not UTF-8: case files are UTF-8 text"
            + (_NUL_HINT if b"\x00" in data else ""),
            line,
            column,
        ) from None


def read_text(path: Path) -> str:
    """A file's text (see ``decode``)."""
    return decode(path.read_bytes())


# -- JSON ---------------------------------------------------------------------------------
class _BadNumber(ValueError):
    def __init__(self, token: str, problem: str):
        self.token, self.problem = token, problem


def _integer(token: str) -> int:
    digits = len(token.lstrip("-"))
    limit = sys.get_int_max_str_digits()
    if limit and digits > limit:
        raise _BadNumber(token, f"a number of {digits:,} digits: at most {limit:,} are read")
    return int(token)


def _finite(token: str) -> float:
    value = float(token)
    if value in (float("inf"), float("-inf")):
        raise _BadNumber(token, f"the number {_brief(token)} is too large to be read")
    return value


def _constant(token: str) -> float:
    raise _BadNumber(token, f"{token} is not a JSON number")


def _brief(text: str, most: int = 40) -> str:
    return text if len(text) <= most else f"{text[:most]}… ({len(text):,} characters)"


def _outside_strings(text: str, token: str) -> int | None:
    """The offset of the first ``token`` outside JSON strings."""
    pattern = re.compile(_JSON_TOKEN.pattern + "|" + re.escape(token), re.DOTALL)
    for match in pattern.finditer(text):
        if match.group() == token:
            return match.start()
    return None


def _nested_within_limit(text: str, marks: bytes) -> bool:
    """True when the brackets outside strings (the scan's tokens) pair up and nest at most
    ``MAX_NESTING`` deep, found in C: the strings are removed as the scan reads them, only
    brackets kept, and each round removes the innermost pairs, so a properly nested text of
    depth d is empty after d rounds. A False answer sends the text to the scan, which finds
    and names the place. ``marks`` is the text's quotes and brackets (``_marks``). A FHIR
    Bundle has hundreds of brackets about ten deep: this takes a twentieth of the scan's
    time (a quarter when a string holds an escape)."""
    if "\\" in text:  # an escape may hide a quote: the scan's own string pattern
        kept = _marks(_STRINGS.sub("", text).encode("utf-8", "surrogatepass"))
    else:
        # A string is anything between two quotes. One without brackets leaves its two
        # quotes side by side in ``marks``: removed in pairs from the left, they leave no
        # quote unless a string holds a bracket (its opening quote is then followed by
        # one, and stays), or a quote is unterminated.
        kept = marks.replace(b'""', b"")
        if b'"' in kept:  # every other piece between quotes
            pieces = marks.split(b'"')
            if len(pieces) % 2 == 0:  # an unterminated quote: the scan tells
                return False
            kept = b"".join(pieces[::2])
    # An unterminated quote stays, and is dropped with the others: the scan skips it too.
    brackets = kept.translate(_AS_PARENTHESES, b'"')
    for _ in range(MAX_NESTING):
        if not brackets:
            return True
        inner_removed = brackets.replace(b"()", b"")
        if inner_removed == brackets:
            return False
        brackets = inner_removed
    return not brackets


def _marks(data: bytes) -> bytes:
    """The quotes and brackets of a UTF-8 text, in order (none of them is part of a
    multi-byte character)."""
    return data.translate(None, _NOT_QUOTES_OR_BRACKETS)


def _check_json_nesting(text: str, data: bytes) -> None:
    """``TextError`` at the first bracket nested deeper than ``MAX_NESTING``; ``data`` is
    ``text`` in UTF-8. Counting the brackets first (in C) spares the scan for nearly every
    file."""
    marks = _marks(data)
    if marks.count(b"[") + marks.count(b"{") <= MAX_NESTING or _nested_within_limit(text, marks):
        return
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_NESTING:
                raise TextError(
                    f"JSON arrays and objects nested more than {MAX_NESTING} levels deep: at most "
                    f"{MAX_NESTING} are read",
                    *_position(text, match.start()),
                )
        elif token in "]}":
            depth = max(depth - 1, 0)


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")


def long_digits(data: bytes) -> bool:
    """Whether ``data`` holds nineteen digits in a row: maybe an integer past 64 bits,
    which orjson reads as a float (-9223372036854775809 would become -9.223372036854776e18),
    where Python's parser keeps every digit. Found in C, every digit made a zero and the
    run of zeros looked for: the regular expression ``[0-9]{19}`` took 15 times as long."""
    return b"0" * 19 in data.translate(_DIGITS_AS_ZERO)


def json_text(text: str) -> object:
    """The JSON document in ``text``; ``TextError`` saying why it cannot be read, with its
    position (Python's messages, without its hints). orjson reads it, at half the time of
    Python's parser, unless it holds nineteen digits in a row; what orjson refuses (also
    NaN, an infinite number, a lone surrogate) Python's parser reads or refuses, saying why.
    Where both read a text they give the same values: the same keys in the same order (the
    last of a repeated key), the same integers and the same floats."""
    data = text.encode("utf-8", "surrogatepass")
    _check_json_nesting(text, data)
    if not long_digits(data):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text, parse_int=_integer, parse_float=_finite, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise TextError(f"not valid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except _BadNumber as exc:
        offset = _outside_strings(text, exc.token)
        raise TextError(
            exc.problem, *(_position(text, offset) if offset is not None else (None, None))
        ) from None


def json_document(data: bytes) -> object:
    """The JSON document in ``data`` (UTF-8, see ``decode``)."""
    return json_text(decode(data))


# -- RDF syntaxes -------------------------------------------------------------------------
def check_rdf_nesting(path: Path, chunk: int = 1 << 23) -> None:
    """``TextError`` when a Turtle or TriG file nests quoted triples (``<<``) deeper than
    ``MAX_NESTING``. The file is read in chunks and ``<<`` counted; only a file with more
    of them than that is scanned."""
    count, tail = 0, b""
    with open(path, "rb") as f:
        while block := f.read(chunk):
            count += (tail + block[:1]).count(b"<<") + block.count(b"<<")
            tail = block[-1:]
            if count > MAX_NESTING:
                break
    if count <= MAX_NESTING:
        return
    text = path.read_bytes().removeprefix(UTF8_BOM).decode("utf-8", errors="replace")
    depth = 0
    for match in _TURTLE_TOKEN.finditer(text):
        token = match.group()
        if token == "<<":
            depth += 1
            if depth > MAX_NESTING:
                raise TextError(
                    f"quoted triples (<< … >>) nested more than {MAX_NESTING} levels deep: at most "
                    f"{MAX_NESTING} are read",
                    *_position(text, match.start()),
                )
        elif token == ">>":
            depth = max(depth - 1, 0)


def parse_problem(exc: BaseException, path: Path | None = None) -> TextError:
    """What a pyoxigraph parse failure of a file (or of a text that is the file's own text)
    means: the parser's message with its line and column, or, when the file is not UTF-8,
    where it is not; a term too long for the parser, said as such."""
    if isinstance(exc, MemoryError):
        return TextError(
            f"a single term (an IRI or a literal) is longer than {TERM_LIMIT // (1024 * 1024)} MiB, "
            "the most the parser reads"
        )
    hint = ""
    if path is not None:
        try:
            data = path.read_bytes()
            decode(data)
        except TextError as encoding:
            return encoding
        except OSError:
            data = b""
        if b"\x00" in data:
            hint = _NUL_HINT
    if isinstance(exc, SyntaxError):
        message = _PARSER_POSITION.sub("", exc.msg or "") + hint
        if exc.lineno:
            return TextError(message, exc.lineno, exc.offset or 1)
        return TextError(message)
    return TextError(str(exc) + hint)
