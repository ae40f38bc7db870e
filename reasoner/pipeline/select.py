"""Select each case's recommendation with the closed-world SPARQL steps in ``queries/``.

The store holds the knowledge base, the cases, the class memberships an engine inferred
and the criteria that three-valued evaluation left undetermined. The queries decide
everything clinical (precedence, contrast, substitution, no imaging, which undetermined
criteria could change the decision, red flags); this module only runs them and groups
rows by case.

Cases that look the same to a query get the same rows from it, so each query runs once
per distinct *signature* (``Selector``): the case's triples (with the memberships and
undetermined criteria) restricted to the predicates the query mentions, which is all it
can read of a case (``case_reads``). The queries stay the only definition of the
selection: they run on a store of the knowledge base and one representative case per
signature, and every case gets its representative's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import pyoxigraph as ox
from rdflib import URIRef, Variable
from rdflib.paths import AlternativePath, InvPath, MulPath, SequencePath

from ..knowledge import KnowledgeBase
from .cases import Fact

RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
UNDETERMINED = ox.NamedNode("https://w3id.org/lbp-imaging/undeterminedCriterion")
SELECTION_QUERIES = (
    "recommended-procedure",
    "no-imaging",
    "open-criteria",
    "present-red-flags",
    "unassessed-red-flags",
)
"""The closed-world steps ``Selector.select`` runs, each keyed by its ``?case`` column."""

MAX_SKIP = 32
"""At most this many batches run a query as written after its signatures were mostly
new, before they are computed again (see ``Selector``)."""
Row = tuple[str | None, ...]
Rows = Callable[..., Iterable[Row]]
"""A query's rows by name and column names, each row (case, the other columns...)."""


@dataclass
class Selection:
    """What the selection queries concluded for one case (IRIs as strings)."""

    case: str
    outcome: str | None = None
    procedures: list[str] = field(default_factory=list)
    indicated: list[str] = field(default_factory=list)
    urgency: str | None = None
    appropriateness: str | None = None
    selected_criteria: list[str] = field(default_factory=list)
    contrast_rules: list[str] = field(default_factory=list)
    contraindication_rules: list[str] = field(default_factory=list)
    contrast_lost: list[str] = field(default_factory=list)
    """Contrast-enhanced studies a contrast rule asked for that the MRI-contraindication
    substitute does not give (its contrast differs)."""
    closed_world_concepts: list[str] = field(default_factory=list)
    deciding_rules: list[str] = field(default_factory=list)
    """With no procedure: the rule that decided the outcome (a scope exclusion, a completed
    pathway, a clinical review trigger), if one did."""
    present_red_flags: list[str] = field(default_factory=list)
    unassessed_red_flags: list[str] = field(default_factory=list)
    open_criteria: dict[str, str] = field(default_factory=dict)
    """Undetermined criteria whose questions could change the decision, with the effect
    (an IRI) that answering them could have."""


def _values(store: ox.Store, query: str, *names: str) -> Iterator[Row]:
    """The named variables of each solution, as strings (None when unbound)."""
    results = store.query(query)
    position = {v.value: i for i, v in enumerate(results.variables)}
    wanted = [position[n] for n in names]
    for row in results:
        terms = [row[i] for i in wanted]
        yield tuple(
            None if t is None else t.value if not isinstance(t, ox.BlankNode) else str(t) for t in terms
        )


def _least(a: str | None, b: str | None) -> str | None:
    return b if a is None or (b is not None and b < a) else a


def _add(items: list[str], value: str | None) -> None:
    if value is not None and value not in items:
        items.append(value)


def add_memberships(
    store: ox.Store, memberships: dict[str, set[str]], undetermined: dict[str, list[str]] | None = None
) -> None:
    """Assert each case's inferred class memberships and its undetermined criteria
    (``lbp:undeterminedCriterion``), for the selection queries."""
    store.extend(
        ox.Quad(ox.NamedNode(case), RDF_TYPE, ox.NamedNode(cls))
        for case, classes in memberships.items()
        for cls in classes
    )
    store.extend(
        ox.Quad(ox.NamedNode(case), UNDETERMINED, ox.NamedNode(cls))
        for case, classes in (undetermined or {}).items()
        for cls in classes
    )


