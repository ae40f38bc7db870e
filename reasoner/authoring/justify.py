"""Explain an unsatisfiable class: a minimal set of axioms that makes it unsatisfiable.

A black-box justification, computed with HermiT and nothing else:

1. **Module.** Starting from the class, take every logical axiom *about* a term already
   reached (its subclass, equivalence and disjointness axioms, a property's domain, range
   and characteristics, an individual's types and facts, the different-individuals axioms
   naming it), add the terms those axioms mention, and repeat. Axioms about terms never
   reached (subclasses of the class, unrelated criteria) cannot force the class to be
   empty, so they are left out.
2. **Contraction.** Order the module's axioms and remove them from the front: find the
   longest prefix whose removal keeps the class unsatisfiable; the next axiom is then
   necessary (removing it as well makes the class satisfiable), so it is kept, and the
   search goes on over the axioms after it. When removing all the rest keeps the class
   unsatisfiable, the kept axioms are a justification: each of them is necessary, since
   dropping any one from the (smaller) final set leaves the class satisfiable too.

Each round tests every prefix at once in **one** HermiT run: the ontology fragment is
copied once per prefix with every term renamed (``…__j2``), so the copies cannot
interact, and HermiT, asked only whether each copy of the class is satisfiable (its
command line's ``-k``, far cheaper than classifying), says which copies still make it
empty. A justification of k axioms costs k + 1 JVM runs. A module larger than
``MAX_MODULE`` axioms (the copies grow with its square) is not contracted: the class's
own axioms are shown instead.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from rdflib import RDF, BNode, Graph, URIRef
from rdflib.term import Node

from .axioms import DECLARATION_TYPES, Axiom, is_builtin

MAX_MODULE = 250


@dataclass(frozen=True)
class Justification:
    """The axioms that together make ``cls`` unsatisfiable (rendered), or, when the
    module did not reproduce the problem, the class's own axioms and ``narrowed`` False."""

    cls: URIRef
    axioms: tuple[str, ...]
    narrowed: bool
    hermit_runs: int


def module(axioms: list[Axiom], target: URIRef) -> list[Axiom]:
    """The logical axioms reachable from ``target`` through what they are about (step 1),
    farthest first: the contraction removes from the front, and the axioms far from the
    class are the likeliest to be irrelevant, so most of them go in the first run."""
    about: dict[URIRef, list[Axiom]] = defaultdict(list)
    for ax in axioms:
        if ax.kind == "logical":
            for term in ax.about:
                about[term].append(ax)
    depth_of = {target: 0}
    todo = [target]
    chosen: dict[str, tuple[int, Axiom]] = {}
    while todo:  # breadth first, so that each axiom gets its shortest distance
        term = todo.pop(0)
        for ax in about[term]:
            if ax.text not in chosen:
                chosen[ax.text] = (depth_of[term], ax)
                for new in sorted(ax.signature - depth_of.keys()):
                    depth_of[new] = depth_of[term] + 1
                    todo.append(new)
    return [ax for _, ax in sorted(chosen.values(), key=lambda d: (-d[0], d[1].text))]


def _declarations(graph: Graph, axioms: list[Axiom]) -> list[tuple[Node, Node, Node]]:
    terms = {t for ax in axioms for t in ax.signature}
    return [
        (t, RDF.type, kind) for t in terms for kind in graph.objects(t, RDF.type) if kind in DECLARATION_TYPES
    ]


def _copy(triples, suffix: str, into: Graph) -> None:
    """Add the triples to ``into`` with every non-built-in IRI and blank node renamed."""
    bnodes: dict[BNode, BNode] = {}

    def rename(term: Node) -> Node:
        if isinstance(term, BNode):
            return bnodes.setdefault(term, BNode())
        if isinstance(term, URIRef) and not is_builtin(term):
            return URIRef(f"{term}{suffix}")
        return term

    for s, p, o in triples:
        into.add((rename(s), rename(p), rename(o)))


def _hermit_command(path: Path, classes: list[str]) -> list[str]:
    """HermiT's own command line, asked only whether each class is satisfiable: far
    cheaper than the full classification owlready2 runs, for many copies at once."""
    import owlready2

    jar_dir = Path(owlready2.__file__).parent / "hermit"
    classpath = os.pathsep.join([str(jar_dir), str(jar_dir / "HermiT.jar")])
    return [
        owlready2.JAVA_EXE,
        f"-Xmx{owlready2.reasoning.JAVA_MEMORY}M",
        "-cp",
        classpath,
        "org.semanticweb.HermiT.cli.CommandLine",
        *(f"-k<{c}>" for c in classes),
        path.as_uri(),
    ]


def _unsatisfiable(variants: list[list[Axiom]], declarations: list, target: URIRef) -> set[int]:
    """One HermiT run: in which variants (sets of axioms) is ``target`` unsatisfiable?"""
    graph = Graph()
    for j, variant in enumerate(variants):
        _copy([*declarations, *(t for ax in variant for t in ax.triples)], f"__j{j}", graph)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "variants.nt"
        graph.serialize(path, format="nt", encoding="utf-8")
        classes = [f"{target}__j{j}" for j in range(len(variants))]
        done = subprocess.run(_hermit_command(path, classes), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"HermiT failed: {done.stderr.strip()[-500:]}")
    unsat = {
        line.split(">")[0].lstrip("<") for line in done.stdout.splitlines() if "is not satisfiable" in line
    }
    return {j for j, cls in enumerate(classes) if cls in unsat}


def justify(graph: Graph, axioms: list[Axiom], target: URIRef) -> Justification:
    """A minimal set of axioms of ``graph`` (split into ``axioms``) that makes ``target``
    unsatisfiable, found as described in the module docstring."""
    candidates = module(axioms, target)
    own = tuple(ax.text for ax in candidates if target in ax.about)
    if len(candidates) > MAX_MODULE:
        return Justification(target, own, False, 0)
    declarations = _declarations(graph, candidates)
    kept: list[Axiom] = []
    rest = candidates
    runs = 0
    while True:
        unsat = _unsatisfiable([[*kept, *rest[j:]] for j in range(len(rest) + 1)], declarations, target)
        runs += 1
        if 0 not in unsat:  # the module does not reproduce it: fall back to the class's own axioms
            return Justification(target, own, False, runs)
        longest = max(j for j in range(len(rest) + 1) if all(i in unsat for i in range(j + 1)))
        if longest == len(rest):
            return Justification(target, tuple(sorted(ax.text for ax in kept)), True, runs)
        kept.append(rest[longest])
        rest = rest[longest + 1 :]
