"""The UCUM registry's disk cache: the same conversions with and without it, published
whole, and a damaged one rebuilt rather than trusted."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from reasoner.fhir import ucum

PAIRS = [
    ("mg/dL", "mg/L"),
    ("d", "wk"),
    ("[lb_av]", "kg"),
    ("Cel", "K"),
    ("10*9/L", "10*3/uL"),
    ("mm/h", "mm/h"),
]


@pytest.fixture(autouse=True)
def _application_registry_kept():
    """Building a registry sets pint's application registry (to one read from that cache):
    each test leaves the process's as it found it, not one of a removed temporary folder."""
    import pint

    before = pint.get_application_registry().get()
    yield
    pint.set_application_registry(before)


def convert_all(registry) -> list[Decimal]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ucum, "_registry", lambda: registry)
        ucum._unit.cache_clear()
        ucum._converted.cache_clear()
        try:
            return [ucum.convert(Decimal("12.5"), a, b) for a, b in PAIRS]
        finally:
            ucum._unit.cache_clear()
            ucum._converted.cache_clear()


def test_cached_registry_converts_as_the_uncached_one(tmp_path: Path, monkeypatch) -> None:
    from ucumvert import PintUcumRegistry

    monkeypatch.setenv(ucum.CACHE_ENV, str(tmp_path))
    built = ucum._registry.__wrapped__()  # builds and publishes the cache
    published = [p for p in tmp_path.iterdir()]
    assert len(published) == 1 and published[0].name.startswith("units-") and any(published[0].iterdir())
    from_cache = ucum._registry.__wrapped__()
    expected = convert_all(PintUcumRegistry(non_int_type=Decimal))
    assert convert_all(built) == expected
    assert convert_all(from_cache) == expected
    assert [p.name for p in tmp_path.iterdir()] == [published[0].name]  # no leftover build directory


def test_a_damaged_cache_is_rebuilt(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(ucum.CACHE_ENV, str(tmp_path))
    ucum._registry.__wrapped__()
    (published,) = tmp_path.iterdir()
    for cached in (p for p in published.rglob("*") if p.is_file()):
        cached.write_bytes(cached.read_bytes()[:7])  # as a process stopped mid-write leaves it
    registry = ucum._registry.__wrapped__()
    assert convert_all(registry)[0] == Decimal("125")
    (again,) = tmp_path.iterdir()
    assert again.name == published.name  # published anew under the same name
    assert convert_all(ucum._registry.__wrapped__())[0] == Decimal("125")  # the rebuilt cache reads


def test_an_unwritable_cache_directory_still_gives_a_registry(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(ucum.CACHE_ENV, str(blocker / "cache"))
    assert convert_all(ucum._registry.__wrapped__())[1] == Decimal("1.7857142857142857143")


def in_base_units(registry, unit: str) -> str:
    try:
        return str(registry.Quantity(3, unit).to_base_units())
    except Exception as exc:  # pint's own refusals (a logarithmic unit): the same both ways
        return type(exc).__name__


def test_the_application_registry_is_read_from_the_cache_with_pints_own_definitions(
    tmp_path: Path, monkeypatch
) -> None:
    """ucumvert's code parser builds its units in pint's application registry: read from a
    cache of its own, it holds the units and factors of the one pint builds uncached."""
    import pint

    monkeypatch.setenv(ucum.CACHE_ENV, str(tmp_path))
    ucum._registry.__wrapped__()
    (published,) = tmp_path.iterdir()
    cache = published / ucum.APPLICATION
    assert any(p.is_file() for p in cache.rglob("*"))
    cached, built = pint.UnitRegistry(cache_folder=cache), pint.UnitRegistry()
    for unit in sorted(built._units):  # (a registry adds prefixed units as it meets them)
        assert in_base_units(cached, unit) == in_base_units(built, unit), unit
