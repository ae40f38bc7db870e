"""The Python API: assess cases, explain and validate them, and write their questionnaires,
from a program instead of the command line. Decision support, not diagnosis.

The API takes the command line's inputs and gives its answers, through the same pipeline
(``reasoner.pipeline``): a case is a file or a directory of files, an in-memory document
(``Document``: Turtle, N-Triples, JSON-LD or a FHIR R4 Bundle, as the server accepts
them), or a FHIR Bundle as a ``dict``. Nothing clinical is in this module: the knowledge
base decides, and can be loaded from any directory.

The examples here use only the bundled example files, so that they hold for any knowledge
base that passes its own examples (the README's Python API section shows real answers and
is run as a doctest too):

>>> from pathlib import Path
>>> from reasoner.api import Document, Engine
>>> engine = Engine(as_of="2026-12-01")
>>> assessment = engine.assess(["examples/cases"])
>>> assessment.exit_code, {r.status for r in assessment.results}
(0, {'assessed'})
>>> result = assessment.results[0]
>>> sorted(result.to_dict())[:4]
['case', 'criteria', 'criterionStates', 'disclaimer']

A case given as a document held in memory is named as given, in results and messages:

>>> first = sorted(Path("examples/cases").glob("*.ttl"))[0]
>>> mine = engine.assess([Document(first.read_text(encoding="utf-8"), "text/turtle", "mine")])
>>> mine.results[0].source, mine.results[0].case == result.case
('mine.ttl', True)

The explanation, as ``lbp-imaging explain`` prints it, starts with the case and ends with
the disclaimer:

>>> text = mine.explain(width=200)
>>> text.split()[0] == result.case, text.rstrip().endswith(DISCLAIMER)
(True, True)
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import DISCLAIMER
from .knowledge import KnowledgeBase
from .pipeline.documents import MEDIA_TYPES

if TYPE_CHECKING:
    from .pipeline.assess import AssessmentRun, Assessor
    from .pipeline.cases import InputError, LoadedInput
    from .pipeline.explain import CaseResult
    from .pipeline.validate import ShapeResult

__all__ = ["DISCLAIMER", "Assessment", "Document", "Engine", "Problem", "load_knowledge_base"]

SUFFIXES = MEDIA_TYPES
"""The media types a ``Document`` may have, and the file extension it is read as (the
server's ``POST /cases`` takes the same)."""


def load_knowledge_base(root: str | os.PathLike | None = None) -> KnowledgeBase:
    """The knowledge base in ``root`` (holding ``ontology/``, ``shapes/``, ``queries/``), by
    default ``$LBP_IMAGING_KB``, the checkout the package runs from, or the copy the
    installed package carries. Raises ``KnowledgeBaseError`` naming the file at fault.

    >>> kb = load_knowledge_base()
    >>> kb.identity["ontology"]
    'https://w3id.org/lbp-imaging/ontology'
    """
    return KnowledgeBase.load(Path(root) if root is not None else None)


@dataclass(frozen=True)
class Document:
    """A case held in memory: its text (or bytes) and its media type, one of ``SUFFIXES``.
    ``name`` is what messages call it, as they name a file."""

    content: str | bytes
    media_type: str
    name: str = "document"

    def __post_init__(self) -> None:
        if self.media_type not in SUFFIXES:
            raise ValueError(f"media type {self.media_type!r} is not one of {', '.join(SUFFIXES)}")

    def data(self) -> bytes:
        return self.content.encode("utf-8") if isinstance(self.content, str) else self.content


Case = str | os.PathLike | Document | dict
"""A case file or directory, a ``Document``, or a FHIR R4 Bundle as a ``dict``."""


@dataclass(frozen=True)
class Problem:
    """A case's value or field that its shapes refuse: where it was read from, the case,
    the field (the property's label), the shape's message and its severity (``Violation``,
    ``Warning`` or ``Info``)."""

    source: str | None
    case: str
    field: str
    message: str
    severity: str

    def __str__(self) -> str:
        return f"{self.source or '?'}: case {self.case}: {self.field}: {self.message}"


@dataclass
class Assessment:
    """One run's answers: a result per case (``results``), the inputs that could not be
    read (``input_errors``), and the renderings the command line writes."""

    run: AssessmentRun
    engine: Engine

    @property
    def results(self) -> list[CaseResult]:
        """One ``CaseResult`` per case, in input order: ``status``, ``outcome``,
        ``recommendation``, ``criteria``, ``criterion_states``, ``questions``..."""
        return self.run.results

    @property
    def input_errors(self) -> list[InputError]:
        return self.run.input_errors

    @property
    def exit_code(self) -> int:
        """What ``lbp-imaging assess`` would exit with: 0 when every case was assessed."""
        return self.run.exit_code

    def result(self, case: str) -> CaseResult:
        """The result of the case with this IRI (``KeyError`` when there is none)."""
        for r in self.results:
            if r.case == case:
                return r
        raise KeyError(case)

    def to_json(self) -> dict:
        """The document ``lbp-imaging assess --format json`` writes (``docs/output-schema.md``),
        with the criteria and source statements the results cite and the disclaimer.

        >>> doc = Engine(as_of="2026-12-01").assess(["examples/cases"]).to_json()
        >>> doc["summary"]["assessed"], doc["disclaimer"] == DISCLAIMER
        (56, True)
        """
        from .pipeline.render import to_json

        return json.loads(to_json(self.run, self.engine.knowledge_base.identity))

    def explain(self, case: str | None = None, width: int = 100) -> str:
        """The reasoning chain of each case (or of ``case``) as plain text: facts, criteria
        met with their source statements, recommendation, what is undetermined, questions."""
        from rich.console import Console

        from .pipeline.tree import explanation_tree

        out = io.StringIO()
        console = Console(file=out, width=width, color_system=None, highlight=False)
        for r in [self.result(case)] if case else self.results:
            console.print(explanation_tree(r, self.run.statements, self.engine.assessor.vocab.effect_label))
        return out.getvalue()


class Engine:
    """A knowledge base compiled once, to assess any number of cases.

    ``knowledge_base``: a ``KnowledgeBase`` or the directory to load one from (default:
    ``load_knowledge_base()``). ``engine``: ``"fast"`` (the compiled engine) or
    ``"hermit"`` (the OWL reasoner, with Java 17). ``as_of``: the date (``date`` or
    ``YYYY-MM-DD``) that ages and durations in FHIR Bundles are counted to, default today.
    ``merge_duplicates``: read a case IRI found in several inputs as one case.
    """

    def __init__(
        self,
        knowledge_base: KnowledgeBase | str | os.PathLike | None = None,
        *,
        engine: str = "fast",
        as_of: dt.date | str | None = None,
        merge_duplicates: bool = False,
    ):
        from .pipeline.assess import Assessor

        self.knowledge_base = (
            knowledge_base
            if isinstance(knowledge_base, KnowledgeBase)
            else load_knowledge_base(knowledge_base)
        )
        self.assessor: Assessor = Assessor(self.knowledge_base, engine)
        day = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
        self.assessor.inputs = replace(
            self.assessor.inputs, as_of=day or dt.date.today(), merge_duplicates=merge_duplicates
        )

    def assess(self, cases: Iterable[Case]) -> Assessment:
        """Assess the cases. An input that cannot be read is an input error of the
        assessment, the others are assessed all the same; a case its shapes refuse has the
        status ``invalid`` and says why."""
        return Assessment(self.assessor.assess_loaded(self._load(cases)), self)

    def validate(self, cases: Iterable[Case], reference: bool = False) -> list[Problem]:
        """What the case shapes refuse in the cases, without assessing them (``lbp-imaging
        validate``); ``reference=True`` runs pySHACL instead of the compiled shapes. Inputs
        that cannot be read raise ``ValueError`` naming them.

        >>> Engine().validate(["examples/cases"])
        []
        """
        import pyoxigraph as ox

        from .pipeline.cases import to_rdflib
        from .pipeline.validate import validate_reference

        loaded = self._load(cases)
        if loaded.errors:
            raise ValueError("; ".join(map(str, loaded.errors)))
        if reference or self.assessor.validator is None:
            found = validate_reference(
                self.knowledge_base.ontology + to_rdflib(loaded.quads), self.assessor.case_shapes
            )
        else:
            store = ox.Store()
            store.bulk_extend(self.assessor.kb_quads)
            store.bulk_extend(loaded.quads)
            found = self.assessor.validator.validate(store, loaded.quads)
        return [self._problem(r, loaded) for r in found]

    def questionnaire(self, result: CaseResult | None = None, populate: bool = False) -> dict:
        """The FHIR R4 Questionnaire (SDC) of the facts the criteria read; for an assessed
        ``result``, the adaptive one (only the questions that could still change its
        decision), or with ``populate`` the whole one with its recorded answers filled in.

        >>> q = Engine().questionnaire()
        >>> q["resourceType"], q["status"]
        ('Questionnaire', 'draft')
        """
        from .fhir import questionnaire as forms

        full = forms.questionnaire(self.knowledge_base, self.assessor.vocab)
        if result is None:
            return full
        if result.status != "assessed":
            raise ValueError(f"case {result.case} is invalid: no questionnaire of its facts")
        return (forms.populate if populate else forms.adaptive)(full, result)

    # -- reading ---------------------------------------------------------------------
    def _load(self, cases: Iterable[Case]) -> LoadedInput:
        """Every input read by the command line's reader, the documents as files named as
        they are (``pipeline.documents``: messages and sources call a document ``NAME.EXT``,
        its relative IRIs resolve against ``file:///NAME.EXT``)."""
        from .pipeline import documents

        items = [cases] if isinstance(cases, str | os.PathLike | Document | dict) else list(cases)
        inputs: list[documents.Document | Path] = []
        for n, item in enumerate(items):
            if isinstance(item, dict):
                item = Document(json.dumps(item), "application/fhir+json", f"bundle-{n + 1}")
            if isinstance(item, Document):
                name, suffix = Path(item.name).stem, SUFFIXES[item.media_type]
                inputs.append(documents.Document(item.data(), suffix, name, f"{name}{suffix}"))
            else:
                inputs.append(Path(item))
        return documents.load_documents(inputs, self.assessor.inputs)

    def _problem(self, r: ShapeResult, loaded: LoadedInput) -> Problem:
        label = self.assessor.vocab.label(r.path) if r.path else "case"
        severity = r.severity.rsplit("#", 1)[-1]  # sh:Violation, sh:Warning, sh:Info
        return Problem(loaded.source_of.get(r.focus), r.focus, label, r.message, severity)


def assess(cases: Sequence[Case], **options) -> Assessment:
    """Assess ``cases`` with a new ``Engine(**options)``: for a one-off call; keep an
    ``Engine`` to assess more (compiling the knowledge base takes most of a second)."""
    return Engine(**options).assess(cases)
