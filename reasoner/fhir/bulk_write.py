"""Write patient bundles as a FHIR Bulk Data export: NDJSON files per resource type.

A Bulk Data ``$export`` (https://hl7.org/fhir/uv/bulkdata/) is what health systems hand
over at population scale: one file per resource type (or several), one resource per
line, resources linked by relative references (``Patient/123``), and a manifest listing
the files. ``write_bulk`` makes one from any patient bundles (the generated ones of
``reasoner.synthetic_fhir``, the examples, a FHIR server's searchset) for the Bulk Data
input, its benchmark and its tests.

What a bundle becomes:

- each entry's resource, one compact JSON line in ``Type.ndjson``, or with
  ``files_per_type`` K > 1 in ``Type.001.ndjson`` … ``Type.K.ndjson`` (``.ndjson.gz``
  compressed): spread **by patient**, the n-th bundle's resources going to file
  n mod K of each type, so each file holds whole patients (only files that receive a
  resource are written);
- every reference that resolves to an entry of the bundle, as the FHIR input resolves it
  (by ``fullUrl``, or ``Type/id`` against the referring entry's RESTful base and then
  among the bundle's resources), becomes that entry's relative ``Type/id``; a reference
  that resolves to nothing in the bundle (``#contained``, an outside server's) is kept;
- ids are made unique across the export without remembering them all: a resource keeps
  an id that already starts with its patient's id and a hyphen (``p7-c3`` of ``p7``),
  any other is prefixed with it (``low-back-pain`` of ``fhir-03`` becomes
  ``fhir-03-low-back-pain``), a missing one is made from its entry number, and an id
  longer than FHIR's 64 characters becomes a name-based UUID. This is unique as long as no
  patient's id is another's followed by a hyphen and more; the writer keeps the set of
  patient ids written (some 60 bytes each: the only thing it holds per patient) and
  renames a Patient whose id repeats or would break that rule (hyphens become dots, then
  ``.2``, ``.3`` … until it is free).

The manifest ``manifest.json`` is the Bulk Data export's completion response:
``transactionTime``, ``request``, ``requiresAccessToken`` false, ``output`` (``type``,
``url`` as a ``file:`` URL, ``count``) and an empty ``error``. Bundles are read one at a
time from any iterable, so an export of any size is written in constant memory apart from
the patient ids. A bundle that is not one patient's data is a ``BulkWriteError`` naming
it, and the files written so far are removed (a folder of NDJSON files is an export to a
reader, manifest or not).
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import IO, Any

import orjson

from .read import RELATIVE_REFERENCE, restful_base

MANIFEST = "manifest.json"
SUFFIXES = (".ndjson", ".ndjson.gz")
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://w3id.org/lbp-imaging/bulk-export/id")
GZIP_LEVEL = 6  # zlib's default: the level 9 of gzip.open is several times slower for a few % less


class BulkWriteError(ValueError):
    """A bundle that cannot be written as one patient's resources, or a folder that
    already holds an export."""


def write_bulk(
    bundles: Iterable[dict],
    out_dir: Path,
    files_per_type: int = 1,
    compress: bool = False,
    *,
    request: str = "https://example.org/fhir/$export",
) -> dict[str, int]:
    """Write ``bundles`` (one patient each) into ``out_dir`` as a Bulk Data export and
    return how many resources of each type were written. ``request`` is the kick-off URL
    the manifest names (this export had none: a placeholder by default)."""
    if files_per_type < 1:
        raise BulkWriteError(f"files per type must be 1 or more, not {files_per_type}")
    out_dir.mkdir(parents=True, exist_ok=True)
    held = sorted(p.name for p in out_dir.iterdir() if p.name == MANIFEST or p.name.endswith(SUFFIXES))
    if held:
        raise BulkWriteError(f"{out_dir}: already holds an export ({held[0]}); write into an empty folder")
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    files = _Files(out_dir, files_per_type, compress)
    patients = _PatientIds()
    try:
        with files:
            for number, bundle in enumerate(bundles):
                for resource in _relinked(bundle, number, patients):
                    files.write(resource["resourceType"], number % files_per_type, orjson.dumps(resource))
    except BaseException:
        files.remove()
        raise
    manifest = {
        "transactionTime": started,
        "request": request,
        "requiresAccessToken": False,
        "output": [
            {"type": kind, "url": path.resolve().as_uri(), "count": count}
            for (kind, _), (path, count) in sorted(files.written.items())
        ],
        "error": [],
    }
    (out_dir / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    totals: Counter = Counter()
    for (kind, _), (_, count) in files.written.items():
        totals[kind] += count
    return dict(sorted(totals.items()))


class _Files:
    """The open NDJSON files, one per (type, slot), opened when first written to."""

    def __init__(self, folder: Path, per_type: int, compress: bool):
        self.folder, self.per_type, self.compress = folder, per_type, compress
        self.width = max(3, len(str(per_type)))
        self.handles: dict[tuple[str, int], IO[bytes]] = {}
        self.written: dict[tuple[str, int], tuple[Path, int]] = {}
        self.stack = ExitStack()

    def __enter__(self) -> _Files:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def name(self, kind: str, slot: int) -> str:
        number = f".{slot + 1:0{self.width}d}" if self.per_type > 1 else ""
        return f"{kind}{number}.ndjson" + (".gz" if self.compress else "")

    def write(self, kind: str, slot: int, line: bytes) -> None:
        key = (kind, slot)
        handle = self.handles.get(key)
        if handle is None:
            path = self.folder / self.name(kind, slot)
            handle = self.stack.enter_context(path.open("wb"))
            if self.compress:  # closed before the file it writes to (the stack unwinds in reverse)
                handle = self.stack.enter_context(
                    gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=GZIP_LEVEL)
                )
            self.handles[key] = handle
            self.written[key] = (path, 0)
        handle.write(line + b"\n")
        path, count = self.written[key]
        self.written[key] = (path, count + 1)

    def remove(self) -> None:
        self.stack.close()
        for path, _ in self.written.values():
            path.unlink(missing_ok=True)


class _PatientIds:
    """The patient ids written, kept free of repeats and of one being another's prefix
    before a hyphen (what makes prefixed resource ids unique)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.stems: set[str] = set()  # every part of a written id before one of its hyphens

    def claim(self, wanted: object, fallback: str) -> str:
        base = wanted if isinstance(wanted, str) and FHIR_ID.match(wanted) else fallback
        candidate = base
        if self._clashes(candidate):
            stem = base.replace("-", ".")[:56]
            candidate, n = stem, 2
            while self._clashes(candidate):
                candidate, n = f"{stem}.{n}", n + 1
        self.ids.add(candidate)
        self.stems.update(_stems(candidate))
        return candidate

    def _clashes(self, candidate: str) -> bool:
        return (
            candidate in self.ids or candidate in self.stems or any(s in self.ids for s in _stems(candidate))
        )


