"""A card's ``detail``: the explanation of one assessment in GitHub-flavoured Markdown.

The same explanation as the CLI's, shortened for a card: what the open questions could
change (when a study is recommended), the criteria and rules the case met with the patient
facts that met them, the questions that would settle the decision (grouped by what they
suggest, each with the answer that would meet a criterion: unknown is not absent), the red
flags present, the verbatim quotes of the source statements with their IRIs, the source
caveats, the warnings, and the disclaimer. Labels, quotes and definitions come from the
knowledge base through ``Vocabulary`` and the questions from the result; text from either is
escaped so that it cannot change the Markdown.

The source caveats (the statements the ontology shows with every recommendation,
``lbp:shownWith`` on ``lbp:Recommendation``) are warnings of every assessed result; they get
a section of their own, quoted like the sources, so that they neither repeat in every card's
notes nor take the places of the warnings about this case (the notes are cut at
``MAX_NOTES``).
"""

from __future__ import annotations

import re

from rdflib import URIRef
from rdflib.namespace import SKOS

from ... import DISCLAIMER
from ...pipeline.explain import CaseResult, Vocabulary

MAX_NOTES = 10
_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")
_OPERATORS = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}  # docs/output-schema.md: a need's range


def md(text: object) -> str:
    """Text from data, escaped for Markdown."""
    return _SPECIAL.sub(r"\\\1", str(text))


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless one (``1 question``, ``12 questions``)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class DetailWriter:
    """Writes the Markdown sections of a card from a case result."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab
        # each source caveat warning, with the IRI of the statement it quotes
        self.caveats = dict(zip(vocab.source_caveats, vocab.shown_with, strict=True))

    def definition(self, iri: str) -> str:
        value = self.vocab.g.value(URIRef(iri), SKOS.definition)
        return md(value) if value is not None else ""

    def write(self, headline: str, result: CaseResult, statements: list[str]) -> str:
        """``headline`` (Markdown, already escaped), then the explanation of ``result`` with
        the verbatim quotes of ``statements``."""
        parts = [headline]
        if result.status == "assessed":
            parts += [
                self.open_effects(result),
                self.criteria(result),
                self.questions(result),
                self.red_flags(result),
                self.sources(statements),
                self.source_caveats(result),
            ]
        else:
            parts.append(
                "**Errors in the patient data**\n\n" + "\n".join(f"- {md(e)}" for e in result.error_lines())
            )
        parts += [self.notes(result), f"*{md(DISCLAIMER)}*"]
        return "\n\n".join(p for p in parts if p)

    def open_effects(self, result: CaseResult) -> str:
        """When a study is recommended, what the questions could still change, one line per
        effect (could raise the urgency, could change the procedure): the undetermined
        criteria with their urgency, and what to ask about. (When none is recommended the
        questions decide whether imaging is indicated at all; the headline says so.)"""
        if not result.questions or not (result.recommendation or {}).get("procedure"):
            return ""
        criteria: dict[str, dict[str, dict]] = {}  # effect -> criterion IRI -> criterion
        asked: dict[str, dict[str, None]] = {}  # effect -> labels asked about
        for question in result.questions:
            for c in question["criteria"]:
                criteria.setdefault(c["effect"], {}).setdefault(c["iri"], c)
                asked.setdefault(c["effect"], {})[question["about"]["label"]] = None
        lines = ["**The answers to open questions could change this advice** (unknown is not absent)", ""]
        for effect, found in criteria.items():
            named = "; ".join(_criterion(c) for c in found.values())
            lines.append(
                f"- **{md(self.vocab.effect_label(effect).capitalize())}**: {named} "
                f"{'is' if len(found) == 1 else 'are'} undetermined; "
                f"ask about: {'; '.join(md(a) for a in asked[effect])}."
            )
        return "\n".join(lines)

    def criteria(self, result: CaseResult) -> str:
        if not result.criteria:
            return "**Criteria met**: none, by the facts recorded."
        lines = ["**Criteria met**", ""]
        for c in result.criteria:
            outcome = ", ".join(md(c[k]["label"]) for k in ("indicates", "urgency") if c.get(k))
            lines.append(
                f"- **{md(c['label'])}** ({c['kind']}, {self.state(c, result)})"
                + (f": {outcome}" if outcome else "")
            )
            lines += [
                f"  - because {md(f['property']['label'])}: {md(_value(f['value']))}" for f in c["facts"]
            ]
        return "\n".join(lines)

    def state(self, criterion: dict, result: CaseResult) -> str:
        """Whether a class the case met is applied, and if not why, as the engine's notes say
        it: selected; a criterion whose first-line pathway is complete (a met rule completes
        it); a criterion outranked by the one whose procedure is recommended; otherwise not
        applied (a rule that does not fit the recommendation, or an outcome that makes none,
        such as a case outside the criteria's scope)."""
        if criterion["selected"]:
            return "selected"
        if any(criterion["iri"] in self.vocab.completes(c["iri"]) for c in result.criteria):
            return "pathway complete"
        recommended = (result.recommendation or {}).get("procedure")
        return "outranked" if recommended and criterion["kind"] == "criterion" else "not applied"

    def questions(self, result: CaseResult) -> str:
        """The questions whose answers could change the decision, grouped by what they
        suggest (in the result's order: most urgent criterion first); each with the answer
        that would meet a criterion, the criterion, its urgency and the effect. Empty when
        nothing recorded later could change the decision."""
        if not result.questions:
            return ""
        groups: dict[str, list[dict]] = {}  # by the IRI of what they suggest
        for question in result.questions:
            groups.setdefault(question["suggests"]["iri"], []).append(question)
        lines = [
            f"**To settle this, ask** ({count(len(result.questions), 'question')}; unknown is not absent)",
            "",
        ]
        for asked in groups.values():
            lines.append(f"- **{md(asked[0]['suggests']['label'])}**")
            lines += [f"  - {self.question(q)}" for q in asked]
        return "\n".join(lines)

    def question(self, question: dict) -> str:
        """One question: what it asks about, and per answer that would meet a criterion,
        the criteria (label, urgency, effect) it would meet."""
        by_need: dict[str, list[str]] = {}
        for c in question["criteria"]:
            effect = self.vocab.effect_label(c["effect"])
            urgency = f"{c['urgency']['label']}, " if c.get("urgency") else ""
            by_need.setdefault(_need(c["needs"], question.get("unit")), []).append(
                f"{_criterion_label(c)} ({md(urgency)}{md(effect)})"
            )
        clauses = "; ".join(f"if {need}, could meet {' or '.join(met)}" for need, met in by_need.items())
        return f"{md(question['about']['label'])}: {clauses}"

    @staticmethod
    def red_flags(result: CaseResult) -> str:
        """The red flags present (informational: whether the unassessed ones matter is what
        the questions say)."""
        present = "; ".join(md(f["label"]) for f in result.red_flags.get("present", []))
        return f"**Red flags present**: {present or 'none recorded'}"

    def sources(self, statements: list[str]) -> str:
        lines = ["**Sources** (verbatim)", "", *(self.quote(iri) for iri in statements)]
        return "\n".join(lines) if statements else ""

    def source_caveats(self, result: CaseResult) -> str:
        """The source caveats the result carries, quoted with their documents and IRIs."""
        carried = [iri for warning, iri in self.caveats.items() if warning in result.warnings]
        lines = ["**Source caveats** (verbatim, shown with every recommendation)", ""]
        return "\n".join(lines + [self.quote(iri) for iri in carried]) if carried else ""

    def quote(self, iri: str) -> str:
        """A statement as a list item: its verbatim quote, its document, a link to its IRI."""
        s = self.vocab.statement(iri)
        document = f"{md(s['document']['title'])}, " if s.get("document") else ""
        return f"- “{md(s['quote'])}” ({document}[{md(iri.rsplit('/', 1)[-1])}]({iri}))"

    def notes(self, result: CaseResult) -> str:
        """The warnings about this case (the source caveats have their own section), at most
        ``MAX_NOTES`` of them."""
        warnings = [w for w in result.warnings if w not in self.caveats]
        if not warnings:
            return ""
        shown = [f"- {md(w)}" for w in warnings[:MAX_NOTES]]
        if len(warnings) > MAX_NOTES:
            shown.append(f"- … and {len(warnings) - MAX_NOTES} more")
        return "**Notes**\n\n" + "\n".join(shown)


def _criterion_label(criterion: dict) -> str:
    return f"*{md(criterion['label'])}*"


def _criterion(criterion: dict) -> str:
    """A criterion with its urgency (a modifier rule has none)."""
    urgency = f" ({md(criterion['urgency']['label'])})" if criterion.get("urgency") else ""
    return _criterion_label(criterion) + urgency


def _need(needs: dict, unit: str | None) -> str:
    """The answer that would meet a criterion, as text (the forms of docs/output-schema.md)."""
    if "range" in needs:
        suffix = f" {unit}" if unit else ""
        return " and ".join(
            f"{_OPERATORS.get(b['op'], b['op'])} {b['value']:g}{md(suffix)}" for b in needs["range"]
        )
    if "equals" in needs:
        value = needs["equals"]
        if isinstance(value, dict):
            return md(value["label"])
        return ("yes" if value else "no") if isinstance(value, bool) else f"= {md(value)}"
    if "inClass" in needs:
        return f"any {md(needs['inClass']['label'])}"
    if "isA" in needs:
        return f"a {md(needs['isA']['label'])}"
    return "present" if needs.get("present") else "recorded"


def _value(value: dict) -> object:
    """A fact's value as shown: a term's label, a number, or yes/no for a boolean."""
    shown = value.get("label", value.get("value"))
    return ("yes" if shown else "no") if isinstance(shown, bool) else shown
