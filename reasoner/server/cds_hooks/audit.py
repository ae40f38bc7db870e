"""What a CDS Hooks decision writes to the audit log (``audit_log``): one line per call that
was assessed and answered with cards, naming the case the patient data became, the
recommendation, the service and the hook instance, and who called.

An order assessed again from its card's form link
(``order_form_router``) is logged the same way, with the credential ``form link``.
Calls decided nothing are not logged: a refused request (4xx) and one without a lumbar
spine imaging order (``{"cards": []}``, no patient data read) make no recommendation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.requests import Request

from ...pipeline.explain import CaseResult
from ..cases.records import result_recommendation
from ..http.audit_log import ANONYMOUS, Actor
from ..state import server_state
from .request import HookRequest

BEARER_JWT = "bearer JWT"
FORM_LINK = "form link"
"""The credential of an order assessed again from its card's form link: the link's key."""

Decided = Callable[[HookRequest, CaseResult], None]
"""Called by ``CdsHooksService.call`` with the request and its assessed case."""


def decision_audit(
    request: Request, service_id: str, jwt: Mapping[str, str] | None, credential: str | None = None
) -> Decided:
    """The audit of one hook call to ``service_id``: ``jwt`` is the caller's verified JWT
    claims (``iss``, ``sub``, …; ``cds_auth``), None when the server checks no JWT and the
    caller is therefore anonymous, unless ``credential`` says what else let it in (the key
    of a form link). The line is written on the thread that runs the call."""
    audit = server_state(request).audit
    actor = Actor.of(request, credential or (ANONYMOUS if jwt is None else BEARER_JWT), jwt)

    def decided(hook: HookRequest, result: CaseResult) -> None:
        audit.record(
            "cds-decision",
            result.case,
            actor,
            200,
            recommendation=result_recommendation(result),
            service=service_id,
            hookInstance=hook.hook_instance,
        )

    return decided
