"""``lbp-imaging release``: the merged ontology in Turtle and RDF/XML, the FHIR artefacts
and a changelog entry, written by the installed command into a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest
from kb_copy import copy_kb
from rdflib import OWL, RDF, Graph, URIRef

from reasoner.authoring.release import ReleaseError, base_ontology, write_release
from reasoner.knowledge import KnowledgeBase, catalog_entries

ROOT = Path(__file__).resolve().parent.parent
KB_PARTS = ("ontology", "shapes", "queries")


@pytest.fixture(scope="module")
def released(tmp_path_factory, cli):
    out = tmp_path_factory.mktemp("release") / "out"
    proc = cli("release", "--output", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


@pytest.fixture(scope="module")
def merged(released) -> Graph:
    return Graph().parse(released[0] / "lbp-imaging.ttl")


def classes(graph: Graph) -> set:
    return {c for c in graph.subjects(RDF.type, OWL.Class) if isinstance(c, URIRef)}


def canonical(path: Path, fmt: ox.RdfFormat) -> set:
    dataset = ox.Dataset(ox.parse(path=path, format=fmt))
    dataset.canonicalize(ox.CanonicalizationAlgorithm.UNSTABLE)
    return set(dataset)


def test_the_merged_ontology_is_one_ontology_with_the_version_iri(merged, kb):
    assert list(merged.subjects(RDF.type, OWL.Ontology)) == [URIRef(kb.identity["ontology"])]
    top = URIRef(kb.identity["ontology"])
    assert merged.value(top, OWL.versionIRI) == URIRef(kb.identity["versionIRI"])
    assert (None, OWL.imports, None) not in merged


def test_the_merged_ontology_has_every_class_of_every_module(merged):
    for iri, path in catalog_entries(ROOT / "ontology").items():
        missing = classes(Graph().parse(path)) - classes(merged)
        assert not missing, (iri, missing)


def test_rdf_xml_is_the_same_graph_as_turtle(released):
    out, _ = released
    turtle = canonical(out / "lbp-imaging.ttl", ox.RdfFormat.TURTLE)
    assert turtle and turtle == canonical(out / "lbp-imaging.owl", ox.RdfFormat.RDF_XML)


def test_owlready2_loads_the_merged_ontology(released, merged):
    import owlready2

    world = owlready2.World()
    onto = world.get_ontology((released[0] / "lbp-imaging.owl").as_uri()).load()
    assert {c.iri for c in onto.classes()} == {str(c) for c in classes(merged)}


def test_the_fhir_artefacts_are_copied(released):
    out, _ = released
    sources = sorted((ROOT / "ontology" / "fhir").glob("*.json"))
    assert sources
    for path in sources:
        assert (out / "fhir" / path.name).read_bytes() == path.read_bytes()


def test_the_changelog_has_the_section_of_the_version(released, kb):
    out, proc = released
    version = kb.identity["versionIRI"].rsplit("/", 1)[1]
    text = (out / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith(f"# Changelog\n\n## {version} (")
    assert kb.identity["versionIRI"] in text
    assert f"## {version} (" in proc.stdout


def test_a_release_again_replaces_its_files_and_its_section(released, cli):
    out, _ = released
    changelog = out / "CHANGELOG.md"
    changelog.write_text(changelog.read_text(encoding="utf-8") + "\n## 0.0.1 (2020-01-01)\n\nEarlier.\n")
    (out / "lbp-imaging.owl").write_text("stale", encoding="utf-8")
    proc = cli("release", "--output", out)
    assert proc.returncode == 0, proc.stderr
    text = changelog.read_text(encoding="utf-8")
    assert text.count("\n## ") == 2 and text.rstrip().endswith("Earlier.")
    assert (out / "lbp-imaging.owl").read_text(encoding="utf-8") != "stale"


def test_a_directory_in_use_is_refused_with_exit_2(tmp_path, cli):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine", encoding="utf-8")
    proc = cli("release", "--output", busy)
    assert proc.returncode == 2 and "is not empty" in proc.stderr and "Traceback" not in proc.stderr
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]


def test_a_version_the_ontology_does_not_carry_is_refused(tmp_path, kb):
    with pytest.raises(ReleaseError, match=r"not 99\.0\.0: bump it first"):
        write_release(kb, tmp_path / "new", "99.0.0")
    assert not (tmp_path / "new").exists()


def test_the_changelog_lists_the_classes_added_since_a_base(tmp_path):
    base = copy_kb(tmp_path / "base", KB_PARTS)
    work = copy_kb(tmp_path / "work", KB_PARTS)
    with (work / "ontology" / "core.ttl").open("a", encoding="utf-8") as f:
        f.write('\nlbp:ReleaseTestClass a owl:Class ; rdfs:label "release test class"@en .\n')
    written = write_release(
        KnowledgeBase.load(work), tmp_path / "out", base=(str(base), base_ontology(str(base), work))
    )
    text = (tmp_path / "out" / "CHANGELOG.md").read_text(encoding="utf-8")
    assert written.entry in text
    assert f"Since {base}:" in text
    assert "* classes added: lbp:ReleaseTestClass" in text
    assert "* classes removed: none" in text
