"""The web pages for people, and the linked data behind the knowledge base's IRIs.

What they show, read from the knowledge base: ``labels`` (names and ids),
``definition_words`` (a criterion's definition in words), ``codings`` (a term's codes),
``criteria_catalogue`` and ``ontology_header`` (the criteria browser and the landing page;
these are shared with ``lbp-imaging docs``). The case page: ``questionnaire_form`` (the
questionnaire as form fields) and ``case_form`` (assessing what the page submits). Built
once: ``site`` (templates and the above); served by ``router`` (the pages), ``assets``
(``/static/``: stylesheets, script, Swagger UI) and, for dereferenced IRIs,
``linked_data`` (a term described), ``term_page`` (its HTML page), ``fhir_files`` (the
FHIR artefacts at their canonical URLs) and ``linked_data_router``. ``templates/`` and
``static/`` hold the files.
"""
