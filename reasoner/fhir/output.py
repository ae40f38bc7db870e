"""Assessment results as FHIR R4: a collection Bundle with, per case, a GuidanceResponse.

Why a GuidanceResponse: it is FHIR's resource for "the result of evaluating a decision
support module for a subject", and its status says the three-valued decision as FHIR
means it: ``data-required`` when no criterion is met and answers are needed to decide
(more information needed), ``data-requested`` when a decision was made that answers could
still change (a more urgent criterion, another procedure), ``success`` when nothing could
change it, ``failure`` for an invalid case. Each question is one ``dataRequirement``,
typed by the resource that would carry the answer as the FHIR input reads it and filtered
on every code the input reads for the fact asked about. The proposal itself is a
RequestGroup (R4's name for R5's RequestOrchestration) whose actions hold draft
ServiceRequests with the procedure codes and cite the verbatim source statements as
``documentation``; a CarePlan would claim a plan of care, which decision support does not
make. A ServiceRequest carries the priority and the Argonaut PAMA rating the CDS Hooks
cards give an order for it (the same ontology data, read by the same code), and its
reasons coded from the criteria that selected it.

Per assessed case the bundle holds: the Patient (when the case came from a FHIR bundle),
the GuidanceResponse, a Parameters resource with everything the JSON output says
(outcome, criteria with their facts, the state of every criterion, the questions, red
flags, sources with their quotes, warnings, the disclaimer), an OperationOutcome with the
warnings, and, when imaging is indicated, the RequestGroup and its ServiceRequests. An
invalid case gets a GuidanceResponse with status ``failure`` and an OperationOutcome with
its errors. The resources are valid against the ``fhir.resources`` R4B models (tested);
see docs/fhir-mapping.md.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import orjson

from .. import DISCLAIMER
from ..knowledge import LBP
from ..pipeline.explain import CaseResult
from .mapping import ANSWER_ELEMENT, FhirMapping
from .ordering import pama_extensions

if TYPE_CHECKING:
    from .read import FhirCase

URI_SYSTEM = "urn:ietf:rfc:3986"  # identifier system for a value that is a URI
UCUM_SYSTEM = "http://unitsofmeasure.org"
MODULE = str(LBP) + "ontology"
PRESENCE = "presence"  # a question's "asks": is the finding present? (else "value")
CODE_ELEMENT = {"MedicationStatement": "medication"}  # the coded element, where it is not ``code``


def to_fhir(
    results: Sequence[CaseResult],
    statements: Mapping[str, dict],
    mapping: FhirMapping,
    *,
    inputs: Mapping[str, FhirCase] | None = None,
    input_errors: Sequence[object] = (),
    module: str = MODULE,
    generated: str | None = None,
) -> dict:
    """A collection Bundle (JSON as a dict) with one GuidanceResponse per case.

    ``statements`` are the run's cited statements (``AssessmentRun.statements``), for
    quotes; ``inputs`` the FhirCase of each case read from a FHIR bundle, by case IRI (its
    Patient is included and referenced, its warnings reported); ``input_errors`` the files
    that could not be read (one OperationOutcome lists them, after the cases: streamed, they
    are known at the end); ``module`` the knowledge base's ontology IRI; ``generated`` the
    timestamp written everywhere (default now).
    ``assess --format fhir`` writes the same bundle streamed (``bundle_opening``,
    ``case_entries`` per batch, ``input_errors_entry`` and ``bundle_closing``)."""
    when = generated or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    entries = case_entries(results, statements, mapping, inputs or {}, module, when)
    entries += [input_errors_entry(input_errors, when)] if input_errors else []
    return {
        "resourceType": "Bundle",
        "id": bundle_id(when, len(results)),
        "type": "collection",
        "timestamp": when,
        "entry": entries,
    }


def case_entries(
    results: Sequence[CaseResult],
    statements: Mapping[str, dict],
    mapping: FhirMapping,
    inputs: Mapping[str, FhirCase],
    module: str,
    when: str,
) -> list[dict]:
    """The bundle entries of each case (see the module's docstring), in the order of
    ``results``."""
    entries: list[dict] = []
    for result in results:
        entries += _CaseEntries(result, statements, mapping, inputs.get(result.case), module, when).entries()
    return entries


def input_errors_entry(input_errors: Sequence[object], when: str) -> dict:
    """One OperationOutcome listing the files (or cases) that could not be read."""
    return _entry(
        _ids("input-errors", when),
        _outcome_resource([_issue("error", "invalid", str(e)) for e in input_errors]),
    )


def bundle_id(when: str, cases: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lbp-imaging|{when}|{cases}"))


def bundle_opening(when: str) -> bytes:
    """The start of a streamed Bundle, up to the opening of its ``entry`` array: the id,
    which counts the cases, comes last (``bundle_closing``)."""
    head = _json({"resourceType": "Bundle", "type": "collection", "timestamp": when})
    return head.removesuffix(b"\n}") + b',\n  "entry": [\n'


def bundle_entries(entries: list[dict]) -> bytes:
    """Entries as the items of the ``entry`` array, indented as in the bundle and separated
    by commas."""
    return b",\n".join(b"    " + _json(e).replace(b"\n", b"\n    ") for e in entries)


def bundle_closing(when: str, cases: int) -> bytes:
    return b'\n  ],\n  "id": ' + _json(bundle_id(when, cases)) + b"\n}\n"


def _json(value: object) -> bytes:
    """``value`` as JSON indented by two spaces; with the standard library where orjson
    refuses (an input Patient's integer beyond 64 bits, or a lone surrogate in a string,
    which is escaped)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2)
    except orjson.JSONEncodeError:
        return json.dumps(value, indent=2).encode("ascii")