@lru_cache(maxsize=64)  # rdflib's SPARQL parser takes about 0.1 s a query: once per process
def case_reads(query: str, case: str = "case") -> frozenset[str] | None:
    """Every predicate the query's triple patterns and property paths mention: all that it
    can read of a case's triples. None when its rows for a case could depend on more: a
    variable or a negated property set in predicate position (any predicate), a ``GRAPH``,
    ``SERVICE`` or ``FROM`` clause (other graphs), the case variable inside an expression
    (its rows could depend on the text of the case's IRI), or a text rdflib's SPARQL parser
    does not take. Such a query is run for every case, as written."""
    # Lazy: rdflib's SPARQL grammar takes about 0.2 s to import, which a run of one case skips.
    from pyparsing import ParseException
    from rdflib.plugins.sparql import prepareQuery
    from rdflib.plugins.sparql.algebra import traverse
    from rdflib.plugins.sparql.parserutils import Expr

    try:
        algebra = prepareQuery(query).algebra
    except (ParseException, ValueError, TypeError, KeyError):
        return None
    variable = Variable(case)
    found: set[str] = set()
    bounded = [not algebra.get("datasetClause")]

    def visit(node: object) -> None:
        name = getattr(node, "name", None)
        if name in ("Graph", "ServiceGraphPattern"):
            bounded[0] = False
        elif name == "BGP":
            for _, predicate, _ in node.triples:
                bounded[0] &= _path_predicates(predicate, found)
        elif (isinstance(node, Expr) and _mentions(node, variable)) or (
            name == "Extend" and node.expr == variable
        ):
            bounded[0] = False

    traverse(algebra, visitPre=visit)
    return frozenset(found) if bounded[0] else None


def _mentions(node: object, variable: Variable) -> bool:
    from rdflib.plugins.sparql.parserutils import CompValue  # loaded by case_reads

    if node == variable:
        return True
    if isinstance(node, CompValue):
        return any(_mentions(v, variable) for k, v in node.items() if k != "_vars")
    if isinstance(node, list | tuple):
        return any(_mentions(v, variable) for v in node)
    return False


def _path_predicates(path: object, found: set[str]) -> bool:
    """Add the IRIs of a predicate or property path to ``found``; False when the path can
    match predicates it does not name (a variable, a negated property set)."""
    if isinstance(path, URIRef):
        found.add(str(path))
        return True
    if isinstance(path, SequencePath | AlternativePath):
        return all(_path_predicates(p, found) for p in path.args)
    if isinstance(path, MulPath):
        return _path_predicates(path.path, found)
    if isinstance(path, InvPath):
        return _path_predicates(path.arg, found)
    return False


class Selector:
    """The selection queries of a knowledge base, run once per distinct signature.

    A query's rows for a case depend on the knowledge base, the batch's subjects that are
    no case, and the case's own triples with the predicates the query mentions
    (``case_reads``): the selection queries are written so, each keyed by ``?case`` and
    none reading one case through another. Cases with equal such triples (their
    *signature*) therefore get equal rows, and each case is given the rows kept for its
    signature under its own IRI. The signatures not answered before, when they are at
    most half the batch, are answered by running the query on a store of the knowledge
    base, the batch's other subjects and one representative case per signature. When they
    are more, running the query over the whole batch store as written costs less and gives
    the same rows; the next 2, 4, 8... (up to ``MAX_SKIP``) batches then run it so without
    computing signatures (on the project's generated cases, only the recommended procedure
    repeats enough to gain). Answers are kept across batches whose subjects are all cases
    (the last ``size`` signatures per query).

    A query always runs over the whole batch store as written (for every query with
    ``memoise=False``, which the tests compare against) when ``case_reads`` cannot bound
    what it reads, or when a case of the batch is the object of a triple or a term of the
    knowledge base (a case could then be read through something else).

    One batch at a time: the representatives' store is shared by the batches (the server
    assesses under its case lock; worker processes have their own).
    """

    def __init__(self, kb: KnowledgeBase, kb_quads: list[ox.Quad], memoise: bool = True, size: int = 4096):
        self.texts = {name: kb.query(name).text for name in SELECTION_QUERIES}
        self.memoising = memoise
        self.kb_quads = kb_quads
        self.size = size
        self.store = ox.Store()
        self.kb_terms = {
            t.value for q in kb_quads for t in (q.subject, q.object) if isinstance(t, ox.NamedNode)
        }
        self._nodes: dict[str, ox.NamedNode] = {}
        self._facts: dict[tuple[str, str], Fact] = {}
        # Per memoisable query (filled by ``reads``): the answers kept by signature, and the
        # batches to run it as written before computing its signatures again.
        self.kept: dict[str, dict[frozenset[Fact], list[Row]]] = {}
        self.skip: dict[str, int] = {}
        self.backoff: dict[str, int] = {}

    @cached_property
    def reads(self) -> dict[str, frozenset[str]]:
        """What each memoisable query reads of a case (``case_reads``), worked out on first
        need: rdflib's parser takes about 0.1 s a query, which a run of one case, answered by
        the queries as written, does not have to spend (``prepare`` does it before workers
        are forked, so that they inherit it)."""
        reads = {name: case_reads(text) for name, text in self.texts.items()} if self.memoising else {}
        found = {name: preds for name, preds in reads.items() if preds is not None}
        self.kept.update({name: {} for name in found})
        self.skip.update(dict.fromkeys(found, 0))
        self.backoff.update(dict.fromkeys(found, 1))
        if found:
            self.store.bulk_extend(self.kb_quads)
        return found

    def prepare(self) -> None:
        """Work out what the queries read now (a server, a pool of workers about to fork)."""
        self.reads  # noqa: B018 -- the cached property

    def select(
        self,
        store: ox.Store,
        facts: Mapping[str, list[Fact]],
        memberships: Mapping[str, Iterable[str]],
        undetermined: Mapping[str, list[str]],
        context: list[ox.Quad],
        others: Iterable[str] = (),
    ) -> dict[str, Selection]:
        """The selections of the cases in ``facts`` (each case's own triples, in the default
        graph as every reader gives them). ``store`` holds the knowledge base and the
        batch's quads, ``context`` the quads of the batch's subjects that are no case,
        ``others`` names the batch's other cases (not assessed)."""
        others = tuple(others)
        if len(facts) + len(others) < 2 and "reads" not in self.__dict__:
            # One case and nothing worked out yet: the queries as written answer it at once.
            batch = _Batch(self, store, facts, memberships, undetermined, context, memoise=False)
            return selections(list(facts), batch.rows)
        batch = _Batch(self, store, facts, memberships, undetermined, context)
        named = {f.value.value for f in set().union(*facts.values()) if isinstance(f.value, ox.NamedNode)}
        named |= {q.object.value for q in context if isinstance(q.object, ox.NamedNode)}
        batch.memoise = not any(c in named or c in self.kb_terms for c in (*facts, *others))
        return selections(list(facts), batch.rows)

    def node(self, iri: str) -> ox.NamedNode:
        found = self._nodes.get(iri)
        if found is None:
            found = self._nodes[iri] = ox.NamedNode(iri)
        return found

    def fact(self, prop: str, iri: str) -> Fact:
        """One shared fact per property and IRI (a membership, an undetermined criterion)."""
        found = self._facts.get((prop, iri))
        if found is None:
            found = self._facts[(prop, iri)] = Fact(prop, self.node(iri))
        return found


