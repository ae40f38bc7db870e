"""The case page's questionnaire form in a real browser (headless Chromium, Playwright),
against a real ``lbp-imaging serve`` process.

The form is filled with the facts of three example cases, whose outcomes the engine gives
for those files (their ``.expected.json``): cauda equina (emergent MRI, shown as such), a
fully screened negative case (no imaging, every red-flag group answered "none of these")
and an incompletely screened one (more information needed: the engine's questions are
marked in the form; answering them and resubmitting settles it). Each outcome is saved as a
full-page screenshot under ``test-artefacts/screenshots/`` at the repository root (the
form screenshot in the README, ``docs/images/case-form.png``, is a copy of
``case-form.png``, the top of ``undetermined-highlighted.png`` down to the first group with a
question marked). A few HTTP checks need no browser: an older submission
that names a format, and the advanced tab without a format chooser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sparql_server import EXAMPLES, ROOT, running

from reasoner.knowledge import LBP
from reasoner.pipeline.explain import Vocabulary

SCREENSHOTS = ROOT / "test-artefacts" / "screenshots"
GENDER = "Patient.gender"
BAD_REQUEST = "the server responded with a status of 400 (Bad Request)"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running([], tmp_path_factory.mktemp("logs")) as server:
        yield server


@dataclass
class Tab:
    """A browser page and the script errors, failed loads and dialogs seen on it."""

    page: Any  # playwright's Page
    problems: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        response = self.page.goto(path)
        assert response is not None and response.status == 200, f"{path}: {response and response.status}"

    def answer(self, answers: dict[str, str], none_of_these: Iterable[str] = ()) -> None:
        """Fill the form: a radio by its value, a number by typing it, and check the
        "none of these" boxes of the groups named; then submit it."""
        for name, value in answers.items():
            radio = self.page.locator(f"input[type=radio][name='{name}'][value='{value}']")
            if radio.count():
                radio.check()
            else:
                self.page.fill(f"input[type=text][name='{name}']", value)
        for group in none_of_these:
            self.page.check(f"input[type=checkbox][name='{group}.none']")
        self.page.click("#assess-form")
        self.page.wait_for_selector("#result, #field-errors")

    def screenshot(self, name: str, height: int | None = None) -> None:
        """The whole page, or its top ``height`` pixels, as ``SCREENSHOTS/<name>.png``."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        clip = {"x": 0, "y": 0, "width": 1280, "height": height} if height else None
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, clip=clip)

    def shown(self) -> dict[str, str]:
        """The outcome, procedure and urgency the page shows."""
        found = {"outcome": self.page.locator(".recommendation .outcome").first.inner_text()}
        for key in ("procedure", "urgency"):
            locator = self.page.locator(f".recommendation .{key}").first
            found[key] = locator.inner_text() if locator.count() else ""
        return found

    def answer_asked(self) -> None:
        """Answer every marked question (no; false; 10 for a number) and submit again."""
        for name in self.asked():
            item = self.page.locator(f"#item-{name}")
            if item.locator("input[value='N']").count():
                item.locator("input[value='N']").check()
            elif item.locator("input[value='false']").count():
                item.locator("input[value='false']").check()
            else:
                item.locator("input[type=text]").fill("10")
        self.page.click("#assess-form")
        self.page.wait_for_selector("#result")

    def asked(self) -> set[str]:
        return set(self.page.eval_on_selector_all(".item.asked", "els => els.map(e => e.dataset.linkId)"))

    def value_of(self, name: str) -> str:
        """The answer the form shows for a field: the checked radio's value, or the text."""
        radio = self.page.locator(f"input[type=radio][name='{name}']:checked")
        return (
            radio.get_attribute("value") if radio.count() else self.page.input_value(f"input[name='{name}']")
        )


@pytest.fixture
def tab(browser, server) -> Iterator[Tab]:
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    found = Tab(page)
    page.on("pageerror", lambda error: found.problems.append(f"script error: {error}"))
    page.on("console", lambda m: m.type == "error" and found.problems.append(f"console: {m.text}"))
    yield found
    context.close()


@pytest.fixture(scope="module")
def vocab(onto) -> Vocabulary:
    return Vocabulary(onto)


@pytest.fixture(scope="module")
def none_groups(server) -> list[str]:
    """The groups that offer "none of these" (those with findings), read from the page."""
    return re.findall(r'name="([^"]+)\.none"', httpx.get(server.url + "/case", timeout=30).text)


