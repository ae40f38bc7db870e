"""Convert quantities between UCUM units, for the units case properties declare.

A case property names its unit in the ontology (``lbp:ucumUnit``); a FHIR Quantity may
carry any commensurable UCUM code (mg/dL for a property in mg/L, days for one in weeks).
Rather than a table of pairs, this is a small part of UCUM itself: metric prefixes, the
base units of length, mass and time, the litre and the calendar units of time, combined
with ``.`` and ``/``, integer exponents and annotations. A unit outside it is refused
with its name, never guessed. Arithmetic is decimal, so mg/dL -> mg/L is exactly x 10.
"""

from __future__ import annotations

import re
from decimal import Decimal

# Dimension vectors are exponents of (metre, gram, second). A parsed unit keeps its factor
# as numerator and denominator, so that only the final conversion divides.
Dimension = tuple[int, int, int]
Unit = tuple[Decimal, Decimal, Dimension]
_ONE: Unit = (Decimal(1), Decimal(1), (0, 0, 0))
_LENGTH, _MASS, _TIME = (1, 0, 0), (0, 1, 0), (0, 0, 1)
_DAY = Decimal(86400)
_JULIAN_YEAR = Decimal("365.25") * _DAY

# UCUM atoms: factor to the base units, dimension, and whether metric prefixes apply.
_ATOMS: dict[str, tuple[Decimal, Dimension, bool]] = {
    "m": (Decimal(1), _LENGTH, True),
    "g": (Decimal(1), _MASS, True),
    "s": (Decimal(1), _TIME, True),
    "L": (Decimal("0.001"), (3, 0, 0), True),
    "l": (Decimal("0.001"), (3, 0, 0), True),
    "min": (Decimal(60), _TIME, False),
    "h": (Decimal(3600), _TIME, False),
    "d": (_DAY, _TIME, False),
    "wk": (7 * _DAY, _TIME, False),
    "mo": (_JULIAN_YEAR / 12, _TIME, False),
    "a": (_JULIAN_YEAR, _TIME, False),
}
_PREFIXES = {
    "da": Decimal(10),
    "h": Decimal(100),
    "k": Decimal(1000),
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "d": Decimal("0.1"),
    "c": Decimal("0.01"),
    "m": Decimal("0.001"),
    "u": Decimal(10) ** -6,
    "n": Decimal(10) ** -9,
    "p": Decimal(10) ** -12,
    "f": Decimal(10) ** -15,
}
_TOKEN = re.compile(r"\{[^}]*\}|[./()]|[^./(){}]+")
_UNIT = re.compile(r"(?P<atom>[A-Za-z]+)(?P<exp>[+-]?\d+)?")


class UcumError(ValueError):
    """A unit that this UCUM subset cannot read, or two units that do not convert."""


def _atom(symbol: str) -> tuple[Decimal, Dimension]:
    """A unit symbol without exponent: an atom, or a metric prefix and a metric atom."""
    if symbol in _ATOMS:
        factor, dim, _ = _ATOMS[symbol]
        return factor, dim
    for prefix, scale in _PREFIXES.items():
        rest = symbol[len(prefix) :]
        if symbol.startswith(prefix) and rest in _ATOMS and _ATOMS[rest][2]:
            factor, dim, _ = _ATOMS[rest]
            return scale * factor, dim
    raise UcumError(f"unit {symbol!r} is not in the UCUM subset this tool converts")


def _component(token: str) -> Unit:
    if token.isdigit():
        return Decimal(token), Decimal(1), (0, 0, 0)
    match = _UNIT.fullmatch(token)
    if not match:
        raise UcumError(f"unit {token!r} is not in the UCUM subset this tool converts")
    factor, dim = _atom(match["atom"])
    exp = int(match["exp"] or 1)
    powered = factor ** abs(exp)
    num, den = (powered, Decimal(1)) if exp > 0 else (Decimal(1), powered)
    return num, den, (dim[0] * exp, dim[1] * exp, dim[2] * exp)


def _combine(a: Unit, b: Unit, sign: int) -> Unit:
    """``a . b`` (sign 1) or ``a / b`` (sign -1)."""
    num, den = (a[0] * b[0], a[1] * b[1]) if sign > 0 else (a[0] * b[1], a[1] * b[0])
    return num, den, (a[2][0] + sign * b[2][0], a[2][1] + sign * b[2][1], a[2][2] + sign * b[2][2])


def _term(tokens: list[str], pos: int) -> tuple[Unit, int]:
    """Parse ``[/] component ((.|/) component)*`` from ``pos``; returns the value and the
    position after it (a closing parenthesis ends the term)."""
    value = _ONE
    sign = 1
    expect_component = True
    while pos < len(tokens) and tokens[pos] != ")":
        token = tokens[pos]
        if token in "./" and not expect_component:
            sign, expect_component = (1 if token == "." else -1), True
            pos += 1
            continue
        if token == "/" and pos == 0:
            sign, pos = -1, pos + 1
            continue
        if not expect_component or token in "./":
            raise UcumError(f"unexpected {token!r}")
        if token == "(":
            inner, pos = _term(tokens, pos + 1)
            if pos >= len(tokens):
                raise UcumError("unbalanced parenthesis")
            part, pos = inner, pos + 1
        elif token.startswith("{"):  # an annotation alone stands for 1
            part, pos = _ONE, pos + 1
        else:
            part, pos = _component(token), pos + 1
            if pos < len(tokens) and tokens[pos].startswith("{"):
                pos += 1  # an annotation after a unit does not change it
        value = _combine(value, part, sign)
        expect_component = False
    if expect_component:
        raise UcumError("a unit expression ends where a unit is expected")
    return value, pos


def parse(code: str) -> Unit:
    """A UCUM code as (numerator, denominator) of its factor to base units, and dimension."""
    tokens = _TOKEN.findall(code)
    if not tokens or "".join(tokens) != code:
        raise UcumError(f"unit {code!r} is not a UCUM code")
    value, pos = _term(tokens, 0)
    if pos != len(tokens):
        raise UcumError(f"unit {code!r}: unbalanced parenthesis")
    return value


def convert(value: Decimal, from_code: str, to_code: str) -> Decimal:
    """``value`` in ``from_code`` expressed in ``to_code``, exactly in decimal."""
    (num_from, den_from, dim_from), (num_to, den_to, dim_to) = parse(from_code), parse(to_code)
    if dim_from != dim_to:
        raise UcumError(f"{from_code!r} does not convert to {to_code!r} (different kinds of quantity)")
    return value * num_from * den_to / (den_from * num_to)
