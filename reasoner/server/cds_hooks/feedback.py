"""CDS Hooks 2.0 feedback: what the user did with each card (``POST {service}/feedback``).

The body is ``{"feedback": [...]}``; each entry names a ``card`` (the card's ``uuid``), its
``outcome`` (``accepted``, with the ``acceptedSuggestions`` by suggestion ``uuid``, or
``overridden``, optionally with an ``overrideReason``: a ``reason`` Coding and/or a
``userComment``) and the ``outcomeTimestamp`` (ISO 8601 with a time zone). As with hook
requests (``cds_request``), a body is refused as a whole (400, naming the field) rather
than half-recorded.

Each entry is written as one JSON line to the ``lbp_imaging.audit`` logger, with who sent
it when the call was authenticated (``cds_auth``). The clinician's free-text
``userComment`` is not written, only whether there was one: it may name the patient, and an
audit log is no place for clinical free text.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass

from ..http.audit_log import Actor
from .request import HookError

AUDIT_LOGGER = "lbp_imaging.audit"
OUTCOMES = ("accepted", "overridden")
audit_log = logging.getLogger(AUDIT_LOGGER)


@dataclass(frozen=True)
class Feedback:
    """One checked feedback entry."""

    card: str
    outcome: str
    accepted_suggestions: tuple[str, ...]
    override_reason: dict[str, str] | None
    """The ``reason`` Coding's ``system`` and ``code`` (and ``display`` when given)."""
    user_comment: bool
    outcome_timestamp: str


def parse_feedback(body: bytes) -> list[Feedback]:
    """The entries of a feedback body; raises ``HookError`` (400) naming the field at fault."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep for the parser
        raise HookError(400, "the feedback body is not JSON, or is nested too deep") from None
    if not isinstance(doc, dict):
        raise HookError(400, "the feedback body is not a JSON object")
    entries = doc.get("feedback")
    if not isinstance(entries, list):
        raise HookError(400, "is required: a list of feedback entries", "feedback")
    return [_entry(entry, f"feedback[{i}]") for i, entry in enumerate(entries)]


def _entry(entry: object, where: str) -> Feedback:
    if not isinstance(entry, dict):
        raise HookError(400, "must be an object", where)
    card = _uuid(entry.get("card"), f"{where}.card", "the uuid of the card")
    outcome = entry.get("outcome")
    if outcome not in OUTCOMES:
        raise HookError(400, f"must be {' or '.join(OUTCOMES)}", f"{where}.outcome")
    suggestions = entry.get("acceptedSuggestions")
    reason = entry.get("overrideReason")
    if outcome == "accepted":
        if reason is not None:
            raise HookError(400, "is for overridden cards only", f"{where}.overrideReason")
        accepted = _accepted(suggestions, f"{where}.acceptedSuggestions")
        coding, comment = None, False
    else:
        if suggestions is not None:
            raise HookError(400, "is for accepted cards only", f"{where}.acceptedSuggestions")
        accepted = ()
        coding, comment = _override(reason, f"{where}.overrideReason")
    stamp = _timestamp(entry.get("outcomeTimestamp"), f"{where}.outcomeTimestamp")
    return Feedback(card, outcome, accepted, coding, comment, stamp)


def _uuid(value: object, field: str, what: str) -> str:
    with contextlib.suppress(ValueError):
        if isinstance(value, str):
            return str(uuid.UUID(value))
    raise HookError(400, f"is required: {what}, a UUID", field)


def _accepted(suggestions: object, field: str) -> tuple[str, ...]:
    if not isinstance(suggestions, list) or not suggestions:
        raise HookError(400, 'is required for an accepted card: a list of {"id": suggestion uuid}', field)
    ids = []
    for i, item in enumerate(suggestions):
        if not isinstance(item, dict):
            raise HookError(400, "must be an object with the suggestion's id", f"{field}[{i}]")
        ids.append(_uuid(item.get("id"), f"{field}[{i}].id", "the uuid of the suggestion"))
    return tuple(ids)


def _override(reason: object, field: str) -> tuple[dict[str, str] | None, bool]:
    """The reason Coding (or None) and whether a user comment was given."""
    if reason is None:
        return None, False
    if not isinstance(reason, dict):
        raise HookError(400, "must be an object with a reason Coding and/or a userComment", field)
    comment = reason.get("userComment")
    if comment is not None and not isinstance(comment, str):
        raise HookError(400, "must be text", f"{field}.userComment")
    coding = reason.get("reason")
    if coding is None:
        if comment is None:
            raise HookError(400, "needs a reason Coding or a userComment", field)
        return None, True
    if not isinstance(coding, dict):
        raise HookError(400, "must be a Coding: an object with system and code", f"{field}.reason")
    kept = {}
    for key in ("system", "code", "display"):
        value = coding.get(key)
        if value is None and key == "display":
            continue
        if not isinstance(value, str) or not value:
            raise HookError(400, "is required: a non-empty string", f"{field}.reason.{key}")
        kept[key] = value
    return kept, comment is not None


def _timestamp(value: object, field: str) -> str:
    try:
        stamp = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise HookError(400, "is required: an ISO 8601 date and time with a time zone (UTC)", field)
    return stamp.astimezone(dt.UTC).isoformat()


def log_feedback(service_id: str, entries: list[Feedback], actor: Actor) -> None:
    """Write each feedback entry as one JSON line to the ``lbp_imaging.audit`` logger, with
    the fields every audit line has (``time``, ``event``, ``credential``, ``client``,
    ``jwt``: see ``audit_log``); the record is also the ``audit`` attribute of the log
    record, for a structured handler. Blocks for the log's handlers (a file): call it off
    the event loop."""
    received = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    for feedback in entries:
        record: dict[str, object] = {
            "time": received,
            "event": "cds-feedback",
            "credential": actor.credential,
            "client": actor.client,
            "jwt": dict(actor.jwt) if actor.jwt is not None else None,
            "service": service_id,
            "card": feedback.card,
            "outcome": feedback.outcome,
            "outcomeTimestamp": feedback.outcome_timestamp,
        }
        if feedback.accepted_suggestions:
            record["acceptedSuggestions"] = list(feedback.accepted_suggestions)
        if feedback.override_reason:
            record["overrideReason"] = feedback.override_reason
        if feedback.user_comment:
            record["userComment"] = "given, not logged"
        audit_log.info(json.dumps(record, ensure_ascii=False), extra={"audit": record})