def _stems(rid: str) -> list[str]:
    """``a-b-c`` -> ``a``, ``a-b``: the prefixes of an id before each of its hyphens."""
    return [rid[:i] for i, char in enumerate(rid) if char == "-"]


def _relinked(bundle: object, number: int, patients: _PatientIds) -> list[dict]:
    """The resources of one patient bundle with export-wide ids and relative references."""
    where = f"bundle {number + 1}"
    if isinstance(bundle, dict) and isinstance(bundle.get("id"), str):
        where += f" ({bundle['id']})"
    if not (isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle"):
        raise BulkWriteError(f"{where}: not a FHIR Bundle")
    entries = [
        (e.get("fullUrl"), e["resource"])
        for e in bundle.get("entry") or []
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]
    for position, (_, resource) in enumerate(entries):
        if not isinstance(resource.get("resourceType"), str):
            raise BulkWriteError(f"{where}: entry {position} has no resourceType")
    at = [i for i, (_, r) in enumerate(entries) if r["resourceType"] == "Patient"]
    if len(at) != 1:
        raise BulkWriteError(
            f"{where}: {len(at)} Patients; a bundle written to a Bulk Data export is one patient's data"
        )
    pid = patients.claim(entries[at[0]][1].get("id"), f"patient{number + 1}")
    ids: list[str] = []
    taken: set[tuple[str, str]] = set()
    for position, (_, resource) in enumerate(entries):
        kind = resource["resourceType"]
        rid = pid if position == at[0] else _resource_id(pid, kind, resource.get("id"), position, taken)
        taken.add((kind, rid))
        ids.append(rid)
    index = _Index(entries, ids)
    relinked = []
    for position, (_, resource) in enumerate(entries):
        body = _rewritten(resource, partial(index.reference, position))
        body.pop("id", None)
        relinked.append({"resourceType": body.pop("resourceType"), "id": ids[position]} | body)
    return relinked


def _resource_id(pid: str, kind: str, rid: object, position: int, taken: set[tuple[str, str]]) -> str:
    """The export's id of a resource of patient ``pid`` (see the module's docstring)."""
    own = rid if isinstance(rid, str) and FHIR_ID.match(rid) else f"e{position}"
    candidate = own if own.startswith(f"{pid}-") else f"{pid}-{own}"
    if not FHIR_ID.match(candidate) or (kind, candidate) in taken:
        candidate = str(uuid.uuid5(ID_NAMESPACE, f"{pid}|{kind}|{position}"))
    return candidate


class _Index:
    """Which entry a reference names, resolved as ``reasoner.fhir.read`` resolves it, and
    that entry's relative reference in the export."""

    def __init__(self, entries: list[tuple[object, dict]], ids: list[str]):
        self.entries, self.ids = entries, ids
        self.by_url = {url: i for i, (url, _) in enumerate(entries) if isinstance(url, str) and url}
        self.by_key: dict[str, list[int]] = {}
        for i, (_, resource) in enumerate(entries):
            if isinstance(resource.get("id"), str):
                self.by_key.setdefault(f"{resource['resourceType']}/{resource['id']}", []).append(i)

    def reference(self, referrer: int, text: str) -> str | None:
        """``Type/id`` in the export of the entry that ``text`` names, if it names one."""
        target = self._resolve(referrer, text)
        return None if target is None else f"{self.entries[target][1]['resourceType']}/{self.ids[target]}"

    def _resolve(self, referrer: int, text: str) -> int | None:
        if text in self.by_url:
            return self.by_url[text]
        match = RELATIVE_REFERENCE.match(text)
        if match is None:
            return None
        key = f"{match['type']}/{match['id']}"
        base = self._restful_base(referrer)
        if base and f"{base}/{key}" in self.by_url:
            return self.by_url[f"{base}/{key}"]
        found = self.by_key.get(key, [])
        return found[0] if len(found) == 1 else None

    def _restful_base(self, position: int) -> str | None:
        url, resource = self.entries[position]
        return restful_base(url, resource["resourceType"], resource.get("id"))


def _rewritten(value: Any, resolve: Callable[[str], str | None]) -> Any:
    """A copy of ``value`` (a resource's JSON) with each ``reference`` that ``resolve``
    resolves replaced by what it gives."""
    if isinstance(value, list):
        return [_rewritten(item, resolve) for item in value]
    if not isinstance(value, dict):
        return value
    copy = {k: _rewritten(v, resolve) for k, v in value.items()}
    reference = value.get("reference")
    if isinstance(reference, str) and (target := resolve(reference)) is not None:
        copy["reference"] = target
    return copy
