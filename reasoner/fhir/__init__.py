"""FHIR R4 in and out, every code read from the knowledge base's SKOS mappings.

In: ``validation`` (a Bundle's JSON checked in FHIR's terms), ``read`` (a Bundle as one
patient case), ``ucum`` (quantities converted to the units case properties declare),
``questionnaire_response`` (answers read as case facts). Both ways: ``mapping`` (which
coding means which case fact; the project CodeSystem). Out: ``output`` (results as
GuidanceResponses in a Bundle), ``questionnaire`` (the Questionnaire generated from the
criteria, ``sdc`` its Structured Data Capture conventions) and ``artefacts`` (``python -m
reasoner.fhir.artefacts`` writes ``ontology/fhir/``).
"""
