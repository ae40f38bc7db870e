"""The web pages: landing page, criteria browser, case page and SPARQL query page.

Server-rendered HTML (Jinja2, every value escaped), no scripts from other hosts. This
module only routes: what a page shows is read by ``site`` and its helpers, assessing a
submitted case is ``case_form``. Pages are left out of the OpenAPI document, which
describes the machine interfaces.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from ...pipeline.tree import explanation_nodes
from .case_form import MAX_TEXT, CaseFormError, CaseReport
from .questionnaire_form import TEXT_FIELD, FormView
from .site import Site, site

router = APIRouter(include_in_schema=False)
SiteDep = Annotated[Site, Depends(site)]
FORM_TYPE = "application/x-www-form-urlencoded"
ADVANCED = "advanced"
"""The case page's tab with the raw text entry (``/case?tab=advanced``)."""
MAX_FORM_BYTES = MAX_TEXT * 4
"""A form of ``MAX_TEXT`` characters, percent-encoded (UTF-8 needs up to 4 bytes each)."""


def _page(site: Site, template: str, status_code: int = 200, **context: object) -> HTMLResponse:
    return HTMLResponse(site.render(template, **context), status_code=status_code)


def _not_found(site: Site, message: str) -> HTMLResponse:
    return _page(site, "message.html", 404, title="Not found", message=message)


@router.get("/")
async def landing(site: SiteDep) -> HTMLResponse:
    return _page(site, "index.html", title=site.header.title, header=site.header)


@router.get("/criteria")
async def criteria(site: SiteDep) -> HTMLResponse:
    return _page(site, "criteria.html", title="Criteria")


@router.get("/criteria/{name}")
async def criterion(name: str, site: SiteDep) -> HTMLResponse:
    found = site.criteria.by_name.get(name)
    if found is None:
        return _not_found(site, f"There is no criterion called {name!r}.")
    return _page(site, "criterion.html", title=found.label, criterion=found)


def case_page(
    site: Site,
    report: CaseReport | None,
    error: str | None = None,
    status: int = 200,
    form: FormView | None = None,
) -> HTMLResponse:
    """The case page: the questionnaire form (``form``), or the advanced tab when it is
    ``None``; with the report's recommendations and explanation trees if any (the trees
    name question effects by their labels in the ontology)."""
    effect_label = site.desk.assessor.vocab.effect_label
    trees = (
        [site.linked_tree(explanation_nodes(r, report.statements, effect_label)) for r in report.results]
        if report
        else []
    )
    return _page(
        site, "case.html", status, title="Assess a case", report=report, trees=trees, error=error, form=form
    )


@router.get("/case")
async def case_form(site: SiteDep, example: str | None = None, tab: str | None = None) -> HTMLResponse:
    """The case page: the questionnaire form, or with ``tab=advanced`` the raw text entry;
    with ``example``, that bundled example assessed (on the advanced tab, which shows its text)."""
    if example is None:
        form = None if tab == ADVANCED else FormView.blank(site.desk.form)
        return case_page(site, None, form=form)
    try:
        report = await asyncio.to_thread(site.desk.assess_example, example)
    except CaseFormError as exc:
        return case_page(site, None, str(exc), 404)
    return case_page(site, report)


async def read_form(request: Request) -> dict[str, str] | str:
    """The posted form's fields, or why it cannot be read."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        return f"the form must be sent as {FORM_TYPE}"
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return f"the submission is larger than {MAX_FORM_BYTES:,} bytes"
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return "the form is not UTF-8"
    return {key: values[0] for key, values in fields.items()}


@router.post("/case")
async def case_submitted(request: Request, site: SiteDep) -> HTMLResponse:
    """Assess the submission: pasted case text (the advanced tab; its format detected, a
    ``format`` field that older pages send is ignored), else the questionnaire form's answers."""
    form = await read_form(request)
    if isinstance(form, str):
        return case_page(site, None, form, 400)
    if TEXT_FIELD in form:
        try:
            report = await asyncio.to_thread(site.desk.assess_text, form[TEXT_FIELD])
        except CaseFormError as exc:
            return case_page(site, None, str(exc), 400)
        return case_page(site, report)
    return await _form_submitted(site, form)


async def _form_submitted(site: Site, posted: dict[str, str]) -> HTMLResponse:
    """The form re-rendered with every answer kept: with the errors next to their fields if
    any answer cannot be read, else with the assessment of the response the answers make."""
    model = site.desk.form
    answers = model.read(posted)
    view = FormView(model, answers.values, answers.errors)
    if answers.errors:
        return case_page(site, None, "Some answers could not be read: see the marked fields.", 400, view)
    report = await asyncio.to_thread(site.desk.assess_form, answers, model)
    view.bundle_json = report.text
    view.show_results(report.results)
    return case_page(site, report, form=view)


@router.get("/query")
async def query_page(site: SiteDep, name: str | None = None) -> HTMLResponse:
    """The SPARQL query page; with ``name``, that named query loaded into the editor."""
    if name is not None and name not in site.queries:
        return _not_found(site, f"There is no named query called {name!r}.")
    text = site.queries[name].text if name else ""
    return _page(site, "query.html", title="SPARQL query", chosen=name, text=text)
