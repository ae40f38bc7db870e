"""The FHIR Structured Data Capture conventions the generated questionnaire follows, and
the codes of its yes / no answers: shared by the writer (``questionnaire``) and the reader
of responses (``questionnaire_response``). FHIR's own identifiers, not clinical terms.
"""

# FHIR's yes / no codes (HL7 v2 table 0136), the usual answers of an SDC yes/no choice.
YES_NO_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0136"
YES = {"system": YES_NO_SYSTEM, "code": "Y", "display": "Yes"}
NO = {"system": YES_NO_SYSTEM, "code": "N", "display": "No"}
SDC_PROFILE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire"
UNIT_EXTENSION = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
ITEM_CONTROL_EXTENSION = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
HELP_CONTROL = {
    "system": "http://hl7.org/fhir/questionnaire-item-control",
    "code": "help",
    "display": "Help-Button",
}
VALUE_TYPES = {"integer": "valueInteger", "decimal": "valueDecimal", "boolean": "valueBoolean"}
"""The answer element of each type of item that takes a value."""
