"""The ontology: parses, is OWL 2 DL that HermiT accepts, and holds every criterion of
the two source documents as a defined class with its outcome and sources."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rdflib import OWL, RDF, RDFS, XSD, BNode, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection
from rdflib.namespace import DCTERMS, PROV, SKOS
from rdflib.plugins.sparql import prepareQuery

from reasoner.knowledge import LBP, catalog_entries
from reasoner.pipeline import classify_hermit

ROOT = Path(__file__).resolve().parent.parent
EX = Namespace("https://example.org/case/")


def test_every_rdf_and_query_file_parses():
    files = [*ROOT.glob("ontology/*.ttl"), *ROOT.glob("shapes/*.ttl")]
    assert len(files) >= 8
    for path in files:
        Graph().parse(path)
    for path in ROOT.glob("queries/*.rq"):
        prepareQuery(path.read_text(encoding="utf-8"))


def test_catalog_resolves_every_import(onto):
    entries = catalog_entries(ROOT / "ontology")
    assert set(entries.values()) == set((ROOT / "ontology").glob("*.ttl"))
    for imported in onto.objects(None, OWL.imports):
        assert str(imported) in entries, f"owl:imports {imported} is not in the catalog"
    root = ET.parse(ROOT / "ontology" / "catalog-v001.xml").getroot()
    assert root.tag.endswith("catalog")


def test_ontology_metadata(onto):
    ont = URIRef("https://w3id.org/lbp-imaging/ontology")
    assert (ont, RDF.type, OWL.Ontology) in onto
    for prop in (
        OWL.versionIRI,
        DCTERMS.title,
        DCTERMS.description,
        DCTERMS.license,
        DCTERMS.creator,
    ):
        assert onto.value(ont, prop) is not None, f"ontology lacks {prop}"
    assert "not diagnosis" in str(onto.value(ont, DCTERMS.description))


@pytest.mark.hermit
def test_hermit_finds_the_ontology_consistent_with_no_unsatisfiable_class(onto):
    report = classify_hermit.check_consistency(onto)
    assert report.consistent, report.error
    assert report.unsatisfiable == ()


CRITERIA = {
    # criterion: (indicated procedure, urgency)
    "SuspectedCaudaEquinaSyndrome": ("MRILumbarSpineWithoutContrast", "Emergent"),
    "SevereOrProgressiveNeurologicDeficit": ("MRILumbarSpineWithoutContrast", "Emergent"),
    "SuspectedSpinalInfection": ("MRILumbarSpineWithoutContrast", "Prompt"),
    "SuspectedMalignancyKnownCancer": ("MRILumbarSpineWithoutContrast", "Prompt"),
    "MalignancyRiskFactorsFirstLineTests": ("LumbarSpineRadiography", "Routine"),
    "MalignancyRiskFactorsWithAbnormalFirstLineTest": ("MRILumbarSpineWithoutContrast", "Prompt"),
    "SuspectedVertebralFracture": ("MRILumbarSpineWithoutContrast", "Prompt"),
    "PersistentRadiculopathyInCandidate": ("MRILumbarSpineWithoutContrast", "Routine"),
    "SpinalStenosisInCandidate": ("MRILumbarSpineWithoutContrast", "Routine"),
    "DiagnosticUncertaintyInSurgicalCandidate": ("MRILumbarSpineWithoutContrast", "Routine"),
    "PersistentSymptomsInCandidate": ("MRILumbarSpineWithoutContrast", "Routine"),
    "SuspectedInflammatoryBackDisease": ("SpecialistReferralForTargetedImaging", "Routine"),
}
RULES = {
    "ContrastForSuspectedInfectionMalignancyOrInflammation": "requiresIVContrast",
    "ContrastForPostoperativeSpine": "requiresIVContrast",
    "MRIContraindicatedCase": "mriContraindicated",
}


def _has_value_axioms(onto: Graph, cls: URIRef) -> dict[URIRef, URIRef | Literal]:
    found = {}
    for sup in onto.objects(cls, RDFS.subClassOf):
        if isinstance(sup, BNode) and onto.value(sup, OWL.hasValue) is not None:
            found[onto.value(sup, OWL.onProperty)] = onto.value(sup, OWL.hasValue)
    return found


@pytest.mark.parametrize("name", sorted(CRITERIA))
def test_criterion_is_a_defined_class_with_its_outcome_and_sources(onto, name):
    cls = LBP[name]
    assert onto.value(cls, OWL.equivalentClass) is not None, "no owl:equivalentClass definition"
    assert (cls, RDFS.subClassOf * "+", LBP.ImagingCriterion) in onto or any(
        (sup, RDFS.subClassOf, LBP.ImagingCriterion) in onto for sup in onto.objects(cls, RDFS.subClassOf)
    )
    outcome = _has_value_axioms(onto, cls)
    procedure, urgency = CRITERIA[name]
    assert outcome[LBP.indicatesProcedure] == LBP[procedure]
    assert outcome[LBP.hasUrgency] == LBP[urgency]
    assert outcome[LBP.hasAppropriateness] in {
        LBP.UsuallyAppropriate,
        LBP.MayBeAppropriate,
        LBP.UsuallyNotAppropriate,
    }
    statements = list(onto.objects(cls, PROV.wasDerivedFrom))
    assert statements and all(str(s).startswith(str(LBP) + "statement/") for s in statements)
    assert onto.value(cls, SKOS.definition) is not None


@pytest.mark.parametrize("name", sorted(RULES))
def test_procedure_modifier_rules_are_defined_with_their_effect(onto, name):
    cls = LBP[name]
    assert onto.value(cls, OWL.equivalentClass) is not None
    assert _has_value_axioms(onto, cls)[LBP[RULES[name]]] == Literal(True)
    assert list(onto.objects(cls, PROV.wasDerivedFrom))


def test_no_imaging_is_modelled_as_a_closed_world_concept_with_sources(onto):
    cls = LBP.NonspecificLowBackPainWithoutRedFlags
    assert onto.value(cls, OWL.equivalentClass) is None, "must not be an OWL definition"
    assert (cls, RDFS.subClassOf, LBP.NoImagingIndicated) in onto
    assert "closed-world" in str(onto.value(cls, LBP.reasoningMode))
    assert len(list(onto.objects(cls, PROV.wasDerivedFrom))) >= 5


def test_malignancy_pathway_offers_esr_and_thresholds_are_datatype_facets(onto):
    outcome = _has_value_axioms(onto, LBP.MalignancyRiskFactorsFirstLineTests)
    assert outcome[LBP.alternativeProcedure] == LBP.ESRTest
    facets = {
        (onto.value(r, OWL.onProperty), p, onto.value(f, p))
        for r in onto.subjects(OWL.onProperty, None)
        if (dt := onto.value(r, OWL.someValuesFrom)) is not None and onto.value(dt, OWL.onDatatype)
        for f in Collection(onto, onto.value(dt, OWL.withRestrictions))
        for p in (XSD.minInclusive, XSD.minExclusive)
        if onto.value(f, p) is not None
    }
    assert (LBP.ageInYears, XSD.minExclusive, Literal(50)) in facets
    assert (LBP.esrMmPerHour, XSD.minInclusive, Literal("20.0", datatype=XSD.decimal)) in facets
    assert (
        LBP.conservativeTreatmentWeeks,
        XSD.minInclusive,
        Literal("6.0", datatype=XSD.decimal),
    ) in facets


FINDINGS = {
    "CaudaEquinaSign": [
        "NewUrinaryDysfunction",
        "BowelDysfunction",
        "SexualDysfunction",
        "SaddleAnaesthesia",
        "BilateralLegWeakness",
        "BilateralLegSensoryChange",
        "BilateralAbsentReflexes",
    ],
    "SevereNeurologicDeficitSign": [
        "RapidlyWorseningLegWeakness",
        "PronouncedLegWeakness",
        "FootDrop",
        "MultifocalNeurologicDeficit",
    ],
    "InfectionRiskFactor": [
        "Fever",
        "IntravenousDrugUse",
        "RecentInfection",
        "Immunosuppression",
    ],
    "MalignancyRiskFactor": ["HistoryOfCancer", "UnexplainedWeightLoss", "NightOrRestPain"],
    "FractureRiskFactor": ["Osteoporosis", "ProlongedCorticosteroidUse", "SignificantTrauma"],
    "RedFlag": ["MinorTrauma", "GeneralWeakness"],
    "TestResultFinding": ["ElevatedInflammatoryMarkers"],
    "RadicularFinding": ["PainRadiatingBelowKnee"],
    "NerveRootIrritationSign": ["DermatomalSensoryLoss", "MyotomalWeakness", "ReflexChange"],
    "SpinalStenosisSign": ["NeurogenicClaudication", "PositionalRelief"],
    "InflammatoryBackDiseaseSign": ["SuspectedAxialSpondyloarthritis"],
    "MRIContraindication": ["MRIIncompatibleDevice", "SignificantMetalArtefact"],
}


@pytest.mark.parametrize("category", sorted(FINDINGS))
def test_every_finding_named_by_the_sources_is_in_its_category(onto, category):
    assert (LBP[category], RDFS.subClassOf * "+", LBP.ClinicalFinding) in onto
    for name in FINDINGS[category]:
        finding = LBP[name]
        assert (finding, RDF.type, LBP[category]) in onto, f"{name} is not a {category}"
        assert onto.value(finding, RDFS.label) is not None
        assert list(onto.objects(finding, SKOS.altLabel)), f"{name} has no synonym"
        assert list(onto.objects(finding, PROV.wasDerivedFrom)), f"{name} cites no statement"


@pytest.mark.parametrize(
    ("name", "modality", "contrast", "ionising"),
    [
        ("MRILumbarSpineWithoutContrast", "MagneticResonance", "NoContrast", False),
        (
            "MRILumbarSpineWithoutAndWithContrast",
            "MagneticResonance",
            "IVContrastWithoutAndWith",
            False,
        ),
        ("CTMyelographyLumbar", "ComputedTomography", "IntrathecalContrast", True),
        ("LumbarSpineRadiography", "Radiography", "NoContrast", True),
        ("ESRTest", "ClinicalLaboratory", "NoContrast", False),
    ],
)
def test_procedures_carry_modality_contrast_and_radiation(onto, name, modality, contrast, ionising):
    proc = LBP[name]
    assert onto.value(proc, LBP.modality) == LBP[modality]
    assert onto.value(proc, LBP.contrast) == LBP[contrast]
    assert onto.value(proc, LBP.usesIonisingRadiation).toPython() is ionising
    assert onto.value(proc, LBP.relativeRadiationLevel) is not None


def test_selection_data_contrast_variant_and_mri_substitute(onto):
    mri = LBP.MRILumbarSpineWithoutContrast
    assert onto.value(mri, LBP.contrastEnhancedVariant) == LBP.MRILumbarSpineWithoutAndWithContrast
    for m in (mri, LBP.MRILumbarSpineWithoutAndWithContrast):
        assert onto.value(m, LBP.substituteWhenMRIContraindicated) == LBP.CTMyelographyLumbar


def test_every_project_class_and_property_has_label_and_definition(onto):
    kinds = (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty)
    missing = [
        str(term)
        for kind in kinds
        for term in onto.subjects(RDF.type, kind)
        if isinstance(term, URIRef)
        and str(term).startswith(str(LBP))
        and (onto.value(term, RDFS.label) is None or onto.value(term, SKOS.definition) is None)
    ]
    assert missing == []


def test_criteria_name_acr_variants(onto):
    for name in CRITERIA:
        cls = LBP[name]
        assert onto.value(cls, LBP.acrVariant) is not None or onto.value(cls, LBP.acrAlignmentNote)


VIGNETTES = {
    # case facts -> criteria HermiT must classify the case into (and none of the others)
    "saddle": ({"hasFinding": ["SaddleAnaesthesia"]}, {"SuspectedCaudaEquinaSyndrome"}),
    "weight-loss-51": (
        {"hasFinding": ["UnexplainedWeightLoss"], "ageInYears": 51},
        {
            "MalignancyRiskFactorsFirstLineTests",
            "ContrastForSuspectedInfectionMalignancyOrInflammation",
        },
    ),
    "weight-loss-50": ({"hasFinding": ["UnexplainedWeightLoss"], "ageInYears": 50}, set()),
    "esr-20": (
        {"hasFinding": ["NightOrRestPain"], "esrMmPerHour": 20.0, "ageInYears": 40},
        {
            "MalignancyRiskFactorsFirstLineTests",
            "MalignancyRiskFactorsWithAbnormalFirstLineTest",
            "ContrastForSuspectedInfectionMalignancyOrInflammation",
        },
    ),
    "esr-19": (
        {"hasFinding": ["NightOrRestPain"], "esrMmPerHour": 19.0, "ageInYears": 40},
        {
            "MalignancyRiskFactorsFirstLineTests",
            "ContrastForSuspectedInfectionMalignancyOrInflammation",
        },
    ),
    "radiculopathy-6w": (
        {
            "hasFinding": ["MyotomalWeakness"],
            "conservativeTreatmentWeeks": 6.0,
            "symptomDurationWeeks": 8.0,
            "interventionCandidate": True,
        },
        {"PersistentRadiculopathyInCandidate", "PersistentSymptomsInCandidate"},
    ),
    "radiculopathy-5w": (
        {
            "hasFinding": ["MyotomalWeakness"],
            "conservativeTreatmentWeeks": 5.0,
            "symptomDurationWeeks": 8.0,
            "interventionCandidate": True,
        },
        set(),
    ),
    "minor-trauma-alone": ({"hasFinding": ["MinorTrauma"]}, set()),
    "general-weakness-alone": ({"hasFinding": ["GeneralWeakness"]}, set()),
    "foot-drop": ({"hasFinding": ["FootDrop"]}, {"SevereOrProgressiveNeurologicDeficit"}),
    "postoperative-saddle": (
        {"hasFinding": ["SaddleAnaesthesia"], "priorLumbarSurgery": True},
        {"SuspectedCaudaEquinaSyndrome"},
    ),
    "device": ({"hasFinding": ["MRIIncompatibleDevice"]}, {"MRIContraindicatedCase"}),
}


def _vignette_graph() -> Graph:
    graph = Graph()
    for key, (facts, _) in VIGNETTES.items():
        case = EX[key]
        graph.add((case, RDF.type, LBP.PatientCase))
        for prop, value in facts.items():
            values = value if isinstance(value, list) else [value]
            for v in values:
                obj = (
                    LBP[v]
                    if isinstance(v, str)
                    else Literal(v, datatype=XSD.decimal if isinstance(v, float) else None)
                )
                graph.add((case, LBP[prop], obj))
    return graph


@pytest.mark.hermit
def test_hermit_classifies_vignettes_into_exactly_the_expected_criteria(onto):
    criteria = {LBP[n] for n in [*CRITERIA, *RULES]}
    graph = _vignette_graph()
    per_case = {EX[k]: Graph() for k in VIGNETTES}
    for triple in graph:
        per_case[triple[0]].add(triple)
    result = classify_hermit.classify(onto, per_case)
    assert not result.inconsistent
    for key, (_, expected) in VIGNETTES.items():
        got = {c for c in result.classified[EX[key]].classes if c in criteria}
        assert got == {LBP[n] for n in expected}, key
    saddle = result.classified[EX["saddle"]].values
    assert saddle[LBP.indicatesProcedure] == {LBP.MRILumbarSpineWithoutContrast}
    assert saddle[LBP.hasUrgency] == {LBP.Emergent}