class _Batch:
    """One batch's rows, query by query: from the answers for their signatures, or from
    the batch store (the memberships asserted there on first need)."""

    def __init__(
        self,
        selector: Selector,
        store: ox.Store,
        facts: Mapping[str, list[Fact]],
        memberships: Mapping[str, Iterable[str]],
        undetermined: Mapping[str, list[str]],
        context: list[ox.Quad],
        memoise: bool = True,
    ):
        self.selector, self.store, self.facts = selector, store, facts
        self.memberships, self.undetermined, self.context = memberships, undetermined, context
        self.memoise = memoise
        self.asserted = False
        # Each case's memberships and undetermined criteria as facts, made on first need.
        self.typed: dict[str, list[Fact]] = {}
        self.open: dict[str, list[Fact]] = {}
        # Answers that depend on the batch's other subjects are kept for this batch only.
        if memoise:
            reads = selector.reads
            self.kept = selector.kept if not context else {name: {} for name in reads}

    def rows(self, name: str, *columns: str) -> Iterable[Row]:
        preds = self.selector.reads.get(name) if self.memoise else None
        if preds is None:
            return self.direct(name, columns)
        return self.memoised(name, preds, columns)

    def direct(self, name: str, columns: tuple[str, ...]) -> Iterator[Row]:
        """The query as written over the batch store."""
        if not self.asserted:
            add_memberships(self.store, {c: set(self.memberships[c]) for c in self.facts}, self.undetermined)
            self.asserted = True
        return _values(self.store, self.selector.texts[name], "case", *columns)

    def signature(self, case: str, preds: frozenset[str]) -> frozenset[Fact]:
        """The case's triples in the batch store that the query can read, as facts."""
        found = [f for f in self.facts[case] if f.prop in preds]
        for prop, classes, made in (
            (RDF_TYPE.value, self.memberships, self.typed),
            (UNDETERMINED.value, self.undetermined, self.open),
        ):
            if prop in preds:
                facts = made.get(case)
                if facts is None:
                    fact = self.selector.fact
                    facts = made[case] = [fact(prop, c) for c in classes.get(case, ())]
                found += facts
        return frozenset(found)

    def memoised(self, name: str, preds: frozenset[str], columns: tuple[str, ...]) -> Iterable[Row]:
        selector = self.selector
        if selector.skip[name]:  # mostly new signatures lately: not worth computing them
            selector.skip[name] -= 1
            return self.direct(name, columns)
        kept = self.kept[name]
        signatures = {case: self.signature(case, preds) for case in self.facts}
        new: dict[frozenset[Fact], str] = {}
        for case, sig in signatures.items():
            if sig not in kept and sig not in new:
                new[sig] = case
        if 2 * len(new) > len(signatures):
            # Mostly new: the query over the whole batch costs less than over representatives.
            selector.backoff[name] = selector.skip[name] = min(2 * selector.backoff[name], MAX_SKIP)
            return self.direct(name, columns)
        answers = self.run(name, columns, new) if new else {}
        selector.backoff[name] = 1
        found: list[Row] = []
        for case, sig in signatures.items():
            rows = answers.get(sig)
            if rows is None:
                rows = kept.pop(sig)
                kept[sig] = rows  # most recently used last
            found += [(case, *row) for row in rows]
        for sig, rows in answers.items():
            if len(kept) >= selector.size:
                del kept[next(iter(kept))]
            kept[sig] = rows
        return found

    def run(
        self, name: str, columns: tuple[str, ...], new: dict[frozenset[Fact], str]
    ) -> dict[frozenset[Fact], list[Row]]:
        """The rows of each new signature's representative, from a store of the knowledge
        base, the batch's other subjects and the representatives (removed again after)."""
        selector = self.selector
        store, node = selector.store, selector.node
        quads = [q for q in self.context if q not in store]  # the knowledge base's stay
        for sig, case in new.items():
            subject = node(case)
            quads += [ox.Quad(subject, node(f.prop), f.value) for f in sig]
        store.bulk_extend(quads)
        by_case: dict[str, list[Row]] = {case: [] for case in new.values()}
        try:
            for case, *row in _values(store, selector.texts[name], "case", *columns):
                if case in by_case:
                    by_case[case].append(tuple(row))
        finally:
            for quad in quads:
                store.remove(quad)
        return {sig: by_case[case] for sig, case in new.items()}


