"""Seeded synthetic FHIR R4 patient data, for the FHIR and Bulk Data benchmarks and tests.

``FhirCaseGenerator(kb).bundle(i)`` is patient ``p{i}``'s data as a ``collection``
Bundle: the FHIR counterpart of ``reasoner.synthetic``, which writes cases as N-Triples.
Nothing clinical is written here. Which codings exist, what each one records (a finding,
a case property with its UCUM unit, a condition whose onset starts a duration) comes
from the ontology's SKOS mappings (``FhirMapping``); the numeric ranges from the case
shapes and the values worth probing (each threshold, a step below and a step above) from
the compiled criteria, found as ``reasoner.synthetic`` finds them. What this module knows
is FHIR: which resource and element carry each kind of fact, and which statuses the FHIR
input (``reasoner.fhir.read``, whose status sets it reuses) reads as present, absent or
past. Every bundle is read by ``bundle_to_case`` without an error or a warning (tested).

Which resource carries a fact: mostly the one the FHIR output asks for
(``answer_resource``'s rule: a finding with a standard coding is a Condition, confirmed
when present and refuted when absent, one with only the project's code an Observation
with ``valueBoolean``; a value is an Observation's), and a share of the others the input
reads with the same meaning: a completed Procedure for a yes/no property that is true, a
Procedure or MedicationStatement period for a duration, a MedicationStatement (taken or
``not-taken``) or an active Device for a finding with only the project's code, the onset
of a Condition for a duration measured from it. The ontology names the resource type of
a few facts only (``lbp:fhirResourceType``, which the FHIR output asks for; this
generator does not read it), so these are spread over the facts of the right kind: the
data is realistic in its structure, statuses, dates and units, not in which clinical
concept sits in which resource type.

Determinism: bundle ``i`` depends only on (seed, i, reference date), through
``random.Random(f"{seed}:{i}")``, so any index is made without making the others (Spark
partitions, resumed runs). The bundles have no ``fullUrl``: references are relative
(``Patient/p7``) as in a Bulk Data export, and the case IRI is the one the FHIR input
gives a Patient without an absolute fullUrl, so a bundle and its Bulk Data export name
the same case. ``write_bulk`` (``reasoner.fhir.bulk_write``, re-exported here) writes
them, or any patient bundles, as a Bulk Data export.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from .fhir import ucum
from .fhir.bulk_write import write_bulk as write_bulk  # re-exported: the generator's bundles' writer
from .fhir.mapping import CaseProperty, FhirMapping
from .fhir.read import (
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    MEDICATION_TAKEN,
    NOT_CURRENT,
    OBSERVATION_USED,
    PROCEDURE_DONE,
    UCUM_SYSTEM,
    XSD,
)
from .knowledge import LBP, KnowledgeBase
from .synthetic import CaseGenerator

UNIT_CANDIDATES = ("d", "wk", "mo", "a", "mg/L", "mg/dL", "g/L", "ug/mL", "mm/h")
"""UCUM codes records commonly use for durations and laboratory results: a value is
sometimes written in one of them that converts to the property's unit (checked with
``ucum.convert``, and only when the conversion is exact both ways), so that the input's
unit conversion is exercised without moving a value off a threshold."""
DAY = "d"  # the UCUM day: a duration property is one whose unit converts to it
MOST_DECIMALS = 4  # digits after the point a value in another unit may need


@dataclass(frozen=True)
class _Coded:
    """A term with the codings the input reads as it (and, when there are such, as no
    other case fact), and its label for ``CodeableConcept.text``."""

    term: str
    codings: tuple[dict, ...]
    label: str

    def concept(self, rng: random.Random) -> dict:
        coding = rng.choice(self.codings)
        return {"coding": [{"system": coding["system"], "code": coding["code"]}], "text": self.label}


@dataclass(frozen=True)
class _Numeric:
    """A decimal case property with a UCUM unit: its range, the thresholds to probe, the
    other units it can be written in, and (for a duration) the terms whose onset starts it."""

    coded: _Coded
    prop: CaseProperty
    low: Decimal
    high: Decimal
    thresholds: tuple[Decimal, ...]
    other_units: tuple[str, ...]
    duration: bool
    onset_terms: tuple[_Coded, ...] = ()


class FhirCaseGenerator:
    """Generates seeded, realistic FHIR R4 patient bundles that the FHIR input reads
    without warnings, with values on both sides of every threshold of the criteria."""

    def __init__(
        self,
        kb: KnowledgeBase,
        seed: int = 0,
        as_of: date | None = None,
        p_present: float = 0.08,
        p_absent: float = 0.45,
        mapping: FhirMapping | None = None,
    ):
        self.seed = seed
        self.as_of = as_of or date.today()
        self.p_present, self.p_absent = p_present, p_absent
        self.mapping = mapping or FhirMapping.for_knowledge_base(kb)
        shapes = CaseGenerator(kb)  # the case shapes' ranges and the criteria's thresholds
        self.ranges = {prop: (lo, hi) for prop, _, _, lo, hi, _ in shapes.numeric}
        self.thresholds = {prop: tuple(sorted(b)) for prop, b in shapes.boundaries.items()}
        m = self.mapping
        findings = [c for c in (self._coded(t) for t in sorted(m.findings)) if c is not None]
        standard = {c.term for c in findings if any(x["system"] != m.own_system for x in c.codings)}
        self.condition_findings = [c for c in findings if c.term in standard]
        self.observation_findings = [c for c in findings if c.term not in standard]
        self.booleans: list[_Coded] = []
        self.numbers: list[_Numeric] = []
        for prop in sorted(m.properties.values(), key=lambda p: p.iri):
            coded = self._coded(prop.iri)
            if coded is None:
                continue  # no coding records it (the age comes from the birthDate)
            if prop.datatype == XSD + "boolean":
                self.booleans.append(coded)
            elif prop.datatype == XSD + "decimal" and prop.unit:
                self.numbers.append(self._numeric(coded, prop))
        self.age = self._range(str(LBP.ageInYears))

    # -- what the mapping offers ------------------------------------------------------------
    def _facts(self, term: str) -> set[str]:
        """The case facts a term is, or whose duration its onset starts."""
        m = self.mapping
        if term in m.findings or term in m.properties:
            return {term}
        return {p.iri for p in m.onset_properties(term)}

    def _coded(self, term: str) -> _Coded | None:
        """``term`` with the codings that record it; codings that record another case fact
        as well are left out when there are others."""
        codings = self.mapping.read_codings(term)
        alone = tuple(
            c
            for c in codings
            if set().union(*(self._facts(t) for t in self.mapping.terms[(c["system"], c["code"])]))
            == self._facts(term)
        )
        chosen = alone or codings
        return _Coded(term, chosen, self.mapping.label(term)) if chosen else None

    def _range(self, prop: str) -> tuple[Decimal, Decimal, tuple[Decimal, ...]]:
        lo, hi = self.ranges.get(prop, (None, None))
        thresholds = self.thresholds.get(prop, ())
        lo = lo if lo is not None else Decimal(0)
        hi = hi if hi is not None else max([*thresholds, Decimal(10)]) * 2 + 10
        return lo, hi, thresholds

    def _numeric(self, coded: _Coded, prop: CaseProperty) -> _Numeric:
        lo, hi, thresholds = self._range(prop.iri)
        others = tuple(u for u in UNIT_CANDIDATES if u != prop.unit and _converts(prop.unit, u))
        onset = tuple(
            c
            for c in (self._coded(t) for t in sorted(prop.onset_of))
            if c is not None and c.term not in self.mapping.findings
        )
        return _Numeric(coded, prop, lo, hi, thresholds, others, _converts(prop.unit, DAY), onset)

    # -- one patient ------------------------------------------------------------------------
    def bundle(self, index: int) -> dict:
        """Patient ``p{index}``'s data as a FHIR ``collection`` Bundle (JSON as a dict)."""
        rng = random.Random(f"{self.seed}:{index}")
        record = _Record(rng, f"p{index}", self.as_of)
        record.patient(self._age(rng), sorted(self.mapping.sexes))
        p_present = rng.uniform(0, 2 * self.p_present)
        for coded in self.condition_findings + self.observation_findings:
            r = rng.random()
            if r < p_present + self.p_absent:
                present = r < p_present
                if coded in self.condition_findings:
                    record.condition_finding(coded, present, coded.term in self.mapping.past_findings)
                else:
                    record.observation_finding(coded, present)
        for coded in self.booleans:
            if rng.random() < 0.6:
                record.yes_no(coded, rng.random() < 0.5)
        for number in self.numbers:
            if rng.random() < 0.6:
                self._number(record, number)
        if rng.random() < 0.05:  # a record entered in error: read as nothing, silently
            record.entered_in_error(rng.choice(self.condition_findings + self.observation_findings))
        return record.bundle()

    def _age(self, rng: random.Random) -> int:
        lo, hi, thresholds = self.age
        if thresholds and rng.random() < 0.6:
            age = rng.choice(thresholds) + rng.choice((-1, 0, 1))
        else:
            age = rng.randint(int(lo), int(hi))
        return int(min(max(age, lo), hi))

    def _value(self, rng: random.Random, number: _Numeric) -> Decimal:
        """A value in the property's unit: a threshold, a step either side, or any in range."""
        if number.thresholds and rng.random() < 0.6:
            step = rng.choice((Decimal("0.1"), Decimal(1)))
            value = rng.choice(number.thresholds) + rng.choice((-step, Decimal(0), step))
        else:
            value = Decimal(rng.randint(int(number.low * 10), int(number.high * 10))) / 10
        return min(max(value, number.low), number.high)

    def _days(self, rng: random.Random, number: _Numeric) -> int:
        """A duration in whole days (as dates give it): a threshold's day count, a day
        either side, or any in range."""
        unit = number.prop.unit
        if number.thresholds and rng.random() < 0.6:
            days = int(ucum.convert(rng.choice(number.thresholds), unit, DAY)) + rng.choice((-1, 0, 1))
        else:
            days = rng.randint(
                int(ucum.convert(number.low, unit, DAY)), int(ucum.convert(number.high, unit, DAY))
            )
        return max(days, 0)

    def _number(self, record: _Record, number: _Numeric) -> None:
        rng = record.rng
        if not number.duration:
            record.quantity(number, *self._in_some_unit(rng, number, self._value(rng, number)))
            return
        kinds = (
            ("onset", "quantity", "start")
            if number.onset_terms
            else ("quantity", "period", "procedure", "medication")
        )
        weights = (6, 3, 1) if number.onset_terms else (5, 1.5, 2, 1.5)
        kind = rng.choices(kinds, weights)[0]
        if kind == "quantity":
            record.quantity(number, *self._in_some_unit(rng, number, self._value(rng, number)))
        elif kind == "onset":
            record.onset(rng.choice(number.onset_terms), self._days(rng, number))
        else:
            record.duration(number.coded, kind, self._days(rng, number))

    def _in_some_unit(self, rng: random.Random, number: _Numeric, value: Decimal) -> tuple[Decimal, str]:
        """``value`` in the property's unit, or now and then in another one it converts to
        exactly (both ways, in few decimals), so that the input converts it back unchanged."""
        unit = number.prop.unit
        if number.other_units and rng.random() < 0.3:
            other = rng.choice(number.other_units)
            converted = ucum.convert(value, unit, other)
            if (
                -converted.as_tuple().exponent <= MOST_DECIMALS
                and ucum.convert(converted, other, unit) == value
            ):
                return converted, other
        return value, unit


