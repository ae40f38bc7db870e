"""Read a FHIR R4 Bundle as one patient case in the case vocabulary.

A bundle (collection, searchset or transaction) is validated with ``fhir.resources``
(its R4B models: the library's closest to R4 4.0.1, identical for every resource read
here), its single Patient is the case, and each Condition, Observation, Procedure,
MedicationStatement and Device about that patient is turned into case facts through the
ontology's SKOS mappings (``FhirMapping``): no code, term or threshold is written here.
What this module knows is FHIR itself: which element holds the code, which statuses
mean "it happened", "it did not", "ignore it" (entered-in-error) or "not current".

Unknown is not absent: only a refuted Condition, an Observation with ``valueBoolean``
false, or a MedicationStatement ``not-taken`` records a finding as absent. Anything the
mapping cannot read (an unknown coding, an imprecise date, a unit that does not convert)
is a warning naming the bundle, the resource and the problem, and no fact is invented
for it. A bundle that cannot be read as one patient's case (not a Bundle, invalid FHIR,
no Patient or two, a reference that resolves to nothing) raises ``FhirInputError``.
See docs/fhir-mapping.md.
"""

from __future__ import annotations

import calendar
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Context, Decimal
from functools import lru_cache
from pathlib import Path

import pyoxigraph as ox
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.reference import Reference

from ..knowledge import LBP
from ..pipeline.case_iri import case_iri_problem
from ..pipeline.definitions import same_side
from ..pipeline.input_text import DECIMAL_EXPONENT_LIMIT, TextError, json_document
from . import ucum
from .known_shapes import present_elements
from .mapping import CaseProperty, FhirMapping
from .questionnaire_response import READ_STATUSES
from .validation import READ_TYPES, FhirInputError, brief, cut, validated_bundle
from .validation import is_fhir as is_fhir  # re-exported: callers import it from here

ACCEPTED_TYPES = ("collection", "searchset", "transaction")
UCUM_SYSTEM = "http://unitsofmeasure.org"
CASE_NAMESPACE = str(LBP) + "fhir/"  # case IRI when the Patient has no absolute fullUrl
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
PATIENT_CASE = ox.NamedNode(str(LBP.PatientCase))
HAS_FINDING, HAS_ABSENT_FINDING = str(LBP.hasFinding), str(LBP.hasAbsentFinding)
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
RELATIVE_REFERENCE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/.*)?$")

# FHIR status codes (required bindings of the resources read), by what they mean here.
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
NOT_CURRENT = {"inactive", "remission", "resolved"}
UNCONFIRMED = {"provisional", "differential", "unconfirmed"}
OBSERVATION_USED = {"final", "amended", "corrected", "preliminary"}
PROCEDURE_DONE = {"completed", "in-progress", "stopped"}
MEDICATION_TAKEN = {"active", "completed", "stopped", "on-hold"}
RESPONSE = "QuestionnaireResponse"
READ_THROUGH_REFERENCES = {"Medication"}  # read as MedicationStatement.medicationReference


@dataclass(frozen=True)
class FhirCase:
    """One bundle read as a case: its triples, the case IRI, the warnings, and the Patient
    entry (so that FHIR output can refer to the same patient)."""

    case_iri: str
    ntriples: str | None
    """None in a case whose triples were handed on as its lines (``cases.read_file``)."""
    warnings: list[str]
    patient_full_url: str
    patient: dict

    def quads(self) -> list[ox.Quad]:
        if self.ntriples is None:
            raise ValueError(f"the triples of {self.case_iri} were handed on as lines")
        return list(ox.parse(self.ntriples, format=ox.RdfFormat.N_TRIPLES))


def warm_up(mapping: FhirMapping) -> None:
    """Load what reading the first bundle would otherwise wait for: the models of the
    resource types read, with their field tables, and the unit registry with the units the
    case properties are in. A worker process calls it as it starts, while the main process
    lists or sorts the input."""
    from .known_shapes import fields, resource_model

    for kind in ("Bundle", *READ_TYPES):
        if (model := resource_model(kind)) is not None:
            fields(model)
    for prop in mapping.properties.values():
        if prop.unit:
            ucum.load(prop.unit)


