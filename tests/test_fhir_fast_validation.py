"""The second path of FHIR validation (``validation.entry_by_entry``: each resource by its
own model, then the bundle around them; taken when ``known_shapes`` cannot vouch for a
bundle) against the reference (the whole bundle validated at once by fhir.resources): both
accept and reject the same bundles, valid and mutated, and give equal models. Any bundle
this path refuses goes to the reference, whose errors make the messages, so messages cannot
differ; this shows it accepts nothing the reference refuses."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from json_places import places

from reasoner.fhir.mapping import FhirMapping
from reasoner.fhir.validation import FhirInputError, _check_structure, entry_by_entry
from reasoner.synthetic_fhir import FhirCaseGenerator

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(
    p for p in (ROOT / "examples" / "fhir").glob("*.json") if not p.name.endswith(".expected.json")
)
REPLACEMENTS = [None, "", "x", "2026-13-45", 0, -1, 1.5, True, [], {}, {"x": 1}, [1], [{}], "urn:x"]


def reference(doc: dict) -> Bundle | None:
    try:
        return Bundle.model_validate(doc)
    except Exception:
        return None


def same_answer(doc: dict) -> None:
    fast, whole = entry_by_entry(doc), reference(doc)
    assert (fast is None) == (whole is None)
    if fast is not None:
        assert fast.model_dump() == whole.model_dump()


@pytest.fixture(scope="module")
def bundles(kb) -> list[dict]:
    generator = FhirCaseGenerator(
        kb, seed=7, as_of=date(2026, 12, 1), mapping=FhirMapping.for_knowledge_base(kb)
    )
    examples = [json.loads(p.read_text(encoding="utf-8")) for p in EXAMPLES]
    return [d for d in examples if d.get("resourceType") == "Bundle"] + [
        generator.bundle(i) for i in range(60)
    ]


def test_valid_bundles_give_the_references_models(bundles) -> None:
    assert len(bundles) > 70
    for doc in bundles:
        assert entry_by_entry(doc) is not None
        same_answer(doc)


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_mutated_bundles_are_refused_alike(bundles, data) -> None:
    doc = copy.deepcopy(bundles[data.draw(st.integers(0, len(bundles) - 1))])
    container_path, key = data.draw(st.sampled_from(places(doc)))
    container = doc
    for step in container_path:
        container = container[step]
    how = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if how == "replace":
        container[key] = data.draw(st.sampled_from(REPLACEMENTS))
    elif how == "delete":
        del container[key]
    elif isinstance(container, dict):
        container[data.draw(st.sampled_from(["extra", "id", "text", "_status", "valueString"]))] = data.draw(
            st.sampled_from(REPLACEMENTS)
        )
    else:
        container.append(data.draw(st.sampled_from(REPLACEMENTS)))
    try:
        _check_structure(doc, "mutated")  # what validated_bundle checks before the models
    except FhirInputError:
        assume(False)
    same_answer(doc)
