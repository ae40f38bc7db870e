"""From one assessment and the draft lumbar imaging orders to CDS Hooks cards and
``systemActions``: one card per order, and one PAMA rating update per order that can be rated.

What the assessment says about an order (``Verdict``):

* ``matches``: the order is for a procedure the assessment recommends (the procedure,
  another recommended one, or an alternative) with the priority of the recommended urgency;
* ``different-study``: a procedure is recommended, and the order is for another one (the
  contrast variant, CT myelography instead of MRI, another modality);
* ``different-urgency``: the order is for a recommended procedure with another priority
  (FHIR: a missing priority is routine);
* ``undetermined``: no procedure is recommended, and questions remain whose answers could
  meet an imaging criterion (the outcome "more information needed"): whether the order is
  indicated cannot be decided yet, and the card lists the questions;
* ``not-indicated``: no procedure is recommended and nothing unknown could change that (no
  imaging; a red flag or an abnormal result that no criterion acts on; a first-line pathway
  complete with normal results; a case outside the criteria's scope, whose criteria met are
  not applied);
* ``not-assessed``: the patient data was read but the case is invalid (the case shapes'
  errors are listed); ``ambiguous``: the order's codings name several procedures.

The card is ``info`` for ``matches`` and ``warning`` otherwise, raised to the indicator the
deciding urgency carries in the ontology: the recommended urgency, for ``undetermined``
that of the most urgent criterion a question could meet, and for ``not-indicated`` that of
the most urgent criterion met but not applied (an emergent recommendation, an undetermined
emergent criterion, or an emergent criterion met in a case outside the scope makes it
``critical``). A ``different-*`` card suggests replacing the order: delete it, create a
ServiceRequest for the recommended procedure (codes from the ontology) with the recommended
priority (rated only when it is imaging: PAMA rates imaging). The PAMA rating comes from the
outcome in the ontology: its rating for an order of a recommended procedure, or for any
other order; ``not-assessed`` and ``ambiguous`` orders, and outcomes without a rating (more
information needed has none: the Argonaut guide lets a service without enough information
give no rating), get none (and no systemAction). See docs/cds-hooks.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ...fhir.ordering import CdsKnowledge
from ...pipeline.explain import CaseResult, Vocabulary
from .actions import OrderActions
from .detail import DetailWriter, count, md
from .orders import DraftOrder, ImagingProcedures

INDICATORS = ("info", "warning", "critical")  # CDS Hooks: in order of increasing urgency
SUMMARY_LIMIT = 140
SERVICE_LABEL = "lbp-imaging criteria"


@dataclass(frozen=True)
class Verdict:
    """What the assessment says about one order, and the order it would put instead."""

    kind: str
    target: str | None = None  # the procedure to order instead (different-study/-urgency)


class CardWriter:
    """Cards, suggestions and rating updates for the orders of one hook call."""

    def __init__(self, vocab: Vocabulary, knowledge: CdsKnowledge, procedures: ImagingProcedures):
        self.vocab, self.knowledge = vocab, knowledge
        self.details = DetailWriter(vocab)
        self.actions = OrderActions(vocab, knowledge, procedures)

    def response(
        self,
        result: CaseResult,
        orders: list[DraftOrder],
        hook_instance: str,
        form_link: Callable[[], str] | None = None,
    ) -> dict:
        """The CDS Hooks response: a card per order, a ``systemActions`` update per rated order.
        An undetermined order's card links to the form that asks its questions when
        ``form_link`` gives its URL (called once, only if some order is undetermined)."""
        cards, actions = [], []
        url: str | None = None
        for order in orders:
            verdict = self.verdict(result, order)
            cards.append(self.card(result, order, verdict, hook_instance))
            if verdict.kind == "undetermined" and form_link is not None:
                url = url or form_link()
                cards[-1]["links"] = [self.form_link(result, url)]
            rating = self.rating(result, order, verdict)
            if rating:
                actions.append(
                    {
                        "type": "update",
                        "description": f"Record the PAMA rating '{rating}' on the draft order",
                        "resource": self.actions.rated(result, order.resource, rating, hook_instance),
                    }
                )
        return {"cards": cards, "systemActions": actions} if actions else {"cards": cards}

    # -- the decision -----------------------------------------------------------------
    def verdict(self, result: CaseResult, order: DraftOrder) -> Verdict:
        if result.status != "assessed":
            return Verdict("not-assessed")
        if order.procedure is None:
            return Verdict("ambiguous")
        procedure = (result.recommendation or {}).get("procedure")
        if procedure is None:
            return Verdict("undetermined" if result.questions else "not-indicated")
        if order.procedure not in _recommended(result):
            return Verdict("different-study", procedure["iri"])
        wanted = self.priority(result)
        if wanted is not None and order.priority != wanted:
            return Verdict("different-urgency", order.procedure)
        return Verdict("matches")

    def priority(self, result: CaseResult) -> str | None:
        urgency = (result.recommendation or {}).get("urgency")
        return self.knowledge.priorities.get(urgency["iri"]) if urgency else None

    def indicator(self, result: CaseResult, verdict: Verdict) -> str:
        found = "info" if verdict.kind == "matches" else "warning"
        urgency = self.deciding_urgency(result, verdict)
        raised = self.knowledge.indicators.get(urgency, found) if urgency else found
        return max(found, raised, key=INDICATORS.index)

    def deciding_urgency(self, result: CaseResult, verdict: Verdict) -> str | None:
        """The urgency (IRI) the card's indicator follows: the recommended one; for an
        undetermined order, that of the most urgent criterion a question could meet, since
        the answer could call for imaging that urgent; for an order no criterion supports,
        that of the most urgent criterion the case meets without its being applied (outside
        the criteria's scope, say). Neither an undetermined nor an unapplied emergent
        criterion may hide behind a mere warning."""
        if verdict.kind == "undetermined":
            return self.most_urgent([c for q in result.questions for c in q["criteria"]])
        if verdict.kind == "not-indicated":
            return self.most_urgent(result.criteria)
        urgency = (result.recommendation or {}).get("urgency")
        return urgency["iri"] if urgency else None

    def most_urgent(self, criteria: list[dict]) -> str | None:
        """The urgency (IRI) of the most urgent of ``criteria`` that has one."""
        urgent = [c for c in criteria if c.get("urgency")]
        if not urgent:
            return None
        return max(urgent, key=lambda c: self.vocab.rank_of(c["iri"]))["urgency"]["iri"]

    def rating(self, result: CaseResult, order: DraftOrder, verdict: Verdict) -> str | None:
        """The order's PAMA rating code, or ``None`` (no rating, no systemAction): for an
        invalid case, an ambiguous order, and whenever the outcome states no rating for the
        order (more information needed states none: not rated without enough information)."""
        if verdict.kind in ("not-assessed", "ambiguous"):
            return None
        outcome = (result.outcome or {}).get("iri")
        return self.knowledge.rating(outcome, order.procedure in _recommended(result))

    @staticmethod
    def form_link(result: CaseResult, url: str) -> dict:
        """A CDS Hooks link (``absolute``: a web page the EHR opens) to the form pre-filled
        with the patient's data, where answering the questions assesses the order again."""
        asked = count(len(result.questions), "question")
        return {
            "label": f"Answer the {asked} in a form pre-filled for this patient",
            "url": url,
            "type": "absolute",
        }

    # -- the card -----------------------------------------------------------------------
    def card(self, result: CaseResult, order: DraftOrder, verdict: Verdict, hook_instance: str) -> dict:
        summary, headline = self.texts(result, order, verdict)
        statements = self.statements(result, verdict)
        card = {
            "uuid": str(uuid.uuid4()),
            "summary": _short(summary),
            "indicator": self.indicator(result, verdict),
            "detail": self.details.write(headline, result, statements),
            "source": self.source(statements),
            "overrideReasons": [dict(r) for r in self.knowledge.override_reasons],
        }
        if verdict.target is not None:
            priority = self.priority(result)
            card["suggestions"] = [
                self.actions.replacement(result, order, verdict.target, priority, hook_instance)
            ]
            card["selectionBehavior"] = "at-most-one"
        return card

    def texts(self, result: CaseResult, order: DraftOrder, verdict: Verdict) -> tuple[str, str]:
        """The summary (plain text) and the detail's headline (Markdown) for the verdict."""
        label = self.vocab.label
        ordered = ", ".join(label(p) for p in order.procedures)
        rec = result.recommendation or {}
        urgency = rec["urgency"]["label"] if rec.get("urgency") else ""
        wanted = self.priority(result) or "not stated in the ontology"
        this = f"this order ({md(ordered)}, priority {md(order.priority)})"
        if verdict.kind == "matches":
            procedure = label(order.procedure)
            return (
                f"{urgency.capitalize()}: {procedure} is indicated; this order matches",
                f"**{md(procedure)} is indicated, {md(urgency)} (priority {md(wanted)}), "
                f"and {this} matches.**",
            )
        if verdict.kind in ("different-study", "different-urgency"):
            target = label(verdict.target)
            summary = (
                f"{urgency.capitalize()}: {target} is indicated instead of {ordered}"
                if verdict.kind == "different-study"
                else f"{urgency.capitalize()}: {target} is indicated with priority {wanted}, "
                f"not {order.priority}"
            )
            return summary, (
                f"**{md(target)} is indicated, {md(urgency)} (priority {md(wanted)}); {this} differs.** "
                "The suggestion replaces the draft order with it; override with a reason to keep the order."
            )
        if verdict.kind == "undetermined":
            return self.undetermined_texts(result, order, this)
        if verdict.kind == "not-indicated":
            return self.not_indicated_texts(result, ordered, this)
        if verdict.kind == "ambiguous":
            return (
                f"This order's codes name {len(order.procedures)} different lumbar studies; it is not rated",
                f"**The codes of {this} name different studies, so it is not rated:** code the order "
                "for one study.",
            )
        return (
            "The patient data could not be assessed; this order is not rated",
            f"**The patient data could not be assessed, so {this} is not rated.** Correct the record: "
            "the advice follows once the data can be assessed.",
        )

    def not_indicated_texts(self, result: CaseResult, ordered: str, this: str) -> tuple[str, str]:
        """Summary and headline of an order no criterion supports: the outcome and why. When
        the case meets a criterion that the outcome does not apply (a completed first-line
        pathway, a case outside the scope), "no criterion supports" would be untrue: there is
        no recommendation for the order."""
        outcome = result.outcome or {}
        if any(c["kind"] == "criterion" for c in result.criteria):
            summary = headline = "No recommendation for"
        else:
            summary, headline = "No criterion supports", "No imaging criterion supports"
        return (
            f"{summary} {ordered}: {outcome.get('label')}",
            f"**{headline} {this}: {md(outcome.get('label'))}.** "
            f"{self.details.definition(outcome['iri']) if outcome else ''}",
        )

    def undetermined_texts(self, result: CaseResult, order: DraftOrder, this: str) -> tuple[str, str]:
        """Summary and headline of an order whose indication cannot be decided yet: how many
        questions could decide it (listed in the detail), and whether it is rated."""
        outcome = result.outcome or {}
        asked = count(len(result.questions), "question")
        ordered = ", ".join(self.vocab.label(p) for p in order.procedures)
        rated = self.rating(result, order, Verdict("undetermined"))
        unrated = "" if rated else " It is not rated until they are answered."
        return (
            f"{str(outcome.get('label')).capitalize()}: {asked} could decide whether {ordered} is indicated",
            f"**Whether {this} is indicated cannot be decided yet: {md(outcome.get('label'))}. "
            f"Ask the {asked} below.**{unrated} "
            f"{self.details.definition(outcome['iri']) if outcome else ''}",
        )

    def statements(self, result: CaseResult, verdict: Verdict) -> list[str]:
        """The statements the advice rests on, first first: for a different study those of
        the procedure to order instead, then those of the selected criteria, rules and outcome."""
        found = dict.fromkeys(self.vocab.sources(verdict.target) if verdict.kind == "different-study" else ())
        if result.status == "assessed":
            found.update(dict.fromkeys(_cited_statements(result)))
        return list(found)

    def source(self, statements: list[str]) -> dict:
        """The card's source: the first statement the advice rests on, by its IRI (which the
        server dereferences), labelled with its document."""
        if not statements:
            return {"label": SERVICE_LABEL}
        iri = statements[0]
        document = (self.vocab.statement(iri).get("document") or {}).get("title", "")
        return {"label": f"{SERVICE_LABEL}: {document}, statement {iri.rsplit('/', 1)[-1]}", "url": iri}


def _cited_statements(result: CaseResult) -> list[str]:
    """The statements behind the advice, in order: those of the selected criteria and rules,
    then the outcome's. (Outranked criteria are listed, but their sources are not quoted.)"""
    found: dict[str, None] = {}
    for criterion in result.criteria:
        if criterion["selected"]:
            found.update(dict.fromkeys(criterion["sources"]))
    found.update(dict.fromkeys((result.outcome or {}).get("sources", [])))
    return list(found)


def _recommended(result: CaseResult) -> set[str]:
    """The procedures the assessment recommends: the procedure, the others recommended with
    it, and the alternatives its criteria offer."""
    rec = result.recommendation or {}
    found = [rec.get("procedure"), *rec.get("alsoRecommended", []), *rec.get("alternatives", [])]
    return {p["iri"] for p in found if p}


def _short(summary: str) -> str:
    """CDS Hooks asks for a summary under 140 characters: labels from the ontology can be long."""
    return summary if len(summary) < SUMMARY_LIMIT else summary[: SUMMARY_LIMIT - 2].rstrip() + "…"