def read_bundle(path: Path, as_of: date, mapping: FhirMapping) -> FhirCase:
    """``bundle_to_case`` for a JSON file; unreadable JSON is a ``FhirInputError`` too."""
    try:
        doc = json_document(path.read_bytes())  # a byte-order mark is allowed
    except TextError as exc:
        raise FhirInputError(str(path), f"cannot be read as JSON: {exc}") from None
    except OSError as exc:
        raise FhirInputError(str(path), f"cannot be read: {exc.strerror or exc}") from None
    return bundle_to_case(doc, str(path), as_of, mapping)


def read_bundles(
    paths: Iterable[Path], as_of: date, mapping: FhirMapping
) -> tuple[list[FhirCase], list[FhirInputError]]:
    """Every bundle file read on its own: a bad bundle is an error for that bundle only."""
    cases, errors = [], []
    for path in paths:
        try:
            cases.append(read_bundle(path, as_of, mapping))
        except FhirInputError as exc:
            errors.append(exc)
    return cases, errors


def bundle_to_case(
    doc: dict, source: str, as_of: date, mapping: FhirMapping, located: Sequence[str] | None = None
) -> FhirCase:
    """The case that a FHIR Bundle describes, as of the reference date ``as_of`` (ages and
    durations are counted up to it). Raises ``FhirInputError`` for a bundle that is not one
    patient's valid FHIR data; every other problem is a warning in the result. ``located``
    gives where each entry was read from (a Bulk Data file and line), for messages."""
    if isinstance(doc, dict) and doc.get("resourceType") == RESPONSE:
        doc = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": doc}]}
    entries = _validated_entries(doc, source, located)
    if not any(e.type == "Patient" for e in entries):
        doc, entries = _with_responses_patient(doc, source, entries)
        patient_told = False
    else:
        patient_told = True
    index = _References(source, entries)
    patient = _the_patient(source, entries)
    reader = _Reader(source, as_of, mapping, index, patient, patient_told)
    reader.read_patient()
    for entry in entries:
        if entry is not patient:
            reader.read(entry)
    reader.warn_unread_types()
    reader.warn_unknown_age()
    return FhirCase(
        case_iri=reader.case.value,
        ntriples="".join(f"{t} .\n" for t in sorted(reader.triples)),
        warnings=reader.warnings,
        patient_full_url=patient.full_url or reader.case.value,
        patient=doc["entry"][patient.position]["resource"],
    )


# -- the bundle -----------------------------------------------------------------------
@dataclass(slots=True)  # not frozen: a frozen dataclass's fields are set slowly, and a bundle has many
class _Entry:
    position: int
    full_url: str | None
    resource: object  # a fhir.resources model, or a view of one (``known_shapes.View``)
    located: str | None = None  # the file and line a Bulk Data resource was read from
    type: str = field(init=False)

    def __post_init__(self) -> None:
        self.type = self.resource.get_resource_type()  # read often

    @property
    def name(self) -> str:
        """How messages name the resource: ``Type/id``, or its entry number."""
        rid = getattr(self.resource, "id", None)
        if self.located:
            return f"{self.type}/{rid} ({self.located})" if rid else f"{self.type} ({self.located})"
        return f"{self.type}/{rid}" if rid else f"{self.type} (entry {self.position})"


def _validated_entries(doc: object, source: str, located: Sequence[str] | None = None) -> list[_Entry]:
    bundle = validated_bundle(doc, source, ACCEPTED_TYPES, located)
    return [
        _Entry(i, e.fullUrl, e.resource, located[i] if located else None)
        for i, e in enumerate(bundle.entry or [])
        if e.resource is not None
    ]