def _converts(from_code: str, to_code: str) -> bool:
    try:
        ucum.convert(Decimal(1), from_code, to_code)
    except ucum.UcumError:
        return False
    return True


def _number(value: Decimal) -> int | float:
    """A decimal as a JSON number (an integer when whole; a float's shortest repr keeps
    the few decimals generated values have)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _status(rng: random.Random, usual: str, others: Collection[str]) -> str:
    """Mostly the usual status, sometimes another that means the same to the input."""
    rest = sorted(set(others) - {usual})
    return rng.choice(rest) if rest and rng.random() < 0.1 else usual


@dataclass
class _Record:
    """One patient's resources as they are made, with ids ``p{index}-{letter}{n}``."""

    rng: random.Random
    pid: str
    as_of: date
    resources: list[dict] = field(default_factory=list)

    def add(self, letter: str, kind: str, elements: dict, subject: str | None = "subject") -> dict:
        """Add a resource about the patient (``subject`` names the element that refers to
        it; None for a resource about no one) and return it, to be given a value."""
        resource = {"resourceType": kind, "id": f"{self.pid}-{letter}{len(self.resources)}"} | elements
        resource |= {subject: {"reference": f"Patient/{self.pid}"}} if subject else {}
        self.resources.append(resource)
        return resource

    def bundle(self) -> dict:
        return {
            "resourceType": "Bundle",
            "id": self.pid,
            "type": "collection",
            "entry": [{"resource": r} for r in self.resources],
        }

    def day(self, most: int) -> date:
        return self.as_of - timedelta(days=self.rng.randint(0, most))

    def when(self, most: int = 60) -> str:
        """A date on or before the reference date, sometimes with a time (UTC)."""
        day = self.day(most)
        if self.rng.random() < 0.3:
            return f"{day.isoformat()}T{self.rng.randint(0, 23):02d}:{self.rng.randint(0, 59):02d}:00Z"
        return day.isoformat()

    def patient(self, age: int, genders: list[str]) -> None:
        """The Patient, first: a birth date giving ``age``, and mostly a gender."""
        resource = {"resourceType": "Patient", "id": self.pid}
        if genders and self.rng.random() < 0.95:
            resource["gender"] = self.rng.choice(genders)
        resource["birthDate"] = _birth_date(self.rng, age, self.as_of).isoformat()
        self.resources.append(resource)

    # -- findings -----------------------------------------------------------------------------
    def condition_finding(self, coded: _Coded, present: bool, past_counts: bool) -> None:
        """Confirmed (often without saying so) when present, refuted when absent; a finding
        that counts when past is sometimes resolved, inactive or in remission."""
        rng = self.rng
        condition: dict = {}
        clinical = None
        if present:
            clinical = rng.choice(sorted(NOT_CURRENT)) if past_counts and rng.random() < 0.4 else "active"
            condition["clinicalStatus"] = _status_concept(CONDITION_CLINICAL, clinical)
            if rng.random() < 0.7:
                condition["verificationStatus"] = _status_concept(CONDITION_VERIFICATION, "confirmed")
        else:
            condition["verificationStatus"] = _status_concept(CONDITION_VERIFICATION, "refuted")
        condition["code"] = coded.concept(rng)
        if present and rng.random() < 0.7:
            onset = self.day(3 * 365)
            condition["onsetDateTime"] = onset.isoformat()
            if clinical in NOT_CURRENT:
                condition["abatementDateTime"] = (onset + (self.as_of - onset) / 2).isoformat()
        condition["recordedDate"] = self.when(30)
        self.add("c", "Condition", condition)

    def observation_finding(self, coded: _Coded, present: bool) -> None:
        """Mostly an Observation with ``valueBoolean`` (a present one now and then with no
        value: observed); sometimes a MedicationStatement (taken, or ``not-taken`` when
        absent) or, when present, an active Device."""
        rng = self.rng
        r = rng.random()
        if r < 0.04:
            status = _status(rng, "active", MEDICATION_TAKEN) if present else "not-taken"
            statement = self._medication_statement(coded, status)
            statement["effectiveDateTime"] = self.when(365)
        elif r < 0.07 and present:
            self.add("d", "Device", {"status": "active", "type": coded.concept(rng)}, "patient")
        elif present and r > 0.97:
            self._observation(coded)
        else:
            self._observation(coded)["valueBoolean"] = present

    def _observation(self, coded: _Coded) -> dict:
        return self.add(
            "o",
            "Observation",
            {
                "status": _status(self.rng, "final", OBSERVATION_USED),
                "code": coded.concept(self.rng),
                "effectiveDateTime": self.when(),
            },
        )

    def _medication_statement(self, coded: _Coded, status: str) -> dict:
        """A statement whose medication is a concept, or a reference to a Medication."""
        if self.rng.random() < 0.5:
            medication = {"medicationCodeableConcept": coded.concept(self.rng)}
        else:
            made = self.add("med", "Medication", {"code": coded.concept(self.rng)}, subject=None)
            medication = {"medicationReference": {"reference": f"Medication/{made['id']}"}}
        return self.add("m", "MedicationStatement", {"status": status} | medication)

    def entered_in_error(self, coded: _Coded) -> None:
        observation = self._observation(coded)
        observation["status"] = "entered-in-error"
        observation["valueBoolean"] = self.rng.random() < 0.5

    # -- case properties ----------------------------------------------------------------------
    def yes_no(self, coded: _Coded, value: bool) -> None:
        """An Observation with ``valueBoolean``; a true one now and then a done Procedure."""
        if value and self.rng.random() < 0.2:
            procedure = {
                "status": _status(self.rng, "completed", PROCEDURE_DONE - {"in-progress"}),
                "code": coded.concept(self.rng),
                "performedDateTime": self.when(5 * 365),
            }
            self.add("pr", "Procedure", procedure)
        else:
            self._observation(coded)["valueBoolean"] = value

    def quantity(self, number: _Numeric, value: Decimal, unit: str) -> None:
        quantity = {"value": _number(value), "unit": unit, "system": UCUM_SYSTEM, "code": unit}
        self._observation(number.coded)["valueQuantity"] = quantity

    def onset(self, coded: _Coded, days: int) -> None:
        """A current, confirmed Condition whose onset ``days`` ago starts a duration."""
        condition = {
            "clinicalStatus": _status_concept(CONDITION_CLINICAL, "active"),
            "verificationStatus": _status_concept(CONDITION_VERIFICATION, "confirmed"),
            "code": coded.concept(self.rng),
            "onsetDateTime": (self.as_of - timedelta(days=days)).isoformat(),
        }
        self.add("c", "Condition", condition)

    def duration(self, coded: _Coded, kind: str, days: int) -> None:
        """``days`` as a period, open (to the reference date) or ended on an earlier day: an
        Observation's value (``period``), a Procedure's performance (``procedure``) or a
        medication's use (``medication``); or (``start``) an Observation's
        ``valueDateTime``, the day it began."""
        rng = self.rng
        end = None if kind == "start" or rng.random() < 0.5 else self.day(30)
        start = (end or self.as_of) - timedelta(days=days)
        period = {"start": start.isoformat()} | ({"end": end.isoformat()} if end else {})
        if kind == "start":
            self._observation(coded)["valueDateTime"] = start.isoformat()
        elif kind == "period":
            self._observation(coded)["valuePeriod"] = period
        elif kind == "procedure":
            done = _status(rng, "completed", PROCEDURE_DONE - {"in-progress"})
            status = "in-progress" if end is None else done
            self.add(
                "pr", "Procedure", {"status": status, "code": coded.concept(rng), "performedPeriod": period}
            )
        else:
            status = "active" if end is None else _status(rng, "completed", MEDICATION_TAKEN - {"active"})
            self._medication_statement(coded, status)["effectivePeriod"] = period


def _status_concept(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


def _birth_date(rng: random.Random, age: int, as_of: date) -> date:
    """A birth date giving ``age`` on ``as_of`` (the FHIR input's ``age_on``); now and then
    a birthday on the reference date or the day after, the edges of the age."""
    edge = rng.random()
    if edge < 0.1:
        month, day = as_of.month, as_of.day
    elif edge < 0.2:
        tomorrow = as_of + timedelta(days=1)
        month, day = tomorrow.month, tomorrow.day
    else:
        month, day = rng.randint(1, 12), rng.randint(1, 28)
    year = as_of.year - age - ((month, day) > (as_of.month, as_of.day))
    try:
        return date(year, month, day)
    except ValueError:  # 29 February in a common year: the birthday stays on its side of the day
        return date(year, 2, 28) if edge < 0.1 else date(year, 3, 1)
