"""Run the pipeline over case files: load, validate, classify, select, explain.

Data flows one way. The knowledge base is loaded once per ``Assessor``; each batch of
cases goes into a fresh pyoxigraph store with the knowledge base, is validated with the
case shapes (invalid cases are reported with the shape messages and removed, the rest go
on), classified by the chosen engine, and selected with the closed-world SPARQL steps.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox
from rdflib import OWL, Graph, URIRef

from ..knowledge import KnowledgeBase
from . import cases as case_input
from .cases import CaseBatch, Fact, term_key
from .classify_fast import FastClassifier, Taxonomy
from .definitions import UnsupportedConstruct, compile_definitions
from .explain import CaseResult, Vocabulary, explain
from .questions import QuestionWriter
from .select import Selector
from .three_valued import MET, UNDETERMINED, CaseStates, ThreeValuedEvaluator
from .validate import SH, FastValidator, ShapeResult, validate_reference

ENGINES = ("fast", "hermit")
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
# Cases per batch for the fast engine. Measured with `lbp-imaging assess` on 100,000
# generated cases on the 2-core machine, two workers, alternating runs: batches of 500
# took 13.4-15.5 s; 250, 16.6-16.9 s; 1,000, 15.9-16.5 s; 2,000, 15.3-17.8 s; 5,000,
# 17.7-19.9 s; 10,000, 20.1-22.6 s. A smaller batch's store, indexes and objects stay
# in cache and its memory is reused; below 500 the per-batch cost (a new store with the
# knowledge base, the queries) takes over.
BATCH = 500
HERMIT_BATCH = 150
"""Cases per chunk for the HermiT engine: two of ``classify_hermit.classify``'s batches,
one for each of its two workers (HermiT slows superlinearly with the batch: see README)."""


@dataclass
class AssessmentRun:
    """The results of one run: one entry per case, plus files that could not be read and
    the warnings about the input (those ``attached`` are also carried by their results)."""

    engine: str
    results: list[CaseResult] = field(default_factory=list)
    input_errors: list[case_input.InputError] = field(default_factory=list)
    input_warnings: list[case_input.InputWarning] = field(default_factory=list)
    statements: dict[str, dict] = field(default_factory=dict)
    criteria: dict[str, dict] = field(default_factory=dict)
    started: str = ""
    ended: str = ""

    @property
    def invalid(self) -> list[CaseResult]:
        return [r for r in self.results if r.status != "assessed"]

    @property
    def exit_code(self) -> int:
        """0 when every case was assessed, 1 when some input was invalid."""
        return 1 if self.invalid or self.input_errors or not self.results else 0


def with_input_warnings(results: list[CaseResult], warnings: dict[str, list[str]]) -> list[CaseResult]:
    """The results, each carrying first the warnings its input gave (a FHIR coding the
    mappings do not know, a term the ontology does not define, files merged), so that
    every output format reports them with the case."""
    for r in results:
        if r.case in warnings:
            r.warnings[:0] = warnings[r.case]
    return results


class Assessor:
    """The knowledge base compiled once; ``assess`` runs batches of cases through it."""

    def __init__(
        self, kb: KnowledgeBase, engine: str = "fast", batch_size: int | None = None, memoise: bool = True
    ):
        """``memoise=False`` runs every selection query over every case (see ``Selector``):
        for the tests that show both give the same answers."""
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}: choose {' or '.join(ENGINES)}")
        self.kb = kb
        self.engine = engine
        self.batch_size = batch_size or (HERMIT_BATCH if engine == "hermit" else BATCH)
        self.case_shapes = kb.shapes("case-shapes")
        self.kb_quads = kb.ontology_quads
        self.vocab = Vocabulary(kb.ontology, self.kb_quads)
        self.inputs = case_input.InputOptions.for_knowledge_base(kb, shapes=self.case_shapes)
        try:
            formulas = compile_definitions(kb.ontology)
            self.classifier: FastClassifier | None = FastClassifier(formulas, kb.ontology)
            self.evaluator: ThreeValuedEvaluator | None = ThreeValuedEvaluator(
                formulas, kb.ontology, self.classifier.taxonomy
            )
            self.compile_error: str | None = None
        except UnsupportedConstruct as exc:
            if engine == "fast":
                raise
            self.classifier, self.evaluator, self.compile_error = None, None, str(exc)
        self.defined = {
            str(c) for c in kb.ontology.subjects(OWL.equivalentClass, None) if isinstance(c, URIRef)
        }
        self.validator = FastValidator(self.case_shapes) if engine == "fast" else None
        self.questions = QuestionWriter(self.vocab)
        self.selector = Selector(kb, self.kb_quads, memoise=memoise)
        self.vocab.trigger_ranks  # noqa: B018 -- computed once here, so forked workers inherit it
        gc.freeze()  # the knowledge base lives as long as the process: keep it out of GC scans

    # -- entry points -----------------------------------------------------------------
    def assess(self, paths: list[Path], progress: Callable[[int], None] | None = None) -> AssessmentRun:
        loaded = case_input.load(paths, self.inputs)
        return self.assess_loaded(loaded, progress)

    def assess_loaded(
        self, loaded: case_input.LoadedInput, progress: Callable[[int], None] | None = None
    ) -> AssessmentRun:
        """Input already read into memory (a file the server stored, a CDS Hooks request),
        through the one batch pipeline of ``stream``, into a sink that keeps the results."""
        from .stream import collect  # the pipeline module builds on this one

        return collect(self, loaded, progress)

    # -- steps ------------------------------------------------------------------------
    def _validate(self, store: ox.Store, quads: list[ox.Quad]) -> list[ShapeResult]:
        if self.validator is not None:
            return self.validator.validate(store, quads)
        return validate_reference(self.kb.ontology + case_input.to_rdflib(quads), self.case_shapes)

    def _cases(self, store: ox.Store, results: list[ShapeResult]) -> list[str]:
        """The focus nodes of the case shapes: every node the shapes treat as a case."""
        found = {r.focus for r in results}
        for shape in self.case_shapes.subjects(SH.targetClass, None):
            for cls in self.case_shapes.objects(shape, SH.targetClass):
                found |= {term_key(r["x"]) for r in store.query(f"SELECT ?x WHERE {{ ?x a <{cls}> }}")}
        return sorted(found)

    def _classify(
        self, batch: CaseBatch, quads: list[ox.Quad], cases: list[str], taxonomy: Taxonomy | None
    ) -> tuple[dict[str, dict[str, list[Fact]]], dict[str, str]]:
        facts = self.classifier.classify(batch.facts, cases, taxonomy) if self.classifier else {}
        if self.engine == "fast":
            return {c: facts[c].classes for c in cases}, {}
        from . import classify_hermit  # lazy: owlready2 and Java only for this engine

        graphs: dict[URIRef, Graph] = {URIRef(c): Graph() for c in cases}
        for triple in case_input.to_rdflib(quads):
            if triple[0] in graphs:
                graphs[triple[0]].add(triple)
        outcome = classify_hermit.classify(self.kb.ontology, graphs)
        memberships, failed = {}, {}
        for case in cases:
            if URIRef(case) in outcome.inconsistent:
                failed[case] = "the case is logically inconsistent with the ontology (HermiT)"
                continue
            classes = {str(c) for c in outcome.classified[URIRef(case)].classes} & self.defined
            known = facts[case].classes if case in facts else {}
            memberships[case] = {cls: known.get(cls, []) for cls in classes}
        return memberships, failed

    def _states(
        self,
        batch: CaseBatch,
        cases: list[str],
        memberships: dict[str, dict[str, list[Fact]]],
        taxonomy: Taxonomy | None,
    ) -> dict[str, CaseStates]:
        """Three-valued states of every defined class. Without compiled formulas (HermiT
        on a construct the compiler refuses) every class not met is undetermined, with no
        question that could settle it."""
        if self.evaluator is not None:
            return self.evaluator.evaluate(batch.facts, cases, memberships, taxonomy)
        return {
            c: CaseStates({d: MET if d in memberships[c] else UNDETERMINED for d in sorted(self.defined)}, {})
            for c in cases
        }

    def _invalid(self, case: str, source: str | None, results: list[ShapeResult]) -> CaseResult:
        errors = []
        for r in results:
            errors.append(
                {
                    "field": self.vocab.label(r.path) if r.path else None,
                    "path": r.path,
                    "value": r.value,
                    "message": r.message,
                    "constraint": r.component.rsplit("#", 1)[-1],
                }
            )
        return CaseResult(case, source, self.engine, "invalid", errors=errors)

    def _assess_batch(self, batch: CaseBatch, source_of: dict[str, str]) -> list[CaseResult]:
        quads = batch.all_quads()
        store = ox.Store()
        store.bulk_extend(self.kb_quads)
        store.bulk_extend(quads)
        shape_results = self._validate(store, quads)
        cases = self._cases(store, shape_results)
        by_case: dict[str, list[ShapeResult]] = defaultdict(list)
        for r in shape_results:
            by_case[r.focus].append(r)
        invalid = {c for c in cases if by_case.get(c)}
        for case in invalid:
            for quad in batch.quads.get(case, ()):
                store.remove(quad)
        valid = [c for c in cases if c not in invalid]
        # The batch's own types and subclass edges over the knowledge base's: both the
        # classifier and the three-valued evaluation test leaves against them.
        taxonomy = self.classifier.batch_taxonomy(batch.facts) if self.classifier else None
        memberships, failed = self._classify(batch, quads, valid, taxonomy)
        valid = [c for c in valid if c not in failed]
        states = self._states(batch, valid, memberships, taxonomy)
        found = set(cases)
        selections = self.selector.select(
            store,
            {c: batch.facts[c] for c in valid},
            memberships,
            {c: states[c].undetermined() for c in valid},
            context=[q for s, subject_quads in batch.quads.items() if s not in found for q in subject_quads],
            others=[c for c in cases if c not in memberships],
        )
        results = [self._invalid(c, source_of.get(c), by_case[c]) for c in sorted(invalid)]
        results += [
            CaseResult(
                c,
                source_of.get(c),
                self.engine,
                "invalid",
                errors=[
                    {
                        "field": None,
                        "path": None,
                        "value": None,
                        "message": m,
                        "constraint": "consistency",
                    }
                ],
            )
            for c, m in failed.items()
        ]
        results += [
            explain(
                self.vocab,
                selections[c],
                memberships[c],
                source_of.get(c),
                self.engine,
                [f for f in batch.facts[c] if f.prop != RDF_TYPE],
                states[c].states,
                self.questions(states[c], selections[c].open_criteria),
            )
            for c in valid
        ]
        if self.compile_error:  # HermiT decided membership; say why facts are missing
            for r in results:
                if r.status == "assessed":
                    r.warnings.append(f"Facts behind the criteria are not listed: {self.compile_error}")
        order = {case: i for i, case in enumerate(batch.quads)}  # results in input order
        return sorted(results, key=lambda r: order.get(r.case, len(order)))