def _with_responses_patient(doc: dict, source: str, entries: list[_Entry]) -> tuple[dict, list[_Entry]]:
    """A bundle without a Patient whose questionnaire responses all name one subject (or
    one response, named by its id) is that patient's case: the Patient is added as the
    subject reference names it, with nothing else known of it (its age, if asked, is an
    answer). Any other bundle without a Patient is returned as it is."""
    responses = [e for e in entries if e.type == RESPONSE]
    subjects = {getattr(e.resource.subject, "reference", None) for e in responses}
    if not responses or len(subjects) > 1 or (None in subjects and len(responses) > 1):
        return doc, entries
    (subject,) = subjects
    rid = getattr(responses[0].resource, "id", None)
    match = RELATIVE_REFERENCE.match(subject or "")
    if subject is None and rid:
        full_url, patient = None, {"resourceType": "Patient", "id": rid}
        responses[0].resource.subject = Reference(reference=f"Patient/{rid}")
    elif match and match["type"] == "Patient":
        full_url, patient = None, {"resourceType": "Patient", "id": match["id"]}
    elif subject and _ABSOLUTE.match(subject):
        full_url, patient = subject, {"resourceType": "Patient"}
    else:
        return doc, entries
    added = {**({"fullUrl": full_url} if full_url else {}), "resource": patient}
    doc = {**doc, "entry": [*doc.get("entry", []), added]}
    return doc, [*entries, _Entry(len(doc["entry"]) - 1, full_url, Patient.model_validate(patient))]


def _the_patient(source: str, entries: list[_Entry]) -> _Entry:
    patients = [e for e in entries if e.type == "Patient"]
    if not patients:
        raise FhirInputError(
            source,
            "no Patient in the bundle (nor one questionnaire response's subject): "
            "a case is one patient's data",
        )
    if len(patients) > 1:
        names = ", ".join(p.name for p in patients)
        raise FhirInputError(
            source, f"{len(patients)} Patients in the bundle ({names}): a case is one patient"
        )
    return patients[0]


class _References:
    """Resolve references inside the bundle: by fullUrl, or ``Type/id`` (against the
    referring entry's RESTful base first, then among the bundle's resources)."""

    def __init__(self, source: str, entries: list[_Entry]):
        self.source = source
        self.by_url = {e.full_url: e for e in entries if e.full_url}
        self.by_type_id: dict[str, list[_Entry]] = {}
        self.relatives: dict[tuple[str, str | None], _Entry | None] = {}
        for e in entries:
            if getattr(e.resource, "id", None):
                self.by_type_id.setdefault(f"{e.type}/{e.resource.id}", []).append(e)

    def resolve(self, referrer: _Entry, element: str, reference) -> _Entry:
        text = getattr(reference, "reference", None)
        if not text:
            raise FhirInputError(self.source, f"{element} has no literal reference to resolve", referrer.name)
        found = self.by_url.get(text) or self._relative(referrer, text)
        if found is None:
            raise FhirInputError(
                self.source,
                f"{element} reference {brief(text)} resolves to no entry of the bundle",
                referrer.name,
            )
        return found

    def _relative(self, referrer: _Entry, text: str) -> _Entry | None:
        """The entry a relative reference names, found once per text and base: a bundle's
        resources mostly refer to its one Patient alike."""
        base = _restful_base(referrer)
        if (text, base) in self.relatives:
            return self.relatives[(text, base)]
        match = RELATIVE_REFERENCE.match(text)
        if not match:
            return None
        key = f"{match['type']}/{match['id']}"
        if base and f"{base}/{key}" in self.by_url:
            return self.by_url[f"{base}/{key}"]
        candidates = self.by_type_id.get(key, [])
        if len(candidates) > 1:
            raise FhirInputError(
                self.source, f"reference {brief(text)} matches several entries", referrer.name
            )
        found = self.relatives[(text, base)] = candidates[0] if candidates else None
        return found


def _restful_base(entry: _Entry) -> str | None:
    return restful_base(entry.full_url, entry.type, getattr(entry.resource, "id", None))


def restful_base(full_url: object, kind: str, rid: object) -> str | None:
    """The RESTful server base of an entry whose ``fullUrl`` is ``{base}/{kind}/{rid}``,
    against which its relative references resolve first; None for any other fullUrl."""
    if not (isinstance(full_url, str) and isinstance(rid, str) and rid):
        return None
    suffix = f"/{kind}/{rid}"
    return full_url[: -len(suffix)] if full_url.startswith("http") and full_url.endswith(suffix) else None


# -- dates ------------------------------------------------------------------------------
DateBounds = tuple[date, date]  # earliest and latest day a FHIR date can mean