def _expected(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.expected.json").read_text())


def _labels(vocab: Vocabulary, expected: dict) -> dict[str, str]:
    return {
        key: vocab.label(str(LBP) + expected[key]) if expected.get(key) else ""
        for key in ("outcome", "procedure", "urgency")
    }


def test_cauda_equina_shows_emergent_mri_unmistakably(tab, vocab):
    """The facts of ``01-cauda-equina-urinary-saddle.ttl``."""
    expected = _expected("01-cauda-equina-urinary-saddle")
    answers = {
        "ageInYears": "45",
        GENDER: "male",
        "symptomDurationWeeks": "2",
        "NewUrinaryDysfunction": "Y",
        "SaddleAnaesthesia": "Y",
        "Fever": "N",
        "HistoryOfCancer": "N",
        "SignificantTrauma": "N",
    }
    tab.open("/case")
    tab.answer(answers)
    assert tab.shown() == _labels(vocab, expected)
    banner = tab.page.locator(".urgency-banner")
    assert banner.count() == 1 and banner.is_visible()
    assert "most-urgent" in banner.get_attribute("class")
    urgency = vocab.label(str(LBP) + expected["urgency"])
    assert banner.inner_text().startswith(urgency.upper())
    colours = banner.evaluate("b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color]")
    assert colours[0] != colours[1] and colours[0] not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
    assert {name: tab.value_of(name) for name in answers} == answers  # every answer kept
    assert "Decision support, not diagnosis" in tab.page.locator(".disclaimer").inner_text()
    tab.page.click("#view-as-fhir summary")
    bundle = json.loads(tab.page.locator("#view-as-fhir pre").inner_text())
    patient, response = (e["resource"] for e in bundle["entry"])
    assert (patient["resourceType"], patient["gender"]) == ("Patient", "male")
    assert response["subject"]["reference"] == bundle["entry"][0]["fullUrl"]
    answered = {i["linkId"] for g in response["item"] for i in g["item"]}
    assert answered == set(answers) - {GENDER}
    tab.screenshot("cauda-equina")
    assert tab.problems == []


def test_screened_negative_case_gets_no_imaging(tab, vocab, none_groups):
    """The facts of ``39-screened-negative.ttl``: every red-flag group "none of these"."""
    expected = _expected("39-screened-negative")
    answers = {
        "ageInYears": "38",
        GENDER: "female",
        "symptomDurationWeeks": "3",
        "conservativeTreatmentWeeks": "2",
        "surgicalCandidate": "false",
        "interventionCandidate": "false",
        "priorLumbarSurgery": "false",
    }
    tab.open("/case")
    tab.answer(answers, none_groups)
    assert tab.shown() == _labels(vocab, expected)
    assert tab.page.locator(".urgency-banner").count() == 0
    assert tab.page.locator("#remaining-questions").count() == 0 and tab.asked() == set()
    # "None of these" answered every finding no, and the form shows it.
    findings = tab.page.locator("input[type=radio][value='N']").count()
    assert findings > 0 and tab.page.locator("input[type=radio][value='N']:checked").count() == findings
    tab.screenshot("no-imaging")
    assert tab.problems == []


def test_undetermined_case_marks_its_questions_and_answering_them_settles_it(tab, vocab):
    """The facts of ``40-screening-incomplete.ttl``; then its questions answered."""
    expected = _expected("40-screening-incomplete")
    answers = {
        "ageInYears": "33",
        GENDER: "male",
        "symptomDurationWeeks": "2",
        "Fever": "N",
        "HistoryOfCancer": "N",
    }
    tab.open("/case")
    tab.answer(answers, ["CaudaEquinaSyndrome", "ProgressiveNeurologicDeficit"])
    assert tab.shown() == _labels(vocab, expected)
    assert tab.asked() == set(expected["questions"])  # the linkIds are the ontology's local names
    links = tab.page.eval_on_selector_all(
        "#remaining-questions a", "as => as.map(a => a.getAttribute('href'))"
    )
    assert sorted(links) == sorted(f"#item-{name}" for name in expected["questions"])
    for name in expected["questions"]:
        assert tab.page.locator(f"#item-{name} .ask-marker").is_visible()
    tab.screenshot("undetermined-highlighted")
    # The README's docs/images/case-form.png is copied from this: down to the first group marked.
    first = tab.page.locator(".item.asked").first.evaluate(
        "e => e.closest('fieldset').getBoundingClientRect()"
    )
    tab.screenshot("case-form", height=int(first["bottom"] + tab.page.evaluate("window.scrollY")) + 16)

    # Answer what is asked (no; a value for a number), resubmit: settled.
    tab.answer_asked()
    assert tab.shown()["outcome"] == vocab.label(str(LBP) + "OutcomeNoImaging")
    assert tab.asked() == set() and tab.page.locator("#remaining-questions").count() == 0
    assert {name: tab.value_of(name) for name in answers} == answers
    tab.screenshot("undetermined-settled")
    assert tab.problems == []


def test_bad_values_are_shown_at_their_fields_and_the_rest_is_kept(tab):
    tab.open("/case")
    tab.answer({"ageInYears": "abc", "crpMgPerL": "12,5", "SaddleAnaesthesia": "Y"})
    assert tab.page.locator("#result").count() == 0
    assert "not a whole number" in tab.page.locator("#item-ageInYears .field-error").inner_text()
    assert "not a number" in tab.page.locator("#item-crpMgPerL .field-error").inner_text()
    assert tab.page.locator("#field-errors a").count() == 2
    assert (tab.value_of("ageInYears"), tab.value_of("crpMgPerL")) == ("abc", "12,5")
    assert tab.value_of("SaddleAnaesthesia") == "Y"
    # A number out of the case shapes' range: their message, at the field.
    tab.page.fill("input[name='ageInYears']", "-3")
    tab.page.fill("input[name='crpMgPerL']", "12.5")
    tab.page.click("#assess-form")
    tab.page.wait_for_selector("#result")
    assert tab.page.locator(".invalid").count() == 1
    assert tab.page.locator("#item-ageInYears .field-error").inner_text()
    assert tab.value_of("ageInYears") == "-3"
    tab.screenshot("bad-values")
    # The answers that could not be read were answered 400 (Bad Request), the browser says.
    assert tab.problems == [f"console: Failed to load resource: {BAD_REQUEST}"]


# -- over HTTP, without the browser -----------------------------------------------------------
def test_an_older_submission_naming_a_format_is_read_in_the_detected_one(server):
    """Pages before the format was detected sent ``format``: it is ignored."""
    text = (ROOT / "examples/fhir/01-cauda-equina-urinary-saddle.json").read_text()
    page = httpx.post(server.url + "/case", data={"text": text, "format": "turtle"}, timeout=60).text
    assert 'id="read-as">Read as FHIR (JSON).' in page and 'class="outcome"' in page


def test_the_advanced_tab_offers_no_format_chooser(server):
    advanced = httpx.get(server.url + "/case", params={"tab": "advanced"}, timeout=30).text
    assert 'name="format"' not in advanced and 'id="case-text"' in advanced


# -- the CDS Hooks loop: an undetermined order's card links to this form, pre-filled --------
def test_a_cds_card_links_to_the_prefilled_form_where_answering_settles_the_order(tab, server):
    """Example 07 (more information needed) called over HTTP: its card links (type absolute)
    to the form pre-filled from the patient's record, under a key that carries no patient
    data; the form marks the card's questions, and answering them assesses the order again:
    the card is then no longer "more information needed"."""
    text = (ROOT / "examples/cds-hooks/07-more-information-needed.request.json").read_text()
    call = httpx.post(
        server.url + "/cds-services/lbp-imaging-order-sign",
        content=text,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    (card,) = call.json()["cards"]
    (link,) = card["links"]
    assert link["type"] == "absolute" and link["url"].startswith(server.url + "/case/order/")
    assert json.loads(text)["context"]["patientId"] not in link["url"]
    asked = int(re.match(r"More information needed: (\d+) questions", card["summary"])[1])
    assert link["label"] == f"Answer the {asked} questions in a form pre-filled for this patient"

    tab.open(link["url"])
    assert tab.page.locator("#group-patient").count() == 0  # the record's Patient: no sex to ask
    assert (tab.value_of("Fever"), tab.value_of("SaddleAnaesthesia"), tab.value_of("HistoryOfCancer")) == (
        "N",
        "N",
        "N",
    )
    assert tab.value_of("ageInYears")  # from the Patient's birthDate
    shown = tab.page.locator(".cds-card .card-summary").inner_text()
    assert shown == card["summary"] and len(tab.asked()) == asked
    tab.screenshot("cds-order-form")
    tab.answer_asked()
    settled = tab.page.locator(".cds-card .card-summary").inner_text()
    assert not settled.startswith("More information needed"), settled
    assert tab.asked() == set() and tab.page.locator("#remaining-questions").count() == 0
    tab.page.click("#view-as-fhir summary")
    response = json.loads(tab.page.locator("#view-as-fhir pre").inner_text())
    assert response["resourceType"] == "QuestionnaireResponse"
    assert response["subject"] == {"reference": f"Patient/{json.loads(text)['context']['patientId']}"}
    answered = {i["linkId"] for g in response["item"] for i in g["item"]}
    assert len(answered) == asked and "Fever" not in answered  # only what the record lacked
    tab.screenshot("cds-order-settled")
    assert tab.problems == []


def test_an_unknown_or_expired_form_link_says_so(server):
    page = httpx.get(server.url + "/case/order/no-such-key", timeout=30)
    assert page.status_code == 404 and "expired" in page.text
    posted = httpx.post(server.url + "/case/order/no-such-key", data={"Fever": "N"}, timeout=30)
    assert posted.status_code == 404
