"""The engine is generic: an author changes a criterion in Turtle and the answers follow
with no code change; a construct the fast engine cannot evaluate is refused by name."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kb_copy import edit

from reasoner.knowledge import KnowledgeBase
from reasoner.pipeline.assess import Assessor
from reasoner.pipeline.definitions import UnsupportedConstruct

ROOT = Path(__file__).resolve().parent.parent
CASE = """@prefix lbp: <https://w3id.org/lbp-imaging/> .
<https://example.org/case/esr-25> a lbp:PatientCase ; lbp:ageInYears 45 ;
    lbp:hasFinding lbp:NightOrRestPain ; lbp:esrMmPerHour 25.0 .
<https://example.org/case/deficit> a lbp:PatientCase ; lbp:ageInYears 45 ;
    lbp:hasFinding lbp:MultifocalNeurologicDeficit .
<https://example.org/case/new-sign> a lbp:PatientCase ; lbp:ageInYears 45 ;
    lbp:hasFinding lbp:AuthorAddedSign .
"""


def _copy_kb(tmp_path: Path) -> Path:
    for part in ("ontology", "shapes", "queries"):
        shutil.copytree(ROOT / part, tmp_path / part)
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _outcomes(kb_root: Path, tmp_path: Path) -> dict[str, tuple]:
    case_file = tmp_path / "cases.ttl"
    case_file.write_text(CASE, encoding="utf-8")
    run = Assessor(KnowledgeBase.load(kb_root), "fast").assess([case_file])
    out = {}
    for r in run.results:
        d = r.to_dict()
        if d["status"] != "assessed":
            out[d["case"].rsplit("/", 1)[1]] = ("invalid",)
            continue
        rec = d["recommendation"]
        out[d["case"].rsplit("/", 1)[1]] = (
            (rec["procedure"] or {}).get("label"),
            (rec["urgency"] or {}).get("label"),
        )
    return out


def test_editing_criteria_in_turtle_changes_the_fast_engines_answers(tmp_path):
    before = _outcomes(ROOT, tmp_path)
    assert before["esr-25"] == ("MRI lumbar spine without and with IV contrast", "prompt")
    assert before["deficit"] == ("MRI lumbar spine without IV contrast", "emergent")
    assert before["new-sign"] == ("invalid",)  # not a finding of this knowledge base

    kb_root = _copy_kb(tmp_path / "kb")
    # 1. raise the ESR threshold of the abnormal first-line test from 20 to 30 mm/h
    edit(
        kb_root,
        "ontology/criteria.ttl",
        "xsd:minInclusive 20.0",
        "xsd:minInclusive 30.0",
        within="lbp:MalignancyRiskFactorsWithAbnormalFirstLineTest",
    )
    # 2. make severe or progressive deficits prompt instead of emergent
    edit(
        kb_root,
        "ontology/criteria.ttl",
        "owl:hasValue lbp:Emergent",
        "owl:hasValue lbp:Prompt",
        within="lbp:SevereOrProgressiveNeurologicDeficit",
    )
    # 3. add a new sign to the cauda equina category
    with (kb_root / "ontology" / "findings.ttl").open("a", encoding="utf-8") as f:
        f.write(
            "\nlbp:AuthorAddedSign a owl:NamedIndividual , lbp:CaudaEquinaSign ;\n"
            '    rdfs:label "author-added sign"@en ; skos:altLabel "new sign"@en ;\n'
            '    skos:definition "A sign added in a test."@en ; prov:wasDerivedFrom stmt:sum-08 .\n'
        )
    after = _outcomes(kb_root, tmp_path)
    assert after["esr-25"] == ("lumbar spine radiography", "routine")
    assert after["deficit"] == ("MRI lumbar spine without IV contrast", "prompt")
    assert after["new-sign"] == ("MRI lumbar spine without IV contrast", "emergent")


UNSUPPORTED = {
    "owl:complementOf": (
        "[ a owl:Restriction ; owl:onProperty lbp:hasFinding ; owl:someValuesFrom lbp:CaudaEquinaSign ]",
        "[ a owl:Class ; owl:complementOf [ a owl:Restriction ; owl:onProperty lbp:hasFinding ; "
        "owl:someValuesFrom lbp:CaudaEquinaSign ] ]",
    ),
    "owl:allValuesFrom": (
        "[ a owl:Restriction ; owl:onProperty lbp:hasFinding ; owl:someValuesFrom lbp:CaudaEquinaSign ]",
        "[ a owl:Restriction ; owl:onProperty lbp:hasFinding ; owl:allValuesFrom lbp:CaudaEquinaSign ]",
    ),
    "owl:minQualifiedCardinality": (
        "[ a owl:Restriction ; owl:onProperty lbp:hasFinding ; owl:someValuesFrom lbp:CaudaEquinaSign ]",
        "[ a owl:Restriction ; owl:onProperty lbp:hasFinding ;"
        ' owl:minQualifiedCardinality "2"^^xsd:nonNegativeInteger ; owl:onClass lbp:CaudaEquinaSign ]',
    ),
}


@pytest.mark.parametrize("construct", sorted(UNSUPPORTED))
def test_a_construct_the_fast_engine_cannot_evaluate_is_refused_by_name(tmp_path, construct):
    kb_root = _copy_kb(tmp_path)
    old, new = UNSUPPORTED[construct]
    _edit(kb_root / "ontology" / "criteria.ttl", old, new)
    with pytest.raises(UnsupportedConstruct, match=construct):
        Assessor(KnowledgeBase.load(kb_root), "fast")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reasoner.cli",
            "assess",
            "--kb",
            str(kb_root),
            str(ROOT / "examples" / "cases"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert construct in done.stderr and "SuspectedCaudaEquinaSyndrome" in done.stderr


@pytest.mark.hermit
def test_the_reference_engine_still_classifies_what_the_fast_engine_refuses_and_says_so(tmp_path):
    kb_root = _copy_kb(tmp_path)
    old, new = UNSUPPORTED["owl:allValuesFrom"]
    _edit(kb_root / "ontology" / "criteria.ttl", old, new)
    case_file = tmp_path / "case.ttl"
    case_file.write_text(CASE.split("<https://example.org/case/deficit>")[0], encoding="utf-8")
    run = Assessor(KnowledgeBase.load(kb_root), "hermit").assess([case_file])
    (result,) = run.results
    assert result.status == "assessed"
    assert any("owl:allValuesFrom" in w for w in result.warnings)
