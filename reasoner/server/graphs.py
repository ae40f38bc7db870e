"""The server's RDF dataset: which named graph holds what, and loading the knowledge base.

Every graph is named by the resource it describes, so a client that knows an IRI knows
where to look:

* each ontology module by its ontology IRI from the catalog
  (``https://w3id.org/lbp-imaging/ontology`` for the root, ``…/ontology/core``,
  ``…/ontology/sources`` with the source statements, and so on);
* each shapes file by its ``owl:Ontology`` IRI, ``https://w3id.org/lbp-imaging/shapes/NAME``;
* each assessed case by the case IRI, and the engine that assessed cases by its
  ``prov:SoftwareAgent`` IRI (see ``case_graphs``).

The store's own default graph is left empty. Queries that name no dataset see the union
of all graphs as their default graph (see ``query.dataset_options``).
"""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox

from ..knowledge import LBP, KnowledgeBase, KnowledgeBaseError

ONTOLOGY_GRAPHS = str(LBP) + "ontology"
SHAPES_GRAPHS = str(LBP) + "shapes/"


def knowledge_base_files(kb: KnowledgeBase) -> dict[str, Path]:
    """Graph name -> file, for every ontology module and shapes file."""
    files = dict(kb.modules)
    files.update({SHAPES_GRAPHS + p.stem: p for p in sorted(kb.shapes_dir.glob("*.ttl"))})
    return files


def _is_knowledge_base_graph(name: str) -> bool:
    return name == ONTOLOGY_GRAPHS or name.startswith((ONTOLOGY_GRAPHS + "/", SHAPES_GRAPHS))


def load_knowledge_base(store: ox.Store, kb: KnowledgeBase) -> list[str]:
    """Put each knowledge-base file into its graph, replacing what a persistent store kept
    from an earlier start (the files are the source of truth; cases are kept), and drop
    knowledge-base graphs that no file provides any more. Returns the graph names."""
    files = knowledge_base_files(kb)
    for graph in store.named_graphs():
        if (
            isinstance(graph, ox.NamedNode)
            and _is_knowledge_base_graph(graph.value)
            and graph.value not in files
        ):
            store.remove_graph(graph)
    for name, path in files.items():
        graph = ox.NamedNode(name)
        store.update(f"DROP SILENT GRAPH {graph}")
        try:
            store.load(
                path=path, format=ox.RdfFormat.TURTLE, base_iri=path.resolve().as_uri(), to_graph=graph
            )
        except (SyntaxError, OSError) as exc:
            raise KnowledgeBaseError(f"{path}: {exc}") from exc
    return list(files)
