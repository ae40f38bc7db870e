"""Assessment results as FHIR R4: a collection Bundle with, per case, a GuidanceResponse.

Why a GuidanceResponse: it is FHIR's resource for "the result of evaluating a decision
support module for a subject", with a status that can say "data-required" (red-flag
screening incomplete, and the unassessed red flags as ``dataRequirement``), evaluation
messages, output parameters and a proposed result. The proposal itself is a RequestGroup
(R4's name for R5's RequestOrchestration) whose actions hold draft ServiceRequests with
the procedure codes and cite the verbatim source statements as ``documentation``; a
CarePlan would claim a plan of care, which decision support does not make.

Per assessed case the bundle holds: the Patient (when the case came from a FHIR bundle),
the GuidanceResponse, a Parameters resource with everything the JSON output says
(outcome, criteria with their facts, red flags, sources with their quotes, warnings,
the disclaimer), an OperationOutcome with the warnings, and, when imaging is indicated,
the RequestGroup and its ServiceRequests. An invalid case gets a GuidanceResponse with
status ``failure`` and an OperationOutcome with its errors. The resources are valid
against the ``fhir.resources`` R4B models (tested); see docs/fhir-mapping.md.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence

from . import DISCLAIMER
from .explain import CaseResult
from .fhir_input import FhirCase
from .fhir_mapping import FhirMapping
from .knowledge import LBP

URI_SYSTEM = "urn:ietf:rfc:3986"  # identifier system for a value that is a URI
MODULE = str(LBP) + "ontology"


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
    that could not be read (one OperationOutcome lists them); ``module`` the knowledge
    base's ontology IRI; ``generated`` the timestamp written everywhere (default now)."""
    when = generated or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    entries: list[dict] = []
    if input_errors:
        entries.append(
            _entry(
                _ids("input-errors", when),
                _outcome_resource([_issue("error", "invalid", str(e)) for e in input_errors]),
            )
        )
    for result in results:
        case_input = (inputs or {}).get(result.case)
        entries += _CaseEntries(result, statements, mapping, case_input, module, when).entries()
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lbp-imaging|{when}|{len(results)}")),
        "type": "collection",
        "timestamp": when,
        "entry": entries,
    }


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
        reasons = [_concept(c["label"]) for c in r.criteria if c["selected"] and c["kind"] != "rule"]
        if reasons:
            resource["reasonCode"] = reasons
        if r.outcome:
            resource["note"].insert(0, {"text": self.summary()})
        requirements = [self.requirement(flag) for flag in r.red_flags.get("unassessed", [])]
        if requirements:
            resource["dataRequirement"] = requirements
        return resource

    def status(self) -> str:
        """``failure`` for an invalid case; ``data-required`` when nothing is recommended and
        red flags are unassessed (asking about them could change the answer)."""
        if self.r.status != "assessed":
            return "failure"
        procedure = (self.r.recommendation or {}).get("procedure")
        return (
            "data-required"
            if procedure is None and not self.r.red_flags.get("screeningComplete")
            else "success"
        )

    def summary(self) -> str:
        """The outcome, and the procedure and urgency when there is one."""
        rec = self.r.recommendation or {}
        details = [rec[k]["label"] for k in ("procedure", "urgency") if rec.get(k)]
        return self.r.outcome["label"] + (f": {', '.join(details)}" if details else "")

    def requirement(self, flag: dict) -> dict:
        """An unassessed red flag as the data that would answer it: an Observation (a
        Condition answers too; see docs) coded with the flag's codes. Its label is in the
        output parameters (``unassessedRedFlag``)."""
        codes = [
            {"system": c["system"], "code": c["code"]} for c in self.mapping.codings.get(flag["iri"], ())
        ]
        requirement: dict = {"type": "Observation"}
        if codes:
            requirement["codeFilter"] = [{"path": "code", "code": codes}]
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
        params.append(
            {"name": "screeningComplete", "valueBoolean": bool(r.red_flags.get("screeningComplete"))}
        )
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
        urgency = (self.r.recommendation or {}).get("urgency")
        reasons = [
            _concept(c["label"]) for c in self.r.criteria if c["selected"] and c["kind"] == "criterion"
        ]
        resource = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "proposal",
            "code": _concept(procedure["label"], procedure.get("codes", [])),
            "subject": self.subject,
            "authoredOn": self.when,
            "note": [{"text": f"Urgency: {urgency['label']}."}] if urgency else [],
        }
        if reasons:
            resource["reasonCode"] = reasons
        resource["note"].append({"text": DISCLAIMER})
        return _entry(self.ids(role), resource)

    def action(self, request_entry: dict, documentation: list[dict]) -> dict:
        request = request_entry["resource"]
        return {
            "title": request["code"]["text"],
            "description": " ".join(n["text"] for n in request["note"]),
            "documentation": documentation,
            "resource": {"reference": request_entry["fullUrl"]},
        }
