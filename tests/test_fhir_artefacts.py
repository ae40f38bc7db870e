"""The FHIR artefacts under ontology/fhir/ (reasoner/fhir/artefacts.py): the checked-in files
are exactly what the knowledge base generates, and the check CI runs fails, naming the file,
as soon as the ontology changes (an author adds a red flag) or a file is left over."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.conceptmap import ConceptMap
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.valueset import ValueSet

from reasoner.fhir.artefacts import artefacts, main, stale
from reasoner.fhir.questionnaire import questionnaire
from reasoner.knowledge import KnowledgeBase
from tests.kb_copy import add_red_flag, copy_kb

ROOT = Path(__file__).resolve().parent.parent
QUESTIONNAIRE = "ontology/fhir/Questionnaire-lbp-PatientCase.json"
CODE_SYSTEM = "ontology/fhir/CodeSystem-lbp-imaging.json"
CONCEPT_MAP = "ontology/fhir/ConceptMap-lbp-imaging.json"
MODELS = {
    "Questionnaire": Questionnaire,
    "CodeSystem": CodeSystem,
    "ConceptMap": ConceptMap,
    "ValueSet": ValueSet,
}


def test_the_checked_in_artefacts_are_what_the_knowledge_base_generates():
    kb = KnowledgeBase.load()
    generated = artefacts(kb)
    assert stale(kb, generated) == [], "regenerate: python -m reasoner.fhir.artefacts"
    assert {str(p.relative_to(ROOT)) for p in generated} >= {QUESTIONNAIRE, CODE_SYSTEM, CONCEPT_MAP}
    on_disk = (ROOT / QUESTIONNAIRE).read_text(encoding="utf-8")
    assert on_disk == json.dumps(questionnaire(kb), indent=2, ensure_ascii=False) + "\n"
    for path in generated:
        resource = json.loads(path.read_text(encoding="utf-8"))
        MODELS[resource["resourceType"]].model_validate(resource)
        assert path.name == f"{resource['resourceType']}-{resource['id']}.json"
        assert resource["url"].endswith(f"/{resource['resourceType']}/{resource['id']}")


def test_the_ci_check_passes_on_the_repository():
    done = subprocess.run(
        [sys.executable, "-m", "reasoner.fhir.artefacts", "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert f"{len(artefacts(KnowledgeBase.load()))} artefacts up to date" in done.stderr


def test_an_added_red_flag_makes_the_files_stale_until_regenerated(tmp_path: Path, capsys):
    root = copy_kb(tmp_path, ("ontology", "shapes", "queries"))
    add_red_flag(root)
    assert main(["--check", "--kb", str(root)]) == 1
    reported = capsys.readouterr().err.splitlines()
    # The flag's project code joins the CodeSystem, the ConceptMap and its categories' value sets.
    changed = [
        CODE_SYSTEM,
        CONCEPT_MAP,
        *(f"ontology/fhir/ValueSet-{c}.json" for c in ("InfectionRiskFactor", "RedFlag")),
    ]
    assert sorted(line.split(":")[0] for line in reported) == sorted([*changed, QUESTIONNAIRE])
    assert all("stale" in line and "python -m reasoner.fhir.artefacts" in line for line in reported)
    before = (root / QUESTIONNAIRE).read_text(encoding="utf-8")

    assert main(["--kb", str(root)]) == 0
    assert sorted(capsys.readouterr().err.splitlines()) == sorted(
        f"{f}: written" for f in [*changed, QUESTIONNAIRE]
    )
    assert main(["--check", "--kb", str(root)]) == 0
    written = json.loads((root / QUESTIONNAIRE).read_text(encoding="utf-8"))
    linkids = [i["linkId"] for g in written["item"] for i in g["item"]]
    assert "SpinalTenderness" in linkids and "SpinalTenderness" not in before


def test_a_file_nothing_generates_any_more_is_stale_and_removed(tmp_path: Path, capsys):
    root = copy_kb(tmp_path, ("ontology", "shapes", "queries"))
    leftover = root / "ontology/fhir/Questionnaire-renamed.json"
    leftover.write_text((root / QUESTIONNAIRE).read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["--check", "--kb", str(root)]) == 1
    assert "ontology/fhir/Questionnaire-renamed.json: stale, is not generated" in capsys.readouterr().err
    assert main(["--kb", str(root)]) == 0
    assert not leftover.exists() and (root / QUESTIONNAIRE).is_file()


def test_a_broken_knowledge_base_is_named_not_a_traceback(tmp_path: Path, capsys):
    root = copy_kb(tmp_path, ("ontology", "shapes", "queries"))
    with (root / "ontology/findings.ttl").open("a", encoding="utf-8") as f:
        f.write("\nlbp:Broken a \n")
    assert main(["--check", "--kb", str(root)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("python -m reasoner.fhir.artefacts: knowledge base error:") and "findings.ttl" in err
    )
    assert "Traceback" not in err
