"""Load the knowledge base (ontology modules, shapes, named queries) once.

The ontology modules are found through ``ontology/catalog-v001.xml``, the same catalog
Protégé uses, so the engine and an author's editor always see the same files. Nothing in
this module knows what the ontology says: it only finds and parses files.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from rdflib import Graph, Namespace

LBP = Namespace("https://w3id.org/lbp-imaging/")
CATALOG_NS = "{urn:oasis:names:tc:entity:xmlns:xml:catalog}"
KB_ENV = "LBP_IMAGING_KB"
CATALOG = "catalog-v001.xml"
PACKAGED_KB = "_knowledge"
"""Folder of this package where a wheel carries the knowledge base (copied at build time
from the repository's top-level folders by ``setup.py``; absent from a checkout)."""


class KnowledgeBaseError(Exception):
    """The knowledge base cannot be loaded (missing file, parse error, bad catalog)."""


def default_kb_dir() -> Path:
    """The knowledge-base root: ``$LBP_IMAGING_KB``; else the checkout this package runs from
    (an editable install), so that authors' edits to its ``ontology/``, ``shapes/`` and
    ``queries/`` take effect at once; else the copy an installed wheel carries."""
    env = os.environ.get(KB_ENV)
    if env:
        return Path(env).resolve()
    package = Path(__file__).resolve().parent
    checkout = package.parent
    if (checkout / "ontology" / CATALOG).is_file():
        return checkout
    return package / PACKAGED_KB


def catalog_entries(ontology_dir: Path) -> dict[str, Path]:
    """Map each ontology IRI of the catalog to its local file."""
    catalog = ontology_dir / CATALOG
    if not catalog.is_file():
        raise KnowledgeBaseError(f"{catalog}: catalog not found")
    try:
        root = ET.parse(catalog).getroot()
    except ET.ParseError as exc:
        raise KnowledgeBaseError(f"{catalog}: {exc}") from exc
    entries: dict[str, Path] = {}
    for uri in root.iter(f"{CATALOG_NS}uri"):
        path = ontology_dir / uri.attrib["uri"]
        if not path.is_file():
            raise KnowledgeBaseError(f"{catalog}: {uri.attrib['name']} maps to missing {path}")
        entries[uri.attrib["name"]] = path
    if not entries:
        raise KnowledgeBaseError(f"{catalog}: no <uri> entries")
    return entries


def parse_file(path: Path, graph: Graph | None = None) -> Graph:
    """Parse one RDF file into ``graph`` (a new one by default), naming the file on error."""
    graph = graph if graph is not None else Graph()
    try:
        graph.parse(path)
    except Exception as exc:  # rdflib raises many parser-specific types
        raise KnowledgeBaseError(f"{path}: {exc}") from exc
    return graph


def graph_quads(graph: Graph) -> list:
    """The graph's triples as pyoxigraph quads (the fast engine's stores and queries take
    those): through N-Triples, which both libraries write and read without loss."""
    import pyoxigraph as ox

    return list(ox.parse(graph.serialize(format="nt", encoding="utf-8"), format=ox.RdfFormat.N_TRIPLES))


FAST_SUFFIXES = {".ttl": "TURTLE", ".nt": "N_TRIPLES"}
"""Module files parsed by pyoxigraph (about twice as fast as rdflib's parser, and the
fast engine takes its quads as they are); any other RDF syntax goes through rdflib."""


def parse_module(path: Path) -> tuple[list, dict[str, str]]:
    """One ontology module's triples as pyoxigraph quads (relative IRIs against the file's
    URI, as rdflib resolves them) and its prefixes, naming the file on error."""
    import pyoxigraph as ox

    kind = FAST_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        graph = parse_file(path)
        return graph_quads(graph), {prefix: str(ns) for prefix, ns in graph.namespaces()}
    try:
        parser = ox.parse(path=path, format=getattr(ox.RdfFormat, kind), base_iri=path.resolve().as_uri())
        quads = list(parser)
    except (SyntaxError, OSError, ValueError) as exc:
        raise KnowledgeBaseError(f"{path}: {exc}") from exc
    return quads, dict(parser.prefixes)


def rdflib_term(term):
    """A pyoxigraph term as rdflib's: a plain string literal has no datatype in rdflib, as
    its Turtle parser gives it."""
    import pyoxigraph as ox
    from rdflib import BNode, Literal, URIRef

    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if term.language:
        return Literal(term.value, lang=term.language)
    datatype = term.datatype.value
    return Literal(term.value) if datatype == XSD_STRING else Literal(term.value, datatype=URIRef(datatype))


XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


@dataclass(frozen=True)
class NamedQuery:
    """A SPARQL query kept in ``queries/NAME.rq`` with its grlc-style header."""

    name: str
    path: Path
    text: str
    summary: str


@dataclass
class KnowledgeBase:
    """The parsed knowledge base: ontology graph, shapes graphs and named queries."""

    root: Path
    modules: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path | None = None) -> KnowledgeBase:
        root = (root or default_kb_dir()).resolve()
        kb = cls(root=root, modules=catalog_entries(root / "ontology"))
        _ = kb.ontology  # parse eagerly so errors surface at load time
        kb.check_queries()
        return kb

    @property
    def ontology_dir(self) -> Path:
        return self.root / "ontology"

    @property
    def shapes_dir(self) -> Path:
        return self.root / "shapes"

    @property
    def queries_dir(self) -> Path:
        return self.root / "queries"

    @cached_property
    def _parsed(self) -> tuple[list, dict[str, str]]:
        quads: list = []
        prefixes: dict[str, str] = {}
        for path in self.modules.values():
            found, named = parse_module(path)
            quads += found
            prefixes.update(named)
        return quads, prefixes

    @cached_property
    def ontology_quads(self) -> list:
        """All ontology modules' triples as pyoxigraph quads, in the default graph."""
        return self._parsed[0]

    @cached_property
    def ontology(self) -> Graph:
        """All ontology modules merged into one graph, with their prefixes bound."""
        quads, prefixes = self._parsed
        graph = Graph()
        term = rdflib_term
        graph.addN((term(q.subject), term(q.predicate), term(q.object), graph) for q in quads)
        for prefix, ns in prefixes.items():
            graph.bind(prefix, ns)
        return graph

    @cached_property
    def identity(self) -> dict[str, str | None]:
        """The top ontology (the one that imports modules and that no module imports) and
        its ``owl:versionIRI``: what output documents name as their knowledge base."""
        from rdflib import OWL, RDF, URIRef

        graph = self.ontology
        top = next(
            (
                o
                for o in graph.subjects(RDF.type, OWL.Ontology)
                if graph.value(o, OWL.imports) is not None and not list(graph.subjects(OWL.imports, o))
            ),
            None,
        )
        version = graph.value(top, OWL.versionIRI) if isinstance(top, URIRef) else None
        return {"ontology": str(top) if top else None, "versionIRI": str(version) if version else None}

    def shapes(self, name: str) -> Graph:
        """One shapes file, such as ``case-shapes``."""
        path = self.shapes_dir / f"{name}.ttl"
        if not path.is_file():
            raise KnowledgeBaseError(f"{path}: shapes file not found")
        return parse_file(path)

    @cached_property
    def queries(self) -> dict[str, NamedQuery]:
        """Every ``queries/*.rq`` by name."""
        found: dict[str, NamedQuery] = {}
        for path in sorted(self.queries_dir.glob("*.rq")):
            text = path.read_text(encoding="utf-8")
            summary = next(
                (ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("#+ summary:")),
                "",
            )
            found[path.stem] = NamedQuery(path.stem, path, text, summary)
        return found

    def check_queries(self) -> None:
        """Parse every named query now, so a broken one is reported by file at load time."""
        import pyoxigraph as ox

        empty = ox.Store()
        for named in self.queries.values():
            try:
                empty.query(named.text)
            except SyntaxError as exc:
                raise KnowledgeBaseError(f"{named.path}: SPARQL syntax error: {exc}") from None

    def query(self, name: str) -> NamedQuery:
        try:
            return self.queries[name]
        except KeyError:
            raise KnowledgeBaseError(
                f"no named query {name!r} in {self.queries_dir} "
                f"(known: {', '.join(sorted(self.queries)) or 'none'})"
            ) from None
