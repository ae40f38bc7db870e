"""Read step for case documents held in memory: a body posted to the server, text pasted
into the case page, a document given to the Python API.

The reader (``cases.load``) takes files and chooses the syntax by extension, so each
document is written to a temporary file named as the document is, with the extension of
its syntax. What the reader then says is made to name the document, never the temporary
folder: its relative IRIs resolve against ``file:///NAME.EXT`` (``InputOptions.bases``), and
sources, errors and warnings call it by the name the caller shows.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

from .cases import InputOptions, LoadedInput, load

MEDIA_TYPES = {
    "text/turtle": ".ttl",
    "application/ld+json": ".jsonld",
    "application/n-triples": ".nt",
    "application/fhir+json": ".json",
}
"""The media types a case document may have, and the file extension it is read as (a
``.json`` document naming a ``resourceType`` is read as FHIR, any other as JSON-LD)."""


@dataclass(frozen=True)
class Document:
    """A case document: its bytes, the extension it is read as, its name (the file name it
    is read under, without the extension) and what messages call it."""

    data: bytes
    suffix: str
    name: str
    shown: str


def load_documents(inputs: list[Document | Path], options: InputOptions) -> LoadedInput:
    """The inputs read together, as files would be, in their order: documents and case files
    or directories alike (two documents of one name stay two)."""
    names: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="lbp-imaging-") as folder:
        paths = []
        for n, item in enumerate(inputs):
            if isinstance(item, Document):
                path = Path(folder) / str(n) / f"{item.name}{item.suffix}"
                path.parent.mkdir()
                path.write_bytes(item.data)
                names[str(path)] = item.shown
                item = path
            paths.append(item)
        bases = {path: f"file:///{quote(Path(path).name)}" for path in names}
        loaded = load(paths, replace(options, bases=bases))
    return _named(loaded, names)


def _named(loaded: LoadedInput, names: dict[str, str]) -> LoadedInput:
    """``loaded`` with each temporary file called as its document is shown."""

    def named(text: str) -> str:
        for path, name in names.items():
            text = text.replace(path, name)
        return text

    loaded.source_of.update({iri: named(source) for iri, source in loaded.source_of.items()})
    loaded.errors[:] = [replace(e, path=named(e.path), message=named(e.message)) for e in loaded.errors]
    loaded.notes[:] = [replace(w, path=named(w.path), message=named(w.message)) for w in loaded.notes]
    for case in loaded.fhir_cases.values():
        case.warnings[:] = [named(w) for w in case.warnings]
    return loaded
