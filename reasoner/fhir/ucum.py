"""Convert quantities between UCUM units, for the units case properties declare.

A case property names its unit in the ontology (``lbp:ucumUnit``); a FHIR Quantity may
carry any commensurable UCUM code (mg/dL for a property in mg/L, days for one in weeks).
UCUM codes are parsed by ucumvert and converted by pint in decimal arithmetic; the
result is given to 20 significant digits (pint goes through base units, which leaves
digits of rounding noise far below that: 42 d is 6 wk, mg/dL -> mg/L is exactly x 10).
A code that is not UCUM, or a quantity of another kind, is refused with its name, never
guessed.
"""

from __future__ import annotations

import os
from decimal import Context, Decimal, localcontext
from functools import cache, lru_cache
from pathlib import Path

SIGNIFICANT_DIGITS = Context(prec=20)


class UcumError(ValueError):
    """A unit that is not a UCUM code, or that does not convert to the one wanted."""


CACHE_ENV = "LBP_IMAGING_CACHE"
"""Where the unit registry's cache is kept (default: the user's cache directory)."""


@cache
def _registry():
    """The UCUM registry, from pint's disk cache of parsed definitions when there is one.

    Building it parses pint's and ucumvert's definition files: 1.5-1.8 s, most of a cold run
    on one FHIR bundle; from the cache 0.1 s (with pint's application registry, which
    ucumvert's code parser uses, cached in a folder of its own: ``_application_registry``;
    0.25 s when only ours was). pint keys its cache by the files' contents, but
    writes it in place, so that a process could read another's half-written file: the cache
    is built in a directory of its own and published by an atomic rename, named by the
    versions and install paths of pint and ucumvert; one that cannot be read is removed and
    the registry built without it, as when the cache directory cannot be written."""
    import shutil
    import tempfile
    from importlib.metadata import version
    from zlib import crc32

    import pint
    import platformdirs
    from ucumvert import PintUcumRegistry  # lazy: the registry's modules take a moment to import

    key = f"{pint.__file__}|{version('pint')}|{version('ucumvert')}|{Decimal.__name__}|{APPLICATION}"
    root = Path(os.environ.get(CACHE_ENV) or platformdirs.user_cache_path("lbp-imaging", appauthor=False))
    published = root / f"units-{crc32(key.encode()):08x}"
    if published.is_dir():
        try:
            _application_registry(published / APPLICATION)
            return PintUcumRegistry(non_int_type=Decimal, cache_folder=published)
        except Exception:  # a damaged cache (any unpickling error): rebuild it
            shutil.rmtree(published, ignore_errors=True)
    try:
        root.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix="units-", dir=root))
    except OSError:  # no cache directory to write: build from the definitions each time
        return PintUcumRegistry(non_int_type=Decimal)
    _application_registry(building / APPLICATION)
    registry = PintUcumRegistry(non_int_type=Decimal, cache_folder=building)
    try:
        building.rename(published)
    except OSError:  # another process published it first
        shutil.rmtree(building, ignore_errors=True)
    return registry


APPLICATION = "application"
"""The folder, in the cache, of pint's application registry's definitions."""


def _application_registry(folder: Path) -> None:
    """pint's application registry, read from the disk cache in ``folder``: ucumvert's
    code parser builds its units there (our registry converts them by their names), and
    pint builds that registry from its definition files, uncached, on first use: 0.2 s of
    every process's first conversion. The same registry as pint's default otherwise."""
    import pint

    pint.set_application_registry(pint.UnitRegistry(cache_folder=folder))


@lru_cache(maxsize=4096)  # bounded: the codes come from the input
def _unit(code: str) -> tuple[object, str | None]:
    """The parsed unit of a UCUM code, or why it is none: parsed once per code and
    process (parsing takes about a millisecond, converting with a parsed unit some 30
    microseconds), so that a bulk export of labs in a few units parses each unit once."""
    from pint.errors import PintError
    from ucumvert import InvalidUcumError

    try:
        return _registry().from_ucum(code), None
    except (InvalidUcumError, PintError, ValueError) as exc:
        return None, f"unit {code!r} is not a UCUM code ({str(exc).splitlines()[0]})"


def load(code: str) -> None:
    """Parse ``code`` now (and load the registry), so that a later conversion does not
    wait for it; a code that is not UCUM is refused when converted, as before."""
    _unit(code)


def convert(value: Decimal, from_code: str, to_code: str) -> Decimal:
    """``value`` in ``from_code`` expressed in ``to_code``, in decimal arithmetic."""
    text = str(value)  # a Decimal's text gives it back exactly, its exponent too
    if len(text) > MEMO_DIGITS:
        return _converted.__wrapped__(text, from_code, to_code)
    return _converted(text, from_code, to_code)


MEMO_DIGITS = 40
"""Values written longer than this are converted each time: the memo's size stays small."""


@lru_cache(maxsize=16_384)  # bounded: the values come from the input
def _converted(value: str, from_code: str, to_code: str) -> Decimal:
    """``convert``, once per value as written and pair of codes: a population repeats
    them (durations in whole days, a lab's results in its unit: four conversions in five
    of 3,000 generated bundles were repeats), and one through pint costs some 10
    microseconds. A unit that does not convert raises each time (``lru_cache`` keeps no
    exception)."""
    from pint.errors import DimensionalityError

    units = []
    for code in (from_code, to_code):
        unit, problem = _unit(code)
        if problem is not None:
            raise UcumError(problem)
        units.append(unit)
    try:
        with localcontext(prec=40):
            converted = _registry().Quantity(Decimal(value), units[0]).to(units[1]).magnitude
    except DimensionalityError:
        raise UcumError(
            f"{from_code!r} does not convert to {to_code!r} (different kinds of quantity)"
        ) from None
    return SIGNIFICANT_DIGITS.create_decimal(converted).normalize(SIGNIFICANT_DIGITS)