def _bounds(value: date | str | None) -> DateBounds | None:
    """A FHIR date or dateTime as the days it can mean (partial dates span a range)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date(), value.date()
    if isinstance(value, date):
        return value, value
    text = str(value)
    year = int(text[:4])
    if len(text) == 4:
        return date(year, 1, 1), date(year, 12, 31)
    month = int(text[5:7])
    if len(text) == 7:
        return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    day = date.fromisoformat(text[:10])
    return day, day


def age_on(birth: date, as_of: date) -> int:
    """Whole years from ``birth`` to ``as_of``: the birthday itself counts (a person born on
    29 February turns a year older on 1 March in other years)."""
    return as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))


# -- what one resource says -------------------------------------------------------------
@dataclass(frozen=True)
class _Quantity:
    value: Decimal
    system: str | None
    code: str | None


@dataclass(frozen=True)
class _Span:
    """A period: from ``start`` to ``end`` (to the reference date when open)."""

    start: DateBounds
    end: DateBounds | None = None


@dataclass(slots=True)  # one per resource read: see ``_Entry``
class _Claim:
    """What one resource says about the patient, before the mapping gives it meaning."""

    entry: _Entry
    codings: tuple[tuple[str | None, str | None], ...]
    present: bool = True
    current: bool = True
    status: str = ""  # the status that made it not current, for messages
    measure: _Quantity | _Span | None = None
    valued: bool = False  # the measure is the resource's value (an Observation's value[x])
    onset: DateBounds | None = None
    when: DateBounds | None = None


def _codings(concept) -> tuple[tuple[str | None, str | None], ...]:
    return tuple([(c.system, c.code) for c in (getattr(concept, "coding", None) or [])])


def _status_codes(concept, system: str) -> set[str]:
    return {c.code for c in (getattr(concept, "coding", None) or []) if c.system == system and c.code}


def _shown(codings) -> str:
    return ", ".join(f"{cut(s or '(no system)')}|{cut(c or '(no code)')}" for s, c in codings)


PLACES = range(6, 19)
"""Decimals a value read from FHIR is rounded to: six (a converted duration, a whole number
of days in weeks), more where six would change how it compares with a number of the
ontology, at most 18 (what the store holds: see ``pipeline.validate``)."""
ROUNDING = Context(prec=60)  # a value has at most 20 significant digits (``ucum``): exact


def _decimal_text(value: Decimal, numbers: Sequence[Decimal]) -> str:
    """A decimal literal: exact when it has at most six decimals; otherwise rounded to the
    fewest decimals from six that keep every comparison with the ontology's ``numbers``, so
    that a value a ten-millionth below a bound stays below it (six decimals would put it on
    the bound, meeting what the value does not); exact when no rounding keeps them."""
    if value.as_tuple().exponent < -PLACES[0]:
        for places in PLACES:
            rounded = value.quantize(Decimal(1).scaleb(-places), context=ROUNDING)
            if same_side(rounded, value, numbers):
                value = rounded
                break
    text = format(value.normalize(ROUNDING), "f")
    return text if text != "-0" else "0"


@dataclass
class _Reader:
    """Turns the entries of one bundle into triples about the case, collecting warnings."""

    source: str
    as_of: date
    mapping: FhirMapping
    index: _References
    patient: _Entry
    patient_told: bool = True  # False: the Patient is only a questionnaire response's subject
    triples: set[str] = field(default_factory=set)
    """Each triple as ``str`` of it gives (N-Triples without the final " ."): a string is
    made and compared faster than a pyoxigraph triple, and sorts the same."""
    predicates: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    unread: Counter = field(default_factory=Counter)
    case: ox.NamedNode = field(init=False)
    subject: str = field(init=False)  # the case in N-Triples

    def __post_init__(self) -> None:
        self.case = ox.NamedNode(self._case_iri())
        self.subject = str(self.case)
        self.triples.add(f"{self.subject} {RDF_TYPE} {PATIENT_CASE}")

    def _case_iri(self) -> str:
        url, rid = self.patient.full_url, getattr(self.patient.resource, "id", None)
        iri = url if url and _ABSOLUTE.match(url) else (f"{CASE_NAMESPACE}Patient/{rid}" if rid else None)
        if iri is None:
            raise FhirInputError(
                self.source,
                "the Patient has neither an absolute fullUrl nor an id to name the case",
                "Patient",
            )
        try:
            ox.NamedNode(iri)
        except ValueError as exc:
            raise FhirInputError(
                self.source, f"fullUrl {brief(iri)} is not an IRI: {exc}", self.patient.name
            ) from None
        if problem := case_iri_problem(iri):
            raise FhirInputError(self.source, f"fullUrl: {problem}", self.patient.name)
        return iri

    def warn(self, entry: _Entry, message: str) -> None:
        self.warnings.append(f"{self.source}: {entry.name}: {message}")

    def add(self, prop: str, value: ox.NamedNode | ox.Literal | str) -> None:
        """A triple about the case; ``value`` a term, or a term already in N-Triples."""
        self.predicates.add(prop)
        self.triples.add(f"{self.subject} {_iri(prop)} {value}")

    # -- Patient ------------------------------------------------------------------------
    def read_patient(self) -> None:
        """Age from the birthDate (an unknown age is said after the other resources, which
        may answer it: ``warn_unknown_age``) and administrative sex from the gender."""
        patient, entry = self.patient.resource, self.patient
        born = _bounds(patient.birthDate)
        if born is not None and born[0] > self.as_of:
            raise FhirInputError(
                self.source,
                f"birthDate {patient.birthDate} is after the reference date {self.as_of}",
                entry.name,
            )
        if born is not None:
            youngest, oldest = age_on(born[1], self.as_of), age_on(born[0], self.as_of)
            if youngest != oldest:
                self.warn(
                    entry,
                    f"birthDate {patient.birthDate} gives age {youngest} or {oldest} on {self.as_of}: "
                    "age unknown",
                )
            else:
                self.add(str(LBP.ageInYears), ox.Literal(str(oldest), datatype=ox.NamedNode(XSD + "integer")))
        if patient.gender:
            sex = self.mapping.sexes.get(patient.gender)
            if sex is None:
                self.warn(entry, f"gender {brief(patient.gender)} has no administrative sex in the ontology")
            else:
                self.add(str(LBP.administrativeSex), ox.NamedNode(sex))

    # -- other resources ----------------------------------------------------------------
    def read(self, entry: _Entry) -> None:
        reader = _READERS.get(entry.type)
        if reader is None:
            if entry.type not in READ_THROUGH_REFERENCES:
                self.unread[entry.type] += 1
            return
        claim = reader(self, entry)
        if claim is not None:
            self._apply(claim)

    def warn_unknown_age(self) -> None:
        """Say the age is unknown when the bundle gave neither a birthDate nor an answer to
        the age question (a Patient that is only a response's subject has no birthDate)."""
        answered = str(LBP.ageInYears) in self.predicates
        if self.patient_told and self.patient.resource.birthDate is None and not answered:
            self.warn(self.patient, "no birthDate: age unknown")

    def warn_unread_types(self) -> None:
        if self.unread:
            kinds = ", ".join(f"{t} ({n})" for t, n in sorted(self.unread.items()))
            self.warnings.append(
                f"{self.source}: resources of types the mapping does not read, not used: {kinds}"
            )

    def _about_patient(self, entry: _Entry, element: str) -> bool:
        """Whether the resource's subject (or patient) is the bundle's Patient; a
        reference that resolves to nothing is an error for the whole bundle."""
        reference = getattr(entry.resource, element, None)
        if reference is None:
            self.warn(entry, f"no {element}: not known to be about the patient, not used")
            return False
        if self.index.resolve(entry, element, reference) is not self.patient:
            self.warn(entry, f"{element} is not the bundle's Patient: not used")
            return False
        return True

    def _condition(self, entry: _Entry) -> _Claim | None:
        res = entry.resource
        verification = _status_codes(res.verificationStatus, CONDITION_VERIFICATION)
        if "entered-in-error" in verification or not self._about_patient(entry, "subject"):
            return None
        if verification & UNCONFIRMED:
            self.warn(
                entry,
                f"verification status {', '.join(sorted(verification))}: not counted, "
                "neither present nor absent",
            )
            return None
        clinical = _status_codes(res.clinicalStatus, CONDITION_CLINICAL) & NOT_CURRENT
        onset = _bounds(res.onsetDateTime) or _bounds(res.onsetPeriod.start if res.onsetPeriod else None)
        return _Claim(
            entry,
            _codings(res.code),
            present="refuted" not in verification,
            current=not clinical,
            status=", ".join(sorted(clinical)),
            onset=onset,
            when=onset,
        )

    def _observation(self, entry: _Entry) -> _Claim | None:
        res = entry.resource
        if res.status == "entered-in-error" or not self._about_patient(entry, "subject"):
            return None
        if res.status not in OBSERVATION_USED:
            self.warn(entry, f"status {brief(res.status)}: no result to read, not used")
            return None
        if res.component:
            self.warn(entry, "components are not read")
        if res.dataAbsentReason is not None:
            reason = _shown(_codings(res.dataAbsentReason)) or res.dataAbsentReason.text
            self.warn(entry, f"no value ({reason}): not assessed, not used")
            return None
        when = _bounds(res.effectiveDateTime) or _bounds(
            res.effectivePeriod.start if res.effectivePeriod else None
        )
        codings = _codings(res.code)
        if res.valueBoolean is not None:
            return _Claim(entry, codings, present=res.valueBoolean, when=when)
        if res.valueQuantity is not None:
            q = res.valueQuantity
            if q.value is None:
                self.warn(entry, "the quantity has no value: not used")
                return None
            measure = _Quantity(Decimal(str(q.value)), q.system, q.code)
            return _Claim(entry, codings, measure=measure, valued=True, when=when)
        if res.valuePeriod is not None or res.valueDateTime is not None:
            period = res.valuePeriod
            span = (
                self._span(entry, period.start, period.end)
                if period
                else self._span(entry, res.valueDateTime, None)
            )
            return _Claim(entry, codings, measure=span, valued=True, when=when) if span else None
        other = [k for k in present_elements(res) if k.startswith("value")]
        if other:
            self.warn(
                entry, f"{other[0]} is not read (use valueBoolean, valueQuantity or a period): not used"
            )
            return None
        return _Claim(entry, codings, when=when)

    def _procedure(self, entry: _Entry) -> _Claim | None:
        res = entry.resource
        if res.status == "entered-in-error" or not self._about_patient(entry, "subject"):
            return None
        if res.status not in PROCEDURE_DONE:
            self.warn(entry, f"status {brief(res.status)}: not known to have been done, not used")
            return None
        period = res.performedPeriod
        span = self._span(entry, period.start, period.end) if period else None
        when = span.start if span else _bounds(res.performedDateTime)
        return _Claim(entry, _codings(res.code), measure=span, when=when)

    def _medication_statement(self, entry: _Entry) -> _Claim | None:
        res = entry.resource
        if res.status == "entered-in-error" or not self._about_patient(entry, "subject"):
            return None
        if res.status not in MEDICATION_TAKEN | {"not-taken"}:
            self.warn(entry, f"status {brief(res.status)}: not known to be taken, not used")
            return None
        concept = res.medicationCodeableConcept
        if concept is None:
            medication = self.index.resolve(entry, "medicationReference", res.medicationReference)
            concept = getattr(medication.resource, "code", None)
        period = res.effectivePeriod
        span = self._span(entry, period.start, period.end) if period else None
        when = span.start if span else _bounds(res.effectiveDateTime)
        return _Claim(entry, _codings(concept), present=res.status != "not-taken", measure=span, when=when)

    def _device(self, entry: _Entry) -> _Claim | None:
        res = entry.resource
        if res.status == "entered-in-error" or not self._about_patient(entry, "patient"):
            return None
        if res.status not in (None, "active"):
            self.warn(entry, f"status {brief(res.status)}: not known to be in place, not used")
            return None
        return _Claim(entry, _codings(res.type))

    def _questionnaire_response(self, entry: _Entry) -> None:
        """Record the answers of a response to the generated questionnaire (SDC ``$extract``
        by definition); a response that cannot be read whole is an error for the case."""
        res, form = entry.resource, self.mapping.form
        if res.status == "entered-in-error" or not self._about_patient(entry, "subject"):
            return None
        if form is None:
            raise FhirInputError(
                self.source, "this knowledge base gives no questionnaire to answer", entry.name
            )
        form.check_answers(res.questionnaire, self.source, entry.name)
        if res.status not in READ_STATUSES:
            self.warn(entry, f"status {brief(res.status)}: no answers to read, not used")
            return None
        for answer in form.answers(res, self.source, entry.name):
            item = answer.item
            if item.type == "choice":
                prop = LBP.hasFinding if answer.value else LBP.hasAbsentFinding
                self.add(str(prop), ox.NamedNode(item.definition))
                continue
            prop = self.mapping.properties.get(item.definition)
            if prop is None:
                raise FhirInputError(
                    self.source, f"item {item.link_id}: {item.definition} is not a case property", entry.name
                )
            if isinstance(answer.value, Decimal):
                unit = answer.quantity or (UCUM_SYSTEM, prop.unit)
                self._answered_number(entry, item.link_id, prop, _Quantity(answer.value, *unit))
            else:  # an integer or a boolean, as the item's type gives it
                text = str(answer.value).lower()
                self.add(prop.iri, ox.Literal(text, datatype=ox.NamedNode(prop.datatype)))
        return None

    def _answered_number(self, entry: _Entry, link_id: str, prop: CaseProperty, quantity: _Quantity) -> None:
        """A number answered in the item's unit or in a quantity's: converted like any other
        quantity, but one that cannot be is an error for the response, not a warning."""
        try:
            self._add_number(prop, quantity)
        except ValueError as exc:
            raise FhirInputError(self.source, f"item {link_id}: {exc}", entry.name) from None

    def _span(self, entry: _Entry, start, end) -> _Span | None:
        if start is None:
            self.warn(entry, "the period has no start")
            return None
        return _Span(_bounds(start), _bounds(end))

    # -- meaning, from the mapping ------------------------------------------------------
    def _apply(self, claim: _Claim) -> None:
        entry = claim.entry
        if claim.when is not None and claim.when[0] > self.as_of:
            self.warn(entry, f"dated after the reference date {self.as_of}: not used")
            return
        codings = claim.codings
        if len(codings) == 1:  # most resources: one coding, nothing to merge (its terms are distinct)
            terms = self.mapping.terms.get(codings[0], ())
            unknown = [] if terms else list(codings)
        else:
            known = {c: self.mapping.terms.get(c, ()) for c in codings}
            unknown = [c for c, ts in known.items() if not ts]
            terms = list(dict.fromkeys(t for ts in known.values() for t in ts))
        if not codings:
            self.warn(entry, "its code has no coding: not used")
        elif unknown:
            tail = "read through its other codings" if terms else "not used"
            self.warn(entry, f"no mapping for {_shown(unknown)}: {tail}")
        handled = [self._apply_term(claim, term) for term in terms]
        if terms and not any(handled):
            labels = ", ".join(self.mapping.label(t) for t in terms)
            self.warn(entry, f"recognised as {labels}, which is not a case fact the criteria use: not used")

    def _apply_term(self, claim: _Claim, term: str) -> bool:
        """Record what ``claim`` says about ``term``; False if the term is no case fact."""
        if term in self.mapping.findings:
            self._finding(claim, term)
        elif term in self.mapping.properties:
            self._property(claim, self.mapping.properties[term])
        elif onset_properties := self.mapping.onset_properties(term):
            for prop in onset_properties:
                self._onset(claim, term, prop)
        else:
            return False
        return True

    def _finding(self, claim: _Claim, term: str) -> None:
        if claim.valued:
            label = self.mapping.label(term)
            self.warn(claim.entry, f"{label} is recorded present or absent, not with a value: not used")
        elif claim.present and not claim.current and term not in self.mapping.past_findings:
            label = self.mapping.label(term)
            self.warn(
                claim.entry, f"{label} is {claim.status}: not a current finding, and not recorded absent"
            )
        else:
            self.add(HAS_FINDING if claim.present else HAS_ABSENT_FINDING, _iri(term))

    def _property(self, claim: _Claim, prop: CaseProperty) -> None:
        label = self.mapping.label(prop.iri)
        if not claim.current:
            self.warn(claim.entry, f"{label}: the condition is {claim.status}, not used")
        elif prop.datatype == XSD + "boolean" and claim.measure is None:
            self.add(
                prop.iri,
                ox.Literal("true" if claim.present else "false", datatype=ox.NamedNode(prop.datatype)),
            )
        elif prop.datatype == XSD + "decimal" and claim.present and claim.measure is not None:
            self._number(claim.entry, prop, claim.measure)
        else:
            self.warn(claim.entry, f"{label} needs {_expected(prop)}: not used")

    def _onset(self, claim: _Claim, term: str, prop: CaseProperty) -> None:
        label, condition = self.mapping.label(prop.iri), self.mapping.label(term)
        if not claim.present or not claim.current:
            self.warn(claim.entry, f"{condition} is {claim.status or 'refuted'}: {label} not counted")
        elif claim.onset is None:
            self.warn(claim.entry, f"{condition} has no onset date: {label} unknown")
        else:
            self._number(claim.entry, prop, _Span(claim.onset))

    def _number(self, entry: _Entry, prop: CaseProperty, measure: _Quantity | _Span) -> None:
        try:
            self._add_number(prop, measure)
        except ValueError as exc:
            self.warn(entry, f"{self.mapping.label(prop.iri)}: {exc}; not used")

    def _add_number(self, prop: CaseProperty, measure: _Quantity | _Span) -> None:
        """Record ``measure`` in the property's unit; raises ValueError saying why it cannot be."""
        try:
            value = self._in_unit(measure, prop)
        except ArithmeticError:  # the conversion's decimal arithmetic overflowed
            value = None
        if value is None or not value.is_finite() or abs(value.adjusted()) > DECIMAL_EXPONENT_LIMIT:
            shown = measure.value if isinstance(measure, _Quantity) else "the period"
            raise ValueError(f"{cut(str(shown))} is out of range")
        text = _decimal_text(value, self.mapping.numbers)
        self.add(prop.iri, ox.Literal(text, datatype=ox.NamedNode(prop.datatype)))

    def _in_unit(self, measure: _Quantity | _Span, prop: CaseProperty) -> Decimal:
        """The measure in the property's UCUM unit (raises ValueError saying why not)."""
        if prop.unit is None:
            raise ValueError("the ontology gives no UCUM unit for it")
        if isinstance(measure, _Quantity):
            if measure.system != UCUM_SYSTEM or not measure.code:
                raise ValueError(f"the quantity has no UCUM code (system {UCUM_SYSTEM})")
            return ucum.convert(measure.value, measure.code, prop.unit)
        return ucum.convert(Decimal(self._days(measure)), "d", prop.unit)

    def _days(self, span: _Span) -> int:
        """Whole days of a period, ended at the reference date if open or later."""
        end = span.end or (self.as_of, self.as_of)
        if span.start[0] != span.start[1] or end[0] != end[1]:
            raise ValueError("a partial date makes the duration uncertain")
        if span.start[0] > self.as_of:
            raise ValueError(f"the period starts after the reference date {self.as_of}")
        days = (min(end[0], self.as_of) - span.start[0]).days
        if days < 0:
            raise ValueError("the period ends before it starts")
        return days


_READERS: dict[str, Callable[[_Reader, _Entry], _Claim | None]] = {
    "Condition": _Reader._condition,
    "Observation": _Reader._observation,
    "Procedure": _Reader._procedure,
    "MedicationStatement": _Reader._medication_statement,
    "Device": _Reader._device,
    RESPONSE: _Reader._questionnaire_response,
}
"""The reader of each resource type read."""


@lru_cache(maxsize=4096)  # properties and terms of the knowledge base: bounded by it
def _iri(iri: str) -> str:
    """An IRI in N-Triples (checked as pyoxigraph checks it)."""
    return str(ox.NamedNode(iri))


def _expected(prop: CaseProperty) -> str:
    if prop.datatype == XSD + "boolean":
        return "a yes/no answer (present, absent or valueBoolean)"
    if prop.datatype == XSD + "decimal":
        return f"a quantity in a unit convertible to {prop.unit} or a period"
    return f"a value of type {prop.datatype}"
