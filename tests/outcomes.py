"""The view of a result that example expectations record (``*.expected.json``): outcome,
procedure, urgency, criteria met, alternatives, the criteria and rules left undetermined,
and what the questions ask about, with the project's IRIs shortened to local names."""

from __future__ import annotations

LBP = "https://w3id.org/lbp-imaging/"


def local(iri: str | None) -> str | None:
    return iri[len(LBP) :] if iri and iri.startswith(LBP) else iri


def observed(result: dict) -> dict:
    """``result`` is one result of the JSON output (``CaseResult.to_dict()``)."""
    rec = result["recommendation"]
    return {
        "outcome": local(result["outcome"]["iri"]),
        "procedure": local((rec["procedure"] or {}).get("iri")),
        "urgency": local((rec["urgency"] or {}).get("iri")),
        "criteria": sorted(local(c["iri"]) for c in result["criteria"] if c["kind"] != "closed-world"),
        "alternatives": sorted(local(a["iri"]) for a in rec["alternatives"]),
        "undetermined": sorted(local(c) for c, s in result["criterionStates"].items() if s == "undetermined"),
        "questions": sorted(local(q["about"]["iri"]) for q in result["questions"]),
    }
