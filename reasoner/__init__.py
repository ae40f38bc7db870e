"""lbp-imaging: computable imaging criteria for low back pain.

The package is a generic engine: every clinical term, threshold, code and rule lives in
the knowledge base (``ontology/``, ``shapes/``, ``queries/``). Its folders follow what the
data goes through: ``knowledge`` (load the knowledge base), ``pipeline/`` (the steps of an
assessment, read, validate, classify, select, explain and render, and what runs them
batch by batch), ``fhir/`` (FHIR R4 in and out: Bundles read as cases, results written,
the Questionnaire generated), ``server/`` (the web server, one subpackage per surface),
``authoring/`` (``check``, ``impact`` and ``docs`` for knowledge-base authors), ``cli``
(the ``lbp-imaging`` command) and ``synthetic`` (generated cases for tests and benchmarks).

Decision support, not diagnosis.
"""

import logging
from importlib.metadata import PackageNotFoundError, version

try:  # one version, pyproject.toml's, as the installed package's metadata carries it
    __version__ = version("lbp-imaging")
except PackageNotFoundError:  # the package's folder put on the path, never installed
    __version__ = "0+unknown"

# A library logs and leaves the output to the application (the server sets it up).
logging.getLogger("lbp_imaging").addHandler(logging.NullHandler())

DISCLAIMER = (
    "Decision support, not diagnosis: every recommendation must be checked by the "
    "treating clinician's judgement."
)
