"""``lbp-imaging check``: is the knowledge base well formed, consistent, sourced, and do
the examples still hold? One report, ERROR / WARN / INFO, from these steps:

files      every ontology module, shapes file and named query parses; the catalog
           lists every module and resolves every import
hermit     consistency, unsatisfiable classes (each explained, see ``justify``) and
           criteria HermiT finds equivalent: one JVM run (optional: ``hermit=False``)
shapes     the governance shapes conform (pyshacl), with their messages
sources    every source quote is found verbatim in its document
hygiene    ROBOT-style report rules (``hygiene``)
closures   closed categories: the ``owl:oneOf`` list of each closure axiom and the
           individuals typed with the category agree; criteria over open ones (``closure``)
guideline  criteria without sources, uncited statements, criteria with identical
           compiled definitions
examples   every example case still gets its recorded decision; every criterion is
           met by some example
versions   every module and the package carry the same version

A step that cannot run because an earlier one failed (an ontology that does not parse
cannot be reasoned over) says so in its summary instead of failing again.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pyoxigraph as ox
from rdflib import Graph, URIRef

from ..knowledge import LBP, KnowledgeBase, KnowledgeBaseError, catalog_entries
from .report import Level, Report, Result, Step, plural

SH = "http://www.w3.org/ns/shacl#"
MAX_EXPLAINED = 3  # each explanation costs a few HermiT runs


class _Timer:
    def __init__(self, report: Report):
        self.report = report

    def run(self, name: str, step: Callable[[], tuple[list[Result], str]]) -> None:
        start = time.perf_counter()
        results, summary = step()
        self.report.add(results)
        self.report.steps.append(Step(name, round(time.perf_counter() - start, 2), summary))

    def skip(self, name: str, why: str) -> None:
        self.report.steps.append(Step(name, 0.0, f"skipped: {why}"))


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def check_files(root: Path) -> tuple[list[Result], str]:
    """parse_error (ERROR) for each file that does not parse; catalog (ERROR) for a
    catalog that does not resolve; catalog_unlisted (WARN) for a module the catalog
    omits, which the engine would silently ignore."""
    results: list[Result] = []
    counts: dict[str, int] = defaultdict(int)
    for kind, pattern in (("ontology", "ontology/*.ttl"), ("shapes", "shapes/*.ttl")):
        for path in sorted(root.glob(pattern)):
            counts[kind] += 1
            try:
                Graph().parse(path)
            except Exception as exc:  # rdflib raises many parser-specific types
                message = " ".join(str(exc).split())  # parser messages span lines
                results.append(Result(Level.ERROR, "parse_error", _relative(path, root), message))
    empty = ox.Store()
    for path in sorted(root.glob("queries/*.rq")):
        counts["queries"] += 1
        try:
            empty.query(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError) as exc:
            results.append(
                Result(Level.ERROR, "parse_error", _relative(path, root), f"SPARQL syntax error: {exc}")
            )
    try:
        listed = set(catalog_entries(root / "ontology").values())
    except KnowledgeBaseError as exc:
        results.append(Result(Level.ERROR, "catalog", "ontology/catalog-v001.xml", str(exc)))
    else:
        for path in sorted(set((root / "ontology").glob("*.ttl")) - listed):
            results.append(
                Result(
                    Level.WARN,
                    "catalog_unlisted",
                    _relative(path, root),
                    "not in catalog-v001.xml: the engine and Protégé do not load it",
                )
            )
    summary = ", ".join(
        plural(counts[kind], word, words)
        for kind, word, words in (
            ("ontology", "ontology module", None),
            ("shapes", "shapes file", None),
            ("queries", "query", "queries"),
        )
    )
    return results, summary


def check_imports(kb: KnowledgeBase) -> list[Result]:
    from rdflib import OWL

    return [
        Result(
            Level.ERROR, "catalog", str(target), "is imported but catalog-v001.xml does not map it to a file"
        )
        for target in sorted(set(kb.ontology.objects(None, OWL.imports)))
        if str(target) not in kb.modules
    ]


def _name(graph: Graph, term) -> str:
    return graph.namespace_manager.normalizeUri(term) if isinstance(term, URIRef) else str(term)


def check_hermit(kb: KnowledgeBase) -> tuple[list[Result], str]:
    """inconsistent_ontology, unsatisfiable_class (ERROR, with a justification),
    equivalent_criteria (WARN), reasoner_error (ERROR) when HermiT cannot run."""
    from .axioms import Renderer, prefixes_of, split
    from .consistency import reason
    from .guideline import criteria, equivalent_results
    from .justify import justify

    graph = kb.ontology
    try:
        reasoning = reason(graph, criteria(graph))
    except Exception as exc:  # Java missing, HermiT crashed: the step cannot conclude
        return [
            Result(Level.ERROR, "reasoner_error", "HermiT", f"{type(exc).__name__}: {exc}")
        ], "HermiT failed"
    if not reasoning.consistent:
        return [
            Result(Level.ERROR, "inconsistent_ontology", "ontology", reasoning.error or "")
        ], "inconsistent"
    results = equivalent_results(
        graph, reasoning.equivalent, "HermiT infers each to be a subclass of the other"
    )
    axioms = split(graph, Renderer(graph, prefixes_of(graph), str(LBP)))
    for i, cls in enumerate(reasoning.unsatisfiable):
        if i >= MAX_EXPLAINED:
            results.append(
                Result(
                    Level.ERROR,
                    "unsatisfiable_class",
                    _name(graph, cls),
                    f"can have no members (not explained: only the first {MAX_EXPLAINED} are)",
                )
            )
            continue
        try:
            why = justify(graph, axioms, cls)
        except RuntimeError as exc:  # HermiT failed on the copies: report without the axioms
            results.append(
                Result(Level.ERROR, "unsatisfiable_class", _name(graph, cls), f"can have no members ({exc})")
            )
            continue
        n = len(why.axioms)
        if why.narrowed:
            message = f"can have no members, because of {n} axioms ({why.hermit_runs} HermiT runs):"
        else:
            message = f"can have no members; not narrowed down, so its own {n} axioms:"
        results.append(Result(Level.ERROR, "unsatisfiable_class", _name(graph, cls), message, why.axioms))
    unsatisfiable = plural(len(reasoning.unsatisfiable), "unsatisfiable class", "unsatisfiable classes")
    summary = (
        f"consistent, {unsatisfiable}, {plural(len(reasoning.equivalent), 'group')} of equivalent criteria"
    )
    return results, summary


def check_shapes(kb: KnowledgeBase) -> tuple[list[Result], str]:
    """governance_shape (ERROR): each top-level violation of the governance shapes."""
    from pyshacl import validate
    from rdflib import RDF, Namespace

    sh = Namespace(SH)
    conforms, report, _ = validate(
        kb.ontology, shacl_graph=kb.shapes("governance-shapes"), inference="none", advanced=False
    )
    results = []
    for top in report.subjects(RDF.type, sh.ValidationReport):
        for res in report.objects(top, sh.result):
            focus = report.value(res, sh.focusNode)
            messages = sorted(str(m) for m in report.objects(res, sh.resultMessage))
            shape = report.value(res, sh.sourceShape)
            where = f" (shape {_name(kb.ontology, shape)})" if isinstance(shape, URIRef) else ""
            results.append(
                Result(Level.ERROR, "governance_shape", _name(kb.ontology, focus), " ".join(messages) + where)
            )
    return results, "conform" if conforms else f"{len(results)} violations"


def check_sources(kb: KnowledgeBase) -> tuple[list[Result], str]:
    """source_quote (ERROR): a quote not found verbatim, or a wrong checksum or position."""
    from ..pipeline.sources import check_quotes, read_quotes

    problems = check_quotes(kb.ontology, kb.ontology_dir)
    results = [
        Result(Level.ERROR, "source_quote", _name(kb.ontology, p.statement), p.problem) for p in problems
    ]
    return results, f"{plural(len(read_quotes(kb.ontology)), 'quote')}, {plural(len(problems), 'problem')}"


def check_hygiene(kb: KnowledgeBase) -> tuple[list[Result], str]:
    from .hygiene import Hygiene

    results = Hygiene(kb.ontology).results()
    return results, plural(len(results), "finding")


def check_closures(kb: KnowledgeBase) -> tuple[list[Result], str]:
    from .closure import closure_results

    return closure_results(kb.ontology)


def check_guideline(kb: KnowledgeBase, formulas: dict | None) -> tuple[list[Result], str]:
    from .guideline import criteria, equivalent_results, identical_formulas, source_results

    results = source_results(kb.ontology)
    if formulas is not None:
        same = identical_formulas(formulas)
        results += equivalent_results(kb.ontology, same, "their compiled definitions are identical")
    return results, f"{len(criteria(kb.ontology))} criteria (defined classes)"


def check_examples(kb: KnowledgeBase) -> tuple[list[Result], str]:
    """The examples step; fast_engine_refuses (ERROR) when the definitions do not compile."""
    from ..pipeline.assess import Assessor
    from ..pipeline.definitions import UnsupportedConstruct
    from .decision import local
    from .examples_check import check_examples as compare
    from .guideline import criteria

    cases_dir = kb.root / "examples" / "cases"
    if not cases_dir.is_dir():
        return [], "skipped: no examples/cases"
    try:
        assessor = Assessor(kb)
    except UnsupportedConstruct as exc:
        return [Result(Level.ERROR, "fast_engine_refuses", "ontology", str(exc))], "skipped: engine refused"
    found = compare(assessor, cases_dir)
    for cls in criteria(kb.ontology):
        if local(str(cls)) not in found.exercised:
            found.results.append(
                Result(
                    Level.WARN,
                    "criterion_not_exercised",
                    _name(kb.ontology, cls),
                    "no example case meets this criterion: add one to examples/cases with its expectation",
                )
            )
    return found.results, plural(found.cases, "case")


def check_versions(kb: KnowledgeBase) -> tuple[list[Result], str]:
    from .versions import version_results

    results, version = version_results(kb.ontology, kb.root)
    return results, f"version {version}" if version else "no version"


def run_check(root: Path, hermit: bool = True) -> Report:
    """Every step over the knowledge base at ``root``."""
    from ..pipeline.definitions import UnsupportedConstruct, compile_definitions

    root = root.resolve()
    report = Report(str(root))
    timer = _Timer(report)
    timer.run("files", lambda: check_files(root))
    broken = {r.subject for r in report.results if r.level is Level.ERROR}
    later = ("hermit", "shapes", "sources", "hygiene", "closures", "guideline", "examples", "versions")
    if any(s.startswith("ontology/") for s in broken):
        for name in later:
            timer.skip(name, "the ontology does not load")
        return report
    try:  # not KnowledgeBase.load: a broken query must not stop the ontology's checks
        kb = KnowledgeBase(root=root, modules=catalog_entries(root / "ontology"))
        _ = kb.ontology
    except KnowledgeBaseError:  # already reported by the files step
        for name in later:
            timer.skip(name, "the catalog does not resolve")
        return report
    report.add(check_imports(kb))
    if hermit:
        timer.run("hermit", lambda: check_hermit(kb))
    else:
        timer.skip("hermit", "not asked for")
    if "shapes/governance-shapes.ttl" in broken:
        timer.skip("shapes", "the governance shapes do not parse")
    else:
        timer.run("shapes", lambda: check_shapes(kb))
    timer.run("sources", lambda: check_sources(kb))
    timer.run("hygiene", lambda: check_hygiene(kb))
    timer.run("closures", lambda: check_closures(kb))
    try:
        formulas = compile_definitions(kb.ontology)
    except UnsupportedConstruct:
        formulas = None  # the examples step reports it
    timer.run("guideline", lambda: check_guideline(kb, formulas))
    if any(s.startswith(("queries/", "shapes/")) for s in broken):
        timer.skip("examples", "a named query or shapes file does not parse")
    else:
        timer.run("examples", lambda: check_examples(kb))
    timer.run("versions", lambda: check_versions(kb))
    return report