def selections(cases: list[str], rows: Rows) -> dict[str, Selection]:
    """The cases' selections from the rows of the selection queries. SPARQL rows come in no
    particular order, and pyoxigraph's order differs from store to store and from process
    to process: lists are sorted, and where rows give one value several candidates (two
    criteria selected together with different appropriateness, say) the least IRI is
    taken, so that answers depend neither on batching nor on the store."""
    selections = {case: Selection(case) for case in cases}
    for (
        case,
        outcome,
        procedure,
        indicated,
        criterion,
        urgency,
        appropriateness,
        contrast,
        contra,
        lost,
    ) in rows(
        "recommended-procedure",
        "outcome",
        "procedure",
        "indicated",
        "criterion",
        "urgency",
        "appropriateness",
        "contrastRule",
        "contraindicationRule",
        "contrastLost",
    ):
        s = selections.get(case)
        if s is None:
            continue
        s.outcome = outcome
        _add(s.procedures, procedure)
        _add(s.indicated, indicated)
        _add(s.selected_criteria, criterion)
        s.urgency = _least(s.urgency, urgency)
        s.appropriateness = _least(s.appropriateness, appropriateness)
        _add(s.contrast_rules, contrast)
        _add(s.contraindication_rules, contra)
        _add(s.contrast_lost, lost)
    no_imaging = {}
    for case, outcome, concept, decided_by in rows("no-imaging", "outcome", "concept", "decidedBy"):
        if case in selections:
            no_imaging[case] = outcome
            _add(selections[case].closed_world_concepts, concept)
            _add(selections[case].deciding_rules, decided_by)
    for case, s in selections.items():
        s.outcome = s.outcome or no_imaging.get(case)
        for items in (
            s.procedures,
            s.indicated,
            s.selected_criteria,
            s.contrast_rules,
            s.contraindication_rules,
            s.contrast_lost,
            s.closed_world_concepts,
            s.deciding_rules,
        ):
            if len(items) > 1:
                items.sort()
    for case, criterion, effect in rows("open-criteria", "criterion", "effect"):
        if case in selections and criterion is not None and effect is not None:
            found = selections[case].open_criteria
            found[criterion] = _least(found.get(criterion), effect)
    for s in selections.values():
        if len(s.open_criteria) > 1:
            s.open_criteria = dict(sorted(s.open_criteria.items()))
    for name, attribute in (
        ("present-red-flags", "present_red_flags"),
        ("unassessed-red-flags", "unassessed_red_flags"),
    ):
        for case, flags in rows(name, "redFlags"):
            if case in selections:
                setattr(selections[case], attribute, sorted(flags.split()))
    return selections
