"""The pre-filled form an undetermined order's CDS card links to: ``/case/order/{key}``.

The CDS Hooks service keeps the patient data of the call under a short-lived key
(``form_links``) and its card links here. ``GET`` shows the case page's questionnaire form
pre-filled with what the patient's record says (SDC ``$populate`` of the data the call
gathered), the order's card as it stands and the questions that would settle it, marked in
the form. ``POST`` reads the answers the clinician gave beyond the record as a
``QuestionnaireResponse`` about the call's Patient and assesses the order again with the
same service, showing the card it would now give and the recommendation. The key names
the order; no patient data is in the URL. The record's own answers are not sent again:
an answer that differs from the record is sent, and a contradiction (no to a finding the
record has) is then shown as an invalid case, never resolved silently. Each re-assessment
is written to the audit log as a CDS decision of the service called.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from ...fhir.questionnaire import populate
from ..pages.case_form import CaseReport
from ..pages.questionnaire_form import Answers, FormModel, FormView
from ..pages.router import case_page, read_form
from ..pages.site import Site, site
from ..state import State
from .audit import FORM_LINK, decision_audit
from .form_links import PendingOrder
from .request import HookError
from .router import ORDER_FORM_PATH, cds_service
from .service import Answered, CdsHooksService

router = APIRouter(include_in_schema=False)
SiteDep = Annotated[Site, Depends(site)]
Service = Annotated[CdsHooksService, Depends(cds_service)]
SHOWN_AS = "the order's patient data"


def _expired(site: Site, state: State) -> HTMLResponse:
    minutes = round(state.settings.form_link_seconds / 60)
    return HTMLResponse(
        site.render(
            "message.html",
            title="Link expired",
            message=f"This form link is unknown or has expired (links live {minutes} minutes). "
            "Open the order's card again for a new one.",
        ),
        status_code=404,
    )


def _page(site: Site, key: str, done: Answered, model: FormModel, view: FormView) -> HTMLResponse:
    """The case page for the pending order: its result, the card, the form with the
    remaining questions marked."""
    report = CaseReport(SHOWN_AS, "", "fhir", [done.result], done.statements)
    view.action, view.patient_given, view.cards = ORDER_FORM_PATH + key, True, done.cards["cards"]
    view.show_results(report.results)
    return case_page(site, report, form=view)


def _model(site: Site, done: Answered) -> FormModel:
    """The form pre-filled with what the record says (the result's facts)."""
    return site.desk.form_model(populate(site.desk.form.questionnaire, done.result))


@router.get(ORDER_FORM_PATH + "{key}")
async def order_form(key: str, site: SiteDep, state: State, service: Service) -> HTMLResponse:
    pending = state.form_links.get(key)
    if pending is None:
        return _expired(site, state)
    done = await asyncio.to_thread(service.answered, pending, None)
    model = _model(site, done)
    return _page(site, key, done, model, FormView.blank(model))


@router.post(ORDER_FORM_PATH + "{key}")
async def order_answered(
    key: str, request: Request, site: SiteDep, state: State, service: Service
) -> HTMLResponse:
    pending = state.form_links.get(key)
    if pending is None:
        return _expired(site, state)
    posted = await read_form(request)
    if isinstance(posted, str):
        return case_page(site, None, posted, 400)
    recorded = await asyncio.to_thread(service.answered, pending, None)
    model = _model(site, recorded)
    answers = model.read(posted)
    # The record's answers stay shown: the form adds to the record, it cannot unsay it.
    view = FormView(model, {**model.initial_values(), **answers.values}, answers.errors)
    if answers.errors:
        view.action, view.patient_given = ORDER_FORM_PATH + key, True
        return case_page(site, None, "Some answers could not be read: see the marked fields.", 400, view)
    response = _response(model, answers, pending)
    try:
        done = await asyncio.to_thread(service.answered, pending, response)
    except HookError as exc:
        view.action, view.patient_given = ORDER_FORM_PATH + key, True
        return case_page(site, None, f"The answers could not be read: {exc}", 400, view)
    decision_audit(request, pending.service_id, None, FORM_LINK)(pending.request, done.result)
    view.bundle_json = json.dumps(response, indent=2, ensure_ascii=False)
    return _page(site, key, done, model, view)


def _response(model: FormModel, answers: Answers, pending: PendingOrder) -> dict:
    """The clinician's answers beyond the record, as a response about the call's Patient."""
    fields = model.fields
    new = {k: v for k, v in answers.values.items() if k in fields and fields[k].initial != v}
    (response,) = (
        e["resource"]
        for e in model.bundle(Answers(new)).get("entry", [])
        if e["resource"]["resourceType"] == "QuestionnaireResponse"
    )
    return {**response, "subject": {"reference": f"Patient/{pending.request.patient_id}"}}
