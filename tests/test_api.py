"""The Python API (``reasoner.api``): its documented examples run as doctests, and what it
promises beyond them: the command line's answers, in-memory documents named as given,
bad input reported without losing the rest, and a knowledge base from any directory."""

from __future__ import annotations

import doctest
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kb_copy import copy_kb, edit

import reasoner.api
from reasoner.api import Document, Engine, load_knowledge_base

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-12-01"
TURTLE = """@prefix lbp: <https://w3id.org/lbp-imaging/> .
<urn:example:{name}> a lbp:PatientCase ; lbp:ageInYears {age} ;
    lbp:hasFinding lbp:UnexplainedWeightLoss ."""


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(as_of=AS_OF)


def test_the_documented_examples_run(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    found = doctest.testmod(reasoner.api, optionflags=doctest.ELLIPSIS, report=True)
    assert found.attempted >= 15
    assert found.failed == 0


def test_the_examples_give_the_command_lines_answers(engine: Engine) -> None:
    """Every example case and bundle: the API's result is the expected file's decision."""
    folders = [ROOT / "examples" / "cases", ROOT / "examples" / "fhir"]
    assessment = engine.assess(folders)
    assert assessment.exit_code == 0 and not assessment.input_errors
    by_case = {r.case: r for r in assessment.results}
    expected_files = sorted(f for d in folders for f in d.glob("*.expected.json"))
    entries = [e for f in expected_files for e in _entries(json.loads(f.read_text(encoding="utf-8")))]
    assert len(entries) == len(assessment.results)
    for expected in entries:
        result = by_case[expected["case"]]
        outcome = (result.outcome or {}).get("iri", "").rsplit("/", 1)[-1]
        criteria = sorted(c["iri"].rsplit("/", 1)[-1] for c in result.criteria if c["kind"] != "closed-world")
        assert (outcome, criteria) == (expected["outcome"], sorted(expected["criteria"])), expected["case"]


def _entries(data: dict | list) -> list[dict]:
    return data if isinstance(data, list) else [data]


def test_a_bundle_as_a_dict_is_read_as_its_file(engine: Engine) -> None:
    path = ROOT / "examples" / "fhir" / "03-infection-crp-mg-dl.json"
    from_file = engine.assess([path]).results[0].to_dict()
    from_dict = engine.assess([json.loads(path.read_text(encoding="utf-8"))]).results[0].to_dict()
    assert from_dict["source"] == "bundle-1.json"
    for key in ("case", "facts", "outcome", "recommendation", "criteria", "criterionStates", "questions"):
        assert from_dict[key] == from_file[key], key


def test_documents_are_named_as_given_and_bad_ones_do_not_stop_the_rest(engine: Engine) -> None:
    assessment = engine.assess(
        [
            Document(TURTLE.format(name="a", age=60), "text/turtle", "same"),
            Document(TURTLE.format(name="b", age=40), "text/turtle", "same"),
            Document("this is not turtle <", "text/turtle", "broken"),
            Document(TURTLE.format(name="c", age=70).encode("utf-8"), "text/turtle"),
        ]
    )
    assert [(r.case, r.source) for r in assessment.results] == [
        ("urn:example:a", "same.ttl"),
        ("urn:example:b", "same.ttl"),
        ("urn:example:c", "document.ttl"),
    ]
    (error,) = assessment.input_errors
    assert error.path == "broken.ttl" and "lbp-imaging-api-" not in error.message
    assert assessment.exit_code == 1
    a, b, c = assessment.results
    assert a.criteria and not b.criteria and c.criteria  # age over 50 with weight loss


def test_an_unknown_media_type_is_refused() -> None:
    with pytest.raises(ValueError, match="text/plain"):
        Document("x", "text/plain")


def test_validate_names_each_problem_and_refuses_unreadable_input(engine: Engine) -> None:
    problems = engine.validate([Document(TURTLE.format(name="x", age=-1), "text/turtle", "neg")])
    assert [(p.source, p.case, p.field, p.severity) for p in problems] == [
        ("neg.ttl", "urn:example:x", "age in years", "Violation")
    ]
    assert engine.validate([Document(TURTLE.format(name="x", age=30), "text/turtle")]) == []
    reference = engine.validate([Document(TURTLE.format(name="x", age=-1), "text/turtle")], reference=True)
    assert [p.field for p in reference] == ["age in years"]
    with pytest.raises(ValueError, match="nowhere"):
        engine.validate([ROOT / "nowhere.ttl"])


def test_questionnaires_of_a_case(engine: Engine) -> None:
    result = engine.assess([Document(TURTLE.format(name="q", age=60), "text/turtle")]).results[0]
    full = engine.questionnaire()
    adaptive = engine.questionnaire(result)
    populated = engine.questionnaire(result, populate=True)
    count = lambda q: sum(len(g.get("item", [])) for g in q["item"])  # noqa: E731
    assert 0 < count(adaptive) < count(full) == count(populated)
    assert "initial" in json.dumps(populated) and "initial" not in json.dumps(adaptive)


def test_a_knowledge_base_from_another_directory(tmp_path: Path, engine: Engine) -> None:
    """An author's copy with the age threshold of weight loss raised: the API follows the
    data it is given, with no code change."""
    root = copy_kb(tmp_path / "kb")
    edit(root, "ontology/criteria.ttl", "xsd:minExclusive 50", "xsd:minExclusive 65")
    case = Document(TURTLE.format(name="d", age=60), "text/turtle")
    assert load_knowledge_base(root).root == root.resolve()
    assert engine.assess([case]).results[0].criteria
    assert not Engine(root, as_of=AS_OF).assess([case]).results[0].criteria


def test_the_readmes_examples_run(monkeypatch) -> None:
    """The README's Python API section, run as a doctest: the documentation stays true."""
    monkeypatch.chdir(ROOT)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    section = re.sub(r"^```.*$", "", section, flags=re.MULTILINE)  # a fence ends an example's output
    test = doctest.DocTestParser().get_doctest(section, {}, "README.md#python-api", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False) == doctest.TestResults(0, len(test.examples))
    assert len(test.examples) >= 8


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
EXAMPLE = (ROOT / "examples" / "cases" / "01-cauda-equina-urinary-saddle.ttl").read_bytes()


@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    content=st.binary(max_size=200)
    | st.text(max_size=200)
    | st.builds(
        lambda at, byte: EXAMPLE[:at] + bytes([byte]) + EXAMPLE[at + 1 :],
        st.integers(0, len(EXAMPLE) - 1),
        st.integers(0, 255),
    ),
    media_type=st.sampled_from(sorted(reasoner.api.SUFFIXES)),
)
def test_any_document_is_assessed_or_named_in_an_input_error(
    engine: Engine, content, media_type: str
) -> None:
    """Bounded fuzzing of the API's input surface: whatever a document holds, ``assess``
    returns, each input error names the document, and every result is one of its cases."""
    name = "fuzz" + reasoner.api.SUFFIXES[media_type]
    assessment = engine.assess([Document(content, media_type, "fuzz")])
    assert all(e.path == name for e in assessment.input_errors)
    assert all(r.source == name for r in assessment.results)
    assert all(r.status in ("assessed", "invalid") for r in assessment.results)


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(document=st.dictionaries(st.sampled_from(["resourceType", "type", "entry", "id"]), JSON, max_size=4))
def test_any_json_object_as_a_bundle_is_assessed_or_an_input_error(engine: Engine, document: dict) -> None:
    assessment = engine.assess([document])
    assert all(e.path == "bundle-1.json" for e in assessment.input_errors)
    assert len(assessment.results) + len(assessment.input_errors) >= 1 or assessment.run.input_warnings