def _ids(key: str, when: str) -> tuple[str, str]:
    """A stable resource id and its ``urn:uuid`` fullUrl."""
    rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}|{when}"))
    return rid, f"urn:uuid:{rid}"


def _entry(ids: tuple[str, str], resource: dict) -> dict:
    return {"fullUrl": ids[1], "resource": {"id": ids[0], **resource}}


def _issue(severity: str, code: str, text: str) -> dict:
    return {"severity": severity, "code": code, "diagnostics": text}


def _outcome_resource(issues: list[dict]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": issues}


def _concept(text: str, codes: Sequence[dict] = ()) -> dict:
    coding = [{"system": c["system"], "code": c["code"]} for c in codes]
    return {"coding": coding, "text": text} if coding else {"text": text}


def _value(value: dict) -> dict:
    """A fact's value as a Parameters value[x]: an IRI, or a literal by its JSON type."""
    if "iri" in value:
        return {"valueUri": value["iri"]}
    v = value["value"]
    if isinstance(v, bool):
        return {"valueBoolean": v}
    if isinstance(v, int):
        return {"valueInteger": v}
    if isinstance(v, float):
        return {"valueDecimal": v}
    return {"valueString": str(v)}


def _named(name: str, ref: dict) -> dict:
    """A parameter for an ontology term: its IRI and label as parts."""
    return {
        "name": name,
        "part": [{"name": "iri", "valueUri": ref["iri"]}, {"name": "label", "valueString": ref["label"]}],
    }


def _parts(ref: dict) -> list[dict]:
    """An ontology term as parts: its IRI, and its label when there is one."""
    parts = [{"name": "iri", "valueUri": ref["iri"]}]
    return parts + ([{"name": "label", "valueString": ref["label"]}] if ref.get("label") else [])


def answer_resource(mapping: FhirMapping, question: dict) -> str:
    """The FHIR resource type that would carry the answer to ``question``, as the FHIR
    input reads it. Every answer must be expressible in it, present or absent, true or
    false, or a value, so Procedure and Device (which record only that something exists)
    are never given. The ontology names the type where records keep the fact in a
    resource of their own (``lbp:fhirResourceType``: a MedicationStatement for a
    medication use, taken or not-taken). Otherwise: a value is read from an Observation's
    value; a finding coded in a standard terminology is asked as a Condition, where
    records keep such findings (a refuted one is absent); a finding with only the
    project's code is a case fact that is recorded in answer to a question, as an
    Observation with valueBoolean (as the example bundles do). (The mapping refuses a type
    named in the ontology that cannot say every answer.)"""
    about = question["about"]["iri"]
    given = mapping.answer_resources.get(about)
    if given is not None:
        return given
    standard = any(c["system"] != mapping.own_system for c in mapping.read_codings(about))
    return (
        "Condition"
        if question["asks"] == PRESENCE and about in mapping.findings and standard
        else "Observation"
    )


def _needs(needs: dict, unit: str | None) -> list[dict]:
    """What a criterion needs of the answer, as typed parts (see docs/fhir-mapping.md): a
    bound of a range is a Quantity with its comparator and the question's UCUM unit."""
    if "range" in needs:
        return [
            {"name": "range", "valueQuantity": _quantity(bound["value"], unit, bound["op"])}
            for bound in needs["range"]
        ]
    ((kind, value),) = needs.items()
    if isinstance(value, dict):
        return [{"name": kind, "valueUri": value["iri"]}]
    return [{"name": kind, **_value({"value": value})}]


def _quantity(value: float, unit: str | None, comparator: str) -> dict:
    quantity = {"value": value, "comparator": comparator}
    return quantity | ({"unit": unit, "system": UCUM_SYSTEM, "code": unit} if unit else {})


class _CaseEntries:
    """The bundle entries for one case."""

    def __init__(
        self,
        result: CaseResult,
        statements: Mapping[str, dict],
        mapping: FhirMapping,
        case_input: FhirCase | None,
        module: str,
        when: str,
    ):
        self.r, self.statements, self.mapping, self.input = result, statements, mapping, case_input
        self.module, self.when = module, when

    def ids(self, role: str) -> tuple[str, str]:
        return _ids(f"{self.r.case}|{role}", self.when)

    @property
    def subject(self) -> dict:
        """The Patient read from FHIR, else a logical reference by the case IRI."""
        if self.input is not None:
            return {"reference": self.input.patient_full_url}
        return {
            "identifier": {"system": URI_SYSTEM, "value": self.r.case},
            "display": f"patient case {self.r.case}",
        }

    def entries(self) -> list[dict]:
        found = []
        if self.input is not None:
            found.append({"fullUrl": self.input.patient_full_url, "resource": self.input.patient})
        guidance = self.guidance()
        messages = self.messages()
        if messages:
            found.append(_entry(self.ids("messages"), _outcome_resource(messages)))
            guidance["evaluationMessage"] = [{"reference": self.ids("messages")[1]}]
        if self.r.status == "assessed":
            found.append(_entry(self.ids("parameters"), self.parameters()))
            guidance["outputParameters"] = {"reference": self.ids("parameters")[1]}
            proposals = self.proposals()
            if proposals:
                found += proposals
                guidance["result"] = {"reference": self.ids("request-group")[1]}
        return [_entry(self.ids("guidance"), guidance), *found]

    # -- GuidanceResponse -------------------------------------------------------------------
    def guidance(self) -> dict:
        r = self.r
        resource = {
            "resourceType": "GuidanceResponse",
            "identifier": [{"system": URI_SYSTEM, "value": r.case}],
            "moduleUri": self.module,
            "status": self.status(),
            "subject": self.subject,
            "occurrenceDateTime": self.when,
            "note": [{"text": DISCLAIMER}],
        }
        if r.status != "assessed":
            return resource
        reasons = [_concept(c["label"]) for c in self.reasons()]
        if reasons:
            resource["reasonCode"] = reasons
        if r.outcome:
            resource["note"].insert(0, {"text": self.summary()})
        if r.questions:
            resource["dataRequirement"] = [self.requirement(q) for q in r.questions]
        return resource

    def reasons(self) -> list[dict]:
        """What decided the outcome: the selected criteria (or the no-imaging concept). A
        selected rule only modifies the procedure a criterion indicated, so it is no reason;
        but when no criterion decided the outcome, a selected rule did (a scope exclusion, a
        completed pathway, an abnormal result without criterion), and it is the reason."""
        selected = [c for c in self.r.criteria if c["selected"]]
        return [c for c in selected if c["kind"] != "rule"] or selected

    def status(self) -> str:
        """``failure`` for an invalid case; the status the ontology gives the outcome
        (``lbp:guidanceResponseStatus``: ``data-required`` for more information needed, no
        criterion met and answers needed to decide); otherwise a decision was made:
        ``data-requested`` when questions could still change it (a more urgent criterion,
        another procedure), ``success`` when nothing could."""
        if self.r.status != "assessed":
            return "failure"
        given = self.mapping.guidance_status.get((self.r.outcome or {}).get("iri", ""))
        return given or ("data-requested" if self.r.questions else "success")

    def summary(self) -> str:
        """The outcome, the procedure and urgency when there is one, and how many questions
        there are to ask."""
        rec = self.r.recommendation or {}
        details = [rec[k]["label"] for k in ("procedure", "urgency") if rec.get(k)]
        text = self.r.outcome["label"] + (f": {', '.join(details)}" if details else "")
        n = len(self.r.questions)
        return text + (f"; {n} question{'s' if n > 1 else ''} to ask" if n else "")

    def requirement(self, question: dict) -> dict:
        """A question as the data that would answer it: the resource type the FHIR input
        reads the answer from, the element that says it, and every code the input reads as
        the fact asked about. What the answer must be is in the output parameters
        (``question``, in the same order)."""
        kind = answer_resource(self.mapping, question)
        requirement: dict = {"type": kind, "mustSupport": [ANSWER_ELEMENT[kind]]}
        codes = self.mapping.read_codings(question["about"]["iri"])
        if codes:
            requirement["codeFilter"] = [{"path": CODE_ELEMENT.get(kind, "code"), "code": list(codes)}]
        return requirement

    def messages(self) -> list[dict]:
        read = self.input.warnings if self.input else []
        issues = [_issue("warning", "informational", w) for w in read]
        issues += [_issue("information", "informational", w) for w in self.r.warnings if w not in read]
        issues += [_issue("error", "invalid", line) for line in self.r.error_lines()]
        return issues

    # -- Parameters ------------------------------------------------------------------------
    def parameters(self) -> dict:
        r, rec = self.r, self.r.recommendation or {}
        params = [_named("outcome", r.outcome)] if r.outcome else []
        for key in ("procedure", "urgency", "appropriateness"):
            if rec.get(key):
                params.append(_named(key, rec[key]))
        params += [_named("alsoRecommended", p) for p in rec.get("alsoRecommended", [])]
        params += [_named("alternative", p) for p in rec.get("alternatives", [])]
        params += [self.criterion(c) for c in r.criteria]
        params += [_named("presentRedFlag", f) for f in r.red_flags.get("present", [])]
        params += [_named("unassessedRedFlag", f) for f in r.red_flags.get("unassessed", [])]
        labels = self.criterion_labels()
        params += [
            {
                "name": "criterionState",
                "part": [
                    *_parts({"iri": iri, "label": labels.get(iri)}),
                    {"name": "state", "valueCode": state},
                ],
            }
            for iri, state in r.criterion_states.items()
        ]
        params += [self.question(q) for q in r.questions]
        params += [{"name": "source", "valueRelatedArtifact": self.artifact(s)} for s in r.sources]
        params += [{"name": "warning", "valueString": w} for w in r.warnings]
        params.append({"name": "disclaimer", "valueString": DISCLAIMER})
        return {"resourceType": "Parameters", "parameter": params}

    def criterion(self, c: dict) -> dict:
        parts = [
            {"name": "iri", "valueUri": c["iri"]},
            {"name": "label", "valueString": c["label"]},
            {"name": "kind", "valueCode": c["kind"]},
            {"name": "selected", "valueBoolean": c["selected"]},
        ]
        for fact in c["facts"]:
            parts.append(
                {
                    "name": "fact",
                    "part": [
                        {"name": "property", "valueUri": fact["property"]["iri"]},
                        {"name": "value", **_value(fact["value"])},
                    ],
                }
            )
        parts += [{"name": "source", "valueUri": s} for s in c["sources"]]
        return {"name": "criterion", "part": parts}

    def criterion_labels(self) -> dict[str, str]:
        """The labels of the criteria the result names (met, or met by a question's answer);
        the states of the others are given by IRI, as in the JSON output."""
        named = [*self.r.criteria, *(c for q in self.r.questions for c in q["criteria"])]
        return {c["iri"]: c["label"] for c in named}

    def question(self, q: dict) -> dict:
        """A question as the JSON output gives it: what it asks, about which fact (with the
        codes that record it), the property and unit, what it suggests, and per criterion
        the effect an answer could have and what the criterion needs of it."""
        about = _parts(q["about"]) + [
            {"name": "code", "valueCoding": {"system": c["system"], "code": c["code"]}}
            for c in q["about"]["codes"]
        ]
        parts = [{"name": "asks", "valueCode": q["asks"]}, {"name": "about", "part": about}]
        if q["property"]:
            parts.append({"name": "property", "part": _parts(q["property"])})
        if q["unit"]:
            parts.append({"name": "unit", "valueCode": q["unit"]})
        parts.append({"name": "suggests", "part": _parts(q["suggests"])})
        for c in q["criteria"]:
            criterion = _parts(c)
            if c["urgency"]:
                criterion.append({"name": "urgency", "part": _parts(c["urgency"])})
            criterion.append({"name": "effect", "valueCode": c["effect"]})
            criterion.append({"name": "needs", "part": _needs(c["needs"], q["unit"])})
            parts.append({"name": "criterion", "part": criterion})
        return {"name": "question", "part": parts}

    def artifact(self, iri: str) -> dict:
        """A source statement as a RelatedArtifact: its IRI, verbatim quote and document."""
        statement = self.statements.get(iri, {})
        document = (statement.get("document") or {}).get("title")
        artifact = {"type": "justification", "label": iri.rsplit("/", 1)[-1], "url": iri}
        if statement.get("quote"):
            artifact["citation"] = f"\u201c{statement['quote']}\u201d" + (
                f" ({document})" if document else ""
            )
        if document:
            artifact["display"] = document
        return artifact

    # -- RequestGroup and ServiceRequests ----------------------------------------------------
    def proposals(self) -> list[dict]:
        """The RequestGroup and its draft ServiceRequests, when a procedure is recommended."""
        rec = self.r.recommendation or {}
        if not rec.get("procedure"):
            return []
        requests = [self.request("procedure", rec["procedure"])]
        requests += [self.request(f"also-{i}", p) for i, p in enumerate(rec.get("alsoRecommended", []))]
        alternatives = [
            self.request(f"alternative-{i}", p) for i, p in enumerate(rec.get("alternatives", []))
        ]
        documentation = [self.artifact(s) for s in self.r.sources]
        actions = [self.action(entry, documentation) for entry in requests]
        if alternatives:  # the procedure or one of its alternatives: exactly one
            first = {
                "title": f"{rec['procedure']['label']} or an alternative",
                "selectionBehavior": "exactly-one",
                "action": [actions[0], *[self.action(e, documentation) for e in alternatives]],
            }
            actions = [first, *actions[1:]]
        group = {
            "resourceType": "RequestGroup",
            "status": "draft",
            "intent": "proposal",
            "subject": self.subject,
            "authoredOn": self.when,
            "code": _concept(self.r.outcome["label"]),
            "note": [{"text": self.summary()}, {"text": DISCLAIMER}],
            "action": actions,
        }
        return [_entry(self.ids("request-group"), group), *requests, *alternatives]

    def request(self, role: str, procedure: dict) -> dict:
        """A draft ServiceRequest for a recommended procedure: the priority of the recommended
        urgency and, for an imaging study, the PAMA rating, both as the CDS Hooks cards give
        them (``FhirMapping.orders``); the reasons coded from the criteria that selected it."""
        urgency = (self.r.recommendation or {}).get("urgency")
        priority = self.mapping.orders.priorities.get(urgency["iri"]) if urgency else None
        resource = {
            "resourceType": "ServiceRequest",
            **({"extension": rating} if (rating := self.rating(procedure)) else {}),
            "status": "draft",
            "intent": "proposal",
            **({"priority": priority} if priority else {}),
            "code": _concept(procedure["label"], procedure.get("codes", [])),
            "subject": self.subject,
            "authoredOn": self.when,
            "note": [{"text": f"Urgency: {urgency['label']}."}] if urgency else [],
        }
        reasons = self.request_reasons()
        if reasons:
            resource["reasonCode"] = reasons
        resource["note"].append({"text": DISCLAIMER})
        return _entry(self.ids(role), resource)

    def rating(self, procedure: dict) -> list[dict]:
        """The Argonaut PAMA extensions of an order for a recommended ``procedure``, as the
        CDS Hooks service puts them on a draft order: the outcome's rating for an indicated
        order, the consultation (this GuidanceResponse) and the criterion applied. None for
        what is not imaging (PAMA rates imaging), nor when the outcome states no rating:
        the Argonaut guide gives no rating while the decision is not complete."""
        outcome = (self.r.outcome or {}).get("iri")
        rating = self.mapping.orders.rating(outcome, indicated=True)
        if rating is None or procedure["iri"] not in self.mapping.imaging_procedures:
            return []
        return pama_extensions(rating, self.ids("guidance")[1], self.r.criteria)

    def request_reasons(self) -> list[dict]:
        """Why the procedure is proposed: each selected criterion (its label, and its codes
        when the ontology maps it), then each finding that met one, coded with its output
        mappings (``FhirMapping.codings``: exact and close matches). The condition a
        criterion suspects is not coded: its diagnosis code would state the diagnosis."""
        selected = [c for c in self.r.criteria if c["selected"] and c["kind"] == "criterion"]
        reasons = [_concept(c["label"], self.mapping.codings.get(c["iri"], ())) for c in selected]
        found = dict.fromkeys(
            f["value"]["iri"]
            for c in selected
            for f in c["facts"]
            if f["property"]["iri"] == str(LBP.hasFinding) and f["value"].get("iri") in self.mapping.codings
        )
        return reasons + [_concept(self.mapping.label(f), self.mapping.codings[f]) for f in found]

    def action(self, request_entry: dict, documentation: list[dict]) -> dict:
        request = request_entry["resource"]
        return {
            "title": request["code"]["text"],
            "description": " ".join(n["text"] for n in request["note"]),
            "documentation": documentation,
            "resource": {"reference": request_entry["fullUrl"]},
        }
