"""Assess what the case page submits: the questionnaire form's answers, pasted text in a
detected format, or a bundled example.

Pasted text is written to a temporary file with its format's extension and read by
``cases.load``, like any case file, so the page accepts exactly what the command line
does, with the same validation messages. The format is detected, not chosen: JSON whose
top object names a ``resourceType`` is FHIR, other JSON is JSON-LD, anything else Turtle
(N-Triples is Turtle). The form's answers take the same path, as the FHIR Bundle that
``questionnaire_form`` makes of them. The page uses the app's one ``Assessor`` (fast
engine) and takes its turn under the app's case lock, since the assessor's caches are not
made for concurrent use (one case takes milliseconds). Nothing the page assesses is stored.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import Graph

from ...fhir.questionnaire import questionnaire
from ...knowledge import LBP
from ...pipeline.assess import AssessmentRun, Assessor
from ...pipeline.cases import find_files, load
from ...pipeline.documents import Document, load_documents
from ...pipeline.explain import CaseResult
from .questionnaire_form import Answers, FormModel, Option

# Form value -> (file extension, name shown).
FORMATS: dict[str, tuple[str, str]] = {
    "turtle": (".ttl", "Turtle"),
    "json-ld": (".jsonld", "JSON-LD"),
    "fhir": (".json", "FHIR (JSON)"),
}
MAX_TEXT = 1_000_000
"""Most characters one submission may have: a case is a few hundred."""


class CaseFormError(ValueError):
    """The submission cannot be assessed at all (unknown format or example, too long)."""


@dataclass
class CaseReport:
    """What the case page shows after a submission."""

    shown_as: str
    """Where the cases came from, as the page names it (not a temporary path)."""
    text: str
    format: str
    results: list[CaseResult] = field(default_factory=list)
    statements: dict[str, dict] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    """Why (part of) the input could not be read as cases."""


def detect_format(text: str) -> str:
    """The format of pasted ``text`` (a key of ``FORMATS``): JSON whose top object has a
    ``resourceType`` is FHIR, other JSON (or text that opens like a JSON object) JSON-LD,
    anything else Turtle, whose reader then says what is wrong with it."""
    try:
        doc = json.loads(text)
    except RecursionError:  # JSON nested too deep: the JSON reader says so in its terms
        return "json-ld"
    except ValueError:
        return "json-ld" if text.lstrip().startswith("{") else "turtle"
    return "fhir" if isinstance(doc, dict) and "resourceType" in doc else "json-ld"


def most_urgent(graph: Graph) -> frozenset[str]:
    """The urgencies of the highest ``lbp:urgencyRank``: the page shows them unmistakably."""
    ranks = {str(u): int(r) for u, r in graph.subject_objects(LBP.urgencyRank)}
    top = max(ranks.values(), default=None)
    return frozenset(u for u, r in ranks.items() if r == top)


def format_of(path: Path) -> str | None:
    """The form's format for a file, by its extension."""
    return next((name for name, (suffix, _) in FORMATS.items() if suffix == path.suffix), None)


def bundled_examples(directory: Path) -> dict[str, Path]:
    """The example case files in ``directory`` (by file name) that the form can show."""
    if not directory.is_dir():
        return {}
    files, _ = find_files([directory])
    return {p.name: p for p in files if format_of(p)}


class CaseDesk:
    """Assesses one submission at a time with the app's assessor."""

    def __init__(self, assessor: Assessor, lock: threading.Lock):
        self.assessor = assessor
        self.examples = bundled_examples(assessor.kb.root / "examples" / "cases")
        self.form = self.form_model(questionnaire(assessor.kb, assessor.vocab))
        self.most_urgent = most_urgent(assessor.kb.ontology)
        self._lock = lock

    def form_model(self, resource: dict) -> FormModel:
        """The form for ``resource`` (the full questionnaire, or a populated copy), with the
        FHIR administrative-gender codes the FHIR mapping reads, labelled as the ontology does."""
        mapping = self.assessor.inputs.fhir
        sexes = mapping.sexes if mapping else {}
        genders = tuple(Option(code, self.assessor.vocab.label(iri)) for code, iri in sexes.items())
        return FormModel.from_questionnaire(resource, genders)

    def assess_form(self, answers: Answers, form: FormModel | None = None) -> CaseReport:
        """Assess form ``answers`` (without errors) as the FHIR Bundle they make (the
        report's text, which the page shows)."""
        bundle = (form or self.form).bundle(answers)
        return self.assess_text(json.dumps(bundle, indent=2, ensure_ascii=False), shown_as="the form")

    def assess_text(
        self, text: str, form_format: str | None = None, *, shown_as: str | None = None
    ) -> CaseReport:
        """Assess pasted ``text`` read as ``form_format`` (a key of ``FORMATS``), or, when
        it is ``None`` (as the page passes it), in the format it is detected to have."""
        if form_format is not None and form_format not in FORMATS:
            raise CaseFormError(f"unknown format {form_format!r}: choose one of {', '.join(FORMATS)}")
        if len(text) > MAX_TEXT:
            raise CaseFormError(f"the text is longer than {MAX_TEXT:,} characters")
        form_format = form_format or detect_format(text)
        suffix, name = FORMATS[form_format]
        report = CaseReport(shown_as or f"submitted {name}", text, form_format)
        # Read as a file named ``case``; relative IRIs resolve against that name.
        document = Document(text.encode("utf-8"), suffix, "case", report.shown_as)
        with self._lock:
            run = self.assessor.assess_loaded(load_documents([document], self.assessor.inputs))
        self._fill(report, run, report.shown_as)
        return report

    def assess_example(self, name: str) -> CaseReport:
        """Assess the bundled example file called ``name``."""
        path = self.examples.get(name)
        if path is None:
            raise CaseFormError(f"no bundled example called {name!r}")
        report = CaseReport(name, path.read_text(encoding="utf-8"), format_of(path) or "")
        self._fill(report, self._assess(path), str(path))
        return report

    def _assess(self, path: Path) -> AssessmentRun:
        with self._lock:
            return self.assessor.assess_loaded(load([path], self.assessor.inputs))

    @staticmethod
    def _fill(report: CaseReport, run: AssessmentRun, path: str) -> None:
        """Copy ``run`` into ``report``, naming the input as the page does instead of by ``path``."""
        for result in run.results:
            result.source = report.shown_as
            result.warnings[:] = [w.replace(path, report.shown_as) for w in result.warnings]
        report.results = run.results
        report.statements = run.statements
        report.errors = [e.message.replace(path, report.shown_as) for e in run.input_errors]
        if not run.results and not report.errors:
            report.errors.append("no patient case found in the input")
            # why, when a subject was meant as one (a mistyped class, say)
            report.errors += [
                f"{', '.join(w.cases)}: {w.message}" for w in run.input_warnings if w.cases and not w.attached
            ]
