"""Reading N-Triples for batch assessment: lines grouped by subject without a parse, and
facts shared between the cases of a batch. Both are shortcuts for speed, so each is
checked against the plain way (parse everything, key every quad by its subject)."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasoner.pipeline.cases import (
    CaseBatch,
    LineBatch,
    group_by_subject,
    load_grouped,
    nt_lines_by_subject,
    parse_cases,
    real_location,
)

SUBJECTS = ["<urn:case:a>", "<urn:case:b>", "<https://example.org/c/1>", "_:n1"]
OBJECTS = [
    '"51"^^<http://www.w3.org/2001/XMLSchema#integer>',
    '"6.0"^^<http://www.w3.org/2001/XMLSchema#decimal>',
    '"6"^^<http://www.w3.org/2001/XMLSchema#decimal>',
    '"café 😀"',
    '"a \\" quote"@en',
    "<urn:finding:fever>",
    "_:o1",
]
TRIPLES = [f"{s} <urn:p:{i}> {o} ." for s in SUBJECTS for i in range(2) for o in OBJECTS]
NOISE = ["", "# a comment", "   ", "#"]


def _reference(text: str) -> dict[str, list[str]]:
    """Each subject's triples by parsing the whole text, as canonical N-Triples."""
    by_subject = group_by_subject(ox.parse(text, format=ox.RdfFormat.N_TRIPLES))
    return {k: [str(q) for q in quads] for k, quads in by_subject.items()}


def _as_parsed(groups: dict[str, list[str]]) -> dict[str, list[str]]:
    return {
        k: [str(q) for q in ox.parse("\n".join(lines), format=ox.RdfFormat.N_TRIPLES)]
        for k, lines in groups.items()
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(st.sampled_from(TRIPLES) | st.sampled_from(NOISE), min_size=1, max_size=40),
    newline=st.sampled_from(["\n", "\r\n"]),
    block_size=st.integers(min_value=1, max_value=300),
    final_newline=st.booleans(),
)
def test_lines_grouped_without_parsing_match_a_full_parse(
    tmp_path_factory, lines, newline, block_size, final_newline
):
    text = newline.join(lines) + (newline if final_newline else "")
    path = Path(tmp_path_factory.mktemp("nt")) / "cases.nt"
    path.write_bytes(text.encode("utf-8"))
    groups = nt_lines_by_subject(path, block_size=block_size)
    expected = _reference(text.replace("\r\n", "\n"))
    assert groups is not None
    assert list(groups) == list(expected)  # first-appearance order, non-contiguous lines gathered
    assert _as_parsed(groups) == expected


def test_a_subject_the_fast_reading_cannot_key_falls_back_to_a_parse(tmp_path):
    path = tmp_path / "tabs.nt"
    path.write_text('<urn:case:a>\t<urn:p> "x" .\n<urn:case:a> <urn:q> "y" .\n', encoding="utf-8")
    assert nt_lines_by_subject(path) is None
    grouped = load_grouped([path])
    assert not grouped.errors
    assert _as_parsed(grouped.lines) == _reference(path.read_text(encoding="utf-8"))


def test_a_file_that_is_not_utf8_is_reported_not_crashed_on(tmp_path):
    path = tmp_path / "latin1.nt"
    path.write_bytes('<urn:case:a> <urn:p> "café" .\n'.encode("latin-1"))
    grouped = load_grouped([path])
    assert not grouped.lines
    assert [e.path for e in grouped.errors] == [str(path)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(TRIPLES), min_size=1, max_size=40))
def test_shared_facts_equal_the_facts_of_the_parsed_quads(lines):
    groups: dict[str, list[str]] = {}
    for line in lines:
        groups.setdefault(line.split(" ", 1)[0].strip("<>"), []).append(line)
    batch, errors = parse_cases(LineBatch.of(groups), {})
    plain = CaseBatch.from_quads(batch.quads)
    assert not errors
    assert batch.facts == plain.facts
    grouped_text = "\n".join(line for group in groups.values() for line in group)
    assert [str(q) for quads in batch.quads.values() for q in quads] == [
        str(q) for q in ox.parse(grouped_text, format=ox.RdfFormat.N_TRIPLES)
    ]
    # Equal facts are one object, so the engine tests and renders each once.
    facts = [f for subject_facts in batch.facts.values() for f in subject_facts]
    assert len({id(f) for f in facts}) == len(set(facts))


# -- a UTF-8 byte-order mark -------------------------------------------------------------------
_ROOT = Path(__file__).resolve().parent.parent
_BOM_SOURCES = {
    "turtle": _ROOT / "examples/cases/01-cauda-equina-urinary-saddle.ttl",
    "json-ld": _ROOT / "examples/cases/02-cauda-equina-bilateral-leg-signs.jsonld",
    "fhir": _ROOT / "examples/fhir/01-cauda-equina-urinary-saddle.json",
}


def _outcomes(assessor, path: Path) -> list[tuple]:
    run = assessor.assess([path])
    assert run.input_errors == [], run.input_errors
    return [
        (r.case, r.status, (r.outcome or {}).get("iri"), tuple(sorted(r.met_classes()))) for r in run.results
    ]


@pytest.mark.parametrize("kind", [*_BOM_SOURCES, "n-triples"])
def test_a_utf8_byte_order_mark_is_accepted_and_ignored(assessor, tmp_path, kind):
    if kind == "n-triples":
        plain = tmp_path / "plain.nt"
        plain.write_text(
            rdflib.Graph().parse(_BOM_SOURCES["turtle"]).serialize(format="nt"), encoding="utf-8"
        )
    else:
        plain = _BOM_SOURCES[kind]
    marked = tmp_path / f"marked{plain.suffix}"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    expected = _outcomes(assessor, plain)
    assert expected and _outcomes(assessor, marked) == expected
    # the streamed reader (JSON and CSV output) reads the same cases
    grouped = load_grouped([marked], assessor.inputs)
    assert grouped.errors == [] and set(grouped.lines) >= {case for case, *_ in expected}


def test_a_files_real_location_is_what_resolving_it_gives(tmp_path, monkeypatch) -> None:
    """``real_location`` (a folder resolved once per folder) against ``Path.resolve``: plain,
    relative, linked files and folders, links to links, missing files."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "case.ttl").write_text("")
    (tmp_path / "linked-folder").symlink_to(real)
    (real / "linked.ttl").symlink_to(real / "case.ttl")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "far.ttl").symlink_to(tmp_path / "linked-folder" / "linked.ttl")
    monkeypatch.chdir(tmp_path)
    paths = [
        real / "case.ttl",
        Path("real/case.ttl"),
        tmp_path / "linked-folder" / "case.ttl",
        Path("linked-folder/linked.ttl"),
        tmp_path / "elsewhere" / "far.ttl",
        tmp_path / "real" / "missing.ttl",
        tmp_path / "real" / "..",
        Path("."),
    ]
    for path in paths * 2:  # the second time from the folders already resolved
        assert real_location(path) == path.resolve(), path
