"""The version of the knowledge base: every module and the package must agree.

A release bumps the version in one go (``docs/release.md``): ``owl:versionInfo`` and
``owl:versionIRI`` of every ontology module and ``version`` in ``pyproject.toml``. The
version IRI of a module is the top ontology's IRI, then ``/VERSION``, then the rest of the
module's IRI (``…/ontology/0.1.0/core`` for ``…/ontology/core``), as Protégé and the w3id
redirects expect. A module left behind by a bump is an ERROR.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from rdflib import OWL, RDF, Graph, URIRef

from .report import Level, Result


def top_ontology(graph: Graph) -> URIRef | None:
    """The ontology that imports modules and that no module imports."""
    return next(
        (
            o
            for o in sorted(graph.subjects(RDF.type, OWL.Ontology))
            if isinstance(o, URIRef)
            and graph.value(o, OWL.imports) is not None
            and (None, OWL.imports, o) not in graph
        ),
        None,
    )


def package_version(root: Path) -> str | None:
    """``project.version`` of ``pyproject.toml`` at the knowledge-base root, if there is one."""
    path = root / "pyproject.toml"
    if not path.is_file():
        return None
    return tomllib.loads(path.read_text(encoding="utf-8")).get("project", {}).get("version")


def version_results(graph: Graph, root: Path) -> tuple[list[Result], str | None]:
    """ontology_version (ERROR) problems, and the version when there is one."""
    top = top_ontology(graph)
    if top is None:
        return [
            Result(Level.ERROR, "ontology_version", str(root), "no top ontology (one that imports modules)")
        ], None
    version = graph.value(top, OWL.versionInfo)
    if version is None:
        return [
            Result(Level.ERROR, "ontology_version", str(top), "the top ontology has no owl:versionInfo")
        ], None
    results = []
    for ontology in sorted(o for o in graph.subjects(RDF.type, OWL.Ontology) if isinstance(o, URIRef)):
        if not str(ontology).startswith(str(top)):
            continue
        expected_iri = URIRef(f"{top}/{version}{str(ontology)[len(str(top)) :]}")
        info = graph.value(ontology, OWL.versionInfo)
        iri = graph.value(ontology, OWL.versionIRI)
        if info is None or str(info) != str(version):
            results.append(
                Result(
                    Level.ERROR,
                    "ontology_version",
                    str(ontology),
                    f"owl:versionInfo is {info}, not {version}",
                )
            )
        if iri != expected_iri:
            results.append(
                Result(
                    Level.ERROR,
                    "ontology_version",
                    str(ontology),
                    f"owl:versionIRI is {iri}, not {expected_iri}",
                )
            )
    package = package_version(root)
    if package is not None and package != str(version):
        results.append(
            Result(
                Level.ERROR,
                "ontology_version",
                "pyproject.toml",
                f"version is {package}, the ontology's {version}",
            )
        )
    return results, str(version)
